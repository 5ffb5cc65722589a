"""The invitation's calendar part is serialised once per language and stamped per recipient (issue 16).

The stamped calendar must be the one icalendar writes for that recipient: both are parsed and compared
(every property and parameter of every component), and for good measure compared as bytes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import icalendar
import pytest

from reallabor_mail.content.loader import load_content
from reallabor_mail.render import ics as calendar

from .test_calendar import CLOSING, set_front_matter

DTSTAMP = dt.datetime(2024, 5, 20, 10, 0, 12, tzinfo=dt.UTC)
PEOPLE = [
    ("beate.beispiel@example.org", None),
    ("beate.beispiel@example.org", "Beate Beispiel"),
    ("joerg.uebel@bücher-müller.example.de", "Dr. Jörg Übel-Schäfer-Großmann von und zu Hohenlohe-Langenburg"),
    ("olena@gromada.example.ua", "Олена Коваль-Шевченко, Громада Вінниця – відділ міжнародної співпраці"),
    ("x@example.org", 'Anführungs "Zeichen", Komma; Semikolon: Doppelpunkt \\ Backslash ^ Caret'),
]


def components(ics: str) -> list[tuple[str, list[tuple[str, bytes, dict[str, str]]]]]:
    """Every component with its properties (name, value as ICS, parameters), in order."""
    parsed = icalendar.Calendar.from_ical(ics)
    out = []
    for component in parsed.walk():
        props = [
            (name, value.to_ical(), dict(value.params))
            for name, values in component.items()
            for value in (values if isinstance(values, list) else [values])
        ]
        out.append((component.name, props))
    return out


@pytest.mark.parametrize("cancelled", [False, True], ids=["request", "cancel"])
@pytest.mark.parametrize("language", ["de", "uk"])
def test_stamped_invitation_is_what_icalendar_writes_per_person(
    content_copy: Path, language: str, cancelled: bool
) -> None:
    if cancelled:
        set_front_matter(content_copy / "events" / f"{CLOSING}.md", status="cancelled")
    content = load_content(content_copy)
    event = next(e for e in content.events if e.stem == CLOSING)
    plan = calendar.preview_plan(content.site, event, DTSTAMP)
    assert plan.method == ("CANCEL" if cancelled else "REQUEST")
    for email, name in PEOPLE:
        stamped = plan.invitation(email, language=language, name=name).ics
        data = calendar.event_data(
            content.site, event, language, sequence=plan.sequence, dtstamp=plan.dtstamp,
            attendee=calendar.Attendee(email, name),
        )
        reference = calendar.ics_calendar(plan.method, [data])
        assert components(stamped) == components(reference)
        assert stamped == reference
    assert len(plan.stamps) == 1  # one serialisation for every person of this language
