"""The state database (contract §3): one SQLite file for recipients, consent, the send ledger and
event versions. This module only opens it; each module that owns tables creates them itself
(``CREATE TABLE IF NOT EXISTS`` in its own ``ensure_schema``), so one owner per table.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from .errors import ReallaborError

DEFAULT_STATE = Path(".reallabor") / "state.sqlite3"
ENV_STATE = "REALLABOR_STATE"


class StateError(ReallaborError):
    """The state file cannot be opened or written."""


def state_path(option: Path | None = None) -> Path:
    """``--state PATH``, else ``$REALLABOR_STATE``, else ``.reallabor/state.sqlite3`` here."""
    if option is not None:
        return option
    env = os.environ.get(ENV_STATE)
    return Path(env) if env else DEFAULT_STATE


def connect(path: Path) -> sqlite3.Connection:
    """Open the state file: WAL journal, foreign keys on, waits up to 10 s for another writer.

    The connection is in autocommit mode; callers group writes with ``with conn:`` (one transaction)
    so that every state change is committed before the step that depends on it.
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
