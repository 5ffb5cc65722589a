"""Crash and resume: ``send`` of 2,000 messages killed with SIGKILL at random points 50 times, each
time resumed, against a recording SMTP server in its own process.

Kill points are random: after a random number of newly accepted messages (mid-send), or a random
time after start (while loading, rendering, filling the ledger or on the first messages). At the end
every ledger row is ``sent`` (exactly one message arrived) or ``unknown`` (killed between MAIL FROM
and the reply; at most one arrived, and the address is listed by ``--status``).
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

from tests.reliability.conftest import Row
from tests.reliability.harness import accepted, populate, recording_server, send_command, send_env, tally

COUNT = 2000
KILLS = 50


def kill_once(command: list[str], env: dict[str, str], log: Path, rng: random.Random) -> str:
    """Start ``send`` and SIGKILL it at a random point; returns where it was killed."""
    before = len(accepted(log))
    sender = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    if rng.random() < 0.3:
        time.sleep(rng.uniform(0.05, 1.0))
        where = "timed"
    else:
        target = before + rng.randint(1, 50)
        while len(accepted(log)) < target and sender.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        where = "mid-send"
    assert sender.poll() is None, f"send ended before the kill: {sender.stderr.read() if sender.stderr else ''}"
    sender.send_signal(signal.SIGKILL)
    sender.wait()
    return where if len(accepted(log)) > before else "before the first message"


def test_sigkill_fifty_times_then_resume(tmp_path: Path, content_copy: Path, row: Row) -> None:
    state, log = tmp_path / "state.sqlite3", tmp_path / "accepted.log"
    populate(state, range(COUNT))
    rng = random.Random(7)
    started = time.monotonic()
    with recording_server(log) as port:
        env = send_env(state, port)
        where: Counter[str] = Counter()
        for _ in range(KILLS):
            connections = str(rng.randint(1, 4))
            where[kill_once(send_command(content_copy, "--resume", "--connections", connections), env, log, rng)] += 1
        final = subprocess.run(send_command(content_copy, "--resume"), env=env, capture_output=True, text=True,
                               timeout=300)  # fmt: skip
        status = subprocess.run([*send_command(content_copy)[:-1], "--status"], env=env, capture_output=True,
                                text=True, timeout=60)  # fmt: skip
    minutes = (time.monotonic() - started) / 60
    assert final.returncode == 0, final.stderr

    found = tally(log, state, COUNT, status.stdout)
    received, rows, unknown, lost, duplicates, unlisted = (
        found.received, found.rows, found.unknown, found.lost, found.duplicates, found.unlisted
    )
    row(
        "Crash and resume",
        f"`send` of {COUNT:,} messages (1–4 connections) killed with SIGKILL at random points, each time "
        "resumed with --resume; recording SMTP server in its own process",
        KILLS,
        len(lost) + max(0, duplicates - len(unknown)) + len(unlisted),
        f"kills {dict(sorted(where.items()))}; {len(received):,} received, {duplicates} duplicates, "
        f"{len(unknown)} rows unknown (all listed by --status); {minutes:.1f} min",
    )
    assert lost == [] and unlisted == []
    assert duplicates <= len(unknown)
    assert all(received[email] <= 1 for email in unknown)
    assert set(received) <= set(rows)
