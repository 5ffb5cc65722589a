"""The one email-address type: what ``site.yaml``, CSV import, the sign-up form, the preview and every
address on the wire (envelope, ``To:``, calendar ``ATTENDEE``) agree on.

Domains follow IDNA 2008 with UTS 46 mapping (email-validator, which uses the ``idna`` package), never
Python's built-in IDNA 2003 codec: ``straße.de`` stays ``straße.de`` and goes out as
``xn--strae-oqa.de``, not as ``strasse.de``. A local part must be ASCII: sending it otherwise needs
SMTPUTF8, which this program does not use (many municipal mail servers do not offer it).

Refused although RFC 5321 allows them: ``=?`` (the start of an RFC 2047 encoded word, which mail
software decodes in headers: ``=?utf-8?q?=74arget?=@…`` would reach ``target@…`` and slip past the
per-mailbox limit) and the source-routing relics ``%`` and ``!`` (``victim%example.org@relay``).

:attr:`EmailAddress.mailbox` is the mailbox an address reaches, for limits only: ``+tag`` dropped,
case-folded, and for Gmail without dots (``googlemail.com`` is ``gmail.com``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum

import idna
from email_validator import EmailNotValidError, validate_email

from reallabor_mail.characters import header_safe
from reallabor_mail.errors import ReallaborError


class AddressFault(StrEnum):
    """Why an address was refused, for callers that say it in their reader's language (content errors)."""

    MALFORMED = "malformed"  # not name@domain, or a domain that is not one
    NON_ASCII_LOCAL = "non-ascii-local"  # letters beyond ASCII before the @ (needs SMTPUTF8)
    ENCODED_WORD = "encoded-word"  # '=?' before the @
    SOURCE_ROUTE = "source-route"  # '%' or '!' before the @


class InvalidAddress(ReallaborError):
    """An email address that cannot be sent to; ``detail`` says why (in English) without naming the field,
    ``fault`` says it as a code."""

    def __init__(self, field: str, detail: str, fault: AddressFault = AddressFault.MALFORMED) -> None:
        super().__init__(f"{field}: {detail}")
        self.detail = detail
        self.fault = fault


# Local-part characters RFC 5321 allows and we refuse, with what to tell the person.
_REFUSED_IN_LOCAL = (
    ("=?", "'=?' (an encoded word) is not allowed before the @", AddressFault.ENCODED_WORD),
    ("%", "'%' (source routing) is not allowed before the @", AddressFault.SOURCE_ROUTE),
    ("!", "'!' (source routing) is not allowed before the @", AddressFault.SOURCE_ROUTE),
)
GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


@dataclass(frozen=True)
class EmailAddress:
    """A checked address: ASCII local part, Unicode domain (UTS 46 mapped) and its punycode form."""

    local: str
    domain: str
    ascii_domain: str

    def __str__(self) -> str:
        return f"{self.local}@{self.domain}"

    @property
    def ascii(self) -> str:
        """The address as it goes on the wire (MAIL FROM, RCPT TO, ``To:``, ``mailto:``)."""
        return f"{self.local}@{self.ascii_domain}"

    @property
    def key(self) -> str:
        """The stored form of a person's address: lower case, Unicode domain (one row per mailbox)."""
        return f"{self.local.lower()}@{self.domain}"

    @property
    def mailbox(self) -> str:
        """The mailbox the address reaches, for counting mails to it (never stored as the address):
        ``+tag`` dropped, case-folded, punycode domain; Gmail ignores dots and knows two domains."""
        local = self.local.split("+", 1)[0].casefold()
        domain = self.ascii_domain.casefold()
        if domain in GMAIL_DOMAINS:
            local, domain = local.replace(".", ""), "gmail.com"
        return f"{local}@{domain}"


@functools.lru_cache(maxsize=1024)
def parse_address(raw: str, field: str = "email") -> EmailAddress:
    """Check an address as a person typed it (no network); :class:`InvalidAddress` names ``field``.

    A punycode domain (``xn--strae-oqa.de``) and its Unicode form (``straße.de``) give the same address.
    Cached (the result is immutable; a refusal is not cached): a send asks twice per person within a
    batch (the suppression hash, the unsubscribe token), about 20 µs each.
    """
    text = header_safe(raw, field).strip()
    try:
        checked = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        reason, fault = str(exc), AddressFault.MALFORMED
        if "before the @-sign" in reason and "nternationalized" in reason:
            reason, fault = (
                "the part before the @ has non-ASCII letters, which mail servers without SMTPUTF8 cannot "
                "deliver; use an address written in ASCII (e.g. joerg.weiss@…)"
            ), AddressFault.NON_ASCII_LOCAL
        raise InvalidAddress(field, f"{text!r} is not an address mail can be sent to: {reason}", fault) from None
    _check_local(checked.local_part, text, field)
    return EmailAddress(checked.local_part, checked.domain, checked.ascii_domain)


def _check_local(local: str, text: str, field: str) -> None:
    for found, reason, fault in _REFUSED_IN_LOCAL:
        if found in local:
            raise InvalidAddress(field, f"{text!r} is not an address mail can be sent to: {reason}", fault)


def address_key(raw: str, field: str = "email") -> str:
    """The stored form of an address (see :attr:`EmailAddress.key`)."""
    return parse_address(raw, field).key


def wire_address(email: str) -> str:
    """An address on the wire: the domain in punycode, the local part as it is (it must be ASCII and
    hold nothing a mail program would decode, see the module docstring)."""
    local, _, domain = header_safe(email, "address").rpartition("@")
    if not local.isascii():
        parse_address(email, "address")  # raises, saying why
    _check_local(local, email, "address")
    return f"{local}@{ascii_domain(domain)}"


@functools.lru_cache(maxsize=4096)
def ascii_domain(domain: str) -> str:
    """A domain on the wire (envelope, Message-ID, List-Id, DKIM): its IDNA 2008 punycode form.

    The same conversion email-validator makes (``idna`` with UTS 46, non-transitional), without its
    refusal of reserved names such as ``.invalid``. Cached: a list of 100,000 people has a few hundred
    domains.
    """
    try:
        return idna.encode(domain, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError as exc:
        raise InvalidAddress("domain", f"{domain!r} is not a domain name mail can be sent to: {exc}") from None
