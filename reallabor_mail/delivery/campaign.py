"""The ``send`` command's work (contract §3): plan, prepare, execute, status. Returns plans and reports; prints nothing.

:func:`prepare` loads the content, renders the email once per language, counts the subscribers and holds
the campaign lock: nothing is written. The caller (the CLI) shows the :class:`Plan` and asks; then
:func:`execute` checks the mail server can be used at all (before any ledger row is), records who is
owed the message and runs the engine (:mod:`reallabor_mail.delivery.engine`), and
:func:`campaign_status` gives the ledger's numbers to show. :func:`send` is prepare + execute without
asking, for scripts and tests. :func:`status` is ``send --status``: it only reads the state.

A dry run (``--dry-run``) does all of it against a copy of the state file, into a Maildir: the real
ledger is untouched and nothing is handed over. Lists must be known (named in the content or holding
members in the state) and have subscribers; a state file that does not exist is not created by a send
to lists (it would be empty, and "everyone has this message" would be a lie).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import fcntl
import os
import sqlite3
import tempfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from reallabor_mail.addresses import address_key
from reallabor_mail.content.loader import Content, EventItem, NewsletterItem, is_event, load_content
from reallabor_mail.content.models import Language, Site
from reallabor_mail.db import (
    Connection,
    DatabaseUrl,
    NoState,
    StateError,
    StateLocation,
    connect,
    connect_read_only,
    copy_rows,
    shown,
    state_path,
)
from reallabor_mail.delivery import schedule
from reallabor_mail.delivery.engine import DEFAULT_RETRY, Progress, RetryPolicy, RunReport, deliver
from reallabor_mail.delivery.event_versions import plan_event, version_op
from reallabor_mail.delivery.ledger import Entry, Ledger, Op, Row, Summary
from reallabor_mail.delivery.transport import (
    DeliveryError,
    MaildirTransport,
    RateLimiter,
    SmtpTransport,
    Transport,
)
from reallabor_mail.errors import ReallaborError, display_path
from reallabor_mail.i18n import records
from reallabor_mail.i18n.messages import _, ngettext, os_reason, server_shown
from reallabor_mail.mail.message import Campaign
from reallabor_mail.mail.stamp import MessageStamp
from reallabor_mail.publish.build import default_templates
from reallabor_mail.recipients import store as recipients
from reallabor_mail.recipients.links import unsubscribe_url
from reallabor_mail.recipients.person import Recipient
from reallabor_mail.recipients.tokens import load_secret
from reallabor_mail.render.engine import RenderedEmail, Renderer
from reallabor_mail.render.ics import EventPlan
from reallabor_mail.settings import Settings

if TYPE_CHECKING:
    from reallabor_mail.mail.dkim import DkimSigner

Clock = Callable[[], dt.datetime]


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
    state: StateLocation | None = None
    content: Path | None = None  # default: the folder above the file's (content/newsletters/x.md → content)
    dry_run: bool = False

    @property
    def content_dir(self) -> Path:
        return self.content or self.file.parent.parent


TEST_MARK = "[TEST] "


class UnknownList(ReallaborError):
    """``--list`` (or the front matter) names a list nobody knows, or one without subscribers."""


class SendIncomplete(ReallaborError):
    """A run ended with messages not delivered (owed, to retry, failed or unknown): exit status 1."""

    @classmethod
    def of(cls, path: str, report: RunReport) -> SendIncomplete:
        left = report.retry + report.failed + report.unanswered
        if report.interrupted:
            return cls(_("{path}: stopped by Ctrl-C; continue with --resume (see the summary above)", path=path))
        if report.stopped and not left:
            return cls(_("{path}: the send stopped early ({why}); continue with --resume", path=path,
                         why=records.shown(report.stopped)))  # fmt: skip
        return cls(ngettext(
            "{path}: {count} message did not go out ({retry} to retry later, {failed} failed, {unknown} unknown); "
            "the reasons are in the summary above and in --status",
            "{path}: {count} messages did not go out ({retry} to retry later, {failed} failed, {unknown} unknown); "
            "the reasons are in the summary above and in --status",
            left, path=path, retry=report.retry, failed=report.failed, unknown=report.unanswered))  # fmt: skip


class StoreAudience:
    """The recipient store (:mod:`reallabor_mail.recipients.store`) as the engine's :class:`Audience`."""

    def __init__(
        self, conn: Connection, secret: bytes, clock: Clock, lists: Sequence[str] = (),
        registrants: frozenset[str] = frozenset(),
    ) -> None:  # fmt: skip
        self.conn, self.secret, self.clock = conn, secret, clock
        self.lists = tuple(lists)  # () for a --to test message: the address need not be subscribed
        self.registrants = registrants  # registered for the event by form: mailed without a list

    def not_to_send(self, emails: Sequence[str]) -> set[str]:
        """Erased or bounced, or (for a send to lists) no longer subscribed to any of them nor registered."""
        skip = recipients.suppressed_among(self.conn, emails, self.secret)
        if self.lists:
            ask = [email for email in emails if email not in skip and email not in self.registrants]
            skip |= set(ask) - recipients.subscribed_among(self.conn, ask, self.lists)
        return skip

    def reopen(self) -> StoreAudience:
        return StoreAudience(connect(self.conn.location), self.secret, self.clock, self.lists, self.registrants)

    def suppress(self, email: str, reason: str) -> None:
        bounced = recipients.Suppression.BOUNCED  # the engine suppresses only permanent failures
        recipients.suppress(self.conn, email, bounced, self.secret, detail=reason, now=self.clock())


