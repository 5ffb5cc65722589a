"""One round of ``reallabor-mail worker``: the scheduled sends that are due, then the reminders that are due.

A schedule (:mod:`reallabor_mail.delivery.schedule`) is sent when its time has come, if the worker gets
to it within the grace period (default 6 hours): a machine that was off does not fire a send silently
a day late; the schedule is marked ``missed`` instead and ``send FILE --status`` says so. The content is
read and validated again when it is sent: changed content is sent as it is now (the outcome says so),
invalid content marks the schedule ``failed`` with the problems. A scheduled send that was cut short
(the worker killed, the server down) is continued by the next round within the grace period, through the
ledger (``--resume``): nothing is sent twice. Returns what happened; prints nothing (cli/worker.py does).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reallabor_mail.content.loader import load_content
from reallabor_mail.db import Connection, StateLocation, connect
from reallabor_mail.delivery import reminders, schedule
from reallabor_mail.delivery.campaign import SendRequest, execute, prepare
from reallabor_mail.delivery.engine import RunReport
from reallabor_mail.errors import ContentError, ReallaborError, display_path
from reallabor_mail.i18n.messages import _
from reallabor_mail.render.engine import RenderError
from reallabor_mail.settings import Settings

Clock = Callable[[], dt.datetime]
What = Literal["sent", "nothing owed", "missed", "released", "failed", "deferred", "reminder"]


@dataclass(frozen=True)
class Outcome:
    """What the worker did with one campaign in this round."""

    what: What
    key: str
    path: str
    report: RunReport | None = None
    detail: str = ""  # the problems, the error, or what was noticed (the content changed)


@dataclass(frozen=True)
class Round:
    """One round's settings: where the state is, the content folder of the reminders, the grace period."""

    state: StateLocation
    content: Path
    settings: Settings
    clock: Clock
    grace: dt.timedelta = schedule.DEFAULT_GRACE
    templates: Path | None = None


def _hours(delta: dt.timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.0f} h"


def run_due(round_: Round) -> list[Outcome]:
    """Send what is due now: every due schedule (or mark it missed), then every due reminder."""
    conn = connect(round_.state)
    try:
        outcomes = [_run_schedule(round_, conn, record) for record in schedule.due_records(conn, round_.clock())]
        return outcomes + _run_reminders(round_, conn)
    finally:
        conn.close()


def _run_schedule(round_: Round, conn: Connection, record: schedule.Record) -> Outcome:
    now = round_.clock()
    file = Path(record.file or "")
    path = display_path(file)
    assert record.due is not None  # due_records selects only scheduled rows
    late = now - record.due
    if late > round_.grace:
        detail = _("the worker got to it {late} after it was due (more than the {grace} grace period)",
                   late=_hours(late), grace=_hours(round_.grace))  # fmt: skip
        if record.state == "scheduled":
            schedule.mark(conn, record.key, "missed", now, detail)
            return Outcome("missed", record.key, path, detail=detail)
        schedule.release(conn, record.key, now, detail)
        return Outcome("released", record.key, path, detail=detail)
    try:
        item = load_content(file.parent.parent).find(file)
    except ContentError as exc:
        return _failed(conn, record.key, path, now, "\n".join(str(problem) for problem in exc.problems))
    except ReallaborError as exc:  # the file was moved or deleted
        return _failed(conn, record.key, path, now, str(exc))
    changed = schedule.content_fingerprint(item) != record.fingerprint
    notice = _("the content changed after it was scheduled; the current version is sent") if changed else ""
    request = SendRequest(file=file, lists=record.lists, rate=record.rate, connections=record.connections,
                          resume=True, state=round_.state, templates=round_.templates)  # fmt: skip
    try:
        with prepare(request, settings=round_.settings, clock=round_.clock) as prepared:
            key = prepared.plan.campaign
            if key != record.key:  # the event's version moved on since it was scheduled
                schedule.rekey(conn, record.key, key, now)
            if notice:
                schedule.note(conn, key, now, notice)
            before = prepared.plan.before
            if prepared.plan.owed == 0 and not (before is not None and before["sending"]):
                schedule.mark(conn, key, "sent", now)
                return Outcome("nothing owed", key, path, detail=notice)
            report = execute(prepared)
    except RenderError as exc:  # a template the content uses no longer renders
        return _failed(conn, record.key, path, now, str(exc))
    except ReallaborError as exc:  # the server is down, the campaign is being sent by hand: the next round
        return Outcome("deferred", record.key, path, detail=str(exc))
    return Outcome("sent", key, path, report, notice)


def _failed(conn: Connection, key: str, path: str, now: dt.datetime, problems: str) -> Outcome:
    schedule.mark(conn, key, "failed", now, problems)
    return Outcome("failed", key, path, detail=problems)


def _run_reminders(round_: Round, conn: Connection) -> list[Outcome]:
    try:
        content = load_content(round_.content)
    except ContentError as exc:
        return [Outcome("failed", "reminders", display_path(round_.content),
                        detail="\n".join(str(problem) for problem in exc.problems))]  # fmt: skip
    outcomes = []
    for reminder in reminders.due(content, conn, round_.clock()):
        path = display_path(reminder.event.path)
        try:
            report = reminders.send_reminder(
                reminder, content, conn, round_.state, round_.settings, round_.clock, round_.templates
            )
        except ReallaborError as exc:
            outcomes.append(Outcome("deferred", reminder.key, path, detail=str(exc)))
            continue
        outcomes.append(Outcome("reminder", reminder.key, path, report))
    return outcomes
