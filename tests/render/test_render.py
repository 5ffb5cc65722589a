"""The rendered emails and pages: structure, accessibility, text part, size, determinism."""

from __future__ import annotations

import datetime as dt
import re
from email import message_from_bytes, policy
from html.parser import HTMLParser
from pathlib import Path

import pytest

from reallabor_mail.content.loader import load_content
from reallabor_mail.content.markdown import deceptive_links
from reallabor_mail.errors import ContentError
from reallabor_mail.i18n.words import date_line
from reallabor_mail.publish.build import build
from reallabor_mail.render.engine import GREETING_MARK, UNSUBSCRIBE_MARK, Renderer
from reallabor_mail.render.site import SitePages

from ..conftest import SAMPLE_CONTENT, TEMPLATES, TODAY


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(html)
    return parser.tags


def test_every_contract_file_is_written(built_site: Path) -> None:
    for name in ("index.html", "feed.xml", "images/austausch-2023-09.png"):
        assert (built_site / name).is_file(), name
    for name in (
        "index.html",
        "email.html",
        "email.txt",
        "preview.eml",
        "email.uk.html",
        "email.uk.txt",
        "preview.uk.eml",
        "index.uk.html",
    ):
        assert (built_site / "newsletters" / "2023-3" / name).is_file(), name
    for name in ("index.html", "invitation.html", "invitation.txt", "preview.eml"):
        assert (built_site / "events" / "2023-09-19-kollegialer-austausch" / name).is_file(), name


