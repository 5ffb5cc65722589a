"""The sign-up form under the red team of issue 12 (findings 3, 5, 7, 8, 9, 10).

Before: a sign-up for a subscribed address wrote no consent row while every other state did (1.7 ms
against 10.8 ms: timing told who is subscribed); IPv6 clients were limited per /128 and the per-client
limit lived in memory (a restart reset it); every repeated sign-up added a consent row; a POST from
another site's page was taken; a signed token with a payload of the wrong type or deep nesting gave
500 (RecursionError).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import sqlite3
from pathlib import Path

import httpx
import pytest
from starlette.types import ASGIApp

from reallabor_mail.recipients import links
from reallabor_mail.recipients import store as rcp
from reallabor_mail.recipients.person import Recipient
from reallabor_mail.web.limits import ForwardedClient, Proxies, client_key
from reallabor_mail.web.public import PublicConfig, PublicSite

from ..conftest import SmtpServer
from .conftest import FORM, SECRET, START, Setup, make_setup

pytestmark = pytest.mark.anyio

TABLES = ("recipients", "memberships", "consent_events", "web_signup_attempts", "web_confirmation_outbox",
          "web_client_attempts")  # fmt: skip


async def post(
    app: ASGIApp, client: str, data: dict[str, str], headers: dict[str, str] | None = None
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=(client, 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        return await http.post("/subscribe", data=data, headers=headers)


def counts(setup: Setup) -> dict[str, int]:
    conn = setup.db()
    return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}


def prepare_states(setup: Setup) -> dict[str, str]:
    conn = setup.db()
    for state in ("pending", "subscribed", "unsubscribed", "bounced", "erased"):
        rcp.add_recipient(conn, Recipient(f"{state}@example.org"), "newsletter",
                          status="pending" if state == "pending" else "subscribed", source="t",
                          now=START - dt.timedelta(days=2))  # fmt: skip
    rcp.unsubscribe(conn, "unsubscribed@example.org", None, source="t", now=START - dt.timedelta(days=2))
    rcp.suppress(conn, "bounced@example.org", rcp.Suppression.BOUNCED, SECRET, detail="550 5.1.1",
                 now=START - dt.timedelta(days=2))
    rcp.erase(conn, "erased@example.org", SECRET, now=START - dt.timedelta(days=2))
    states = ("new", "pending", "subscribed", "unsubscribed", "bounced", "erased")
    return {state: f"{state}@example.org" for state in states}


async def test_every_state_does_the_same_writes(setup: Setup) -> None:
    """The same rows appended and the same number of commits whatever the address's state."""
    statements: list[str] = []
    raw = setup.site.conn.raw
    if not isinstance(raw, sqlite3.Connection):
        pytest.skip("counts statements with SQLite's trace callback (the same SQL runs on PostgreSQL)")
    raw.set_trace_callback(statements.append)
    work = {}
    for state, email in prepare_states(setup).items():
        before, statements[:] = counts(setup), []
        assert (await post(setup.app, f"203.0.113.{len(work) + 1}", {**FORM, "email": email})).status_code == 200
        after = counts(setup)
        grown = {t: after[t] - before[t] for t in ("consent_events", "web_signup_attempts", "web_confirmation_outbox",
                                                    "web_client_attempts")}  # fmt: skip
        work[state] = (grown, statements.count("COMMIT"))
    assert len({repr(w) for w in work.values()}) == 1, work
    assert work["subscribed"] == ({"consent_events": 1, "web_signup_attempts": 1, "web_confirmation_outbox": 1,
                                   "web_client_attempts": 1}, 2)  # fmt: skip
    mails = {m.rcpt_tos[0] for m in await setup.delivered()}
    assert mails == {"new@example.org", "pending@example.org", "unsubscribed@example.org", "bounced@example.org",
                     "erased@example.org"}  # fmt: skip  # the subscribed one has nothing to confirm
    assert counts(setup)["web_confirmation_outbox"] == 0


async def test_repeated_sign_ups_are_recorded_once_a_day(setup: Setup) -> None:
    for n in range(8):
        await post(setup.app, f"203.0.113.{n}", FORM)
    setup.clock.now = START + dt.timedelta(days=1, seconds=1)
    await post(setup.app, "203.0.113.99", FORM)
    person = setup.person("anna.mueller@dortmund.de")
    assert person is not None and [e.action for e in person.events] == ["signup", "signup"]
    assert counts(setup)["web_signup_attempts"] == 9  # the attempts table still counts every one


async def test_ipv6_clients_count_per_64_and_mapped_ipv4_as_ipv4(setup: Setup) -> None:
    codes = [(await post(setup.app, f"2001:db8:1:2::{n:x}", {**FORM, "email": f"p{n}@example.org"})).status_code
             for n in range(1, 11)]  # fmt: skip
    assert codes == [200] * 10
    assert (await post(setup.app, "2001:DB8:1:2:ffff:0:0:9", FORM)).status_code == 429  # same /64, other spelling
    assert (await post(setup.app, "2001:db8:1:3::1", FORM)).status_code == 200  # the next /64 is someone else
    for n in range(10):
        await post(setup.app, "203.0.113.50", {**FORM, "email": f"q{n}@example.org"})
    assert (await post(setup.app, "::ffff:203.0.113.50", FORM)).status_code == 429
    assert client_key("::ffff:203.0.113.50") == "203.0.113.50" and client_key("unknown") is None


