"""Calendar answers (iTIP, RFC 5546, carried by mail as RFC 6047): reading them, recording them, asking them.

Our invitations are METHOD:REQUEST with one ATTENDEE and ``RSVP=TRUE``; a calendar that answers sends a
METHOD:REPLY with the same UID, the SEQUENCE it answers and that ATTENDEE with PARTSTAT ACCEPTED,
DECLINED or TENTATIVE. Outlook puts it in ``text/calendar; method=REPLY`` next to a text part, Gmail
in an alternative part plus an ``invite.ics`` attachment, Apple Calendar and Thunderbird as a
``text/calendar`` attachment; :func:`calendar_answers` reads any of them. A COUNTER (a proposed new time)
is shown to staff and never applied.

Table ``event_answers`` keeps every answer (a history); the answer that counts for a person is the one
for the highest SEQUENCE, then the newest DTSTAMP. An answer to an older SEQUENCE than the last one
sent is recorded with both numbers, so staff see "accepted version 0, the event moved since".

:func:`declined` is the hook the reminder and update code asks: the addresses whose current answer
to an event is a decline. The same set is kept in table ``event_declines``, which the reminders
(delivery/schedule.py ``declined``, on the same layer) read without importing this module.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.message import Message
from typing import Literal
from urllib.parse import unquote

import icalendar

from reallabor_mail.addresses import InvalidAddress, address_key
from reallabor_mail.content.loader import EventItem
from reallabor_mail.db import Connection, utc_stamp

Answer = Literal["accepted", "declined", "tentative"]
ANSWERS: dict[str, Answer] = {"ACCEPTED": "accepted", "DECLINED": "declined", "TENTATIVE": "tentative"}
CALENDAR_TYPES = ("text/calendar", "application/ics", "text/x-vcalendar")


@dataclass(frozen=True)
class CalendarAnswer:
    """One VEVENT of an iTIP message from an attendee."""

    method: str  # REPLY or COUNTER (anything else is left for staff)
    uid: str
    sequence: int
    attendee: str | None  # the ATTENDEE's address as written (mailto: removed)
    partstat: str | None  # ACCEPTED, DECLINED, TENTATIVE, DELEGATED, …
    sent_by: str | None
    dtstamp: dt.datetime | None
    start: dt.datetime | dt.date | None  # a COUNTER's proposed time
    end: dt.datetime | dt.date | None
    comment: str | None


def _calendar_parts(msg: Message) -> Iterator[bytes]:
    for part in msg.walk():
        if part.is_multipart():
            continue
        name = (part.get_filename() or "").lower()
        if part.get_content_type() in CALENDAR_TYPES or name.endswith(".ics"):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes) and payload.strip():
                yield payload.replace(b"\r\n", b"\n").replace(b"\r", b"\n")  # also a CR doubled on the way


def _address(value: object) -> str | None:
    text = str(value or "").strip()
    return text[7:] if text.lower().startswith("mailto:") else (text or None)


def _moment(component: icalendar.Component, name: str) -> dt.datetime | dt.date | None:
    prop = component.get(name)
    return prop.dt if prop is not None and hasattr(prop, "dt") else None


def calendar_answers(msg: Message) -> list[CalendarAnswer]:
    """The VEVENTs of the first calendar part with a METHOD (Gmail sends the same one twice); empty if none."""
    for payload in _calendar_parts(msg):
        try:
            calendar = icalendar.Calendar.from_ical(payload.decode("utf-8", errors="replace"))
        except (ValueError, IndexError, KeyError):
            continue
        method = str(calendar.get("method", "")).strip().upper()
        if not method:
            continue
        answers = []
        for event in calendar.walk("VEVENT"):
            attendee = event.get("attendee")
            if isinstance(attendee, list):  # a REPLY names one attendee; take the one that answered
                attendee = next((a for a in attendee if a.params.get("PARTSTAT")), attendee[0])
            params = attendee.params if attendee is not None else {}
            stamp = _moment(event, "dtstamp")
            try:
                sequence = int(event.get("sequence", 0))
            except (TypeError, ValueError):
                sequence = 0
            answer = CalendarAnswer(
                method=method, uid=str(event.get("uid", "")).strip(), sequence=sequence,
                attendee=_address(attendee), partstat=str(params.get("PARTSTAT", "")).upper() or None,
                sent_by=_address(params.get("SENT-BY")),
                dtstamp=stamp if isinstance(stamp, dt.datetime) and stamp.tzinfo else None,
                start=_moment(event, "dtstart"), end=_moment(event, "dtend"),
                comment=str(event["comment"]) if "comment" in event else None,
            )  # fmt: skip
            answers.append(answer)
        return answers
    return []


def event_of_uid(uid: str, domain: str) -> str | None:
    """The event (stem) a UID of ours names (``<stem>@<site domain>``, render/ics.py event_uid); None if not ours."""
    local, at, uid_domain = uid.rpartition("@")
    if not at or not local or uid_domain.lower() != domain.lower():
        return None
    return unquote(local)


def _campaign_prefix(stem: str) -> str:
    return f"event:{stem}:"  # delivery/campaign.py campaign_key: event:<stem>:<SEQUENCE>, test sends end in #test


def was_invited(conn: Connection, stem: str, email: str | None = None) -> bool:
    """Whether an invitation or update of the event went out to ``email`` (anyone: None); test sends do not count.

    A form registrant with a seat or a place on the waiting list got the invitation from the public server.
    """
    prefix = _campaign_prefix(stem)
    person = ("AND email = ? " if email is not None else "") + "LIMIT 1"
    by_address = (email,) if email is not None else ()
    row = conn.execute(
        "SELECT 1 FROM send_ledger WHERE substr(campaign, 1, ?) = ? AND campaign NOT LIKE '%#test' AND state = 'sent' "
        + person,
        (len(prefix), prefix, *by_address),
    ).fetchone()
    if row is None:
        row = conn.execute(
            "SELECT 1 FROM event_registrations WHERE event = ? AND state IN ('registered', 'waiting') " + person,
            (stem, *by_address),
        ).fetchone()
    return row is not None


def invited_sql(stem: str) -> tuple[str, tuple[object, ...]]:
    """A query of everyone the event's invitations went out to (column ``email``), and its parameters."""
    prefix = _campaign_prefix(stem)
    return (
        "SELECT DISTINCT email FROM send_ledger WHERE substr(campaign, 1, ?) = ? AND campaign NOT LIKE '%#test' "
        "AND state = 'sent'",
        (len(prefix), prefix),
    )


