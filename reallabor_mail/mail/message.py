"""MIME assembly: every mail that leaves is built here. No I/O.

:func:`build_message` makes one personal message of a campaign (newsletter, invitation, update,
cancellation); :func:`build_notice` makes a mail outside any campaign (the double opt-in
confirmation). Both share the sender headers; :func:`sealed` turns either into the bytes a transport
sends, DKIM-signed when a signer is configured.

Messages use 7-bit-safe transfer encodings (the standard library picks the smaller of base64 and
quoted-printable for non-ASCII parts), RFC 2047 encoded headers and punycode domains, so they pass
through any relay unchanged. Header values with CR, LF or NUL are refused before anything is built.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass
from email import base64mime, policy
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import TYPE_CHECKING

from reallabor_mail.addresses import ascii_domain, wire_address
from reallabor_mail.characters import header_safe
from reallabor_mail.content.models import Language, Site
from reallabor_mail.i18n.greetings import greeting
from reallabor_mail.recipients.links import unsubscribe_mailto
from reallabor_mail.recipients.person import Recipient
from reallabor_mail.render.engine import RenderedEmail

if TYPE_CHECKING:
    from reallabor_mail.mail.dkim import DkimSigner

# 7bit: every part is base64 or quoted-printable, whichever is smaller; lines stay under 998 octets.
# refold_source="none": a header we set raw (already folded, e.g. List-Unsubscribe with its long links) goes
# out as written; the default would turn an over-long line into RFC 2047 words that break the links.
MAIL_POLICY = policy.SMTP.clone(cte_type="7bit", max_line_length=78, refold_source="none")


@dataclass(frozen=True)
class CalendarPart:
    """An iCalendar object to carry inline (text/calendar; method=…) and as an .ics attachment."""

    ics: str
    method: str
    filename: str = "invite.ics"


@dataclass(frozen=True)
class Campaign:
    """What is the same for every message of one send: its identity and list."""

    key: str  # e.g. "newsletter:2023-3" or "event:2024-06-19-abschlussveranstaltung:1"
    list_name: str
    date: dt.datetime


def ascii_address(email: str) -> tuple[str, str]:
    """Local part and punycode domain of an address (IDNA 2008, see :mod:`reallabor_mail.addresses`)."""
    local, _, domain = wire_address(email).rpartition("@")
    return local, domain


def mailbox(name: str | None, email: str) -> Address:
    """A ``From:``/``To:`` mailbox: the name as given (no line breaks), the address as on the wire."""
    local, domain = ascii_address(email)
    return Address(display_name=header_safe(name or "", "name"), username=local, domain=domain)


def message_id(campaign_key: str, email: str, secret: bytes, domain: str) -> str:
    """Stable per campaign and recipient (a resend keeps it), unguessable without the secret."""
    digest = hmac.new(secret, f"{campaign_key}\x00{email.lower()}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"<{digest}@{ascii_domain(domain)}>"


def list_id(site: Site, list_name: str) -> str:
    """The List-Id value, ``Name <list.domain>``, with a non-ASCII name already encoded."""
    name = header_safe(site.sender.name, "list name")
    label = f"<{list_name}.{ascii_domain(site.domain)}>"
    return f"{name} {label}" if name.isascii() else _encoded_words("List-Id", name, label)


def _encoded_words(name: str, text: str, suffix: str = "") -> str:
    """A non-ASCII header value as RFC 2047 encoded words with every space inside a word, folded at 78.

    The standard library's folder loses or adds a space between an encoded word and its neighbour in
    some cases ("Łódź –" became "Łódź–"; found by the hypothesis test in tests/test_sending.py). With
    ``suffix`` (the address after a display name) the text is a phrase: it is base64-encoded whole,
    since ASCII words left plain, or "Q" words, may hold "," and other specials a phrase must not.
    """
    if not suffix:
        return Header(text, "utf-8", maxlinelen=78, header_name=name).encode(linesep="\n")
    chunks = [""]
    for char in text:  # whole characters per word, at most 39 octets: a word of 64 characters
        if len((chunks[-1] + char).encode("utf-8")) > 39:
            chunks.append("")
        chunks[-1] += char
    value = "\n ".join(base64mime.header_encode(chunk, "utf-8") for chunk in chunks)
    used = len(value.rsplit("\n", 1)[-1]) + (0 if "\n" in value else len(name) + 2)
    return value + ("\n " if used + len(suffix) + 1 > 78 else " ") + suffix


def set_header(msg: EmailMessage, name: str, value: str | Address) -> None:
    """Set a header so that it decodes back to exactly ``value`` (display names included)."""
    if isinstance(value, Address):
        if value.display_name.isascii():
            msg[name] = value
        else:
            msg.set_raw(name, _encoded_words(name, value.display_name, f"<{value.addr_spec}>"))
    elif value.isascii():
        msg[name] = value
    else:
        msg.set_raw(name, _encoded_words(name, value))


def build_message(
    site: Site,
    rendered: RenderedEmail,
    recipient: Recipient,
    campaign: Campaign,
    *,
    secret: bytes,
    unsubscribe_url: str,
    calendar: CalendarPart | None = None,
) -> EmailMessage:
    """One recipient's message: text first, then HTML, then the calendar parts for invitations."""
    html_body, text_body = rendered.personalise(greeting(recipient, rendered.language), unsubscribe_url)
    msg = _addressed(site, rendered.subject, mailbox(recipient.display_name or None, recipient.email), campaign.date)
    msg["Message-ID"] = message_id(campaign.key, recipient.email, secret, site.domain)
    msg.set_raw("List-Id", list_id(site, campaign.list_name))
    url = header_safe(unsubscribe_url, "unsubscribe URL")
    msg.set_raw("List-Unsubscribe", f"<{url}>,\n <{unsubscribe_mailto(site.sender.email, url)}>")
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["MIME-Version"] = "1.0"

    msg.set_content(text_body, subtype="plain", charset="utf-8")
    msg.add_alternative(html_body, subtype="html", charset="utf-8")
    if calendar is not None:
        _attach_calendar(msg, calendar)
    msg["Content-Language"] = rendered.language  # after set_content, which clears Content-* headers
    _fix_boundaries(msg, msg["Message-ID"])
    return msg


