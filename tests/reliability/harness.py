"""Running the real ``reallabor-mail`` command against real servers, for the reliability rows.

A state file filled with subscribers, a recording SMTP server in its own process
(``python -m tests.smtp_faults``, one line per accepted message), and the environment and command
line of ``send``.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from reallabor_mail.db import DatabaseUrl, StateLocation, connect, transaction
from reallabor_mail.recipients import store as recipients
from reallabor_mail.recipients.person import Recipient
from tests.conftest import ROOT, free_port

SECRET = "reliability-secret-0123456789"
NOW = dt.datetime(2023, 10, 1, 9, 0, tzinfo=dt.UTC)
NEWSLETTER = Path("newsletters") / "2023-3.md"
CAMPAIGN = "newsletter:2023-3"
CLI = [sys.executable, "-c", "from reallabor_mail.cli.main import run; run()"]


def person(i: int, domain: str = "example.org") -> Recipient:
    """Subscriber number ``i``: alternating salutations, every third one Ukrainian."""
    return Recipient(f"person{i:05d}@{domain}", "Frau" if i % 2 else "Herr", None, f"V{i}", f"N{i}",
                     language="uk" if i % 3 == 0 else "de")  # fmt: skip


def populate(state: StateLocation, numbers: range, list_name: str = "newsletter", domain: str = "example.org") -> None:
    """Subscribe ``person(i, domain)`` for every i in ``numbers`` (one transaction)."""
    conn = connect(state)
    with transaction(conn):
        for i in numbers:
            recipients.add_recipient(conn, person(i, domain), list_name, status="subscribed", source="test", now=NOW)
    conn.close()


def accepted(log: Path) -> list[str]:
    """The recipients the recording server accepted, one per message, in order."""
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


@contextmanager
def recording_server(log: Path) -> Iterator[int]:
    """The crash-test SMTP server of tests/smtp_faults.py in its own process; yields its port."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.smtp_faults", str(port), str(log)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        yield port
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)


@contextmanager
def serving_smtp(handler: object, **options: Any) -> Iterator[int]:
    """An aiosmtpd server with ``handler`` (and Controller ``options``: TLS, auth) in this process; yields the port."""
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def send_env(state: StateLocation, port: int, **extra: str) -> dict[str, str]:
    """The environment of a ``send`` to the local server at ``port`` (no user, no DKIM), on ``state`` (a file,
    or a PostgreSQL database)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REALLABOR_SMTP_", "REALLABOR_DKIM"))}
    env.update(
        REALLABOR_SECRET=SECRET, REALLABOR_SMTP_HOST="127.0.0.1",
        REALLABOR_SMTP_PORT=str(port), REALLABOR_SMTP_SECURITY="none",
    )  # fmt: skip
    if isinstance(state, DatabaseUrl):
        env["REALLABOR_DATABASE_URL"] = state.url
    else:
        env["REALLABOR_STATE"] = str(state)
    env.update(extra)
    return env


def send_command(content: Path, *options: str) -> list[str]:
    """``reallabor-mail send content/newsletters/2023-3.md --yes OPTIONS``."""
    return [*CLI, "send", str(content / NEWSLETTER), "--yes", *options]


def ledger_states(state: StateLocation, campaign: str = CAMPAIGN) -> dict[str, str]:
    """email → ledger state of a campaign, read from the state file."""
    conn = connect(state)
    try:
        rows = conn.execute("SELECT email, state FROM send_ledger WHERE campaign = ?", (campaign,)).fetchall()
    finally:
        conn.close()
    return {email: row_state for email, row_state in rows}


@dataclass(frozen=True)
class Tally:
    """What a crash run delivered against what its ledger says: the figures every crash row reports."""

    received: Counter[str]  # address → messages the server accepted for it
    rows: dict[str, str]  # address → ledger state
    unknown: set[str]  # rows the ledger lists as unknown
    lost: list[str]  # people never reached, or 'sent' without exactly one message, or left in another state
    duplicates: int  # messages beyond the first per address
    unlisted: list[str]  # unknown rows that `send --status` did not name

    @property
    def doubled_unlisted(self) -> list[str]:
        """Addresses that got two messages although their row is not unknown (a broken promise)."""
        return [email for email, n in self.received.items() if n > 1 and email not in self.unknown]


def tally(log: Path, state: StateLocation, count: int, status_output: str) -> Tally:
    """Count a crash run: the recording server's log of ``count`` people against the ledger and ``--status``."""
    received = Counter(accepted(log))
    rows = ledger_states(state)
    unknown = {email for email, s in rows.items() if s == "unknown"}
    everyone = [person(i).email for i in range(count)]
    lost = [email for email, s in rows.items() if s == "sent" and received[email] != 1]
    lost += [email for email in everyone if email not in rows]
    lost += [email for email, s in rows.items() if s not in ("sent", "unknown")]
    duplicates = sum(n - 1 for n in received.values() if n > 1)
    unlisted = [email for email in unknown if email not in status_output]
    return Tally(received, rows, unknown, lost, duplicates, unlisted)