class Composer:
    """Renders the email once per language and stamps one message per recipient (see mail/stamp.py)."""

    def __init__(
        self, site: Site, item: NewsletterItem | EventItem, render: Callable[[Language, bool], RenderedEmail],
        campaign: str, date: dt.datetime, secret: bytes, event_plan: EventPlan | None, signer: DkimSigner | None,
        *, updated: frozenset[str] = frozenset(), test: bool = False,
    ) -> None:  # fmt: skip
        self.site, self.item, self.render, self.campaign, self.date = site, item, render, campaign, date
        self.secret, self.event_plan, self.signer = secret, event_plan, signer
        self.updated, self.test = updated, test  # updated: who gets this event version as an update
        self.rendered: dict[tuple[Language, bool], RenderedEmail] = {}
        self.stamps: dict[tuple[Language, str, bool], MessageStamp] = {}

    def language(self, person: Recipient) -> Language:
        """The person's language if the item has that version, else the item's (German) original."""
        return person.language if person.language in self.item.versions else self.item.default_language

    def email(self, language: Language, update: bool = False) -> RenderedEmail:
        """The mail in one language; for an event, as an update (subject and change block) or an invitation."""
        if (language, update) not in self.rendered:
            email = self.render(language, update)
            if self.test:
                email = dataclasses.replace(email, subject=TEST_MARK + email.subject)
            self.rendered[(language, update)] = email
        return self.rendered[(language, update)]

    def __call__(self, entry: Entry) -> tuple[str, bytes]:
        person = entry.recipient
        language = self.language(person)
        update = person.email in self.updated or (self.test and bool(self.updated))
        stamp = self.stamps.get((language, entry.list_name, update))
        if stamp is None:
            stamp = self.stamps[(language, entry.list_name, update)] = MessageStamp.prepare(
                self.site, self.email(language, update), Campaign(self.campaign, entry.list_name, self.date),
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


def choose_transport(
    outbox: Path | None, settings: Settings, dry_run: bool = False
) -> tuple[str, Callable[[], Transport]]:
    """Where messages go (described for the plan) and how to open it (after the user agreed)."""
    if outbox is not None:
        if dry_run:
            via = _("the folder {outbox}/ for review (dry run: nothing is sent, the ledger stays as it is)",
                    outbox=outbox)  # fmt: skip
        else:
            via = _("the Maildir {outbox}/. This is a real send: every message is recorded as sent and will not "
                    "be sent again, a mail server is expected to deliver them from this folder. To look at the "
                    "messages first, use --dry-run.", outbox=outbox)  # fmt: skip
        return via, lambda: MaildirTransport(outbox)
    smtp = settings.smtp()
    if smtp is None:
        raise DeliveryError(NO_SERVER)
    return server_shown(smtp), lambda: SmtpTransport(smtp)


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
    state: str = ""  # the state file, as shown
    to: str | None = None  # a test message to this address only
    dry_run: bool = False
    updates: int = 0  # of ``new``: people who got an earlier version of the event, now the update
    cancellation: bool = False
    ended: dt.datetime | None = None  # an invitation to an event that is already over: when it ended

    @property
    def owed(self) -> int:
        before = self.before
        if before is None:
            return self.new
        return self.new + (before["pending"] if self.resume else 0) + (before["retry"] if self.retry_failed else 0)

    @property
    def this_run(self) -> int:
        """How many messages this run hands over at most (``--limit``)."""
        return min(self.owed, self.limit) if self.limit is not None else self.owed


def _test_person(conn: Connection, email: str, site: Site) -> Recipient:
    stored = recipients.find(conn, email)
    if stored is not None:
        return stored.recipient
    return Recipient(address_key(email), language=site.language)


def _subscribed(
    conn: Connection, lists: Sequence[str], registrants: Sequence[Recipient] = ()
) -> Iterator[tuple[Recipient, str]]:
    """The subscribers of ``lists``, then those registered by form for the event (under its first list)."""
    for name in lists:
        for person in recipients.subscribers(conn, name):
            yield person, name
    for person in registrants:
        yield person, lists[0]


def form_registrants(conn: Connection, event: EventItem, plan: EventPlan) -> list[Recipient]:
    """Who registered for ``event`` by form and is owed this version: an update or a cancellation reaches
    everyone with a seat (they hold the invitation), a cancellation also those on the waiting list."""
    if not (plan.is_update or plan.method == "CANCEL"):
        return []
    from reallabor_mail.mailbox import attendance

    return attendance.form_audience(conn, event.stem, waiting=plan.method == "CANCEL")


@dataclass
class Prepared:
    """A send ready to go: the plan to show, and everything :func:`execute` needs once the user agreed.

    Holds the campaign lock until :meth:`close` (or the end of a ``with`` block).
    """

    request: SendRequest
    plan: Plan
    site: Site
    conn: Connection
    ledger: Ledger
    composer: Composer
    audience: StoreAudience
    open_transport: Callable[[], Transport]
    event: tuple[EventItem, EventPlan] | None
    lists: tuple[str, ...]
    test_person: Recipient | None
    lock: CampaignLock | None = None  # held until the send is done
    outbox: Path | None = None  # where a dry run writes the messages
    scratch: tempfile.TemporaryDirectory[str] | None = None  # a dry run's copy of the state file
    registrants: Sequence[Recipient] = ()  # registered for the event by form and owed this version

    def status(self) -> CampaignStatus:
        return campaign_status(self.ledger, self.plan.campaign, self.plan.title, self.plan.path)

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None
        if self.scratch is not None:
            self.conn.close()
            self.scratch.cleanup()
            self.scratch = None

    def __enter__(self) -> Prepared:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class CampaignLock:
    """A campaign's lock, held until :meth:`release`: a file descriptor (SQLite; none on PostgreSQL)."""

    def __init__(self, fd: int | None = None) -> None:
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def lock_campaign(state: StateLocation, campaign: str) -> CampaignLock:
    """Hold a lock on ``campaign`` while this process sends it, until :meth:`CampaignLock.release`.

    A second ``send`` of the same campaign (even with ``--resume``) would take the rows the first has
    in flight and send them again. The lock is a record lock on ``<state file>.lock``, one byte per
    campaign; the kernel drops it when the process ends, also on SIGKILL, so it never goes stale. The
    state file's real path names the lock file, so a symlink or another spelling of the path (``./``,
    ``..``) meets the same lock. On PostgreSQL there is no lock: several senders (``--resume``, workers,
    on any machine) share a campaign, each claiming its own rows (:meth:`Ledger.claim`).
    """
    if isinstance(state, DatabaseUrl):
        return CampaignLock()
    lock_path = Path(f"{os.path.realpath(state)}.lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ReallaborError(f"{lock_path}: cannot create the lock file ({os_reason(exc)})") from None
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, zlib.crc32(campaign.encode()))
    except OSError:
        os.close(fd)
        raise ReallaborError(
            _("{state}: another `send` of {campaign} is running right now (the state file is {real}); wait until "
              "it ends (see --status), then continue with --resume if it did not finish",
              state=state, campaign=campaign, real=os.path.realpath(state))
        ) from None  # fmt: skip
    return CampaignLock(fd=fd)


def campaign_running(state: StateLocation, campaign: str) -> bool:
    """Whether a ``send`` of ``campaign`` holds its lock right now (:func:`lock_campaign`); creates nothing.

    For ``--status``, a process of its own: record locks do not conflict within one process, and closing
    the file here would drop a lock this process held.

    PostgreSQL has no such lock: there the rows say themselves whose sender is alive (:meth:`Ledger.stranded`).
    """
    if isinstance(state, DatabaseUrl):
        return False
    try:
        fd = os.open(f"{os.path.realpath(state)}.lock", os.O_RDWR)
    except FileNotFoundError:
        return False
    except OSError:  # cannot tell (permissions): say nothing is stranded rather than call live rows unknown
        return True
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, zlib.crc32(campaign.encode()))
    except OSError:
        return True
    finally:
        os.close(fd)  # closing releases a lock taken just now
    return False