def test_email_html_is_inlined_accessible_and_offline(built_site: Path) -> None:
    html = (built_site / "newsletters" / "2023-3" / "email.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert '<html lang="de"' in html
    assert "@media" in html  # responsive rules stay in <style>
    assert "googleapis" not in html and "<link" not in html  # nothing fetched from the network
    assert "<mj-" not in html and GREETING_MARK not in html and UNSUBSCRIBE_MARK not in html
    parsed = tags(html)
    layout_tables = [a for t, a in parsed if t == "table" and "cellpadding" in a]  # MJML's, not Markdown's
    assert layout_tables and all(a.get("role") == "presentation" for a in layout_tables)
    assert all(a.get("alt") for t, a in parsed if t == "img")
    headings = [t for t, _ in parsed if t in ("h1", "h2", "h3")]
    assert headings[0] == "h1" and headings.count("h2") >= 5
    # CSS was inlined: paragraphs of the body carry their style
    assert re.search(r'<h2 style="[^"]*color:#0b3d6e', html)
    assert "Sehr geehrte Frau Dr. Beispiel," in html
    assert "Impressum" in html and "Datenschutz" in html and "Von „Newsletter (vierteljährlich)“ abmelden" in html
    assert "Im Browser ansehen" in html
    assert len(html.encode()) < 80 * 1024


def test_ukrainian_version_uses_its_language(built_site: Path) -> None:
    html = (built_site / "newsletters" / "2023-3" / "email.uk.html").read_text(encoding="utf-8")
    assert '<html lang="uk"' in html
    assert "Шановна пані Олено," in html and "Відписатися від «Розсилка (щоквартально)»" in html
    text = (built_site / "newsletters" / "2023-3" / "email.uk.txt").read_text(encoding="utf-8")
    assert text.startswith("Шановна пані Олено,\n\n")


def test_text_part_starts_with_greeting_then_the_intro(built_site: Path) -> None:
    text = (built_site / "newsletters" / "2023-3" / "email.txt").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "Sehr geehrte Frau Dr. Beispiel,"
    assert lines[1] == ""
    assert lines[2].startswith("Etwa die Hälfte der Kommunen")
    assert re.search(r"^Partnerschaftsanbahnung – der Trend hält an\n=+$", text, re.M)
    assert re.search(r"^\[1\] https://", text, re.M)  # numbered link references
    assert "Impressum: https://staedtepartnerschaftennrw.org/impressum" in text
    assert "<" not in text.replace("<->", "")  # no HTML leaked into the text part
    assert max(len(line) for line in text.splitlines() if "://" not in line and " · " not in line) <= 78


def test_upcoming_events_are_listed_with_both_zones(built_site: Path) -> None:
    text = (built_site / "newsletters" / "2023-3" / "email.txt").read_text(encoding="utf-8")
    assert "Termine\n=======" in text
    assert "Donnerstag, 26. Oktober 2023, 14:00–16:00 Uhr (Berlin) · 15:00–17:00 (Київ)" in text
    assert "2023-09-19" not in text.split("Termine\n=======", 1)[1]  # only events after the issue's date


def listed_events(content: Path, stem: str) -> list[str]:
    loaded = load_content(content)
    issue = next(n for n in loaded.newsletters if n.stem == stem)
    return [e.stem for e in Renderer(loaded, TEMPLATES).upcoming(issue)]


def test_termine_end_at_the_next_issue_or_after_120_days() -> None:
    # 3/2023 of 5 Oct 2023: 120 days reach 2 Feb 2024, before the next issue (15 Feb 2024)
    assert listed_events(SAMPLE_CONTENT, "2023-3") == [
        "2023-10-26-kommunale-unternehmen", "2023-11-08-konferenz-kommunale-aussenpolitik",
        "2023-11-30-kollegialer-austausch", "2024-01-23-ferien-vom-krieg",
    ]  # fmt: skip


def test_termine_window_is_set_per_issue_and_capped(content_copy: Path) -> None:
    issue = content_copy / "newsletters" / "2023-3.md"
    text = issue.read_text(encoding="utf-8")
    issue.write_text(text.replace("upcoming_events: true", "upcoming_events: true\nupcoming_days: 40"), "utf-8")
    assert listed_events(content_copy, "2023-3") == [
        "2023-10-26-kommunale-unternehmen", "2023-11-08-konferenz-kommunale-aussenpolitik",
    ]  # fmt: skip
    issue.write_text(text.replace("upcoming_events: true", "upcoming_events: true\nupcoming_days: 366"), "utf-8")
    assert len(listed_events(content_copy, "2023-3")) == 8


def test_termine_link_to_all_events(built_site: Path) -> None:
    archive = f"{load_content(SAMPLE_CONTENT).site.public_url}/#kommende"
    text = (built_site / "newsletters" / "2023-3" / "email.txt").read_text(encoding="utf-8")
    assert f"Alle kommenden Termine im Archiv: {archive}" in text
    for name in ("email.html", "index.html"):
        html = (built_site / "newsletters" / "2023-3" / name).read_text(encoding="utf-8")
        assert f'href="{archive}"' in html, name


def test_files_opened_from_disk_show_the_built_images_and_what_is_sent_stays_absolute(built_site: Path) -> None:
    public = load_content(SAMPLE_CONTENT).site.public_url
    folder = built_site / "newsletters" / "2023-3"
    for name in ("email.html", "index.html", "email.uk.html", "index.uk.html"):
        sources = [a["src"] for t, a in tags((folder / name).read_text(encoding="utf-8")) if t == "img"]
        assert sources == ["../../images/austausch-2023-09.png"], name
        assert all((folder / str(src)).resolve().is_file() for src in sources)
    sent = message_from_bytes((folder / "preview.eml").read_bytes(), policy=policy.default)
    html = sent.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert f'src="{public}/images/austausch-2023-09.png"' in html and 'src="../' not in html


def all_built_html(out: Path) -> list[Path]:
    return sorted(out.rglob("*.html"))


def test_no_relative_address_reaches_any_email_or_page(built_site: Path) -> None:
    for file in all_built_html(built_site):
        for tag, attrs in tags(file.read_text(encoding="utf-8")):
            href = attrs.get("href")
            if href is not None:
                assert href.startswith(("https://", "mailto:", "#")), f"{file}: <{tag} href={href!r}>"
            if tag == "img":
                assert str(attrs.get("src", "")).startswith("../"), file  # the build's own images/


def test_no_link_text_names_another_domain(built_site: Path) -> None:
    for file in all_built_html(built_site):
        assert deceptive_links(file.read_text(encoding="utf-8")) == [], file


def test_preview_eml_is_a_complete_message(built_site: Path) -> None:
    raw = (built_site / "newsletters" / "2023-3" / "preview.eml").read_bytes()
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert raw.isascii()
    msg = message_from_bytes(raw, policy=policy.default)
    assert msg["Subject"] == "Reallabor Ukraine – Newsletter 3/2023"
    assert msg["To"] == "Beate Beispiel <beate.beispiel@example.org>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Content-Language"] == "de"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg.get_body(("plain",)).get_content().startswith("Sehr geehrte Frau Dr. Beispiel,")


