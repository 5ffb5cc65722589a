"""Scheduled sending through the real CLI and a real SMTP server: ``send FILE --at``, ``worker --once``,
``--status``, ``--unschedule``; a schedule missed while the machine was off is not fired silently late."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result

from reallabor_mail.cli.main import main
from reallabor_mail.db import DatabaseUrl, StateLocation, connect
from reallabor_mail.recipients import store as recipients
from reallabor_mail.settings import Settings
from tests.conftest import SmtpServer
from tests.test_sending import NEWSLETTER, NOW, PEOPLE, SECRET

BERLIN = ZoneInfo("Europe/Berlin")


class Clock:
    """The test clock the commands read (Settings.clock): set ``now`` between commands."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def at(self, text: str) -> Clock:
        """Move to ``YYYY-MM-DD HH:MM`` Berlin time."""
        self.now = dt.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=BERLIN)
        return self


def state_environ(state: StateLocation) -> dict[str, str]:
    """Where the state is, as the CLI reads it from the environment."""
    if isinstance(state, DatabaseUrl):
        return {"REALLABOR_DATABASE_URL": state.url}
    return {"REALLABOR_STATE": str(state)}


@dataclasses.dataclass
class Office:
    """A state file with the people subscribed, SMTP pointing at the recording server, and the clock."""

    settings: Settings
    clock: Clock
    content: Path
    state: StateLocation

    def environ(self) -> dict[str, str]:
        return state_environ(self.state)

    def run(self, *args: str, answer: str | None = None) -> Result:
        return CliRunner().invoke(main, list(args), input=answer, obj=self.settings, catch_exceptions=True)

    def send(self, file: str, *args: str, answer: str | None = None) -> Result:
        return self.run("send", str(self.content / file), *args, answer=answer)

    def worker(self, at: str, *args: str) -> Result:
        self.clock.at(at)
        return self.run("worker", "--once", "--content", str(self.content), *args)


@pytest.fixture
def office(smtp_server: SmtpServer, content_copy: Path, state: StateLocation) -> Office:
    """(On each back end: SQLite, PostgreSQL.)"""
    environ = {
        "REALLABOR_SECRET": SECRET, **state_environ(state), "REALLABOR_SMTP_HOST": smtp_server.host,
        "REALLABOR_SMTP_PORT": str(smtp_server.port), "REALLABOR_SMTP_SECURITY": "none", "REALLABOR_LANG": "en",
    }  # fmt: skip
    conn = connect(state)
    for person in PEOPLE:
        for name in ("newsletter", "reallabor"):
            recipients.add_recipient(conn, person, name, status="subscribed", source="test", now=NOW)
    conn.close()
    clock = Clock(NOW).at("2026-12-13 12:00")
    return Office(dataclasses.replace(Settings.from_environ(environ), clock=clock), clock, content_copy, state)


def campaign_state(office: Office, key: str = "newsletter:2023-3") -> str | None:
    conn = connect(office.state)
    row = conn.execute("SELECT state FROM campaigns WHERE key = ?", (key,)).fetchone()
    conn.close()
    return None if row is None else str(row[0])


def test_a_scheduled_send_goes_out_once_when_due(office: Office, smtp_server: SmtpServer) -> None:
    scheduled = office.send(NEWSLETTER, "--at", "2026-12-14 09:00", "--yes")
    assert scheduled.exit_code == 0, scheduled.output
    assert "newsletter (7 subscribed)" in scheduled.output and "2026-12-14 09:00 (Europe/Berlin)" in scheduled.output
    assert smtp_server.messages == [] and campaign_state(office) == "scheduled"
    status = office.send(NEWSLETTER, "--status")
    assert "Scheduled: newsletter:2023-3 is sent at 2026-12-14 09:00 (Europe/Berlin)" in status.output

    early = office.worker("2026-12-14 08:59")
    assert early.exit_code == 0, early.output
    assert smtp_server.messages == [] and campaign_state(office) == "scheduled"

    due = office.worker("2026-12-14 09:01")
    assert due.exit_code == 0, due.output
    assert "scheduled send newsletter:2023-3" in due.output and "7 sent" in due.output
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == sorted(p.email for p in PEOPLE)
    assert campaign_state(office) == "sent"

    again = office.worker("2026-12-14 09:30")
    assert again.exit_code == 0 and again.output == ""
    assert len(smtp_server.messages) == 7
    assert "Sent as scheduled for 2026-12-14 09:00" in office.send(NEWSLETTER, "--status").output


def test_the_plan_is_shown_and_nothing_is_scheduled_without_yes(office: Office) -> None:
    result = office.send(NEWSLETTER, "--at", "2026-12-14 09:00", answer="n\n")
    assert "to send    7 new" in result.output and "Nothing scheduled." in result.output
    assert campaign_state(office) is None


