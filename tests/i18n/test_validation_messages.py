"""Validation errors from the content models read as our sentences in the staff language, never pydantic's English."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reallabor_mail.content.loader import load_content
from reallabor_mail.errors import ContentError
from reallabor_mail.i18n.languages import Language
from reallabor_mail.i18n.messages import activate_staff_language

BROKEN_EVENT = """---
title: "Kollegialer Austausch"
start: 2023-09-19 14:00
end: 2023-09-19 15:30
format: webinar
online_url: "www.zoom.us/j/1"
registration: {email: "anmeldung(at)example.org", deadline: 2023-13-45}
lists: [Reallabor]
ort: Dortmund
---
Beschreibung.
"""


@pytest.fixture
def staff_language(request: pytest.FixtureRequest) -> Iterator[Language]:
    language: Language = request.param
    activate_staff_language(language)
    yield language
    activate_staff_language("en")  # what tests/conftest.py sets for every other test


def messages(content: Path) -> list[str]:
    (content / "events" / "2030-01-01-kaputt.md").write_text(BROKEN_EVENT, encoding="utf-8")
    newsletter = content / "newsletters" / "2023-3.md"
    text = newsletter.read_text(encoding="utf-8").replace('title: "Reallabor Ukraine – Newsletter 3/2023"\n', "")
    newsletter.write_text(text.replace("upcoming_events: true", "upcoming_events: vielleicht"), encoding="utf-8")
    with pytest.raises(ContentError) as info:
        load_content(content)
    return [p.message for p in info.value.problems]


EXPECTED = {
    "de": [
        "„format“: „webinar“ ist nicht erlaubt; möglich sind: online, in_person, hybrid",
        "„online_url“: keine Webadresse; geben Sie sie vollständig an, beginnend mit https://",
        "„registration.email“: „anmeldung(at)example.org“ ist keine Adresse, an die sich Mails senden "
        "lassen; geben Sie sie in der Form name@example.org an",
        "„registration.deadline“: kein Datum; schreiben Sie Daten als JJJJ-MM-TT, z. B. 2023-10-05",
        "„lists“: „Reallabor“ ist kein Verteilername; erlaubt sind Kleinbuchstaben, Ziffern, „-“ und „_“, "
        "z. B. newsletter",
        "unbekannter Schlüssel „ort“; erlaubt sind: title, kind, timezone, start, end, format, location, online_url, "
        "registration, status, lists, reminder",
        "der Pflichtschlüssel „title“ fehlt; ergänzen Sie ihn im Vorspann (Front Matter)",
        "„upcoming_events“: schreiben Sie true oder false",
    ],
    "en": [
        "'format': 'webinar' is not allowed; write one of: online, in_person, hybrid",
        "'online_url': not a web address; write it in full, starting with https://",
        "'registration.email': 'anmeldung(at)example.org' is not an address mail can be sent to; write it as "
        "name@example.org",
        "'registration.deadline': not a date; write dates as YYYY-MM-DD, e.g. 2023-10-05",
        "'lists': 'Reallabor' is not a list name; use lower-case letters, digits, '-' and '_', e.g. newsletter",
        "unknown key 'ort'; allowed keys are: title, kind, timezone, start, end, format, location, online_url, "
        "registration, status, lists, reminder",
        "missing required key 'title'; add it to the front matter",
        "'upcoming_events': write true or false",
    ],
}


@pytest.mark.parametrize("staff_language", ["de", "en"], indirect=True)
def test_validation_errors_are_our_sentences_in_the_staff_language(
    content_copy: Path, staff_language: Language
) -> None:
    found = messages(content_copy)
    for expected in EXPECTED[staff_language]:
        assert expected in found, found
    assert not [m for m in found if "Input should" in m or "Field required" in m or "valid" in m.split(": ")[0]]
