"""The send ledger: one row per campaign and recipient, so a send can die at any moment and go on.

Table ``send_ledger`` of the state database (created by :mod:`reallabor_mail.db`'s migrations):

- ``state``: ``pending`` (owed a message), ``sending`` (committed before MAIL FROM), ``sent``,
  ``retry`` (a temporary failure, a domain block or a stopped run; ``--retry-failed`` picks it up),
  ``failed`` (permanent: no such user, refused), ``skipped`` (unsubscribed, erased or suppressed after
  the send began: nothing was handed over), ``unknown`` (the process died between MAIL FROM and the
  server's reply, or the whole message was handed over and the reply never came, so we cannot know
  whether it arrived);
- ``reply``: the server's reply or the reason for the state, ``message_id``: the Message-ID sent;
- ``recipient``: the person's details (name, language) while a message is still owed; cleared when the
  row is final, so the ledger keeps no personal data beyond the address once a send is done.

Commit before MAIL FROM and after the reply: :class:`GroupCommit` collects the state changes of all
connections and commits them together (one fsync for many messages), but a connection waits for the
commit of its ``sending`` row before it talks to the server. A row found in ``sending`` when a run is
resumed was interrupted mid-conversation: it becomes ``unknown`` and is listed, never resent silently.

The promise (README): a message is never handed to a server twice unless staff ask for it (``--to``,
or a new campaign). A campaign's first ``sending`` row is committed together with what else must be
known once anything may have gone out (for an event: the version, table ``event_versions``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

from reallabor_mail.db import Connection, StateError, StateLocation, connect, transaction, utc_stamp
from reallabor_mail.recipients.person import Recipient

State = Literal["pending", "sending", "sent", "retry", "failed", "unknown", "skipped"]
STATES: tuple[State, ...] = get_args(State)
Clock = Callable[[], dt.datetime]

_PERSON_FIELDS = tuple(f.name for f in fields(Recipient))


def _person(recipient: Recipient) -> str:
    return json.dumps({name: getattr(recipient, name) for name in _PERSON_FIELDS}, ensure_ascii=False)


def forget(conn: Connection, email: str, stand_in: str) -> None:
    """An erased person leaves the ledger: rows still owed are dropped; the others (sent, failed, in
    flight, unknown) keep their state, so campaign counts stay, with ``stand_in`` (a keyed hash) for
    the address and no Message-ID, server reply or details."""
    with transaction(conn):
        conn.execute("DELETE FROM send_ledger WHERE email = ? AND state IN ('pending', 'retry')", (email,))
        conn.execute(
            "UPDATE send_ledger SET email = ?, message_id = NULL, reply = NULL, recipient = NULL WHERE email = ?",
            (stand_in, email),
        )


@dataclass(frozen=True)
class Entry:
    """A message owed: the ledger row's id and the person it goes to."""

    id: int
    list_name: str
    recipient: Recipient
    attempts: int

    @property
    def email(self) -> str:
        return self.recipient.email


@dataclass(frozen=True)
class Row:
    """A ledger row as ``--status`` shows it."""

    email: str
    state: State
    reply: str | None
    message_id: str | None
    attempts: int
    updated: str


@dataclass(frozen=True)
class Summary:
    """How many rows of a campaign are in each state."""

    campaign: str
    counts: dict[State, int]

    def __getitem__(self, state: State) -> int:
        return self.counts.get(state, 0)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def interrupted(self) -> bool:
        """Rows left owed or in flight by a run that did not finish."""
        return self["pending"] > 0 or self["sending"] > 0


