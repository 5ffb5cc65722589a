"""The state database (contract §3): one SQLite file for recipients, consent, the send ledger and
event versions. This module only opens it; each module that owns tables creates them itself
(``CREATE TABLE IF NOT EXISTS`` in its own ``ensure_schema``), so one owner per table.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reallabor_mail.errors import ReallaborError
from reallabor_mail.settings import Settings

DEFAULT_STATE = Path(".reallabor") / "state.sqlite3"


class StateError(ReallaborError):
    """The state file cannot be opened or written."""


def state_path(option: Path | None, settings: Settings) -> Path:
    """``--state PATH``, else ``$REALLABOR_STATE``, else ``.reallabor/state.sqlite3`` here."""
    return option or settings.state or DEFAULT_STATE


def connect(path: Path) -> sqlite3.Connection:
    """Open the state file: WAL journal, foreign keys on, waits up to 10 s for another writer.

    The connection is in autocommit mode (every statement commits at once); statements that belong
    together go in :func:`transaction`, so each state change is committed before the step that
    depends on it.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
    except (OSError, sqlite3.Error) as exc:
        raise StateError(f"{path}: cannot open the state database: {exc}") from None
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction (``BEGIN IMMEDIATE``: the write lock is taken up front, so two
    processes never both read and then both write). Inside a caller's transaction it joins it.

    ``with conn:`` is not enough here: in autocommit mode it commits but never begins.
    """
    if conn.in_transaction:
        yield conn
        return
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back itself (disk full)
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    except sqlite3.Error as exc:  # disk full, read-only, locked for longer than the timeout
        path = conn.execute("PRAGMA database_list").fetchone()[2]
        raise StateError(f"{path}: cannot write the state database: {exc}") from None


def utc_stamp(moment: dt.datetime) -> str:
    """How the state file stores a moment: UTC, ISO 8601, to the second (sorts as text)."""
    if moment.tzinfo is None:
        raise ValueError("times must be time-zone aware")
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
