"""A past event's page shows its report; the archive lists reports and the feed carries them; ``build``
prints every report page as an A4 PDF beside it, read back with poppler (pdfinfo, pdftotext, pdftoppm)."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

from reallabor_mail.content.loader import load_content
from reallabor_mail.render.engine import Renderer
from reallabor_mail.render.site import SitePages

from ..conftest import SAMPLE_CONTENT, TEMPLATES, TODAY

REPORTED = "2023-09-19-kollegialer-austausch"  # ended 19.09.2023, its report dated 27.09.2023
UNREPORTED = "2023-06-21-kollegialer-austausch"  # long over, no report
REPORT_TITLE = "Bericht: 2. Kollegialer Austausch zwischen NRW-Kommunen und -Kreisen mit ukrainischer Partnerschaft"
ATOM = "{http://www.w3.org/2005/Atom}"
poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")


def event_page(stem: str, today: dt.date, language: str = "de") -> str:
    content = load_content(SAMPLE_CONTENT)
    event = next(e for e in content.events if e.stem == stem)
    return SitePages(Renderer(content, TEMPLATES), today).event_page(event, language)  # type: ignore[arg-type]


def test_before_the_event_its_page_invites() -> None:
    page = event_page(REPORTED, dt.date(2023, 9, 19))  # the day itself: not over yet
    assert "Anmeldung" in page and "mailto:becker@auslandsgesellschaft.de" in page
    assert "calendar.google.com" in page or "outlook" in page  # the add-to-calendar links
    assert REPORT_TITLE not in page


def test_after_the_event_its_page_shows_the_report_with_the_facts_kept_small() -> None:
    page = event_page(REPORTED, dt.date(2023, 9, 20))
    assert f'<h1 id="bericht">{REPORT_TITLE}</h1>' in page
    assert 'class="facts small"' in page and "Dienstag, 19. September 2023, 14:00–15:30 Uhr" in page
    assert "Etwa die Hälfte der Teilnehmenden" in page  # the report's body
    assert 'alt="Bildschirmansicht der Online-Runde' in page and "Foto: Netzwerkstelle Städtepartnerschaften" in page
    assert "Anmeldung" not in page and "mailto:becker@auslandsgesellschaft.de" not in page  # no registration
    assert "calendar.google.com" not in page and "event.ics" not in page  # no "add to calendar"
    assert "Ablauf:" not in page  # the invitation's text is gone
    assert f'href="https://newsletter.staedtepartnerschaftennrw.org/events/{REPORTED}/report.pdf"' in page


def test_a_past_event_without_report_says_so_plainly() -> None:
    page = event_page(UNREPORTED, TODAY)
    assert "Diese Veranstaltung hat bereits stattgefunden. Ein Bericht liegt noch nicht vor." in page
    assert ">Anmeldung<" not in page and "calendar.google.com" not in page  # no registration row, no calendar links
    assert "Im Wechsel mit unseren Informationsveranstaltungen" in page  # what it was about stays below
    assert "Mittwoch, 21. Juni 2023" in page  # the facts stay


def test_the_page_in_ukrainian_words_the_report_in_ukrainian() -> None:
    page = event_page(REPORTED, TODAY, "uk")
    assert "Звіт" in page and "Захід" in page and REPORT_TITLE in page  # the German report, Ukrainian frame


def test_the_archive_has_a_berichte_section_with_only_published_reports(built_site: Path) -> None:
    index = (built_site / "index.html").read_text(encoding="utf-8")
    section = index[index.index('<h2 id="berichte">') : index.index("</section>", index.index('id="berichte"'))]
    assert "Berichte" in section and REPORT_TITLE in section
    assert "Auftaktveranstaltung des Reallabors" in section
    assert "Konferenz „Kommunale Außenpolitik" not in section  # its event (08.11.2023) is still ahead on TODAY
    assert section.index(REPORT_TITLE) < section.index("Auftaktveranstaltung des Reallabors")  # newest first


def test_the_feed_carries_the_published_reports(built_site: Path) -> None:
    feed = ET.parse(built_site / "feed.xml").getroot()
    entries = {e.findtext(f"{ATOM}title"): e for e in feed.iter(f"{ATOM}entry")}
    report = entries[REPORT_TITLE]
    assert report.findtext(f"{ATOM}id", "").endswith("/events/2023-09-19-kollegialer-austausch/")
    assert report.findtext(f"{ATOM}summary", "").startswith("Etwa die Hälfte der Teilnehmenden")
    assert not any(title and title.startswith("Bericht: Konferenz") for title in entries)
    updated = [e.findtext(f"{ATOM}updated", "") for e in feed.iter(f"{ATOM}entry")]
    assert updated == sorted(updated, reverse=True)


# --- the printed report -------------------------------------------------------------------------------


def pdfinfo(path: Path) -> dict[str, str]:
    out = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    return {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in out.splitlines())}


def pdftext(path: Path, *pages: str) -> str:
    """The text of a PDF in reading order, on one line."""
    out = subprocess.run(["pdftotext", *pages, str(path), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(out.split())


def squashed(text: str) -> str:
    """Text without spaces and hyphens: pdftotext drops the hyphen where a line breaks after one."""
    return re.sub(r"[\s-]", "", text)


@poppler
def test_build_prints_each_published_report_as_a4_beside_its_page(built_site: Path) -> None:
    pdfs = sorted(p.relative_to(built_site).as_posix() for p in built_site.glob("events/*/report*.pdf"))
    assert pdfs == [
        "events/2023-03-29-auftaktveranstaltung/report.pdf",
        "events/2023-09-19-kollegialer-austausch/report.pdf",
    ]  # the conference's report waits until its event is over
    pdf = built_site / "events" / REPORTED / "report.pdf"
    info = pdfinfo(pdf)
    assert "(A4)" in info["Page size"] and 2 <= int(info["Pages"]) <= 3
    text = pdftext(pdf)
    assert squashed(REPORT_TITLE) in squashed(text) and "Etwa die Hälfte der Teilnehmenden" in text
    pages = int(info["Pages"])
    assert text.count("Gefördert von der Staatskanzlei des Landes Nordrhein-Westfalen") >= pages  # on every page
    assert all(f"{n}/{pages}" in squashed(text) for n in range(1, pages + 1))  # page numbers
    assert "Zum Inhalt springen" not in text and "Archiv ·" not in text  # no navigation
    assert "Als PDF" not in text and "zum Drucken (A4)" not in text  # the screen-only link


@poppler
def test_the_printed_page_keeps_its_margins_and_shows_the_photo(built_site: Path, tmp_path: Path) -> None:
    """The first page rendered to a picture: white margins all round, text and photo inside them."""
    pdf = built_site / "events" / REPORTED / "report.pdf"
    subprocess.run(["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")], check=True)
    page = Image.open(next(tmp_path.glob("page*.png"))).convert("L")
    width, height = page.size
    assert abs(width / height - 210 / 297) < 0.01  # A4 portrait
    mm = width / 210

    def inked(box: tuple[float, float, float, float]) -> int:
        region = page.crop(tuple(round(v) for v in box))  # type: ignore[arg-type]
        return sum(region.histogram()[:200])  # pixels darker than light grey

    assert inked((0, 0, 15 * mm, height)) == 0  # left margin (18 mm)
    assert inked((width - 15 * mm, 0, width, height)) == 0  # right margin
    assert inked((0, 0, width, 15 * mm)) == 0  # top margin (18 mm)
    assert inked((18 * mm, 20 * mm, width - 18 * mm, 100 * mm)) > 500  # the heading and facts are there
    # the photo (dark blue tiles) sits inside the text block
    pixels = page.load()
    assert pixels is not None
    dark = [(x, y) for y in range(height) for x in range(width) if pixels[x, y] < 80]  # type: ignore[operator]
    assert dark and min(x for x, _ in dark) >= 17 * mm and max(x for x, _ in dark) <= width - 17 * mm
    # the footer line (funder, page number) is in the bottom margin, below the text block
    assert inked((18 * mm, height - 18 * mm, width - 18 * mm, height - 5 * mm)) > 0


@poppler
def test_the_same_build_prints_the_same_bytes(built_site: Path, tmp_path: Path) -> None:
    from reallabor_mail.publish.build import build

    again = tmp_path / "again"
    build(SAMPLE_CONTENT, TEMPLATES, again, today=TODAY)
    name = f"events/{REPORTED}/report.pdf"
    assert (again / name).read_bytes() == (built_site / name).read_bytes()
    # dated with the report's date, not the clock
    assert pdfinfo(again / name)["CreationDate"].startswith("Wed Sep 27 00:00:00 2023")
