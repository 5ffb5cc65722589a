"""Disk and database: the state file on a read-only file system, the disk filling up during a send,
and a second ``send`` of the same campaign while the first runs.

The file systems are real: a small tmpfs mounted for the test (we run as root in CI and here), remounted
read-only or filled up with a filler file. Each time ``send`` must stop with one clear ``error:`` line
naming the state file, and after the cause is gone ``send --resume`` finishes without sending anyone a
message twice.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.reliability.conftest import Row
from tests.reliability.harness import accepted, ledger_states, populate, recording_server, send_command, send_env

COUNT = 300


@contextmanager
def small_disk(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` (skips the test where mounting is not permitted)."""
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def clear_error(done: subprocess.CompletedProcess[str], state: Path) -> bool:
    """One line about the state file, starting with its path, no traceback."""
    return done.returncode == 1 and "Traceback" not in done.stderr and done.stderr.startswith(f"{state}")


def last_error(done: subprocess.CompletedProcess[str], state: Path) -> str:
    """The command's last line of error output, with the state file's path shortened."""
    lines = done.stderr.strip().splitlines() or ["no error"]
    return lines[-1].replace(str(state), "STATE")[:200]


def finish(content: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(send_command(content, "--resume"), env=env, capture_output=True, text=True, timeout=300)


def outcome(state: Path, log: Path) -> tuple[int, int, int]:
    """(duplicates, rows neither sent nor unknown, sent rows without exactly one message)."""
    received = Counter(accepted(log))
    rows = ledger_states(state)
    return (
        sum(n - 1 for n in received.values() if n > 1),
        sum(1 for s in rows.values() if s not in ("sent", "unknown")) + COUNT - len(rows),
        sum(1 for e, s in rows.items() if s == "sent" and received[e] != 1),
    )


def test_state_file_on_a_read_only_file_system(tmp_path: Path, content_copy: Path, row: Row) -> None:
    log = tmp_path / "accepted.log"
    with small_disk(tmp_path / "disk", "16m") as disk, recording_server(log) as port:
        state = disk / "state.sqlite3"
        populate(state, range(COUNT))
        env = send_env(state, port)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        refused = subprocess.run(send_command(content_copy), env=env, capture_output=True, text=True, timeout=120)
        sent_while_ro = len(accepted(log))
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
        done = finish(content_copy, env)
        duplicates, unfinished, wrong = outcome(state, log)
    lost = int(not clear_error(refused, state)) + sent_while_ro + duplicates + unfinished + wrong
    row("Disk and database", "`send` with the state file on a read-only file system (tmpfs remounted ro), "
        f"then made writable and resumed ({COUNT} recipients)", 1, lost,
        f"refused: “{last_error(refused, state)}”; {sent_while_ro} sent while read-only")  # fmt: skip
    assert clear_error(refused, state), refused.stderr
    assert sent_while_ro == 0 and done.returncode == 0, done.stderr
    assert (duplicates, unfinished, wrong) == (0, 0, 0)


@pytest.mark.parametrize("free_kib", [16, 96, 192, 384])
def test_disk_fills_up_during_a_send(tmp_path: Path, content_copy: Path, row: Row, free_kib: int) -> None:
    log = tmp_path / "accepted.log"
    with small_disk(tmp_path / "disk", "8m") as disk, recording_server(log) as port:
        state = disk / "state.sqlite3"
        populate(state, range(COUNT))
        env = send_env(state, port)
        filler = disk / "filler"
        # Fill the disk, then give back free_kib (unbuffered, so that closing has nothing left to flush).
        with filler.open("wb", buffering=0) as fh:
            try:
                while True:
                    fh.write(b"\0" * 65536)
            except OSError:
                pass
        os.truncate(filler, max(0, filler.stat().st_size - free_kib * 1024))
        full = subprocess.run(send_command(content_copy, "--connections", "2"), env=env, capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        sent_before = len(accepted(log))
        filler.unlink()
        done = finish(content_copy, env)
        duplicates, unfinished, wrong = outcome(state, log)
    failed_clearly = full.returncode == 0 or clear_error(full, state)
    lost = int(not failed_clearly) + duplicates + unfinished + wrong + int(done.returncode != 0)
    how = "finished" if full.returncode == 0 else f"stopped: “{last_error(full, state)}”"
    row("Disk and database", f"`send` of {COUNT} messages with {free_kib} KiB left on the state file's disk "
        "(8 MiB tmpfs), then space freed and resumed", 1, lost,
        f"{sent_before} sent before the disk was full, {how}")  # fmt: skip
    assert failed_clearly, full.stderr
    assert done.returncode == 0, done.stderr
    assert (duplicates, unfinished, wrong) == (0, 0, 0)


def test_second_send_of_the_same_campaign_while_the_first_runs(tmp_path: Path, content_copy: Path, row: Row) -> None:
    state, log = tmp_path / "state.sqlite3", tmp_path / "accepted.log"
    populate(state, range(COUNT))
    with recording_server(log) as port:
        env = send_env(state, port)
        first = subprocess.Popen(send_command(content_copy, "--rate", "1800/min"), env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)  # fmt: skip
        deadline = time.monotonic() + 60
        while len(accepted(log)) < 10 and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.01)
        second = subprocess.run(send_command(content_copy), env=env, capture_output=True, text=True, timeout=120)
        resumed = subprocess.run(send_command(content_copy, "--resume"), env=env, capture_output=True, text=True,
                                 timeout=120)  # fmt: skip
        still_running = first.poll() is None
        _out, err = first.communicate(timeout=120)
        duplicates, unfinished, wrong = outcome(state, log)
    refused = [clear_error(s, state) and "another `send`" in s.stderr for s in (second, resumed)]
    lost = refused.count(False) + duplicates + unfinished + wrong + int(first.returncode != 0)
    row("Disk and database", f"a second `send` (plain, then --resume) of the same campaign while the first "
        f"sends {COUNT} messages", 2, lost,
        f"second: “{last_error(second, state)}”; --resume: “{last_error(resumed, state)}”; "
        f"{duplicates} duplicates")  # fmt: skip
    assert still_running, "the first send ended before the second started; raise COUNT or lower --rate"
    assert first.returncode == 0, err
    assert all(refused), (second.stderr, resumed.stderr)
    assert (duplicates, unfinished, wrong) == (0, 0, 0)
