"""Campaigns staff can trust (issue 11), each case through the real CLI and a real SMTP server.

Updates after any ending of a run, the ledger's promise (a message handed over without a reply is
``unknown``, never resent), dry runs, honest outcomes and exit codes, Ctrl-C, known lists, the state
file next to the content, one lock per campaign, and mails that say what they are.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reallabor_mail.cli.main import main
from reallabor_mail.db import DatabaseUrl, StateLocation, connect, tables
from reallabor_mail.delivery.ledger import Ledger
from reallabor_mail.recipients import store as recipients
from reallabor_mail.recipients.person import Recipient
from tests.conftest import ROOT
from tests.smtp_faults import Faults, FaultServer, fault_server
from tests.test_sending import EVENT, NEWSLETTER, NOW, PEOPLE, state_of, subscribed_env

EVENT_CAMPAIGN = "event:2024-06-19-abschlussveranstaltung"


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with fault_server(Faults(pipelining=True)) as running:
        yield running


@pytest.fixture
def env(tmp_path: Path, server: FaultServer, monkeypatch: pytest.MonkeyPatch, state: StateLocation) -> dict[str, str]:
    """The seven people of test_sending on both lists (on each back end), SMTP settings pointing at the fault
    server."""
    return subscribed_env(tmp_path, server.host, server.port, monkeypatch, state)


def send(*args: str, answer: str | None = None) -> Result:
    return CliRunner().invoke(main, ["send", *args], input=answer, catch_exceptions=True)


def ledger_states(env: dict[str, str], campaign: str) -> dict[str, str]:
    return Ledger(connect(state_of(env)), lambda: NOW).states(campaign)


def snapshot(state: StateLocation) -> object:
    """The state file's bytes, or every table's rows on PostgreSQL (to see that nothing changed)."""
    if isinstance(state, Path):
        return state.read_bytes()
    conn = connect(state)
    try:
        return [(name, sorted(repr(tuple(row)) for row in conn.execute(f"SELECT * FROM {name}")))
                for name in tables(conn)]  # fmt: skip
    finally:
        conn.close()


def received(server: FaultServer) -> dict[str, int]:
    return dict(server.handler.received_by())


def subjects(server: FaultServer) -> dict[str, str]:
    return {m.rcpt_tos[0]: str(m.message["Subject"]) for m in server.handler.messages}


@contextmanager
def send_process(env: dict[str, str], *args: str) -> Iterator[subprocess.Popen[str]]:
    """``reallabor-mail send …`` as a separate process (it owns its SIGINT), English output."""
    command = [sys.executable, "-c", "from reallabor_mail.cli.main import run; run()", "send", *args]
    process = subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, **env, "REALLABOR_LANG": "en"}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def move_end(content: Path, new_end: str = "2024-06-19 14:30") -> None:
    path = content / EVENT
    path.write_text(path.read_text(encoding="utf-8").replace("end: 2024-06-19 13:00", f"end: {new_end}"), "utf-8")


# --- 1. the event version is recorded with the first ledger row --------------------------------------


@pytest.mark.parametrize("ending", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "sigkill"])
def test_after_any_ending_of_an_invitation_run_the_update_reaches_who_got_it(
    env: dict[str, str], content_copy: Path, server: FaultServer, tmp_path: Path, ending: signal.Signals
) -> None:
    with send_process(env, str(content_copy / EVENT), "--yes", "--rate", "30/min") as process:
        wait_for(lambda: len(server.handler.messages) >= 1)
        process.send_signal(ending)
        process.communicate(timeout=60)
    got_first = set(received(server))
    assert got_first and len(got_first) < len(PEOPLE)
    move_end(content_copy)
    server.handler.messages.clear()
    update = send(str(content_copy / EVENT), "--yes")
    assert "Nothing to send" not in update.output
    assert update.exit_code == 0, update.output
    sent = subjects(server)
    assert set(sent) == {p.email for p in PEOPLE}
    for address, subject in sent.items():  # an update for who had the old time, an invitation for the rest
        assert subject.startswith("Geändert: " if address in got_first else "Einladung: "), (address, subject)
    assert ledger_states(env, f"{EVENT_CAMPAIGN}:1") == {p.email: "sent" for p in PEOPLE}
    assert "got an earlier version and get" in update.output or "got an earlier version and gets" in update.output


def test_update_mail_has_a_changed_subject_and_a_headed_change_block(
    env: dict[str, str], content_copy: Path, server: FaultServer
) -> None:
    assert send(str(content_copy / EVENT), "--yes").exit_code == 0
    move_end(content_copy)
    server.handler.messages.clear()
    result = send(str(content_copy / EVENT), "--yes")
    assert result.exit_code == 0, result.output
    message = server.handler.messages[0].message
    assert str(message["Subject"]).startswith("Geändert: Abschlussveranstaltung")  # the event is German only
    text = message.get_body(("plain",))
    assert text is not None and "Was hat sich geändert:" in text.get_content()
    html = message.get_body(("html",))
    assert html is not None and "Was hat sich geändert:" in html.get_content()


def test_a_cancellation_says_so_and_reaches_only_who_was_invited(
    env: dict[str, str], content_copy: Path, server: FaultServer, tmp_path: Path
) -> None:
    assert send(str(content_copy / EVENT), "--yes").exit_code == 0
    conn = connect(state_of(env))
    newcomer = Recipient("neu@herne.example", "Frau", None, "Ute", "Neu")
    recipients.add_recipient(conn, newcomer, "reallabor", status="subscribed", source="test", now=NOW)
    path = content_copy / EVENT
    path.write_text(path.read_text(encoding="utf-8").replace("status: scheduled", "status: cancelled"), "utf-8")
    server.handler.messages.clear()
    result = send(str(content_copy / EVENT), "--yes")
    assert result.exit_code == 0, result.output
    sent = subjects(server)
    assert set(sent) == {p.email for p in PEOPLE}  # the newcomer never heard of it
    assert all(subject.startswith("Abgesagt: ") for subject in sent.values())


# --- 2. the ledger's promise -------------------------------------------------------------------------


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-by-one"])
def test_a_reply_lost_after_the_final_dot_is_unknown_and_never_resent(
    env: dict[str, str], content_copy: Path, server: FaultServer, tmp_path: Path, pipelining: bool
) -> None:
    server.faults.pipelining = pipelining
    server.faults.lose_reply = {"kim@bochum.example"}
    result = send(str(content_copy / NEWSLETTER), "--yes")
    assert result.exit_code == 1  # not everything is known to have gone out
    assert "Unknown (1)" in result.output and "  kim@bochum.example" in result.output
    assert ledger_states(env, "newsletter:2023-3")["kim@bochum.example"] == "unknown"
    assert received(server) == {p.email: 1 for p in PEOPLE}  # delivered once, the reply lost
    for again in (["--resume"], ["--retry-failed"], []):
        send(str(content_copy / NEWSLETTER), "--yes", *again)
    assert received(server) == {p.email: 1 for p in PEOPLE}
    status = send(str(content_copy / NEWSLETTER), "--status")
    assert "kim@bochum.example" in status.output and "1 unknown" in status.output


def test_a_late_reply_within_the_data_timeout_is_sent_beyond_it_unknown(
    env: dict[str, str], content_copy: Path, server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wait for the reply to the final "." is its own (REALLABOR_SMTP_DATA_TIMEOUT), not the 30 s of a command."""
    server.faults.data_delay = 2.0
    monkeypatch.setenv("REALLABOR_SMTP_DATA_TIMEOUT", "1")
    late = send(str(content_copy / NEWSLETTER), "--yes", "--list", "newsletter", "--limit", "1")
    assert late.exit_code == 1
    assert sorted(ledger_states(env, "newsletter:2023-3").values()) == ["pending"] * 6 + ["unknown"]
    assert "no reply within 1 s" in late.output
    monkeypatch.setenv("REALLABOR_SMTP_DATA_TIMEOUT", "10")
    waited = send(str(content_copy / NEWSLETTER), "--yes", "--resume", "--limit", "1")
    assert waited.exit_code == 0, waited.output
    assert sorted(ledger_states(env, "newsletter:2023-3").values()) == ["pending"] * 5 + ["sent", "unknown"]
    assert max(received(server).values()) == 1