def _attach_calendar(msg: EmailMessage, calendar: CalendarPart) -> None:
    """The calendar inline (text/calendar; method=…, for Outlook's and Gmail's buttons) and as an .ics file."""
    method = calendar.method.upper()
    msg.add_alternative(
        calendar.ics.encode("utf-8"),
        maintype="text",
        subtype="calendar",
        params={"method": method, "charset": "UTF-8"},
        cte="base64",
    )
    msg.make_mixed()
    msg.add_attachment(
        calendar.ics.encode("utf-8"),
        maintype="application",
        subtype="ics",
        filename=calendar.filename,
        cte="base64",
    )


def _addressed(site: Site, subject: str, to: Address, date: dt.datetime) -> EmailMessage:
    """A new message with the headers every mail carries: Subject, From, Reply-To, To, Date."""
    msg = EmailMessage(policy=MAIL_POLICY)
    set_header(msg, "Subject", header_safe(subject, "subject"))
    set_header(msg, "From", mailbox(site.sender.name, site.sender.email))
    if site.reply_to:
        msg["Reply-To"] = mailbox(None, site.reply_to)
    set_header(msg, "To", to)
    msg["Date"] = format_datetime(date)
    return msg


def build_notice(
    site: Site, *, to: str, subject: str, text: str, language: Language, key: str, secret: bytes, date: dt.datetime,
    calendar: CalendarPart | None = None,
) -> EmailMessage:
    """A plain-text mail outside any campaign, e.g. the double opt-in confirmation; with ``calendar`` it
    carries an invitation (an event registration's confirmation).

    It is addressed to the bare address (no display name: whoever typed a name into a form may not
    be its owner), marked ``Auto-Submitted`` so that auto-responders stay quiet, and its Message-ID is
    derived from ``key`` like a campaign's.
    """
    msg = _addressed(site, subject, mailbox(None, to), date)
    msg["Message-ID"] = message_id(key, to, secret, site.domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg["MIME-Version"] = "1.0"
    msg.set_content(text, subtype="plain", charset="utf-8")
    if calendar is not None:
        _attach_calendar(msg, calendar)
    msg["Content-Language"] = language  # after set_content, which clears Content-* headers
    if calendar is not None:
        _fix_boundaries(msg, msg["Message-ID"])
    return msg


def envelope(msg: EmailMessage) -> tuple[str, str]:
    """SMTP's MAIL FROM and RCPT TO of a built message (one recipient), domains in punycode."""
    return (
        "@".join(ascii_address(msg["From"].addresses[0].addr_spec)),
        "@".join(ascii_address(msg["To"].addresses[0].addr_spec)),
    )


def sealed(msg: EmailMessage, signer: DkimSigner | None) -> bytes:
    """The bytes to hand to a transport: :func:`as_bytes`, with a DKIM signature when configured."""
    data = as_bytes(msg)
    return signer.sign(data) if signer is not None else data


def _fix_boundaries(msg: EmailMessage, seed: str) -> None:
    """Boundaries derived from the Message-ID instead of random ones: the same input, the same bytes."""
    base = hashlib.sha256(seed.encode()).hexdigest()[:24]
    for depth, part in enumerate(p for p in msg.walk() if p.is_multipart()):
        part.set_boundary(f"=_rlm{depth}_{base}")


def as_bytes(msg: EmailMessage) -> bytes:
    """The message on the wire: CRLF line ends, 7-bit clean."""
    return msg.as_bytes(policy=MAIL_POLICY)
