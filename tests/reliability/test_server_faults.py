"""Server faults: a real aiosmtpd server (tests/smtp_faults.py) that does everything wrong at once.

The real newsletter is sent with :func:`reallabor_mail.delivery.campaign.send` (real rendering, compose process,
ledger, suppression list) to a server without 8BITMIME that throws a 421 storm, answers 450/451/452
once or always, 550 5.1.1, 552 and 554 5.7.1 for a domain, and drops the connection in DATA and
between messages. A second run uses a server slower than our timeout. Every recipient must end in
the state issue 4 defines; nothing stays pending or sending; nobody gets a message twice.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from reallabor_mail.db import connect
from reallabor_mail.delivery.campaign import SendRequest, send
from reallabor_mail.delivery.engine import RetryPolicy, deliver_all
from reallabor_mail.delivery.ledger import Ledger
from reallabor_mail.delivery.transport import SmtpSettings, SmtpTransport
from reallabor_mail.recipients import store as recipients
from reallabor_mail.settings import Settings
from tests.reliability.conftest import Row
from tests.reliability.harness import NEWSLETTER, NOW, SECRET, ledger_states, person, populate, serving_smtp
from tests.smtp_faults import FaultHandler, Faults
from tests.test_delivery_faults import ListAudience, compose, people

COUNT = 1500  # recipients per run on example.org (plus BLOCKED on blocked.example)
BLOCKED = 30
FAST = RetryPolicy(attempts=3, delay=0.01, stop_after=25)
SLOW = 1.5  # seconds the slow server waits before a reply, against our timeout of TIMEOUT
TIMEOUT = 0.5


class HarshHandler(FaultHandler):
    """FaultHandler plus: no 8BITMIME, a close right after an accepted message, slow replies to some."""

    def __init__(self, faults: Faults, drop_after: set[str], slow: set[str] | None = None) -> None:
        super().__init__(faults)
        self.drop_after, self.slow = drop_after, slow  # slow None: every reply is slow
        self.eight_bit: list[str] = []  # recipients of messages with bytes above 127

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:  # fmt: skip
        responses = await super().handle_EHLO(server, session, envelope, hostname, responses)
        return [line for line in responses if "8BITMIME" not in line]

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if self.slow is None or address in self.slow:
            await asyncio.sleep(SLOW)
        return await super().handle_RCPT(server, session, envelope, address, options)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if reply.startswith("250"):
            if any(byte > 127 for byte in envelope.original_content):
                self.eight_bit.extend(envelope.rcpt_tos)
            if self.drop_after.intersection(envelope.rcpt_tos):
                self.drop_after.difference_update(envelope.rcpt_tos)
                self._close_soon(server)
        return reply


def address(i: int) -> str:
    return person(i).email


def faults_and_expectations() -> tuple[Faults, set[str], dict[str, str]]:
    """The faults, who is dropped after their message, and the state every address must end in."""
    expect = {address(i): "sent" for i in range(COUNT)}
    faults = Faults(storm=20)
    once = ("450 4.2.0 Mailbox busy", "451 4.7.1 Greylisted, try again later", "452 4.5.3 Insufficient storage")
    for n, i in enumerate(range(0, COUNT, 15)):  # 100 temporary refusals that pass on the second try
        faults.rcpt_once[address(i)] = once[n % 3]
    for n, i in enumerate(range(7, COUNT, 75)):  # 20 that stay temporary: left for --retry-failed
        faults.rcpt[address(i)] = once[n % 3]
        expect[address(i)] = "retry"
    for i in range(11, COUNT, 75):  # 20 unknown users: failed and suppressed
        faults.rcpt[address(i)] = f"550 5.1.1 <{address(i)}>: Recipient address rejected: User unknown"
        expect[address(i)] = "failed"
    for i in range(13, COUNT, 150):  # 10 full mailboxes: failed, not suppressed
        faults.rcpt[address(i)] = "552 5.2.2 Mailbox full"
        expect[address(i)] = "failed"
    faults.domain["blocked.example"] = "554 5.7.1 Service unavailable; client host blocked using RBL"
    expect.update({person(i, "blocked.example").email: "retry" for i in range(BLOCKED)})
    faults.drop_in_data = {address(i) for i in range(4, COUNT, 75)}  # 20 dropped mid-DATA
    drop_after = {address(i) for i in range(9, COUNT, 60)}  # 25 closed right after their message
    return faults, drop_after, expect


@pytest.mark.parametrize("pipelining", [False, True], ids=["one-by-one", "pipelining"])
def test_every_fault_at_once_ends_as_issue_4_defines(
    tmp_path: Path, content_copy: Path, monkeypatch: pytest.MonkeyPatch, row: Row, pipelining: bool
) -> None:
    state = tmp_path / "state.sqlite3"
    populate(state, range(COUNT))
    populate(state, range(BLOCKED), domain="blocked.example")
    faults, drop_after, expect = faults_and_expectations()
    faults.pipelining = pipelining
    handler = HarshHandler(faults, drop_after, slow=set())
    monkeypatch.setenv("REALLABOR_SECRET", SECRET)
    with serving_smtp(handler) as port:
        env = {"REALLABOR_SMTP_HOST": "127.0.0.1", "REALLABOR_SMTP_PORT": str(port),
               "REALLABOR_SMTP_SECURITY": "none"}  # fmt: skip
        request = SendRequest(file=content_copy / NEWSLETTER, connections=4, state=state)
        send(request, settings=Settings.from_environ({**os.environ, **env}), retry=FAST)
    received = handler.received_by()
    states = ledger_states(state)
    wrong = {email: (states.get(email), want) for email, want in expect.items() if states.get(email) != want}
    twice = [email for email, n in received.items() if n > 1]
    sent_not_received = [email for email, s in states.items() if s == "sent" and received[email] != 1]
    received_not_sent = [email for email in received if states.get(email) != "sent"]
    conn = connect(state)
    suppressed = {address(i) for i in range(11, COUNT, 75)}
    not_suppressed = [e for e in suppressed if not recipients.is_suppressed(conn, e, SECRET.encode())]
    lost = len(wrong) + len(twice) + len(sent_not_received) + len(received_not_sent) + len(not_suppressed)
    ended = {s: list(states.values()).count(s) for s in sorted(set(states.values()))}
    row(
        "Server faults",
        f"newsletter to {COUNT + BLOCKED:,} recipients over 4 connections ({'with' if pipelining else 'without'} "
        "PIPELINING), server without 8BITMIME: 421 storm of 20, 450/451/452 once (100) and always (20), "
        "550 5.1.1 (20), 552 (10), 554 5.7.1 for a domain (30), dropped mid-DATA (20) and between messages (25)",
        1,
        lost,
        f"ended {ended}; {len(received):,} received, none twice; {handler.connections_closed} connections "
        f"closed by the server; {len(handler.eight_bit)} 8-bit bodies",
    )
    assert wrong == {} and twice == [] and sent_not_received == [] and received_not_sent == []
    assert not_suppressed == [] and handler.eight_bit == []
    assert handler.connections_closed == 20 + 20 + 25  # every injected fault happened
    assert "pending" not in ended and "sending" not in ended


def test_server_slower_than_our_timeout(tmp_path: Path, row: Row) -> None:
    """Some recipients' replies come after our timeout (they end ``retry``); then every reply does
    (the run stops and leaves the rest owed, never in flight)."""
    slow = {f"p{i:04d}@example.org" for i in range(0, 40, 8)}
    handler = HarshHandler(Faults(), set(), slow)
    ledger = Ledger(connect(tmp_path / "state.sqlite3"), lambda: NOW)
    ledger.add("slow", people(40))
    ledger.add("all-slow", people(12))
    with serving_smtp(handler) as port:
        transport = SmtpTransport(SmtpSettings("127.0.0.1", port, "none"), timeout=TIMEOUT)
        retry = RetryPolicy(attempts=2, delay=0.01, stop_after=6)
        run = deliver_all(ledger, "slow", compose, transport, sender="sender@example.org", audience=ListAudience(),
                          connections=2, retry=retry)  # fmt: skip
        report = asyncio.run(run)
        handler.slow = None
        stopped = asyncio.run(deliver_all(ledger, "all-slow", compose, transport, sender="sender@example.org",
                                          audience=ListAudience(), retry=retry))  # fmt: skip
    states = ledger.states("slow")
    wrong = [e for e, s in states.items() if s != ("retry" if e in slow else "sent")]
    received = handler.received_by()
    all_slow = ledger.summary("all-slow")
    lost = len(wrong) + sum(1 for e in slow if received[e]) + all_slow["sending"] + all_slow["sent"]
    row(
        "Server faults",
        f"server replying after {SLOW} s against our {TIMEOUT} s timeout: to 5 of 40 recipients, then to all of 12",
        2,
        lost,
        f"5 slow → retry, 35 sent; all slow → run stopped ({stopped.stopped}), "
        f"{all_slow['pending']} owed for --resume, {all_slow['retry']} retry, 0 in flight",
    )
    assert wrong == [] and report.sent == 35
    assert stopped.stopped is not None and all_slow["sending"] == 0 and all_slow["sent"] == 0
    assert all_slow["pending"] + all_slow["retry"] == 12