def test_the_data_timeout_setting_is_checked(env: dict[str, str], content_copy: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("REALLABOR_SMTP_DATA_TIMEOUT", "ten minutes")
    result = send(str(content_copy / NEWSLETTER), "--yes")
    assert result.exit_code == 1 and str(result.exception).startswith("REALLABOR_SMTP_DATA_TIMEOUT: ")


# --- 3. dry run --------------------------------------------------------------------------------------


def test_a_dry_run_writes_every_personal_message_for_review_and_leaves_the_ledger(
    env: dict[str, str], content_copy: Path, server: FaultServer, tmp_path: Path
) -> None:
    before = snapshot(state_of(env))  # (on PostgreSQL the dry run works on a SQLite copy of it)
    result = send(str(content_copy / NEWSLETTER), "--dry-run", "--yes")
    assert result.exit_code == 0, result.output
    folder = Path(re.search(r"messages written to (\S+) for review", result.output)[1])  # type: ignore[index]
    files = sorted(folder.iterdir())
    assert len(files) == len(PEOPLE) and server.handler.messages == []
    assert "Sehr geehrte Frau Dr. Brockmann," in "".join(f.read_text() for f in files)
    assert "dry run: nothing is sent" in result.output
    assert snapshot(state_of(env)) == before and ledger_states(env, "newsletter:2023-3") == {}
    real = send(str(content_copy / NEWSLETTER), "--yes")
    assert real.exit_code == 0 and "to send    7 new" in real.output
    assert received(server) == {p.email: 1 for p in PEOPLE}


def test_an_outbox_without_dry_run_is_a_real_send_and_the_plan_says_so(
    env: dict[str, str], content_copy: Path, tmp_path: Path
) -> None:
    result = send(str(content_copy / NEWSLETTER), "--outbox", str(tmp_path / "outbox"), answer="n\n")
    assert "This is a real send" in result.output and "use --dry-run" in result.output
    assert "Nothing sent." in result.output


# --- 4. honest outcomes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "value", "starts"),
    [
        ("REALLABOR_SMTP_HOST", "smtp.nonexistent.invalid", "REALLABOR_SMTP_HOST: the mail server"),
        ("REALLABOR_SMTP_PORT", "CLOSED", "REALLABOR_SMTP_PORT: "),
        ("REALLABOR_SMTP_SECURITY", "tls", "REALLABOR_SMTP_SECURITY (tls): "),
        ("REALLABOR_SMTP_USER", "becker", "REALLABOR_SMTP_USER, REALLABOR_SMTP_PASSWORD: "),
    ],
    ids=["dns", "closed-port", "tls", "login"],
)
def test_a_server_that_cannot_be_used_stops_before_any_row_naming_the_setting(
    env: dict[str, str], content_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    setting: str, value: str, starts: str,
) -> None:  # fmt: skip
    if value == "CLOSED":
        from tests.conftest import free_port

        value = str(free_port())
    monkeypatch.setenv(setting, value)
    if setting == "REALLABOR_SMTP_USER":
        monkeypatch.setenv("REALLABOR_SMTP_PASSWORD", "wrong")
    if setting == "REALLABOR_SMTP_HOST":
        monkeypatch.setenv("REALLABOR_SMTP_SECURITY", "starttls")
    result = send(str(content_copy / NEWSLETTER), "--yes")
    assert result.exit_code == 1
    assert str(result.exception).startswith(starts), result.exception
    assert "check" in str(result.exception)
    assert ledger_states(env, "newsletter:2023-3") == {}  # no row used


