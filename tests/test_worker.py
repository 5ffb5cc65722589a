"""``reallabor-mail worker`` as a long-running process: it sends what is due, and SIGTERM or SIGINT end it
cleanly. The schedule is made in this process with a test clock an hour back, so the real clock of the
worker's process finds it due and within the grace period."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from zoneinfo import ZoneInfo

import pytest

from tests import test_schedule
from tests.conftest import ROOT, SmtpServer
from tests.test_schedule import Office
from tests.test_sending import NEWSLETTER, PEOPLE

CLI = [sys.executable, "-c", "from reallabor_mail.cli.main import run; run()"]

office = test_schedule.office  # the fixture: people, SMTP settings and a test clock


def schedule_half_an_hour_ago(office: Office) -> None:
    now = dt.datetime.now(ZoneInfo("Europe/Berlin"))
    office.clock.now = now - dt.timedelta(hours=1)
    at = f"{now - dt.timedelta(minutes=30):%Y-%m-%d %H:%M}"
    result = office.send(NEWSLETTER, "--at", at, "--yes")
    assert result.exit_code == 0, result.output


def start_worker(office: Office, *options: str) -> subprocess.Popen[str]:
    env = {**os.environ, **_environ(office)}
    return subprocess.Popen([*CLI, "worker", "--content", str(office.content), *options], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _environ(office: Office) -> dict[str, str]:
    smtp = office.settings.smtp()
    assert smtp is not None and office.settings.secret is not None
    return {
        "REALLABOR_SECRET": office.settings.secret.reveal(), **office.environ(),
        "REALLABOR_SMTP_HOST": smtp.host, "REALLABOR_SMTP_PORT": str(smtp.port), "REALLABOR_SMTP_SECURITY": "none",
    }  # fmt: skip


def wait_for(condition: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not callable(condition) or not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_the_worker_sends_what_is_due_and_stops_cleanly(office: Office, smtp_server: SmtpServer,
                                                        stop: signal.Signals) -> None:  # fmt: skip
    schedule_half_an_hour_ago(office)
    worker = start_worker(office, "--interval", "1")
    try:
        wait_for(lambda: len(smtp_server.messages) == len(PEOPLE) or worker.poll() is not None)
        time.sleep(1.5)  # another round or two: nothing more is sent
        worker.send_signal(stop)
        out, err = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, err
    assert "7 sent" in out and "worker stopped" in out.splitlines()[-1], out
    assert len(smtp_server.messages) == len(PEOPLE)


def test_once_does_what_is_due_and_exits(office: Office, smtp_server: SmtpServer) -> None:
    schedule_half_an_hour_ago(office)
    worker = start_worker(office, "--once")
    out, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err
    assert "7 sent" in out and len(smtp_server.messages) == len(PEOPLE)


def test_once_exits_non_zero_when_a_due_send_cannot_go_out(office: Office) -> None:
    schedule_half_an_hour_ago(office)
    file = office.content / NEWSLETTER
    file.write_text(file.read_text(encoding="utf-8").replace("title: ", "titel: ", 1), encoding="utf-8")
    worker = start_worker(office, "--once")
    out, err = worker.communicate(timeout=120)
    assert worker.returncode == 1 and "failed, nothing sent" in out
    assert "some campaigns were not sent" in err


def test_two_workers_at_once_send_a_due_campaign_once(office: Office, smtp_server: SmtpServer) -> None:
    """Two workers (on one machine here, on several with PostgreSQL) find the same campaign due: one sends
    it, the other finds it held (or already sent) and leaves it; each person gets one message."""
    schedule_half_an_hour_ago(office)
    workers = [start_worker(office, "--interval", "1") for _ in range(2)]
    try:
        wait_for(lambda: len(smtp_server.messages) >= len(PEOPLE) or any(w.poll() is not None for w in workers))
        time.sleep(2.5)  # two more rounds of each: nothing more is sent
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        outputs = [worker.communicate(timeout=30) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), outputs
    recipients = sorted(rcpt for message in smtp_server.messages for rcpt in message.rcpt_tos)
    assert recipients == sorted(person.email for person in PEOPLE)
    assert sum("7 sent" in out for out, _err in outputs) == 1
