"""The send engine against a real SMTP server that misbehaves: every fault of issue 4, and the ledger after it."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from reallabor_mail.db import StateLocation, connect
from reallabor_mail.delivery.engine import RetryPolicy, RunReport, SenderRefused, deliver_all
from reallabor_mail.delivery.ledger import Entry, Ledger
from reallabor_mail.delivery.transport import DeliveryError, Reply, Session, SmtpSettings, SmtpTransport
from reallabor_mail.recipients.person import Recipient
from tests.smtp_faults import Faults, FaultServer, fault_server

CAMPAIGN = "newsletter:test"
FAST = RetryPolicy(attempts=3, delay=0.01, stop_after=25)
NOW = dt.datetime(2023, 10, 5, 9, 0, tzinfo=dt.UTC)


@dataclass
class ListAudience:
    """A suppression list in memory (the real one lives in recipients.py)."""

    suppressed: set[str] = field(default_factory=set)
    reasons: dict[str, str] = field(default_factory=dict)

    def not_to_send(self, emails: Sequence[str]) -> set[str]:
        return self.suppressed.intersection(emails)

    def suppress(self, email: str, reason: str) -> None:
        self.suppressed.add(email)
        self.reasons[email] = reason

    def reopen(self) -> ListAudience:
        return self


def compose(entry: Entry) -> tuple[str, bytes]:
    message_id = f"<{entry.id}@example.org>"
    return message_id, (
        f"From: sender@example.org\r\nTo: {entry.email}\r\nMessage-ID: {message_id}\r\nSubject: Test\r\n\r\n"
        f"Hallo {entry.recipient.first_name}\r\n"
    ).encode()


def people(count: int, domain: str = "example.org") -> list[tuple[Recipient, str]]:
    return [(Recipient(f"p{i:04d}@{domain}", first_name=f"P{i}"), "newsletter") for i in range(count)]


PIPELINING = [False]


@pytest.fixture(autouse=True, params=[False, True], ids=["one-by-one", "pipelining"])
def pipelining(request: pytest.FixtureRequest) -> None:
    """Every fault test runs twice: aiosmtplib's command-by-command path and our PIPELINING path."""
    PIPELINING[0] = bool(request.param)


def run(
    state: StateLocation, server: FaultServer, recipients: list[tuple[Recipient, str]], *,
    connections: int = 1, audience: ListAudience | None = None, retry: RetryPolicy = FAST,
) -> tuple[Ledger, RunReport]:  # fmt: skip
    server.faults.pipelining = PIPELINING[0]
    ledger = Ledger(connect(state), lambda: NOW)
    ledger.add(CAMPAIGN, recipients)
    transport = SmtpTransport(SmtpSettings(server.host, server.port, "none"))
    report = asyncio.run(
        deliver_all(
            ledger, CAMPAIGN, compose, transport, sender="sender@example.org",
            audience=audience or ListAudience(), connections=connections, retry=retry,
        )
    )
    return ledger, report


def states(ledger: Ledger) -> dict[str, str]:
    return ledger.states(CAMPAIGN)


def test_every_recipient_once_over_reused_connections(state: StateLocation, monkeypatch: pytest.MonkeyPatch) -> None:
    pipelined: list[str] = []
    original = Session.send

    async def counting(self: Session, sender: str, recipient: str, data: bytes) -> Reply:
        if self.pipelined:
            pipelined.append(recipient)
        return await original(self, sender, recipient, data)

    monkeypatch.setattr(Session, "send", counting)
    with fault_server() as server:
        ledger, report = run(state, server, people(40), connections=4)
    assert len(pipelined) == (40 if PIPELINING[0] else 0)
    assert report.sent == 40
    assert set(server.handler.received_by().values()) == {1} and len(server.handler.received_by()) == 40
    assert set(states(ledger).values()) == {"sent"}
    row = ledger.rows(CAMPAIGN, ("sent",))[0]
    assert row.reply == "250 2.0.0 OK: queued" and row.message_id == "<1@example.org>"


