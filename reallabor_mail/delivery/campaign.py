"""``send``: plan → confirm → send (with a progress bar) → summary, and ``send --status``.

Two layers. :func:`deliver_all` is the engine: it takes the owed rows of a campaign from the ledger,
composes each message, and sends it over N reused connections at a limited rate, recording every step
(see :mod:`reallabor_mail.delivery.ledger`); it knows nothing of content or the recipient store, so it is tested
with plain recipients. :func:`send` is what the CLI calls: it loads the content, renders the email
once per language, finds the subscribers, shows the plan, asks, and runs the engine.

Decisions per reply (:func:`reallabor_mail.delivery.transport.classify`): sent; temporary (4xx, connection
lost) → retried a few times during the run with growing pauses, then left as ``retry`` for
``--retry-failed``; 5.1.x → ``failed`` and the address suppressed; 5.7.x or a block → ``retry`` and no
more messages to that domain in this run; refused at MAIL FROM, or the server unreachable many times
in a row → the run stops and the rest stays owed for ``--resume``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import itertools
import multiprocessing
import os
import signal
import sqlite3
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Connection_
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from reallabor_mail.addresses import address_key, wire_address
from reallabor_mail.content.loader import Content, EventItem, NewsletterItem, load_content
from reallabor_mail.content.models import Language, Newsletter, Site
from reallabor_mail.db import connect, state_path
from reallabor_mail.delivery.ledger import Entry, GroupCommit, Ledger, Row, State, Summary
from reallabor_mail.delivery.transport import (
    Connection,
    DeliveryError,
    MaildirTransport,
    RateLimiter,
    Reply,
    SmtpSettings,
    SmtpTransport,
    Transport,
    Verdict,
)
from reallabor_mail.errors import ReallaborError, display_path
from reallabor_mail.mail.dkim import DkimSigner
from reallabor_mail.mail.message import Campaign
from reallabor_mail.mail.stamp import MessageStamp
from reallabor_mail.publish.build import default_templates
from reallabor_mail.recipients import store as recipients
from reallabor_mail.recipients.links import unsubscribe_url
from reallabor_mail.recipients.person import Recipient
from reallabor_mail.recipients.tokens import load_secret
from reallabor_mail.render import ics as calendar
from reallabor_mail.render.engine import RenderedEmail, Renderer

Clock = Callable[[], dt.datetime]
Compose = Callable[[Entry], tuple[str, bytes]]


class Audience(Protocol):
    """What the engine asks the recipient store: suppression and unsubscribe links."""

    def is_suppressed(self, email: str) -> bool: ...

    def suppress(self, email: str, reason: str) -> None: ...

    def reopen(self) -> Audience:
        """The same store for use in another process (with a database connection of its own)."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    """How hard a running send tries before it leaves a message to ``--retry-failed``."""

    attempts: int = 3  # tries per message within one run
    delay: float = 10.0  # seconds before the first retry; each further one waits 4× longer
    stop_after: int = 25  # connection failures in a row (421, refused, dropped) that stop the run


@dataclass
class RunReport:
    """What one run did (the ledger holds the lasting record)."""

    sent: int = 0
    retry: int = 0
    failed: int = 0
    suppressed: int = 0
    blocked: dict[str, str] = field(default_factory=dict)  # domain → the reply that blocked it
    stopped: str | None = None  # why the run ended before all owed messages were tried
    unknown: list[str] = field(default_factory=list)  # found in flight from an interrupted run

    @property
    def attempted(self) -> int:
        return self.sent + self.retry + self.failed + self.suppressed


def envelope_address(email: str) -> str:
    """An address for MAIL FROM / RCPT TO: the domain in punycode (IDNA 2008)."""
    return wire_address(email)


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
    for entry in entries:
        if audience.is_suppressed(entry.email):
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
        on_done: Callable[[State], None] | None, composer: ComposeProcess | None,
    ) -> None:  # fmt: skip
        self.ledger, self.campaign, self.compose, self.transport = ledger, campaign, compose, transport
        self.composer = composer
        self.sender = envelope_address(sender)
        self.audience, self.rate, self.retry, self.limit = audience, rate, retry, limit
        self.connections = max(1, connections)
        self.on_done = on_done
        self.commit = GroupCommit(ledger)
        self.queue: asyncio.Queue[Job | None] = asyncio.Queue(maxsize=4 * self.connections)
        self.report = RunReport()
        self.tries: Counter[int] = Counter()
        self.waiting = 0  # messages sleeping before an in-run retry
        self.sleepers: set[asyncio.Task[None]] = set()
        self.failures_in_row = 0
        self.fatal: ReallaborError | None = None

    def _done(self, entry: Entry, state: State, reply: str, retry_after: dt.datetime | None = None) -> None:
        self.commit.finish(entry, state, reply, retry_after)
        if state == "sent":
            self.report.sent += 1
        elif state == "failed":
            self.report.failed += 1
        if self.on_done is not None:
            self.on_done(state)

    def _stop(self, reason: str) -> None:
        if self.report.stopped is None:
            self.report.stopped = reason

    async def run(self) -> RunReport:
        workers = [asyncio.create_task(self._worker()) for _ in range(self.connections)]
        try:
            await self._produce()
        finally:
            for _ in workers:
                await self.queue.put(None)
            await asyncio.gather(*workers, return_exceptions=True)
            for sleeper in self.sleepers:  # stopped early: their rows are already `retry` in the ledger
                sleeper.cancel()
            self.report.retry += self.waiting
            try:
                await self.commit.flush()
            finally:
                self.commit.close()
        for task in workers:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        if self.fatal is not None:
            raise self.fatal
        return self.report

    async def _produce(self) -> None:
        due = itertools.islice(self.ledger.due(self.campaign), self.limit)
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
            await connection.close()

    async def _handle(self, connection: Connection, job: Job) -> None:
        entry = job.entry
        email = entry.email
        domain = email.rpartition("@")[2].lower()
        if job.suppressed:
            self.report.suppressed += 1
            self._done(entry, "failed", "not sent: the address is suppressed (unsubscribed, erased or bounced)")
            return
        if domain in self.report.blocked:
            self.report.retry += 1
            self._done(entry, "retry", f"not sent: {domain} refused our mail earlier in this run "
                                       f"({self.report.blocked[domain]})")  # fmt: skip
            return
        if job.error is not None:
            self._done(entry, "failed", f"not sent: {job.error}")
            return
        await self.rate.acquire()
        await self.commit.start(entry, job.message_id)
        self.tries[entry.id] += 1
        try:
            reply = await connection.deliver(self.sender, envelope_address(email), job.data)
        except ReallaborError as exc:  # the server cannot be used at all (TLS, login): nothing was sent
            self.commit.finish(entry, "pending", f"not sent: {exc}")
            raise
        self._decide(job, reply, domain)
        if reply.code is None or reply.code == 421:  # the server is struggling: pause before reconnecting
            await asyncio.sleep(min(self.retry.delay, self.retry.delay * self.failures_in_row / 10))

    def _decide(self, job: Job, reply: Reply, domain: str) -> None:
        entry = job.entry
        verdict = reply.verdict
        lost = reply.code is None or reply.code == 421
        self.failures_in_row = self.failures_in_row + 1 if lost else 0
        if reply.sender_refused and verdict is not Verdict.RETRY:
            self.report.retry += 1
            self._done(entry, "retry", f"sender refused: {reply}")
            self._stop(f"the server refused our sender address: {reply}")
            return
        if verdict is Verdict.SENT:
            self._done(entry, "sent", str(reply))
        elif verdict is Verdict.BOUNCED:
            self._done(entry, "failed", str(reply))
            self.audience.suppress(entry.email, f"bounce: {reply}")
        elif verdict is Verdict.FAILED:
            self._done(entry, "failed", str(reply))
        elif verdict is Verdict.BLOCKED:
            self.report.blocked.setdefault(domain, str(reply))
            self.report.retry += 1
            self._done(entry, "retry", f"{domain} blocked: {reply}")
        else:
            self._temporary(job, reply)
        if self.failures_in_row >= self.retry.stop_after:
            self._stop(f"the server failed {self.failures_in_row} times in a row (last: {reply})")

    def _temporary(self, job: Job, reply: Reply) -> None:
        entry = job.entry
        tries = self.tries[entry.id]
        if tries >= self.retry.attempts or self.report.stopped is not None:
            self.report.retry += 1
            self._done(entry, "retry", str(reply))
            return
        delay = self.retry.delay * 4 ** (tries - 1)
        self.commit.finish(entry, "retry", str(reply), self.ledger.clock() + dt.timedelta(seconds=delay))
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
) -> RunReport:
    """Send every ``pending`` row of ``campaign`` (at most ``limit``) and record each outcome.

    With ``composer`` the messages are built in that process (``compose`` must be the one it runs).
    """
    run = _Run(
        ledger, campaign, compose, transport, sender=sender, audience=audience, connections=connections,
        rate=rate or RateLimiter(None), retry=retry, limit=limit, on_done=on_done, composer=composer,
    )  # fmt: skip
    return await run.run()


# --- the command: plan → confirm → send → summary ------------------------------------------------


@dataclass(frozen=True)
class SendRequest:
    """What the user asked ``send`` for (the CLI's options)."""

    file: Path
    lists: tuple[str, ...] = ()
    to: str | None = None
    outbox: Path | None = None
    rate: float | None = None  # messages per minute
    connections: int = 1
    resume: bool = False
    retry_failed: bool = False
    limit: int | None = None
    templates: Path | None = None
    state: Path | None = None


class StoreAudience:
    """The recipient store (:mod:`reallabor_mail.recipients.store`) as the engine's :class:`Audience`."""

    def __init__(self, conn: sqlite3.Connection, secret: bytes, clock: Clock, lists: Sequence[str] = ()) -> None:
        self.conn, self.secret, self.clock = conn, secret, clock
        self.lists = tuple(lists)  # () for a --to test message: the address need not be subscribed

    def is_suppressed(self, email: str) -> bool:
        """Erased or bounced, or (for a send to lists) no longer subscribed to any of them."""
        if recipients.is_suppressed(self.conn, email, self.secret):
            return True
        return bool(self.lists) and not recipients.is_subscribed(self.conn, email, self.lists)

    def reopen(self) -> StoreAudience:
        path = Path(self.conn.execute("PRAGMA database_list").fetchone()[2])
        return StoreAudience(connect(path), self.secret, self.clock, self.lists)

    def suppress(self, email: str, reason: str) -> None:
        recipients.suppress(self.conn, email, reason, self.secret, now=self.clock())


class Composer:
    """Renders the email once per language and stamps one message per recipient (see assembly.py)."""

    def __init__(
        self, content: Content, item: NewsletterItem | EventItem, renderer: Renderer, campaign: str,
        date: dt.datetime, secret: bytes, event_plan: calendar.EventPlan | None, signer: DkimSigner | None,
    ) -> None:  # fmt: skip
        self.site: Site = content.site
        self.item, self.renderer, self.campaign, self.date = item, renderer, campaign, date
        self.secret, self.event_plan, self.signer = secret, event_plan, signer
        self.rendered: dict[Language, RenderedEmail] = {}
        self.stamps: dict[tuple[Language, str], MessageStamp] = {}

    def language(self, person: Recipient) -> Language:
        """The person's language if the item has that version, else the item's (German) original."""
        return person.language if person.language in self.item.versions else self.item.default_language

    def email(self, language: Language) -> RenderedEmail:
        if language not in self.rendered:
            if self.event_plan is not None:
                changes = self.event_plan.changes(language)
                self.rendered[language] = self.renderer.invitation_email(self.item, language, changes)  # type: ignore[arg-type]
            else:
                self.rendered[language] = self.renderer.newsletter_email(self.item, language)  # type: ignore[arg-type]
        return self.rendered[language]

    def __call__(self, entry: Entry) -> tuple[str, bytes]:
        person = entry.recipient
        language = self.language(person)
        stamp = self.stamps.get((language, entry.list_name))
        if stamp is None:
            stamp = self.stamps[(language, entry.list_name)] = MessageStamp.prepare(
                self.site, self.email(language), Campaign(self.campaign, entry.list_name, self.date),
                secret=self.secret, method=self.event_plan.method if self.event_plan else None,
            )  # fmt: skip
        url = unsubscribe_url(self.site, person.email, entry.list_name, self.secret)
        ics = None
        if self.event_plan is not None:
            invitation = self.event_plan.invitation(person.email, language=language, name=person.display_name or None)
            ics = invitation.ics
        message_id, data = stamp.message(person, url, ics)
        return message_id, self.signer.sign(data) if self.signer else data


NO_SERVER = """no mail server configured. Either
  • send for real through your mail server: set REALLABOR_SMTP_HOST (and REALLABOR_SMTP_PORT,
    REALLABOR_SMTP_USER, REALLABOR_SMTP_PASSWORD, REALLABOR_SMTP_SECURITY=starttls|tls|none), or
  • write every message into a folder instead (a Maildir; nothing leaves this computer):
    reallabor-mail send FILE --outbox outbox/"""


def choose_transport(outbox: Path | None, environ: Mapping[str, str]) -> tuple[str, Callable[[], Transport]]:
    """Where messages go (described for the plan) and how to open it (after the user agreed)."""
    if outbox is not None:
        return f"the Maildir {outbox}/ (nothing goes over the network)", lambda: MaildirTransport(outbox)
    settings = SmtpSettings.from_env(environ)
    if settings is None:
        raise DeliveryError(NO_SERVER)
    return settings.describe(), lambda: SmtpTransport(settings)


@dataclass
class Plan:
    """What ``send`` is about to do, shown before it asks."""

    title: str
    path: str
    campaign: str
    via: str
    sender: str
    lists: list[tuple[str, int]] = field(default_factory=list)
    new: int = 0
    languages: Counter[str] = field(default_factory=Counter)
    before: Summary | None = None
    resume: bool = False
    retry_failed: bool = False
    limit: int | None = None
    signing: str | None = None

    @property
    def owed(self) -> int:
        before = self.before
        if before is None:
            return self.new
        return self.new + (before["pending"] if self.resume else 0) + (before["retry"] if self.retry_failed else 0)

    def lines(self) -> list[str]:
        out = [
            f"[bold]{self.title}[/bold]  ({self.path})",
            f"  campaign   {self.campaign}",
            "  lists      " + ", ".join(f"{name} ({count:,} subscribed)" for name, count in self.lists),
            f"  from       {self.sender}",
            f"  via        {self.via}" + (f" · {self.signing}" if self.signing else ""),
        ]
        b = self.before
        if b is not None and b.total:
            interrupted = f", {b['pending'] + b['sending']:,} interrupted" if b.interrupted else ""
            out.append(
                f"  earlier    {b['sent']:,} sent, {b['failed']:,} failed, {b['retry']:,} to retry, "
                f"{b['unknown']:,} unknown{interrupted}"
            )
            if b["retry"] and not self.retry_failed:
                out.append(f"             ({b['retry']:,} waiting for --retry-failed are not sent now)")
            if b["sending"] and self.resume:
                out.append(f"             ({b['sending']:,} were in flight: they become 'unknown' and are NOT resent)")
        languages = ", ".join(f"{lang} {n:,}" for lang, n in sorted(self.languages.items()))
        out.append(f"  to send    {self.owed:,}" + (f" new ({languages})" if languages else ""))
        if self.limit is not None and self.limit < self.owed:
            out.append(f"  this run   at most {self.limit:,} (--limit)")
        return out


def _test_person(conn: sqlite3.Connection, email: str, site: Site) -> Recipient:
    stored = recipients.find(conn, email)
    if stored is not None:
        return stored.recipient
    return Recipient(address_key(email), language=site.language)


def _subscribed(conn: sqlite3.Connection, lists: Sequence[str]) -> Iterator[tuple[Recipient, str]]:
    for name in lists:
        for person in recipients.subscribers(conn, name):
            yield person, name


@dataclass
class Prepared:
    """A send ready to go: the plan to show, and everything :func:`execute` needs once the user agreed."""

    request: SendRequest
    plan: Plan
    site: Site
    conn: sqlite3.Connection
    ledger: Ledger
    composer: Composer
    audience: StoreAudience
    open_transport: Callable[[], Transport]
    event: tuple[EventItem, calendar.EventPlan] | None
    lists: tuple[str, ...]
    test_person: Recipient | None
    lock: int = -1  # the campaign lock (a file descriptor) held until the send is done


def lock_campaign(state: Path, campaign: str) -> int:
    """Hold a lock on ``campaign`` while this process sends it; returns the descriptor to close when done.

    A second ``send`` of the same campaign (even with ``--resume``) would take the rows the first has
    in flight and send them again. The lock is a record lock on ``<state file>.lock``, one byte per
    campaign; the kernel drops it when the process ends, also on SIGKILL, so it never goes stale.
    """
    lock_path = Path(f"{state}.lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ReallaborError(f"{lock_path}: cannot create the lock file ({exc.strerror})") from None
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, zlib.crc32(campaign.encode()))
    except OSError:
        os.close(fd)
        raise ReallaborError(
            f"{state}: another `send` of {campaign} is running right now; wait until it ends "
            "(see --status), then continue with --resume if it did not finish"
        ) from None
    return fd


def prepare(
    request: SendRequest, *, environ: Mapping[str, str] | None = None, clock: Clock | None = None
) -> Prepared:
    """Read content, settings and state, render the email in every language, count: nothing is written."""
    env = os.environ if environ is None else environ
    content = load_content(request.file.parent.parent)
    item = content.find(request.file)
    via, open_transport = choose_transport(request.outbox, env)
    signer = DkimSigner.from_env(env)
    secret = load_secret()
    site = content.site
    clock = clock or (lambda: dt.datetime.now(ZoneInfo(site.timezone)))
    conn = connect(state_path(request.state))
    recipients.ensure_schema(conn)
    ledger = Ledger(conn, clock)
    event_plan = None if isinstance(item.meta, Newsletter) else calendar.plan_event(content, item, conn, clock)
    campaign = campaign_key(item, event_plan) + ("#test" if request.to else "")
    lock = lock_campaign(state_path(request.state), campaign)
    try:
        lists = request.lists or tuple(item.meta.lists)
        plan = Plan(
            title=item.meta.title, path=display_path(item.path), campaign=campaign, via=via,
            sender=f"{site.sender.name} <{site.sender.email}>", before=ledger.summary(campaign),
            resume=request.resume, retry_failed=request.retry_failed, limit=request.limit,
            signing=signer.describe() if signer else None,
        )  # fmt: skip
        renderer = Renderer(content, request.templates or default_templates(), calendar_links=calendar.link_maker(site))
        composer = Composer(content, item, renderer, campaign, clock(), secret, event_plan, signer)
        person = None
        if request.to:
            person = _test_person(conn, request.to, site)
            plan.lists = [(lists[0], 1)]
            plan.new, plan.before = 1, None
            plan.languages[composer.language(person)] += 1
        else:
            _count(plan, ledger, conn, lists, composer.language)
            if plan.before is not None and plan.before.interrupted and not request.resume:
                raise ReallaborError(
                    f"{plan.path}: an earlier send of this campaign was interrupted "
                    f"({plan.before['pending'] + plan.before['sending']:,} messages not finished); "
                    "continue it with --resume (see --status first)"
                )
        for language in item.versions:  # render now: a template error shows before anything is sent
            composer.email(language)
        audience = StoreAudience(conn, secret, clock, () if request.to else lists)
        return Prepared(
            request, plan, site, conn, ledger, composer, audience, open_transport,
            (item, event_plan) if event_plan is not None else None, lists, person, lock,  # type: ignore[arg-type]
        )  # fmt: skip
    except BaseException:
        os.close(lock)
        raise


def execute(prepared: Prepared, *, console: Console, retry: RetryPolicy = RetryPolicy()) -> RunReport:
    """Record who is owed the message, send it with a progress bar, print the summary."""
    request, ledger, campaign = prepared.request, prepared.ledger, prepared.plan.campaign
    transport = prepared.open_transport()
    unknown = ledger.recover(campaign) if request.resume else []
    if request.retry_failed:
        ledger.requeue(campaign)
    if prepared.test_person is not None:
        ledger.reset(campaign, prepared.test_person, prepared.lists[0])
    else:
        # Sign-ups never confirmed within 30 days are deleted before every real send (issue: consent).
        recipients.purge_unconfirmed(prepared.conn, ledger.clock())
        ledger.add(campaign, _subscribed(prepared.conn, prepared.lists))
    owed = ledger.summary(campaign)["pending"]
    try:
        report = _run_with_progress(
            console, ledger, campaign, prepared.composer, transport, sender=prepared.site.sender.email,
            audience=prepared.audience, connections=request.connections, rate=RateLimiter(request.rate),
            retry=retry, limit=request.limit, total=min(owed, request.limit) if request.limit is not None else owed,
        )  # fmt: skip
    except KeyboardInterrupt:
        print_summary(console, ledger, campaign)
        raise ReallaborError(f"{prepared.plan.path}: interrupted; continue with --resume") from None
    report.unknown = unknown
    if prepared.event is not None and report.sent and prepared.test_person is None:
        event, event_plan = prepared.event
        calendar.record_sent_version(prepared.conn, event, event_plan.sequence, event_plan.fingerprint, ledger.clock())
    print_summary(console, ledger, campaign, report)
    return report


def send(
    request: SendRequest,
    *,
    console: Console,
    confirm: Callable[[str], bool] | None,
    environ: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    retry: RetryPolicy = RetryPolicy(),
) -> RunReport | None:
    """Show the plan, ask (``confirm`` None: ``--yes``), send, print the summary; None if nothing was sent."""
    prepared = prepare(request, environ=environ, clock=clock)
    try:
        plan = prepared.plan
        for line in plan.lines():
            console.print(line, highlight=False)
        if plan.owed == 0:
            console.print("Nothing to send: everyone on the list has this message (see --status).")
            return None
        question = f"Send {min(plan.owed, request.limit or plan.owed):,} messages via {plan.via}?"
        if confirm is not None and not confirm(question):
            console.print("Nothing sent.")
            return None
        return execute(prepared, console=console, retry=retry)
    finally:
        os.close(prepared.lock)


def campaign_key(item: NewsletterItem | EventItem, event_plan: calendar.EventPlan | None) -> str:
    """``newsletter:2023-3`` or ``event:<stem>:<SEQUENCE>`` (an updated event is a new campaign)."""
    if event_plan is None:
        return f"newsletter:{item.stem}"
    return f"event:{item.stem}:{event_plan.sequence}"


def _count(
    plan: Plan, ledger: Ledger, conn: sqlite3.Connection, lists: Sequence[str], language: Callable[[Recipient], str]
) -> None:
    """Fill the plan's numbers (languages as sent, after fallback) by reading the lists (nothing is written)."""
    states = ledger.states(plan.campaign)
    seen: set[str] = set()
    for name in lists:
        count = 0
        for person in recipients.subscribers(conn, name):
            count += 1
            if person.email in seen:
                continue
            seen.add(person.email)
            if person.email not in states:
                plan.new += 1
                plan.languages[language(person)] += 1
        plan.lists.append((name, count))


def _run_with_progress(
    console: Console, ledger: Ledger, campaign: str, compose: Compose, transport: Transport, *, total: int,
    audience: Audience, **options: object,
) -> RunReport:  # fmt: skip
    columns = (
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[tally]}"), TimeRemainingColumn(),
    )  # fmt: skip
    tally: Counter[str] = Counter()
    composer = ComposeProcess(compose, audience) if ComposeProcess.available() else None  # fork before threads
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("sending", total=total, tally="")

            def done(state: State) -> None:
                tally[state] += 1
                progress.update(task, advance=1, tally=" ".join(f"{k} {v}" for k, v in sorted(tally.items())))

            return asyncio.run(
                deliver_all(
                    ledger, campaign, compose, transport, audience=audience, on_done=done, composer=composer,
                    **options,  # type: ignore[arg-type]
                )
            )
    finally:
        if composer is not None:
            composer.close()