def test_invitation_shows_time_place_and_registration(built_site: Path) -> None:
    text = (built_site / "events" / "2023-09-19-kollegialer-austausch" / "invitation.txt").read_text(encoding="utf-8")
    assert "Wann: Dienstag, 19. September 2023, 14:00–15:30 Uhr (Berlin) · 15:00–16:30 (Київ)" in text
    assert "Zugangslink: https://us02web.zoom.us/j/86240913785" in text
    assert "Anmeldeschluss: Freitag, 15. September 2023" in text


def test_web_pages_link_translations_and_archive(built_site: Path) -> None:
    page = (built_site / "newsletters" / "2023-3" / "index.html").read_text(encoding="utf-8")
    assert '<html lang="de">' in page and 'hreflang="uk"' in page and "<main" in page
    index = (built_site / "index.html").read_text(encoding="utf-8")
    assert index.index("Newsletter 1/2024") < index.index("Newsletter 3/2023")  # newest first


def test_build_is_deterministic(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    build(SAMPLE_CONTENT, TEMPLATES, first, today=TODAY)
    build(SAMPLE_CONTENT, TEMPLATES, second, today=TODAY)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel


def test_oversized_email_warns_and_fails_strict(content_copy: Path, tmp_path: Path) -> None:
    newsletter = content_copy / "newsletters" / "2024-1.md"
    filler = "\n\n".join(f"Absatz {i}: " + "Partnerschaft mit der Ukraine. " * 20 for i in range(150))
    newsletter.write_text(newsletter.read_text(encoding="utf-8") + "\n\n## Anhang\n\n" + filler, encoding="utf-8")
    result = build(content_copy, TEMPLATES, tmp_path / "out", today=TODAY)
    assert any("Gmail clips" in str(w) and "2024-1.md" in str(w) for w in result.warnings)
    with pytest.raises(ContentError):
        build(content_copy, TEMPLATES, tmp_path / "strict", strict=True, today=TODAY)


def test_personalise_escapes_html() -> None:
    content = load_content(SAMPLE_CONTENT)
    email = Renderer(content, TEMPLATES).newsletter_email(content.newsletters[0], "de")
    html, text = email.personalise("Guten Tag <b>Kim</b> & Co,", "https://x.example/u?a=1&b=2")
    assert "Guten Tag &lt;b&gt;Kim&lt;/b&gt; &amp; Co," in html
    assert 'href="https://x.example/u?a=1&amp;b=2"' in html
    assert "Guten Tag <b>Kim</b> & Co," in text


def test_atom_feed_lists_newsletters() -> None:
    import xml.etree.ElementTree as ET

    content = load_content(SAMPLE_CONTENT)
    feed = SitePages(Renderer(content, TEMPLATES), TODAY).atom_feed()
    root = ET.fromstring(feed)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    titles = [e.findtext("a:title", namespaces=ns) for e in root.findall("a:entry", ns)]
    assert titles == [  # newest first; the reports of events over by TODAY among them
        "Reallabor Ukraine – Newsletter 1/2024",
        "Reallabor Ukraine – Newsletter 3/2023",
        "Bericht: 2. Kollegialer Austausch zwischen NRW-Kommunen und -Kreisen mit ukrainischer Partnerschaft",
        "Bericht: Auftaktveranstaltung des Reallabors Kommunaler Aufbaupartnerschaften NRW – Ukraine",
    ]
    content_el = root.find("a:entry/a:content", ns)
    assert content_el is not None and content_el.text and "<h2>" in content_el.text


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        # Berlin and Kyiv switch at the same instant (01:00 UTC), the offset stays one hour
        ((2026, 3, 29, 1, 0), (2026, 3, 29, 4, 0), "01:00–04:00 Uhr (Berlin) · 02:00–05:00 (Київ)"),
        ((2026, 10, 25, 1, 0), (2026, 10, 25, 4, 0), "01:00–04:00 Uhr (Berlin) · 02:00–05:00 (Київ)"),
        ((2023, 9, 19, 23, 30), (2023, 9, 19, 23, 45), "23:30–23:45 Uhr (Berlin) · 20.9. 00:30–00:45 (Київ)"),
    ],
)
def test_date_line_across_dst(start: tuple[int, ...], end: tuple[int, ...], expected: str) -> None:
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    line = date_line(dt.datetime(*start, tzinfo=berlin), dt.datetime(*end, tzinfo=berlin), "Europe/Kyiv", "de")
    assert line.endswith(expected)