def test_a_schedule_missed_by_a_day_is_marked_missed_and_not_sent(office: Office, smtp_server: SmtpServer) -> None:
    assert office.send(NEWSLETTER, "--at", "2026-12-14 09:00", "--yes").exit_code == 0
    late = office.worker("2026-12-15 09:00")
    assert late.exit_code == 0, late.output  # the worker logs it; --status shows it
    assert "missed, not sent" in late.output and "24 h after it was due (more than the 6 h grace" in late.output
    assert smtp_server.messages == [] and campaign_state(office) == "missed"
    status = office.send(NEWSLETTER, "--status")
    assert "Missed: newsletter:2023-3 was due at 2026-12-14 09:00 (Europe/Berlin) and was not sent" in status.output
    assert office.worker("2026-12-15 10:00").output == "" and smtp_server.messages == []


def test_a_schedule_missed_within_the_grace_period_is_sent(office: Office, smtp_server: SmtpServer) -> None:
    assert office.send(NEWSLETTER, "--at", "2026-12-14 09:00", "--yes").exit_code == 0
    result = office.worker("2026-12-14 14:30")
    assert "7 sent" in result.output and len(smtp_server.messages) == 7
    assert campaign_state(office) == "sent"


def test_the_grace_period_is_configurable(office: Office, smtp_server: SmtpServer) -> None:
    assert office.send(NEWSLETTER, "--at", "2026-12-14 09:00", "--yes").exit_code == 0
    result = office.worker("2026-12-14 11:00", "--grace", "1h")
    assert "missed" in result.output and smtp_server.messages == []


@pytest.mark.parametrize(
    ("at", "said"),
    [
        ("2026-12-13 11:59", "is in the past (it is now 2026-12-13 12:00)"),
        ("2027-03-28 02:30", "does not exist in Europe/Berlin (clocks jump forward)"),
        ("2027-10-31 02:30", "happens twice in Europe/Berlin (clocks go back)"),
        ("14.12.2026 9 Uhr", "is not a time; write it as YYYY-MM-DD HH:MM"),
    ],
)
def test_times_that_cannot_be_kept_are_refused(office: Office, at: str, said: str) -> None:
    result = office.send(NEWSLETTER, "--at", at, "--yes")
    assert result.exit_code != 0 and said in str(result.exception), result.output
    assert str(result.exception).startswith("--at: ")
    assert campaign_state(office) is None


def test_scheduling_needs_the_mail_server_settings(office: Office) -> None:
    office.settings = Settings.from_environ({"REALLABOR_SECRET": SECRET, **office.environ()})
    result = office.send(NEWSLETTER, "--at", "2030-12-14 09:00", "--yes")
    assert result.exit_code != 0 and "no mail server configured" in str(result.exception)


def test_unschedule_removes_the_schedule(office: Office, smtp_server: SmtpServer) -> None:
    assert office.send(NEWSLETTER, "--at", "2026-12-14 09:00", "--yes").exit_code == 0
    removed = office.send(NEWSLETTER, "--unschedule")
    assert removed.exit_code == 0 and "Schedule removed: newsletter:2023-3" in removed.output
    assert office.worker("2026-12-14 09:01").output == "" and smtp_server.messages == []
    assert "Scheduled" not in office.send(NEWSLETTER, "--status").output
    assert "no schedule to remove" in office.send(NEWSLETTER, "--unschedule").output


def test_content_changed_after_scheduling_is_sent_as_it_is_now(office: Office, smtp_server: SmtpServer) -> None:
    assert office.send(NEWSLETTER, "--at", "2026-12-14 09:00", "--yes").exit_code == 0
    file = office.content / NEWSLETTER
    file.write_text(file.read_text(encoding="utf-8").replace("Newsletter 3/2023", "Newsletter 3/2023 (neu)", 1),
                    encoding="utf-8")  # fmt: skip
    result = office.worker("2026-12-14 09:01")
    assert "the content changed after it was scheduled; the current version is sent" in result.output
    subjects = {str(m.message["Subject"]) for m in smtp_server.messages}
    assert "Reallabor Ukraine – Newsletter 3/2023 (neu)" in subjects and len(smtp_server.messages) == 7


def test_content_that_became_invalid_marks_the_schedule_failed(office: Office, smtp_server: SmtpServer) -> None:
    assert office.send(NEWSLETTER, "--at", "2026-12-14 09:00", "--yes").exit_code == 0
    file = office.content / NEWSLETTER
    file.write_text(file.read_text(encoding="utf-8").replace("date: ", "datum: ", 1), encoding="utf-8")
    result = office.worker("2026-12-14 09:01")
    assert result.exit_code != 0 and "failed, nothing sent" in result.output
    assert "newsletters/2023-3.md" in result.output and "RLM10" in result.output
    assert smtp_server.messages == [] and campaign_state(office) == "failed"
    file.write_text(file.read_text(encoding="utf-8").replace("datum: ", "date: ", 1), encoding="utf-8")
    status = office.send(NEWSLETTER, "--status")
    assert "Failed: newsletter:2023-3 was due at 2026-12-14 09:00" in status.output and "RLM10" in status.output


def test_a_campaign_record_follows_a_send_by_hand(office: Office) -> None:
    assert campaign_state(office) is None  # a draft
    assert office.send(NEWSLETTER, "--yes").exit_code == 0
    assert campaign_state(office) == "sent"
    assert office.send(NEWSLETTER, "--to", "me@example.org", "--yes").exit_code == 0
    assert campaign_state(office, "newsletter:2023-3#test") is None  # a test message is no campaign of its own