def current_sequence(conn: Connection, stem: str) -> int | None:
    """The SEQUENCE of the newest version of the event that went out (None: no version recorded)."""
    row = conn.execute("SELECT max(sequence) FROM event_versions WHERE event = ?", (stem,)).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def attendee_key(answer: CalendarAnswer) -> str | None:
    """The attendee's stored address form; None if the ATTENDEE is missing or not an address."""
    try:
        return address_key(answer.attendee or "", "ATTENDEE")
    except InvalidAddress:
        return None


def record_answer(
    conn: Connection, stem: str, email: str, answer: Answer, reply: CalendarAnswer, message_key: str,
    received: dt.datetime,
) -> int | None:  # fmt: skip
    """Store one answer (inside the caller's transaction); returns the event's current SEQUENCE.

    ``event_declines`` (read by the reminders, delivery/schedule.py ``declined``) follows the answer that
    counts: a decline adds the person, a later acceptance takes them off again.
    """
    current = current_sequence(conn, stem)
    conn.execute(
        "INSERT INTO event_answers (event, email, answer, sequence, current_sequence, answered_at, message_key) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (stem, email, answer, reply.sequence, current, utc_stamp(reply.dtstamp or received), message_key),
    )
    counts = answers(conn, stem).get(email)
    if counts is not None and counts.answer == "declined":
        conn.execute(
            "INSERT INTO event_declines (event, email, at) VALUES (?, ?, ?) ON CONFLICT (event, email) DO NOTHING",
            (stem, email, counts.answered_at),
        )
    else:
        conn.execute("DELETE FROM event_declines WHERE event = ? AND email = ?", (stem, email))
    return current


@dataclass(frozen=True)
class AnswerRow:
    """A person's answer that counts now."""

    email: str
    answer: Answer
    sequence: int
    current_sequence: int | None
    answered_at: str

    @property
    def outdated(self) -> bool:
        """Given to an older version than the latest one sent (the event changed since)."""
        return self.current_sequence is not None and self.sequence < self.current_sequence


def answers(conn: Connection, stem: str) -> dict[str, AnswerRow]:
    """The answer that counts per person: the highest SEQUENCE, then the newest DTSTAMP, then the last read."""
    latest = current_sequence(conn, stem)
    rows = conn.execute(
        "SELECT email, answer, sequence, answered_at FROM event_answers WHERE event = ? "
        "ORDER BY email, sequence, answered_at, id",
        (stem,),
    )
    found: dict[str, AnswerRow] = {}
    for row in rows:
        found[row[0]] = AnswerRow(row[0], row[1], int(row[2]), latest, row[3])
    return found


def declined(conn: Connection, event: EventItem) -> set[str]:
    """The addresses (stored form) whose current calendar answer to ``event`` is a decline.

    The hook for reminders and updates: they skip these people. An older decline still counts after
    the event changed (a person who said no is not asked again by every update).
    """
    return {email for email, row in answers(conn, event.stem).items() if row.answer == "declined"}


def describe_times(start: object, end: object) -> str:
    """A COUNTER's proposed time for staff: ``2024-06-19 10:00 → 12:00 (UTC+02:00)``-like, as given."""
    parts: Iterable[object] = (p for p in (start, end) if p is not None)
    return " → ".join(p.isoformat(" ", "minutes") if isinstance(p, dt.datetime) else str(p) for p in parts)
