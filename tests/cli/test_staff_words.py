"""What German (and Ukrainian) staff read during and after a send is in their language, numbers included.

Each case runs the real ``send`` command against a real (fault-injecting) SMTP server and a real state file,
with the staff language set as staff set it (``REALLABOR_LANG``).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reallabor_mail.cli.main import main
from reallabor_mail.db import connect
from reallabor_mail.delivery.engine import RetryPolicy
from reallabor_mail.i18n import records
from reallabor_mail.i18n.messages import activate_staff_language
from reallabor_mail.recipients import store as recipients
from reallabor_mail.recipients.person import Recipient
from tests.conftest import ROOT
from tests.smtp_faults import Faults, FaultServer, fault_server
from tests.test_delivery_faults import people, run
from tests.test_sending import NEWSLETTER, NOW, state_of, subscribed_env

NBSP = "\u00a0"


@pytest.fixture(autouse=True)
def english_afterwards() -> Iterator[None]:
    """The CLI makes its staff language the process's: later tests expect the suite's English again."""
    yield
    activate_staff_language("en")


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with fault_server(Faults(pipelining=True)) as running:
        yield running


@pytest.fixture
def env(tmp_path: Path, server: FaultServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = subscribed_env(tmp_path, server.host, server.port, monkeypatch)
    monkeypatch.setenv("REALLABOR_LANG", "de")
    return {**values, "REALLABOR_LANG": "de"}


def send(*args: str, answer: str | None = None) -> Result:
    return CliRunner().invoke(main, ["send", *args], input=answer, catch_exceptions=True)


def add_people(env: dict[str, str], count: int) -> None:
    conn = connect(state_of(env))
    for i in range(count):
        person = Recipient(f"p{i:04d}@example.org", first_name=f"P{i}", language="uk" if i % 2 else "de")
        recipients.add_recipient(conn, person, "newsletter", status="subscribed", source="test", now=NOW)
    conn.close()


def test_the_plan_names_the_connection_in_german(env: dict[str, str], content_copy: Path) -> None:
    result = send(str(content_copy / NEWSLETTER), answer="n\n")
    assert f"über       127.0.0.1:{env['REALLABOR_SMTP_PORT']} (unverschlüsselt, auf diesem Rechner)" in result.output
    assert "unencrypted" not in result.output and "loopback" not in result.output


def test_counts_are_grouped_as_the_staff_language_writes_them(
    env: dict[str, str], content_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_people(env, 3000)
    german = send(str(content_copy / NEWSLETTER), "--list", "newsletter", answer="n\n")
    assert "newsletter (3.007 angemeldet)" in german.output, german.output
    assert "zu senden  3.007 neu (de 1.505, uk 1.502)" in german.output
    assert "3.007 Nachrichten" in german.output and "3,007" not in german.output
    monkeypatch.setenv("REALLABOR_LANG", "uk")
    ukrainian = send(str(content_copy / NEWSLETTER), "--list", "newsletter", answer="n\n")
    assert f"3{NBSP}007" in ukrainian.output and "3,007" not in ukrainian.output and "3.007" not in ukrainian.output


def test_the_progress_bar_uses_the_words_of_the_summary(env: dict[str, str], content_copy: Path) -> None:
    result = send(str(content_copy / NEWSLETTER), "--list", "newsletter", "--yes")
    assert result.exit_code == 0, result.output
    assert "Versand läuft" in result.output and "7 versendet" in result.output
    assert "sending" not in result.output and "sent 7" not in result.output


def test_unknown_rows_show_their_reason_in_german_and_a_later_send_says_they_are_unknown(
    env: dict[str, str], content_copy: Path, server: FaultServer
) -> None:
    server.faults.lose_reply = {"kim@bochum.example"}
    first = send(str(content_copy / NEWSLETTER), "--list", "newsletter", "--yes")
    assert first.exit_code == 1
    lost = "die Nachricht wurde übergeben, dann hat der Server die Verbindung getrennt: sie ist vielleicht angekommen"
    assert f"unbekannt: {lost}" in first.output, first.output
    assert "it may or may not" not in first.output
    again = send(str(content_copy / NEWSLETTER), "--list", "newsletter", "--yes")
    assert again.exit_code == 0
    assert "Nichts Neues zu senden; bei 1 Nachricht ist unbekannt, ob sie angekommen ist (siehe --status)" in (
        again.output)  # fmt: skip
    assert "--to E-MAIL" in again.output and "alle auf der Liste haben diese Nachricht schon" not in again.output


def test_a_server_reply_stays_as_the_server_said_it(
    env: dict[str, str], content_copy: Path, server: FaultServer
) -> None:
    server.faults.rcpt = {"info@hamm.example": "550 5.1.1 <info@hamm.example>: user unknown"}
    send(str(content_copy / NEWSLETTER), "--list", "newsletter", "--yes")
    status = send(str(content_copy / NEWSLETTER), "--status")
    assert "info@hamm.example  550 5.1.1 <info@hamm.example>: user unknown" in status.output, status.output


def test_an_unfinished_send_names_its_file_and_the_next_send_says_so_in_german(
    env: dict[str, str], content_copy: Path
) -> None:
    path = content_copy / NEWSLETTER
    partial = send(str(path), "--list", "newsletter", "--yes", "--limit", "2")
    assert f"Fortsetzen mit: reallabor-mail send {NEWSLETTER} --resume" in partial.output.replace(
        str(content_copy) + "/", ""), partial.output  # fmt: skip
    assert "DATEI" not in partial.output
    again = send(str(path), "--list", "newsletter", "--yes")
    assert again.exit_code == 1
    assert "ein früherer Versand dieser Aussendung wurde unterbrochen (5 Nachrichten nicht fertig)" in str(
        again.exception)  # fmt: skip
    assert "setzen Sie ihn mit --resume fort" in str(again.exception)


def test_ctrl_c_is_reported_in_german(env: dict[str, str], content_copy: Path, server: FaultServer) -> None:
    command = [sys.executable, "-c", "from reallabor_mail.cli.main import run; run()", "send",
               str(content_copy / NEWSLETTER), "--list", "newsletter", "--yes", "--rate", "6/min"]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = 600
        while not server.handler.messages and deadline:
            deadline -= 1
            try:
                process.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                continue
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1
    stopped = ("vorzeitig beendet: mit Strg+C angehalten: keine neue Nachricht wurde begonnen; die unterwegs "
               "befindlichen wurden zu Ende gesendet")  # fmt: skip
    assert stopped in out, out + err
    assert "stopped by Ctrl-C" not in out + err


def test_a_locked_state_file_is_explained_in_german(env: dict[str, str]) -> None:
    """Another program holds the state file's write lock for longer than a command waits (10 s)."""
    holder = sqlite3.connect(state_of(env), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        done = subprocess.run(
            [sys.executable, "-c", "from reallabor_mail.cli.main import run; run()", "recipients", "unsubscribe",
             "kim@bochum.example"], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert done.returncode == 1
    assert done.stderr.startswith(f"{env['REALLABOR_STATE']}: ein anderes Programm"), done.stderr
    assert "führen Sie den Befehl dann erneut aus" in done.stderr and "database is locked" not in done.stderr


def test_the_stop_after_many_failures_in_a_row_is_shown_in_german(tmp_path: Path) -> None:
    with fault_server(Faults(storm=10_000)) as storm:
        _ledger, report = run(tmp_path / "state.sqlite3", storm, people(20),
                              retry=RetryPolicy(attempts=2, delay=0.001, stop_after=3))  # fmt: skip
    assert report.stopped is not None and report.stopped.startswith("the server failed 3 times in a row")
    activate_staff_language("de")
    assert records.shown(report.stopped).startswith("der Server ist 3-mal hintereinander ausgefallen (zuletzt: 421")


def test_every_record_we_write_reads_back_in_german_and_ukrainian() -> None:
    for language in ("de", "uk"):
        activate_staff_language(language)
        for record in records.RECORDS:
            text = record(**dict.fromkeys(record.values, "x.example"))
            assert records.shown(text) != text, (language, record.template)
