"""The mailing list: people, their list memberships, consent records and the suppression list.

Tables (created by the migrations of :mod:`reallabor_mail.db`):

- ``recipients``: one row per person, the address normalised (lower case, Unicode domain) and unique;
- ``memberships``: per person and list a status: pending, subscribed, unsubscribed or bounced;
- ``consent_events``: every step of consent (import, sign-up, confirmation, unsubscribe, bounce) with
  time, source, who, IP and the version of the consent text, the proof UWG §7 / GDPR Art. 7 ask for;
- ``consent_texts``: the exact wording a sign-up agreed to, keyed by its version (a hash of it);
- ``suppressions``: keyed hashes (HMAC with ``REALLABOR_SECRET``) of erased or hard-bounced addresses.
  Nothing else of an erased person is kept; the hash keeps them out of later imports and sends.

Writes that belong together run in one transaction (:func:`transaction`). Times are passed in.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Literal, get_args

from email_validator import EmailNotValidError, validate_email

from reallabor_mail.content.models import Language, Site
from reallabor_mail.db import transaction, utc_stamp
from reallabor_mail.errors import ReallaborError
from reallabor_mail.i18n.greetings import Recipient, normalise_salutation
from reallabor_mail.recipients.tokens import InvalidToken, make_token, read_token

Status = Literal["pending", "subscribed", "unsubscribed", "bounced"]
STATUSES: tuple[Status, ...] = get_args(Status)
PENDING_DAYS = 30  # unconfirmed sign-ups are deleted after this many days
CONFIRM_DAYS = 7  # a confirmation link works this long; a second sign-up sends a fresh one
LIST_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class RecipientError(ReallaborError):
    """A recipient operation cannot be done (unknown address, bad list name, wrong secret, …)."""


class ImportRefused(ReallaborError):
    """A CSV file could not be imported; the message lists every problem."""


def check_list_name(name: str) -> str:
    """A list name as content front matter writes it: lower case letters, digits, ``-``, ``_``."""
    if not LIST_NAME.match(name):
        raise RecipientError(f"{name!r}: not a list name; use lower case letters, digits, - and _ (e.g. newsletter)")
    return name


# --- addresses, fields and the suppression hash -------------------------------------------------


class InvalidAddress(ReallaborError):
    """An email address that does not pass validation."""


def normalise_email(raw: str) -> str:
    """The stored form of an address: checked (no network), lower case, Unicode domain.

    Internationalised domains are accepted (they are punycoded when sent); a non-ASCII local part is
    refused because it needs SMTPUTF8, which many municipal mail servers do not offer.
    """
    text = raw.strip()
    try:
        return validate_email(text, check_deliverability=False, allow_smtputf8=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidAddress(f"{text!r} is not a valid email address: {exc}") from None


def address_hash(email: str, secret: bytes) -> str:
    """The keyed hash that stands in for an erased address; without the secret it cannot be tested."""
    return hmac.new(secret, b"suppression\x00" + normalise_email(email).encode("utf-8"), hashlib.sha256).hexdigest()


def _check_secret(conn: sqlite3.Connection, secret: bytes) -> None:
    """Refuse a secret other than the one the suppression list was made with: a changed
    ``REALLABOR_SECRET`` would otherwise silently let erased addresses back in."""
    fingerprint = hmac.new(secret, b"key-id", hashlib.sha256).hexdigest()[:16]
    row = conn.execute("SELECT value FROM recipients_meta WHERE key = 'secret_id'").fetchone()
    if row is None:
        conn.execute("INSERT OR IGNORE INTO recipients_meta (key, value) VALUES ('secret_id', ?)", (fingerprint,))
    elif row["value"] != fingerprint:
        raise RecipientError(
            "REALLABOR_SECRET is not the secret this state file's suppression list was made with; "
            "set the original secret again (a new one would let erased addresses back in)"
        )


def is_suppressed(conn: sqlite3.Connection, email: str, secret: bytes) -> bool:
    """Whether an address was erased or hard-bounced; a send must skip it."""
    _check_secret(conn, secret)
    row = conn.execute("SELECT 1 FROM suppressions WHERE address_hash = ?", (address_hash(email, secret),))
    return row.fetchone() is not None


def suppress(
    conn: sqlite3.Connection, email: str, reason: str, secret: bytes, *, now: dt.datetime | None = None
) -> None:
    """Put an address on the suppression list and take it off every list it is on.

    Used for erasure and for hard bounces (5.1.1). A stored person keeps their data (erasure is
    :func:`erase`); their memberships become ``bounced`` or ``unsubscribed`` so that
    :func:`subscribers` never yields them.
    """
    moment = utc_stamp(now or dt.datetime.now(dt.UTC))
    status: Status = "bounced" if "bounce" in reason.lower() else "unsubscribed"
    key = address_hash(email, secret)
    with transaction(conn):
        _check_secret(conn, secret)
        _suppress(conn, key, email, reason, status, moment)


def _suppress(conn: sqlite3.Connection, key: str, email: str, reason: str, status: Status, moment: str) -> None:
    conn.execute(
        "INSERT INTO suppressions (address_hash, reason, at) VALUES (?, ?, ?) "
        "ON CONFLICT (address_hash) DO UPDATE SET reason = excluded.reason, at = excluded.at",
        (key, reason, moment),
    )
    person = _person_id(conn, normalise_email(email))
    if person is not None:
        for row in conn.execute(
            "SELECT list_name FROM memberships WHERE recipient_id = ? AND status IN ('pending', 'subscribed')",
            (person,),
        ).fetchall():
            _set_status(conn, person, row["list_name"], status, moment)
            _record(conn, person, row["list_name"], status, moment, source=f"suppressed: {reason}")


def lift_suppression(conn: sqlite3.Connection, email: str, secret: bytes) -> None:
    """Remove an address from the suppression list (after a fresh, confirmed sign-up)."""
    _check_secret(conn, secret)
    conn.execute("DELETE FROM suppressions WHERE address_hash = ?", (address_hash(email, secret),))


# --- person fields: one set of rules for CSV rows and the sign-up form --------------------------

FIELD_LIMITS: dict[str, int] = {
    "salutation": 20, "title": 40, "first_name": 100, "last_name": 100, "organisation": 200, "language": 20,
}  # fmt: skip
PERSON_FIELDS = ("email", *FIELD_LIMITS)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_LANGUAGE_NAMES: dict[str, Language] = {
    "de": "de", "deutsch": "de", "german": "de", "німецька": "de",
    "uk": "uk", "ua": "uk", "ukrainisch": "uk", "ukrainian": "uk", "українська": "uk",
    "en": "en", "englisch": "en", "english": "en", "англійська": "en",
}  # fmt: skip


@dataclass(frozen=True)
class FieldProblem:
    """What is wrong with one field; ``code`` lets the web form say it in the reader's language."""

    field: str
    code: Literal["required", "email", "too_long", "line_break", "formula", "salutation", "language"]
    message: str


