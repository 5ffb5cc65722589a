"""Calendar files of a build, invitations, updates and cancellations, with three real ICS parsers.

Every ICS checked here is parsed by icalendar, by ``ical`` (allenporter) and by ``vobject``
(``validate=True``), and the values each parser reads back are compared with what we meant.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import icalendar
import pytest
import vobject
from ical.calendar_stream import IcsCalendarStream

from reallabor_mail import db as state
from reallabor_mail.content.loader import Content, EventItem, load_content
from reallabor_mail.content.models import Language
from reallabor_mail.delivery import event_versions
from reallabor_mail.i18n.words import date_line
from reallabor_mail.publish.build import SAMPLE_RECIPIENTS, render_all
from reallabor_mail.render import ics as calendar
from reallabor_mail.render.calendar_links import calendar_links
from reallabor_mail.render.engine import Renderer

from ..conftest import SAMPLE_CONTENT, TEMPLATES, TODAY

CLOSING = "2024-06-19-abschlussveranstaltung"
DOMAIN = "auslandsgesellschaft.de"
BERLIN = ZoneInfo("Europe/Berlin")
TZ_NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
Files = dict[PurePosixPath, bytes]

logging.getLogger("vobject").setLevel(logging.ERROR)


# --- parsing with three parsers ------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    """What one parser read from the first VEVENT."""

    parser: str
    uid: str
    summary: str
    description: str
    location: str | None
    start: dt.datetime
    end: dt.datetime
    sequence: int
    status: str


def check_wire_format(text: str) -> None:
    """CRLF only, every physical line at most 75 octets and valid UTF-8 on its own."""
    raw = text.encode("utf-8")
    assert b"\n" not in raw.replace(b"\r\n", b""), "bare LF"
    assert raw.endswith(b"\r\n")
    for line in raw.split(b"\r\n"):
        assert len(line) <= 75, line
        line.decode("utf-8")  # a fold inside a multi-byte character would fail here


def fresh_vobject() -> None:
    """Forget the VTIMEZONEs vobject has seen: it keeps the first one per TZID for the whole process.

    So a file is read as a client reads it. (A long-running vobject process, such as a Radicale
    server, applies the first ``Europe/Berlin`` it was given to every later file.)
    """
    vars(vobject.icalendar)["__tzidMap"].clear()


def parse_all(text: str) -> list[Parsed]:
    """The first VEVENT as icalendar, ical and vobject read it (each in UTC)."""
    check_wire_format(text)
    results = []

    cal = icalendar.Calendar.from_ical(text)
    ev = cal.events[0]
    results.append(
        Parsed(
            "icalendar", str(ev["UID"]), str(ev["SUMMARY"]), str(ev["DESCRIPTION"]),
            str(ev["LOCATION"]) if "LOCATION" in ev else None,
            ev.start.astimezone(dt.UTC), ev.end.astimezone(dt.UTC), int(ev["SEQUENCE"]), str(ev["STATUS"]),
        )
    )

    stream = IcsCalendarStream.calendar_from_ics(text)
    ie = stream.events[0]
    results.append(
        Parsed(
            "ical", ie.uid or "", ie.summary or "", ie.description or "", ie.location,
            ie.dtstart.astimezone(dt.UTC), ie.dtend.astimezone(dt.UTC),  # type: ignore[union-attr]
            int(ie.sequence or 0), str(ie.status.value if ie.status else ""),
        )
    )

    fresh_vobject()
    (vcal,) = list(vobject.readComponents(text, validate=True))
    vcal.validate(raiseException=True, complainUnrecognized=False)
    ve = vcal.vevent
    results.append(
        Parsed(
            "vobject", ve.uid.value, ve.summary.value, ve.description.value,
            ve.location.value if hasattr(ve, "location") else None,
            ve.dtstart.value.astimezone(dt.UTC), ve.dtend.value.astimezone(dt.UTC),
            int(ve.sequence.value), ve.status.value,
        )
    )
    for parsed in results:
        assert parsed.start.tzinfo is not None, parsed
    return results


def agreed(text: str) -> Parsed:
    """Parse with all three parsers and require that they agree; return icalendar's reading."""
    first, *others = parse_all(text)
    for other in others:
        assert (other.uid, other.summary, other.description, other.location) == (
            first.uid, first.summary, first.description, first.location,
        ), other.parser
        assert (other.start, other.end, other.sequence, other.status) == (
            first.start, first.end, first.sequence, first.status,
        ), other.parser
    return first


