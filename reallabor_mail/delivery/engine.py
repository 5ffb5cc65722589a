"""The delivery engine: owed ledger rows in, one message per row handed to a transport, every step recorded.

:func:`deliver_all` takes the owed rows of a campaign from the ledger, composes each message (in a forked
:class:`ComposeProcess` where the system can fork), and sends it over N reused connections at a limited
rate, recording every step (see :mod:`reallabor_mail.delivery.ledger`). It knows nothing of content or
the recipient store, so it is tested with plain recipients; :mod:`reallabor_mail.delivery.campaign`
connects it to them.

Decisions per reply (:func:`reallabor_mail.delivery.transport.classify`): sent; temporary (4xx, connection
lost) → retried a few times during the run with growing pauses, then left as ``retry`` for
``--retry-failed``; 5.1.x → ``failed`` and the address suppressed; 5.7.x or a block → ``retry`` and no
more messages to that domain in this run; the server unreachable many times in a row → the run stops
and the rest stays owed for ``--resume``. A permanent refusal of our *sender* (at MAIL FROM, or an
address that cannot go into MAIL FROM at all) is nobody's fault but the sender setting's: the run stops
with :class:`SenderRefused` and every row stays owed, so a ``--resume`` after the fix sends them all.
A message handed over whole without a reply → ``unknown``, never retried. Someone unsubscribed or
suppressed since the send began → ``skipped``.

Ctrl-C (SIGINT): the first stops handing messages over at once (no new MAIL FROM; messages in flight
finish and their replies are recorded) and the run returns its report with ``interrupted`` set; a
second ends at once: the outcomes so far are committed, the rows in flight become ``unknown``, and
KeyboardInterrupt is raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import itertools
import multiprocessing
import re
import signal
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Connection_
from typing import Protocol

from reallabor_mail.delivery.ledger import Entry, GroupCommit, Ledger, Op, State
from reallabor_mail.delivery.transport import Connection, DeliveryError, RateLimiter, Reply, Transport, Verdict
from reallabor_mail.errors import ReallaborError
from reallabor_mail.i18n import records
from reallabor_mail.i18n.messages import _
from reallabor_mail.mail.message import ascii_address

Compose = Callable[[Entry], tuple[str, bytes]]


class Audience(Protocol):
    """What the engine asks the recipient store: suppression and unsubscribe links."""

    def not_to_send(self, emails: Sequence[str]) -> set[str]:
        """Those of ``emails`` a send must skip now (asked once per batch: one round trip, not one per person)."""
        ...

    def suppress(self, email: str, reason: str) -> None: ...

    def reopen(self) -> Audience:
        """The same store for use in another process (with a database connection of its own)."""
        ...


class Progress(Protocol):
    """Who follows a run as it goes (the CLI's progress bar): the number of messages, then each outcome."""

    def start(self, total: int) -> None: ...

    def done(self, state: State) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    """How hard a running send tries before it leaves a message to ``--retry-failed``."""

    attempts: int = 3  # tries per message within one run
    delay: float = 10.0  # seconds before the first retry; each further one waits 4× longer
    stop_after: int = 25  # connection failures in a row (421, refused, dropped) that stop the run


DEFAULT_RETRY = RetryPolicy()


@dataclass
class RunReport:
    """What one run did (the ledger holds the lasting record)."""

    sent: int = 0
    retry: int = 0
    failed: int = 0
    skipped: int = 0  # unsubscribed, erased or suppressed since the send began
    unanswered: int = 0  # handed over, no reply: now `unknown`
    blocked: dict[str, str] = field(default_factory=dict)  # domain → the reply that blocked it
    stopped: str | None = None  # why the run ended early: an English record (i18n/records.py) or an error's text
    interrupted: bool = False  # stopped by Ctrl-C
    unknown: list[str] = field(default_factory=list)  # found in flight from an interrupted run
    reasons: Counter[tuple[State, str]] = field(default_factory=Counter)  # (retry|failed|unknown, why) → count

    @property
    def attempted(self) -> int:
        return self.sent + self.retry + self.failed + self.skipped + self.unanswered

    @property
    def complete(self) -> bool:
        """Everything this run was to hand over went out (sent, or nobody to send it to any more)."""
        return not (self.retry or self.failed or self.unanswered or self.stopped)


_PERSONAL = re.compile(r"<[^<>\s]*>|[^\s<>]+@[^\s<>]+")


def _foreign(handler: signal._HANDLER) -> bool:
    """A SIGINT handler of our caller (not Python's default, not asyncio's own for ``asyncio.run``)."""
    if handler in (None, signal.SIG_DFL, signal.SIG_IGN, signal.default_int_handler):
        return False
    owner = getattr(getattr(handler, "func", None), "__self__", None)
    return not isinstance(owner, asyncio.Runner)


def reason(reply: str) -> str:
    """A reply without its addresses, so that one kind of failure is counted once in the summary."""
    return _PERSONAL.sub("…", reply).strip()[:120]


class SenderRefused(DeliveryError):
    """The mail server permanently refused our sender address: no message can go out until it is changed."""

    def __init__(self, sender: str, reply: Reply) -> None:
        self.sender, self.reply = sender, reply
        super().__init__(_(
            "site.yaml: sender.email ({sender}): the mail server refuses this sender address ({reply}); "
            "set sender.email to an address the server accepts for your login, then continue with --resume",
            sender=sender, reply=reply,
        ))  # fmt: skip


def envelope_address(email: str) -> str:
    """An address for MAIL FROM / RCPT TO: the domain in punycode."""
    local, _, domain = email.rpartition("@")
    return f"{local}@{_ascii_domain(domain)}"


@functools.lru_cache(maxsize=4096)
def _ascii_domain(domain: str) -> str:
    """Punycode of a domain (the idna codec is slow; a list has far fewer domains than people)."""
    return ascii_address(f"x@{domain}")[1]


@dataclass(frozen=True)
class Job:
    """A composed message for one ledger row (or why it could not be composed)."""

    entry: Entry
    message_id: str = ""
    data: bytes = b""
    error: str | None = None
    suppressed: bool = False


BATCH = 64  # rows composed per round trip to the compose process


def compose_batch(compose: Compose, audience: Audience, entries: list[Entry]) -> list[Job]:
    """Check suppression and compose each message, right before it is queued for sending.

    A person whose message cannot be built (a bad header value) fails alone.
    """
    jobs = []
    skip = audience.not_to_send([entry.email for entry in entries]) if entries else set()
    for entry in entries:
        if entry.email in skip:
            jobs.append(Job(entry, suppressed=True))
            continue
        try:
            jobs.append(Job(entry, *compose(entry)))
        except ReallaborError as exc:
            jobs.append(Job(entry, error=str(exc)))
    return jobs


def _compose_loop(compose: Compose, audience: Audience, channel: Connection_, parent_end: Connection_) -> None:
    """The compose process: batches of rows in, batches of messages out, until the pipe closes."""
    parent_end.close()  # else the pipe stays open here and the sender's end (or death) is never seen
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the sending process; this one follows it
    audience = audience.reopen()  # a database connection must not cross a fork
    while True:
        try:
            entries = channel.recv()
            channel.send(compose_batch(compose, audience, entries))
        except (EOFError, BrokenPipeError):  # the sending process ended (or was killed)
            return


class ComposeProcess:
    """Builds messages in a forked second process, so the sending process spends its one core on SMTP
    and the ledger; two batches are kept in flight so neither process waits for the other."""

    def __init__(self, compose: Compose, audience: Audience) -> None:
        context = multiprocessing.get_context("fork")
        self.channel, child = context.Pipe()
        arguments = (compose, audience, child, self.channel)
        self.process = context.Process(target=_compose_loop, args=arguments, daemon=True)
        self.process.start()
        child.close()

    @staticmethod
    def available() -> bool:
        return "fork" in multiprocessing.get_all_start_methods()

    async def jobs(self, batches: Iterator[list[Entry]]) -> AsyncIterator[Job]:
        loop = asyncio.get_running_loop()
        in_flight = 0
        for batch in itertools.islice(batches, 2):
            self.channel.send(batch)
            in_flight += 1
        while in_flight:
            try:
                done: list[Job] = await loop.run_in_executor(None, self.channel.recv)
            except EOFError:
                self.process.join(timeout=5)
                raise ReallaborError(
                    f"the process composing the messages ended unexpectedly (exit code {self.process.exitcode}); "
                    "the ledger is consistent: continue with --resume"
                ) from None
            in_flight -= 1
            for batch in itertools.islice(batches, 1):
                self.channel.send(batch)
                in_flight += 1
            for job in done:
                yield job

    def close(self) -> None:
        self.channel.close()
        self.process.join(timeout=10)


class _Run:
    """One run of :func:`deliver_all` (workers share its queue, counters and blocked domains)."""

    def __init__(
        self, ledger: Ledger, campaign: str, compose: Compose, transport: Transport, *, sender: str,
        audience: Audience, connections: int, rate: RateLimiter, retry: RetryPolicy, limit: int | None,
        on_done: Callable[[State], None] | None, composer: ComposeProcess | None, with_first_start: Sequence[Op] = (),
    ) -> None:  # fmt: skip
        self.ledger, self.campaign, self.compose, self.transport = ledger, campaign, compose, transport
        self.composer = composer
        self.sender_setting, self.sender = sender, envelope_address(sender)
        self.audience, self.rate, self.retry, self.limit = audience, rate, retry, limit
        self.connections = max(1, connections)
        self.on_done = on_done
        self.commit = GroupCommit(ledger, with_first_start)
        self.queue: asyncio.Queue[Job | None] = asyncio.Queue(maxsize=4 * self.connections)
        self.report = RunReport()
        self.tries: Counter[int] = Counter()
        self.waiting = 0  # messages sleeping before an in-run retry
        self.sleepers: set[asyncio.Task[None]] = set()
        self.failures_in_row = 0
        self.fatal: ReallaborError | None = None
        self.stopping = asyncio.Event()
        self.in_flight: dict[int, Entry] = {}  # started (row `sending` committed), no outcome yet
        self.abandoned = False
        self.previous_handler: signal._HANDLER = None  # SIGINT's handler before the run, restored after it

    def _finish(self, entry: Entry, state: State, reply: str, retry_after: dt.datetime | None = None) -> None:
        self.in_flight.pop(entry.id, None)
        self.commit.finish(entry, state, reply, retry_after)

    def _done(self, entry: Entry, state: State, reply: str, retry_after: dt.datetime | None = None) -> None:
        self._finish(entry, state, reply, retry_after)
        if state == "sent":
            self.report.sent += 1
        elif state == "failed":
            self.report.failed += 1
        if state in ("retry", "failed", "unknown"):
            self.report.reasons[(state, reason(reply))] += 1
        if self.on_done is not None:
            self.on_done(state)

    def _stop(self, reason: str) -> None:
        if self.report.stopped is None:
            self.report.stopped = reason
        self.stopping.set()

    def _interrupt(self) -> None:
        """SIGINT: the first stops handing messages over, the second ends the run at once."""
        if not self.report.interrupted:
            self.report.interrupted = True
            self._stop(records.INTERRUPTED())
            handler = self.previous_handler
            if callable(handler) and _foreign(handler):  # e.g. the worker's: it learns that it is to end, too
                with contextlib.suppress(KeyboardInterrupt):
                    handler(signal.SIGINT, None)
            return
        self.abandoned = True
        self.commit.abandon(list(self.in_flight.values()), records.ABANDONED())
        self.in_flight.clear()
        raise KeyboardInterrupt

    async def run(self) -> RunReport:
        loop = asyncio.get_running_loop()
        self.previous_handler = signal.getsignal(signal.SIGINT)
        try:
            loop.add_signal_handler(signal.SIGINT, self._interrupt)
            listening = True
        except (ValueError, RuntimeError):  # not the main thread: whoever runs us handles signals
            listening = False
        workers = [asyncio.create_task(self._worker()) for _ in range(self.connections)]
        try:
            await self._produce()
        finally:
            try:  # Ctrl-C stays ours while the run winds down: a second one then ends it at once, too
                if not self.abandoned:
                    await self._wind_down(workers)
            finally:
                if listening:
                    loop.remove_signal_handler(signal.SIGINT)
                    signal.signal(signal.SIGINT, self.previous_handler)  # not Python's default: the caller's
                if self.abandoned:
                    self.commit.close(wait=False)
        for task in workers:
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error
        if self.fatal is not None:
            raise self.fatal
        return self.report

    async def _wind_down(self, workers: list[asyncio.Task[None]]) -> None:
        for _worker in workers:
            await self.queue.put(None)
        await asyncio.gather(*workers, return_exceptions=True)
        for sleeper in self.sleepers:  # stopped early: their rows are already `retry` in the ledger
            sleeper.cancel()
        self.report.retry += self.waiting
        try:
            await self.commit.flush()
        finally:
            self.commit.close(wait=not self.abandoned)  # abandoned meanwhile: a stuck commit dies with the process

    async def _produce(self) -> None:
        # On PostgreSQL the rows are claimed for this run's commit session: other workers send the others.
        due = itertools.islice(self.ledger.due(self.campaign, owner=self.commit.owner), self.limit)
        batches = iter(lambda: list(itertools.islice(due, BATCH)), [])
        async for job in self._jobs(batches):
            if self.report.stopped is not None:
                break
            await self.queue.put(job)
        while True:  # wait for in-run retries to come back through the queue
            await self.queue.join()
            if self.waiting == 0 or self.report.stopped is not None:
                return
            await asyncio.sleep(min(0.05, self.retry.delay))

    async def _jobs(self, batches: Iterator[list[Entry]]) -> AsyncIterator[Job]:
        if self.composer is not None:
            async for job in self.composer.jobs(batches):
                yield job
            return
        for batch in batches:
            for job in compose_batch(self.compose, self.audience, batch):
                yield job

    async def _worker(self) -> None:
        connection = self.transport.connection()
        try:
            while True:
                job = await self.queue.get()
                try:
                    if job is None:
                        return
                    if self.report.stopped is None:
                        await self._handle(connection, job)
                except ReallaborError as exc:
                    self.fatal = self.fatal or exc
                    self._stop(str(exc))
                finally:
                    self.queue.task_done()
        finally:
            if self.abandoned:
                connection.abort()
            else:
                await connection.close()

    async def _paced(self) -> bool:
        """Wait for the next slot the rate allows; False if the run was stopped meanwhile."""
        if self.report.stopped is None and self.rate.per_minute:
            pace = asyncio.ensure_future(self.rate.acquire())
            stop = asyncio.ensure_future(self.stopping.wait())
            try:
                await asyncio.wait({pace, stop}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                pace.cancel()
                stop.cancel()
        return self.report.stopped is None

    async def _handle(self, connection: Connection, job: Job) -> None:
        entry = job.entry
        email = entry.email
        domain = email.rpartition("@")[2].lower()
        if job.suppressed:
            self.report.skipped += 1
            self._done(entry, "skipped", records.SUPPRESSED())
            return
        if domain in self.report.blocked:
            self.report.retry += 1
            self._done(entry, "retry", records.DOMAIN_REFUSED(domain=domain, reply=self.report.blocked[domain]))
            return
        if job.error is not None:
            self._done(entry, "failed", records.NOT_SENT(reason=job.error))
            return
        if not await self._paced():
            return
        await self.commit.start(entry, job.message_id)
        if self.report.stopped is not None:  # stopped while the start was committed: not handed over
            self.commit.finish(entry, "pending", records.RUN_STOPPED())
            return
        self.in_flight[entry.id] = entry
        self.tries[entry.id] += 1
        try:
            reply = await connection.deliver(self.sender, envelope_address(email), job.data)
        except ReallaborError as exc:  # the server cannot be used at all (TLS, login): nothing was sent
            self._finish(entry, "pending", records.NOT_SENT(reason=exc))
            raise
        self._decide(job, reply, domain)
        if reply.code is None or reply.code == 421:  # the server is struggling: pause before reconnecting
            await asyncio.sleep(min(self.retry.delay, self.retry.delay * self.failures_in_row / 10))

    def _decide(self, job: Job, reply: Reply, domain: str) -> None:
        entry = job.entry
        verdict = reply.verdict
        lost = reply.code is None or reply.code == 421
        self.failures_in_row = self.failures_in_row + 1 if lost else 0
        if verdict is Verdict.UNKNOWN:
            self.report.unanswered += 1
            self._done(entry, "unknown", str(reply))
        elif reply.sender_refused and verdict is not Verdict.RETRY:
            self._finish(entry, "pending", records.SENDER_REFUSED(reply=reply))
            self.fatal = self.fatal or SenderRefused(self.sender_setting, reply)
            self._stop(str(self.fatal))
            return
        elif verdict is Verdict.SENT:
            self._done(entry, "sent", str(reply))
        elif verdict is Verdict.BOUNCED:
            self._done(entry, "failed", str(reply))
            self.audience.suppress(entry.email, f"bounce: {reply}")
        elif verdict is Verdict.FAILED:
            self._done(entry, "failed", str(reply))
        elif verdict is Verdict.BLOCKED:
            self.report.blocked.setdefault(domain, str(reply))
            self.report.retry += 1
            self._done(entry, "retry", records.DOMAIN_BLOCKED(domain=domain, reply=reply))
        else:
            self._temporary(job, reply)
        if self.failures_in_row >= self.retry.stop_after:
            self._stop(records.FAILED_IN_ROW(count=self.failures_in_row, reply=reply))

    def _temporary(self, job: Job, reply: Reply) -> None:
        entry = job.entry
        tries = self.tries[entry.id]
        if tries >= self.retry.attempts or self.report.stopped is not None:
            self.report.retry += 1
            self._done(entry, "retry", str(reply))
            return
        delay = self.retry.delay * 4 ** (tries - 1)
        self._finish(entry, "retry", str(reply), self.ledger.clock() + dt.timedelta(seconds=delay))
        self.waiting += 1
        task = asyncio.create_task(self._requeue(job, delay))
        self.sleepers.add(task)
        task.add_done_callback(self.sleepers.discard)

    async def _requeue(self, job: Job, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.queue.put(job)
        self.waiting -= 1



async def deliver_all(
    ledger: Ledger,
    campaign: str,
    compose: Compose,
    transport: Transport,
    *,
    sender: str,
    audience: Audience,
    connections: int = 1,
    rate: RateLimiter | None = None,
    retry: RetryPolicy = RetryPolicy(),
    limit: int | None = None,
    on_done: Callable[[State], None] | None = None,
    composer: ComposeProcess | None = None,
    with_first_start: Sequence[Op] = (),
) -> RunReport:
    """Send every ``pending`` row of ``campaign`` (at most ``limit``) and record each outcome.

    With ``composer`` the messages are built in that process (``compose`` must be the one it runs).
    ``with_first_start`` is committed in the transaction of the first ``sending`` row (an event's version).
    """
    run = _Run(
        ledger, campaign, compose, transport, sender=sender, audience=audience, connections=connections,
        rate=rate or RateLimiter(None), retry=retry, limit=limit, on_done=on_done, composer=composer,
        with_first_start=with_first_start,
    )  # fmt: skip
    return await run.run()


def deliver(
    ledger: Ledger, campaign: str, compose: Compose, transport: Transport, *, sender: str, audience: Audience,
    connections: int = 1, rate: RateLimiter | None = None, retry: RetryPolicy = RetryPolicy(),
    limit: int | None = None, on_done: Callable[[State], None] | None = None, with_first_start: Sequence[Op] = (),
) -> RunReport:  # fmt: skip
    """:func:`deliver_all` in an event loop of its own, the messages composed in a forked process where
    the system can fork (forked before any thread is started)."""
    composer = ComposeProcess(compose, audience) if ComposeProcess.available() else None
    try:
        return asyncio.run(
            deliver_all(
                ledger, campaign, compose, transport, sender=sender, audience=audience, connections=connections,
                rate=rate, retry=retry, limit=limit, on_done=on_done, composer=composer,
                with_first_start=with_first_start,
            )
        )
    finally:
        if composer is not None:
            composer.close()