def test_temporary_failures_are_retried_within_the_run(state: StateLocation) -> None:
    faults = Faults(rcpt_once={
        "p0001@example.org": "450 4.2.0 Mailbox busy",
        "p0002@example.org": "451 4.7.1 Greylisted, please try again",
        "p0003@example.org": "452 4.5.3 Insufficient system storage",
    })  # fmt: skip
    with fault_server(faults) as server:
        ledger, report = run(state, server, people(6))
    assert report.sent == 6 and report.retry == 0
    assert server.handler.attempts["p0002@example.org"] == 2
    assert set(server.handler.received_by().values()) == {1}
    assert set(states(ledger).values()) == {"sent"}


def test_persistent_temporary_failure_is_left_for_retry_failed(state: StateLocation) -> None:
    faults = Faults(rcpt={"p0001@example.org": "451 4.3.0 Temporary local problem"})
    with fault_server(faults) as server:
        ledger, report = run(state, server, people(3))
    assert report.sent == 2 and report.retry == 1
    assert server.handler.attempts["p0001@example.org"] == FAST.attempts
    (row,) = ledger.rows(CAMPAIGN, ("retry",))
    assert row.email == "p0001@example.org" and row.reply == "451 4.3.0 Temporary local problem"
    assert ledger.requeue(CAMPAIGN) == 1 and ledger.summary(CAMPAIGN)["pending"] == 1


def test_unknown_user_fails_and_is_suppressed(state: StateLocation) -> None:
    audience = ListAudience()
    faults = Faults(rcpt={"p0002@example.org": "550 5.1.1 <p0002@example.org>: Recipient address rejected"})
    with fault_server(faults) as server:
        ledger, report = run(state, server, people(4), audience=audience)
    assert report.sent == 3 and report.failed == 1
    assert server.handler.attempts["p0002@example.org"] == 1  # permanent: not retried
    assert audience.suppressed == {"p0002@example.org"} and "5.1.1" in audience.reasons["p0002@example.org"]
    assert states(ledger)["p0002@example.org"] == "failed"
    assert "5.1.1" in (ledger.rows(CAMPAIGN, ("failed",))[0].reply or "")


def test_suppressed_address_is_never_contacted_and_counted_skipped_not_failed(state: StateLocation) -> None:
    with fault_server() as server:
        ledger, report = run(state, server, people(3), audience=ListAudience({"p0000@example.org"}))
    assert report.skipped == 1 and report.sent == 2 and report.failed == 0
    assert "p0000@example.org" not in server.handler.attempts
    assert states(ledger)["p0000@example.org"] == "skipped"
    assert "unsubscribed" in (ledger.rows(CAMPAIGN, ("skipped",))[0].reply or "")


def test_policy_block_stops_the_domain_without_blaming_recipients(state: StateLocation) -> None:
    audience = ListAudience()
    faults = Faults(domain={"blocked.example": "554 5.7.1 Service unavailable; client host blocked using RBL"})
    with fault_server(faults) as server:
        ledger, report = run(
            state, server, people(3, "blocked.example") + people(3, "fine.example"), audience=audience
        )
    assert report.sent == 3 and report.blocked == {
        "blocked.example": "554 5.7.1 Service unavailable; client host blocked using RBL"
    }
    assert sum(n for a, n in server.handler.attempts.items() if a.endswith("@blocked.example")) == 1
    blocked = {e: s for e, s in states(ledger).items() if e.endswith("@blocked.example")}
    assert set(blocked.values()) == {"retry"}  # not failed: the people are fine, the domain refused us
    assert audience.suppressed == set()


def test_421_storm_is_survived(state: StateLocation) -> None:
    with fault_server(Faults(storm=6)) as server:
        _ledger, report = run(state, server, people(10), connections=2)
    assert report.sent == 10
    assert server.handler.connections_closed == 6
    assert set(server.handler.received_by().values()) == {1} and len(server.handler.received_by()) == 10


def test_endless_421_stops_the_run_and_leaves_the_rest_owed(state: StateLocation) -> None:
    retry = RetryPolicy(attempts=2, delay=0.001, stop_after=5)
    with fault_server(Faults(storm=10_000)) as server:
        ledger, report = run(state, server, people(30), retry=retry)
    assert report.stopped is not None and "5 times in a row" in report.stopped
    summary = ledger.summary(CAMPAIGN)
    assert summary["sent"] == 0 and summary["sending"] == 0
    assert summary["pending"] + summary["retry"] == 30  # nothing lost: --resume / --retry-failed pick them up
    assert server.handler.messages == []