def clean_person(raw: Mapping[str, str | None]) -> tuple[Recipient | None, list[FieldProblem]]:
    """A :class:`Recipient` from untrusted strings, or every problem found in them."""
    problems: list[FieldProblem] = []
    values: dict[str, str | None] = {}
    for name in PERSON_FIELDS:
        value = (raw.get(name) or "").strip()
        label = name.replace("_", " ")
        if any(ch in value for ch in "\r\n\x00"):
            problems.append(FieldProblem(name, "line_break", f"{label} contains a line break"))
        elif value.startswith(FORMULA_START) and name != "email":
            problems.append(FieldProblem(
                name, "formula", f"{label} {value[:30]!r} starts with {value[0]!r} like a spreadsheet formula"
            ))
        elif name in FIELD_LIMITS and len(value) > FIELD_LIMITS[name]:
            problems.append(FieldProblem(name, "too_long", f"{label} is longer than {FIELD_LIMITS[name]} characters"))
        values[name] = value or None
    if not any(p.field == "email" for p in problems):
        if not values["email"]:
            problems.append(FieldProblem("email", "required", "the email address is missing"))
        else:
            try:
                values["email"] = normalise_email(values["email"])
            except InvalidAddress as exc:
                problems.append(FieldProblem("email", "email", str(exc)))
    salutation = values["salutation"]
    if salutation and not any(p.field == "salutation" for p in problems):
        values["salutation"] = normalise_salutation(salutation)
        if values["salutation"] is None:
            problems.append(FieldProblem(
                "salutation", "salutation", f"salutation {salutation!r} is not Frau or Herr (leave it empty otherwise)"
            ))
    language = (values["language"] or "de").lower()
    if language not in _LANGUAGE_NAMES and not any(p.field == "language" for p in problems):
        problems.append(FieldProblem("language", "language", f"language {language!r} is not de, uk or en"))
    if problems:
        return None, problems
    person = Recipient(
        email=values["email"] or "",
        salutation=values["salutation"],
        title=values["title"],
        first_name=values["first_name"],
        last_name=values["last_name"],
        organisation=values["organisation"],
        language=_LANGUAGE_NAMES[language],
    )
    return person, []


