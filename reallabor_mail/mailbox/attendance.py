"""Who is coming to an event (``registrations``): everyone invited and their calendar answer, and a CSV for the desk.

Invited means an invitation or update of the event went out to the address (the send ledger); the
answer is the one that counts in ``event_answers`` (see :mod:`reallabor_mail.mailbox.itip`). Names come
from the recipient list; an address that was erased since has none. The CSV opens in Excel as it is:
UTF-8 with BOM, ``;`` between cells, CRLF, cells that would start a formula neutralised.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from reallabor_mail.content.loader import EventItem
from reallabor_mail.db import Connection
from reallabor_mail.i18n.messages import _
from reallabor_mail.mailbox.itip import AnswerRow, answers, current_sequence, invited_sql
from reallabor_mail.recipients.spreadsheet import neutralise

State = Literal["accepted", "tentative", "declined", "no_answer"]
STATES: tuple[State, ...] = ("accepted", "tentative", "declined", "no_answer")


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

    @property
    def counts(self) -> Counter[State]:
        return Counter(p.state for p in self.people)


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
    return Attendance(event, current_sequence(conn, event.stem), tuple(people))


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
        _("Answered on"), _("For version"), _("Signature"),
    ])  # fmt: skip
    for person in found.people:
        answer = person.answer
        version = ""
        if answer is not None:
            version = str(answer.sequence)
            if answer.outdated:
                version = _("{answered} (now {current})", answered=answer.sequence, current=answer.current_sequence)
        writer.writerow([neutralise(v) for v in (
            state_label(person.state), person.salutation, person.title, person.first_name, person.last_name,
            person.organisation, person.email, answer.answered_at if answer else "", version, "",
        )])  # fmt: skip
    return codecs.BOM_UTF8 + out.getvalue().encode("utf-8")