def test_connection_dropped_in_data_is_retried_once(state: StateLocation) -> None:
    faults = Faults(drop_in_data={"p0001@example.org", "p0003@example.org"})
    with fault_server(faults) as server:
        ledger, report = run(state, server, people(5))
    assert report.sent == 5
    assert server.handler.connections_closed == 2
    assert server.handler.received_by()["p0001@example.org"] == 1
    assert set(states(ledger).values()) == {"sent"}


def test_slow_replies_with_parallel_connections(state: StateLocation) -> None:
    with fault_server(Faults(delay=0.02)) as server:
        _ledger, report = run(state, server, people(16), connections=4)
    assert report.sent == 16 and set(server.handler.received_by().values()) == {1}


@pytest.mark.parametrize("reply", [
    "553 5.7.1 <sender@example.org>: Sender address rejected: not owned by user",
    "550 5.1.0 Sender rejected",
], ids=["553", "550"])  # fmt: skip
def test_refused_sender_stops_the_run_and_leaves_every_row_owed(state: StateLocation, reply: str) -> None:
    with fault_server(Faults(mail=reply)) as server, pytest.raises(SenderRefused) as refused:
        run(state, server, people(5), connections=2)
    assert str(refused.value).startswith("site.yaml: sender.email (sender@example.org): ")
    assert reply.split()[0] in str(refused.value) and "--resume" in str(refused.value)
    assert server.handler.messages == []
    ledger = Ledger(connect(state), lambda: NOW)
    summary = ledger.summary(CAMPAIGN)
    assert summary["pending"] == 5 and summary["failed"] == 0 and summary["retry"] == 0  # a --resume sends them


def test_a_sender_that_cannot_be_sent_without_smtputf8_is_a_sender_refusal(state: StateLocation) -> None:
    """``jörg.weiß@…`` cannot go into MAIL FROM (no SMTPUTF8): the sender's fault, not each recipient's."""
    ledger = Ledger(connect(state), lambda: NOW)
    ledger.add(CAMPAIGN, people(5))
    with fault_server() as server:
        server.faults.pipelining = PIPELINING[0]
        transport = SmtpTransport(SmtpSettings(server.host, server.port, "none"))
        with pytest.raises(SenderRefused, match=r"^site\.yaml: sender\.email \(jörg\.weiß@example\.org\): "):
            asyncio.run(deliver_all(ledger, CAMPAIGN, compose, transport, sender="jörg.weiß@example.org",
                                    audience=ListAudience(), connections=2))  # fmt: skip
        assert server.handler.messages == []
    summary = ledger.summary(CAMPAIGN)
    assert summary["pending"] == 5 and summary["failed"] == 0


@pytest.mark.parametrize("connections", [1, 3])
def test_running_the_same_campaign_again_sends_nothing_new(state: StateLocation, connections: int) -> None:
    with fault_server() as server:
        run(state, server, people(5), connections=connections)
        _ledger, report = run(state, server, people(7), connections=connections)
    assert report.sent == 2  # only the two who were not on the list the first time
    assert set(server.handler.received_by().values()) == {1} and len(server.handler.received_by()) == 7


def test_unusable_server_stops_the_run_without_leaving_rows_in_flight(state: StateLocation) -> None:
    ledger = Ledger(connect(state), lambda: NOW)
    ledger.add(CAMPAIGN, people(5))
    with fault_server() as server:  # no STARTTLS offered
        transport = SmtpTransport(SmtpSettings(server.host, server.port, "starttls"))
        with pytest.raises(DeliveryError, match="does not offer STARTTLS"):
            asyncio.run(
                deliver_all(ledger, CAMPAIGN, compose, transport, sender="sender@example.org", audience=ListAudience())
            )
        assert server.handler.messages == []
    summary = ledger.summary(CAMPAIGN)
    assert summary["pending"] == 5 and summary["sending"] == 0  # all still owed: --resume sends them