async def test_a_forwarded_value_that_is_no_ip_counts_as_the_proxy(setup: Setup) -> None:
    app = ForwardedClient(setup.app, Proxies("10.0.0.1"))
    for n in range(10):
        headers = {"X-Forwarded-For": f"not-an-ip-{n}" if n % 2 else "198.51.100.7, unknown"}
        assert (await post(app, "10.0.0.1", {**FORM, "email": f"p{n}@example.org"}, headers)).status_code == 200
    assert (await post(app, "10.0.0.1", FORM, {"X-Forwarded-For": "garbage"})).status_code == 429
    assert (await post(app, "10.0.0.1", FORM, {"X-Forwarded-For": "198.51.100.7"})).status_code == 200
    stored = setup.person("p1@example.org")
    assert stored is not None and stored.events[0].ip == "10.0.0.1"


async def test_the_client_limit_survives_a_restart(setup: Setup) -> None:
    for n in range(10):
        await post(setup.app, "203.0.113.7", {**FORM, "email": f"p{n}@example.org"})
    c = setup.config  # a new server process: the same settings and state file, nothing else carried over
    restarted = PublicSite(PublicConfig(site=c.site, templates=c.templates, state=c.state, secret=c.secret,
                                        lists=c.lists, transport=c.transport, build_dir=c.build_dir,
                                        clock=c.clock)).app()  # fmt: skip
    assert (await post(restarted, "203.0.113.7", FORM)).status_code == 429
    stored = " ".join(str(v) for row in setup.db().execute("SELECT * FROM web_client_attempts") for v in row)
    assert "203.0.113" not in stored  # a keyed hash, not the IP address


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
    {"Referer": "https://evil.example/page.html"}, {"Origin": "http://testserver.evil.example"},
])  # fmt: skip
async def test_cross_site_posts_are_refused(setup: Setup, headers: dict[str, str]) -> None:
    page = await post(setup.app, "203.0.113.7", FORM, headers)
    assert page.status_code == 403 and "über das Formular auf unserer Website" in page.text
    assert counts(setup)["recipients"] == 0 and await setup.delivered() == []


@pytest.mark.parametrize("headers", [
    {}, {"Origin": "http://testserver"}, {"Referer": "http://testserver/subscribe?lang=de"},
    {"Sec-Fetch-Site": "same-origin", "Origin": "http://TESTSERVER"},
])  # fmt: skip
async def test_same_site_posts_are_taken(setup: Setup, headers: dict[str, str]) -> None:
    assert (await post(setup.app, "203.0.113.7", FORM, headers)).status_code == 200


async def test_one_click_unsubscribe_needs_no_origin(setup: Setup) -> None:
    rcp.add_recipient(setup.db(), Recipient("anna@example.org"), "newsletter", status="subscribed", source="t",
                      now=START)  # fmt: skip
    url = links.unsubscribe_url(setup.config.site, "anna@example.org", "newsletter", SECRET)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=setup.app)) as http:
        done = await http.post(url, data={"List-Unsubscribe": "One-Click"}, headers={"Origin": "https://mail.example"})
    assert done.status_code == 200 and setup.statuses("anna@example.org") == {"newsletter": "unsubscribed"}


def signed(purpose: str, payload: bytes) -> str:
    """A token signed with the real secret around any payload (what someone holding the secret could make)."""
    text = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    mac = hmac.new(SECRET, f"{purpose}\x00{text}".encode(), hashlib.sha256).digest()
    return f"{text}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


MALFORMED = [
    b"[" * 5000 + b"]" * 5000, b'{"e": ' + b"[" * 3000 + b"]" * 3000 + b', "l": "newsletter"}',
    json.dumps({"e": 1, "l": "newsletter"}).encode(), json.dumps({"e": "anna@example.org", "l": ["x"]}).encode(),
    json.dumps({"e": {"a": 1}, "l": "newsletter"}).encode(), json.dumps({"e": "anna@example.org"}).encode(),
    json.dumps({"e": "anna@example.org", "l": "newsletter", "x": "soon"}).encode(),
    json.dumps({"e": "anna@example.org", "l": "newsletter", "x": True}).encode(),
    json.dumps({"e": "not an address", "l": "newsletter"}).encode(),
    json.dumps({"e": "Anna@Example.org", "l": "newsletter"}).encode(),
    json.dumps({"e": "anna@example.org", "l": "Bad List!"}).encode(), b'"just a string"', b"[1, 2]", b"null",
    "{\"e\": \"anna@example.org\", \"l\": \"newsletter\"}".encode("utf-16"),
]  # fmt: skip


@pytest.mark.parametrize("payload", MALFORMED, ids=range(len(MALFORMED)))
async def test_malformed_signed_payloads_give_the_link_not_valid_page(setup: Setup, payload: bytes) -> None:
    rcp.add_recipient(setup.db(), Recipient("anna@example.org"), "newsletter", status="subscribed", source="t",
                      now=START)  # fmt: skip
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=setup.app), base_url="http://testserver") as http:
        for purpose in ("confirm", "unsubscribe"):
            for method in ("GET", "HEAD", "POST"):
                page = await http.request(method, f"/{purpose}/{signed(purpose, payload)}")
                assert page.status_code == 400, (purpose, method)
                assert method == "HEAD" or "Dieser Link funktioniert nicht" in page.text
    assert setup.statuses("anna@example.org") == {"newsletter": "subscribed"}


def test_proxies_refuse_what_is_not_an_address(tmp_path: Path, smtp_server: SmtpServer) -> None:
    from reallabor_mail.errors import SettingsError

    with pytest.raises(SettingsError, match="--forwarded-allow-ips: 'nginx' is not an IP address"):
        Proxies("127.0.0.1, nginx")
    assert "127.0.0.2" in Proxies("127.0.0.0/24") and "::1" not in Proxies("127.0.0.1")
    make_setup(tmp_path, smtp_server, "http://testserver")  # the fixture stays usable
