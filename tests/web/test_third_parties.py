"""Limits that protect the people whose address someone else types in, and answers that tell
nobody anything about an address (issue 12).

Before: 200 sign-ups of ``victim+N@…`` put 200 confirmation mails into one mailbox; the greeting of
the confirmation mail carried a name (and so any text or URL) a stranger chose; whether an address
was known showed in the answer (with the mail server down: 200 for a subscribed address, 503 for a
new one).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller

from reallabor_mail.recipients import store as rcp
from reallabor_mail.recipients.person import Recipient
from reallabor_mail.web.signup_queue import SignupLimits

from ..conftest import RecordingHandler, SmtpServer, free_port
from .conftest import CLIENT_IP, FORM, SECRET, START, Setup, make_setup, running

pytestmark = pytest.mark.anyio

UNLIMITED_IP = 100_000  # sign-ups per client and hour


@pytest.fixture
def open_setup(tmp_path: Path, smtp_server: SmtpServer) -> Setup:
    """As ``setup``, without the per-IP limit: the attacker has many addresses (or a botnet)."""
    return make_setup(tmp_path, smtp_server, "http://testserver",
                      signup_limits=SignupLimits(per_mailbox_per_day=3, per_hour=50,
                                                 per_client_per_hour=UNLIMITED_IP))  # fmt: skip


async def open_client(setup: Setup) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=setup.app, client=(CLIENT_IP, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def answer_of(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.text


async def test_two_hundred_tagged_sign_ups_send_three_mails(open_setup: Setup) -> None:
    setup = open_setup
    async with await open_client(setup) as client:
        answers = set()
        for n in range(200):
            local = f"Victim+{n}" if n % 2 else f"victim+{n}"
            domain = "Example.ORG" if n % 3 else "example.org"
            response = await client.post("/subscribe", data={**FORM, "email": f"{local}@{domain}", "lang": "de"})
            answers.add(answer_of(response))
    assert len(answers) == 1 and next(iter(answers))[0] == 200  # the limit does not show
    mails = await setup.delivered()
    assert len(mails) == 3
    outcomes = dict(setup.db().execute("SELECT outcome, count(*) FROM web_signup_attempts GROUP BY outcome").fetchall())
    assert outcomes == {"queued": 3, "mailbox_limit": 197}  # every attempt recorded
    stored = " ".join(str(v) for row in setup.db().execute("SELECT * FROM web_signup_attempts") for v in row)
    assert "victim" not in stored.lower()  # under a keyed hash, not the address

    setup.clock.now = START + dt.timedelta(days=1, seconds=1)  # a day later the mailbox may get one again
    async with await open_client(setup) as client:
        await client.post("/subscribe", data={**FORM, "email": "victim+new@example.org"})
    assert len(await setup.delivered()) == 4


async def test_global_hourly_cap_delays_instead_of_dropping(
    tmp_path: Path, smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Before, the 100 sign-ups an hour were an outage switch: 100 junk sign-ups and legitimate ones got
    no mail at all. Now the mails beyond the cap wait for the next hour; staff get one warning."""
    setup = make_setup(tmp_path, smtp_server, "http://testserver",
                       signup_limits=SignupLimits(per_mailbox_per_day=3, per_hour=5,
                                                  per_client_per_hour=UNLIMITED_IP))  # fmt: skip
    async with await open_client(setup) as client:
        answers = {answer_of(await client.post("/subscribe", data={**FORM, "email": f"p{i}@example{i}.org"}))
                   for i in range(12)}  # fmt: skip
    assert len(answers) == 1 and len(await setup.delivered()) == 5
    outcomes = dict(setup.db().execute("SELECT outcome, count(*) FROM web_signup_attempts GROUP BY outcome").fetchall())
    assert outcomes == {"queued": 5, "delayed": 7}
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "cap of 5" in r.getMessage()]
    assert len(warnings) == 1  # one warning, not one per sign-up
    setup.clock.now = START.replace(minute=0, second=0) + dt.timedelta(hours=1)  # the next clock hour
    assert len(await setup.delivered()) == 10  # five more: the cap holds in the next hour too
    setup.clock.now += dt.timedelta(hours=1)
    assert sorted(m.rcpt_tos[0] for m in await setup.delivered()) == sorted(f"p{i}@example{i}.org" for i in range(12))


