"""Markdown bodies: parsed once, split into sections, written as safe HTML and as plain text.

The plain text is written from the Markdown tokens, not scraped from the HTML, so headings, lists and
links read well in a text-only client (links become numbered references).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup

from reallabor_mail.errors import Code, ProblemLog
from reallabor_mail.i18n.messages import _

TEXT_WIDTH = 72

_ALLOWED_TAGS = {
    "p", "br", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "a", "strong", "em", "b", "i", "u",
    "code", "pre", "blockquote", "hr", "img", "table", "thead", "tbody", "tr", "th", "td", "s", "del",
    "sup", "sub", "small", "abbr", "div",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "th": {"style", "scope"},
    "td": {"style", "data-label"},
    "abbr": {"title"},
    "ol": {"start"},
}
_URL_SCHEMES = {"http", "https", "mailto"}


def sanitise_html(html: str) -> str:
    """Remove active content: scripts, event handlers, styles beyond alignment, non-web links."""
    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        filter_style_properties={"text-align"},
        allowed_classes={"div": {TABLE_BOX}},
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


def strip_tags(html: str) -> str:
    """The text of an HTML fragment, for the plain-text part."""
    return nh3.clean(html, tags=set(), strip_comments=True)


TABLE_BOX = "table-box"  # the box a table scrolls in when it is wider than a phone (templates style it)


def _table_open(self: Any, tokens: list[Token], idx: int, options: Any, env: Any) -> str:
    return f'<div class="{TABLE_BOX}">\n' + str(self.renderToken(tokens, idx, options, env))


def _table_close(self: Any, tokens: list[Token], idx: int, options: Any, env: Any) -> str:
    return str(self.renderToken(tokens, idx, options, env)) + "</div>\n"


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True, "typographer": False}).enable(["table", "strikethrough"])
    md.add_render_rule("table_open", _table_open)
    md.add_render_rule("table_close", _table_close)
    return md


_MD = _parser()


@dataclass
class LinkReferences:
    """Numbered link references of one plain-text part, shared by all its sections."""

    urls: list[str] = field(default_factory=list)

    def number(self, url: str) -> int:
        if url not in self.urls:
            self.urls.append(url)
        return self.urls.index(url) + 1

    def footnotes(self) -> str:
        return "\n".join(f"[{i}] {url}" for i, url in enumerate(self.urls, start=1))


@dataclass(frozen=True)
class Section:
    """A ``##`` section of a body (the intro has no title).

    Its HTML is made once (the email, the web page, the archive's feed and a newsletter's Rückblick all
    show it); its text depends on the link numbering of the part it goes into, so it is made per part.
    """

    title_tokens: tuple[Token, ...]
    tokens: tuple[Token, ...]

    @cached_property
    def title_html(self) -> Markup:
        if not self.title_tokens:
            return Markup("")
        return Markup(sanitise_html(_MD.renderer.render(list(self.title_tokens), _MD.options, {})))

    @property
    def title_text(self) -> str:
        return _inline_text(list(self.title_tokens), LinkReferences()) if self.title_tokens else ""

    @cached_property
    def html(self) -> Markup:
        return Markup(sanitise_html(_MD.renderer.render(list(self.tokens), _MD.options, {})))

    def text(self, refs: LinkReferences) -> str:
        return _blocks_text(list(self.tokens), refs)


@dataclass(frozen=True)
class Body:
    """A parsed Markdown body: the text before the first ``##`` and the sections."""

    intro: Section
    sections: tuple[Section, ...]

    @cached_property
    def html(self) -> Markup:
        """The whole body as one HTML fragment (web pages)."""
        parts = [self.intro.html]
        for section in self.sections:
            parts.append(Markup("<h2>{}</h2>\n").format(section.title_html) + section.html)
        return Markup("\n").join(parts)

    @cached_property
    def text(self) -> str:
        """The whole body as one plain text, its links numbered and listed at the end (calendar entries)."""
        refs = LinkReferences()
        parts = [self.intro.text(refs)]
        for section in self.sections:
            parts.append(f"{section.title_text}\n\n{section.text(refs)}")
        if refs.urls:
            parts.append(refs.footnotes())
        return "\n\n".join(p.strip("\n") for p in parts if p.strip())

    @property
    def first_sentence(self) -> str:
        """The opening words of the body, a fallback preview line."""
        text = " ".join(self.intro.text(LinkReferences()).split())
        return text[:160]


