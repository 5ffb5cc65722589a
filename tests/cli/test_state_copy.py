"""``reallabor-mail state copy SRC DST``: a SQLite state into PostgreSQL and back, counted on both sides."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

from reallabor_mail.db import LATEST_VERSION, Connection, DatabaseUrl, StateLocation, connect, tables
from reallabor_mail.delivery.ledger import Ledger
from reallabor_mail.recipients import store as rcp
from reallabor_mail.recipients.person import Recipient

from ..conftest import ROOT

NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
SECRET = b"state-copy-secret-0123456789"
PASSWORD = "s3cr3t-Pa55"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "reallabor-mail"
    env = {"PATH": "/usr/bin:/bin", "REALLABOR_LANG": "en", "PYTHONPATH": str(ROOT)}  # this tree's package
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120, env=env)


def fill(state: StateLocation, count: int) -> None:
    conn = connect(state)
    people = [Recipient(f"person{n}@example.org", first_name=f"Pérson {n}", language="uk") for n in range(count)]
    for person in people:
        rcp.add_recipient(conn, person, "newsletter", status="subscribed", source="test", now=NOW)
    rcp.erase(conn, "person0@example.org", SECRET, now=NOW)
    Ledger(conn, lambda: NOW).add("newsletter:2023-3", ((p, "newsletter") for p in people[1:]))
    conn.close()


def rows(conn: Connection) -> dict[str, list[tuple[object, ...]]]:
    return {name: sorted((tuple(row) for row in conn.execute(f"SELECT * FROM {name}")), key=repr)
            for name in tables(conn)}  # fmt: skip


def test_a_sqlite_state_moves_into_postgresql_and_back_with_every_row(tmp_path: Path, pg_url: str) -> None:
    source = tmp_path / "state.sqlite3"
    fill(source, 25)
    moved = cli("state", "copy", str(source), pg_url)
    assert moved.returncode == 0, moved.stderr
    assert "send_ledger" in moved.stdout and "rows copied" in moved.stdout and "the counts match" in moved.stdout
    original, copied = connect(source), connect(DatabaseUrl(pg_url))
    assert rows(copied) == rows(original) and len(rows(copied)["send_ledger"]) == 24
    # the ids go on after the copied ones: a new person gets a fresh id
    rcp.add_recipient(copied, Recipient("new@example.org"), "newsletter", status="subscribed", source="t", now=NOW)
    assert rcp.find(copied, "new@example.org") is not None
    back = tmp_path / "back.sqlite3"
    returned = cli("state", "copy", pg_url, str(back))
    assert returned.returncode == 0, returned.stderr
    assert rows(connect(back)) == rows(copied)


def test_a_target_with_data_is_refused_unless_forced(tmp_path: Path, pg_url: str) -> None:
    fill(tmp_path / "a.sqlite3", 3)
    fill(DatabaseUrl(pg_url), 5)
    refused = cli("state", "copy", str(tmp_path / "a.sqlite3"), pg_url)
    assert refused.returncode == 1 and "the target already holds data" in refused.stderr and "--force" in refused.stderr
    assert len(rows(connect(DatabaseUrl(pg_url)))["recipients"]) == 4  # untouched (one of the five erased)
    forced = cli("state", "copy", str(tmp_path / "a.sqlite3"), pg_url, "--force")
    assert forced.returncode == 0, forced.stderr
    assert len(rows(connect(DatabaseUrl(pg_url)))["recipients"]) == 2


def test_the_password_of_a_database_url_is_never_shown(tmp_path: Path, pg_cluster: object) -> None:
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/nothing"
    assert PASSWORD not in str(DatabaseUrl(url)) and PASSWORD not in repr(DatabaseUrl(url))
    fill(tmp_path / "a.sqlite3", 2)
    failed = cli("state", "copy", str(tmp_path / "a.sqlite3"), url)
    assert failed.returncode == 1 and "cannot open the state database" in failed.stderr
    assert PASSWORD not in failed.stderr + failed.stdout and "postgres:***@127.0.0.1:1" in failed.stderr


def test_processes_that_start_at_once_on_a_new_database_migrate_it_once(pg_url: str) -> None:
    """Eight processes open a new PostgreSQL state together (web servers and workers started by one
    systemd target): each finds the tables there, one process created them."""
    script = "import sys; from reallabor_mail.db import DatabaseUrl, connect; connect(DatabaseUrl(sys.argv[1]))"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    starts = [subprocess.Popen([sys.executable, "-c", script, pg_url], env=env, stderr=subprocess.PIPE, text=True)
              for _ in range(8)]  # fmt: skip
    errors = [process.communicate(timeout=60)[1] for process in starts]
    assert [process.returncode for process in starts] == [0] * 8, errors
    conn = connect(DatabaseUrl(pg_url))
    assert [tuple(row) for row in conn.execute("SELECT version FROM schema_version")] == [(LATEST_VERSION,)]