# --- the store ----------------------------------------------------------------------------------


def _person_id(conn: sqlite3.Connection, email: str) -> int | None:
    row = conn.execute("SELECT id FROM recipients WHERE email = ?", (email,)).fetchone()
    return int(row["id"]) if row else None


def _status(conn: sqlite3.Connection, person: int, list_name: str) -> Status | None:
    row = conn.execute(
        "SELECT status FROM memberships WHERE recipient_id = ? AND list_name = ?", (person, list_name)
    ).fetchone()
    return row["status"] if row else None


def _set_status(conn: sqlite3.Connection, person: int, list_name: str, status: Status, moment: str) -> None:
    conn.execute(
        "INSERT INTO memberships (recipient_id, list_name, status, changed) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (recipient_id, list_name) DO UPDATE SET status = excluded.status, changed = excluded.changed",
        (person, list_name, status, moment),
    )


def _record(
    conn: sqlite3.Connection,
    person: int,
    list_name: str,
    action: str,
    moment: str,
    *,
    source: str,
    actor: str | None = None,
    ip: str | None = None,
    consent_version: str | None = None,
) -> None:
    conn.execute(
        "INSERT INTO consent_events (recipient_id, list_name, action, at, source, actor, ip, consent_version) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (person, list_name, action, moment, source, actor, ip, consent_version),
    )


def _upsert_person(conn: sqlite3.Connection, person: Recipient, moment: str, *, overwrite: bool) -> int:
    """Insert a person, or (with ``overwrite``) update the stored fields that ``person`` has values for."""
    email = normalise_email(person.email)
    existing = _person_id(conn, email)
    data = {f.name: getattr(person, f.name) for f in fields(Recipient) if f.name != "email"}
    if existing is None:
        cursor = conn.execute(
            "INSERT INTO recipients (email, salutation, title, first_name, last_name, organisation, language,"
            " created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (email, *data.values(), moment, moment),
        )
        return int(cursor.lastrowid or 0)
    if overwrite:
        updates = {k: v for k, v in data.items() if v is not None}
        assignments = ", ".join(f"{k} = ?" for k in updates)
        conn.execute(
            f"UPDATE recipients SET {assignments}, updated = ? WHERE id = ?", (*updates.values(), moment, existing)
        )
    return existing


def add_recipient(
    conn: sqlite3.Connection, recipient: Recipient, list_name: str, *, status: str, source: str, now: dt.datetime
) -> None:
    """Store a person with a status on a list, recording where that came from."""
    if status not in STATUSES:
        raise RecipientError(f"{status!r}: not a status; use one of {', '.join(STATUSES)}")
    moment = utc_stamp(now)
    with transaction(conn):
        person = _upsert_person(conn, recipient, moment, overwrite=True)
        _set_status(conn, person, check_list_name(list_name), status, moment)
        _record(conn, person, list_name, status, moment, source=source)


