"""The state file has a version: numbered migrations at connect, a file from before them kept as it is,
read-only commands that create nothing, and one line (never a traceback) for a file that is not a database.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reallabor_mail.cli.main import main, run
from reallabor_mail.db import LATEST_VERSION, connect
from tests.conftest import SmtpServer

SECRET = "test-secret-0123456789abcdef"
NEWSLETTER = "newsletters/2023-3.md"
EVENT = "events/2024-06-19-abschlussveranstaltung.md"

# The tables as the code before numbered migrations created them (``git show 476354a:`` of
# recipients/store.py SCHEMA, delivery/ledger.py SCHEMA and render/ics.py _SCHEMA), so a state file
# written by that code can be made here without it.
OLD_SCHEMA = """
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
CREATE TABLE IF NOT EXISTS event_versions (
    event       TEXT    NOT NULL,  -- the event's file name (stem): its identity, as in its UID
    sequence    INTEGER NOT NULL,
    fingerprint TEXT    NOT NULL,  -- canonical JSON of what the calendar entry showed
    sent_at     TEXT    NOT NULL,  -- UTC, ISO 8601
    PRIMARY KEY (event, sequence)
);
"""
OLD_ROWS = """
INSERT INTO recipients (id, email, first_name, last_name, language, created, updated)
    VALUES (1, 'anke@dortmund.example', 'Anke', 'Brockmann', 'de', '2023-09-01T09:00:00Z', '2023-09-01T09:00:00Z');
INSERT INTO recipients (id, email, first_name, last_name, language, created, updated)
    VALUES (2, 'olena@dnipro.example', 'Олена', 'Коваль', 'uk', '2023-09-01T09:00:00Z', '2023-09-01T09:00:00Z');
INSERT INTO memberships VALUES (1, 'newsletter', 'subscribed', '2023-09-01T09:00:00Z');
INSERT INTO memberships VALUES (2, 'newsletter', 'subscribed', '2023-09-01T09:00:00Z');
INSERT INTO consent_events (recipient_id, list_name, action, at, source)
    VALUES (1, 'newsletter', 'import', '2023-09-01T09:00:00Z', 'old.csv');
INSERT INTO send_ledger (campaign, email, list_name, state, reply, message_id, attempts, updated)
    VALUES ('newsletter:2023-3', 'anke@dortmund.example', 'newsletter', 'sent', '250 OK', '<a@x>', 1,
            '2023-09-02T09:00:00Z');