def test_date_line_languages() -> None:
    from zoneinfo import ZoneInfo

    s = dt.datetime(2023, 9, 19, 14, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    e = s.replace(hour=15, minute=30)
    assert date_line(s, e, "Europe/Kyiv", "de") == (
        "Dienstag, 19. September 2023, 14:00–15:30 Uhr (Berlin) · 15:00–16:30 (Київ)"
    )
    assert (
        date_line(s, e, "Europe/Kyiv", "uk")
        == "вівторок, 19 вересня 2023 р., 14:00–15:30 (Берлін) · 15:00–16:30 (Київ)"
    )
    assert (
        date_line(s, e, "Europe/Kyiv", "en") == "Tuesday, 19 September 2023, 14:00–15:30 (Berlin) · 15:00–16:30 (Kyiv)"
    )


def test_html_sanitising_reaches_the_email(content_copy: Path, tmp_path: Path) -> None:
    event = content_copy / "events" / "2023-09-19-kollegialer-austausch.md"
    event.write_text(
        event.read_text(encoding="utf-8")
        + '\n<script>alert(1)</script><a href="https://example.org/" onclick="y">z</a>\n'
        + '<img src="images/portraits-2024.png" alt="Porträts" onerror="javascript:x">\n'
    )
    out = tmp_path / "out"
    build(content_copy, TEMPLATES, out, today=TODAY)
    for name in ("invitation.html", "index.html"):
        html = (out / "events" / "2023-09-19-kollegialer-austausch" / name).read_text(encoding="utf-8").lower()
        assert "<script>alert" not in html and "javascript:" not in html and "onclick" not in html


def test_a_link_without_scheme_stops_the_build_and_never_reaches_output(content_copy: Path, tmp_path: Path) -> None:
    issue = content_copy / "newsletters" / "2023-3.md"
    issue.write_text(issue.read_text(encoding="utf-8") + "\nMehr beim [PAD](www.kmk-pad.org).\n", "utf-8")
    with pytest.raises(ContentError) as info:
        build(content_copy, TEMPLATES, tmp_path / "out", today=TODAY)
    assert [p.code for p in info.value.problems if "www.kmk-pad.org" in p.message] == ["RLM207"]
    assert not (tmp_path / "out").exists()


def test_the_unsubscribe_link_names_the_list_the_mail_went_to(built_site: Path) -> None:
    """An invitation to the reallabor list does not offer to leave "the newsletter" (issue 13)."""
    invitation = (built_site / "events/2024-06-19-abschlussveranstaltung/invitation.txt").read_text(encoding="utf-8")
    newsletter = (built_site / "newsletters/2023-3/email.txt").read_text(encoding="utf-8")
    assert "Von „Einladungen zum Reallabor Ukraine“ abmelden" in invitation
    assert "Vom Newsletter abmelden" not in invitation
    assert "Von „Newsletter (vierteljährlich)“ abmelden" in newsletter