def known_lists(content: Content, conn: Connection) -> set[str]:
    """The lists site.yaml declares; for content from before that section, those named by the front
    matter and those with members in the state file."""
    if content.site.known_lists:
        return set(content.site.known_lists)
    named = {name for item in content.newsletters for name in item.meta.lists}
    named |= {name for event in content.events for name in event.meta.lists}
    return named | recipients.list_names(conn)


def check_lists(lists: Sequence[str], known: set[str], counts: Sequence[tuple[str, int]], path: str) -> None:
    """Refuse a list nobody knows (naming the known ones) or lists without anyone subscribed."""
    unknown = [name for name in lists if name not in known]
    if unknown:
        raise UnknownList(
            ngettext("{path}: there is no list {names}; known lists: {known} (--list NAME or lists: in the "
                     "front matter)", "{path}: there are no lists {names}; known lists: {known} (--list NAME or "
                     "lists: in the front matter)", len(unknown),
                     path=path, names=", ".join(unknown), known=", ".join(sorted(known)) or "–")
        )  # fmt: skip
    if counts and not any(count for _name, count in counts):
        raise UnknownList(
            _("{path}: nobody is subscribed to {names}; import subscribers first (recipients import) or choose "
              "another list with --list", path=path, names=", ".join(name for name, _count in counts))
        )  # fmt: skip


