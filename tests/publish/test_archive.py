"""The public archive that ``build`` writes: links resolve, the feed is Atom, pages are accessible and light.

The pages link with absolute URLs under ``site.public_url`` (they are opened from mails); the crawl
maps those to the built files. Layout, contrast and print are checked in headless Chromium.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import deque
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from reallabor_mail.content.loader import load_content

from ..conftest import SAMPLE_CONTENT

ATOM = "{http://www.w3.org/2005/Atom}"
PUBLIC = load_content(SAMPLE_CONTENT).site.public_url


@pytest.fixture
def out(built_site: Path) -> Path:
    return built_site


class Page(HTMLParser):
    """What a crawl and the accessibility checks need from a page."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.resources: list[tuple[str, str]] = []  # (tag, url) loaded by the browser
        self.ids: set[str] = set()
        self.tags: list[str] = []
        self.headings: list[int] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        if "id" in values:
            self.ids.add(values["id"])
        if tag == "a" and "href" in values:
            self.links.append(values["href"])
        if tag in ("img", "script", "iframe", "audio", "video", "source") and values.get("src"):
            self.resources.append((tag, values["src"]))
        if tag == "link" and values.get("rel") in ("stylesheet", "preload", "icon", "prefetch"):
            self.resources.append((tag, values.get("href", "")))
        if tag == "link" and values.get("rel") == "alternate":  # translations and the feed: must resolve too
            self.links.append(values.get("href", ""))
        if len(tag) == 2 and tag[0] == "h" and tag[1].isdigit():
            self.headings.append(int(tag[1]))


def local_file(out: Path, url: str) -> Path | None:
    """The built file a public URL addresses (a folder means its index.html); None if not ours."""
    if not url.startswith(PUBLIC + "/"):
        return None
    path = unquote(urlsplit(url).path)[len(urlsplit(PUBLIC).path) + 1 :]
    target = out / path
    return target / "index.html" if path == "" or path.endswith("/") else target


def web_pages(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("index*.html"))


def test_every_archive_link_resolves(out: Path) -> None:
    """Crawl from the archive page: every link under the public URL opens a built file (and its #anchor)."""
    seen: set[Path] = set()
    queue = deque([out / "index.html"])
    broken: list[str] = []
    while queue:
        file = queue.popleft()
        if file in seen or file.suffix != ".html":
            seen.add(file)
            continue
        seen.add(file)
        page = Page(file.read_text(encoding="utf-8"))
        for link in page.links:
            if link.startswith("#"):
                if link[1:] not in page.ids:
                    broken.append(f"{file.relative_to(out)}: {link}")
                continue
            target = local_file(out, link)
            if target is None:
                assert link.startswith(("https://", "mailto:")), f"{file.relative_to(out)}: {link}"
                continue
            if not target.is_file():
                broken.append(f"{file.relative_to(out)}: {link}")
                continue
            fragment = urlsplit(link).fragment
            if fragment and fragment not in Page(target.read_text(encoding="utf-8")).ids:
                broken.append(f"{file.relative_to(out)}: {link} (no #{fragment})")
            queue.append(target)
    assert not broken
    reached = {p.relative_to(out).as_posix() for p in seen}
    assert {"index.html", "calendar.ics", "feed.xml", "newsletters/2023-3/index.html",
            "newsletters/2023-3/index.uk.html", "events/2024-06-19-abschlussveranstaltung/event.ics"} <= reached
    assert set(web_pages(out)) <= seen  # every web version and event page is reachable from the archive


def test_archive_shows_the_feed_and_the_calendar(out: Path) -> None:
    page = Page((out / "index.html").read_text(encoding="utf-8"))
    assert f"{PUBLIC}/feed.xml" in page.links and f"{PUBLIC}/calendar.ics" in page.links


def test_feed_is_atom(out: Path) -> None:
    root = ET.parse(out / "feed.xml").getroot()
    assert root.tag == f"{ATOM}feed"
    for name in ("id", "title", "updated", "author"):
        assert root.find(f"{ATOM}{name}") is not None, name
    entries = root.findall(f"{ATOM}entry")
    content = load_content(SAMPLE_CONTENT)
    titles = [e.findtext(f"{ATOM}title") for e in entries]
    newsletters = [n.meta.title for n in content.newsletters]
    assert [t for t in titles if t in newsletters] == newsletters  # reports in between (tests/publish/test_reports.py)
    for entry in entries:
        for name in ("id", "updated", "summary", "content"):
            assert entry.findtext(f"{ATOM}{name}"), name
        link = entry.find(f"{ATOM}link[@rel='alternate']")
        assert link is not None
        target = local_file(out, link.get("href", ""))
        assert target is not None and target.is_file()
    assert root.find(f"{ATOM}link[@rel='self']").get("href") == f"{PUBLIC}/feed.xml"  # type: ignore[union-attr]


def test_pages_have_landmarks_ordered_headings_and_no_tracking(out: Path) -> None:
    for file in web_pages(out):
        page = Page(file.read_text(encoding="utf-8"))
        name = file.relative_to(out).as_posix()
        assert page.tags.count("main") == 1 and "header" in page.tags and "footer" in page.tags and "nav" in page.tags
        assert page.headings[0] == 1 and page.headings.count(1) == 1, name
        for before, after in zip(page.headings, page.headings[1:], strict=False):
            assert after <= before + 1, f"{name}: h{before} followed by h{after}"
        for tag, url in page.resources:  # nothing loads from elsewhere: no trackers, fonts, pixels or scripts
            assert tag == "img" and (file.parent / url).resolve().is_relative_to(out), f"{name}: {tag} {url}"
            assert (file.parent / url).is_file(), f"{name}: {url}"  # the build's own copy, also from disk
        text = file.read_text(encoding="utf-8")
        assert "<script" not in text and "<iframe" not in text