def _recipient(row: sqlite3.Row) -> Recipient:
    return Recipient(
        email=row["email"],
        salutation=row["salutation"],
        title=row["title"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        organisation=row["organisation"],
        language=row["language"],
    )


def subscribers(conn: sqlite3.Connection, list_name: str) -> Iterator[Recipient]:
    """Everyone subscribed to a list, by address. Suppressed addresses are not subscribed (see
    :func:`suppress`); a send still asks :func:`is_suppressed` before each message."""
    rows = conn.execute(
        "SELECT r.* FROM recipients r JOIN memberships m ON m.recipient_id = r.id "
        "WHERE m.list_name = ? AND m.status = 'subscribed' ORDER BY r.email",
        (list_name,),
    ).fetchall()
    for row in rows:
        yield _recipient(row)


def is_subscribed(conn: sqlite3.Connection, email: str, lists: Sequence[str]) -> bool:
    """Whether the address is still subscribed to one of ``lists`` (a send asks before each message,
    so an unsubscribe during a running send is honoured)."""
    row = conn.execute(
        "SELECT 1 FROM memberships m JOIN recipients r ON r.id = m.recipient_id WHERE r.email = ? "
        f"AND m.status = 'subscribed' AND m.list_name IN ({', '.join('?' * len(lists))})",
        (email, *lists),
    )
    return row.fetchone() is not None


def unsubscribe_url(site: Site, email: str, list_name: str, secret: bytes) -> str:
    """The List-Unsubscribe URL of one person and list (also the unsubscribe link in the footer).

    It never expires: a mail read a year later must still let its reader leave.
    """
    token = make_token(secret, "unsubscribe", {"e": normalise_email(email), "l": list_name})
    return f"{site.public_url}/unsubscribe/{token}"


def read_unsubscribe_token(secret: bytes, token: str, *, now: dt.datetime) -> tuple[str, str]:
    """The address and list of an unsubscribe link; :class:`InvalidToken` if it was forged."""
    data = read_token(secret, "unsubscribe", token, now=now)
    if "e" not in data or "l" not in data:
        raise InvalidToken("the link is not valid: unexpected content")
    return data["e"], data["l"]


def confirm_url(site: Site, email: str, lists: Sequence[str], secret: bytes, *, now: dt.datetime) -> str:
    """The link of the double opt-in mail; it expires after :data:`CONFIRM_DAYS` days."""
    expires = now + dt.timedelta(days=CONFIRM_DAYS)
    token = make_token(secret, "confirm", {"e": normalise_email(email), "l": ",".join(lists)}, expires=expires)
    return f"{site.public_url}/confirm/{token}"


def read_confirm_token(secret: bytes, token: str, *, now: dt.datetime) -> tuple[str, list[str]]:
    """The address and lists of a confirmation link; :class:`InvalidToken` if forged or expired."""
    data = read_token(secret, "confirm", token, now=now)
    if "e" not in data or "l" not in data:
        raise InvalidToken("the link is not valid: unexpected content")
    return data["e"], data["l"].split(",")


def consent_version(text: str, language: Language) -> str:
    """The version of a consent text: a short hash of its exact wording."""
    return f"{language}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]}"


@dataclass(frozen=True)
class Signup:
    """What a sign-up did: the lists that now wait for confirmation (empty: nothing to confirm)."""

    email: str
    pending: tuple[str, ...]
    resent: bool


def sign_up(
    conn: sqlite3.Connection,
    person: Recipient,
    lists: Sequence[str],
    *,
    consent_text: str,
    consent_language: Language,
    ip: str | None,
    now: dt.datetime,
) -> Signup:
    """Record a sign-up from the form as pending (double opt-in step 1).

    A new person is stored with the form's details; a known person's details are left alone (anyone can
    type any address into a form). Lists the person is already subscribed to need no confirmation. A
    second sign-up while pending is not a duplicate: it records the attempt and asks for a new mail.
    ``consent_text`` is the wording the person saw (in the page's language); it is kept by version.
    """
    moment = utc_stamp(now)
    version = consent_version(consent_text, consent_language)
    email = normalise_email(person.email)
    with transaction(conn):
        conn.execute(
            "INSERT OR IGNORE INTO consent_texts (version, language, text) VALUES (?, ?, ?)",
            (version, consent_language, consent_text),
        )
        person_id = _upsert_person(conn, replace(person, email=email), moment, overwrite=False)
        pending: list[str] = []
        resent = False
        for list_name in lists:
            status = _status(conn, person_id, check_list_name(list_name))
            if status == "subscribed":
                continue
            resent = resent or status == "pending"
            _set_status(conn, person_id, list_name, "pending", moment)
            _record(conn, person_id, list_name, "signup", moment, source="form", ip=ip, consent_version=version)
            pending.append(list_name)
    return Signup(email, tuple(pending), resent)


def confirm(
    conn: sqlite3.Connection, email: str, lists: Sequence[str], *, ip: str | None, now: dt.datetime, secret: bytes
) -> list[str]:
    """Confirm pending lists (double opt-in step 2); returns the lists now subscribed.

    Only pending memberships change: an old link cannot re-subscribe someone who left since. A
    confirmed sign-up of an erased or bounced address is fresh consent and lifts its suppression.
    """
    moment = utc_stamp(now)
    confirmed: list[str] = []
    with transaction(conn):
        person = _person_id(conn, normalise_email(email))
        if person is None:
            return []
        for list_name in lists:
            if _status(conn, person, list_name) != "pending":
                continue
            _set_status(conn, person, list_name, "subscribed", moment)
            _record(conn, person, list_name, "confirm", moment, source="confirmation link", ip=ip)
            confirmed.append(list_name)
        if confirmed:
            lift_suppression(conn, email, secret)
    return confirmed


def unsubscribe(
    conn: sqlite3.Connection,
    email: str,
    list_name: str | None,
    *,
    source: str,
    now: dt.datetime,
    actor: str | None = None,
    ip: str | None = None,
) -> list[str]:
    """Take a person off one list (or all with ``None``) at once; returns the lists left."""
    moment = utc_stamp(now)
    with transaction(conn):
        person = _person_id(conn, normalise_email(email))
        if person is None:
            return []
        rows = conn.execute(
            "SELECT list_name FROM memberships WHERE recipient_id = ? AND status IN ('pending', 'subscribed')"
            + (" AND list_name = ?" if list_name else "")
            + " ORDER BY list_name",
            (person, list_name) if list_name else (person,),
        ).fetchall()
        left = [row["list_name"] for row in rows]
        for name in left:
            _set_status(conn, person, name, "unsubscribed", moment)
            _record(conn, person, name, "unsubscribe", moment, source=source, actor=actor, ip=ip)
    return left


def erase(conn: sqlite3.Connection, email: str, secret: bytes, *, now: dt.datetime) -> bool:
    """Erase everything about a person (GDPR Art. 17) and suppress the address; True if anything
    was stored. An unknown address is suppressed too: the request is to never be mailed."""
    address = normalise_email(email)
    conn.execute("PRAGMA secure_delete = ON")  # overwrite the freed pages, not just unlink them
    with transaction(conn):
        suppress(conn, address, "erased on request", secret, now=now)
        deleted = conn.execute("DELETE FROM recipients WHERE email = ?", (address,)).rowcount
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # and drop the old pages from the journal
    return deleted > 0


def purge_unconfirmed(conn: sqlite3.Connection, now: dt.datetime) -> int:
    """Delete sign-ups not confirmed within :data:`PENDING_DAYS` days; returns how many were deleted.

    People left with no list at all are deleted with their records: they never gave consent.
    """
    cutoff = utc_stamp(now - dt.timedelta(days=PENDING_DAYS))
    with transaction(conn):
        purged = conn.execute(
            "DELETE FROM memberships WHERE status = 'pending' AND changed < ?", (cutoff,)
        ).rowcount
        conn.execute("DELETE FROM recipients WHERE id NOT IN (SELECT recipient_id FROM memberships)")
    return purged


# --- reading the store --------------------------------------------------------------------------


@dataclass(frozen=True)
class Membership:
    list_name: str
    status: Status
    changed: str


@dataclass(frozen=True)
class ConsentEvent:
    at: str
    list_name: str
    action: str
    source: str
    actor: str | None
    ip: str | None
    consent_version: str | None
    consent_text: str | None


@dataclass(frozen=True)
class StoredPerson:
    """Everything stored about one person (the answer to a GDPR access request)."""

    recipient: Recipient
    created: str
    updated: str
    memberships: tuple[Membership, ...]
    events: tuple[ConsentEvent, ...]


def find(conn: sqlite3.Connection, email: str) -> StoredPerson | None:
    """One person with memberships and consent records, or None if the address is not stored."""
    row = conn.execute("SELECT * FROM recipients WHERE email = ?", (normalise_email(email),)).fetchone()
    if row is None:
        return None
    memberships = conn.execute(
        "SELECT list_name, status, changed FROM memberships WHERE recipient_id = ? ORDER BY list_name", (row["id"],)
    ).fetchall()
    events = conn.execute(
        "SELECT e.at, e.list_name, e.action, e.source, e.actor, e.ip, e.consent_version, t.text AS consent_text "
        "FROM consent_events e LEFT JOIN consent_texts t ON t.version = e.consent_version "
        "WHERE e.recipient_id = ? ORDER BY e.id",
        (row["id"],),
    ).fetchall()
    return StoredPerson(
        recipient=_recipient(row),
        created=row["created"],
        updated=row["updated"],
        memberships=tuple(Membership(m["list_name"], m["status"], m["changed"]) for m in memberships),
        events=tuple(ConsentEvent(**dict(e)) for e in events),
    )


def people(conn: sqlite3.Connection, list_name: str | None = None) -> list[StoredPerson]:
    """Everyone stored (or everyone with any status on one list), by address."""
    if list_name:
        rows = conn.execute(
            "SELECT r.email FROM recipients r JOIN memberships m ON m.recipient_id = r.id "
            "WHERE m.list_name = ? ORDER BY r.email",
            (list_name,),
        ).fetchall()
    else:
        rows = conn.execute("SELECT email FROM recipients ORDER BY email").fetchall()
    found = (find(conn, row["email"]) for row in rows)
    return [p for p in found if p is not None]


# --- CSV import ---------------------------------------------------------------------------------

_HEADER_ALIASES: dict[str, str] = {
    "email": "email", "emailadresse": "email", "emailaddress": "email", "mail": "email",
    "salutation": "salutation", "anrede": "salutation",
    "title": "title", "titel": "title",
    "firstname": "first_name", "vorname": "first_name", "givenname": "first_name",
    "lastname": "last_name", "nachname": "last_name", "surname": "last_name", "familyname": "last_name",
    "organisation": "organisation", "organization": "organisation", "institution": "organisation",
    "language": "language", "sprache": "language",
}  # fmt: skip
KNOWN_COLUMNS = (
    "email/E-Mail, salutation/Anrede, title/Titel, first_name/Vorname, last_name/Nachname, "
    "organisation/Organisation, language/Sprache"
)


def _column(header: str) -> str | None:
    return _HEADER_ALIASES.get(re.sub(r"[\s_\-.]", "", header.strip().lstrip("\ufeff").casefold()))


def decode_csv(data: bytes, name: str) -> str:
    """Text of a CSV as Excel saves it: UTF-8 with or without BOM, UTF-16 ("Unicode text"), or cp1252."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise ImportRefused(
                f"{name}: starts as UTF-16 ('Unicode text') but is not valid UTF-16 (at byte offset {exc.start}); "
                "save it again from Excel"
            ) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise ImportRefused(
            f"{name}: neither UTF-8 nor Windows-1252 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            "save it from Excel as 'CSV UTF-8'"
        ) from None


@dataclass(frozen=True)
class RowProblem:
    row: int
    message: str


@dataclass
class ImportReport:
    """What an import did, row by row where it matters."""

    source: str
    list_name: str
    added: int = 0
    updated: int = 0
    merged: list[RowProblem] = field(default_factory=list)
    kept_out: list[RowProblem] = field(default_factory=list)
    invalid: list[RowProblem] = field(default_factory=list)


def _header(text: str, name: str) -> tuple[str, list[str]]:
    """The delimiter and the columns: the delimiter is the one that makes the header name an email column."""
    first_line = text.splitlines()[0] if text.strip() else ""
    if not first_line.strip():
        raise ImportRefused(f"{name}: the file is empty" if not text.strip() else f"{name}: the first line is empty")
    best: tuple[int, str, list[str]] | None = None
    for delimiter in (";", ",", "\t"):
        cells = next(csv.reader([first_line], delimiter=delimiter))
        columns = [_column(c) for c in cells]
        if "email" in columns:
            known = sum(c is not None for c in columns)
            if best is None or known > best[0]:
                best = (known, delimiter, cells)
    if best is None:
        raise ImportRefused(
            f"{name}: no email column in the first line {first_line[:80]!r}. The columns must be separated by "
            f"';' or ',' and named in the first line; known columns: {KNOWN_COLUMNS}"
        )
    _, delimiter, cells = best
    columns = [_column(c) for c in cells]
    unknown = [c for c, col in zip(cells, columns, strict=True) if col is None and c.strip()]
    if unknown:
        raise ImportRefused(
            f"{name}: unknown column(s) {', '.join(repr(c) for c in unknown)}; known columns: {KNOWN_COLUMNS}"
        )
    doubled = sorted({c for c in columns if c and columns.count(c) > 1})
    if doubled:
        raise ImportRefused(f"{name}: column(s) {', '.join(doubled)} appear more than once")
    return delimiter, [c or "" for c in columns]


def parse_csv(data: bytes, name: str) -> tuple[list[tuple[int, Recipient]], list[RowProblem]]:
    """The valid rows (with their row numbers, header = row 1) and a problem for every bad row."""
    text = decode_csv(data, name)
    delimiter, columns = _header(text, name)
    good: list[tuple[int, Recipient]] = []
    bad: list[RowProblem] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        next(reader)
        for number, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(columns) and not any(c.strip() for c in cells[len(columns) :]):
                cells = cells[: len(columns)]
            if len(cells) != len(columns):
                bad.append(RowProblem(number, (
                    f"{len(cells)} field(s), but the header has {len(columns)} "
                    f"(the file is separated by {delimiter!r}; is a value with {delimiter!r} missing its quotes?)"
                )))
                continue
            person, problems = clean_person(dict(zip(columns, cells, strict=True)))
            if person is None:
                bad.extend(RowProblem(number, p.message) for p in problems)
            else:
                good.append((number, person))
    except csv.Error as exc:
        bad.append(RowProblem(reader.line_num, f"unreadable CSV ({exc}); nothing after this line was read"))
    if not good and not bad:
        raise ImportRefused(f"{name}: no rows below the header")
    return good, bad


def _merge(first: Recipient, later: Recipient) -> Recipient:
    """The first row's values, gaps filled from a later row of the same address."""
    updates = {
        f.name: getattr(later, f.name)
        for f in fields(Recipient)
        if getattr(first, f.name) in (None, "") and getattr(later, f.name) not in (None, "")
    }
    return replace(first, **updates)


def import_csv(
    conn: sqlite3.Connection,
    path: Path,
    list_name: str,
    *,
    secret: bytes,
    by: str,
    now: dt.datetime,
    skip_invalid: bool = False,
) -> ImportReport:
    """Import an Excel CSV onto a list as subscribed, with the file, date and person as consent record.

    All or nothing: any invalid row refuses the whole file (every bad row listed) unless
    ``skip_invalid``. Addresses that unsubscribed or bounced keep that status; erased addresses are
    kept out (they can sign up again themselves). Duplicates in the file are merged.
    """
    check_list_name(list_name)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportRefused(f"{path}: cannot read the file: {exc.strerror}") from None
    rows, bad = parse_csv(data, str(path))
    report = ImportReport(source=path.name, list_name=list_name, invalid=bad)
    if bad and not skip_invalid:
        lines = "\n".join(f"{path}: row {p.row}: {p.message}" for p in bad)
        raise ImportRefused(
            f"{path}: {len({p.row for p in bad})} invalid row(s); nothing was imported "
            f"(correct them, or use --skip-invalid to import the valid rows):\n{lines}"
        )
    unique: dict[str, tuple[int, Recipient]] = {}
    for number, person in rows:
        if person.email in unique:
            first_number, first = unique[person.email]
            unique[person.email] = (first_number, _merge(first, person))
            report.merged.append(RowProblem(number, f"{person.email} is also in row {first_number}; merged"))
        else:
            unique[person.email] = (number, person)
    moment = utc_stamp(now)
    with transaction(conn):
        for number, person in unique.values():
            if is_suppressed(conn, person.email, secret):
                report.kept_out.append(RowProblem(number, (
                    f"{person.email} was erased or bounced and is on the suppression list; "
                    "not imported (the person can sign up again on the subscription page)"
                )))
                continue
            known = _person_id(conn, person.email)
            person_id = _upsert_person(conn, person, moment, overwrite=True)
            status = _status(conn, person_id, list_name)
            if status in ("unsubscribed", "bounced"):
                report.kept_out.append(RowProblem(number, f"{person.email} is {status} from {list_name}; left so"))
                continue
            if known is None:
                report.added += 1
            else:
                report.updated += 1
            if status != "subscribed":
                _set_status(conn, person_id, list_name, "subscribed", moment)
            _record(conn, person_id, list_name, "import", moment, source=f"file {path.name}", actor=by)
    return report


# --- CSV export ---------------------------------------------------------------------------------


def neutralise(value: str | None) -> str:
    """A cell Excel shows as text: a leading ``= + - @`` (or tab/CR) gets a ``'`` in front."""
    text = value or ""
    return "'" + text if text.startswith(FORMULA_START) else text


def _write_rows(out: io.StringIO, header: Sequence[str], rows: Iterable[Sequence[str | None]]) -> None:
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([neutralise(v) for v in row] for row in rows)


def _person_cells(person: Recipient) -> list[str | None]:
    return [getattr(person, name) for name in PERSON_FIELDS]


def export_list(conn: sqlite3.Connection, list_name: str) -> str:
    """The people on a list with their status, as CSV that ``recipients import`` reads back."""
    out = io.StringIO()
    rows = []
    for person in people(conn, check_list_name(list_name)):
        membership = next(m for m in person.memberships if m.list_name == list_name)
        rows.append([*_person_cells(person.recipient), membership.status, membership.changed])
    _write_rows(out, [*PERSON_FIELDS, "status", "since"], rows)
    return out.getvalue()


def export_person(conn: sqlite3.Connection, email: str) -> str:
    """Everything stored about one person, consent records included, as CSV in three blocks."""
    person = find(conn, email)
    if person is None:
        raise RecipientError(f"{email}: not in the recipient list")
    out = io.StringIO()
    _write_rows(out, [*PERSON_FIELDS, "created", "updated"], [[*_person_cells(person.recipient), person.created,
                                                                 person.updated]])
    out.write("\r\n")
    _write_rows(out, ["list", "status", "since"], [[m.list_name, m.status, m.changed] for m in person.memberships])
    out.write("\r\n")
    _write_rows(
        out,
        ["at", "list", "action", "source", "by", "ip", "consent_version", "consent_text"],
        [[e.at, e.list_name, e.action, e.source, e.actor, e.ip, e.consent_version, e.consent_text]
         for e in person.events],
    )
    return out.getvalue()

