"""Who is coming to an event (``registrations``): everyone invited and their calendar answer, those who
registered by the public server's form (with the seats and the waiting list), and a CSV for the desk.

Invited means an invitation or update of the event went out to the address (the send ledger); the
answer is the one that counts in ``event_answers`` (see :mod:`reallabor_mail.mailbox.itip`). Names come
from the recipient list; an address that was erased since has none. The CSV opens in Excel as it is:
UTF-8 with BOM, ``;`` between cells, CRLF, cells that would start a formula neutralised.

Form registrations (``event_registrations``, migration 7) go ``pending`` (the form was sent) →
``registered`` or ``waiting`` (the double opt-in button was pressed: a seat if one is free, else the
end of the waiting list) → ``cancelled``. Each change is one write transaction (``BEGIN IMMEDIATE``), so
two confirmations at once never both take the last seat. One rule hands out freed seats
(:func:`fill_free_seats`): while a seat is free and someone waits, the first waiting moves up, whether the
seat was freed by a cancellation (same transaction), an erasure or a raised capacity; a newcomer never
overtakes the waiting. The waiting list's order is ``turn``, the order of confirmation.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from reallabor_mail.addresses import address_key
from reallabor_mail.content.loader import EventItem
from reallabor_mail.db import Connection, Row, transaction, utc_stamp
from reallabor_mail.i18n.messages import _
from reallabor_mail.mailbox.itip import AnswerRow, answers, current_sequence, invited_sql
from reallabor_mail.recipients.person import Recipient
from reallabor_mail.recipients.spreadsheet import local_time, neutralise
from reallabor_mail.recipients.store import FormState, form_state_label

State = Literal["accepted", "tentative", "declined", "no_answer"]
STATES: tuple[State, ...] = ("accepted", "tentative", "declined", "no_answer")
FORM_STATES: tuple[FormState, ...] = ("registered", "waiting", "cancelled", "pending")
_COLUMNS = "email, salutation, title, first_name, last_name, organisation, language, state, turn, confirmed_at"


@dataclass(frozen=True)
class FormRegistration:
    """One person's registration by form for one event; ``position`` on the waiting list (1 = next)."""

    person: Recipient
    state: FormState
    confirmed_at: str | None
    position: int | None = None

    @property
    def email(self) -> str:
        return self.person.email

    @property
    def name(self) -> str:
        person = self.person
        return " ".join(p for p in (person.title, person.first_name, person.last_name) if p)


def _registration(row: Row, position: int | None = None) -> FormRegistration:
    person = Recipient(row["email"], row["salutation"], row["title"], row["first_name"], row["last_name"],
                       row["organisation"], row["language"])  # fmt: skip
    return FormRegistration(person, row["state"], row["confirmed_at"], position)


def form_registrations(conn: Connection, stem: str) -> list[FormRegistration]:
    """Everyone who used the form of event ``stem``: registered, then waiting in order, cancelled, pending."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM event_registrations WHERE event = ? ORDER BY turn, requested_at, email", (stem,)
    ).fetchall()
    found: list[FormRegistration] = []
    waiting = 0
    for row in rows:
        waiting += row["state"] == "waiting"
        found.append(_registration(row, waiting if row["state"] == "waiting" else None))
    found.sort(key=lambda r: FORM_STATES.index(r.state))  # stable: the waiting stay in their order
    return found


def form_audience(conn: Connection, stem: str, *, waiting: bool = False) -> list[Recipient]:
    """Who registered by form for event ``stem`` and holds a seat (with ``waiting``: or a place on the list)."""
    wanted = ("registered", "waiting") if waiting else ("registered",)
    return [r.person for r in form_registrations(conn, stem) if r.state in wanted]


def cancelled_by_form(conn: Connection, stem: str) -> frozenset[str]:
    """The addresses that cancelled their registration by form for event ``stem``."""
    rows = conn.execute("SELECT email FROM event_registrations WHERE event = ? AND state = 'cancelled'", (stem,))
    return frozenset(row[0] for row in rows)


def form_registration(conn: Connection, stem: str, email: str) -> FormRegistration | None:
    """One person's registration for event ``stem`` (with the waiting position), or None."""
    key = address_key(email)
    return next((r for r in form_registrations(conn, stem) if r.email == key), None)


