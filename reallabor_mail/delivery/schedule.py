"""Campaigns as records with a life (table ``campaigns`` of the state database), and their schedules.

A campaign is keyed like its ledger rows (``newsletter:<stem>``, ``event:<stem>:<SEQUENCE>``,
``reminder:<stem>:<SEQUENCE>``) and goes through these states::

    (no row: a draft) → scheduled → sending → sent
                                 ↘ missed   ↘ interrupted (a run that did not finish; --resume)
                                 ↘ failed (the content became invalid before it was due)

``send`` records ``sending`` when a run starts and ``sent`` or ``interrupted`` when it ends (:func:`mark`,
:func:`mark_finished`); a run killed on the way leaves ``sending``, which the ledger and the campaign lock
tell apart from a run still going. ``send FILE --at`` records a schedule (:func:`schedule`) that
``reallabor-mail worker`` (:mod:`reallabor_mail.delivery.worker`) sends when it is due; ``by_worker``
says that the worker is to send (or continue) it. Moments are stored in UTC (:func:`utc_stamp`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from reallabor_mail.content.loader import EventItem, NewsletterItem, load_content
from reallabor_mail.content.models import Site, resolve_local_time
from reallabor_mail.db import Connection, Row, transaction, utc_stamp
from reallabor_mail.delivery.ledger import Summary
from reallabor_mail.errors import ReallaborError
from reallabor_mail.i18n.messages import _

CampaignState = Literal["scheduled", "sending", "sent", "interrupted", "missed", "failed"]
DEFAULT_GRACE = dt.timedelta(hours=6)  # a schedule missed by more than this is not sent late
_AT_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M")


class ScheduleError(ReallaborError):
    """A schedule cannot be made or removed as asked (``send --at``, ``--unschedule``)."""


@dataclass(frozen=True)
class Record:
    """One row of ``campaigns``."""

    key: str
    item: str
    state: CampaignState
    file: str | None
    due: dt.datetime | None
    by_worker: bool
    lists: tuple[str, ...]
    rate: float | None
    connections: int
    fingerprint: str | None
    detail: str | None
    updated: dt.datetime

    @classmethod
    def of(cls, row: Row) -> Record:
        options = json.loads(row["options"] or "{}")
        return cls(
            key=row["key"], item=row["item"], state=row["state"], file=row["file"], due=_moment(row["due"]),
            by_worker=bool(row["by_worker"]), lists=tuple(json.loads(row["lists"] or "[]")),
            rate=options.get("rate"), connections=int(options.get("connections", 1)),
            fingerprint=row["fingerprint"], detail=row["detail"], updated=_moment(row["updated"]) or _EPOCH,
        )  # fmt: skip


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _moment(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def item_key(item: NewsletterItem | EventItem) -> str:
    """``newsletter:2023-3``, ``event:2024-06-19-abschlussveranstaltung``: the item a campaign sends."""
    return f"{item.kind}:{item.stem}"


def _item_of(campaign: str) -> str:
    return ":".join(campaign.split(":")[:2])


def load_item(file: Path) -> tuple[NewsletterItem | EventItem, Site]:
    """The newsletter or event of a content file, read and validated with its whole content folder."""
    content = load_content(file.parent.parent)
    return content.find(file), content.site


def content_fingerprint(item: NewsletterItem | EventItem) -> str:
    """A hash of every language version's file: the worker compares it to see that the content changed."""
    digest = hashlib.sha256()
    for language in sorted(item.versions):
        digest.update(language.encode() + b"\0" + item.versions[language].path.read_bytes() + b"\0")
    return digest.hexdigest()[:32]


def parse_at(text: str, zone: str, now: dt.datetime) -> dt.datetime:
    """``--at "2026-12-14 09:00"`` in the site's time zone, as an aware moment; must lie ahead of ``now``.

    A time the clocks skip or repeat (the DST switches) is refused, as event times are.
    """
    local = None
    for pattern in _AT_FORMATS:
        try:
            local = dt.datetime.strptime(text.strip(), pattern)
            break
        except ValueError:
            continue
    if local is None:
        raise ScheduleError(_("--at: {text!r} is not a time; write it as YYYY-MM-DD HH:MM, e.g. 2026-12-14 09:00",
                              text=text))  # fmt: skip
    try:
        moment = resolve_local_time(local, zone)
    except ValueError as exc:
        raise ScheduleError(f"--at: {exc}") from None
    if moment <= now:
        raise ScheduleError(
            _("--at: {at} ({zone}) is in the past (it is now {now}); give a time ahead",
              at=f"{local:%Y-%m-%d %H:%M}", zone=zone, now=f"{now.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M}")
        )  # fmt: skip
    return moment


def find(conn: Connection, key: str) -> Record | None:
    row = conn.execute("SELECT * FROM campaigns WHERE key = ?", (key,)).fetchone()
    return Record.of(row) if row is not None else None


def latest_schedule(conn: Connection, item: str) -> Record | None:
    """The newest campaign of an item that was scheduled (for ``send FILE --status``), or None."""
    row = conn.execute(
        "SELECT * FROM campaigns WHERE item = ? AND due IS NOT NULL ORDER BY updated DESC, key DESC LIMIT 1", (item,)
    ).fetchone()
    return Record.of(row) if row is not None else None