UNKNOWN_HINT = (
    "the send stopped while the server had these messages; they may or may not have arrived and are "
    "not resent automatically. Ask the recipients, or send one a copy with --to EMAIL:"
)


def print_summary(console: Console, ledger: Ledger, campaign: str, report: RunReport | None = None) -> None:
    """The ledger's numbers for a campaign, the addresses with unknown fate, and what to do next."""
    s = ledger.summary(campaign)
    if report is not None:
        console.print(
            f"This run: {report.sent:,} sent, {report.retry:,} to retry later, {report.failed:,} failed"
            + (f" ({report.suppressed:,} suppressed addresses skipped)" if report.suppressed else ""),
            highlight=False,
        )
        for domain, reply in sorted(report.blocked.items()):
            console.print(f"  [yellow]stopped sending to {domain}[/yellow]: {reply}", highlight=False)
        if report.stopped:
            console.print(f"  [red]stopped early[/red]: {report.stopped}", highlight=False)
    console.print(
        f"[bold]{campaign}[/bold]: {s['sent']:,} sent · {s['retry']:,} retry later · {s['failed']:,} failed · "
        f"{s['unknown']:,} unknown · {s['pending'] + s['sending']:,} not yet sent",
        highlight=False,
    )
    unknown = ledger.rows(campaign, ("unknown",))
    if unknown:
        console.print(f"[yellow]Unknown ({len(unknown):,})[/yellow]: {UNKNOWN_HINT}", highlight=False)
        for row in unknown:
            console.print(f"  {row.email}", highlight=False)
    if s["pending"] + s["sending"]:
        console.print("Continue with: send FILE --resume", highlight=False)
    if s["retry"]:
        console.print("Temporary failures: send FILE --retry-failed (later, e.g. in an hour)", highlight=False)


