"""PostgreSQL state (issue 15): two workers share one campaign on one database, each claiming its own ledger
rows (``FOR UPDATE SKIP LOCKED``); one of them is SIGKILLed at random moments and restarted.

The rows a killed sender had claimed but not started go back to the pool as soon as its session is gone;
the ones it had in flight become ``unknown`` (listed by ``--status``) and are never sent again. At the end
every row is ``sent`` (exactly one message arrived) or ``unknown`` (at most one arrived).
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench.run import smtp_sink
from reallabor_mail.db import DatabaseUrl, connect
from tests.reliability.conftest import Row
from tests.reliability.harness import (
    CAMPAIGN,
    accepted,
    ledger_states,
    populate,
    recording_server,
    send_command,
    send_env,
    tally,
)

COUNT = 2000
KILLS = 20
BIG = 20_000


def _senders(command: list[str], env: dict[str, str]) -> list[subprocess.Popen[str]]:
    return [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]  # fmt: skip


def _kill_one_and_restart(pair: list[subprocess.Popen[str]], command: list[str], env: dict[str, str],
                          rng: random.Random, progress: Callable[[], int], step: int) -> bool:  # fmt: skip
    """Wait until ``step`` more messages arrived, SIGKILL one sender at random and start it again; False
    when both had ended before (nothing left to kill)."""
    target, deadline = progress() + step, time.monotonic() + 60
    while progress() < target and any(p.poll() is None for p in pair) and time.monotonic() < deadline:
        time.sleep(0.002)
    running = [i for i, p in enumerate(pair) if p.poll() is None]
    if not running:
        return False
    victim = rng.choice(running)
    pair[victim].send_signal(signal.SIGKILL)
    pair[victim].wait()
    pair[victim] = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return True


def _owners(state: DatabaseUrl) -> int:
    """How many sender sessions sent rows of the campaign (each start of a sender is a new session)."""
    conn = connect(state)
    try:
        row = conn.execute("SELECT count(DISTINCT owner) FROM send_ledger WHERE campaign = ? AND state = 'sent'",
                           (CAMPAIGN,)).fetchone()  # fmt: skip
        return int(row[0])
    finally:
        conn.close()


def test_two_workers_on_postgresql_one_killed_twenty_times(content_copy: Path, tmp_path: Path, pg_url: str,
                                                          row: Row) -> None:  # fmt: skip
    state, log = DatabaseUrl(pg_url), tmp_path / "accepted.log"
    populate(state, range(COUNT))
    rng = random.Random(15)
    started = time.monotonic()
    with recording_server(log) as port:
        env = send_env(state, port)
        command = send_command(content_copy, "--resume", "--connections", "2")
        pair = _senders(command, env)
        kills = sum(_kill_one_and_restart(pair, command, env, rng, lambda: len(accepted(log)), rng.randint(1, 80))
                    for _ in range(KILLS))  # fmt: skip
        for sender in pair:
            sender.wait(timeout=300)
        final = subprocess.run(send_command(content_copy, "--resume"), env=env, capture_output=True, text=True,
                               timeout=300)  # fmt: skip
        status = subprocess.run([*send_command(content_copy)[:-1], "--status"], env=env, capture_output=True,
                                text=True, timeout=60)  # fmt: skip
    minutes = (time.monotonic() - started) / 60
    assert final.returncode == 0, final.stderr
    found = tally(log, state, COUNT, status.stdout)
    received, unknown, lost, duplicates, unlisted = (
        found.received, found.unknown, found.lost, found.duplicates, found.unlisted
    )
    doubled_unlisted = found.doubled_unlisted
    senders = _owners(state)
    row(
        "PostgreSQL state",
        f"two workers (`send --resume`) sharing one {COUNT:,}-message campaign on one PostgreSQL database, one of "
        "them SIGKILLed at a random moment and restarted",
        kills,
        len(lost) + len(doubled_unlisted) + len(unlisted),
        f"{len(received):,} received, {duplicates} duplicates, {len(unknown)} rows unknown (all listed by "
        f"--status); {senders} sender sessions sent a share; {minutes:.1f} min",
    )
    assert lost == [] and doubled_unlisted == [] and unlisted == []
    assert senders >= 2


def test_two_workers_send_twenty_thousand_to_smtp_sink_one_killed_and_restarted(
    content_copy: Path, tmp_path: Path, pg_url: str, row: Row
) -> None:
    """The issue's "done when": 20,000 recipients, Postfix's smtp-sink, two workers, one SIGKILLed once."""
    state = DatabaseUrl(pg_url)
    populate(state, range(BIG))
    started = time.monotonic()
    with smtp_sink(tmp_path) as sink:
        env = send_env(state, sink.port)
        command = send_command(content_copy, "--resume", "--connections", "4")
        pair = _senders(command, env)
        killed = _kill_one_and_restart(pair, command, env, random.Random(20), sink.count, BIG // 3)
        for sender in pair:
            sender.wait(timeout=600)
        final = subprocess.run(send_command(content_copy, "--resume"), env=env, capture_output=True, text=True,
                               timeout=600)  # fmt: skip
        time.sleep(0.5)  # smtp-sink prints its count as it goes
        arrived = sink.count()
    seconds = time.monotonic() - started
    assert final.returncode == 0, final.stderr
    states = Counter(ledger_states(state).values())
    lost = BIG - states["sent"] - states["unknown"]
    duplicates = max(0, arrived - states["sent"] - states["unknown"])
    short = max(0, states["sent"] - arrived)  # marked sent, never arrived
    row(
        "PostgreSQL state",
        f"two workers send one {BIG:,}-recipient campaign to Postfix's smtp-sink, one SIGKILLed after a third and "
        "restarted",
        int(killed),
        lost + duplicates + short,
        f"{arrived:,} arrived, {states['unknown']} unknown, {duplicates} duplicates; {seconds:.0f} s "
        f"({BIG / seconds:,.0f} messages/s)",
    )
    assert killed and lost == 0 and duplicates == 0 and short == 0
