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
from enum import StrEnum
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

from reallabor_mail.content.models import Site
from reallabor_mail.errors import Code, Problem
from reallabor_mail.i18n.messages import N_, _, ngettext
from reallabor_mail.render.engine import SIZE_WARNING_BYTES, UNSUBSCRIBE_MARK, RenderedEmail

GMAIL_CLIP_BYTES = 102 * 1024  # Gmail hides everything after about 102 KB behind "[Message clipped]"
PREVIEW_LINE_CHARS = 100  # what an inbox shows of the preview line, at most

# Warnings of the content loader and build that a check below takes over, by their stable code.
_TAKEN_OVER = (Code.IMAGE_WITHOUT_ALT, Code.NO_PREHEADER, Code.LINK_NOT_FULL_ADDRESS, Code.EMAIL_TOO_LARGE)

_RULE = re.compile(r"^[=\-_*~#]{3,}$")
_URL = re.compile(r"^(https?://|www\.|mailto:)", re.IGNORECASE)

# Resolves a public URL (under site.public_url) to "exists in the archive or the public app".
Resolver = Callable[[str], bool]


class CheckId(StrEnum):
    """The stable name of each check: the page's ``data-check`` and what tests select by (the wording is translated)."""

    SIZE = "size"
    ALT_TEXTS = "alt-texts"
    PREHEADER = "preheader"
    LINKS = "links"
    EXTERNAL_LINKS = "external-links"
    FOOTER = "footer"
    TEXT_PART = "text-part"
    OTHER_WARNINGS = "other-warnings"


@dataclass(frozen=True)
class Check:
    """One line of the checks panel: passed or not, why, and the things it is about (all in the staff language)."""

    id: CheckId
    ok: bool
    detail: str
    items: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The check's title as the panel shows it."""
        return _(_NAMES[self.id])


_NAMES = {
    CheckId.SIZE: N_("Size"),
    CheckId.ALT_TEXTS: N_("Alt texts"),
    CheckId.PREHEADER: N_("Preheader"),
    CheckId.LINKS: N_("Links"),
    CheckId.EXTERNAL_LINKS: N_("External links"),
    CheckId.FOOTER: N_("Impressum and unsubscribe"),
    CheckId.TEXT_PART: N_("Text part"),
    CheckId.OTHER_WARNINGS: N_("Other warnings"),
}


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
    values = {"size": _kb(size), "clip": _kb(GMAIL_CLIP_BYTES), "keep": _kb(SIZE_WARNING_BYTES)}
    if size > GMAIL_CLIP_BYTES:
        detail = _(
            "{size} of HTML; Gmail clips above about {clip}, keep it under {keep}. Gmail WILL clip this email: "
            "shorten the text or split the issue", **values
        )  # fmt: skip
    elif size > SIZE_WARNING_BYTES:
        detail = _("{size} of HTML; Gmail clips above about {clip}, keep it under {keep}. Close to clipping: "
                   "shorten the text", **values)  # fmt: skip
    else:
        detail = _("{size} of HTML; Gmail clips above about {clip}, keep it under {keep}", **values)
    return Check(CheckId.SIZE, size <= SIZE_WARNING_BYTES, detail)


def alt_text_check(email: RenderedEmail, warnings: Sequence[Problem]) -> Check:
    """Images without alt text: the loader's warnings (with lines) plus template images with no alt at all."""
    found = [str(p) for p in warnings if p.code is Code.IMAGE_WITHOUT_ALT]
    images = _scan(email.html).images
    found += [_("template image '{src}' has no alt attribute", src=src) for src, alt in images if alt is None]
    if found:
        detail = ngettext(
            "{count} image without alt text; screen readers and clients that block images show nothing for it",
            "{count} images without alt text; screen readers and clients that block images show nothing for them",
            len(found),
        )
        return Check(CheckId.ALT_TEXTS, False, detail, tuple(found))
    if not images:
        return Check(CheckId.ALT_TEXTS, True, _("the email has no images"))
    detail = ngettext("the image has an alt text", "every image has an alt text ({count} images)", len(images))
    return Check(CheckId.ALT_TEXTS, True, detail)


def preheader_check(email: RenderedEmail, warnings: Sequence[Problem]) -> Check:
    """Whether the author wrote the preview line, and what an inbox will show of it."""
    shown = preview_line(email)
    missing = [str(p) for p in warnings if p.code is Code.NO_PREHEADER]
    if missing or not shown:
        detail = _("no preheader; inboxes show the first words instead: “{shown}”", shown=shown)
        return Check(CheckId.PREHEADER, False, detail, tuple(missing))
    return Check(CheckId.PREHEADER, True, _("inboxes show: “{shown}”", shown=shown))