async def test_confirmation_mail_carries_nothing_a_stranger_chose(setup: Setup, client: httpx.AsyncClient) -> None:
    planted = {"salutation": "Herr", "title": "Prof.", "first_name": "Gewinn", "last_name": "https://evil.example/x",
               "organisation": "Klicken Sie hier"}  # fmt: skip
    assert (await client.post("/subscribe", data={**FORM, **planted})).status_code == 200
    (received,) = await setup.delivered()
    raw = received.data.decode("ascii")
    text = received.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    for value in planted.values():
        if value != "Herr":
            assert value not in text and value not in raw, value
    assert text.startswith("Sehr geehrte Damen und Herren,")
    assert received.message["To"] == "anna.mueller@dortmund.de"


def prepare_states(setup: Setup) -> dict[str, str]:
    """One address in each state the form can meet."""
    conn = setup.db()
    rcp.add_recipient(conn, Recipient("subscribed@example.org"), "newsletter", status="subscribed", source="test",
                      now=START)  # fmt: skip
    rcp.add_recipient(conn, Recipient("pending@example.org"), "newsletter", status="pending", source="test",
                      now=START)  # fmt: skip
    rcp.add_recipient(conn, Recipient("erased@example.org"), "newsletter", status="subscribed", source="test",
                      now=START)  # fmt: skip
    rcp.erase(conn, "erased@example.org", SECRET, now=START)
    rcp.add_recipient(conn, Recipient("bounced@example.org"), "newsletter", status="subscribed", source="test",
                      now=START)  # fmt: skip
    rcp.suppress(conn, "bounced@example.org", rcp.Suppression.BOUNCED, SECRET, detail="550 5.1.1", now=START)
    return {state: f"{state}@example.org" for state in ("new", "pending", "subscribed", "erased", "bounced")}


async def test_same_answer_whatever_the_state(open_setup: Setup) -> None:
    setup = open_setup
    addresses = prepare_states(setup)
    async with await open_client(setup) as client:
        answers = {state: answer_of(await client.post("/subscribe", data={**FORM, "email": email}))
                   for state, email in addresses.items()}  # fmt: skip
    assert len(set(answers.values())) == 1, {k: v[0] for k, v in answers.items()}


def test_mail_server_down_same_answer_and_mail_arrives_later(tmp_path: Path, smtp_server: SmtpServer) -> None:
    """With the SMTP server down the form answers exactly as with it up; the sign-up is kept and its
    mail leaves once the server is back (the outbox worker of the running server retries)."""
    port, smtp_port = free_port(), free_port()
    setup = make_setup(tmp_path, smtp_server, f"http://127.0.0.1:{port}", smtp_port=smtp_port,
                       outbox_poll_seconds=0.05,
                       signup_limits=SignupLimits(per_client_per_hour=UNLIMITED_IP))  # fmt: skip
    addresses = prepare_states(setup)
    with running(setup.app, port) as base, httpx.Client(base_url=base) as http:
        down = {state: answer_of(http.post("/subscribe", data={**FORM, "email": email}))
                for state, email in addresses.items()}  # fmt: skip
        queued = setup.db().execute("SELECT email, attempts, last_error FROM web_confirmation_outbox").fetchall()
        waiting = set(addresses.values()) - {"subscribed@example.org"}  # whose mail the worker drops at once
        assert {row["email"] for row in queued} - {"subscribed@example.org"} == waiting
        assert setup.statuses("new@example.org") == {"newsletter": "pending"}  # the sign-up is kept

        handler = RecordingHandler()
        controller = Controller(handler, hostname="127.0.0.1", port=smtp_port)
        controller.start()
        try:
            setup.clock.now = START + dt.timedelta(minutes=5)  # past the first retry
            up = answer_of(http.post("/subscribe", data={**FORM, "email": "another@example.org"}))
            deadline = dt.datetime.now() + dt.timedelta(seconds=10)
            while len(handler.messages) < 5 and dt.datetime.now() < deadline:
                http.get("/subscribe")  # time passes; the worker runs in the server's loop
        finally:
            controller.stop()
    assert set(down.values()) == {up}
    assert sorted(m.rcpt_tos[0] for m in handler.messages) == [
        "another@example.org", "bounced@example.org", "erased@example.org", "new@example.org", "pending@example.org",
    ]  # fmt: skip
    assert setup.db().execute("SELECT count(*) FROM web_confirmation_outbox").fetchone()[0] == 0
