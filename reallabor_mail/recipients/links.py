"""The signed public links of the mails: unsubscribe (never expires) and confirm (double opt-in)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from reallabor_mail.addresses import address_key, wire_address
from reallabor_mail.content.models import Site
from reallabor_mail.recipients.tokens import make_token, read_token

CONFIRM_DAYS = 7  # a confirmation link works this long; a second sign-up sends a fresh one
MAILTO_SUBJECT = "unsubscribe"
_SUBJECT_TOKEN = re.compile(rf"\b{MAILTO_SUBJECT}\s+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)", re.IGNORECASE)


def unsubscribe_url(site: Site, email: str, list_name: str, secret: bytes) -> str:
    """The List-Unsubscribe URL of one person and list (also the unsubscribe link in the footer).

    It never expires: a mail read a year later must still let its reader leave.
    """
    token = make_token(secret, "unsubscribe", {"e": address_key(email), "l": list_name})
    return f"{site.public_url}/unsubscribe/{token}"


def read_unsubscribe_token(secret: bytes, token: str, *, now: dt.datetime) -> tuple[str, str]:
    """The address and list of an unsubscribe link; :class:`InvalidToken` if it was forged."""
    data = read_token(secret, "unsubscribe", token, now=now, fields=("e", "l"))
    return data["e"], data["l"]


def unsubscribe_mailto(sender_email: str, unsubscribe_url: str) -> str:
    """The List-Unsubscribe ``mailto:``: our sender address, the subject ``unsubscribe <token>``.

    The token is the unsubscribe link's own (signed: a forged or altered one unsubscribes nobody). It rides
    in the subject, not in the address (``becker+<token>@…``): a token is longer than the 64 octets a local
    part may have, and plus addresses reach the mailbox only where the mail server supports them, while
    every mail client that follows a ``mailto:`` (Apple Mail's and Outlook's unsubscribe buttons) keeps the
    subject. base64url and the dot need no percent-encoding; the space is ``%20``.
    """
    token = unsubscribe_url.rpartition("/")[2]
    return f"mailto:{wire_address(sender_email)}?subject={MAILTO_SUBJECT}%20{token}"


def unsubscribe_subject_token(subject: str) -> str | None:
    """The token of an unsubscribe mail's subject (``unsubscribe <token>``, maybe after ``AW:``); None without."""
    match = _SUBJECT_TOKEN.search(subject)
    return match.group(1) if match else None


def confirm_url(site: Site, email: str, lists: Sequence[str], secret: bytes, *, now: dt.datetime) -> str:
    """The link of the double opt-in mail; it expires after :data:`CONFIRM_DAYS` days."""
    expires = now + dt.timedelta(days=CONFIRM_DAYS)
    token = make_token(secret, "confirm", {"e": address_key(email), "l": ",".join(lists)}, expires=expires)
    return f"{site.public_url}/confirm/{token}"


def read_confirm_token(secret: bytes, token: str, *, now: dt.datetime) -> tuple[str, list[str]]:
    """The address and lists of a confirmation link; :class:`InvalidToken` if forged or expired."""
    data = read_token(secret, "confirm", token, now=now, fields=("e", "l"))
    return data["e"], data["l"].split(",")
