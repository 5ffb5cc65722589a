"""What the preview's checks panel reports about one rendered email, before anyone receives it.

Pure functions over a :class:`~reallabor_mail.render.engine.RenderedEmail` (the campaign's email with its
placeholders) and the warnings that loading and building already produced: nothing here reads
files, fetches URLs or renders. Problems the content loader already found (alt texts, preheader,
links that are not full addresses) are taken from its warnings, with their ``path:line``, instead of
being recomputed; what only the rendered email shows (size, template images, anchors, footer links,
the start of the text part) is looked at here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

from reallabor_mail.content.models import Site
from reallabor_mail.errors import Code, Problem
from reallabor_mail.render.engine import SIZE_WARNING_BYTES, UNSUBSCRIBE_MARK, RenderedEmail

GMAIL_CLIP_BYTES = 102 * 1024  # Gmail hides everything after about 102 KB behind "[Message clipped]"
PREVIEW_LINE_CHARS = 100  # what an inbox shows of the preview line, at most

# Warnings of the content loader and build that a check below takes over, by their stable code.
_TAKEN_OVER = (Code.IMAGE_WITHOUT_ALT, Code.NO_PREHEADER, Code.LINK_NOT_FULL_ADDRESS, Code.EMAIL_TOO_LARGE)

_RULE = re.compile(r"^[=\-_*~#]{3,}$")
_URL = re.compile(r"^(https?://|www\.|mailto:)", re.IGNORECASE)

# Resolves a public URL (under site.public_url) to "exists in the archive or the public app".
Resolver = Callable[[str], bool]


@dataclass(frozen=True)
class Check:
    """One line of the checks panel: passed or not, why, and the things it is about."""

    name: str
    ok: bool
    detail: str
    items: tuple[str, ...] = ()


class _Scan(HTMLParser):
    """Collects link targets, image sources (with their alt), ids and anchor names of an HTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.images: list[tuple[str, str | None]] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if values.get(key):
                self.ids.add(str(values[key]))
        if tag == "a" and values.get("href") is not None:
            self.links.append(str(values["href"]).strip())
        elif tag == "img":
            self.images.append((str(values.get("src") or "").strip(), values.get("alt")))


def _scan(html: str) -> _Scan:
    scan = _Scan()
    scan.feed(html)
    scan.close()
    return scan


def _kb(size: int) -> str:
    return f"{size / 1024:.0f} KB"


def size_check(email: RenderedEmail) -> Check:
    """The HTML part against Gmail's clipping limit, with room left for headers and encoding."""
    size = email.html_size
    detail = (
        f"{_kb(size)} of HTML; Gmail clips above about {_kb(GMAIL_CLIP_BYTES)}, keep it under {_kb(SIZE_WARNING_BYTES)}"
    )
    if size > GMAIL_CLIP_BYTES:
        detail += " — Gmail WILL clip this email: shorten the text or split the issue"
    elif size > SIZE_WARNING_BYTES:
        detail += " — close to clipping: shorten the text"
    return Check("Size", size <= SIZE_WARNING_BYTES, detail)


def alt_text_check(email: RenderedEmail, warnings: Sequence[Problem]) -> Check:
    """Images without alt text: the loader's warnings (with lines) plus template images with no alt at all."""
    found = [str(p) for p in warnings if p.code is Code.IMAGE_WITHOUT_ALT]
    found += [f"template image {src!r} has no alt attribute" for src, alt in _scan(email.html).images if alt is None]
    if found:
        return Check("Alt texts", False, f"{len(found)} image(s) without alt text; screen readers and "
                     "clients that block images show nothing for them", tuple(found))
    count = len(_scan(email.html).images)
    return Check("Alt texts", True, f"every image has an alt text ({count} image(s))")


def preheader_check(email: RenderedEmail, warnings: Sequence[Problem]) -> Check:
    """Whether the author wrote the preview line, and what an inbox will show of it."""
    shown = preview_line(email)
    missing = [str(p) for p in warnings if p.code is Code.NO_PREHEADER]
    if missing or not shown:
        return Check("Preheader", False, f"no preheader; inboxes show the first words instead: “{shown}”",
                     tuple(missing))
    return Check("Preheader", True, f"inboxes show: “{shown}”")


def preview_line(email: RenderedEmail) -> str:
    """The first characters of the preview line, as an inbox list shows them after the subject."""
    line = " ".join(email.preheader.split())
    return line if len(line) <= PREVIEW_LINE_CHARS else line[: PREVIEW_LINE_CHARS - 1].rstrip() + "…"


def _is_external(url: str, public_url: str) -> bool:
    return url.startswith(("http://", "https://")) and not url.startswith(public_url + "/")


