"""Property tests of the ICS writer, awkward titles through every output, and the 2026 DST switches."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes, policy
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import icalendar
import vobject
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ical.calendar_stream import IcsCalendarStream

from reallabor_mail.content.loader import load_content
from reallabor_mail.content.models import EventStatus
from reallabor_mail.publish.build import render_all
from reallabor_mail.render import ics as calendar
from reallabor_mail.render.calendar_links import calendar_links

from ..conftest import TEMPLATES, TODAY
from .test_calendar import agreed, calendar_parts, event_named, fresh_vobject, part_text, set_front_matter

BERLIN = ZoneInfo("Europe/Berlin")
KYIV = ZoneInfo("Europe/Kyiv")
ORGANIZER = calendar.Attendee("becker@auslandsgesellschaft.de", "Netzwerkstelle Städtepartnerschaften")

# Text as staff paste it: any character of any script, emoji, ICS specials (, ; \ :), and the control
# characters office programs leave behind (vertical tab, form feed, CR), which iCalendar TEXT cannot
# carry (RFC 5545 3.3.11): CR and CRLF must arrive as line breaks, the others are dropped.
any_char = st.characters(blacklist_categories=("Cs",))
line = st.text(any_char, min_size=1, max_size=120)
paragraphs = st.text(any_char, max_size=600)


def as_ics_text(value: str) -> str:
    """What a TEXT value should read back as: CR/CRLF → LF, C0 controls but TAB and LF dropped, DEL dropped."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c for c in value if c in "\t\n" or not (ord(c) < 0x20 or c == "\x7f"))