def status(request: SendRequest, *, console: Console, detail: int = 50) -> Summary:
    """``send … --status``: the summary plus the failed and waiting addresses with the server's reply."""
    content = load_content(request.file.parent.parent)
    item = content.find(request.file)
    conn = connect(state_path(request.state))
    ledger = Ledger(conn, lambda: dt.datetime.now(dt.UTC))
    event_plan = None
    if not isinstance(item.meta, Newsletter):
        event_plan = calendar.plan_event(content, item, conn, lambda: dt.datetime.now(dt.UTC))
    campaign = campaign_key(item, event_plan) + ("#test" if request.to else "")
    console.print(f"{item.meta.title}  ({display_path(item.path)})", highlight=False)
    print_summary(console, ledger, campaign)
    sections: tuple[tuple[str, tuple[State, ...]], ...] = (("Failed", ("failed",)), ("Retry later", ("retry",)))
    for label, states in sections:
        rows: list[Row] = ledger.rows(campaign, states)
        if rows:
            console.print(f"{label} ({len(rows):,}):", highlight=False)
            for row in rows[:detail]:
                console.print(f"  {row.email}  {row.reply or ''}", highlight=False)
            if len(rows) > detail:
                console.print(f"  … and {len(rows) - detail:,} more", highlight=False)
    return ledger.summary(campaign)
