"""The ``inbox`` command's work: read every new message once, file it, say what was done. Prints nothing.

Each message is recorded in ``inbox_messages`` under its key (:func:`~reallabor_mail.mailbox.classify.message_key`)
in the same transaction as what filing it did (an answer stored, an address suppressed or unsubscribed),
so a run that dies half-way and a second run over the same mailbox change nothing twice. A message that
cannot be parsed is left for staff; it never stops the run.

What is left for staff (:data:`FOR_STAFF`) stays unread in the mailbox; the rest is marked read (IMAP).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import parseaddr, parsedate_to_datetime
from enum import StrEnum

from reallabor_mail.addresses import InvalidAddress, address_key, wire_address
from reallabor_mail.content.models import Site
from reallabor_mail.db import Connection, transaction, utc_stamp
from reallabor_mail.mailbox import attendance, bounces, itip
from reallabor_mail.mailbox.classify import Classified, Kind, classify, message_key, parse
from reallabor_mail.mailbox.source import RawMessage, Source
from reallabor_mail.recipients import store as recipients
from reallabor_mail.recipients.links import read_unsubscribe_token
from reallabor_mail.recipients.tokens import InvalidToken

Clock = Callable[[], dt.datetime]


class Reason(StrEnum):
    """What was done with a message, or why it was left for staff."""

    ANSWER_RECORDED = "answer_recorded"
    BOUNCE_SUPPRESSED = "bounce_suppressed"
    BOUNCE_COUNTED = "bounce_counted"
    UNSUBSCRIBED = "unsubscribed"
    ALREADY_OFF = "already_off"
    IGNORED = "ignored"
    # left for staff
    UNREADABLE = "unreadable"
    UNKNOWN_EVENT = "unknown_event"
    NOT_INVITED = "not_invited"
    OTHER_SENDER = "other_sender"
    UNUSUAL_ANSWER = "unusual_answer"
    COUNTER = "counter"
    OTHER_METHOD = "other_method"
    BOUNCE_UNMATCHED = "bounce_unmatched"
    UNSUBSCRIBE_WITHOUT_TOKEN = "unsubscribe_without_token"
    UNSUBSCRIBE_BAD_TOKEN = "unsubscribe_bad_token"
    FOR_A_HUMAN = "for_a_human"


FOR_STAFF = frozenset(Reason) - {
    Reason.ANSWER_RECORDED, Reason.BOUNCE_SUPPRESSED, Reason.BOUNCE_COUNTED, Reason.UNSUBSCRIBED, Reason.ALREADY_OFF,
    Reason.IGNORED,
}  # fmt: skip


@dataclass(frozen=True)
class Filed:
    """One message of this run and what became of it."""

    kind: Kind
    reason: Reason
    location: str
    sender: str | None
    subject: str | None
    detail: str = ""

    @property
    def for_staff(self) -> bool:
        return self.reason in FOR_STAFF


@dataclass
class InboxReport:
    """What a run did: every new message filed, the ones read before, the addresses taken off lists."""

    source: str
    filed: list[Filed] = field(default_factory=list)
    already: int = 0
    suppressed: list[tuple[str, str]] = field(default_factory=list)  # address, reason
    unsubscribed: list[tuple[str, str]] = field(default_factory=list)  # address, list

    @property
    def counts(self) -> Counter[Kind]:
        return Counter(f.kind for f in self.filed)

    @property
    def for_staff(self) -> list[Filed]:
        return [f for f in self.filed if f.for_staff]


@dataclass(frozen=True)
class Filing:
    """Everything filing needs besides the message: state, site, secret, clock, bounce policy."""

    conn: Connection
    site: Site
    secret: bytes
    clock: Clock
    policy: bounces.BouncePolicy = field(default_factory=bounces.BouncePolicy)


def process(source: Source, filing: Filing) -> InboxReport:
    """Read every message of ``source`` not read before and file it; returns what was done."""
    report = InboxReport(source.describe())
    conn = filing.conn
    for raw in source.messages():
        key, message_id = message_key(raw.data)
        if conn.execute("SELECT 1 FROM inbox_messages WHERE key = ?", (key,)).fetchone():
            report.already += 1
            continue
        with transaction(conn):
            filed = _file(raw, key, filing, report)
            conn.execute(
                "INSERT INTO inbox_messages (key, message_id, kind, for_staff, reason, detail, sender, subject, "
                "location, processed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, message_id, filed.kind, int(filed.for_staff), filed.reason, filed.detail or None, filed.sender,
                 filed.subject, filed.location, utc_stamp(filing.clock())),
            )  # fmt: skip
        report.filed.append(filed)
        if not filed.for_staff:
            source.filed(raw)
    return report


def _file(raw: RawMessage, key: str, filing: Filing, report: InboxReport) -> Filed:
    """Classify and file one message inside the caller's transaction; an unreadable one is left for staff."""
    try:
        msg = parse(raw.data)
        sender = parseaddr(str(msg.get("From", "")))[1] or None
        subject = " ".join(str(msg.get("Subject", "")).split())[:200] or None
        classified = classify(msg, raw.data)
    except Exception as exc:  # untrusted bytes through the email parser and flufl.bounce: any error, one message
        return Filed(Kind.OTHER, Reason.UNREADABLE, raw.location, None, None, f"{type(exc).__name__}: {exc}"[:200])
    reason, detail = _act(msg, classified, sender, key, filing, report)
    return Filed(classified.kind, reason, raw.location, sender, subject, detail)