def mark(conn: Connection, key: str, state: CampaignState, now: dt.datetime, detail: str | None = None) -> None:
    """Record that campaign ``key`` is now in ``state`` (the run path calls this; a row is made if none is).

    ``sent``, ``missed`` and ``failed`` end the worker's part; ``interrupted`` leaves it to the worker if
    it was the worker's, so a scheduled send cut short is continued by the next worker run.
    """
    done = state in ("sent", "missed", "failed")
    with transaction(conn):
        conn.execute(
            "INSERT INTO campaigns (key, item, state, detail, updated) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET state = excluded.state, updated = excluded.updated, "
            "detail = coalesce(excluded.detail, campaigns.detail), "
            "by_worker = CASE WHEN ? THEN 0 ELSE campaigns.by_worker END",
            (key, _item_of(key), state, detail, utc_stamp(now), done),
        )


def mark_finished(conn: Connection, key: str, summary: Summary, now: dt.datetime) -> None:
    """The end of a run: ``sent`` when nothing is owed or in flight any more, else ``interrupted``."""
    mark(conn, key, "interrupted" if summary.interrupted else "sent", now)


def release(conn: Connection, key: str, now: dt.datetime, detail: str) -> None:
    """The worker gives a campaign back to staff (an interrupted send that is too late to continue)."""
    with transaction(conn):
        conn.execute(
            "UPDATE campaigns SET by_worker = 0, detail = ?, updated = ? WHERE key = ?", (detail, utc_stamp(now), key)
        )


def note(conn: Connection, key: str, now: dt.datetime, detail: str) -> None:
    """Keep what the worker noticed about a campaign (shown by ``--status``)."""
    with transaction(conn):
        conn.execute("UPDATE campaigns SET detail = ?, updated = ? WHERE key = ?", (detail, utc_stamp(now), key))


def rekey(conn: Connection, old: str, new: str, now: dt.datetime) -> None:
    """Move a schedule to the campaign key it has at run time (an event whose version moved on meanwhile)."""
    with transaction(conn):
        conn.execute("DELETE FROM campaigns WHERE key = ? AND state NOT IN ('sending', 'interrupted')", (new,))
        conn.execute("UPDATE campaigns SET key = ?, updated = ? WHERE key = ?", (new, utc_stamp(now), old))


def schedule(
    conn: Connection, key: str, item: NewsletterItem | EventItem, due: dt.datetime, now: dt.datetime, *,
    lists: tuple[str, ...] = (), rate: float | None = None, connections: int = 1,
) -> None:  # fmt: skip
    """Record that the worker is to send campaign ``key`` of ``item`` at ``due`` (replacing its earlier schedule)."""
    with transaction(conn):
        busy = conn.execute(
            "SELECT key FROM campaigns WHERE item = ? AND state = 'sending'", (item_key(item),)
        ).fetchone()
        if busy is not None:
            raise ScheduleError(
                _("{path}: {key} is being sent right now; schedule it once that send has ended (see --status)",
                  path=item.path, key=busy[0])
            )  # fmt: skip
        conn.execute("DELETE FROM campaigns WHERE item = ? AND state IN ('scheduled', 'missed', 'failed')",
                     (item_key(item),))  # fmt: skip
        options = json.dumps({"rate": rate, "connections": connections})
        conn.execute(
            "INSERT INTO campaigns (key, item, state, file, due, by_worker, lists, options, fingerprint, updated) "
            "VALUES (?, ?, 'scheduled', ?, ?, 1, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET state = 'scheduled', "
            "file = excluded.file, due = excluded.due, by_worker = 1, lists = excluded.lists, "
            "options = excluded.options, fingerprint = excluded.fingerprint, detail = NULL, updated = excluded.updated",
            (key, item_key(item), str(item.path.resolve()), utc_stamp(due), json.dumps(list(lists)), options,
             content_fingerprint(item), utc_stamp(now)),
        )  # fmt: skip


def unschedule(conn: Connection, item: NewsletterItem | EventItem) -> Record | None:
    """Remove the schedule of an item (scheduled, missed or failed); returns it, or None if there was none."""
    with transaction(conn):
        record = latest_schedule(conn, item_key(item))
        if record is None or record.state not in ("scheduled", "missed", "failed"):
            if record is not None and record.state == "sending":
                raise ScheduleError(
                    _("{path}: {key} is being sent right now; a running send cannot be unscheduled (Ctrl-C stops it)",
                      path=item.path, key=record.key)
                )  # fmt: skip
            return None
        conn.execute("DELETE FROM campaigns WHERE key = ?", (record.key,))
    return record


def due_records(conn: Connection, now: dt.datetime) -> list[Record]:
    """The worker's campaigns whose time has come (scheduled, or a scheduled send that did not finish)."""
    rows = conn.execute(
        "SELECT * FROM campaigns WHERE by_worker = 1 AND due <= ? ORDER BY due, key", (utc_stamp(now),)
    ).fetchall()
    return [Record.of(row) for row in rows]


def declined(conn: Connection, event: str) -> frozenset[str]:
    """The addresses that declined an event (``event_declines``; filled once replies are read)."""
    return frozenset(row[0] for row in conn.execute("SELECT email FROM event_declines WHERE event = ?", (event,)))