def link_checks(
    email: RenderedEmail, site: Site, warnings: Sequence[Problem], resolves: Resolver | None
) -> list[Check]:
    """Links and images that point nowhere (anchors, relative paths, archive files), and the external ones.

    External links are listed for a human to click, never fetched: the preview works offline and
    must not announce an unpublished issue to other servers.
    """
    scan = _scan(email.html)
    public = site.public_url
    broken = [str(p) for p in warnings if p.code is Code.LINK_NOT_FULL_ADDRESS]
    external: list[str] = []
    targets = [(url, "link") for url in scan.links] + [(src, "image") for src, _ in scan.images]
    for url, what in targets:
        if url == UNSUBSCRIBE_MARK or url.startswith(("mailto:", "tel:")):
            continue
        if url.startswith("#"):
            if unquote(url[1:]) not in scan.ids:
                broken.append(f"{what} {url!r}: no element with this id in the email")
        elif _is_external(url, public):
            if what == "link" and url not in external:
                external.append(url)
        elif url.startswith(public + "/"):
            if resolves is not None and not resolves(url):
                broken.append(f"{what} {url!r}: not in the archive that build writes")
        else:
            broken.append(f"{what} {url!r}: not a full https:// address; it leads nowhere in an email")
    seen = list(dict.fromkeys(broken))
    result = [
        Check("Links", not seen, f"{len(seen)} link(s) or image(s) point nowhere" if seen else
              "anchors, archive pages, images and calendar files all exist", tuple(seen))
    ]
    result.append(Check("External links", True, f"{len(external)} external link(s), not fetched: click to verify",
                        tuple(sorted(external))))
    return result


def footer_check(email: RenderedEmail, site: Site) -> Check:
    """The Impressum (German law: TMG §5 / DDG) and an unsubscribe link, in both parts of the email."""
    scan = _scan(email.html)
    imprint = str(site.imprint_url)
    missing = []
    if imprint not in scan.links:
        missing.append("HTML part: no link to the Impressum " + imprint)
    if imprint not in email.text:
        missing.append("text part: no Impressum address " + imprint)
    if UNSUBSCRIBE_MARK not in scan.links:
        missing.append("HTML part: no unsubscribe link")
    if UNSUBSCRIBE_MARK not in email.text:
        missing.append("text part: no unsubscribe address")
    if missing:
        return Check("Impressum and unsubscribe", False, "the footer is incomplete (check the templates)",
                     tuple(missing))
    return Check("Impressum and unsubscribe", True, "both in the HTML and in the text part")


def text_start_check(email: RenderedEmail, greeting: str) -> Check:
    """Whether the text part opens with words: text-only clients and previews show its first line.

    After the greeting, the first paragraph should be a heading or a sentence, not a web address, an
    image placeholder, a link list or a ruler.
    """
    lines = [line.strip() for line in email.text.splitlines()]
    lines = [line for line in lines if line and line not in (greeting, "__RLM_GREETING__")]
    first = next((line for line in lines if not _RULE.match(line)), "")
    shown = first[:PREVIEW_LINE_CHARS]
    if not first:
        return Check("Text part", False, "the text part has nothing after the greeting")
    if _URL.match(first) or first.startswith("["):
        return Check("Text part", False, f"the text part starts with a link or image placeholder: “{shown}”; "
                     "start the body with a sentence")
    if len(first) < 20:
        return Check("Text part", False, f"the text part starts with a very short line: “{shown}”")
    return Check("Text part", True, f"starts with: “{shown}”")


def other_warnings_check(warnings: Sequence[Problem]) -> Check:
    """Every other warning the loader and build gave for this file (headings, size, …), verbatim."""
    rest = [str(p) for p in warnings if p.code not in _TAKEN_OVER]
    if rest:
        return Check("Other warnings", False, f"{len(rest)} warning(s) from check/build", tuple(rest))
    return Check("Other warnings", True, "none")


def email_checks(
    email: RenderedEmail,
    site: Site,
    *,
    warnings: Sequence[Problem] = (),
    greeting: str = "",
    resolves: Resolver | None = None,
) -> list[Check]:
    """Every check of the panel for one email in one language.

    ``warnings`` are the loader's and build's warnings about this version's file; ``greeting`` the
    sample greeting, skipped when looking at the start of the text; ``resolves`` says whether a URL
    under ``site.public_url`` exists (None: not checked).
    """
    return [
        size_check(email),
        alt_text_check(email, warnings),
        preheader_check(email, warnings),
        *link_checks(email, site, warnings, resolves),
        footer_check(email, site),
        text_start_check(email, greeting),
        other_warnings_check(warnings),
    ]


def public_path(url: str, public_url: str) -> str | None:
    """The path of a URL under the public base (``newsletters/2023-3/``), or None if it is elsewhere."""
    if not url.startswith(public_url + "/"):
        return None
    return unquote(urlsplit(url).path)[len(urlsplit(public_url).path) + 1 :]