def _sent_at(msg: EmailMessage, now: dt.datetime) -> dt.datetime:
    """When the message was written (its Date), never after now; now if it has none we can read."""
    try:
        moment = parsedate_to_datetime(str(msg.get("Date", "")))
    except (TypeError, ValueError, IndexError):
        return now
    return min(moment, now) if moment.tzinfo is not None else now


def _act(
    msg: EmailMessage, c: Classified, sender: str | None, key: str, filing: Filing, report: InboxReport
) -> tuple[Reason, str]:
    now = filing.clock()
    if c.kind is Kind.BOUNCE and c.bounce is not None:
        return _bounce(msg, c.bounce, key, filing, report)
    if c.kind is Kind.CALENDAR_REPLY:
        return _answer(c.answers[0], sender, key, filing)
    if c.kind is Kind.COUNTER:
        answer = c.answers[0]
        proposed = itip.describe_times(answer.start, answer.end)
        comment = f" ({answer.comment})" if answer.comment else ""
        return Reason.COUNTER, f"{answer.attendee or sender}: {proposed}{comment}"
    if c.kind is Kind.UNSUBSCRIBE:
        if c.token is None:
            return Reason.UNSUBSCRIBE_WITHOUT_TOKEN, sender or ""
        try:
            email, list_name = read_unsubscribe_token(filing.secret, c.token, now=now)
        except InvalidToken:
            return Reason.UNSUBSCRIBE_BAD_TOKEN, sender or ""
        left = recipients.unsubscribe(filing.conn, email, list_name, source="mailto unsubscribe", now=now)
        report.unsubscribed += [(email, name) for name in left]
        return (Reason.UNSUBSCRIBED if left else Reason.ALREADY_OFF), f"{email} ({list_name})"
    if c.kind is Kind.AUTO_REPLY:
        return Reason.IGNORED, ""
    if c.answers:  # a REQUEST, CANCEL, REFRESH … from someone else
        return Reason.OTHER_METHOD, c.answers[0].method
    return Reason.FOR_A_HUMAN, ""


def _bounce(
    msg: EmailMessage, bounce: bounces.Bounce, key: str, filing: Filing, report: InboxReport
) -> tuple[Reason, str]:
    reported = ", ".join(sorted(bounce.permanent | bounce.temporary))
    sent = bounces.sent_message(filing.conn, bounce.message_ids)
    if sent is None:
        return Reason.BOUNCE_UNMATCHED, reported
    now = filing.clock()
    suppressed = bounces.record_bounce(
        filing.conn, sent, bounce, key, at=_sent_at(msg, now), now=now, secret=filing.secret, policy=filing.policy
    )
    detail = sent.email if bounces.reported_matches(bounce, sent.email) else f"{sent.email} (reported: {reported})"
    if suppressed is not None:
        report.suppressed.append((sent.email, suppressed))
        return Reason.BOUNCE_SUPPRESSED, detail
    return Reason.BOUNCE_COUNTED, detail


def _same(one: str | None, other: str | None) -> bool:
    try:
        return one is not None and other is not None and address_key(one) == address_key(other)
    except InvalidAddress:
        return False


def _answer(answer: itip.CalendarAnswer, sender: str | None, key: str, filing: Filing) -> tuple[Reason, str]:
    conn = filing.conn
    stem = itip.event_of_uid(answer.uid, filing.site.domain)
    if stem is None or not itip.was_invited(conn, stem):
        return Reason.UNKNOWN_EVENT, answer.uid
    email = itip.attendee_key(answer)
    if email is None:
        return Reason.NOT_INVITED, f"{stem}: {answer.attendee or '?'}"
    if not (_same(sender, email) or _same(sender, answer.sent_by)):
        return Reason.OTHER_SENDER, f"{stem}: {email}"
    if not itip.was_invited(conn, stem, email):
        return Reason.NOT_INVITED, f"{stem}: {email}"
    value = itip.ANSWERS.get(answer.partstat or "")
    if value is None:
        return Reason.UNUSUAL_ANSWER, f"{stem}: {email} {answer.partstat or '?'}"
    current = itip.record_answer(conn, stem, email, value, answer, key, filing.clock())
    if value == "declined":  # a form registrant's Decline is the cancel button
        attendance.withdraw(conn, stem, email, now=filing.clock())
    outdated = current is not None and answer.sequence < current
    return Reason.ANSWER_RECORDED, f"{stem}: {email} {value}" + (
        f" (version {answer.sequence}, now {current})" if outdated else ""
    )


def forget(conn: Connection, email: str) -> None:
    """An erased person leaves the mailbox records: their calendar answers, declines, bounces and event
    registrations are dropped; the messages read keep their kind and reason (so a second run still knows
    them), without sender, subject or detail."""
    address = address_key(email)
    spellings = {address, wire_address(address).lower()}  # a From line may carry the punycode form
    with transaction(conn):
        for table in ("event_answers", "event_declines", "bounce_events", "event_registrations"):
            conn.execute(f"DELETE FROM {table} WHERE email = ?", (address,))
        for spelling in spellings:
            # LIKE with its wildcards escaped: a substring match both SQLite and PostgreSQL have (not instr)
            pattern = "%" + spelling.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            conn.execute(
                "UPDATE inbox_messages SET sender = NULL, subject = NULL, detail = NULL WHERE "
                "lower(coalesce(sender, '')) LIKE ? ESCAPE '\\' OR lower(coalesce(detail, '')) LIKE ? ESCAPE '\\'",
                (pattern, pattern),
            )