def data(summary: str, text: str, location: str | None, start: dt.datetime, online: bool = False) -> calendar.EventData:
    return calendar.EventData(
        uid="test@auslandsgesellschaft.de", sequence=0, dtstamp=dt.datetime(2026, 1, 5, 8, tzinfo=dt.UTC),
        start=start, end=start + dt.timedelta(hours=2), summary=summary, description=text, location=location,
        url="https://example.org/e/", status=EventStatus.SCHEDULED, organizer=ORGANIZER, online=online,
        attendee=calendar.Attendee("olena@example.org", "Олена Прикладна"),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(summary=line, text=paragraphs, location=st.none() | line, method=st.sampled_from(["PUBLISH", "REQUEST"]))
def test_any_text_survives_three_parsers(summary: str, text: str, location: str | None, method: str) -> None:
    start = dt.datetime(2026, 3, 28, 14, 0, tzinfo=BERLIN)
    ics = calendar.ics_calendar(method, [data(summary, text, location, start)])
    parsed = agreed(ics)
    expected_location = as_ics_text(location) if location is not None else None
    assert (parsed.summary, parsed.description) == (as_ics_text(summary), as_ics_text(text))
    assert parsed.location == (expected_location or None)
    assert parsed.start == start.astimezone(dt.UTC)


@settings(max_examples=40, deadline=None)
@given(name=line)
def test_any_attendee_name_is_a_valid_parameter(name: str) -> None:
    event = data("x", "y", None, dt.datetime(2026, 5, 1, 10, tzinfo=BERLIN))
    ics = calendar.ics_calendar(
        "REQUEST", [calendar.EventData(**{**vars(event), "attendee": calendar.Attendee("a@example.org", name)})]
    )
    agreed(ics)
    attendee = icalendar.Calendar.from_ical(ics).events[0]["ATTENDEE"]
    assert str(attendee) == "mailto:a@example.org"
    # control characters, quotes, backslash and caret cannot pass through every parser alike
    spaced = "".join(" " if ord(c) < 0x20 or c in "\x7f\\^" else c for c in name)
    expected = " ".join(spaced.replace('"', "'").split())
    assert attendee.params.get("CN", "") == expected
    fresh_vobject()
    vcal = next(vobject.readComponents(ics))
    assert vcal.vevent.attendee.params.get("CN", [""]) == [expected]
    read_by_ical = IcsCalendarStream.calendar_from_ics(ics).events[0].attendees[0]
    assert (read_by_ical.common_name or "") == expected


# --- a title with everything that breaks naive code, through every output -----------------------

TITLE = 'Städte & Gemeinden: "Partnerschaft" <stark> – Громади України 🇺🇦🤝; Teil 1, Kap. 2\\3'


def test_awkward_title_survives_every_output(content_copy: Path) -> None:
    stem = "2023-11-08-konferenz-kommunale-aussenpolitik"
    set_front_matter(content_copy / "events" / f"{stem}.md", title="'" + TITLE.replace("'", "''") + "'")
    output, _ = render_all(content_copy, TEMPLATES, strict=False, today=TODAY)
    files = output.files
    assert agreed(files[PurePosixPath("events", stem, "event.ics")].decode("utf-8")).summary == TITLE
    feed = icalendar.Calendar.from_ical(files[PurePosixPath("calendar.ics")])
    assert TITLE in [str(e["SUMMARY"]) for e in feed.events]
    msg, parts = calendar_parts(files[PurePosixPath("events", stem, "preview.eml")])
    assert agreed(part_text(parts[0])).summary == TITLE
    assert msg["Subject"] == f"Einladung: {TITLE}"
    html = files[PurePosixPath("events", stem, "invitation.html")].decode("utf-8")
    assert "&lt;stark&gt;" in html and "<stark>" not in html
    text = files[PurePosixPath("events", stem, "invitation.txt")].decode("utf-8")
    assert TITLE in " ".join(text.split())  # the heading is wrapped at 72 columns
    content = load_content(content_copy)
    links = {link.label: link.url for link in calendar_links(content.site, event_named(content, stem), "de")}
    assert parse_qs(urlsplit(links["Google Kalender"]).query)["text"] == [TITLE]
    assert parse_qs(urlsplit(links["Outlook Kalender"]).query)["subject"] == [TITLE]


# --- both DST switches of 2026, in Berlin and in Kyiv --------------------------------------------

# (zone, local start, local end, date line in German): before, across and after each switch.
DST_CASES = [
    ("Europe/Berlin", "2026-03-28 14:00", "2026-03-28 15:30",
     "Samstag, 28. März 2026, 14:00–15:30 Uhr (Berlin) · 15:00–16:30 (Київ)"),
    ("Europe/Berlin", "2026-03-28 23:00", "2026-03-29 04:00",
     "Samstag, 28. März 2026, 23:00 Uhr – Sonntag, 29. März 2026, 04:00 Uhr (Berlin) · 29.3. 00:00–05:00 (Київ)"),
    ("Europe/Berlin", "2026-03-30 14:00", "2026-03-30 15:30",
     "Montag, 30. März 2026, 14:00–15:30 Uhr (Berlin) · 15:00–16:30 (Київ)"),
    ("Europe/Berlin", "2026-10-24 22:00", "2026-10-25 06:00",
     "Samstag, 24. Oktober 2026, 22:00 Uhr – Sonntag, 25. Oktober 2026, 06:00 Uhr (Berlin) · 23:00–07:00 (Київ)"),
    ("Europe/Berlin", "2026-10-26 14:00", "2026-10-26 15:30",
     "Montag, 26. Oktober 2026, 14:00–15:30 Uhr (Berlin) · 15:00–16:30 (Київ)"),
    ("Europe/Kyiv", "2026-03-29 01:00", "2026-03-29 06:00",
     "Sonntag, 29. März 2026, 01:00–06:00 Uhr (Київ)"),
    ("Europe/Kyiv", "2026-10-25 01:00", "2026-10-25 06:00",
     "Sonntag, 25. Oktober 2026, 01:00–06:00 Uhr (Київ)"),
]
# The instants, in UTC, that each case must come out as in every parser (from the tz database's rules:
# both zones switch at 01:00 UTC on 29 March and 25 October 2026).
DST_UTC = [
    ("2026-03-28 13:00", "2026-03-28 14:30"),
    ("2026-03-28 22:00", "2026-03-29 02:00"),  # four hours, not five: the clocks jumped
    ("2026-03-30 12:00", "2026-03-30 13:30"),
    ("2026-10-24 20:00", "2026-10-25 05:00"),  # nine hours, not eight: the clocks went back
    ("2026-10-26 13:00", "2026-10-26 14:30"),
    ("2026-03-28 23:00", "2026-03-29 03:00"),
    ("2026-10-24 22:00", "2026-10-25 04:00"),
]


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def test_dst_switches_2026_in_berlin_and_kyiv(content_copy: Path) -> None:
    events = content_copy / "events"
    template = (events / "2023-09-19-kollegialer-austausch.md").read_text(encoding="utf-8")
    for number, (zone, start, end, _) in enumerate(DST_CASES):
        path = events / f"2026-dst-{number}.md"
        path.write_text(template, encoding="utf-8")
        set_front_matter(path, timezone=f'"{zone}"', start=start, end=end)
    content = load_content(content_copy)
    for number, ((zone, _, _, line), (start, end)) in enumerate(zip(DST_CASES, DST_UTC, strict=True)):
        event = event_named(content, f"2026-dst-{number}")
        ics = calendar.publish_ics(
            content.site, event, "de", calendar.Published.of(event, None, dt.datetime(2026, 1, 5, tzinfo=dt.UTC))
        )
        parsed = agreed(ics)
        assert (parsed.start, parsed.end) == (utc(start), utc(end)), (zone, start)
        assert parsed.description.startswith(f"Wann: {line}\n"), parsed.description.splitlines()[0]
        cal = icalendar.Calendar.from_ical(ics)
        assert [tz.tz_name for tz in cal.timezones] == [zone]
        assert f"DTSTART;TZID={zone}:" in ics


def test_date_line_in_every_language_across_the_spring_switch() -> None:
    before = dt.datetime(2026, 3, 27, 9, 0, tzinfo=BERLIN)
    after = dt.datetime(2026, 3, 30, 9, 0, tzinfo=BERLIN)
    hour = dt.timedelta(hours=1)
    assert calendar.date_line(before, before + hour, "Europe/Kyiv", "uk") == (
        "пʼятниця, 27 березня 2026 р., 09:00–10:00 (Берлін) · 10:00–11:00 (Київ)"
    )
    assert calendar.date_line(after, after + hour, "Europe/Kyiv", "en") == (
        "Monday, 30 March 2026, 09:00–10:00 (Berlin) · 10:00–11:00 (Kyiv)"
    )
    assert after.astimezone(KYIV).hour == 10 and before.astimezone(KYIV).hour == 10


def test_preview_invitation_of_a_dst_event_parses(content_copy: Path) -> None:
    path = content_copy / "events" / "2026-03-28-nachtschicht.md"
    path.write_text((content_copy / "events" / "2023-09-19-kollegialer-austausch.md").read_text(encoding="utf-8"))
    set_front_matter(path, start="2026-03-28 23:00", end="2026-03-29 04:00")
    output, _ = render_all(content_copy, TEMPLATES, strict=False, today=TODAY)
    msg = message_from_bytes(output.files[PurePosixPath("events", path.stem, "preview.eml")], policy=policy.default)
    (inline,) = [p for p in msg.walk() if p.get_content_type() == "text/calendar"]
    parsed = agreed(inline.get_content())
    assert (parsed.start, parsed.end) == (utc("2026-03-28 22:00"), utc("2026-03-29 02:00"))
