"""Reports (content/reports/<event-stem>.md) are validated like everything else, and a newsletter's
Rückblick takes exactly the reports dated after the previous issue, up to its own date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from reallabor_mail.content.loader import load_content
from reallabor_mail.render.engine import Renderer
from reallabor_mail.render.reports import opening_sentence

from ..conftest import TEMPLATES
from ..i18n.test_staff_language import check
from ..test_content_errors import only, problems_for

STEM = "2023-09-19-kollegialer-austausch"  # a sample event: 19.09.2023, 14:00–15:30


def write_report(content: Path, stem: str = STEM, *, date: str = "2023-09-27", extra: str = "", body: str = "") -> Path:
    path = content / "reports" / f"{stem}.md"
    path.parent.mkdir(exist_ok=True)
    text = f'---\ntitle: "Bericht: Austausch"\ndate: {date}\nauthor: "Netzwerkstelle"\n{extra}---\n'
    path.write_text(text + (body or "Die Runde war gut besucht. Mehr dazu unten.\n"), encoding="utf-8")
    return path


def test_a_report_for_no_event_is_an_error_naming_the_file(content_copy: Path) -> None:
    write_report(content_copy, "2023-09-20-kollegialer-austausch")
    message = only(problems_for(content_copy), "to report on")
    stem = "2023-09-20-kollegialer-austausch"
    assert message.startswith(f"content/reports/{stem}.md: no event '{stem}'")
    assert "events/2023-09-20-kollegialer-austausch.md" in message and message.endswith("[RLM130]")


def test_a_report_dated_before_the_event_ended_is_an_error_at_the_date_line(content_copy: Path) -> None:
    (content_copy / "reports" / f"{STEM}.md").unlink()
    write_report(content_copy, date="2023-09-18")
    message = only(problems_for(content_copy), "before the event ended")
    assert message.startswith(f"content/reports/{STEM}.md:3: 'date': 2023-09-18 is before the event ended (2023-09-19)")
    assert message.endswith("[RLM131]")


def test_a_report_on_the_day_of_the_event_is_fine(content_copy: Path) -> None:
    (content_copy / "reports" / f"{STEM}.md").unlink()
    write_report(content_copy, date="2023-09-19")
    content = load_content(content_copy)
    assert [r.meta.date for r in content.reports if r.stem == STEM] == [dt.date(2023, 9, 19)]


def test_the_date_error_is_in_the_staff_language(content_copy: Path) -> None:
    (content_copy / "reports" / f"{STEM}.md").unlink()
    write_report(content_copy, date="2023-09-18")
    result = check(content_copy, REALLABOR_LANG="de")
    assert result.returncode == 1
    assert f"reports/{STEM}.md:3: „date“: 2023-09-18 liegt vor dem Ende der Veranstaltung (2023-09-19)" in result.stderr


def test_a_photo_without_alt_text_is_an_error_at_the_photos_line(content_copy: Path) -> None:
    (content_copy / "reports" / f"{STEM}.md").unlink()
    write_report(content_copy, extra="photos:\n  - path: images/austausch-2023-09.png\n    credit: Netzwerkstelle\n")
    message = only(problems_for(content_copy), "'photos.alt'")
    assert message.startswith(f"content/reports/{STEM}.md:5: missing required key 'photos.alt'")


def test_a_photo_that_is_not_there_is_an_error(content_copy: Path) -> None:
    (content_copy / "reports" / f"{STEM}.md").unlink()
    write_report(content_copy, extra='photos:\n  - path: images/fehlt.png\n    alt: "Die Runde"\n')
    message = only(problems_for(content_copy), "fehlt.png")
    assert message.startswith(f"content/reports/{STEM}.md:5:") and message.endswith("[RLM204]")


def test_an_unknown_key_in_a_report_lists_the_allowed_ones(content_copy: Path) -> None:
    (content_copy / "reports" / f"{STEM}.md").unlink()
    write_report(content_copy, extra="ort: Dortmund\n")
    message = only(problems_for(content_copy), "unknown key 'ort'")
    assert "allowed keys are: title, date, author, photos" in message


# --- the Rückblick window ---------------------------------------------------------------------------------


def newsletter(content: Path, stem: str, date: str, review: bool = True) -> None:
    text = f'---\ntitle: "Newsletter {stem}"\ndate: {date}\npreheader: "Neues"\nreview: {str(review).lower()}\n---\n'
    (content / "newsletters" / f"{stem}.md").write_text(text + "Einleitung.\n", encoding="utf-8")


@pytest.fixture
def windowed(content_copy: Path) -> Path:
    """Issues on 2023-10-05 (2023-3, the sample) and 2023-12-01; reports on and around both dates."""
    for path in (content_copy / "reports").glob("*.md"):
        path.unlink()
    for file in (content_copy / "newsletters").glob("2024-*.md"):
        file.unlink()
    newsletter(content_copy, "2023-4", "2023-12-01")
    write_report(content_copy, "2023-03-29-auftaktveranstaltung", date="2023-04-05")  # before the first issue
    write_report(content_copy, "2023-08-23-resilienz-in-krisenzeiten", date="2023-10-05")  # on the first issue's day
    write_report(content_copy, "2023-09-19-kollegialer-austausch", date="2023-10-06")  # the day after it
    write_report(content_copy, "2023-10-26-kommunale-unternehmen", date="2023-12-01")  # on the second issue's day
    write_report(content_copy, "2023-11-30-kollegialer-austausch", date="2023-12-02")  # after the last issue
    return content_copy


def test_the_review_takes_reports_after_the_previous_issue_up_to_this_one(windowed: Path) -> None:
    content = load_content(windowed)
    issues = {n.stem: n for n in content.newsletters}
    first = [r.stem for r in content.review(issues["2023-3"])]
    second = [r.stem for r in content.review(issues["2023-4"])]
    # the first issue looks back to the start
    assert first == ["2023-03-29-auftaktveranstaltung", "2023-08-23-resilienz-in-krisenzeiten"]
    assert second == ["2023-09-19-kollegialer-austausch", "2023-10-26-kommunale-unternehmen"]
    # the report after the last issue waits for the next one


def test_the_review_is_in_email_html_text_and_web_version_beside_the_termine(windowed: Path) -> None:
    content = load_content(windowed)
    item = next(n for n in content.newsletters if n.stem == "2023-4")
    renderer = Renderer(content, TEMPLATES)
    email = renderer.newsletter_email(item, "de")
    for rendered in (email.html, email.text):
        assert "Rückblick" in rendered
        assert rendered.count("Bericht: Austausch") == 2
        assert "Die Runde war gut besucht." in rendered and "Mehr dazu unten." not in rendered  # the first sentence
        assert f"{content.site.public_url}/events/2023-09-19-kollegialer-austausch/" in rendered
    from reallabor_mail.render.site import SitePages

    page = SitePages(renderer, dt.date(2024, 1, 1)).newsletter_page(item, "de")
    assert 'id="rueckblick"' in page and page.count("Bericht: Austausch") == 2


def test_without_review_there_is_no_rueckblick(windowed: Path) -> None:
    newsletter(windowed, "2023-4", "2023-12-01", review=False)
    content = load_content(windowed)
    item = next(n for n in content.newsletters if n.stem == "2023-4")
    email = Renderer(content, TEMPLATES).newsletter_email(item, "de")
    assert "Rückblick" not in email.text and "Bericht: Austausch" not in email.html


@pytest.mark.parametrize(
    ("text", "sentence"),
    [
        ("Am 8. November kamen z. B. Kommunen zusammen. Danach mehr.", "Am 8. November kamen z. B. Kommunen zusammen."),
        ("Nur ein Satz ohne Ende", "Nur ein Satz ohne Ende"),
        ("Eine Frage? Eine Antwort.", "Eine Frage?"),
        ("Mit Link [1] im Satz. Zweiter.", "Mit Link im Satz."),
    ],
)
def test_the_opening_sentence(text: str, sentence: str) -> None:
    assert opening_sentence(text) == sentence
