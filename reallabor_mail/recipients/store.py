"""The mailing list: people, their list memberships, consent records and the suppression list.

Tables (created by the migrations of :mod:`reallabor_mail.db`):

- ``recipients``: one row per person, the address normalised (lower case, Unicode domain) and unique;
- ``memberships``: per person and list a status: pending, subscribed, unsubscribed or bounced;
- ``consent_events``: every step of consent (import, sign-up, confirmation, unsubscribe, bounce) with
  time, source, who, IP and the version of the consent text, the proof UWG §7 / GDPR Art. 7 ask for;
- ``consent_texts``: the exact wording a sign-up agreed to, keyed by its version (a hash of it);
- ``suppressions``: keyed hashes (HMAC with ``REALLABOR_SECRET``) of erased or hard-bounced addresses.
  Nothing else of an erased person is kept here (the send ledger keeps the same hash for campaign
  counts, see :func:`reallabor_mail.delivery.ledger.forget`); the hash keeps them out of later
  imports and sends.

Writes that belong together run in one transaction (:func:`transaction`). Times are passed in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Literal, get_args

from pydantic import TypeAdapter, ValidationError

from reallabor_mail.addresses import address_key
from reallabor_mail.content.models import Language, ListName
from reallabor_mail.db import Connection, Row, transaction, utc_stamp
from reallabor_mail.errors import ReallaborError
from reallabor_mail.i18n.messages import _
from reallabor_mail.recipients.links import CONFIRM_DAYS
from reallabor_mail.recipients.person import Recipient

Status = Literal["pending", "subscribed", "unsubscribed", "bounced"]
STATUSES: tuple[Status, ...] = get_args(Status)
PENDING_DAYS = 30  # unconfirmed sign-ups are deleted after this many days
_LIST_NAME = TypeAdapter(ListName)  # the rule content front matter follows: one rule for both


class RecipientError(ReallaborError):
    """A recipient operation cannot be done (unknown address, bad list name, wrong secret, …)."""


class Suppression(StrEnum):
    """Why an address is on the suppression list; the caller says so (the wording of a reply never decides)."""

    BOUNCED = "bounced"  # a permanent delivery failure: its memberships become ``bounced``
    ERASED = "erased"  # erased on request (GDPR Art. 17): nothing but the keyed hash stays


def check_list_name(name: str) -> str:
    """A list name as content front matter writes it: lower case letters, digits, ``-``, ``_``."""
    try:
        return _LIST_NAME.validate_python(name)
    except ValidationError:
        raise RecipientError(
            _("{name!r}: not a list name; use lower case letters, digits, - and _ (e.g. newsletter)", name=name)
        ) from None


def read_status(value: str) -> Status | None:
    """The membership status a word names (as the export writes it), None if it names none."""
    return next((status for status in STATUSES if status == value), None)


# --- the suppression hash ---------------------------------------------------------------------


def address_hash(email: str, secret: bytes) -> str:
    """The keyed hash that stands in for an erased address; without the secret it cannot be tested."""
    return hmac.new(secret, b"suppression\x00" + address_key(email).encode("utf-8"), hashlib.sha256).hexdigest()


def _check_secret(conn: Connection, secret: bytes) -> None:
    """Refuse a secret other than the one the suppression list was made with: a changed
    ``REALLABOR_SECRET`` would otherwise silently let erased addresses back in."""
    fingerprint = hmac.new(secret, b"key-id", hashlib.sha256).hexdigest()[:16]
    row = conn.execute("SELECT value FROM recipients_meta WHERE key = 'secret_id'").fetchone()
    if row is None:
        conn.execute(
            "INSERT INTO recipients_meta (key, value) VALUES ('secret_id', ?) ON CONFLICT DO NOTHING", (fingerprint,)
        )
    elif row["value"] != fingerprint:
        raise RecipientError(_(
            "REALLABOR_SECRET is not the secret this state file's suppression list was made with; set the original "
            "secret again (a new one would let erased addresses back in)"
        ))  # fmt: skip


def is_suppressed(conn: Connection, email: str, secret: bytes) -> bool:
    """Whether an address was erased or hard-bounced; a send must skip it."""
    _check_secret(conn, secret)
    row = conn.execute("SELECT 1 FROM suppressions WHERE address_hash = ?", (address_hash(email, secret),))
    return row.fetchone() is not None


def suppressed_among(conn: Connection, emails: Sequence[str], secret: bytes) -> set[str]:
    """Those of ``emails`` that were erased or hard-bounced (one query for a send's whole batch)."""
    _check_secret(conn, secret)
    hashes = {address_hash(email, secret): email for email in emails}
    if not hashes:
        return set()
    rows = conn.execute(
        f"SELECT address_hash FROM suppressions WHERE address_hash IN ({', '.join('?' * len(hashes))})", tuple(hashes)
    )
    return {hashes[row[0]] for row in rows}


def suppress(
    conn: Connection, email: str, reason: Suppression, secret: bytes, *, detail: str = "",
    now: dt.datetime | None = None,
) -> None:  # fmt: skip
    """Put an address on the suppression list and take it off every list it is on.

    ``reason`` is the caller's: delivery's permanent failures are :attr:`Suppression.BOUNCED`, an erasure is
    :attr:`Suppression.ERASED`; ``detail`` (e.g. the server's reply) is kept as the suppression's reason
    text. A stored person keeps their data (erasure is :func:`erase`); their memberships become
    ``bounced`` (``unsubscribed`` for an erasure) so that :func:`subscribers` never yields them.
    """
    moment = utc_stamp(now or dt.datetime.now(dt.UTC))
    status: Status = "bounced" if reason is Suppression.BOUNCED else "unsubscribed"
    text = detail or str(reason)
    with transaction(conn):
        _check_secret(conn, secret)
        conn.execute(
            "INSERT INTO suppressions (address_hash, reason, at) VALUES (?, ?, ?) "
            "ON CONFLICT (address_hash) DO UPDATE SET reason = excluded.reason, at = excluded.at",
            (address_hash(email, secret), text, moment),
        )
        person = _person_id(conn, address_key(email))
        if person is not None:
            _leave(conn, person, None, status, status, moment, source=f"suppressed: {text}")


def lift_suppression(conn: Connection, email: str, secret: bytes) -> None:
    """Remove an address from the suppression list (after a fresh, confirmed sign-up)."""
    _check_secret(conn, secret)
    conn.execute("DELETE FROM suppressions WHERE address_hash = ?", (address_hash(email, secret),))


# --- the store ----------------------------------------------------------------------------------


def _person_id(conn: Connection, key: str) -> int | None:
    """The row of a stored address; ``key`` is the stored form (:func:`address_key`), callers normalise once."""
    row = conn.execute("SELECT id FROM recipients WHERE email = ?", (key,)).fetchone()
    return int(row["id"]) if row else None


def _status(conn: Connection, person: int, list_name: str) -> Status | None:
    row = conn.execute(
        "SELECT status FROM memberships WHERE recipient_id = ? AND list_name = ?", (person, list_name)
    ).fetchone()
    return row["status"] if row else None


def _set_status(conn: Connection, person: int, list_name: str, status: Status, moment: str) -> None:
    conn.execute(
        "INSERT INTO memberships (recipient_id, list_name, status, changed) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (recipient_id, list_name) DO UPDATE SET status = excluded.status, changed = excluded.changed",
        (person, list_name, status, moment),
    )


def _record(
    conn: Connection,
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


def _leave(
    conn: Connection, person: int, list_name: str | None, status: Status, action: str, moment: str,
    *, source: str, actor: str | None = None, ip: str | None = None,
) -> list[str]:  # fmt: skip
    """Move a person's pending and subscribed memberships (of one list, or all) to ``status``, each with its
    consent record; returns the lists they left, by name."""
    rows = conn.execute(
        "SELECT list_name FROM memberships WHERE recipient_id = ? AND status IN ('pending', 'subscribed')"
        + (" AND list_name = ?" if list_name else "")
        + " ORDER BY list_name",
        (person, list_name) if list_name else (person,),
    ).fetchall()
    left = [row["list_name"] for row in rows]
    for name in left:
        _set_status(conn, person, name, status, moment)
        _record(conn, person, name, action, moment, source=source, actor=actor, ip=ip)
    return left


def _upsert_person(conn: Connection, person: Recipient, moment: str, *, overwrite: bool) -> int:
    """Insert a person, or (with ``overwrite``) update the stored fields that ``person`` has values for."""
    email = address_key(person.email)
    existing = _person_id(conn, email)
    data = {f.name: getattr(person, f.name) for f in fields(Recipient) if f.name != "email"}
    if existing is None:
        cursor = conn.execute(
            "INSERT INTO recipients (email, salutation, title, first_name, last_name, organisation, language,"
            " created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (email, *data.values(), moment, moment),
        )
        return int(cursor.fetchone()[0])
    if overwrite:
        updates = {k: v for k, v in data.items() if v is not None}
        assignments = ", ".join(f"{k} = ?" for k in updates)
        conn.execute(
            f"UPDATE recipients SET {assignments}, updated = ? WHERE id = ?", (*updates.values(), moment, existing)
        )
    return existing


def add_recipient(
    conn: Connection, recipient: Recipient, list_name: str, *, status: str, source: str, now: dt.datetime
) -> None:
    """Store a person with a status on a list, recording where that came from."""
    known = read_status(status)
    if known is None:
        raise RecipientError(_("{status!r}: not a status; use one of {statuses}", status=status,
                               statuses=", ".join(STATUSES)))  # fmt: skip
    moment = utc_stamp(now)
    with transaction(conn):
        person = _upsert_person(conn, recipient, moment, overwrite=True)
        _set_status(conn, person, check_list_name(list_name), known, moment)
        _record(conn, person, list_name, known, moment, source=source)


@dataclass(frozen=True)
class Change:
    """A field in which an import's value differs from the stored one."""

    field: str
    stored: str | None
    imported: str | None


@dataclass(frozen=True)
class Imported:
    """What importing one person onto a list did."""

    added: bool  # the person was not on this list before (possibly stored already, for another list)
    status: Status  # their status on the list now
    kept: bool  # they had unsubscribed or bounced from the list, and stay so
    changes: tuple[Change, ...]  # stored details the file has otherwise (taken only with ``update``)


def import_person(
    conn: Connection,
    person: Recipient,
    given: Collection[str],
    list_name: str,
    *,
    status: Status,
    update: bool,
    source: str,
    actor: str,
    now: dt.datetime,
) -> Imported:
    """Put one person from a file on a list, recording file and importer as the consent's source.

    Stored details are never overwritten silently: the fields in ``given`` (the file's non-empty cells)
    that differ are returned, and are written only with ``update``. People new to the list get
    ``status``; one already on it keeps an unsubscribed, bounced or subscribed status (a ``pending``
    one becomes subscribed when the file says subscribed).
    """
    moment = utc_stamp(now)
    with transaction(conn):
        person_id = _person_id(conn, address_key(person.email))
        changes: tuple[Change, ...] = ()
        if person_id is None:
            person_id = _upsert_person(conn, person, moment, overwrite=False)
        else:
            row = conn.execute("SELECT * FROM recipients WHERE id = ?", (person_id,)).fetchone()
            stored = _recipient(row)
            changes = tuple(
                Change(name, getattr(stored, name), getattr(person, name))
                for name in given
                if name != "email" and getattr(stored, name) != getattr(person, name)
            )
            if update and changes:
                assignments = ", ".join(f"{c.field} = ?" for c in changes)
                conn.execute(
                    f"UPDATE recipients SET {assignments}, updated = ? WHERE id = ?",
                    (*(c.imported for c in changes), moment, person_id),
                )
        current = _status(conn, person_id, check_list_name(list_name))
        added = current is None
        if current is not None and not (current == "pending" and status == "subscribed") and current != status:
            return Imported(added, current, True, changes)
        if current != status:
            _set_status(conn, person_id, list_name, status, moment)
        _record(conn, person_id, list_name, "import", moment, source=source, actor=actor)
    return Imported(added, status, False, changes)


def _recipient(row: Row) -> Recipient:
    return Recipient(
        email=row["email"],
        salutation=row["salutation"],
        title=row["title"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        organisation=row["organisation"],
        language=row["language"],
    )


def subscribers(conn: Connection, list_name: str) -> Iterator[Recipient]:
    """Everyone subscribed to a list, by address. Suppressed addresses are not subscribed (see
    :func:`suppress`); a send still asks :func:`is_suppressed` before each message. Streamed from the
    cursor (a list of 100,000 is not held in memory); the caller must not change these tables meanwhile."""
    rows = conn.execute(
        "SELECT r.* FROM recipients r JOIN memberships m ON m.recipient_id = r.id "
        "WHERE m.list_name = ? AND m.status = 'subscribed' ORDER BY r.email",
        (list_name,),
    )
    for row in rows:
        yield _recipient(row)


def is_subscribed(conn: Connection, email: str, lists: Sequence[str]) -> bool:
    """Whether the address is still subscribed to one of ``lists`` (a send asks before each message,
    so an unsubscribe during a running send is honoured)."""
    row = conn.execute(
        "SELECT 1 FROM memberships m JOIN recipients r ON r.id = m.recipient_id WHERE r.email = ? "
        f"AND m.status = 'subscribed' AND m.list_name IN ({', '.join('?' * len(lists))})",
        (email, *lists),
    )
    return row.fetchone() is not None


def subscribed_among(conn: Connection, emails: Sequence[str], lists: Sequence[str]) -> set[str]:
    """Those of ``emails`` (stored form) still subscribed to one of ``lists`` (one query per batch)."""
    if not emails or not lists:
        return set()
    rows = conn.execute(
        "SELECT DISTINCT r.email FROM memberships m JOIN recipients r ON r.id = m.recipient_id "
        f"WHERE r.email IN ({', '.join('?' * len(emails))}) AND m.status = 'subscribed' "
        f"AND m.list_name IN ({', '.join('?' * len(lists))})",
        (*emails, *lists),
    )
    return {row[0] for row in rows}


def consent_version(text: str, language: Language) -> str:
    """The version of a consent text: a short hash of its exact wording."""
    return f"{language}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]}"


LEFT: tuple[Status, ...] = ("unsubscribed", "bounced")


def _latest_event(conn: Connection, person: int, list_name: str) -> tuple[str, str] | None:
    """The action and time of a person's last consent record on a list."""
    row = conn.execute(
        "SELECT action, at FROM consent_events WHERE recipient_id = ? AND list_name = ? ORDER BY id DESC LIMIT 1",
        (person, list_name),
    ).fetchone()
    return (row["action"], row["at"]) if row else None


def sign_up(
    conn: Connection,
    person: Recipient,
    lists: Sequence[str],
    *,
    consent_text: str,
    consent_language: Language,
    ip: str | None,
    now: dt.datetime,
) -> str:
    """Record a sign-up from the form (double opt-in step 1); returns the stored address.

    Anyone can type any address into a form, so a sign-up changes no status but ``pending``'s clock:
    a new person is stored with the form's details and ``pending`` lists; a known person's details and
    their subscribed, unsubscribed or bounced memberships stay as they are (only the confirmation click,
    :func:`confirm`, changes those). Every state does the same work: one ``signup`` consent record per
    list, except that repeated attempts are recorded once a day (the form's attempts table counts them).
    ``consent_text`` is the wording the person saw (in the page's language); it is kept by version.
    """
    moment = utc_stamp(now)
    version = consent_version(consent_text, consent_language)
    email = address_key(person.email)
    day_ago = utc_stamp(now - dt.timedelta(days=1))
    with transaction(conn):
        conn.execute(
            "INSERT INTO consent_texts (version, language, text) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (version, consent_language, consent_text),
        )
        person_id = _upsert_person(conn, replace(person, email=email), moment, overwrite=False)
        for list_name in lists:
            status = _status(conn, person_id, check_list_name(list_name))
            if status in (None, "pending"):
                _set_status(conn, person_id, list_name, "pending", moment)
            latest = _latest_event(conn, person_id, list_name)
            if latest is None or latest[0] != "signup" or latest[1] < day_ago:
                _record(conn, person_id, list_name, "signup", moment, source="form", ip=ip, consent_version=version)
    return email


def awaiting_confirmation(
    conn: Connection, email: str, lists: Sequence[str], *, now: dt.datetime
) -> list[str]:
    """Those of ``lists`` a confirmation click would subscribe: pending ones, and unsubscribed or
    bounced ones whose last consent record is a sign-up of the last :data:`CONFIRM_DAYS` days."""
    person = _person_id(conn, address_key(email))
    if person is None:
        return []
    recent = utc_stamp(now - dt.timedelta(days=CONFIRM_DAYS))
    waiting: list[str] = []
    for list_name in lists:
        status = _status(conn, person, list_name)
        latest = _latest_event(conn, person, list_name)
        asked = latest is not None and latest[0] == "signup" and latest[1] >= recent
        if status == "pending" or (status in LEFT and asked):
            waiting.append(list_name)
    return waiting


def confirm(
    conn: Connection, email: str, lists: Sequence[str], *, ip: str | None, now: dt.datetime, secret: bytes
) -> list[str]:
    """Confirm a sign-up (double opt-in step 2); returns the lists now subscribed.

    Only lists :func:`awaiting_confirmation` names change: an old link cannot re-subscribe someone who
    left since, while someone who left and signed up again comes back with this click (the person's own
    POST with a valid link). A confirmed sign-up of an erased or bounced address is fresh consent and
    lifts its suppression.
    """
    moment = utc_stamp(now)
    with transaction(conn):
        confirmed = awaiting_confirmation(conn, email, lists, now=now)
        person = _person_id(conn, address_key(email))
        for list_name in confirmed:
            assert person is not None
            _set_status(conn, person, list_name, "subscribed", moment)
            _record(conn, person, list_name, "confirm", moment, source="confirmation link", ip=ip)
        if confirmed:
            lift_suppression(conn, email, secret)
    return confirmed


def unsubscribe(
    conn: Connection,
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
        person = _person_id(conn, address_key(email))
        if person is None:
            return []
        return _leave(conn, person, list_name, "unsubscribed", "unsubscribe", moment, source=source, actor=actor, ip=ip)


def erase(conn: Connection, email: str, secret: bytes, *, now: dt.datetime) -> bool:
    """Erase everything about a person (GDPR Art. 17) and suppress the address; True if anything
    was stored. An unknown address is suppressed too: the request is to never be mailed.

    Afterwards no copy is left in the file: deleted cells are zeroed (``secure_delete``), ``VACUUM``
    rebuilds the file without its free pages, and the journal (``-wal``) is checkpointed and truncated
    to zero bytes. Other tables that name the person (the send ledger) are cleared by their owner first.
    """
    address = address_key(email)
    if not conn.is_postgres:
        conn.execute("PRAGMA secure_delete = ON")  # zero the deleted cells, not just unlink them
    with transaction(conn):
        suppress(conn, address, Suppression.ERASED, secret, now=now)
        deleted = conn.execute("DELETE FROM recipients WHERE email = ?", (address,)).rowcount
    overwrite_freed(conn)
    return deleted > 0


def overwrite_freed(conn: Connection) -> None:
    """Leave no old copy of deleted rows in the state file or its journal (after an erasure).

    :class:`RecipientError` if another program keeps reading the file, so the journal cannot be emptied.
    """
    conn.execute("VACUUM")  # PostgreSQL: the server's free space and journal are the server's (contract §3)
    if conn.is_postgres:
        return
    busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    if busy:
        path = conn.location
        raise RecipientError(_(
            "{path}-wal: another program is reading the state file, so old copies of the erased data are still in "
            "its journal; stop it (e.g. serve) and run the same `recipients delete` again", path=path,
        ))  # fmt: skip


def purge_unconfirmed(conn: Connection, now: dt.datetime) -> int:
    """Delete sign-ups not confirmed within :data:`PENDING_DAYS` days; returns how many were deleted.

    Event registrations by form that were never confirmed go the same way (``event_registrations``,
    ``pending``): the address was only ever typed into a form, possibly by someone else.
    People left with no list at all are deleted with their records: they never gave consent. An
    unsubscribe or bounce is never forgotten: a pending membership that once left the list (from a
    state file of before sign-ups stopped changing such memberships) goes back to that status instead.
    """
    cutoff = utc_stamp(now - dt.timedelta(days=PENDING_DAYS))
    moment = utc_stamp(now)
    with transaction(conn):
        stale = conn.execute(
            "SELECT recipient_id, list_name FROM memberships WHERE status = 'pending' AND changed < ?", (cutoff,)
        ).fetchall()
        for person, list_name in stale:
            left = conn.execute(
                "SELECT action FROM consent_events WHERE recipient_id = ? AND list_name = ?"
                " AND action IN ('unsubscribe', 'unsubscribed', 'bounced') ORDER BY id DESC LIMIT 1",
                (person, list_name),
            ).fetchone()
            if left is None:
                conn.execute("DELETE FROM memberships WHERE recipient_id = ? AND list_name = ?", (person, list_name))
                continue
            status: Status = "bounced" if left["action"] == "bounced" else "unsubscribed"
            _set_status(conn, person, list_name, status, moment)
            _record(conn, person, list_name, status, moment, source="unconfirmed sign-up purged")
        conn.execute("DELETE FROM recipients WHERE id NOT IN (SELECT recipient_id FROM memberships)")
        registrations = conn.execute(
            "DELETE FROM event_registrations WHERE state = 'pending' AND requested_at < ?", (cutoff,)
        ).rowcount
    return len(stale) + max(registrations, 0)


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


def find(conn: Connection, email: str) -> StoredPerson | None:
    """One person with memberships and consent records, or None if the address is not stored."""
    row = conn.execute("SELECT * FROM recipients WHERE email = ?", (address_key(email),)).fetchone()
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


FormState = Literal["pending", "registered", "waiting", "cancelled"]


def form_state_label(state: FormState) -> str:
    """A form registration's state as staff read it (German: angemeldet, Warteliste, storniert, unbestätigt)."""
    return {
        "registered": _("registered"),
        "waiting": _("waiting list"),
        # Translators: a registration by form that its person cancelled (German: storniert), not a cancelled event.
        "cancelled": _("cancelled by the person"),
        "pending": _("not confirmed"),
    }[state]


@dataclass(frozen=True)
class StoredRegistration:
    """One registration by form as stored (``event_registrations``), for the person's Art. 15 export."""

    event: str
    state: FormState
    requested_at: str
    confirmed_at: str | None
    person: Recipient


def registrations_of(conn: Connection, email: str) -> list[StoredRegistration]:
    """Every event registration by form of one address, by event."""
    rows = conn.execute(
        "SELECT event, state, requested_at, confirmed_at, email, salutation, title, first_name, last_name,"
        " organisation, language FROM event_registrations WHERE email = ? ORDER BY event",
        (address_key(email),),
    ).fetchall()
    return [
        StoredRegistration(row["event"], row["state"], row["requested_at"], row["confirmed_at"], _recipient(row))
        for row in rows
    ]


def stored_person(conn: Connection, email: str) -> StoredPerson:
    """Like :func:`find`, for a command that needs the person: :class:`RecipientError` if not stored."""
    person = find(conn, email)
    if person is None:
        raise RecipientError(_("{email}: not in the recipient list", email=email))
    return person


def people(conn: Connection, list_name: str | None = None) -> list[StoredPerson]:
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


def list_names(conn: Connection) -> set[str]:
    """Every list anyone has a membership of (any status): the lists this state file knows."""
    return {row[0] for row in conn.execute("SELECT DISTINCT list_name FROM memberships")}
