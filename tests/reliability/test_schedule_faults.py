"""Scheduled sending under faults: a schedule missed by a day (the machine was off), and ``worker`` killed
with SIGKILL mid-send again and again, each time started again, against a recording SMTP server in its
own process. Schedules are made through the real CLI with a test clock in the past, so the real clock
of the worker's processes finds them due (by a day, or within the grace period)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import signal
import subprocess
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from click.testing import CliRunner

from reallabor_mail.cli.main import main
from reallabor_mail.db import connect
from reallabor_mail.settings import Settings
from tests.reliability.conftest import Row
from tests.reliability.harness import (
    CAMPAIGN,
    CLI,
    NEWSLETTER,
    accepted,
    populate,
    recording_server,
    send_env,
    tally,
)

BERLIN = ZoneInfo("Europe/Berlin")
COUNT = 1500
KILLS = 10


def schedule(content: Path, env: dict[str, str], due: dt.datetime) -> None:
    """``send … --at DUE --yes`` with a clock an hour before ``due`` (the real clock may be past it)."""
    settings = dataclasses.replace(Settings.from_environ(env), clock=lambda: due - dt.timedelta(hours=1))
    at = f"{due.astimezone(BERLIN):%Y-%m-%d %H:%M}"
    result = CliRunner().invoke(main, ["send", str(content / NEWSLETTER), "--at", at, "--yes"], obj=settings)
    assert result.exit_code == 0, result.output


def worker(content: Path) -> list[str]:
    return [*CLI, "worker", "--once", "--content", str(content)]


def campaign_state(state: Path) -> str:
    conn = connect(state)
    try:
        return str(conn.execute("SELECT state FROM campaigns WHERE key = ?", (CAMPAIGN,)).fetchone()[0])
    finally:
        conn.close()


def test_a_schedule_missed_by_a_day_is_not_sent(tmp_path: Path, content_copy: Path, row: Row) -> None:
    state, log = tmp_path / "state.sqlite3", tmp_path / "accepted.log"
    populate(state, range(50))
    with recording_server(log) as port:
        env = send_env(state, port)
        schedule(content_copy, env, dt.datetime.now(BERLIN).replace(second=0, microsecond=0) - dt.timedelta(days=1))
        run = subprocess.run(worker(content_copy), env=env, capture_output=True, text=True, timeout=120)
        again = subprocess.run(worker(content_copy), env=env, capture_output=True, text=True, timeout=120)
    status = subprocess.run([*CLI, "send", str(content_copy / NEWSLETTER), "--status"], env=env, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    sent = len(accepted(log))
    marked = campaign_state(state)
    said = "Missed: newsletter:2023-3 was due" in status.stdout
    row(
        "Scheduled sending",
        "a schedule missed by a day (the machine was off): `worker --once` started a day after it was due, "
        "then again; 50 subscribers",
        1,
        sent + (marked != "missed") + (not said),
        f"{sent} sent, campaign state {marked}, `--status` says “Missed”: {said}; worker exit status "
        f"{run.returncode}, logged “missed, not sent”: {'missed, not sent' in run.stdout}; the second run: "
        f"{'nothing' if not again.stdout else again.stdout.strip()}",
    )
    assert run.returncode == 0 and again.returncode == 0 and again.stdout == "", run.stderr
    assert sent == 0 and marked == "missed" and said


def kill_once(command: list[str], env: dict[str, str], log: Path, rng: random.Random) -> bool:
    """Start the worker and SIGKILL it after a random number of newly accepted messages; False if it ended."""
    before = len(accepted(log))
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    target, deadline = before + rng.randint(1, 80), time.monotonic() + 60
    while len(accepted(log)) < target and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGKILL)
    process.wait()
    return True


def test_worker_killed_mid_send_then_started_again(tmp_path: Path, content_copy: Path, row: Row) -> None:
    state, log = tmp_path / "state.sqlite3", tmp_path / "accepted.log"
    populate(state, range(COUNT))
    rng = random.Random(11)
    started = time.monotonic()
    with recording_server(log) as port:
        env = send_env(state, port)
        schedule(content_copy, env, dt.datetime.now(BERLIN).replace(second=0, microsecond=0) - dt.timedelta(minutes=5))
        kills = sum(kill_once(worker(content_copy), env, log, rng) for _ in range(KILLS))
        final = subprocess.run(worker(content_copy), env=env, capture_output=True, text=True, timeout=300)
        status = subprocess.run([*CLI, "send", str(content_copy / NEWSLETTER), "--status"], env=env,
                                capture_output=True, text=True, timeout=60)  # fmt: skip
    minutes = (time.monotonic() - started) / 60
    found = tally(log, state, COUNT, status.stdout)
    received, unknown, lost, duplicates, unlisted = (
        found.received, found.unknown, found.lost, found.duplicates, found.unlisted
    )
    marked = campaign_state(state)
    row(
        "Scheduled sending",
        f"`worker` sending a scheduled newsletter to {COUNT:,} killed with SIGKILL mid-send, each time started "
        "again (`worker --once`); recording SMTP server in its own process",
        kills,
        len(lost) + max(0, duplicates - len(unknown)) + len(unlisted) + (marked != "sent"),
        f"{len(received):,} received, {duplicates} duplicates, {len(unknown)} rows unknown (all listed by "
        f"--status); campaign state {marked}; {minutes:.1f} min",
    )
    assert final.returncode == 0, final.stdout + final.stderr
    assert lost == [] and unlisted == [] and duplicates <= len(unknown) and marked == "sent"