class Ledger:
    """Reads and writes the ledger rows of the state database."""

    def __init__(self, conn: Connection, clock: Clock) -> None:
        self.conn = conn
        self.clock = clock

    @property
    def path(self) -> StateLocation:
        """The state this ledger lives in (file or server)."""
        return self.conn.location

    def now(self) -> str:
        return utc_stamp(self.clock())

    # --- planning and bookkeeping ----------------------------------------------------------------

    def states(self, campaign: str) -> dict[str, State]:
        """Address → state for every row of a campaign (for the plan shown before sending)."""
        rows = self.conn.execute("SELECT email, state FROM send_ledger WHERE campaign = ?", (campaign,))
        return {row[0]: row[1] for row in rows}

    def summary(self, campaign: str) -> Summary:
        rows = self.conn.execute(
            "SELECT state, count(*) FROM send_ledger WHERE campaign = ? GROUP BY state", (campaign,)
        )
        return Summary(campaign, {row[0]: int(row[1]) for row in rows})

    def rows(self, campaign: str, states: Sequence[State]) -> list[Row]:
        """The rows of a campaign in some states, by address (for the lists of ``--status``)."""
        marks = ", ".join("?" for _ in states)
        result = self.conn.execute(
            f"SELECT email, state, reply, message_id, attempts, updated FROM send_ledger "
            f"WHERE campaign = ? AND state IN ({marks}) ORDER BY email",
            (campaign, *states),
        )
        return [Row(*row) for row in result]

    def add(self, campaign: str, people: Iterable[tuple[Recipient, str]]) -> int:
        """Make a ``pending`` row for everyone who has none yet (one transaction); returns how many.

        People who already have a row (sent, failed, owed) keep it: the same campaign sent twice
        reaches only those who have not got it.
        """
        now = self.now()
        added = 0
        with transaction(self.conn):
            for person, list_name in people:
                cursor = self.conn.execute(
                    "INSERT INTO send_ledger (campaign, email, list_name, state, recipient, updated) "
                    "VALUES (?, ?, ?, 'pending', ?, ?) ON CONFLICT DO NOTHING",
                    (campaign, person.email, list_name, _person(person), now),
                )
                added += cursor.rowcount
        return added

    def reached(self, prefix: str, besides: str) -> set[str]:
        """Addresses that may hold a message of a campaign starting with ``prefix``, other than ``besides``
        (for an event update: who got an earlier version; test messages do not count)."""
        rows = self.conn.execute(
            "SELECT DISTINCT email FROM send_ledger WHERE substr(campaign, 1, ?) = ? AND campaign != ? "
            "AND campaign NOT LIKE '%#test' AND state IN ('sent', 'unknown', 'sending')",
            (len(prefix), prefix, besides),
        )
        return {row[0] for row in rows}

    def reset(self, campaign: str, person: Recipient, list_name: str) -> None:
        """Owe only this person the message (a ``--to`` test message may be sent any number of times;
        what an earlier test left owed is dropped, never sent by a later one)."""
        with transaction(self.conn):
            self.conn.execute(
                "DELETE FROM send_ledger WHERE campaign = ? AND (email = ? OR state IN ('pending', 'retry'))",
                (campaign, person.email),
            )
            self.conn.execute(
                "INSERT INTO send_ledger (campaign, email, list_name, state, recipient, updated) "
                "VALUES (?, ?, ?, 'pending', ?, ?)",
                (campaign, person.email, list_name, _person(person), self.now()),
            )

    def recover(self, campaign: str) -> list[str]:
        """``sending`` rows of an interrupted run become ``unknown``; returns their addresses.

        PostgreSQL: only rows whose sender has gone (another worker's rows in flight are its own).
        """
        gone = _OWNER_GONE if self.conn.is_postgres else ""
        with transaction(self.conn):
            emails = [row.email for row in self.stranded(campaign)]
            self.conn.execute(
                "UPDATE send_ledger SET state = 'unknown', updated = ?, reply = 'interrupted after MAIL FROM, "
                "before the reply: the message may or may not have arrived' "
                f"WHERE campaign = ? AND state = 'sending'{gone}",
                (self.now(), campaign),
            )
        return emails

    def stranded(self, campaign: str) -> list[Row]:
        """``sending`` rows no sender has in flight any more (a run that ended abruptly): their fate is
        unknown, as :meth:`recover` will record at the next run. Call it only when no send of the campaign
        runs (SQLite) — on PostgreSQL, rows whose sender's session has ended."""
        gone = _OWNER_GONE if self.conn.is_postgres else ""
        result = self.conn.execute(
            "SELECT email, state, reply, message_id, attempts, updated FROM send_ledger "
            f"WHERE campaign = ? AND state = 'sending'{gone} ORDER BY email",
            (campaign,),
        )
        return [Row(*row) for row in result]

    def requeue(self, campaign: str) -> int:
        """``retry`` rows become ``pending`` again (``--retry-failed``); returns how many."""
        with transaction(self.conn):
            cursor = self.conn.execute(
                "UPDATE send_ledger SET state = 'pending', retry_after = NULL, updated = ? "
                "WHERE campaign = ? AND state = 'retry'",
                (self.now(), campaign),
            )
        return cursor.rowcount

    def due(self, campaign: str, batch: int = 500, owner: str | None = None) -> Iterator[Entry]:
        """The ``pending`` rows in order, read in batches so that 100,000 rows are never all in memory.

        With ``owner`` (PostgreSQL, several senders of one campaign) each batch is claimed for that session
        (:meth:`claim`) and only claimed rows are yielded.
        """
        if owner is not None:
            while claimed := self.claim(campaign, owner, CLAIM_BATCH):
                yield from claimed
            return
        last = 0
        while True:
            rows = self.conn.execute(
                "SELECT id, list_name, recipient, attempts FROM send_ledger "
                "WHERE campaign = ? AND state = 'pending' AND id > ? ORDER BY id LIMIT ?",
                (campaign, last, batch),
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield Entry(row[0], row[1], Recipient(**json.loads(row[2])), row[3])
            last = rows[-1][0]

    def claim(self, campaign: str, owner: str, batch: int) -> list[Entry]:
        """PostgreSQL: take up to ``batch`` owed rows no live sender holds, for the session ``owner``.

        ``FOR UPDATE SKIP LOCKED``: two senders claiming at once take different rows. A row claimed by a
        sender whose session has ended (the process died) is free again; one it had started (``sending``)
        is not ``pending`` and is never claimed: :meth:`recover` makes it ``unknown``.
        """
        rows = self.conn.execute(
            "UPDATE send_ledger SET owner = ? WHERE id IN (SELECT id FROM send_ledger "
            f"WHERE campaign = ? AND state = 'pending'{_OWNER_GONE} ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED) "
            "RETURNING id, list_name, recipient, attempts",
            (owner, campaign, batch),
        ).fetchall()
        rows.sort(key=lambda row: int(row[0]))  # RETURNING gives no order: send in the ledger's
        return [Entry(row[0], row[1], Recipient(**json.loads(row[2])), row[3]) for row in rows]

    # --- the state changes of a send (executed by GroupCommit) -----------------------------------

    def start_op(self, entry: Entry, message_id: str) -> Op:
        return (
            "UPDATE send_ledger SET state = 'sending', message_id = ?, attempts = attempts + 1, updated = ? "
            "WHERE id = ?",
            (message_id, self.now(), entry.id),
        )

    def finish_op(self, entry: Entry, state: State, reply: str, retry_after: dt.datetime | None = None) -> Op:
        keep = state in ("retry", "unknown", "pending")  # maybe still owed: keep the details for the next attempt
        return (
            "UPDATE send_ledger SET state = ?, reply = ?, retry_after = ?, updated = ?"
            + ("" if keep else ", recipient = NULL")
            + " WHERE id = ?",
            (state, reply, utc_stamp(retry_after) if retry_after else None, self.now(), entry.id),
        )

    def apply(self, ops: Sequence[Op]) -> None:
        """Run state changes in one transaction (rows by id: :meth:`Connection.write_rows`)."""
        self.conn.write_rows(ops)


Op = tuple[str, tuple[Any, ...]]


def _settle(done: asyncio.Future[None], like: asyncio.Future[None]) -> asyncio.Future[None]:
    """``done`` ended as ``like`` ended (the commit it stands for was made elsewhere)."""
    _end(done, like.exception())
    return done


CLAIM_BATCH = 100  # rows a sender claims at a time on PostgreSQL (what a crash leaves claimed until noticed)
# PostgreSQL: a row no live session holds (never claimed, or its sender's session has ended)
_OWNER_GONE = " AND (owner IS NULL OR owner NOT IN (SELECT pid::text FROM pg_stat_activity))"
FINISH_WINDOW = 0.05  # seconds an outcome may wait to share the commit of the next message's start
SLOW_COMMIT = 0.005  # seconds: commits slower than this on average run off the event loop, in the thread
ABANDON_WAIT_MS = 1000  # a second Ctrl-C ends at once: it waits this long at most for another writer
WRITE_WAIT_MS = 300_000  # how long a ledger commit waits for another writer (a big import) before it fails


class CommitThread:
    """The thread slow commits run in, one after another. A daemon: a process ended by a second Ctrl-C
    does not wait at exit for a commit stuck behind another writer's lock (nor make it afterwards)."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self.worker: threading.Thread | None = None  # started on first use: quick commits never need it

    def run(self, work: Callable[[], None]) -> asyncio.Future[None]:
        """``work`` in the thread; the future ends as it ends."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def job() -> None:
            error: BaseException | None = None
            try:
                work()
            except BaseException as exc:
                error = exc
            with contextlib.suppress(RuntimeError):  # the loop has closed (the run was abandoned): nobody waits
                loop.call_soon_threadsafe(_end, done, error)

        if self.worker is None:
            self.worker = threading.Thread(target=self._serve, name="ledger", daemon=True)
            self.worker.start()
        self.jobs.put(job)
        return done

    def _serve(self) -> None:
        while (job := self.jobs.get()) is not None:
            job()

    def close(self, wait: bool) -> None:
        if self.worker is not None:
            self.jobs.put(None)
            if wait:
                self.worker.join()


def _end(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


class GroupCommit:
    """Commits the ledger changes of all connections together, one transaction at a time.

    ``await start(...)`` returns once the ``sending`` row is committed (the rule: commit before MAIL
    FROM). ``finish(...)`` queues an outcome for the next commit. Everything queued while the event
    loop handles one round of replies goes into one commit, so under load one fsync covers many messages.

    Where the commit runs: on a local SQLite file a commit with its fsync takes about 0.1 ms, less than
    handing it to a thread and back (two thread switches, the GIL), so the loop commits itself, once per
    round. While commits take longer than ``SLOW_COMMIT`` on average (a slow or busy disk, the file
    locked by another writer), and always on PostgreSQL (a round trip), they run in a thread of their
    own, and the loop goes on talking to the servers while the next changes gather; when they are
    quick again, the loop takes them back. Either way the commits use a connection of their own.
    """

    def __init__(self, ledger: Ledger, with_first_start: Sequence[Op] = ()) -> None:
        self.ledger = ledger
        self.writer = Ledger(connect(ledger.path), ledger.clock)
        self.writer.conn.wait_for_writers(WRITE_WAIT_MS)  # an import may hold the file a while
        # PostgreSQL: the rows this run claims belong to the session that commits their starts, so once it
        # is gone (the process died) nothing more can start under its name, and its claims are free again.
        self.owner = self.writer.conn.session_id() if self.writer.conn.is_postgres else None
        self._first: list[Op] = list(with_first_start)  # committed with the first `sending` row
        self._starts: set[int] = set()  # ids of the queued ops that start a message (or ride with the first)
        self.thread = CommitThread()
        self.inline = False  # where the next commit runs (see the class docstring)
        self.commit_seconds = 0.0  # a moving average of the commits' durations
        self._ops: list[Op] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._running: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._error: StateError | None = None

    async def start(self, entry: Entry, message_id: str) -> None:
        self._raise_error()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        ops = [*self._first, self.ledger.start_op(entry, message_id)]
        self._first = []
        self._starts.update(id(op) for op in ops)
        self._ops.extend(ops)
        self._waiters.append(future)
        self._kick()
        await future

    def finish(self, entry: Entry, state: State, reply: str, retry_after: dt.datetime | None = None) -> None:
        """Queue an outcome: it rides with the connection's next ``start`` or is committed within 50 ms."""
        self._ops.append(self.ledger.finish_op(entry, state, reply, retry_after))
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FINISH_WINDOW, self._kick)

    def _kick(self) -> None:
        """Start a commit of everything queued, unless one is running (then it follows when that ends)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._running is not None or not self._ops:
            return
        loop = asyncio.get_running_loop()
        self._place(not self.writer.conn.is_postgres and self.commit_seconds < SLOW_COMMIT)
        if self.inline:  # after the callbacks already due, so that this round's changes share the commit
            self._running = loop.create_future()
            loop.call_soon(self._commit_here, self._running)
            return
        ops, waiters = self._take()
        self._running = self.thread.run(lambda: self._apply(ops))
        self._running.add_done_callback(lambda done: self._committed(done, waiters))

    def _place(self, inline: bool) -> None:
        """Commit on the loop (waiting at most ``SLOW_COMMIT`` for another writer) or in the thread."""
        if inline != self.inline:
            self.inline = inline
            self.writer.conn.wait_for_writers(int(SLOW_COMMIT * 1000) if inline else WRITE_WAIT_MS)

    def _apply(self, ops: list[Op]) -> None:
        started = time.perf_counter()
        try:
            self.writer.apply(ops)
        finally:
            self.commit_seconds = 0.8 * self.commit_seconds + 0.2 * (time.perf_counter() - started)

    def _take(self) -> tuple[list[Op], list[asyncio.Future[None]]]:
        ops, waiters = self._ops, self._waiters
        self._ops, self._waiters, self._starts = [], [], set()
        return ops, waiters

    def _commit_here(self, done: asyncio.Future[None]) -> None:
        """One commit on the event loop's thread.

        A failed one (the file locked by another writer beyond ``SLOW_COMMIT``, or worse) is tried once
        more in the thread, waiting as long as a commit may, and what fails there is reported as from any
        commit: rolled back, the ledger's changes can simply be made again.
        """
        ops, waiters = self._take()
        try:
            self._apply(ops)
        except Exception:
            self.commit_seconds = max(self.commit_seconds, SLOW_COMMIT)
            self._place(False)
            again = self.thread.run(lambda: self._apply(ops))
            again.add_done_callback(lambda retried: self._committed(_settle(done, retried), waiters))
            return
        done.set_result(None)
        self._committed(done, waiters)

    def _committed(self, done: asyncio.Future[None], waiters: list[asyncio.Future[None]]) -> None:
        self._running = None
        error = done.exception()
        if isinstance(error, StateError):
            self._error = error
        elif isinstance(error, sqlite3.Error):
            self._error = StateError(f"{self.ledger.path}: the send ledger cannot be written: {error}")
        elif error is not None:
            self._error = StateError(
                f"{self.ledger.path}: the send ledger cannot be written: {type(error).__name__}: {error}"
            )
        if self._error is not None:  # starts queued meanwhile will never be committed: fail them too
            waiters, self._waiters = [*waiters, *self._waiters], []
        for waiter in waiters:
            if waiter.done():
                continue
            if self._error is not None:
                waiter.set_exception(self._error)
            else:
                waiter.set_result(None)
        if self._error is None:
            self._kick()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    async def flush(self) -> None:
        """Wait until everything queued is committed (at the end of a run); raise if a commit failed."""
        while self._running is not None or (self._ops and self._error is None):
            self._kick()
            if self._running is not None:
                await asyncio.wait([self._running])
        self._raise_error()

    def abandon(self, in_flight: Iterable[Entry], reason: str) -> None:
        """End now (a second Ctrl-C): commit the outcomes queued so far, and the rows in flight as ``unknown``.

        Starts not yet committed are dropped (their messages were not handed over: the rows stay owed).
        """
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        ops = [op for op in self._ops if id(op) not in self._starts]
        ops += [self.ledger.finish_op(entry, "unknown", reason) for entry in in_flight]
        self._ops, self._waiters, self._starts = [], [], set()
        with contextlib.suppress(StateError):  # another writer holds the file: the rows stay in flight, which
            self.ledger.conn.wait_for_writers(ABANDON_WAIT_MS)  # --status shows and the next run records as
            self.ledger.apply(ops)  # unknown (Ledger.stranded)

    def close(self, wait: bool = True) -> None:
        """End the commit thread; ``wait=False`` after :meth:`abandon`: a commit stuck behind another
        writer's lock is left to die with the process instead of being made (and the exit waiting for it)."""
        self.thread.close(wait)
        if wait:
            self.writer.conn.close()