EMAIL_CONTENT_WIDTH = 552  # 600 px email minus the 24 px side padding: Outlook ignores max-width


@dataclass(frozen=True)
class ResolvedImage:
    url: str
    width: int
    height: int


ImageResolver = Callable[[str, int | None], ResolvedImage | None]


def parse_body(
    source: str,
    *,
    path: str,
    first_line: int,
    problems: ProblemLog,
    resolve_image: ImageResolver,
) -> Body:
    """Parse a Markdown body; report problems with the file's line numbers.

    ``first_line`` is the line of the file where the body starts. ``resolve_image`` turns an image
    path into its public URL and size (or returns None after reporting why it cannot). Markdown and
    raw-HTML images and links get the same checks, so no relative address reaches an email.
    """
    tokens = _MD.parse(source)
    _label_table_cells(tokens)
    check = _Checks(path, problems, resolve_image)
    for index, token in enumerate(tokens):
        line = first_line + token.map[0] if token.map else None
        if token.type == "heading_open" and token.tag == "h1":
            message = _("a '#' heading in the body; the title is the heading, use '##' for sections")
            problems.warning(path, line, message, Code.HEADING_IN_BODY)
        if token.type == "html_block":
            token.content = check.raw_html(token.content, line)
        for child in token.children or ():
            if child.type == "image":
                check.image(child, line)
            elif child.type == "link_open":
                check.link(str(child.attrs.get("href", "")), line)
            elif child.type == "html_inline":
                child.content = check.raw_html(child.content, line)
            elif child.type == "text" and _UNPARSED_IMAGE.search(child.content):
                message = _(
                    "an image or link address with a space is not read as one; write it in angle brackets: "
                    "![…](<images/file name.jpg>)"
                )
                problems.error(path, line, message, Code.IMAGE_PATH)
        if _may_hold_links(token):
            block_html = sanitise_html(_MD.renderer.render(tokens[index : index + 1], _MD.options, {}))
            for text, href in deceptive_links(block_html):
                message = _(
                    "link text {text!r} shows another address than the link goes to ({href}); "
                    "write what the link is about, or the address it really opens",
                    text=text,
                    href=href,
                )
                problems.error(path, line, message, Code.DECEPTIVE_LINK)
    _check_opening_greeting(tokens, path, first_line, problems)
    return _split_sections(tokens)


def _may_hold_links(token: Token) -> bool:
    """Whether a block's HTML can have an ``<a>``: only a Markdown link or raw HTML makes one (text is escaped)."""
    if token.type == "html_block":
        return True
    return token.type == "inline" and any(child.type in ("link_open", "html_inline") for child in token.children or ())


_UNPARSED_IMAGE = re.compile(r"\[[^\]]*\]\([^)<>\s]+\s[^)]*\)")  # ![x](a b.jpg): CommonMark leaves it as text
_RAW_IMAGE = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_RAW_LINK = re.compile(r"<a\b[^>]*>", re.IGNORECASE)
_KEPT_IMAGE_ATTRIBUTES = ("src", "alt", "title", "width", "height")