def test_the_summary_gives_the_reason_of_each_failure_and_the_exit_status_says_not_all_went_out(
    env: dict[str, str], content_copy: Path, server: FaultServer
) -> None:
    server.faults.domain = {"bochum.example": "554 5.7.1 Service unavailable; client host blocked using Spamhaus"}
    server.faults.rcpt = {"info@hamm.example": "550 5.1.1 <info@hamm.example>: user unknown"}
    result = send(str(content_copy / NEWSLETTER), "--yes")
    assert result.exit_code == 1
    assert "to retry later: bochum.example blocked: 554 5.7.1 Service unavailable; client host blocked" in result.output
    assert "failed: 550 5.1.1 …: user unknown (1)" in result.output
    assert "2 messages did not go out (1 to retry later, 1 failed, 0 unknown)" in str(result.exception)


# --- 5. Ctrl-C ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "count", "after"), [("6/min", 5, 1), ("60/min", 60, 5)])
def test_the_first_ctrl_c_stops_handing_messages_over_at_once(
    env: dict[str, str], content_copy: Path, server: FaultServer, tmp_path: Path, rate: str, count: int, after: int
) -> None:
    conn = connect(state_of(env))
    for i in range(count - len(PEOPLE)):
        person = Recipient(f"p{i:03d}@example.org", first_name=f"P{i}")
        recipients.add_recipient(conn, person, "newsletter", status="subscribed", source="test", now=NOW)
    with send_process(env, str(content_copy / NEWSLETTER), "--yes", "--rate", rate) as process:
        wait_for(lambda: len(server.handler.messages) >= after)
        started = sum(server.handler.attempts.values())  # RCPT commands so far: messages begun
        process.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        out, err = process.communicate(timeout=30)
        took = time.monotonic() - interrupted
    assert process.returncode == 1
    assert sum(server.handler.attempts.values()) <= started + 1  # at most the one in flight
    assert took < 5, f"the send went on for {took:.1f} s after Ctrl-C"
    assert "stopped by Ctrl-C" in out and "--resume" in out + err
    states = ledger_states(env, "newsletter:2023-3")
    assert "sending" not in states.values() and "unknown" not in states.values()
    assert sorted(set(states.values())) == ["pending", "sent"]
    resumed = send(str(content_copy / NEWSLETTER), "--yes", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert received(server) == {email: 1 for email in states}


def test_a_second_ctrl_c_ends_at_once_and_the_message_in_flight_is_unknown(
    env: dict[str, str], content_copy: Path, server: FaultServer, tmp_path: Path
) -> None:
    server.faults.data_delay = 30.0  # the first message's reply takes long
    with send_process(env, str(content_copy / NEWSLETTER), "--yes") as process:
        wait_for(lambda: len(server.handler.messages) >= 1)
        process.send_signal(signal.SIGINT)
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        out, err = process.communicate(timeout=30)
        took = time.monotonic() - interrupted
    assert process.returncode == 1 and took < 5
    assert "interrupted (Ctrl-C twice)" in err
    states = ledger_states(env, "newsletter:2023-3")
    [in_flight] = server.handler.messages[0].rcpt_tos
    assert states[in_flight] == "unknown" and in_flight in out
    assert sorted(states.values()) == ["pending"] * 6 + ["unknown"]


# --- 6. known lists, --content, the state file next to the content -----------------------------------


def test_an_unknown_list_is_an_error_naming_the_known_ones(env: dict[str, str], content_copy: Path,
                                                           server: FaultServer) -> None:  # fmt: skip
    result = send(str(content_copy / NEWSLETTER), "--list", "newsleter", "--yes")
    assert result.exit_code == 1
    message = str(result.exception)
    assert "there is no list newsleter; known lists: newsletter, reallabor" in message
    assert server.handler.messages == []


def test_a_list_without_subscribers_says_so(env: dict[str, str], content_copy: Path, tmp_path: Path) -> None:
    site = content_copy / "site.yaml"
    site.write_text(site.read_text(encoding="utf-8").replace("lists:\n", "lists:\n  presse:\n    label:\n"
                                                              "      de: \"Presse\"\n", 1), encoding="utf-8")
    conn = connect(state_of(env))
    recipients.add_recipient(conn, PEOPLE[0], "presse", status="unsubscribed", source="test", now=NOW)
    result = send(str(content_copy / NEWSLETTER), "--list", "presse", "--yes")
    assert result.exit_code == 1 and "nobody is subscribed to presse" in str(result.exception)


def test_the_state_file_lives_next_to_the_content_folder_not_the_current_one(
    env: dict[str, str], content_copy: Path, server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if isinstance(state_of(env), DatabaseUrl):
        pytest.skip("about where the state file is found; a PostgreSQL URL is the same from every folder")
    monkeypatch.delenv("REALLABOR_STATE")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    fresh = send(str(content_copy / NEWSLETTER), "--yes")
    assert fresh.exit_code == 1
    assert "no state file here yet" in str(fresh.exception)
    assert not (elsewhere / ".reallabor").exists() and not (content_copy.parent / ".reallabor").exists()
    home = content_copy.parent / ".reallabor"
    home.mkdir()
    (tmp_path / "state.sqlite3").rename(home / "state.sqlite3")
    found = send(str(content_copy / NEWSLETTER), "--content", str(content_copy), "--yes")
    assert found.exit_code == 0, found.output
    assert received(server) == {p.email: 1 for p in PEOPLE}


# --- 7. one lock per campaign ------------------------------------------------------------------------


def test_a_second_send_through_a_symlinked_state_path_is_refused(
    env: dict[str, str], content_copy: Path, server: FaultServer, tmp_path: Path
) -> None:
    if isinstance(state_of(env), DatabaseUrl):
        pytest.skip("about the state file's path (on PostgreSQL senders share a campaign: test_sending_shared.py)")
    link = tmp_path / "link.sqlite3"
    link.symlink_to(tmp_path / "state.sqlite3")
    with send_process(env, str(content_copy / NEWSLETTER), "--yes", "--rate", "6/min") as first:
        wait_for(lambda: len(server.handler.messages) >= 1)
        second = send(str(content_copy / NEWSLETTER), "--yes", "--resume", "--state", str(link))
        assert second.exit_code == 1 and "another `send` of newsletter:2023-3 is running" in str(second.exception)
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=30)
    assert max(received(server).values()) == 1


# --- 8. mails that say what they are -----------------------------------------------------------------


def test_a_test_send_is_marked_names_only_its_address_and_drops_what_an_earlier_test_left_owed(
    env: dict[str, str], content_copy: Path, server: FaultServer
) -> None:
    server.faults.mail = "553 5.7.1 Sender address rejected"
    refused = send(str(content_copy / NEWSLETTER), "--to", "kim@bochum.example", "--yes")
    assert refused.exit_code == 1  # the test row for kim stays owed
    server.faults.mail = None
    result = send(str(content_copy / NEWSLETTER), "--to", "olena@dnipro.example", "--yes")
    assert result.exit_code == 0, result.output
    assert "olena@dnipro.example only: a test message" in result.output and "subscribed" not in result.output
    assert [m.rcpt_tos for m in server.handler.messages] == [["olena@dnipro.example"]]
    assert str(server.handler.messages[0].message["Subject"]).startswith("[TEST] Реаллабор")
    real = send(str(content_copy / NEWSLETTER), "--yes")
    assert "to send    7 new" in real.output


def test_a_resumed_update_is_still_an_update(env: dict[str, str], content_copy: Path, server: FaultServer) -> None:
    assert send(str(content_copy / EVENT), "--yes").exit_code == 0
    move_end(content_copy)
    server.handler.messages.clear()
    assert send(str(content_copy / EVENT), "--yes", "--limit", "2").exit_code == 0
    resumed = send(str(content_copy / EVENT), "--yes", "--resume")
    assert resumed.exit_code == 0, resumed.output
    sent = subjects(server)
    assert set(sent) == {p.email for p in PEOPLE}
    assert all(subject.startswith("Geändert: ") for subject in sent.values()), sent