def dry_run_copy(state: StateLocation) -> tuple[Path, tempfile.TemporaryDirectory[str]]:
    """A copy of the state in a temporary SQLite file, for a dry run to work on (the real one stays as it is)."""
    scratch = tempfile.TemporaryDirectory(prefix="reallabor-dry-run-state-")
    copy = Path(scratch.name) / "state.sqlite3"
    try:
        source = connect_read_only(state)
        if isinstance(source.raw, sqlite3.Connection):
            target = sqlite3.connect(copy)
            with target:
                source.raw.backup(target)
            target.close()
        else:
            copy_rows(source, connect(copy))
        source.close()
    except (sqlite3.Error, StateError) as exc:
        scratch.cleanup()
        raise StateError(f"{state}: cannot copy the state database for the dry run: {exc}") from None
    return copy, scratch


def signer_of(settings: Settings) -> DkimSigner | None:
    """The DKIM signer the settings describe; the DKIM library (and its DNS resolver) is loaded only then."""
    dkim = settings.dkim()
    if dkim is None:
        return None
    from reallabor_mail.mail.dkim import DkimSigner

    return DkimSigner.from_settings(dkim)


def campaign_key(item: NewsletterItem | EventItem, event_plan: EventPlan | None) -> str:
    """``newsletter:2023-3`` or ``event:<stem>:<SEQUENCE>`` (an updated event is a new campaign)."""
    key = f"{item.kind}:{item.stem}"
    return key if event_plan is None else f"{key}:{event_plan.sequence}"


