"""Sending to Postfix's ``smtp-sink`` with the state in SQLite and in PostgreSQL, with 1, 2 and 4 workers (issue 15).

    PYTHONPATH=. .venv/bin/python bench/postgres.py [COUNT]     (default 20,000 recipients, 4 connections each)

Each worker is a ``reallabor-mail send --resume`` process of its own; they share the campaign by claiming
ledger rows. SQLite has one sender per campaign (the campaign lock), so it runs with one worker only.
PostgreSQL is a throw-away cluster in a temp folder (tests/pg.py), never the system service. Prints one
row per run: messages per second from the workers' start until the last one ended (the command's start-up,
ledger rows, composing, SMTP, commits).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.run import NEWSLETTER, make_state, smtp_env, smtp_sink
from reallabor_mail.db import DatabaseUrl, StateLocation
from tests import pg

CONNECTIONS = 4
CLI = [sys.executable, "-c", "from reallabor_mail.cli.main import run; run()"]


def rate(state: StateLocation, port: int, count: int, workers: int) -> float:
    """Messages per second of ``workers`` senders started together on one campaign."""
    make_state(state, count)  # type: ignore[arg-type]  # (annotated Path; connect() takes a URL as well)
    env = smtp_env(port, Path("unused"))
    if isinstance(state, DatabaseUrl):
        env["REALLABOR_DATABASE_URL"] = state.url
    else:
        env["REALLABOR_STATE"] = str(state)
    command = [*CLI, "send", str(NEWSLETTER), "--yes", "--resume", "--connections", str(CONNECTIONS)]
    started = time.perf_counter()
    senders = [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
               for _ in range(workers)]  # fmt: skip
    for sender in senders:
        _, errors = sender.communicate()
        if sender.returncode != 0:
            raise SystemExit(f"{state}: a worker failed: {errors}")
    return count / (time.perf_counter() - started)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        cluster = pg.start_cluster()
        server = next(cluster)
        try:
            with smtp_sink(workdir) as sink:
                sqlite = rate(workdir / "state.sqlite3", sink.port, count, 1)
                print(f"| sent/s to smtp-sink, {count:,} recipients, SQLite state, 1 worker × {CONNECTIONS} conn. "
                      f"| {sqlite:,.0f} |", flush=True)  # fmt: skip
                for workers in (1, 2, 4):
                    postgres = rate(DatabaseUrl(server.fresh_database()), sink.port, count, workers)
                    print(f"| sent/s to smtp-sink, {count:,} recipients, PostgreSQL state, {workers} worker(s) × "
                          f"{CONNECTIONS} conn. | {postgres:,.0f} |", flush=True)  # fmt: skip
        finally:
            cluster.close()


if __name__ == "__main__":
    main()
