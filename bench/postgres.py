"""Sending to Postfix's ``smtp-sink`` with the state in SQLite and in PostgreSQL (issue 15).

    PYTHONPATH=. .venv/bin/python bench/postgres.py [COUNT]     (default 20,000 recipients, 4 connections)

PostgreSQL is a throw-away cluster in a temp folder (tests/pg.py), never the system service. Prints one
row per back end: messages per second of the send phase (ledger rows, composing, SMTP, commits).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from bench.run import NEWSLETTER, environment, make_state, smtp_env, smtp_sink
from reallabor_mail.db import DatabaseUrl, StateLocation
from reallabor_mail.delivery.campaign import SendRequest, execute, prepare
from reallabor_mail.settings import Settings
from tests import pg

CONNECTIONS = 4


def rate(state: StateLocation, port: int, count: int) -> float:
    make_state(state, count)  # type: ignore[arg-type]  # (annotated Path; connect() takes a URL as well)
    values = smtp_env(port, Path("unused"))
    if isinstance(state, DatabaseUrl):
        values["REALLABOR_DATABASE_URL"] = state.url
    else:
        values["REALLABOR_STATE"] = str(state)
    with environment(values):
        request = SendRequest(NEWSLETTER, connections=CONNECTIONS, state=state)
        prepared = prepare(request, settings=Settings.from_environ())
        started = time.perf_counter()
        report = execute(prepared)
        elapsed = time.perf_counter() - started
    if report.sent != count:
        raise SystemExit(f"{state}: {report.sent} of {count} sent")
    return count / elapsed


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        cluster = pg.start_cluster()
        server = next(cluster)
        try:
            with smtp_sink(workdir) as sink:
                sqlite = rate(workdir / "state.sqlite3", sink.port, count)
                postgres = rate(DatabaseUrl(server.fresh_database()), sink.port, count)
        finally:
            cluster.close()
    print(f"| sent/s to smtp-sink, {count:,} recipients, {CONNECTIONS} conn., SQLite state | {sqlite:,.0f} |")
    print(f"| sent/s to smtp-sink, {count:,} recipients, {CONNECTIONS} conn., PostgreSQL state | {postgres:,.0f} |")


if __name__ == "__main__":
    main()
