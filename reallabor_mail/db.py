"""The state database (contract §3): one SQLite file for recipients, consent, the send ledger, event
versions and what the mailbox brought back (answers, bounces), with a schema version (``PRAGMA user_version``).

Every table is created here, by numbered migrations: :data:`MIGRATIONS` ``[n - 1]`` brings a file from
version ``n - 1`` to ``n``. :func:`connect` (for commands that write) applies those a file still lacks,
each in one transaction; :func:`connect_read_only` (``send --status``, ``recipients list``/``export``)
never creates a file or a table: with no state file it says so, and a file from an older version is
migrated in memory only. A file from before numbered migrations (version 0 with the tables present) is
version 1: migration 1 is the tables that code created, ``CREATE … IF NOT EXISTS`` verbatim.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reallabor_mail.errors import ReallaborError
from reallabor_mail.settings import ENV_STATE, Settings

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
)
LATEST_VERSION = len(MIGRATIONS)


class StateError(ReallaborError):
    """The state file cannot be opened or written."""


class NoState(StateError):
    """A command that only reads found no state file."""


def state_path(option: Path | None, settings: Settings, content: Path | None = None) -> Path:
    """``--state PATH``, else ``$REALLABOR_STATE``, else ``.reallabor/state.sqlite3`` next to the content
    folder (``content``; here if not given), so a command run from another folder finds the same state."""
    if option or settings.state:
        return option or settings.state or DEFAULT_STATE
    return content.resolve().parent / DEFAULT_STATE if content is not None else DEFAULT_STATE


def connect(path: Path) -> sqlite3.Connection:
    """Open the state file for writing (created if missing) and bring it to :data:`LATEST_VERSION`.

    WAL journal, foreign keys on, waits up to 10 s for another writer. The connection is in autocommit
    mode (every statement commits at once); statements that belong together go in :func:`transaction`,
    so each state change is committed before the step that depends on it.
    """
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Personal data: the file is the owner's alone (SQLite gives its -wal and -shm the same mode).
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        conn = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(conn, path)
    except (OSError, sqlite3.Error) as exc:
        raise StateError(f"{path}: cannot open the state database: {_reason(exc)}") from None
    return conn


def connect_read_only(path: Path) -> sqlite3.Connection:
    """Open the state file for reading only: nothing is created, neither the file nor a table.

    An older file is copied into memory and migrated there, so the queries of this version work on it.
    """
    if not path.is_file():
        raise NoState(
            f"{path}: no state yet (nothing was imported or sent with this state file); "
            f"run in the project folder, or pass --state PATH or set {ENV_STATE}"
        )
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, timeout=10.0)
        version = _version(conn, path)
        if version < LATEST_VERSION:
            memory = sqlite3.connect(":memory:", isolation_level=None)
            conn.backup(memory)
            conn.close()
            conn = memory
            migrate(conn, path)
        conn.row_factory = sqlite3.Row
    except sqlite3.Error as exc:
        raise StateError(f"{path}: cannot read the state database: {_reason(exc)}") from None
    return conn


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply the migrations the file lacks, each in one transaction with its new version number."""
    while (version := _version(conn, path)) < LATEST_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if _version(conn, path) == version:  # else another process migrated meanwhile
                for statement in _statements(MIGRATIONS[version]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _version(conn: sqlite3.Connection, path: Path) -> int:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > LATEST_VERSION:
        raise StateError(
            f"{path}: this state file was written by a newer reallabor-mail (state version {version}, this one "
            f"knows up to {LATEST_VERSION}); update reallabor-mail"
        )
    return version


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
