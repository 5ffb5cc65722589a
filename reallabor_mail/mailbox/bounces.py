"""Bounces that arrive as mail: DSNs (RFC 3464) and the non-standard ones, and what they do to an address.

Detection is flufl.bounce (Mailman's detectors: DSN, Postfix, qmail, Exchange, Microsoft, Yahoo, …),
which tells permanent from temporary failures. A bounce counts only when it carries the Message-ID of a
message we sent (the DSN's returned headers, ``message/rfc822``, or qmail's copy below its text): our
Message-IDs are an HMAC of campaign and address (mail/message.py ``message_id``), so the ledger row
names the campaign and the address, and nobody who did not receive the message can make one up. Not
VERP: a per-recipient return path needs a plus address the organiser's mail server delivers to the
mailbox, and an envelope sender that differs per message, which SPF/DMARC alignment and the hosters'
SMTP relays of a small office do not all allow; the Message-ID works with the envelope we have. A
bounce without one of our Message-IDs (a forwarded copy, a foreign report) is left for staff.

A permanent failure suppresses the address at once, with the reported status as the reason. A
temporary one is counted: :data:`DEFAULT_LIMIT` days with a temporary failure within
:data:`DEFAULT_DAYS` days suppress, as Mailman's bounce score does (one point per day at most).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from email.message import Message

from flufl.bounce import all_failures

from reallabor_mail.addresses import InvalidAddress, address_key
from reallabor_mail.db import Connection, utc_stamp
from reallabor_mail.recipients import store as recipients

# flufl.bounce logs a detector's exception with its traceback before re-raising it; the run handles the
# error (the message is left for staff), so the log must not reach the terminal through logging's last resort.
logging.getLogger("flufl.bounce").addHandler(logging.NullHandler())

DEFAULT_LIMIT = 3
DEFAULT_DAYS = 30
_MESSAGE_ID = re.compile(r"^message-id:[ \t]*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


@dataclass(frozen=True)
class BouncePolicy:
    """When temporary failures suppress an address: ``limit`` days with one within ``days`` days."""

    limit: int = DEFAULT_LIMIT
    days: int = DEFAULT_DAYS


@dataclass(frozen=True)
class Bounce:
    """What a bounce reports: the failing addresses, permanent or not, and the Message-IDs it returns."""

    permanent: frozenset[str]
    temporary: frozenset[str]
    message_ids: tuple[str, ...]
    status: str  # the DSN's Status and Diagnostic-Code, or the first status code in the text

    @property
    def is_permanent(self) -> bool:
        return bool(self.permanent)


def _decoded(addresses: frozenset[bytes]) -> frozenset[str]:
    return frozenset(a.decode("ascii", errors="replace").strip("<>").lower() for a in addresses)


def _returned_ids(msg: Message) -> tuple[str, ...]:
    """Message-IDs of the returned original: in message/rfc822 and text/rfc822-headers parts, or in the text."""
    found: list[str] = []
    own = str(msg.get("Message-ID", "")).strip()
    for part in msg.walk():
        if part is msg:
            continue
        if part.get_content_type() == "message/rfc822" and part.is_multipart():
            inner = part.get_payload(0)
            if isinstance(inner, Message) and inner.get("Message-ID"):
                found.append(str(inner["Message-ID"]).strip())
            continue
        if part.get_content_maintype() == "text" or part.get_content_type() == "message/rfc822":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                found += _MESSAGE_ID.findall(payload.decode("utf-8", errors="replace"))
    if not msg.is_multipart():  # qmail and friends: the copy of the message is in the text itself
        payload = msg.get_payload(decode=True)
        if isinstance(payload, bytes):
            found += _MESSAGE_ID.findall(payload.decode("utf-8", errors="replace"))
    unique = dict.fromkeys(i for i in found if i != own)
    return tuple(unique)


def _status(msg: Message) -> str:
    """The reported reason: DSN Status and Diagnostic-Code per recipient, else a status code in the text."""
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status" and part.is_multipart():
            for block in part.get_payload():
                if isinstance(block, Message) and block.get("Status"):
                    diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
                    return f"{block['Status']} {diagnostic}".strip()[:300]
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                code = _STATUS.search(payload.decode("utf-8", errors="replace"))
                if code:
                    return code.group(1)
    return ""


def is_delivery_report(msg: Message) -> bool:
    """A DSN or MDN by its type (``multipart/report``), whatever it reports (also "delivered")."""
    return msg.get_content_type() == "multipart/report"


def read_bounce(msg: Message) -> Bounce | None:
    """The failures a message reports, or None if it is no bounce."""
    temporary, permanent = all_failures(msg)
    if not temporary and not permanent:
        return None
    return Bounce(_decoded(permanent), _decoded(temporary), _returned_ids(msg), _status(msg))


@dataclass(frozen=True)
class SentMessage:
    """The ledger row a returned Message-ID belongs to."""

    campaign: str
    email: str


def sent_message(conn: Connection, message_ids: tuple[str, ...]) -> SentMessage | None:
    """The first returned Message-ID that is one of ours, as its ledger row (campaign and address)."""
    for message_id in message_ids:
        row = conn.execute(
            "SELECT campaign, email FROM send_ledger WHERE message_id = ? LIMIT 1", (message_id,)
        ).fetchone()
        if row is not None:
            return SentMessage(row[0], row[1])
    return None


def reported_matches(bounce: Bounce, email: str) -> bool:
    """Whether the bounce names the address we sent to (a forwarding address may be named instead)."""
    for address in bounce.permanent | bounce.temporary:
        try:
            if address_key(address) == email:
                return True
        except InvalidAddress:
            continue
    return False


def record_bounce(
    conn: Connection, sent: SentMessage, bounce: Bounce, message_key: str, *, at: dt.datetime,
    now: dt.datetime, secret: bytes, policy: BouncePolicy,
) -> str | None:  # fmt: skip
    """Record a bounce (inside the caller's transaction); returns the suppression reason if the address
    is suppressed now (permanent, or the temporary failures reached the limit), else None."""
    moment = min(at, now)
    conn.execute(
        "INSERT INTO bounce_events (email, campaign, permanent, status, at, message_key) VALUES (?, ?, ?, ?, ?, ?)",
        (sent.email, sent.campaign, int(bounce.is_permanent), bounce.status or None, utc_stamp(moment), message_key),
    )
    if recipients.is_suppressed(conn, sent.email, secret):
        return None
    reason: str | None = None
    if bounce.is_permanent:
        reason = f"bounced: {bounce.status or 'permanent failure'} ({sent.campaign}, {moment.date().isoformat()})"
    else:
        since = utc_stamp(now - dt.timedelta(days=policy.days))
        days = conn.execute(
            "SELECT count(DISTINCT substr(at, 1, 10)) FROM bounce_events WHERE email = ? AND permanent = 0 AND at >= ?",
            (sent.email, since),
        ).fetchone()[0]
        if int(days) >= policy.limit:
            reason = (
                f"bounced: temporary failures on {days} days within {policy.days} days "
                f"(last {bounce.status or 'no status'}, {moment.date().isoformat()})"
            )
    if reason is not None:
        recipients.suppress(conn, sent.email, recipients.Suppression.BOUNCED, secret, detail=reason, now=now)
    return reason