def prepare(
    request: SendRequest, *, settings: Settings, clock: Clock | None = None
) -> Prepared:
    """Read content, settings and state, render the email in every language, count: nothing is sent."""
    content = load_content(request.content_dir)
    item = content.find(request.file)
    outbox = request.outbox
    if request.dry_run and outbox is None:
        outbox = Path(tempfile.mkdtemp(prefix="reallabor-dry-run-"))
    via, open_transport = choose_transport(outbox, settings, request.dry_run)
    signer = signer_of(settings)
    secret = load_secret(settings)
    site = content.site
    clock = clock or (lambda: dt.datetime.now(ZoneInfo(site.timezone)))
    state = state_path(request.state, settings, request.content_dir)
    if isinstance(state, Path) and not state.exists() and not request.to:
        raise NoState(
            _("{state}: no state file here yet, so no subscribers: a send would start from an empty state. Run in "
              "the project folder, or pass --content (the state lives next to it), --state PATH or set "
              "REALLABOR_STATE", state=state)
        )  # fmt: skip
    scratch = None
    working_state = state
    if request.dry_run and (isinstance(state, DatabaseUrl) or state.exists()):
        working_state, scratch = dry_run_copy(state)
    conn = connect(working_state)
    conn.wait_for_writers(300_000)  # an import may hold the file for a while
    ledger = Ledger(conn, clock)
    renderer = Renderer(content, request.templates or default_templates())
    event: tuple[EventItem, EventPlan] | None = None
    render: Callable[[Language, bool], RenderedEmail]
    updated: frozenset[str] = frozenset()
    registrants: list[Recipient] = []
    if is_event(item):
        event_plan = plan_event(content, item, conn, clock)
        event = (item, event_plan)
        registrants = form_registrants(conn, item, event_plan)

        def render(language: Language, update: bool) -> RenderedEmail:
            return renderer.invitation_email(item, language, event_plan.changes(language) if update else ())

        if event_plan.is_update or event_plan.method == "CANCEL":
            updated = frozenset(ledger.reached(f"{campaign_key(item, None)}:", campaign_key(item, event_plan)))
            updated |= {person.email for person in registrants}
    else:
        def render(language: Language, update: bool) -> RenderedEmail:
            return renderer.newsletter_email(item, language)
    campaign = campaign_key(item, event[1] if event else None) + ("#test" if request.to else "")
    lock = lock_campaign(state, campaign)
    try:
        lists = request.lists or tuple(item.meta.lists)
        plan = Plan(
            title=item.meta.title, path=display_path(item.path), campaign=campaign, via=via,
            sender=f"{site.sender.name} <{site.sender.email}>", before=ledger.summary(campaign),
            resume=request.resume, retry_failed=request.retry_failed, limit=request.limit,
            signing=signer.describe() if signer else None, state=shown(state),
            dry_run=request.dry_run,
            cancellation=event is not None and event[1].method == "CANCEL",
        )  # fmt: skip
        if event is not None and not plan.cancellation and event[0].meta.end <= clock():
            plan.ended = event[0].meta.end
        composer = Composer(
            site, item, render, campaign, clock(), secret, event[1] if event else None, signer,
            updated=updated, test=bool(request.to),
        )  # fmt: skip
        person = None
        if request.to:
            person = _test_person(conn, request.to, site)
            plan.to = person.email
            plan.new, plan.before = 1, None
            plan.languages[composer.language(person)] += 1
        else:
            check_lists(lists, known_lists(content, conn), (), plan.path)
            _count(plan, ledger, conn, lists, composer.language, updated, registrants)
            check_lists(lists, set(lists), plan.lists, plan.path)
            if plan.before is not None and plan.before.interrupted and not request.resume:
                raise ReallaborError(ngettext(
                    "{path}: an earlier send of this campaign was interrupted ({count} message not finished); "
                    "continue it with --resume (see --status first)",
                    "{path}: an earlier send of this campaign was interrupted ({count} messages not finished); "
                    "continue it with --resume (see --status first)",
                    plan.before["pending"] + plan.before["sending"], path=plan.path))  # fmt: skip
        for language in item.versions:  # render now: a template error shows before anything is sent
            composer.email(language, bool(updated))
        audience = StoreAudience(conn, secret, clock, () if request.to else lists,
                                 frozenset(person.email for person in registrants))  # fmt: skip
        return Prepared(
            request, plan, site, conn, ledger, composer, audience, open_transport, event, lists, person, lock,
            outbox if request.dry_run else None, scratch, registrants,
        )  # fmt: skip
    except BaseException:
        lock.release()
        if scratch is not None:
            conn.close()
            scratch.cleanup()
        raise


def execute(prepared: Prepared, *, progress: Progress | None = None, retry: RetryPolicy = DEFAULT_RETRY) -> RunReport:
    """Check the server, record who is owed the message and send it; ``progress`` hears the total, then
    every outcome. A server that cannot be used at all (DNS, connection, TLS, login) raises
    :class:`~reallabor_mail.delivery.transport.DeliveryError` before any ledger row is touched."""
    request, ledger, campaign = prepared.request, prepared.ledger, prepared.plan.campaign
    transport = prepared.open_transport()
    asyncio.run(transport.probe())
    if prepared.test_person is None:
        schedule.mark(prepared.conn, campaign, "sending", ledger.clock())
    unknown = ledger.recover(campaign) if request.resume else []
    if request.retry_failed:
        ledger.requeue(campaign)
    with_first_start: list[Op] = []
    if prepared.test_person is not None:
        ledger.reset(campaign, prepared.test_person, prepared.lists[0] if prepared.lists else "test")
    else:
        # Sign-ups never confirmed within 30 days are deleted before every real send (issue: consent).
        recipients.purge_unconfirmed(prepared.conn, ledger.clock())
        people = _subscribed(prepared.conn, prepared.lists, prepared.registrants)
        if prepared.plan.cancellation:  # a cancellation goes only to those who were told of the event
            people = (pair for pair in people if pair[0].email in prepared.composer.updated)
        ledger.add(campaign, people)
        if prepared.event is not None:
            event, event_plan = prepared.event
            with_first_start.append(version_op(event, event_plan.sequence, event_plan.fingerprint, event_plan.dtstamp))
    owed = ledger.summary(campaign)["pending"]
    if progress is not None:
        progress.start(min(owed, request.limit) if request.limit is not None else owed)
    report = deliver(
        ledger, campaign, prepared.composer, transport, sender=prepared.site.sender.email,
        audience=prepared.audience, connections=request.connections, rate=RateLimiter(request.rate),
        retry=retry, limit=request.limit, on_done=progress.done if progress is not None else None,
        with_first_start=with_first_start,
    )  # fmt: skip
    report.unknown = unknown
    if prepared.test_person is None:
        schedule.mark_finished(prepared.conn, campaign, ledger.summary(campaign), ledger.clock())
    return report