def request_registration(conn: Connection, stem: str, person: Recipient, *, now: dt.datetime) -> None:
    """The form was sent: a new (or cancelled) registration waits for its confirmation with these details.

    A registered or waiting person keeps their seat or place, and their details: whoever typed the
    address may not be its owner. A pending one takes the newest details; the confirm link of an earlier
    mail then confirms nothing (it carries a digest of the details it was sent for, web/registration.py).
    """
    moment = utc_stamp(now)
    conn.execute(
        "INSERT INTO event_registrations (event, email, salutation, title, first_name, last_name, organisation,"
        " language, state, requested_at, changed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)"
        " ON CONFLICT (event, email) DO UPDATE SET salutation = excluded.salutation, title = excluded.title,"
        " first_name = excluded.first_name, last_name = excluded.last_name, organisation = excluded.organisation,"
        " language = excluded.language, state = 'pending', requested_at = excluded.requested_at, turn = NULL,"
        " confirmed_at = NULL, changed = excluded.changed"
        " WHERE event_registrations.state IN ('pending', 'cancelled')",
        (stem, address_key(person.email), person.salutation, person.title, person.first_name, person.last_name,
         person.organisation, person.language, moment, moment),
    )  # fmt: skip


def seat_counts(conn: Connection, stem: str) -> Counter[FormState]:
    """How many registrations of event ``stem`` are in each state."""
    rows = conn.execute("SELECT state, count(*) FROM event_registrations WHERE event = ? GROUP BY state", (stem,))
    return Counter({row[0]: int(row[1]) for row in rows})


def _seats_taken(conn: Connection, stem: str) -> int:
    return seat_counts(conn, stem)["registered"]


def _state_row(conn: Connection, stem: str, email: str) -> Row | None:
    row: Row | None = conn.execute(
        "SELECT state FROM event_registrations WHERE event = ? AND email = ?", (stem, email)
    ).fetchone()
    return row


def _set_state(conn: Connection, stem: str, email: str, state: FormState, moment: str) -> None:
    conn.execute("UPDATE event_registrations SET state = ?, changed = ? WHERE event = ? AND email = ?",
                 (state, moment, stem, email))  # fmt: skip


def confirm_registration(
    conn: Connection, event: EventItem, email: str, *, now: dt.datetime
) -> FormRegistration | None:
    """The confirmation button: a pending registration takes a free seat, else the end of the waiting list.

    A seat is free for a newcomer only when nobody waits (the caller runs :func:`fill_free_seats` first, in
    its transaction, so the waiting get the seats an erasure or a raised capacity freed). None if nothing
    waited for confirmation (confirmed already, cancelled, erased). One write transaction: the count of
    seats and the taking of one cannot be split by another confirmation.
    """
    key = address_key(email)
    stem = event.stem
    capacity = event.meta.registration.capacity if event.meta.registration else None
    moment = utc_stamp(now)
    with transaction(conn):
        row = _state_row(conn, stem, key)
        if row is None or row["state"] != "pending":
            return None
        turn = conn.execute("SELECT coalesce(max(turn), 0) + 1 FROM event_registrations WHERE event = ?",
                            (stem,)).fetchone()[0]  # fmt: skip
        counts = seat_counts(conn, stem)
        free = capacity is None or counts["registered"] < capacity
        state: FormState = "registered" if free and not counts["waiting"] else "waiting"
        conn.execute(
            "UPDATE event_registrations SET state = ?, turn = ?, confirmed_at = ?, changed = ? "
            "WHERE event = ? AND email = ?",
            (state, turn, moment, moment, stem, key),
        )
        return form_registration(conn, stem, key)


def fill_free_seats(conn: Connection, event: EventItem, *, now: dt.datetime) -> list[FormRegistration]:
    """The one rule for seats: while a seat is free and someone waits, the first waiting moves up.

    Returns those moved up (to be told by mail). Seats come free by a cancellation, an erasure
    (``recipients delete``) or a raised ``capacity``; the server runs this on each confirmation and
    cancellation, at start and at each poll of its outbox.
    """
    stem = event.stem
    capacity = event.meta.registration.capacity if event.meta.registration else None
    moment = utc_stamp(now)
    moved: list[str] = []
    with transaction(conn):
        waiting = conn.execute(
            "SELECT email FROM event_registrations WHERE event = ? AND state = 'waiting' ORDER BY turn", (stem,)
        ).fetchall()
        free = len(waiting) if capacity is None else max(capacity - _seats_taken(conn, stem), 0)
        for row in waiting[:free]:
            _set_state(conn, stem, row["email"], "registered", moment)
            moved.append(row["email"])
        found = {r.email: r for r in form_registrations(conn, stem)} if moved else {}
    return [found[email] for email in moved]


