"""What went out of each event (table ``event_versions`` of the state database): SEQUENCE and fingerprint.

The pure decision (first invitation, resend, update, cancellation) is
:func:`reallabor_mail.render.ics.plan_version`; this module gives it the last version sent and records a
version as soon as anything of it may have gone out: :func:`version_op` is committed in the same
transaction as the campaign's first ``sending`` ledger row, so however a run ends (Ctrl-C, SIGKILL, a
dead server) the next ``send`` knows the version is out and plans the update. ``sent_at`` is the DTSTAMP
its mails carried. Recording is idempotent for the same (event, SEQUENCE, fingerprint), so a resumed
campaign may record again. ``build`` reads the last versions (:func:`sent_versions`, read-only) so
downloads carry them too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path

from reallabor_mail.content.loader import Content, EventItem
from reallabor_mail.db import Connection, StateLocation, connect_read_only, transaction
from reallabor_mail.delivery.ledger import Op
from reallabor_mail.render.ics import CalendarError, EventPlan, SentVersion, Snapshot, plan_version, utc

Clock = Callable[[], dt.datetime]


def last_sent_version(conn: Connection, event: EventItem, before: int | None = None) -> SentVersion | None:
    """The newest version of an event that went out (with a SEQUENCE below ``before``), or None if none did."""
    row = conn.execute(
        "SELECT event, sequence, fingerprint, sent_at FROM event_versions WHERE event = ? AND sequence < ? "
        "ORDER BY sequence DESC LIMIT 1",
        (event.stem, before if before is not None else 2**62),
    ).fetchone()
    if row is None:
        return None
    return SentVersion(row[0], int(row[1]), row[2], dt.datetime.fromisoformat(row[3]))


def sent_versions(path: StateLocation, *, required: bool) -> dict[str, SentVersion]:
    """The last version sent of every event (by file stem), read-only: nothing is created.

    Without the file: an empty record if the path is only the default (no send yet), else
    :class:`~reallabor_mail.db.NoState` (the user named a file that is not there).
    """
    if not required and isinstance(path, Path) and not path.is_file():
        return {}
    conn = connect_read_only(path)
    try:
        rows = conn.execute(
            "SELECT event, sequence, fingerprint, sent_at FROM event_versions AS v WHERE sequence = "
            "(SELECT MAX(sequence) FROM event_versions WHERE event = v.event)"
        ).fetchall()
    finally:
        conn.close()
    return {row[0]: SentVersion(row[0], int(row[1]), row[2], dt.datetime.fromisoformat(row[3])) for row in rows}


def record_sent_version(
    conn: Connection, event: EventItem, sequence: int, fingerprint: str, sent_at: dt.datetime
) -> None:
    """Record that version ``sequence`` (with ``fingerprint``) of an event went out; ``sent_at`` is the
    DTSTAMP its mails carried (a resend of the version carries it again, and so do downloads).

    Recording the same version again is a no-op (a resumed campaign); the same SEQUENCE with another
    fingerprint is refused, since recipients would hold two different entries under one version.
    """
    with transaction(conn):
        row = conn.execute(
            "SELECT fingerprint FROM event_versions WHERE event = ? AND sequence = ?", (event.stem, sequence)
        ).fetchone()
        if row is not None:
            if row[0] != fingerprint:
                raise CalendarError(
                    f"{event.path}: version {sequence} of this event was already sent with other details; "
                    "plan the invitation again so it gets a new SEQUENCE"
                )
            return
        conn.execute(
            "INSERT INTO event_versions (event, sequence, fingerprint, sent_at) VALUES (?, ?, ?, ?)",
            (event.stem, sequence, fingerprint, utc(sent_at).isoformat()),
        )


def version_op(event: EventItem, sequence: int, fingerprint: str, sent_at: dt.datetime) -> Op:
    """The statement that records a version, for the transaction of the campaign's first ``sending`` row.

    The plan gave this SEQUENCE to this fingerprint (:func:`plan_event`), so an existing row is the same
    version (a resumed campaign): it is kept.
    """
    return (
        "INSERT INTO event_versions (event, sequence, fingerprint, sent_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        (event.stem, sequence, fingerprint, utc(sent_at).isoformat()),
    )


def plan_event(content: Content, event: EventItem, conn: Connection, clock: Clock) -> EventPlan:
    """The version a campaign for ``event`` sends now, from the record of what went out before.

    A version already (partly) out is sent again as what it is: an update of the version before it, so
    a resumed update (or one to people added since) keeps its subject and change block.
    """
    last = last_sent_version(conn, event)
    plan = plan_version(content.site, event, last, clock())
    if last is not None and plan.sequence == last.sequence and not plan.is_update:
        earlier = last_sent_version(conn, event, before=last.sequence)
        if earlier is not None and earlier.fingerprint != last.fingerprint:
            plan = dataclasses.replace(plan, previous=Snapshot.from_fingerprint(earlier.fingerprint))
    return plan
