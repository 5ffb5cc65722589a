"""The ``send`` command's work (contract §3): plan, prepare, execute, status. Returns plans and reports; prints nothing.

:func:`prepare` loads the content, renders the email once per language, counts the subscribers and holds
the campaign lock: nothing is written. The caller (the CLI) shows the :class:`Plan` and asks; then
:func:`execute` records who is owed the message and runs the engine (:mod:`reallabor_mail.delivery.engine`),
and :func:`campaign_status` gives the ledger's numbers to show. :func:`send` is prepare + execute without
asking, for scripts and tests. :func:`status` is ``send --status``: it only reads the state.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import sqlite3
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from zoneinfo import ZoneInfo

from reallabor_mail.addresses import address_key
from reallabor_mail.content.loader import EventItem, NewsletterItem, is_event, load_content
from reallabor_mail.content.models import Language, Site
from reallabor_mail.db import connect, connect_read_only, state_path
from reallabor_mail.delivery import schedule
from reallabor_mail.delivery.engine import DEFAULT_RETRY, Progress, RetryPolicy, RunReport, deliver
from reallabor_mail.delivery.event_versions import plan_event, record_sent_version
from reallabor_mail.delivery.ledger import Entry, Ledger, Row, Summary
from reallabor_mail.delivery.transport import (
    DeliveryError,
    MaildirTransport,
    RateLimiter,
    SmtpTransport,
    Transport,
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
from reallabor_mail.render.engine import RenderedEmail, Renderer
from reallabor_mail.render.ics import EventPlan
from reallabor_mail.settings import Settings

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
        bounced = recipients.Suppression.BOUNCED  # the engine suppresses only permanent failures
        recipients.suppress(self.conn, email, bounced, self.secret, detail=reason, now=self.clock())


class Composer:
    """Renders the email once per language and stamps one message per recipient (see mail/stamp.py)."""

    def __init__(
        self, site: Site, item: NewsletterItem | EventItem, render: Callable[[Language], RenderedEmail],
        campaign: str, date: dt.datetime, secret: bytes, event_plan: EventPlan | None, signer: DkimSigner | None,
    ) -> None:  # fmt: skip
        self.site, self.item, self.render, self.campaign, self.date = site, item, render, campaign, date
        self.secret, self.event_plan, self.signer = secret, event_plan, signer
        self.rendered: dict[Language, RenderedEmail] = {}
        self.stamps: dict[tuple[Language, str], MessageStamp] = {}

    def language(self, person: Recipient) -> Language:
        """The person's language if the item has that version, else the item's (German) original."""
        return person.language if person.language in self.item.versions else self.item.default_language

    def email(self, language: Language) -> RenderedEmail:
        if language not in self.rendered:
            self.rendered[language] = self.render(language)
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


def choose_transport(outbox: Path | None, settings: Settings) -> tuple[str, Callable[[], Transport]]:
    """Where messages go (described for the plan) and how to open it (after the user agreed)."""
    if outbox is not None:
        return f"the Maildir {outbox}/ (nothing goes over the network)", lambda: MaildirTransport(outbox)
    smtp = settings.smtp()
    if smtp is None:
        raise DeliveryError(NO_SERVER)
    return smtp.describe(), lambda: SmtpTransport(smtp)


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

    @property
    def this_run(self) -> int:
        """How many messages this run hands over at most (``--limit``)."""
        return min(self.owed, self.limit) if self.limit is not None else self.owed


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
    """A send ready to go: the plan to show, and everything :func:`execute` needs once the user agreed.

    Holds the campaign lock until :meth:`close` (or the end of a ``with`` block).
    """

    request: SendRequest
    plan: Plan
    site: Site
    conn: sqlite3.Connection
    ledger: Ledger
    composer: Composer
    audience: StoreAudience
    open_transport: Callable[[], Transport]
    event: tuple[EventItem, EventPlan] | None
    lists: tuple[str, ...]
    test_person: Recipient | None
    lock: int = -1  # the campaign lock (a file descriptor) held until the send is done

    def status(self) -> CampaignStatus:
        return campaign_status(self.ledger, self.plan.campaign, self.plan.title, self.plan.path)

    def close(self) -> None:
        if self.lock >= 0:
            os.close(self.lock)
            self.lock = -1

    def __enter__(self) -> Prepared:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


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


def campaign_key(item: NewsletterItem | EventItem, event_plan: EventPlan | None) -> str:
    """``newsletter:2023-3`` or ``event:<stem>:<SEQUENCE>`` (an updated event is a new campaign)."""
    key = f"{item.kind}:{item.stem}"
    return key if event_plan is None else f"{key}:{event_plan.sequence}"


def prepare(
    request: SendRequest, *, settings: Settings, clock: Clock | None = None
) -> Prepared:
    """Read content, settings and state, render the email in every language, count: nothing is sent."""
    content = load_content(request.file.parent.parent)
    item = content.find(request.file)
    via, open_transport = choose_transport(request.outbox, settings)
    signer = DkimSigner.from_settings(settings.dkim())
    secret = load_secret(settings)
    site = content.site
    clock = clock or (lambda: dt.datetime.now(ZoneInfo(site.timezone)))
    state = state_path(request.state, settings)
    conn = connect(state)
    ledger = Ledger(conn, clock)
    renderer = Renderer(content, request.templates or default_templates())
    event: tuple[EventItem, EventPlan] | None = None
    render: Callable[[Language], RenderedEmail]
    if is_event(item):
        event_plan = plan_event(content, item, conn, clock)
        event = (item, event_plan)
        render = lambda language: renderer.invitation_email(item, language, event_plan.changes(language))  # noqa: E731
    else:
        render = lambda language: renderer.newsletter_email(item, language)  # noqa: E731
    campaign = campaign_key(item, event[1] if event else None) + ("#test" if request.to else "")
    lock = lock_campaign(state, campaign)
    try:
        lists = request.lists or tuple(item.meta.lists)
        plan = Plan(
            title=item.meta.title, path=display_path(item.path), campaign=campaign, via=via,
            sender=f"{site.sender.name} <{site.sender.email}>", before=ledger.summary(campaign),
            resume=request.resume, retry_failed=request.retry_failed, limit=request.limit,
            signing=signer.describe() if signer else None,
        )  # fmt: skip
        composer = Composer(site, item, render, campaign, clock(), secret, event[1] if event else None, signer)
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
            request, plan, site, conn, ledger, composer, audience, open_transport, event, lists, person, lock
        )
    except BaseException:
        os.close(lock)
        raise


def execute(prepared: Prepared, *, progress: Progress | None = None, retry: RetryPolicy = DEFAULT_RETRY) -> RunReport:
    """Record who is owed the message and send it; ``progress`` hears the total, then every outcome."""
    request, ledger, campaign = prepared.request, prepared.ledger, prepared.plan.campaign
    transport = prepared.open_transport()
    if prepared.test_person is None:
        schedule.mark(prepared.conn, campaign, "sending", ledger.clock())
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
    if progress is not None:
        progress.start(min(owed, request.limit) if request.limit is not None else owed)
    report = deliver(
        ledger, campaign, prepared.composer, transport, sender=prepared.site.sender.email,
        audience=prepared.audience, connections=request.connections, rate=RateLimiter(request.rate),
        retry=retry, limit=request.limit, on_done=progress.done if progress is not None else None,
    )  # fmt: skip
    report.unknown = unknown
    if prepared.event is not None and report.sent and prepared.test_person is None:
        event, event_plan = prepared.event
        record_sent_version(prepared.conn, event, event_plan.sequence, event_plan.fingerprint, event_plan.dtstamp)
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


def campaign_status(ledger: Ledger, campaign: str, title: str, path: str) -> CampaignStatus:
    return CampaignStatus(
        title, path, campaign, ledger.summary(campaign), ledger.rows(campaign, ("unknown",)),
        ledger.rows(campaign, ("failed",)), ledger.rows(campaign, ("retry",)),
    )  # fmt: skip


def status(request: SendRequest, *, settings: Settings) -> CampaignStatus:
    """``send … --status``: reads the state (creates nothing; no state file is an error that says so)."""
    content = load_content(request.file.parent.parent)
    item = content.find(request.file)
    conn = connect_read_only(state_path(request.state, settings))
    try:
        now: Clock = lambda: dt.datetime.now(dt.UTC)  # noqa: E731
        event_plan = plan_event(content, item, conn, now) if is_event(item) else None
        campaign = campaign_key(item, event_plan) + ("#test" if request.to else "")
        return campaign_status(Ledger(conn, now), campaign, item.meta.title, display_path(item.path))
    finally:
        conn.close()