def cancel_registration(
    conn: Connection, event: EventItem, email: str, *, now: dt.datetime
) -> tuple[bool, list[FormRegistration]]:
    """The cancel button: (whether a seat or place was given up, those moved up to the freed seat)."""
    with transaction(conn):
        if not withdraw(conn, event.stem, email, now=now):
            return False, []
        return True, fill_free_seats(conn, event, now=now)


def withdraw(conn: Connection, stem: str, email: str, *, now: dt.datetime) -> bool:
    """A seat or waiting place is given up (cancel button, calendar Decline); whether there was one.

    The freed seat goes to the waiting by :func:`fill_free_seats` (the cancel button: at once; a Decline
    read by ``inbox``: at the server's next poll, which mails the one who moves up).
    """
    key = address_key(email)
    with transaction(conn):
        row = _state_row(conn, stem, key)
        if row is None or row["state"] not in ("registered", "waiting"):
            return False
        _set_state(conn, stem, key, "cancelled", utc_stamp(now))
        return True


@dataclass(frozen=True)
class Invitee:
    email: str
    salutation: str | None
    title: str | None
    first_name: str | None
    last_name: str | None
    organisation: str | None
    answer: AnswerRow | None

    @property
    def state(self) -> State:
        return self.answer.answer if self.answer is not None else "no_answer"

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.title, self.first_name, self.last_name) if p)


@dataclass(frozen=True)
class Attendance:
    """Everyone invited to one event with their answer, by state and address."""

    event: EventItem
    sequence: int | None  # the latest version sent
    people: tuple[Invitee, ...]
    registrations: tuple[FormRegistration, ...] = ()

    @property
    def counts(self) -> Counter[State]:
        return Counter(p.state for p in self.people)

    @property
    def form_counts(self) -> Counter[FormState]:
        return Counter(r.state for r in self.registrations)


def attendance(conn: Connection, event: EventItem) -> Attendance:
    """The invited people of ``event`` and their current answers."""
    given = answers(conn, event.stem)
    query, params = invited_sql(event.stem)
    rows = conn.execute(
        f"SELECT i.email, r.salutation, r.title, r.first_name, r.last_name, r.organisation FROM ({query}) i "
        "LEFT JOIN recipients r ON r.email = i.email",
        params,
    ).fetchall()
    people = [
        Invitee(row[0], row[1], row[2], row[3], row[4], row[5], given.get(row[0])) for row in rows
    ]
    people.sort(key=lambda p: (STATES.index(p.state), p.email))
    registrations = tuple(form_registrations(conn, event.stem))
    return Attendance(event, current_sequence(conn, event.stem), tuple(people), registrations)


def state_label(state: State) -> str:
    """A state as staff read it (German: zugesagt, vorläufig, abgesagt, keine Antwort)."""
    return {
        "accepted": _("accepted"),
        "tentative": _("tentative"),
        "declined": _("declined"),
        "no_answer": _("no answer"),
    }[state]


def attendance_csv(found: Attendance) -> bytes:
    """The list for the sign-in desk as Excel reads it: UTF-8 with BOM, ``;``, CRLF."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow([
        _("Answer"), _("Salutation"), _("Title"), _("First name"), _("Last name"), _("Organisation"), _("Email"),
        _("Answered on"), _("Signature"),
    ])  # fmt: skip
    for person in found.people:
        answer = person.answer
        label = state_label(person.state)
        if answer is not None and answer.outdated:
            # Translators: the answer was given to the invitation before the event last changed (time or place).
            label = _("{answer} (before the last change)", answer=label)
        writer.writerow([neutralise(v) for v in (
            label, person.salutation, person.title, person.first_name, person.last_name,
            person.organisation, person.email, local_time(answer.answered_at if answer else None), "",
        )])  # fmt: skip
    for registration in found.registrations:  # who is coming by form: the seats, then the waiting list in order
        if registration.state not in ("registered", "waiting"):
            continue
        label = form_state_label(registration.state)
        if registration.position is not None:
            label = _("{state} ({position})", state=label, position=registration.position)
        who = registration.person
        writer.writerow([neutralise(v) for v in (
            label, who.salutation, who.title, who.first_name, who.last_name, who.organisation, who.email,
            local_time(registration.confirmed_at), "",
        )])  # fmt: skip
    return codecs.BOM_UTF8 + out.getvalue().encode("utf-8")
