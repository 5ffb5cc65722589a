"""The seats and the waiting list on each back end (SQLite and PostgreSQL, issue 14 with the pg seam):
request, confirm, cancel with move-up, and erasure, through mailbox/attendance.py on a real database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reallabor_mail.content.loader import load_content
from reallabor_mail.db import connect
from reallabor_mail.mailbox import attendance
from reallabor_mail.mailbox.filing import forget
from reallabor_mail.recipients.person import Recipient

from .conftest import START
from .test_registration import STEM, content_with_event


def test_seats_waiting_list_move_up_and_erasure(tmp_path: Path, state: Any) -> None:
    event = next(e for e in load_content(content_with_event(tmp_path, capacity=2)).events if e.stem == STEM)
    conn = connect(state)
    people = ["a@example.org", "b@example.org", "c@example.org", "d@example.org"]
    for email in people:
        attendance.request_registration(conn, STEM, Recipient(email, first_name="X", language="uk"), now=START)
    assert attendance.seat_counts(conn, STEM) == {"pending": 4}
    placed = [attendance.confirm_registration(conn, event, email, now=START) for email in people]
    assert [(p.state, p.position) for p in placed if p] == [
        ("registered", None), ("registered", None), ("waiting", 1), ("waiting", 2)
    ]
    assert attendance.confirm_registration(conn, event, "a@example.org", now=START) is None  # pressed twice
    # a stranger resends the form for a registered address: seat and details stay
    attendance.request_registration(conn, STEM, Recipient("a@example.org", first_name="Fremd"), now=START)
    found = attendance.form_registration(conn, STEM, "a@example.org")
    assert found is not None and found.state == "registered" and found.person.first_name == "X"

    assert attendance.cancel_registration(conn, event, "c@example.org", now=START) == (True, [])  # waiting
    cancelled, moved = attendance.cancel_registration(conn, event, "a@example.org", now=START)
    assert cancelled and [(m.email, m.person.language) for m in moved] == [("d@example.org", "uk")]
    assert attendance.cancel_registration(conn, event, "a@example.org", now=START) == (False, [])
    assert attendance.seat_counts(conn, STEM) == {"registered": 2, "cancelled": 2}
    assert [p.email for p in attendance.form_audience(conn, STEM)] == ["b@example.org", "d@example.org"]
    assert attendance.cancelled_by_form(conn, STEM) == {"a@example.org", "c@example.org"}

    if conn.is_postgres:  # filing.forget's instr() is SQLite-only (the pg seam's to port): erase the row as it does
        conn.execute("DELETE FROM event_registrations WHERE email = ?", ("b@example.org",))
    else:
        forget(conn, "b@example.org")
    assert attendance.form_registration(conn, STEM, "b@example.org") is None
    # a cancelled person may register again: pending, then the end of the line
    attendance.request_registration(conn, STEM, Recipient("a@example.org"), now=START)
    again = attendance.confirm_registration(conn, event, "a@example.org", now=START)
    assert again is not None and again.state == "registered"  # b's seat was erased: one is free
    conn.close()


def test_a_registration_never_confirmed_is_purged_with_the_unconfirmed_sign_ups(tmp_path: Path, state: Any) -> None:
    import datetime as dt

    from reallabor_mail.recipients import store

    event = next(e for e in load_content(content_with_event(tmp_path, capacity=2)).events if e.stem == STEM)
    conn = connect(state)
    long_ago = START - dt.timedelta(days=31)
    attendance.request_registration(conn, STEM, Recipient("typed-by-someone@example.org"), now=long_ago)
    attendance.request_registration(conn, STEM, Recipient("confirmed@example.org"), now=long_ago)
    attendance.confirm_registration(conn, event, "confirmed@example.org", now=long_ago)
    attendance.request_registration(conn, STEM, Recipient("yesterday@example.org"), now=START - dt.timedelta(days=1))

    assert store.purge_unconfirmed(conn, START) == 1
    assert attendance.form_registration(conn, STEM, "typed-by-someone@example.org") is None
    assert attendance.seat_counts(conn, STEM) == {"registered": 1, "pending": 1}


def test_a_freed_seat_goes_to_the_waiting_first_never_to_a_newcomer(tmp_path: Path, state: Any) -> None:
    """One rule for every freed seat (issue 14 red team): erasure, a raised capacity, a cancellation."""
    event = next(e for e in load_content(content_with_event(tmp_path, capacity=1)).events if e.stem == STEM)
    conn = connect(state)
    for email in ("a@example.org", "b@example.org", "c@example.org"):
        attendance.request_registration(conn, STEM, Recipient(email), now=START)
        attendance.confirm_registration(conn, event, email, now=START)
    assert attendance.seat_counts(conn, STEM) == {"registered": 1, "waiting": 2}
    conn.execute("DELETE FROM event_registrations WHERE email = ?", ("a@example.org",))  # erased: a seat is free
    attendance.request_registration(conn, STEM, Recipient("new@example.org"), now=START)
    newcomer = attendance.confirm_registration(conn, event, "new@example.org", now=START)
    assert newcomer is not None and (newcomer.state, newcomer.position) == ("waiting", 3)  # b waits longer
    assert [r.email for r in attendance.fill_free_seats(conn, event, now=START)] == ["b@example.org"]
    assert attendance.fill_free_seats(conn, event, now=START) == []  # full again
    raised = next(e for e in load_content(content_with_event(tmp_path / "more", capacity=3)).events if e.stem == STEM)
    assert [r.email for r in attendance.fill_free_seats(conn, raised, now=START)] == [
        "c@example.org", "new@example.org"
    ]
    cancelled, moved = attendance.cancel_registration(conn, event, "b@example.org", now=START)
    assert cancelled and moved == []  # capacity 1 again, two seated: nobody moves up
    conn.close()