# --- in Chromium --------------------------------------------------------------------------------

NARROW = ["index.html", "newsletters/2024-1/index.html", "newsletters/2023-3/index.uk.html",
          "events/2023-11-08-konferenz-kommunale-aussenpolitik/index.html", "newsletters/2024-1/email.html",
          "events/2023-09-19-kollegialer-austausch/invitation.html"]  # fmt: skip

# The contrast ratio of every text element against the background it sits on (WCAG 2 formula).
CONTRAST_JS = """
() => {
  const lum = c => { const [r, g, b] = c.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number).map(v => {
    v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const background = el => { for (; el; el = el.parentElement) { const c = getComputedStyle(el).backgroundColor;
    if (c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') return c; } return 'rgb(255, 255, 255)'; };
  const low = [];
  for (const el of document.querySelectorAll('body *')) {
    const own = Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || el.offsetParent === null) continue;
    const [a, b] = [lum(getComputedStyle(el).color), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) low.push(el.tagName + ' ' + el.textContent.trim().slice(0, 40) + ' ' + ratio.toFixed(2));
  }
  return low;
}
"""


@pytest.mark.browser
def test_nothing_scrolls_sideways_at_375_px(out: Path, chromium: Any) -> None:
    page = chromium.new_page(viewport={"width": 375, "height": 800})
    for name in NARROW:
        page.goto((out / name).as_uri())
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, name
        if name.endswith("index.html") or "index." in name:  # web pages: tables fit, no scrolling inside them
            assert page.evaluate("Array.from(document.querySelectorAll('main table')).every(t => "
                                 "t.scrollWidth <= t.clientWidth)"), name  # fmt: skip
    page.close()


@pytest.mark.browser
def test_text_contrast_and_print_layout(out: Path, chromium: Any) -> None:
    page = chromium.new_page(viewport={"width": 1024, "height": 800})
    for name in ("index.html", "newsletters/2024-1/index.html", "events/2024-06-19-abschlussveranstaltung/index.html"):
        file = out / name
        page.goto(file.as_uri())
        assert page.evaluate(CONTRAST_JS) == [], file
        page.emulate_media(media="print")
        assert page.evaluate("getComputedStyle(document.querySelector('header.site nav')).display") == "none"
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.emulate_media(media="screen")
    assert page.pdf()[:4] == b"%PDF"  # it prints
    page.close()


WIDE_TABLE = """
## Förderprogramme im Überblick

| Programm | Träger | Förderhöhe | Antragsfrist | Ansprechpartner |
|---|---|---|---|---|
| Kleinprojektefonds | Auswärtiges Amt | bis 25.000 Euro | 31.01.2027 | Servicestelle Kommunen |
| Partnerschaftsanbahnung | Engagement Global | Fahrtkostenzuschuss | 15.03.2027 | Netzwerkstelle Städte |
| Wiederaufbauprojekte | Staatskanzlei NRW | Personalkostenförderung | 30.06.2027 | Auslandsgesellschaft |
"""

CONTENT_CELLS = "table:not([role=presentation]) td, table:not([role=presentation]) th"  # not MJML's layout tables

# For every cell of a content table: the words whose characters do not all sit on one line.
SPLIT_WORDS_JS = """
(selector) => {
  const split = [];
  for (const cell of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const word of node.data.matchAll(/[^\\s\\-–\\/]+/g)) {
        const tops = new Set();
        for (let i = word.index; i < word.index + word[0].length; i++) {
          const range = document.createRange();
          range.setStart(node, i); range.setEnd(node, i + 1);
          const rect = range.getBoundingClientRect();
          if (rect.width > 0) tops.add(Math.round(rect.top));
        }
        if (tops.size > 1) split.push(word[0]);
      }
    }
  }
  return split;
}
"""


@pytest.fixture(scope="module")
def built_with_wide_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil

    from reallabor_mail.publish.build import build

    from ..conftest import TEMPLATES, TODAY

    content = tmp_path_factory.mktemp("wide") / "content"
    shutil.copytree(SAMPLE_CONTENT, content)
    issue = content / "newsletters" / "2024-1.md"
    issue.write_text(issue.read_text(encoding="utf-8") + WIDE_TABLE, encoding="utf-8")
    out = content.parent / "build"
    build(content, TEMPLATES, out, today=TODAY)
    return out


@pytest.mark.browser
@pytest.mark.parametrize("width", [600, 375])
def test_no_word_in_a_table_cell_is_split(built_with_wide_table: Path, chromium: Any, width: int) -> None:
    """Email and web page: "Förderh|öhe" or "31.01.2|027" never; the table scrolls in its box or stacks."""
    page = chromium.new_page(viewport={"width": width, "height": 900})
    for name in ("newsletters/2024-1/email.html", "newsletters/2024-1/index.html", "newsletters/2023-3/email.html",
                 "newsletters/2023-3/index.uk.html"):  # fmt: skip
        page.goto((built_with_wide_table / name).as_uri())
        assert page.evaluate(f"document.querySelectorAll('{CONTENT_CELLS}').length") >= 12, name
        assert page.evaluate(SPLIT_WORDS_JS, CONTENT_CELLS) == [], f"{name} at {width} px"
        assert page.evaluate("document.documentElement.scrollWidth") <= width, f"{name} at {width} px"
    page.close()