def calendar_parts(eml: bytes) -> tuple[EmailMessage, list[EmailMessage]]:
    msg = message_from_bytes(eml, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    parts = [p for p in msg.walk() if p.get_content_type() in ("text/calendar", "application/ics")]
    return msg, parts  # type: ignore[return-value]


def part_text(part: EmailMessage) -> str:
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode("utf-8")


# --- the build -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files() -> Files:
    output, _ = render_all(SAMPLE_CONTENT, TEMPLATES, strict=False, today=TODAY)
    return output.files


@pytest.fixture(scope="module")
def content() -> Content:
    return load_content(SAMPLE_CONTENT)


def event_named(content: Content, stem: str) -> EventItem:
    return next(e for e in content.events if e.stem == stem)


def download(content: Content, event: EventItem, language: Language = "de") -> str:
    """The event's ``event.ics`` before any send, stamped at ``TZ_NOW``."""
    return calendar.publish_ics(content.site, event, language, calendar.Published.of(event, None, TZ_NOW))


def ics_files(files: Files) -> dict[PurePosixPath, str]:
    return {p: d.decode("utf-8") for p, d in files.items() if p.suffix == ".ics"}


def test_build_writes_event_ics_for_every_event_and_the_feed(files: Files, content: Content) -> None:
    written = ics_files(files)
    assert PurePosixPath("calendar.ics") in written
    for event in content.events:
        assert PurePosixPath("events", event.stem, "event.ics") in written


def test_every_built_ics_parses_alike_in_three_parsers(files: Files, content: Content) -> None:
    for path, text in ics_files(files).items():
        if path.name == "calendar.ics":
            continue
        event = event_named(content, path.parent.name)
        parsed = agreed(text)
        assert parsed.uid == f"{event.stem}@{DOMAIN}"
        assert parsed.start == event.meta.start.astimezone(dt.UTC)
        assert parsed.end == event.meta.end.astimezone(dt.UTC)
        assert parsed.summary == event.meta.title
        assert "METHOD:PUBLISH\r\n" in text


def test_feed_holds_every_event_and_tells_clients_to_refresh(files: Files, content: Content) -> None:
    text = files[PurePosixPath("calendar.ics")].decode("utf-8")
    check_wire_format(text)
    cal = icalendar.Calendar.from_ical(text)
    assert cal["METHOD"] == "PUBLISH"
    assert cal["X-WR-CALNAME"] == "Netzwerkstelle Städtepartnerschaften – Termine"
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT12H\r\n" in text
    assert "X-PUBLISHED-TTL:PT12H\r\n" in text
    assert [str(e["UID"]) for e in cal.events] == [f"{e.stem}@{DOMAIN}" for e in content.events]
    assert len(IcsCalendarStream.calendar_from_ics(text).events) == len(content.events)
    (vcal,) = list(vobject.readComponents(text, validate=True))
    assert len(vcal.vevent_list) == len(content.events)
    # one VTIMEZONE, covering the common window (every file carries the same one), not 1970–2038
    (tz,) = cal.timezones
    assert tz.tz_name == "Europe/Berlin"
    assert {onset.year for onset in onsets(tz)} == set(range(2020, 2045))
    for event in content.events:
        assert tz.to_tz().utcoffset(event.meta.start.replace(tzinfo=None)) == event.meta.start.utcoffset()


def test_build_without_history_has_sequence_zero_and_dtstamp_not_after_the_build(files: Files) -> None:
    cal = icalendar.Calendar.from_ical(files[PurePosixPath("events", CLOSING, "event.ics")])
    ev = cal.events[0]
    assert ev["SEQUENCE"] == 0
    # the build's day (TODAY, 00:00 Berlin), not two weeks before the 2024 event
    stamp = ev.DTSTAMP
    assert stamp == dt.datetime(2023, 9, 30, 22, 0, tzinfo=dt.UTC)
    rel = PurePosixPath("events", "2023-03-29-auftaktveranstaltung", "event.ics")
    stamp = icalendar.Calendar.from_ical(files[rel]).events[0].DTSTAMP
    assert stamp == dt.datetime(2023, 3, 15, 8, 0, tzinfo=dt.UTC)  # two weeks before, 09:00
    # a past event's download stays the same in later builds
    again, _ = render_all(SAMPLE_CONTENT, TEMPLATES, strict=False, today=TODAY + dt.timedelta(days=400))
    assert again.files[rel] == files[rel]


def onsets(tz: icalendar.Timezone) -> list[dt.datetime]:
    """Every onset of every observance of a VTIMEZONE (DTSTART and RDATEs)."""
    found = []
    for obs in tz.walk():
        if obs.name in ("STANDARD", "DAYLIGHT"):
            found.append(obs.DTSTART)
            for rdate in obs.get("RDATE", []) if isinstance(obs.get("RDATE"), list) else [obs.get("RDATE")]:
                if rdate is not None:
                    found.extend(d.dt for d in rdate.dts)
    return found


def test_vtimezone_is_the_same_window_in_every_file_and_grows_for_events_outside(
    files: Files, content_copy: Path
) -> None:
    for path, text in ics_files(files).items():
        cal = icalendar.Calendar.from_ical(text)
        (tz,) = cal.timezones
        assert {onset.year for onset in onsets(tz)} == set(range(2020, 2045)), path
        assert cal.get_missing_tzids() == set()
    # the zone as written converts the event's times exactly as the tz database does
    assert tz.to_tz().utcoffset(dt.datetime(2024, 6, 19, 10)) == dt.timedelta(hours=2)
    assert tz.to_tz().utcoffset(dt.datetime(2024, 1, 19, 10)) == dt.timedelta(hours=1)
    set_front_matter(content_copy / "events" / f"{CLOSING}.md", start="2051-07-02 10:00", end="2051-07-02 13:00")
    content = load_content(content_copy)
    far = icalendar.Calendar.from_ical(download(content, event_named(content, CLOSING)))
    (tz,) = far.timezones
    assert {2020, 2044, 2050, 2051} <= {onset.year for onset in onsets(tz)}
    assert agreed(far.to_ical().decode()).start == dt.datetime(2051, 7, 2, 8, 0, tzinfo=dt.UTC)


def test_a_later_event_is_right_after_an_earlier_file_taught_vobject_the_zone(content_copy: Path) -> None:
    """vobject keeps the first VTIMEZONE per TZID for the whole process (so does a Radicale server).

    An invitation for 2023 read first must not move a summer event years later by an hour.
    """
    set_front_matter(content_copy / "events" / f"{CLOSING}.md", start="2031-07-02 10:00", end="2031-07-02 13:00")
    content = load_content(content_copy)
    early = download(content, content.events[0])
    later = download(content, event_named(content, CLOSING))
    fresh_vobject()
    for text in (early, later):
        (vcal,) = list(vobject.readComponents(text))
    assert vcal.vevent.dtstart.value.astimezone(dt.UTC) == dt.datetime(2031, 7, 2, 8, 0, tzinfo=dt.UTC)


def test_online_event_ics_location_url_alarms_and_description(files: Files) -> None:
    ev = icalendar.Calendar.from_ical(files[PurePosixPath("events", CLOSING, "event.ics")]).events[0]
    zoom = "https://us02web.zoom.us/j/88154063921"
    assert str(ev["LOCATION"]) == zoom and str(ev["URL"]) == zoom
    triggers = sorted(str(c["TRIGGER"].to_ical().decode()) for c in ev.walk("VALARM"))
    assert triggers == ["-P1D", "-PT30M"]
    text = str(ev["DESCRIPTION"])
    assert text.startswith("Wann: Mittwoch, 19. Juni 2024, 10:00–13:00 Uhr (Berlin) · 11:00–14:00 (Київ)\n")
    assert "Anmeldung: becker@auslandsgesellschaft.de (Anmeldeschluss: Freitag, 14. Juni 2024)" in text
    assert "Nach 18 Monaten ziehen wir Bilanz" in text
    assert "- Zehn Thesen: Erkenntnisse aus 18 Monaten Projektarbeit\n" in text
    assert str(ev["ORGANIZER"]) == "mailto:becker@auslandsgesellschaft.de"
    assert ev["STATUS"] == "CONFIRMED"


def test_in_person_event_has_address_page_url_and_one_reminder(files: Files, content: Content) -> None:
    event = next(e for e in content.events if e.meta.format.value == "in_person")
    ev = icalendar.Calendar.from_ical(files[PurePosixPath("events", event.stem, "event.ics")]).events[0]
    assert str(ev["LOCATION"]) == event.meta.location
    assert str(ev["URL"]) == f"https://newsletter.staedtepartnerschaftennrw.org/events/{event.stem}/"
    assert [c["TRIGGER"].to_ical() for c in ev.walk("VALARM")] == [b"-P1D"]


def test_preview_eml_carries_the_invitation_for_the_sample_recipient(files: Files) -> None:
    msg, parts = calendar_parts(files[PurePosixPath("events", CLOSING, "preview.eml")])
    assert msg.get_content_type() == "multipart/mixed"
    alternative = msg.get_payload()[0]  # type: ignore[index]
    assert [p.get_content_type() for p in alternative.get_payload()] == ["text/plain", "text/html", "text/calendar"]
    inline, attached = parts
    assert inline.get_param("method") == "REQUEST"
    assert part_text(inline) == part_text(attached)
    assert attached.get_filename().endswith(".ics")  # type: ignore[union-attr]
    text = part_text(inline)
    parsed = agreed(text)
    assert parsed.sequence == 0
    cal = icalendar.Calendar.from_ical(text)
    assert cal["METHOD"] == "REQUEST"
    ev = cal.events[0]
    attendee = ev["ATTENDEE"]
    assert str(attendee) == f"mailto:{SAMPLE_RECIPIENTS['de'].email}"
    assert attendee.params["RSVP"] == "TRUE"
    assert str(ev["ORGANIZER"]) == "mailto:becker@auslandsgesellschaft.de"


# --- links beside events -------------------------------------------------------------------------


def test_invitation_shows_ics_google_outlook_and_feed_links(files: Files) -> None:
    html = files[PurePosixPath("events", CLOSING, "invitation.html")].decode("utf-8")
    text = files[PurePosixPath("events", CLOSING, "invitation.txt")].decode("utf-8")
    base = "https://newsletter.staedtepartnerschaftennrw.org"
    for label, url in (
        ("In den Kalender", f"{base}/events/{CLOSING}/event.ics"),
        ("Alle Termine abonnieren", f"{base}/calendar.ics"),
    ):
        assert f'href="{url}"' in html and f">{label}</a>" in html
        assert f"{label}: {url}" in text
    assert ">Google Kalender</a>" in html and ">Outlook Kalender</a>" in html


DOMAIN_IN_TEXT = re.compile(r"(?<![\w.-])((?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,})(?![\w-])")


class LinkTexts(HTMLParser):
    """Every ``<a href>`` of a page with the text inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[list[str]] = []
        self.links: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.open.append([dict(attrs).get("href") or "", ""])

    def handle_data(self, data: str) -> None:
        for link in self.open:
            link[1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.open:
            href, text = self.open.pop()
            self.links.append((href, text))


def link_host(href: str) -> str:
    parts = urlsplit(href)
    return (parts.path.rpartition("@")[2] if parts.scheme == "mailto" else parts.hostname or "").lower()


def test_link_text_names_no_domain_but_the_links_own(files: Files) -> None:
    """Rspamd scores "Outlook.com" → outlook.live.com as PHISHING: a named domain must be the link's (or its parent)."""
    wrong = []
    for path, data in files.items():
        if path.suffix != ".html":
            continue
        page = LinkTexts()
        page.feed(data.decode("utf-8"))
        for href, text in page.links:
            host = link_host(href)
            for named in DOMAIN_IN_TEXT.findall(text.lower()):
                if not (named == host or host.endswith(f".{named}") or named.endswith(f".{host}")):
                    wrong.append(f"{path}: {text.strip()!r} → {href[:60]}")
    assert not wrong, wrong[:5]


def test_add_links_carry_title_and_utc_times(content: Content) -> None:
    event = event_named(content, CLOSING)
    links = {link.label: link.url for link in calendar_links(content.site, event, "de")}
    google = parse_qs(urlsplit(links["Google Kalender"]).query)
    assert google["text"] == [event.meta.title]
    assert google["dates"] == ["20240619T080000Z/20240619T110000Z"]
    assert google["location"] == ["https://us02web.zoom.us/j/88154063921"]
    assert google["details"] == [f"https://newsletter.staedtepartnerschaftennrw.org/events/{CLOSING}/"]
    outlook = parse_qs(urlsplit(links["Outlook Kalender"]).query)
    assert outlook["subject"] == [event.meta.title]
    assert outlook["startdt"] == ["2024-06-19T08:00:00Z"] and outlook["enddt"] == ["2024-06-19T11:00:00Z"]
    uk = [link.label for link in calendar_links(content.site, event, "uk")]
    assert uk == ["Додати до календаря", "Google Календар", "Календар Outlook", "Підписатися на всі заходи"]
    # an event without translation links to the one .ics there is
    assert links["In den Kalender"] == dict(
        (link.label, link.url) for link in calendar_links(content.site, event, "en")
    )["Add to calendar"]


def set_front_matter(path: Path, **values: str) -> None:
    """Replace (or add) top-level front-matter keys of a content file."""
    text = path.read_text(encoding="utf-8")
    head, body = text[4:].split("\n---\n", 1)
    for key, value in values.items():
        line = f"{key}: {value}"
        head, count = re.subn(rf"^{key}:.*$", lambda _, line=line: line, head, flags=re.M)
        if not count:
            head += f"\n{line}"
    path.write_text(f"---\n{head}\n---\n{body}", encoding="utf-8")


def test_newsletter_termine_show_links_and_cancelled_events(content_copy: Path) -> None:
    set_front_matter(content_copy / "events" / "2023-10-26-kommunale-unternehmen.md", status="cancelled")
    content = load_content(content_copy)
    renderer = Renderer(content, TEMPLATES)
    item = next(n for n in content.newsletters if n.stem == "2023-3")
    email = renderer.newsletter_email(item, "de")
    cancelled_title = event_named(content, "2023-10-26-kommunale-unternehmen").meta.title
    assert f"{cancelled_title} (abgesagt)" in email.text
    assert "/events/2023-10-26-kommunale-unternehmen/event.ics" not in email.html
    assert "/events/2023-11-08-konferenz-kommunale-aussenpolitik/event.ics" in email.html
    assert "In den Kalender: https://" in email.text
    ics = download(content, event_named(content, "2023-10-26-kommunale-unternehmen"))
    parsed = agreed(ics)
    assert parsed.status == "CANCELLED" and parsed.sequence == 1
    assert parsed.summary.endswith(" (abgesagt)")
    assert "VALARM" not in ics



def test_hybrid_location_has_address_and_link(content_copy: Path) -> None:
    path = content_copy / "events" / f"{CLOSING}.md"
    set_front_matter(path, format="hybrid", location='"Steinstr. 48, 44147 Dortmund"')
    content = load_content(content_copy)
    ics = download(content, event_named(content, CLOSING))
    parsed = agreed(ics)
    assert parsed.location == "Steinstr. 48, 44147 Dortmund · https://us02web.zoom.us/j/88154063921"
    assert "Wo: Hybrid (in Präsenz und online), Steinstr. 48, 44147 Dortmund\n" in parsed.description


def test_uid_comes_from_file_name_and_survives_edits(content_copy: Path) -> None:
    before = load_content(content_copy)
    path = content_copy / "events" / f"{CLOSING}.md"
    set_front_matter(path, title='"Ganz neuer Titel"', start="2024-06-20 09:00", end="2024-06-20 12:00")
    after = load_content(content_copy)
    uid = calendar.event_uid(before.site, event_named(before, CLOSING))
    assert uid == f"{CLOSING}@{DOMAIN}"
    assert calendar.event_uid(after.site, event_named(after, CLOSING)) == uid


# --- the life of the closing event: planned in person, moved online, then cancelled --------------


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def plan_in_person(content_dir: Path) -> None:
    """Put the closing event back to what was planned: in person in Dortmund (its commented lines)."""
    path = content_dir / "events" / f"{CLOSING}.md"
    text = path.read_text(encoding="utf-8")
    text = text.replace("# format: in_person\n", "format: in_person\n")
    text = text.replace('# location: "Auslandsgesellschaft', 'location: "Auslandsgesellschaft')
    text = text.replace("format: online\n", "").replace("online_url: ", "# online_url: ")
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def conn(tmp_path: Path):  # type: ignore[no-untyped-def]
    connection = state.connect(tmp_path / "state.sqlite3")
    yield connection
    connection.close()


def test_closing_event_invitation_update_and_cancellation(content_copy: Path, conn) -> None:  # type: ignore[no-untyped-def]
    original = (content_copy / "events" / f"{CLOSING}.md").read_text(encoding="utf-8")
    clock = Clock(dt.datetime(2024, 5, 20, 10, 0, 12, 345, tzinfo=dt.UTC))
    recipient = "beate.beispiel@example.org"

    plan_in_person(content_copy)
    content = load_content(content_copy)
    event = event_named(content, CLOSING)
    first = event_versions.plan_event(content, event, conn, clock).invitation(recipient)
    assert (first.method, first.sequence, first.changes) == ("REQUEST", 0, ())
    assert first.dtstamp == dt.datetime(2024, 5, 20, 10, 0, 12, tzinfo=dt.UTC)
    parsed = agreed(first.ics)
    assert parsed.location == "Auslandsgesellschaft.de e.V., Steinstr. 48, 44147 Dortmund"
    assert first.method == "REQUEST"
    event_versions.record_sent_version(conn, event, first.sequence, first.fingerprint, clock())
    # a second campaign to new recipients, nothing changed: the same version again
    clock.now += dt.timedelta(days=1)
    again = event_versions.plan_event(content, event, conn, clock).invitation("neu@example.org")
    assert (again.sequence, again.changes) == (0, ())
    event_versions.record_sent_version(conn, event, again.sequence, again.fingerprint, clock())  # idempotent

    # moved online shortly before
    (content_copy / "events" / f"{CLOSING}.md").write_text(original, encoding="utf-8")
    clock.now = dt.datetime(2024, 6, 17, 8, 0, tzinfo=dt.UTC)
    content = load_content(content_copy)
    event = event_named(content, CLOSING)
    plan = event_versions.plan_event(content, event, conn, clock)
    assert (plan.method, plan.sequence, plan.is_update) == ("REQUEST", 1, True)
    assert plan.changes("de") == (
        "Neu: online statt in Präsenz",
        "Neuer Zugangslink: https://us02web.zoom.us/j/88154063921",
    )
    assert plan.changes("uk")[0] == "Формат змінено: очно → онлайн"
    assert plan.changes("en")[0] == "New: online instead of in person"
    update = plan.invitation(recipient, language="de", name="Beate Beispiel")
    parsed = agreed(update.ics)
    assert (parsed.uid, parsed.sequence) == (f"{CLOSING}@{DOMAIN}", 1)
    assert parsed.location == "https://us02web.zoom.us/j/88154063921"
    stamp = icalendar.Calendar.from_ical(update.ics).events[0].DTSTAMP
    assert stamp == clock.now
    # the mail says what changed
    renderer = Renderer(content, TEMPLATES)
    email = renderer.invitation_email(event, "de", changes=plan.changes("de"))
    assert "* Neu: online statt in Präsenz" in email.text
    assert ">Neu: online statt in Präsenz</li>" in email.html
    event_versions.record_sent_version(conn, event, plan.sequence, plan.fingerprint, clock())
    with pytest.raises(calendar.CalendarError, match="already sent with other details"):
        event_versions.record_sent_version(conn, event, 1, first.fingerprint, clock())

    # the time moves: "Zeit: alt → neu"
    set_front_matter(content_copy / "events" / f"{CLOSING}.md", start="2024-06-19 11:00", end="2024-06-19 14:00")
    content = load_content(content_copy)
    event = event_named(content, CLOSING)
    moved = event_versions.plan_event(content, event, conn, clock)
    assert moved.sequence == 2
    assert moved.changes("de") == (
        "Zeit: Mittwoch, 19. Juni 2024, 10:00–13:00 Uhr (Berlin) → Mittwoch, 19. Juni 2024, 11:00–14:00 Uhr (Berlin)",
    )
    event_versions.record_sent_version(conn, event, moved.sequence, moved.fingerprint, clock())

    # cancelled
    set_front_matter(content_copy / "events" / f"{CLOSING}.md", status="cancelled")
    content = load_content(content_copy)
    event = event_named(content, CLOSING)
    cancel = event_versions.plan_event(content, event, conn, clock).invitation(recipient, language="uk")
    assert (cancel.method, cancel.sequence) == ("CANCEL", 3)
    assert cancel.method == "CANCEL"
    parsed = agreed(cancel.ics)
    assert parsed.status == "CANCELLED"
    assert "METHOD:CANCEL\r\n" in cancel.ics and "VALARM" not in cancel.ics
    assert icalendar.Calendar.from_ical(cancel.ics).events[0]["ATTENDEE"].params["RSVP"] == "FALSE"
    assert parsed.summary.endswith("(скасовано)")
    # the versions are kept in the state file for the next process
    rows = conn.execute("SELECT sequence FROM event_versions WHERE event = ? ORDER BY sequence", (CLOSING,))
    assert [r[0] for r in rows] == [0, 1, 2]


def test_reinstated_event_says_so(content: Content) -> None:
    event = event_named(content, CLOSING)
    current = calendar.Snapshot.of(event.meta)
    cancelled = calendar.Snapshot.from_fingerprint(current.fingerprint.replace('"scheduled"', '"cancelled"'))
    assert calendar.change_lines(cancelled, current, "de") == ("Die Veranstaltung findet wieder statt.",)
    assert calendar.Snapshot.from_fingerprint(current.fingerprint) == current


def test_date_lines_in_change_lines_follow_the_tz_database() -> None:
    old = calendar.Snapshot(
        dt.datetime(2026, 3, 28, 14, tzinfo=BERLIN), dt.datetime(2026, 3, 28, 15, tzinfo=BERLIN),
        calendar.EventFormat.ONLINE, None, "https://example.org/a", calendar.EventStatus.SCHEDULED,
    )
    new = calendar.Snapshot(
        dt.datetime(2026, 3, 30, 14, tzinfo=BERLIN), dt.datetime(2026, 3, 30, 15, tzinfo=BERLIN),
        calendar.EventFormat.ONLINE, None, "https://example.org/a", calendar.EventStatus.SCHEDULED,
    )
    assert calendar.change_lines(old, new, "en") == (
        "Time: Saturday, 28 March 2026, 14:00–15:00 (Berlin) → Monday, 30 March 2026, 14:00–15:00 (Berlin)",
    )
    assert date_line(new.start, new.end, "Europe/Kyiv", "de").endswith("· 15:00–16:00 (Київ)")
