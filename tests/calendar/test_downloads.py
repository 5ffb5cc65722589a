"""Downloads (event.ics, calendar.ics) agree with the invitations that went out; ATTENDEE is the address mailed.

By RFC 5546 a calendar orders versions of one UID by SEQUENCE, then DTSTAMP: a download must never look
newer than the invitation a recipient holds, and after an update it must carry the update's version.
"""

from __future__ import annotations

import datetime as dt
import gc
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
from click.testing import CliRunner

from reallabor_mail.cli.main import main
from reallabor_mail.db import NoState, connect
from reallabor_mail.delivery.campaign import SendRequest, send
from reallabor_mail.publish.build import render_all
from reallabor_mail.recipients import store as recipients
from reallabor_mail.recipients.person import Recipient
from reallabor_mail.settings import Settings

from ..conftest import TEMPLATES, TODAY, SmtpServer
from .test_calendar import CLOSING, agreed, plan_in_person, set_front_matter

NOW = dt.datetime(2024, 5, 20, 10, 0, tzinfo=dt.UTC)
EVENT = Path("events") / f"{CLOSING}.md"
UMLAUT_DOMAIN = "rathaus@städtepartner-münster.de"
PUNYCODE = "rathaus@" + "städtepartner-münster.de".encode("idna").decode("ascii")


class Ticking:
    """A clock that moves one second every time it is read (so every step of a send has its own moment)."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=1)
        return self.now


@pytest.fixture
def state(tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state file with two subscribers of the event's list, SMTP settings for the recording server."""
    path = tmp_path / "state.sqlite3"
    for key in ("REALLABOR_SMTP_USER", "REALLABOR_SMTP_PASSWORD", "REALLABOR_DKIM_KEY", "REALLABOR_STATE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("REALLABOR_SECRET", "test-secret-0123456789abcdef")
    monkeypatch.setenv("REALLABOR_SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("REALLABOR_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("REALLABOR_SMTP_SECURITY", "none")
    conn = connect(path)
    for person in (
        Recipient("beate.beispiel@example.org", "Frau", "Dr.", "Beate", "Beispiel", None, "de"),
        Recipient(UMLAUT_DOMAIN, None, None, None, None, "Stadt Münster", "de"),
    ):
        recipients.add_recipient(conn, person, "reallabor", status="subscribed", source="test", now=NOW)
    conn.close()
    return path


def send_event(content: Path, state: Path, clock: Ticking) -> None:
    """``send`` the closing event to its list (the environment set by the ``state`` fixture)."""
    assert send(SendRequest(content / EVENT, state=state), settings=Settings.from_environ(), clock=clock) is not None


def calendar_of(message: EmailMessage) -> icalendar.Event:
    (part,) = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    text = part.get_content()
    agreed(text)
    event: icalendar.Event = icalendar.Calendar.from_ical(text).events[0]
    return event


def stored(state: Path) -> tuple[bytes, bytes]:
    """The state file and what its WAL holds (SQLite may leave an empty WAL beside a read-only reader)."""
    wal = Path(f"{state}-wal")
    return state.read_bytes(), wal.read_bytes() if wal.exists() else b""


def built(out: Path, rel: str) -> icalendar.Calendar:
    text = (out / rel).read_text(encoding="utf-8")
    return icalendar.Calendar.from_ical(text)


def test_downloads_before_any_send_have_sequence_0_and_a_dtstamp_not_after_the_build(content_copy: Path) -> None:
    """Without history the DTSTAMP was the start minus 14 days: months ahead of the build for a 2027 event."""
    set_front_matter(content_copy / EVENT, start="2027-05-12 10:00", end="2027-05-12 13:00")
    output, _ = render_all(content_copy, TEMPLATES, strict=False, today=TODAY)
    build_day = dt.datetime.combine(TODAY, dt.time(0), ZoneInfo("Europe/Berlin"))
    for path, data in output.files.items():
        if path.suffix != ".ics":
            continue
        for event in icalendar.Calendar.from_ical(data).events:
            cancelled = event["STATUS"] == "CANCELLED"
            assert event["SEQUENCE"] == (1 if cancelled else 0), path
            stamp = event.DTSTAMP
            assert stamp <= build_day, (path, event["UID"], stamp)
    again, _ = render_all(content_copy, TEMPLATES, strict=False, today=TODAY)
    assert again.files == output.files  # the same day's build is byte-identical


def test_downloads_carry_sequence_and_dtstamp_of_the_last_update_sent(
    state: Path, content_copy: Path, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    clock = Ticking(NOW)
    original = (content_copy / EVENT).read_text(encoding="utf-8")
    plan_in_person(content_copy)
    send_event(content_copy, state, clock)
    (content_copy / EVENT).write_text(original, encoding="utf-8")  # moved online: an update
    clock.now += dt.timedelta(days=20)
    send_event(content_copy, state, clock)
    update = calendar_of(smtp_server.messages[-1].message)
    assert update["SEQUENCE"] == 1
    gc.collect()  # a connection the send left to the garbage collector checkpoints its WAL when collected
    before = stored(state)

    out = tmp_path / "build"
    result = CliRunner().invoke(
        main, ["build", "--content", str(content_copy), "--out", str(out), "--state", str(state)]
    )
    assert result.exit_code == 0, result.output
    for rel in (f"events/{CLOSING}/event.ics", "calendar.ics"):
        (event,) = [e for e in built(out, rel).events if str(e["UID"]).startswith(CLOSING)]
        assert (event["SEQUENCE"], event.DTSTAMP) == (1, update.DTSTAMP), rel
    assert stored(state) == before  # read only


def test_build_reads_the_default_state_when_it_exists_and_never_creates_one(
    state: Path, content_copy: Path, smtp_server: SmtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Ticking(NOW)
    send_event(content_copy, state, clock)
    sent = calendar_of(smtp_server.messages[-1].message)
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    monkeypatch.chdir(empty)
    result = CliRunner().invoke(main, ["build", "--content", str(content_copy), "--out", "build"])
    assert result.exit_code == 0, result.output
    assert not (empty / ".reallabor").exists()
    assert built(empty / "build", f"events/{CLOSING}/event.ics").events[0]["SEQUENCE"] == 0
    monkeypatch.setenv("REALLABOR_STATE", str(state))
    result = CliRunner().invoke(main, ["build", "--content", str(content_copy), "--out", "build"])
    assert result.exit_code == 0, result.output
    event = built(empty / "build", f"events/{CLOSING}/event.ics").events[0]
    assert (event["SEQUENCE"], event.DTSTAMP) == (0, sent.DTSTAMP)
    missing = CliRunner().invoke(
        main, ["build", "--content", str(content_copy), "--out", "build", "--state", str(tmp_path / "nope.sqlite3")]
    )
    assert isinstance(missing.exception, NoState) and "nope.sqlite3: no state yet" in str(missing.exception)
    assert not (tmp_path / "nope.sqlite3").exists()


def test_attendee_is_the_address_the_mail_went_to(state: Path, content_copy: Path, smtp_server: SmtpServer) -> None:
    """A domain with umlauts: envelope, To: and ATTENDEE all name the punycode form (a valid mailto URI)."""
    send_event(content_copy, state, Ticking(NOW))
    (received,) = [m for m in smtp_server.messages if m.rcpt_tos[0].startswith("rathaus@")]
    message = received.message
    attendee = str(calendar_of(message)["ATTENDEE"])
    assert received.rcpt_tos == [PUNYCODE]
    assert message["To"].addresses[0].addr_spec == PUNYCODE
    assert attendee == f"mailto:{PUNYCODE}" and attendee.isascii()
