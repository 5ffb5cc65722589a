"""The send ledger's commits (issue 15): on PostgreSQL they take no shared write lock, so senders and the
web processes' transactions never queue behind each other; on both back ends a failed commit leaves nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from reallabor_mail.db import DatabaseUrl, StateError, StateLocation, connect, transaction
from reallabor_mail.delivery.ledger import Ledger
from reallabor_mail.recipients.person import Recipient

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
CAMPAIGN = "newsletter:2026-1"


def owed(state: StateLocation, count: int) -> Ledger:
    ledger = Ledger(connect(state), lambda: NOW)
    ledger.add(CAMPAIGN, [(Recipient(f"p{i}@example.org"), "newsletter") for i in range(count)])
    return ledger


def test_a_ledger_commit_does_not_wait_for_another_writers_transaction(pg_url: str) -> None:
    state = DatabaseUrl(pg_url)
    ledger = owed(state, 2)
    other = connect(state)
    with transaction(other):  # e.g. a sign-up in a web process, holding the shared write lock
        other.execute("UPDATE recipients_meta SET value = value")
        sender = Ledger(connect(state), lambda: NOW)
        sender.conn.wait_for_writers(2000)
        entry = next(ledger.due(CAMPAIGN))
        sender.apply([sender.start_op(entry, "<1@example.org>")])  # before: waited for the lock, then failed
    assert ledger.summary(CAMPAIGN)["sending"] == 1


def test_a_failed_ledger_commit_leaves_nothing_and_the_connection_works(state: StateLocation) -> None:
    ledger = owed(state, 2)
    first, second = list(ledger.due(CAMPAIGN))
    broken = ("UPDATE send_ledger SET state = 'no such state' WHERE id = ?", (second.id,))  # the CHECK refuses it
    with pytest.raises(StateError):
        ledger.apply([ledger.start_op(first, "<1@example.org>"), broken])
    assert ledger.summary(CAMPAIGN)["pending"] == 2 and not ledger.conn.in_transaction
    ledger.apply([ledger.start_op(first, "<1@example.org>"), ledger.finish_op(first, "sent", "250 OK")])
    assert ledger.summary(CAMPAIGN)["sent"] == 1


def test_starts_wait_for_another_writer_without_stopping_the_event_loop(tmp_path: Path) -> None:
    """While an import holds the SQLite file, the ledger's commits wait for it in their thread: the loop
    goes on (other connections' replies, Ctrl-C), and the starts are committed once the file is free.
    (PostgreSQL's ledger commits do not wait for other writers: the test above.)"""
    import asyncio
    import threading

    from reallabor_mail.delivery.ledger import GroupCommit

    state = tmp_path / "state.sqlite3"
    ledger = owed(state, 6)
    entries = list(ledger.due(CAMPAIGN))
    holder, taken, release = connect(state), threading.Event(), threading.Event()

    def hold() -> None:
        with transaction(holder):
            holder.execute("UPDATE recipients_meta SET value = value")
            taken.set()
            release.wait(5)

    async def run() -> int:
        commit = GroupCommit(ledger)
        await commit.start(entries[0], "<0@example.org>")  # the file free: committed at once
        thread = threading.Thread(target=hold)
        thread.start()
        taken.wait(5)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1
                if ticks == 20:
                    release.set()

        ticker = asyncio.create_task(tick())
        await asyncio.gather(*(commit.start(entry, f"<{entry.id}@example.org>") for entry in entries[1:]))
        ticker.cancel()
        await commit.flush()
        commit.close()
        thread.join()
        return ticks

    ticks = asyncio.run(run())
    assert ticks >= 20  # the loop ran while the commits waited (the lock is released on its 20th tick)
    assert ledger.summary(CAMPAIGN)["sending"] == 6


def test_quick_sqlite_commits_are_made_on_the_event_loop_without_a_thread(tmp_path: Path) -> None:
    """A local file commits in about 0.1 ms, less than a hand-over to a thread and back: no thread is started."""
    import asyncio
    import threading

    from reallabor_mail.delivery.ledger import GroupCommit

    ledger = owed(tmp_path / "state.sqlite3", 20)

    async def run() -> set[str]:
        commit = GroupCommit(ledger)
        for entry in ledger.due(CAMPAIGN):
            await commit.start(entry, f"<{entry.id}@example.org>")
            commit.finish(entry, "sent", "250 OK")
        await commit.flush()
        names = {thread.name for thread in threading.enumerate()}
        commit.close()
        return names

    assert not any(name.startswith("ledger") for name in asyncio.run(run()))
    assert ledger.summary(CAMPAIGN)["sent"] == 20
