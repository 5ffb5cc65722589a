"""Guards found by the reliability suite (tests/reliability/), as quick regular tests: one ``send`` per
campaign at a time, a failed ledger commit ends the run instead of hanging it, a state file that cannot
be written is an error naming the file (not a traceback), an unsubscribe during a send is honoured,
and a broken UTF-16 recipient file is refused by name.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from reallabor_mail.db import StateError, connect, transaction
from reallabor_mail.delivery.campaign import StoreAudience, campaign_running, campaign_status, lock_campaign
from reallabor_mail.delivery.engine import deliver_all
from reallabor_mail.delivery.ledger import Ledger
from reallabor_mail.delivery.transport import MaildirTransport
from reallabor_mail.errors import ReallaborError
from reallabor_mail.recipients import spreadsheet
from reallabor_mail.recipients import store as recipients
from reallabor_mail.recipients.person import Recipient
from tests.conftest import ROOT
from tests.test_delivery_faults import ListAudience, compose, people

NOW = dt.datetime(2023, 10, 5, 9, 0, tzinfo=dt.UTC)
FAIL_ON_START = """CREATE TRIGGER full BEFORE UPDATE ON send_ledger WHEN NEW.state = 'sending' AND NEW.id >= 3
BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"""


def test_a_campaign_is_sent_by_one_process_at_a_time(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite3"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from reallabor_mail.delivery.campaign import lock_campaign; "
         f" lock_campaign(Path({str(state)!r}), 'newsletter:a'); print('locked', flush=True); "
         "time.sleep(60)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(ReallaborError, match="another `send` of newsletter:a is running"):
            lock_campaign(state, "newsletter:a")
        other = lock_campaign(state, "newsletter:b")  # another campaign is not held up
    finally:
        holder.kill()  # SIGKILL: the kernel drops the lock with the process
        holder.wait()
    again = lock_campaign(state, "newsletter:a")
    for lock in (other, again):
        lock.release()


def test_status_tells_a_running_send_from_one_that_ended_abruptly(tmp_path: Path) -> None:
    """``--status`` shows rows in flight as unknown only when no send of the campaign runs (it was killed)."""
    state = tmp_path / "state.sqlite3"
    ledger = Ledger(connect(state), lambda: NOW)
    ledger.add("newsletter:a", people(3))
    first = next(ledger.due("newsletter:a"))
    ledger.apply([ledger.start_op(first, "<1@example.org>")])  # in flight, as a killed run leaves it
    assert not campaign_running(state, "newsletter:a") and not Path(f"{state}.lock").exists()  # creates nothing
    ended = campaign_status(ledger, "newsletter:a", "A", "a.md", running=False)
    assert ended.summary["unknown"] == 1 and ended.summary["sending"] == 0
    assert [row.email for row in ended.unknown] == [first.email]
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; from pathlib import Path; "
         "from reallabor_mail.delivery.campaign import lock_campaign; "
         f" lock_campaign(Path({str(state)!r}), 'newsletter:a'); print('locked', flush=True); time.sleep(60)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert campaign_running(state, "newsletter:a") and not campaign_running(state, "newsletter:b")
    finally:
        holder.kill()
        holder.wait()
    assert not campaign_running(state, "newsletter:a")
    running = campaign_status(ledger, "newsletter:a", "A", "a.md", running=True)
    assert running.summary["sending"] == 1 and running.unknown == []


def test_a_ledger_that_cannot_be_written_ends_the_run_with_its_path(tmp_path: Path) -> None:
    ledger = Ledger(connect(tmp_path / "state.sqlite3"), lambda: NOW)
    ledger.add("c", people(40))
    ledger.conn.execute(FAIL_ON_START)
    run = deliver_all(ledger, "c", compose, MaildirTransport(tmp_path / "out"), sender="s@example.org",
                      audience=ListAudience(), connections=4)  # fmt: skip

    async def bounded() -> None:
        await asyncio.wait_for(run, timeout=30)  # before the fix, starts queued behind the failed commit hung

    with pytest.raises(StateError, match=r"state\.sqlite3: .*cannot write the state database: database or disk"):
        asyncio.run(bounded())
    summary = ledger.summary("c")
    delivered = len(list((tmp_path / "out" / "new").iterdir()))
    started = summary["sent"] + summary["sending"]  # `sending` ones become `unknown` on --resume
    assert delivered <= started <= 2 and summary["pending"] == 40 - started  # the failed starts stay owed


def test_a_failed_write_is_a_state_error_naming_the_file(tmp_path: Path) -> None:
    conn = connect(tmp_path / "state.sqlite3")
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.execute("CREATE TRIGGER full BEFORE INSERT ON t BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
    expected = r"state\.sqlite3: cannot write the state database: database or disk is full"
    with pytest.raises(StateError, match=expected), transaction(conn):
        conn.execute("INSERT INTO t VALUES (1)")
    assert not conn.in_transaction


def test_an_unsubscribe_during_a_send_is_honoured(tmp_path: Path) -> None:
    conn = connect(tmp_path / "state.sqlite3")
    anna = Recipient("anna@example.org", first_name="Anna")
    recipients.add_recipient(conn, anna, "newsletter", status="subscribed", source="test", now=NOW)
    secret = b"guards-secret-0123456789"
    to_list = StoreAudience(conn, secret, lambda: NOW, ("newsletter",))
    test_message = StoreAudience(conn, secret, lambda: NOW)
    assert to_list.not_to_send([anna.email]) == set()
    recipients.unsubscribe(conn, anna.email, "newsletter", source="one-click (RFC 8058)", now=NOW)
    assert to_list.not_to_send([anna.email]) == {anna.email}  # asked before every batch: earlier rows are skipped
    assert to_list.reopen().not_to_send([anna.email]) == {anna.email}  # also in the compose process
    assert test_message.not_to_send([anna.email]) == set()  # a --to test message needs no subscription


def test_a_broken_utf16_file_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes("E-Mail;Vorname\nanna@example.org;Anna\n".encode("utf-16") + b"\x00\xdc")  # a lone surrogate
    conn = connect(tmp_path / "state.sqlite3")
    with pytest.raises(ReallaborError, match=r"people\.csv: row 3: byte 0x00 is not utf-16 text"):
        spreadsheet.import_csv(conn, path, "newsletter", secret=b"guards-secret-0123456789", by="t", now=NOW)