INSERT INTO event_versions VALUES ('2024-06-19-abschlussveranstaltung', 0, '{}', '2023-09-02T09:00:00+00:00');
"""


@pytest.fixture
def env(tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """SMTP settings for the recording server; the state file's path (not created)."""
    for key in ("REALLABOR_SMTP_USER", "REALLABOR_SMTP_PASSWORD", "REALLABOR_DKIM_KEY", "REALLABOR_STATE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("REALLABOR_SECRET", SECRET)
    monkeypatch.setenv("REALLABOR_SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("REALLABOR_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("REALLABOR_SMTP_SECURITY", "none")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "state" / "state.sqlite3"


def old_state_file(path: Path) -> None:
    """A state file as the old code left it: its tables and rows, no user_version."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.executescript(OLD_SCHEMA + OLD_ROWS)
    conn.close()


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=True)


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def files_in(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_a_state_file_from_before_versions_is_version_1_and_keeps_its_data(
    env: Path, content_copy: Path, smtp_server: SmtpServer
) -> None:
    old_state_file(env)
    status = cli("send", str(content_copy / NEWSLETTER), "--status", "--state", str(env))
    assert status.exit_code == 0, status.output
    assert "1 sent · 0 retry later" in status.output
    assert user_version(env) == 0  # a read-only command does not even upgrade the file
    listed = cli("recipients", "list", "--state", str(env))
    assert listed.exit_code == 0, listed.output
    assert "anke@dortmund.example" in listed.output and "olena@dnipro.example" in listed.output

    sent = cli("send", str(content_copy / NEWSLETTER), "--yes", "--state", str(env))
    assert sent.exit_code == 0, sent.output
    assert user_version(env) == LATEST_VERSION >= 1
    assert [m.rcpt_tos for m in smtp_server.messages] == [["olena@dnipro.example"]]  # Anke had it already
    conn = sqlite3.connect(env)
    assert conn.execute("SELECT count(*) FROM consent_events").fetchone()[0] == 1
    assert conn.execute("SELECT reply FROM send_ledger WHERE email = 'anke@dortmund.example'").fetchone()[0] == "250 OK"
    assert conn.execute("SELECT count(*) FROM event_versions").fetchone()[0] == 1


def test_a_new_state_file_gets_every_table_and_the_latest_version(env: Path, tmp_path: Path) -> None:
    csv = tmp_path / "people.csv"
    csv.write_text("email;first_name\nanke@dortmund.example;Anke\n", encoding="utf-8")
    imported = cli("recipients", "import", str(csv), "--list", "newsletter", "--by", "test", "--state", str(env))
    assert imported.exit_code == 0, imported.output
    assert user_version(env) == LATEST_VERSION
    conn = sqlite3.connect(env)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"recipients", "memberships", "consent_events", "send_ledger", "event_versions", "web_signup_attempts",
            "web_confirmation_outbox"} <= tables


@pytest.mark.parametrize("command", [
    ("send", NEWSLETTER, "--status"), ("recipients", "list"), ("recipients", "export", "anke@dortmund.example"),
], ids=["send-status", "recipients-list", "recipients-export"])  # fmt: skip
def test_read_only_commands_without_state_say_so_and_create_nothing(
    env: Path, content_copy: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    args = [str(content_copy / a) if a == NEWSLETTER else a for a in command]
    before = files_in(tmp_path)
    result = cli(*args, "--state", str(env))
    assert result.exit_code == 1
    assert f"{env}: no state yet" in str(result.exception) and "\n" not in str(result.exception)
    assert files_in(tmp_path) == before
    default = cli(*args)  # the default place (.reallabor/state.sqlite3 in the working folder)
    assert default.exit_code == 1 and "no state yet" in str(default.exception)
    assert files_in(tmp_path) == before


@pytest.mark.parametrize("command", [
    ("send", NEWSLETTER, "--status"), ("send", NEWSLETTER, "--yes"), ("recipients", "list"),
], ids=["send-status", "send", "recipients-list"])  # fmt: skip
def test_a_state_file_that_is_not_a_database_is_one_line_naming_it(
    env: Path, content_copy: Path, command: tuple[str, ...], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    env.parent.mkdir(parents=True)
    env.write_text("Liebe Kolleginnen, hier die Adressliste …\n" * 100, encoding="utf-8")
    args = [str(content_copy / a) if a == NEWSLETTER else a for a in command]
    monkeypatch.setattr("sys.argv", ["reallabor-mail", *args, "--state", str(env)])
    with pytest.raises(SystemExit) as exit_:
        run()
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{env}: ") and "not a" in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_a_state_file_from_a_newer_version_is_refused(env: Path, content_copy: Path) -> None:
    old_state_file(env)
    conn = sqlite3.connect(env)
    conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    conn.close()
    for option in ("--status", "--yes"):
        result = cli("send", str(content_copy / NEWSLETTER), option, "--state", str(env))
        assert result.exit_code == 1 and str(result.exception).startswith(f"{env}: ")
        assert "newer" in str(result.exception)


def test_an_old_state_file_with_only_recipients_is_read_without_adding_the_missing_tables(
    env: Path, content_copy: Path
) -> None:
    """The old code created each table on first use: a file that was only imported into has no ledger yet."""
    env.parent.mkdir(parents=True)
    conn = sqlite3.connect(env)
    conn.executescript(OLD_SCHEMA[: OLD_SCHEMA.index("CREATE TABLE IF NOT EXISTS send_ledger")])
    conn.close()
    status = cli("send", str(content_copy / NEWSLETTER), "--status", "--state", str(env))
    assert status.exit_code == 0, status.output
    assert "0 sent · 0 retry later · 0 failed · 0 unknown · 0 skipped · 0 not yet sent" in status.output
    conn = sqlite3.connect(env)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "send_ledger" not in tables and user_version(env) == 0


def test_a_new_state_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """The state file holds personal data: mode 600, also for the journal files SQLite makes beside it."""
    path = tmp_path / "state" / "state.sqlite3"
    conn = connect(path)
    conn.execute("CREATE TABLE t (x)")
    for file in path.parent.iterdir():
        assert file.stat().st_mode & 0o077 == 0, f"{file.name}: {oct(file.stat().st_mode)}"
    assert path.parent.stat().st_mode & 0o077 == 0
    conn.close()