class _Attributes(HTMLParser):
    """The attributes of the first tag of an HTML fragment."""

    def __init__(self, tag: str) -> None:
        super().__init__(convert_charrefs=True)
        self.first: dict[str, str | None] | None = None
        self.feed(tag)
        self.close()

    @property
    def values(self) -> dict[str, str | None]:
        return self.first or {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.first is None:
            self.first = dict(attrs)

    handle_startendtag = handle_starttag


@dataclass
class _Checks:
    """The image and link checks of one file, the same for Markdown syntax and raw HTML."""

    path: str
    problems: ProblemLog
    resolve: ImageResolver

    def image(self, token: Token, line: int | None) -> None:
        """A Markdown image: checked, and pointed at its public URL with its size."""
        src = str(token.attrs.get("src", ""))
        self._alt(token.content, src, line)
        resolved = self._resolve(src, line)
        if resolved is not None:
            token.attrs.update(resolved)

    def raw_html(self, html: str, line: int | None) -> str:
        """Raw HTML with every ``<img>`` checked and rebuilt with its public URL, every ``<a>`` checked."""
        for tag in _RAW_LINK.findall(html):
            self.link(str(_Attributes(sanitise_html(tag)).values.get("href") or ""), line)
        return _RAW_IMAGE.sub(lambda match: self._raw_image(match.group(), line), html)

    def _raw_image(self, tag: str, line: int | None) -> str:
        values = _Attributes(tag).values
        src = str(values.get("src") or "")
        self._alt(str(values.get("alt") or ""), src, line)
        kept = {k: str(values[k] or "") for k in _KEPT_IMAGE_ATTRIBUTES if values.get(k) is not None}
        kept.update(self._resolve(src, line) or {})
        kept.setdefault("alt", "")
        return "<img " + " ".join(f'{k}="{escape(v)}"' for k, v in kept.items()) + ">"

    def _alt(self, alt: str, src: str, line: int | None) -> None:
        if not alt.strip():
            message = _("image {src!r} has no alt text; describe it in ![…]({src})", src=src)
            self.problems.warning(self.path, line, message, Code.IMAGE_WITHOUT_ALT)

    def _resolve(self, src: str, line: int | None) -> dict[str, str] | None:
        """``src``, ``width`` and ``height`` of a content image; None for a web address or after a problem."""
        if src.startswith(("http://", "https://")):
            return None
        image = self.resolve(unquote(src), line)
        if image is None:
            return None
        # Outlook on Windows sizes images by their attributes only: cap them to the column.
        width = min(image.width, EMAIL_CONTENT_WIDTH)
        return {"src": image.url, "width": str(width), "height": str(round(image.height * width / image.width))}

    def link(self, href: str, line: int | None) -> None:
        if not href:
            message = _("a link without address (or with a scheme other than http, https, mailto)")
            self.problems.error(self.path, line, message, Code.LINK_WITHOUT_ADDRESS)
        elif not href.startswith(("http://", "https://", "mailto:", "#")):  # "#…": the preview checks the id
            message = _("link {href!r} is not a full address; an email needs https://…", href=href)
            self.problems.error(self.path, line, message, Code.LINK_NOT_FULL_ADDRESS)


def _label_table_cells(tokens: list[Token]) -> None:
    """Give each table cell its column heading (``data-label``), shown when a phone stacks the rows."""
    headings: list[str] = []
    column = 0
    for index, token in enumerate(tokens):
        if token.type == "thead_open":
            headings = []
        elif token.type == "th_open":
            headings.append(_inline_text([tokens[index + 1]], LinkReferences()).strip())
        elif token.type == "tr_open":
            column = 0
        elif token.type == "td_open":
            if column < len(headings) and headings[column]:
                token.attrs["data-label"] = headings[column]
            column += 1


_OWN_GREETING = re.compile(
    r"^(liebe[rs]?|sehr geehrte[rs]?|hallo|guten tag|dear|hello|шановн\w*|вельмишановн\w*|дорог\w*|добрий день)\b"
    r"[^.!?\n]{0,80}[,!]",
    re.IGNORECASE,
)


def _check_opening_greeting(tokens: list[Token], path: str, first_line: int, problems: ProblemLog) -> None:
    """The email already greets each reader by name; a body that opens with a greeting greets twice."""
    for index, token in enumerate(tokens):
        if token.type == "paragraph_open":
            inline = tokens[index + 1]
            if _OWN_GREETING.match(inline.content.strip()) and token.map:
                message = _(
                    "the text starts with its own greeting; the email already opens with a personal one "
                    "(\"Sehr geehrte Frau …,\"), so remove this line"
                )
                problems.warning(path, first_line + token.map[0], message, Code.DOUBLE_GREETING)
            return
        if token.type in ("heading_open", "html_block", "table_open", "bullet_list_open", "ordered_list_open"):
            return


_ADDRESS_LIKE = re.compile(r"^(?:https?://)?(?:www\.)?((?:[\w-]+\.)+[a-z]{2,})(?:[/:?#]\S*)?$", re.IGNORECASE)


class _AnchorText(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href") or ""
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append(("".join(self._text).strip(), self._href))
            self._href = None


def _host(address: str) -> str:
    match = _ADDRESS_LIKE.match(address.strip())
    return match.group(1).lower().removeprefix("www.") if match else ""


def deceptive_links(html: str) -> list[tuple[str, str]]:
    """Links whose text looks like an address on another host than the one they open (phishing-style)."""
    parser = _AnchorText()
    parser.feed(html)
    found = []
    for text, href in parser.links:
        shown = _host(text)
        if not shown or href.startswith("mailto:"):
            continue
        target = (urlsplit(href).hostname or "").lower().removeprefix("www.")
        if target != shown and not target.endswith("." + shown):
            found.append((text, href))
    return found


def _split_sections(tokens: list[Token]) -> Body:
    intro: list[Token] = []
    sections: list[tuple[list[Token], list[Token]]] = []
    current = intro
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.type == "heading_open" and token.tag == "h2":
            inline = tokens[i + 1]
            title = [inline]
            current = []
            sections.append((title, current))
            i += 3
            continue
        current.append(token)
        i += 1
    return Body(
        intro=Section((), tuple(intro)),
        sections=tuple(Section(tuple(t), tuple(b)) for t, b in sections),
    )


def _inline_text(tokens: list[Token], refs: LinkReferences) -> str:
    out: list[str] = []
    for token in tokens:
        if token.type == "inline" and token.children is not None:
            out.append(_inline_text(token.children, refs))
            continue
        if token.type in ("text", "code_inline"):
            out.append(token.content)
        elif token.type == "softbreak":
            out.append(" ")
        elif token.type == "hardbreak":
            out.append("\n")
        elif token.type == "image":
            out.append(f"[{token.content}]" if token.content else "")
        elif token.type == "link_open":
            out.append("\x00" + str(token.attrs.get("href", "")) + "\x01")
        elif token.type == "link_close":
            out.append("\x02")
    return _resolve_links("".join(out), refs)


def _resolve_links(text: str, refs: LinkReferences) -> str:
    """Turn the link markers of :func:`_inline_text` into ``text [n]`` references."""
    result: list[str] = []
    pos = 0
    while (start := text.find("\x00", pos)) != -1:
        result.append(text[pos:start])
        mid = text.find("\x01", start)
        end = text.find("\x02", mid)
        href = text[start + 1 : mid]
        label = text[mid + 1 : end]
        target = href.removeprefix("mailto:")
        if not href:
            result.append(label)
        elif label.strip() in (href, target):
            result.append(target)
        else:
            result.append(f"{label} [{refs.number(target)}]")
        pos = end + 1
    result.append(text[pos:])
    return "".join(result)


def _wrap(text: str, prefix: str = "", rest: str | None = None) -> str:
    lines: list[str] = []
    for part in text.split("\n"):
        lines.append(
            textwrap.fill(
                part,
                width=TEXT_WIDTH,
                initial_indent=prefix if not lines else (rest if rest is not None else prefix),
                subsequent_indent=rest if rest is not None else prefix,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return "\n".join(lines)


def _blocks_text(tokens: list[Token], refs: LinkReferences) -> str:
    blocks: list[str] = []
    list_stack: list[list[int]] = []  # per open list: [next number or -1 for bullets]
    quote_depth = 0
    i = 0
    pending_item_prefix: str | None = None
    while i < len(tokens):
        token = tokens[i]
        kind = token.type
        indent = "   " * max(len(list_stack) - 1, 0)
        quote = "> " * quote_depth
        if kind == "heading_open":
            text = _inline_text([tokens[i + 1]], refs)
            underline = "=" if token.tag in ("h1", "h2") else "-"
            blocks.append(f"{quote}{text}\n{quote}{underline * min(len(text), TEXT_WIDTH)}")
            i += 3
            continue
        if kind == "paragraph_open":
            text = _inline_text([tokens[i + 1]], refs)
            if pending_item_prefix is not None:
                prefix = quote + indent + pending_item_prefix
                blocks.append(_wrap(text, prefix, quote + indent + " " * len(pending_item_prefix)))
                pending_item_prefix = None
            elif list_stack:
                blocks.append(_wrap(text, quote + indent + "   "))
            else:
                blocks.append(_wrap(text, quote))
            i += 3
            continue
        if kind in ("bullet_list_open", "ordered_list_open"):
            start = int(token.attrs.get("start", 1) or 1) if kind == "ordered_list_open" else -1
            list_stack.append([start])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            list_stack.pop()
        elif kind == "list_item_open":
            counter = list_stack[-1]
            if counter[0] == -1:
                pending_item_prefix = "- "
            else:
                pending_item_prefix = f"{counter[0]}. "
                counter[0] += 1
        elif kind == "blockquote_open":
            quote_depth += 1
        elif kind == "blockquote_close":
            quote_depth -= 1
        elif kind in ("fence", "code_block"):
            blocks.append(textwrap.indent(token.content.rstrip("\n"), quote + "    "))
        elif kind == "hr":
            blocks.append(quote + "-" * 20)
        elif kind == "html_block":
            text = " ".join(strip_tags(token.content).split())
            if text:
                blocks.append(_wrap(text, quote))
        elif kind == "table_open":
            i, table = _table_text(tokens, i, refs)
            blocks.append(textwrap.indent(table, quote) if quote else table)
            continue
        i += 1
    return _join_blocks(blocks)


def _join_blocks(blocks: list[str]) -> str:
    """Blank lines between blocks, except between consecutive items of one tight list."""
    out: list[str] = []
    for block in blocks:
        stripped = block.lstrip("> ")
        is_item = stripped[:2] == "- " or (stripped.split(". ", 1)[0].isdigit() and ". " in stripped[:5])
        if out and is_item and out[-1][-1:] != "\n" and _last_was_item(out):
            out.append("\n" + block)
        else:
            out.append(("\n\n" if out else "") + block)
    return "".join(out)


def _last_was_item(out: list[str]) -> bool:
    last = out[-1].strip("\n").split("\n")[0].lstrip("> ").lstrip()
    return last[:2] == "- " or (last.split(". ", 1)[0].isdigit() and ". " in last[:5])


def _table_text(tokens: list[Token], i: int, refs: LinkReferences) -> tuple[int, str]:
    rows: list[list[str]] = []
    row: list[str] = []
    while tokens[i].type != "table_close":
        token = tokens[i]
        if token.type == "tr_open":
            row = []
        elif token.type == "inline":
            row.append(_inline_text([token], refs))
        elif token.type == "tr_close":
            rows.append(row)
        i += 1
    widths = [max(len(r[c]) if c < len(r) else 0 for r in rows) for c in range(max(map(len, rows), default=0))]
    if sum(widths) + 3 * (len(widths) - 1) <= TEXT_WIDTH:
        lines = [" | ".join(cell.ljust(widths[c]) for c, cell in enumerate(r)).rstrip() for r in rows]
        if len(lines) > 1:
            lines.insert(1, "-+-".join("-" * w for w in widths))
        return i + 1, "\n".join(lines)
    # Too wide for a text client: one record per row, "Heading: value" per cell.
    header, *body = rows
    records = [
        "\n".join(_wrap(f"{header[c] if c < len(header) else ''}: {cell}", "", "  ") for c, cell in enumerate(r))
        for r in body
    ]
    return i + 1, "\n\n".join(records)


def read_image_path(src: str, content_root: Path) -> Path:
    """The file an image reference points at; raises ValueError when it leaves the content folder."""
    if "\\" in src or src.startswith("/"):
        raise ValueError(_("image path {src!r} must be relative to the content folder, e.g. images/foto.jpg", src=src))
    candidate = (content_root / src).resolve()
    root = content_root.resolve()
    if not candidate.is_relative_to(root):
        raise ValueError(_("image path {src!r} points outside the content folder; put the file in images/", src=src))
    if not candidate.is_file():
        folder = content_root / "images"
        raise ValueError(_("image {src!r} not found; put the file in {folder}", src=src, folder=folder))
    return candidate