def send(
    request: SendRequest, *, settings: Settings, clock: Clock | None = None,
    retry: RetryPolicy = DEFAULT_RETRY, progress: Progress | None = None,
) -> RunReport | None:  # fmt: skip
    """Prepare and execute without asking (scripts, tests); None if nothing was owed."""
    with prepare(request, settings=settings, clock=clock) as prepared:
        if prepared.plan.owed == 0:
            return None
        return execute(prepared, progress=progress, retry=retry)


def _count(
    plan: Plan, ledger: Ledger, conn: Connection, lists: Sequence[str], language: Callable[[Recipient], str],
    updated: frozenset[str], registrants: Sequence[Recipient] = (),
) -> None:  # fmt: skip
    """Fill the plan's numbers (languages as sent, after fallback) by reading the lists (nothing is written);
    those registered by form count among the new, not under a list."""
    states = ledger.states(plan.campaign)
    seen: set[str] = set()

    def consider(person: Recipient) -> None:
        if person.email in seen:
            return
        seen.add(person.email)
        if person.email not in states and (person.email in updated or not plan.cancellation):
            plan.new += 1
            plan.updates += person.email in updated
            plan.languages[language(person)] += 1

    for name in lists:
        count = 0
        for person in recipients.subscribers(conn, name):
            count += 1
            consider(person)
        plan.lists.append((name, count))
    for person in registrants:
        consider(person)


@dataclass(frozen=True)
class CampaignStatus:
    """The ledger's numbers of a campaign and the rows to list: unknown fate, failed, waiting for a retry."""

    title: str
    path: str
    campaign: str
    summary: Summary
    unknown: list[Row]
    failed: list[Row]
    retry: list[Row]


def campaign_status(ledger: Ledger, campaign: str, title: str, path: str, *, running: bool = False) -> CampaignStatus:
    """The numbers and lists of ``--status``. Unless a send of the campaign is ``running``, rows a run left
    in flight (it was killed, or ended by Ctrl-C twice) count and are listed as unknown: that is what they
    are, and what the next run records them as."""
    summary, unknown = ledger.summary(campaign), ledger.rows(campaign, ("unknown",))
    stranded = [] if running else ledger.stranded(campaign)
    if stranded:
        counts = {**summary.counts, "unknown": summary["unknown"] + len(stranded)}
        counts["sending"] = summary["sending"] - len(stranded)
        summary = Summary(campaign, counts)
        unknown = sorted([*unknown, *stranded], key=lambda row: row.email)
    return CampaignStatus(
        title, path, campaign, summary, unknown, ledger.rows(campaign, ("failed",)), ledger.rows(campaign, ("retry",))
    )


def status(request: SendRequest, *, settings: Settings) -> CampaignStatus:
    """``send … --status``: reads the state (creates nothing; no state file is an error that says so)."""
    content = load_content(request.content_dir)
    item = content.find(request.file)
    state = state_path(request.state, settings, request.content_dir)
    conn = connect_read_only(state)
    try:
        now: Clock = lambda: dt.datetime.now(dt.UTC)  # noqa: E731
        event_plan = plan_event(content, item, conn, now) if is_event(item) else None
        campaign = campaign_key(item, event_plan) + ("#test" if request.to else "")
        running = campaign_running(state, campaign)
        return campaign_status(Ledger(conn, now), campaign, item.meta.title, display_path(item.path), running=running)
    finally:
        conn.close()
