"""The state database (contract §3): recipients, consent, the send ledger, event versions and what the
mailbox brought back (answers, bounces), with a schema version. One SQLite file by default (version in
``PRAGMA user_version``); a shared PostgreSQL server when the state is a ``postgresql://`` URL (version in
the table ``schema_version``), for several workers or web processes (see :class:`Connection`).

Every table is created here, by numbered migrations: :data:`MIGRATIONS` ``[n - 1]`` brings a file from
version ``n - 1`` to ``n``. :func:`connect` (for commands that write) applies those a file still lacks,
each in one transaction; :func:`connect_read_only` (``send --status``, ``recipients list``/``export``)
never creates a file or a table: with no state file it says so, and a file from an older version is
migrated in memory only. A file from before numbered migrations (version 0 with the tables present) is
version 1: migration 1 is the tables that code created, ``CREATE … IF NOT EXISTS`` verbatim.

The SQL is SQLite's and PostgreSQL's common ground (``?`` placeholders, ``INSERT … ON CONFLICT``,
``RETURNING``); :class:`Connection` is the one seam: it turns placeholders and the migrations' few type
names into PostgreSQL's and its errors into :class:`StateError`, so no other module knows the back end.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import os
import re
import sqlite3
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from reallabor_mail.errors import ReallaborError, display_path
from reallabor_mail.settings import ENV_DATABASE_URL, ENV_STATE, Settings

if TYPE_CHECKING:
    import psycopg

DEFAULT_STATE = Path(".reallabor") / "state.sqlite3"

_RECIPIENTS = """
CREATE TABLE IF NOT EXISTS recipients (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    salutation TEXT,
    title TEXT,
    first_name TEXT,
    last_name TEXT,
    organisation TEXT,
    language TEXT NOT NULL DEFAULT 'de' CHECK (language IN ('de', 'uk', 'en')),
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS memberships (
    recipient_id INTEGER NOT NULL REFERENCES recipients(id) ON DELETE CASCADE,
    list_name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'subscribed', 'unsubscribed', 'bounced')),
    changed TEXT NOT NULL,
    PRIMARY KEY (recipient_id, list_name)
);
CREATE INDEX IF NOT EXISTS memberships_by_list ON memberships (list_name, status);
CREATE TABLE IF NOT EXISTS consent_texts (
    version TEXT PRIMARY KEY,
    language TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS consent_events (
    id INTEGER PRIMARY KEY,
    recipient_id INTEGER NOT NULL REFERENCES recipients(id) ON DELETE CASCADE,
    list_name TEXT NOT NULL,
    action TEXT NOT NULL,
    at TEXT NOT NULL,
    source TEXT NOT NULL,
    actor TEXT,
    ip TEXT,
    consent_version TEXT REFERENCES consent_texts(version)
);
CREATE INDEX IF NOT EXISTS consent_events_by_recipient ON consent_events (recipient_id);
CREATE TABLE IF NOT EXISTS suppressions (
    address_hash TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS recipients_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
_SEND_LEDGER = """
CREATE TABLE IF NOT EXISTS send_ledger (
    id INTEGER PRIMARY KEY,
    campaign TEXT NOT NULL,
    email TEXT NOT NULL,
    list_name TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'retry', 'failed', 'unknown')),
    recipient TEXT,
    message_id TEXT,
    reply TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    retry_after TEXT,
    updated TEXT NOT NULL,
    UNIQUE (campaign, email)
);
CREATE INDEX IF NOT EXISTS send_ledger_by_state ON send_ledger (campaign, state);
"""
_EVENT_VERSIONS = """
CREATE TABLE IF NOT EXISTS event_versions (
    event       TEXT    NOT NULL,  -- the event's file name (stem): its identity, as in its UID
    sequence    INTEGER NOT NULL,
    fingerprint TEXT    NOT NULL,  -- canonical JSON of what the calendar entry showed
    sent_at     TEXT    NOT NULL,  -- UTC, ISO 8601
    PRIMARY KEY (event, sequence)
);
"""
_WEB_SIGNUPS = """
CREATE TABLE IF NOT EXISTS web_signup_attempts (
    at       TEXT NOT NULL,  -- UTC, ISO 8601
    mailbox  TEXT NOT NULL,  -- keyed hash of the mailbox (see mailbox_key), never the address
    outcome  TEXT NOT NULL   -- queued | mailbox_limit | global_limit
);
CREATE INDEX IF NOT EXISTS web_signup_attempts_mailbox ON web_signup_attempts (mailbox, at);
CREATE INDEX IF NOT EXISTS web_signup_attempts_at ON web_signup_attempts (at);
CREATE TABLE IF NOT EXISTS web_confirmation_outbox (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL,
    lists         TEXT NOT NULL,  -- comma-separated list names
    language      TEXT NOT NULL,
    queued_at     TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_attempt  TEXT NOT NULL,
    last_error    TEXT
);
"""
_CAMPAIGNS = """
CREATE TABLE IF NOT EXISTS campaigns (
    key         TEXT PRIMARY KEY,  -- the ledger's campaign key: newsletter:<stem>, event:<stem>:<seq>, reminder:…
    item        TEXT NOT NULL,     -- <kind>:<stem>: the newsletter or event it sends
    state       TEXT NOT NULL CHECK (state IN ('scheduled', 'sending', 'sent', 'interrupted', 'missed', 'failed')),
    file        TEXT,              -- the content file, absolute (for the worker)
    due         TEXT,              -- UTC, ISO 8601: when it was scheduled for (NULL: sent by hand)
    by_worker   INTEGER NOT NULL DEFAULT 0,  -- 1 while the worker is to send or continue it
    lists       TEXT,              -- JSON list of --list names given when scheduling ([] = the file's)
    options     TEXT,              -- JSON: rate, connections given when scheduling
    fingerprint TEXT,              -- hash of the content files when scheduled
    detail      TEXT,              -- why it was missed or failed, or what the worker noticed
    updated     TEXT NOT NULL      -- UTC, ISO 8601
);
CREATE INDEX IF NOT EXISTS campaigns_due ON campaigns (by_worker, due);
CREATE INDEX IF NOT EXISTS campaigns_by_item ON campaigns (item, updated);
CREATE TABLE IF NOT EXISTS event_declines (
    event TEXT NOT NULL,  -- the event's stem
    email TEXT NOT NULL,
    at    TEXT NOT NULL,  -- UTC, ISO 8601
    PRIMARY KEY (event, email)
);
"""
_WEB_LIMITS = """
ALTER TABLE web_signup_attempts ADD COLUMN due TEXT;  -- when its mail may leave (NULL: no mail queued)
UPDATE web_signup_attempts SET due = at WHERE outcome = 'queued';
CREATE INDEX IF NOT EXISTS web_signup_attempts_due ON web_signup_attempts (due);
CREATE TABLE IF NOT EXISTS web_client_attempts (
    at      TEXT NOT NULL,  -- UTC, ISO 8601
    client  TEXT NOT NULL   -- keyed hash of the client (IPv4 address or IPv6 /64), never the address
);
CREATE INDEX IF NOT EXISTS web_client_attempts_client ON web_client_attempts (client, at);
CREATE INDEX IF NOT EXISTS web_client_attempts_at ON web_client_attempts (at);
"""
_MAILBOX = """
CREATE TABLE IF NOT EXISTS inbox_messages (
    key          TEXT PRIMARY KEY,  -- sha256 of Message-ID, From, Subject, Date, body (mailbox/classify.py)
    message_id   TEXT,
    kind         TEXT NOT NULL,     -- calendar_reply | counter | bounce | unsubscribe | auto_reply | other
    for_staff    INTEGER NOT NULL,  -- 1: left for a human, unread
    reason       TEXT NOT NULL,     -- what was done, or why it was left (mailbox/filing.py Reason)
    detail       TEXT,              -- the address, event or proposed time it is about
    sender       TEXT,
    subject      TEXT,
    location     TEXT,              -- where it was read (IMAP folder and UID, or the Maildir file)
    processed_at TEXT NOT NULL      -- UTC, ISO 8601
);
CREATE INDEX IF NOT EXISTS inbox_messages_for_staff ON inbox_messages (for_staff, processed_at);
CREATE TABLE IF NOT EXISTS event_answers (
    id               INTEGER PRIMARY KEY,
    event            TEXT    NOT NULL,  -- the event's file name (stem), as in its UID
    email            TEXT    NOT NULL,  -- the attendee, stored form (recipients.email)
    answer           TEXT    NOT NULL CHECK (answer IN ('accepted', 'declined', 'tentative')),
    sequence         INTEGER NOT NULL,  -- the SEQUENCE the answer is for
    current_sequence INTEGER,           -- the event's latest SEQUENCE sent when the answer came
    answered_at      TEXT    NOT NULL,  -- the reply's DTSTAMP (UTC)
    message_key      TEXT    NOT NULL  -- the inbox_messages row it came from
);
CREATE INDEX IF NOT EXISTS event_answers_by_event ON event_answers (event, email);
CREATE TABLE IF NOT EXISTS bounce_events (
    id          INTEGER PRIMARY KEY,
    email       TEXT    NOT NULL,  -- the address we sent to, stored form
    campaign    TEXT    NOT NULL,
    permanent   INTEGER NOT NULL,
    status      TEXT,              -- DSN status and diagnostic, as reported
    at          TEXT    NOT NULL,  -- when the bounce was written (its Date, never later than the run)
    message_key TEXT    NOT NULL   -- the inbox_messages row it came from
);
CREATE INDEX IF NOT EXISTS bounce_events_by_email ON bounce_events (email, at);
CREATE TABLE IF NOT EXISTS imap_watermarks (
    mailbox     TEXT PRIMARY KEY,  -- user@host/folder
    uidvalidity INTEGER NOT NULL,
    last_uid    INTEGER NOT NULL   -- every message up to this UID was read
);
"""
_LEDGER_SKIPPED = """
CREATE TABLE send_ledger_new (
    id INTEGER PRIMARY KEY,
    campaign TEXT NOT NULL,
    email TEXT NOT NULL,
    list_name TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'retry', 'failed', 'unknown', 'skipped')),
    recipient TEXT,
    message_id TEXT,
    reply TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    retry_after TEXT,
    updated TEXT NOT NULL,
    UNIQUE (campaign, email)
);
INSERT INTO send_ledger_new SELECT * FROM send_ledger;
UPDATE send_ledger_new SET state = 'skipped'
    WHERE state = 'failed' AND reply LIKE 'not sent: the address is suppressed%';
DROP TABLE send_ledger;
ALTER TABLE send_ledger_new RENAME TO send_ledger;
CREATE INDEX send_ledger_by_state ON send_ledger (campaign, state);
"""
_EVENT_REGISTRATIONS = """
CREATE TABLE IF NOT EXISTS event_registrations (
    event        TEXT    NOT NULL,  -- the event's file name (stem)
    email        TEXT    NOT NULL,  -- stored form (address_key)
    salutation   TEXT,
    title        TEXT,
    first_name   TEXT,
    last_name    TEXT,
    organisation TEXT,
    language     TEXT    NOT NULL CHECK (language IN ('de', 'uk', 'en')),
    state        TEXT    NOT NULL CHECK (state IN ('pending', 'registered', 'waiting', 'cancelled')),
    requested_at TEXT    NOT NULL,  -- UTC, ISO 8601: the form was sent
    confirmed_at TEXT,              -- the confirmation button was pressed
    turn         INTEGER,           -- order of confirmation within the event: the waiting list's order
    changed      TEXT    NOT NULL,
    PRIMARY KEY (event, email)
);
CREATE INDEX IF NOT EXISTS event_registrations_by_state ON event_registrations (event, state, turn);
"""
_LEDGER_OWNER = """
ALTER TABLE send_ledger ADD COLUMN owner TEXT;  -- PostgreSQL: the sender's session (backend pid) that claimed it
"""
MIGRATIONS: tuple[str, ...] = (
    # 1: the mailing list (recipients, memberships, consent, suppressions), the send ledger, event versions
    _RECIPIENTS + _SEND_LEDGER + _EVENT_VERSIONS,
    # 2: the public form's limits and the outbox of its confirmation mails (web/signup_queue.py)
    _WEB_SIGNUPS,
    # 3: campaigns as records with a life (scheduled sending, reminders; delivery/schedule.py) and declines
    _CAMPAIGNS,
    # 4: confirmation mails held back by the hourly cap (their due hour), the per-client limit (web/limits.py)
    _WEB_LIMITS,
    # 5: the organiser's mailbox: messages read, calendar answers, bounces, IMAP positions (mailbox/filing.py)
    _MAILBOX,
    # 6: ledger state 'skipped' (unsubscribed or suppressed after the send began; was counted 'failed')
    _LEDGER_SKIPPED,
    # 7: registrations for events by the public server's form, with the waiting list (web/registration.py)
    _EVENT_REGISTRATIONS,
    # 8: which sender claimed a ledger row (several workers share a campaign on PostgreSQL; delivery/ledger.py)
    _LEDGER_OWNER,
)
LATEST_VERSION = len(MIGRATIONS)


class StateFailure(StrEnum):
    """What went wrong with the state, so the CLI can say it in the staff language (this module is below i18n)."""

    OPEN = "open"  # cannot be opened; SQLite's (or PostgreSQL's) words in ``detail``
    READ = "read"
    WRITE = "write"
    USE = "use"  # a PostgreSQL statement failed
    BUSY = "busy"  # another program held the write lock for longer than we wait
    FULL = "full"  # the disk is full
    READ_ONLY = "read-only"  # the file or the disk cannot be written
    NOT_A_DATABASE = "not a database"
    NEWER = "newer"  # written by a newer version; its state version in ``detail``
    NO_STATE = "no state"  # a command that only reads found no state file
    NO_PSYCOPG = "no psycopg"


class StateError(ReallaborError):
    """The state file cannot be opened or written: the English message, and what failed where for the CLI."""

    def __init__(self, message: str, failure: StateFailure | None = None, where: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.failure, self.where, self.detail = failure, where, detail


class NoState(StateError):
    """A command that only reads found no state file."""


_SQLITE_FAILURES = {  # SQLite's primary result codes that say more than "cannot …"
    sqlite3.SQLITE_BUSY: StateFailure.BUSY,
    sqlite3.SQLITE_LOCKED: StateFailure.BUSY,
    sqlite3.SQLITE_FULL: StateFailure.FULL,
    sqlite3.SQLITE_READONLY: StateFailure.READ_ONLY,
    sqlite3.SQLITE_NOTADB: StateFailure.NOT_A_DATABASE,
}
_DOING = {StateFailure.OPEN: "cannot open", StateFailure.READ: "cannot read", StateFailure.WRITE: "cannot write",
          StateFailure.USE: "cannot use"}  # fmt: skip


def state_failed(where: object, failure: StateFailure, exc: BaseException, reason: str | None = None) -> StateError:
    """``exc`` (SQLite's or psycopg's) as what could not be done with the state at ``where``."""
    reason = _reason(exc) if reason is None else reason
    code = getattr(exc, "sqlite_errorcode", None)
    kind = _SQLITE_FAILURES.get(code & 0xFF, failure) if isinstance(code, int) else failure
    return StateError(f"{where}: {_DOING[failure]} the state database: {reason}", kind, str(where), reason)


@dataclass(frozen=True)
class DatabaseUrl:
    """A PostgreSQL server as the state: ``postgresql://user:password@host:port/database``.

    Shown (``str``) with the password masked, so no message or log line carries it.
    """

    url: str = ""

    def __str__(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        if parts.password is None:
            return self.url
        user = urllib.parse.quote(parts.username or "", safe="")
        host = parts.hostname or ""
        netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))

    def __repr__(self) -> str:
        return f"DatabaseUrl({str(self)!r})"


StateLocation = Path | DatabaseUrl
"""Where the state lives: a SQLite file, or a PostgreSQL server."""

_URL_SCHEMES = ("postgresql://", "postgres://")


def shown(location: StateLocation) -> str:
    """The state as a message names it: a file relative to here where shorter, a URL without its password."""
    return display_path(location) if isinstance(location, Path) else str(location)


def parse_state(text: str) -> StateLocation:
    """``--state`` or an environment value: a ``postgresql://`` URL, else a file path."""
    return DatabaseUrl(text) if text.startswith(_URL_SCHEMES) else Path(text)


def state_path(option: StateLocation | None, settings: Settings, content: Path | None = None) -> StateLocation:
    """``--state PATH|URL``, else ``$REALLABOR_DATABASE_URL``, else ``$REALLABOR_STATE``, else
    ``.reallabor/state.sqlite3`` next to the content folder (``content``; here if not given), so a command
    run from another folder finds the same state."""
    if option is not None:
        return option
    if settings.database_url:
        return DatabaseUrl(settings.database_url)
    if settings.state:
        return settings.state
    return content.resolve().parent / DEFAULT_STATE if content is not None else DEFAULT_STATE


class Row(Protocol):
    """A result row: by position (``row[0]``) or by column name (``row["email"]``), as ``sqlite3.Row``."""

    def __getitem__(self, key: int | str, /) -> Any: ...
    def keys(self) -> list[str]: ...
    def __len__(self) -> int: ...


class Cursor(Protocol):
    """What :meth:`Connection.execute` returns: rows to fetch or iterate, and how many rows changed."""

    @property
    def rowcount(self) -> int: ...
    @property
    def description(self) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class _PgRow:
    """A PostgreSQL row that reads like ``sqlite3.Row``."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: dict[str, int], values: Sequence[Any]) -> None:
        self._names, self._values = names, tuple(values)

    def __getitem__(self, key: int | str, /) -> Any:
        return self._values[self._names[key] if isinstance(key, str) else key]

    def keys(self) -> list[str]:
        return list(self._names)

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)


def _pg_rows(cursor: psycopg.Cursor[Any]) -> Any:
    """psycopg row factory: :class:`_PgRow` with the cursor's column names."""
    names = {column.name: index for index, column in enumerate(cursor.description or ())}
    return functools.partial(_PgRow, names)


@functools.lru_cache(maxsize=512)
def _pg_sql(sql: str) -> str:
    """A statement in PostgreSQL's placeholders: ``?`` → ``%s`` (a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _pg_params(params: Iterable[Any]) -> tuple[Any, ...]:
    """Parameters as PostgreSQL's text takes them: it cannot hold NUL, which a stranger's mail may carry
    (an iTIP UID, a subject); there it becomes U+FFFD, where SQLite keeps it."""
    return tuple(v.replace("\x00", "\ufffd") if isinstance(v, str) and "\x00" in v else v for v in params)


_PG_TYPES = (
    (re.compile(r"\bINTEGER PRIMARY KEY\b"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
)


def _pg_ddl(statement: str) -> str:
    """A migration statement in PostgreSQL's type names (the only differences the migrations have)."""
    for pattern, replacement in _PG_TYPES:
        statement = pattern.sub(replacement, statement)
    return statement


# Advisory lock keys (any two fixed numbers): every write transaction, and the migrations.
_WRITE_LOCK = 0x5245414C  # "REAL"
_MIGRATE_LOCK = 0x4D494752  # "MIGR"


class Connection:
    """One connection to the state, SQLite or PostgreSQL: the seam every module runs its SQL through.

    Autocommit: every statement commits at once; statements that belong together go in
    :func:`transaction`. Its lock is the same on both back ends: SQLite's ``BEGIN IMMEDIATE`` takes the
    file's write lock, PostgreSQL's transaction takes one advisory lock first, so two processes never
    both read and then both write, on one machine or several. The send ledger's row updates need no such
    lock and go through :meth:`write_rows` (on PostgreSQL: lock-free and in one round trip).
    """

    def __init__(self, raw: sqlite3.Connection | psycopg.Connection[Any], location: StateLocation) -> None:
        self.raw = raw
        self.location = location

    @property
    def is_postgres(self) -> bool:
        return isinstance(self.location, DatabaseUrl)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        if isinstance(self.raw, sqlite3.Connection):
            return self.raw.execute(sql, params)
        with self._errors(StateFailure.USE):
            return self.raw.execute(_pg_sql(sql), _pg_params(params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Cursor:
        if isinstance(self.raw, sqlite3.Connection):
            return self.raw.executemany(sql, rows)
        with self._errors(StateFailure.WRITE):
            cursor = self.raw.cursor()
            cursor.executemany(_pg_sql(sql), (_pg_params(row) for row in rows))
            return cursor

    @property
    def in_transaction(self) -> bool:
        if isinstance(self.raw, sqlite3.Connection):
            return self.raw.in_transaction
        from psycopg.pq import TransactionStatus

        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def wait_for_writers(self, milliseconds: int) -> None:
        """How long a write waits for another process's transaction before it fails."""
        if isinstance(self.raw, sqlite3.Connection):
            self.raw.execute(f"PRAGMA busy_timeout = {int(milliseconds)}")
        else:
            self.execute(f"SET lock_timeout = {int(milliseconds)}")

    def session_id(self) -> str:
        """PostgreSQL: this connection's server process (``pg_backend_pid``), listed while it lives."""
        return str(self.execute("SELECT pg_backend_pid()").fetchone()[0])

    def begin(self) -> None:
        """Start a write transaction with the write lock taken up front."""
        if isinstance(self.raw, sqlite3.Connection):
            self.raw.execute("BEGIN IMMEDIATE")
        else:
            self.execute("BEGIN")
            self.execute("SELECT pg_advisory_xact_lock(?)", (_WRITE_LOCK,))

    def write_rows(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """Run statements that each change rows by their key, in one transaction, and read nothing back
        (the send ledger's state changes).

        They need no read-then-write protection, so PostgreSQL takes no shared write lock (row locks
        suffice, and several senders then commit side by side) and gets all statements in one round trip
        (psycopg's pipeline mode). SQLite: :func:`transaction` as always (its one writer is the file's).
        Inside a caller's transaction they join it.
        """
        if isinstance(self.raw, sqlite3.Connection) or self.in_transaction:
            with transaction(self):
                for sql, params in statements:
                    self.execute(sql, params)
            return
        with self._errors(StateFailure.WRITE):
            try:
                with self.raw.pipeline():
                    self.raw.execute("BEGIN")
                    for sql, params in statements:
                        self.raw.execute(_pg_sql(sql), _pg_params(params))
                    self.raw.execute("COMMIT")
            finally:
                if self.in_transaction:  # a statement failed: the rest was skipped, the transaction is dead
                    self.raw.execute("ROLLBACK")

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        self.execute("ROLLBACK")

    def close(self) -> None:
        self.raw.close()

    @contextmanager
    def _errors(self, doing: StateFailure) -> Iterator[None]:
        """psycopg's errors as :class:`StateError`, naming the server (never its password)."""
        import psycopg

        try:
            yield
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise state_failed(self.location, doing, exc, reason) from None


def connect(location: StateLocation) -> Connection:
    """Open the state for writing (a file is created if missing) and bring it to :data:`LATEST_VERSION`.

    SQLite: WAL journal, foreign keys on, waits up to 10 s for another writer. The connection is in
    autocommit mode (every statement commits at once); statements that belong together go in
    :func:`transaction`, so each state change is committed before the step that depends on it.
    """
    if isinstance(location, DatabaseUrl):
        conn = _connect_postgres(location)
        # One process at a time looks at the version and migrates (CREATE TABLE IF NOT EXISTS races otherwise).
        conn.execute("SELECT pg_advisory_lock(?)", (_MIGRATE_LOCK,))
        try:
            migrate(conn, location)
        finally:
            conn.execute("SELECT pg_advisory_unlock(?)", (_MIGRATE_LOCK,))
        return conn
    path = location
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Personal data: the file is the owner's alone (SQLite gives its -wal and -shm the same mode).
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        raw = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
        raw.row_factory = sqlite3.Row
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("PRAGMA synchronous=FULL")
        raw.execute("PRAGMA foreign_keys=ON")
        conn = Connection(raw, path)
        migrate(conn, path)
    except (OSError, sqlite3.Error) as exc:
        raise state_failed(path, StateFailure.OPEN, exc) from None
    return conn


def _connect_postgres(url: DatabaseUrl) -> Connection:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        raise StateError(f"{url}: PostgreSQL needs the psycopg package; pip install 'psycopg[binary]'",
                         StateFailure.NO_PSYCOPG, str(url)) from None
    try:
        raw = psycopg.connect(url.url, autocommit=True, row_factory=_pg_rows, connect_timeout=10)
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise state_failed(url, StateFailure.OPEN, exc, reason.replace(url.url, str(url))) from None
    return Connection(raw, url)


def connect_read_only(location: StateLocation) -> Connection:
    """Open the state for reading only: nothing is created, neither the file nor a table.

    An older file is copied into memory and migrated there, so the queries of this version work on it.
    A PostgreSQL state is shared: it is brought to this version (as :func:`connect` does), then the
    session is read-only.
    """
    if isinstance(location, DatabaseUrl):
        conn = connect(location)
        conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        return conn
    path = location
    if not path.is_file():
        raise NoState(
            f"{path}: no state yet (nothing was imported or sent with this state file); "
            f"run in the project folder, or pass --state PATH or set {ENV_STATE} or {ENV_DATABASE_URL}",
            StateFailure.NO_STATE, str(path),
        )
    try:
        raw = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, timeout=10.0)
        conn = Connection(raw, path)
        version = _version(conn, path)
        if version < LATEST_VERSION:
            memory = sqlite3.connect(":memory:", isolation_level=None)
            raw.backup(memory)
            raw.close()
            raw = memory
            conn = Connection(raw, path)
            migrate(conn, path)
        raw.row_factory = sqlite3.Row
    except sqlite3.Error as exc:
        raise state_failed(path, StateFailure.READ, exc) from None
    return conn


def migrate(conn: Connection, location: StateLocation) -> None:
    """Apply the migrations the state lacks, each in one transaction with its new version number.

    On PostgreSQL :func:`connect` holds an advisory lock meanwhile: one process migrates, the others wait.
    """
    while (version := _version(conn, location)) < LATEST_VERSION:
        conn.begin()
        try:
            if _version(conn, location) == version:  # else another process migrated meanwhile
                for statement in _statements(MIGRATIONS[version]):
                    conn.execute(_pg_ddl(statement) if conn.is_postgres else statement)
                _set_version(conn, version + 1)
                if conn.is_postgres:
                    reset_identities(conn)
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
        conn.commit()


def _version(conn: Connection, location: StateLocation) -> int:
    if conn.is_postgres:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        version = int(row[0] or 0)
    else:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > LATEST_VERSION:
        raise StateError(
            f"{location}: this state file was written by a newer reallabor-mail (state version {version}, this one "
            f"knows up to {LATEST_VERSION}); update reallabor-mail", StateFailure.NEWER, str(location), str(version),
        )
    return version


def _set_version(conn: Connection, version: int) -> None:
    if conn.is_postgres:
        conn.execute("DELETE FROM schema_version")
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    else:
        conn.execute(f"PRAGMA user_version = {version}")


def reset_identities(conn: Connection) -> None:
    """PostgreSQL: move every identity column's sequence past the largest id (after rows were copied in
    with their ids, as migration 6 and ``state copy`` do), so the next insert gets a fresh id."""
    columns = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND is_identity = 'YES'"
    ).fetchall()
    for table, column in columns:
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
            f"coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)"
        )


def tables(conn: Connection) -> list[str]:
    """The state's tables (not the schema version's), sorted."""
    if conn.is_postgres:
        query = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'"
    return sorted(row[0] for row in conn.execute(query) if row[0] != "schema_version")


# Tables other rows refer to (foreign keys) are copied first.
_COPY_FIRST = ("recipients", "consent_texts")


def copy_rows(source: Connection, target: Connection, *, batch: int = 5000) -> dict[str, tuple[int, int]]:
    """Copy every table of ``source`` into ``target`` (both at :data:`LATEST_VERSION`, ``target`` empty
    or emptied here), in one transaction on the target; returns table → (rows read, rows in the target),
    counted again after the copy so a mismatch shows."""
    names = tables(source)
    order = [name for name in _COPY_FIRST if name in names] + [name for name in names if name not in _COPY_FIRST]
    counts: dict[str, tuple[int, int]] = {}
    with transaction(target):
        for name in reversed(order):
            target.execute(f"DELETE FROM {name}")
        for name in order:
            cursor = source.execute(f"SELECT * FROM {name}")
            columns = [column[0] for column in cursor.description]
            insert = f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            read = 0
            rows = iter(cursor)
            while chunk := [tuple(row) for row in itertools.islice(rows, batch)]:
                target.executemany(insert, chunk)
                read += len(chunk)
            counts[name] = (read, 0)
        if target.is_postgres:
            reset_identities(target)
    for name in order:
        counts[name] = (counts[name][0], int(target.execute(f"SELECT count(*) FROM {name}").fetchone()[0]))
    return counts


def _statements(script: str) -> Iterator[str]:
    """The SQL statements of a script, one by one (``executescript`` would commit in the middle)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {pending.strip()[:60]}")


def _reason(exc: BaseException) -> str:
    """Why SQLite cannot use a file, in words a user can act on."""
    text = str(exc)
    if "file is not a database" in text:
        return "the file is not a state database (SQLite); move it away or pass another --state"
    return text


@contextmanager
def transaction(conn: Connection) -> Iterator[Connection]:
    """One write transaction (the write lock is taken up front, :meth:`Connection.begin`, so two
    processes never both read and then both write). Inside a caller's transaction it joins it.

    ``with conn:`` is not enough here: in autocommit mode it commits but never begins.
    """
    if conn.in_transaction:
        yield conn
        return
    try:
        conn.begin()
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back itself (disk full)
                conn.rollback()
            raise
        conn.commit()
    except sqlite3.Error as exc:  # disk full, read-only, locked for longer than the timeout
        raise state_failed(conn.location, StateFailure.WRITE, exc, str(exc)) from None


def utc_stamp(moment: dt.datetime) -> str:
    """How the state file stores a moment: UTC, ISO 8601, to the second (sorts as text)."""
    if moment.tzinfo is None:
        raise ValueError("times must be time-zone aware")
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
