"""What a message in the organiser's mailbox is: bounce, calendar answer, unsubscribe, auto-reply, or for a human.

The order matters: bounces first (a DSN is also ``Auto-Submitted``), then calendar answers, then the
unsubscribe subject of our List-Unsubscribe ``mailto:``, then auto-replies (RFC 3834 ``Auto-Submitted``,
``X-Autoreply``, ``Precedence: auto_reply``, out-of-office subjects in German, English and Ukrainian);
everything else is for a human. A message is identified by its Message-ID and a hash of its body
(:func:`message_key`): the same message read again, from IMAP or a Maildir, has the same key, while two
different messages that share a Message-ID (a forged one, a client's bug) do not.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from enum import StrEnum

from reallabor_mail.mailbox.bounces import Bounce, is_delivery_report, read_bounce
from reallabor_mail.mailbox.itip import CalendarAnswer, calendar_answers
from reallabor_mail.recipients.links import MAILTO_SUBJECT, unsubscribe_subject_token

_OUT_OF_OFFICE = re.compile(
    r"out of (the )?office|automatic reply|auto[- ]?reply|autoresponse|abwesenheit|automatische antwort"
    r"|nicht im büro|автоматична відповідь|відсутн|автоответ",
    re.IGNORECASE,
)
_UNSUBSCRIBE_WORD = re.compile(rf"^\s*{MAILTO_SUBJECT}\b", re.IGNORECASE)


class Kind(StrEnum):
    CALENDAR_REPLY = "calendar_reply"
    COUNTER = "counter"
    BOUNCE = "bounce"
    UNSUBSCRIBE = "unsubscribe"
    AUTO_REPLY = "auto_reply"
    OTHER = "other"


@dataclass(frozen=True)
class Classified:
    """A message's kind and what was read for it."""

    kind: Kind
    answers: list[CalendarAnswer] = field(default_factory=list)
    bounce: Bounce | None = None
    token: str | None = None  # the unsubscribe token of the subject, if any


def _header(head: bytes, name: bytes) -> bytes:
    """A header's raw value (continuation lines joined), b"" when absent."""
    found = re.search(rb"^" + name + rb":[ \t]*(.*(?:\n[ \t].*)*)", head, re.IGNORECASE | re.MULTILINE)
    return b" ".join(found.group(1).split()) if found else b""


def message_key(data: bytes) -> tuple[str, str | None]:
    """The key a message is recorded under and its Message-ID.

    sha256 of the Message-ID, From, Subject, Date and body: not of the whole message, so a copy delivered
    again (other Received lines, a copy in another folder) is the same message; two messages that share
    a Message-ID but differ (a forged one, a client's bug) are not. Without a Message-ID, all of it.
    """
    head, _, body = data.replace(b"\r\n", b"\n").partition(b"\n\n")
    raw_id = _header(head, b"message-id")
    message_id = raw_id.decode("ascii", errors="replace") or None
    parts = [raw_id, _header(head, b"from"), _header(head, b"subject"), _header(head, b"date")]
    content = body if message_id else data  # without a Message-ID the whole message is all there is
    digest = hashlib.sha256(b"\x00".join([*parts, hashlib.sha256(content).digest()])).hexdigest()
    return digest, message_id


def parse(data: bytes) -> EmailMessage:
    """The message, parsed leniently (defects are noted by the parser, not raised)."""
    return message_from_bytes(data, policy=policy.default)


def is_auto_reply(msg: EmailMessage) -> bool:
    """RFC 3834 ``Auto-Submitted`` (anything but ``no``), the vendors' X-Autoreply headers, an out-of-office subject."""
    auto = str(msg.get("Auto-Submitted", "")).strip().lower()
    if auto and not auto.startswith("no"):
        return True
    if msg.get("X-Autoreply") or msg.get("X-Autorespond") or msg.get("X-Autoresponder"):
        return True
    if str(msg.get("Precedence", "")).strip().lower() == "auto_reply":
        return True
    return bool(_OUT_OF_OFFICE.search(str(msg.get("Subject", ""))))


def classify(msg: EmailMessage, data: bytes) -> Classified:
    """The kind of a message (see the module's docstring for the order); ``data`` are its bytes.

    flufl.bounce reads a copy parsed with the legacy policy (compat32), as Mailman gives it: with the
    default policy every header lookup parses the header, which made its detectors 5 times slower.
    """
    bounce = read_bounce(message_from_bytes(data))
    if bounce is not None:
        return Classified(Kind.BOUNCE, bounce=bounce)
    if is_delivery_report(msg):  # "delivered", "relayed", read receipts: nothing to do
        return Classified(Kind.AUTO_REPLY)
    answers = calendar_answers(msg)
    if answers:
        method = answers[0].method
        kind = {"REPLY": Kind.CALENDAR_REPLY, "COUNTER": Kind.COUNTER}.get(method, Kind.OTHER)
        return Classified(kind, answers=answers)
    subject = str(msg.get("Subject", ""))
    token = unsubscribe_subject_token(subject)
    if token is not None or _UNSUBSCRIBE_WORD.search(subject):
        return Classified(Kind.UNSUBSCRIBE, token=token)
    if is_auto_reply(msg):
        return Classified(Kind.AUTO_REPLY)
    return Classified(Kind.OTHER)