def preview_line(email: RenderedEmail) -> str:
    """The first characters of the preview line, as an inbox list shows them after the subject."""
    line = " ".join(email.preheader.split())
    return line if len(line) <= PREVIEW_LINE_CHARS else line[: PREVIEW_LINE_CHARS - 1].rstrip() + "…"


def _is_external(url: str, public_url: str) -> bool:
    return url.startswith(("http://", "https://")) and not url.startswith(public_url + "/")


# What is wrong with a target, for a link and for an image (whole sentences: the two differ in other languages).
_NO_ANCHOR = {"link": N_("link '{url}': no element with this id in the email"),
              "image": N_("image '{url}': no element with this id in the email")}  # fmt: skip
_NOT_BUILT = {"link": N_("link '{url}': not in the archive that build writes"),
              "image": N_("image '{url}': not in the archive that build writes")}  # fmt: skip
_NOT_FULL = {"link": N_("link '{url}': not a full https:// address; it leads nowhere in an email"),
             "image": N_("image '{url}': not a full https:// address; it shows nothing in an email")}  # fmt: skip


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
    targets = [(url, "link") for url in scan.links] + [(src, "image") for src, _alt in scan.images]
    for url, what in targets:
        if url == UNSUBSCRIBE_MARK or url.startswith(("mailto:", "tel:")):
            continue
        if url.startswith("#"):
            if unquote(url[1:]) not in scan.ids:
                broken.append(_(_NO_ANCHOR[what], url=url))
        elif _is_external(url, public):
            if what == "link" and url not in external:
                external.append(url)
        elif url.startswith(public + "/"):
            if resolves is not None and not resolves(url):
                broken.append(_(_NOT_BUILT[what], url=url))
        else:
            broken.append(_(_NOT_FULL[what], url=url))
    seen = list(dict.fromkeys(broken))
    if seen:
        detail = ngettext("{count} link or image points nowhere", "{count} links or images point nowhere", len(seen))
    else:
        detail = _("anchors, archive pages, images and calendar files all exist")
    external_detail = ngettext(
        "{count} external link, not fetched: click to verify", "{count} external links, not fetched: click to verify",
        len(external),
    )  # fmt: skip
    return [
        Check(CheckId.LINKS, not seen, detail, tuple(seen)),
        Check(CheckId.EXTERNAL_LINKS, True, external_detail, tuple(sorted(external))),
    ]


def footer_check(email: RenderedEmail, site: Site) -> Check:
    """The Impressum (German law: TMG §5 / DDG) and an unsubscribe link, in both parts of the email."""
    scan = _scan(email.html)
    imprint = str(site.imprint_url)
    missing = []
    if imprint not in scan.links:
        missing.append(_("HTML part: no link to the Impressum {url}", url=imprint))
    if imprint not in email.text:
        missing.append(_("text part: no Impressum address {url}", url=imprint))
    if UNSUBSCRIBE_MARK not in scan.links:
        missing.append(_("HTML part: no unsubscribe link"))
    if UNSUBSCRIBE_MARK not in email.text:
        missing.append(_("text part: no unsubscribe address"))
    if missing:
        return Check(CheckId.FOOTER, False, _("the footer is incomplete (check the templates)"), tuple(missing))
    return Check(CheckId.FOOTER, True, _("both in the HTML and in the text part"))


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
        return Check(CheckId.TEXT_PART, False, _("the text part has nothing after the greeting"))
    if _URL.match(first) or first.startswith("["):
        detail = _("the text part starts with a link or image placeholder: “{shown}”; start the body with a sentence",
                   shown=shown)  # fmt: skip
        return Check(CheckId.TEXT_PART, False, detail)
    if len(first) < 20:
        return Check(CheckId.TEXT_PART, False, _("the text part starts with a very short line: “{shown}”", shown=shown))
    return Check(CheckId.TEXT_PART, True, _("starts with: “{shown}”", shown=shown))


def other_warnings_check(warnings: Sequence[Problem]) -> Check:
    """Every other warning the loader and build gave for this file (headings, size, …), as they were reported."""
    rest = [str(p) for p in warnings if p.code not in _TAKEN_OVER]
    if rest:
        detail = ngettext("{count} warning from check/build", "{count} warnings from check/build", len(rest))
        return Check(CheckId.OTHER_WARNINGS, False, detail, tuple(rest))
    return Check(CheckId.OTHER_WARNINGS, True, _("none"))


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
