"""A stranger cannot undo an unsubscribe (red team of issue 12, finding 1).

Before: after ``recipients unsubscribe hans@…`` a POST /subscribe with his address made the membership
``pending``; a CSV re-import then made him ``subscribed`` and ``send`` mailed him. After 31 days
``recipients purge`` deleted the pending record and left no suppression, so the next import
subscribed him. Now an unconfirmed sign-up never changes an unsubscribed, bounced or suppressed
membership; only the person's own confirmation click re-subscribes, and purge forgets no unsubscribe.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from reallabor_mail.cli.main import main
from reallabor_mail.recipients import store as rcp
from reallabor_mail.recipients.person import Recipient

from ..conftest import SmtpServer
from .conftest import FORM, SECRET, Setup, link_in, make_setup

pytestmark = pytest.mark.anyio


@pytest.fixture
def cli_setup(tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> Setup:
    """The app and the real CLI on one state file; the CLI runs on the real clock, so the app's does too."""
    monkeypatch.setenv("REALLABOR_SECRET", SECRET.decode())
    monkeypatch.setenv("REALLABOR_STATE", str(tmp_path / "state.sqlite3"))
    setup = make_setup(tmp_path, smtp_server, "http://testserver")
    setup.clock.now = dt.datetime.now(dt.UTC)
    return setup


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


async def sign_up(setup: Setup, email: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=setup.app, client=("198.51.100.9", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.post("/subscribe", data={**FORM, "email": email, "lists": "newsletter"})


async def test_a_strangers_sign_up_does_not_undo_an_unsubscribe(cli_setup: Setup, tmp_path: Path) -> None:
    setup = cli_setup
    csv = tmp_path / "liste.csv"
    csv.write_text("E-Mail;Vorname\r\nhans@example.org;Hans\r\ngrete@example.org;Grete\r\n", encoding="utf-8")
    cli("recipients", "import", str(csv), "--list", "newsletter", "--by", "becker")
    for email in ("hans@example.org", "grete@example.org"):
        cli("recipients", "unsubscribe", email, "--by", "becker")

    assert (await sign_up(setup, "hans@example.org")).status_code == 200
    setup.clock.now = dt.datetime.now(dt.UTC) - dt.timedelta(days=31)  # Grete's sign-up: a month ago
    assert (await sign_up(setup, "grete@example.org")).status_code == 200
    setup.clock.now = dt.datetime.now(dt.UTC)
    assert setup.statuses("hans@example.org") == setup.statuses("grete@example.org") == {"newsletter": "unsubscribed"}

    cli("recipients", "import", str(csv), "--list", "newsletter", "--by", "becker")
    cli("recipients", "purge")
    cli("recipients", "import", str(csv), "--list", "newsletter", "--by", "becker")
    assert [p.email for p in rcp.subscribers(setup.db(), "newsletter")] == []  # `send` mails nobody

    mails = {m.rcpt_tos[0]: m.message for m in await setup.delivered()}  # he may still want to come back
    link = link_in(mails["hans@example.org"], "confirm")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=setup.app)) as client:
        for method in ("HEAD", "GET"):  # a link scanner
            assert (await client.request(method, link)).status_code == 200
        assert setup.statuses("hans@example.org") == {"newsletter": "unsubscribed"}
        done = await client.post(link)  # his own click
    assert "Ihr Abonnement ist bestätigt" in done.text
    assert [p.email for p in rcp.subscribers(setup.db(), "newsletter")] == ["hans@example.org"]


async def test_bounced_and_suppressed_memberships_stay(cli_setup: Setup) -> None:
    setup = cli_setup
    conn = setup.db()
    now = setup.clock.now
    rcp.add_recipient(conn, Recipient("bounced@example.org"), "newsletter", status="subscribed", source="t", now=now)
    rcp.suppress(conn, "bounced@example.org", rcp.Suppression.BOUNCED, SECRET, detail="550 5.1.1", now=now)
    assert (await sign_up(setup, "bounced@example.org")).status_code == 200
    assert setup.statuses("bounced@example.org") == {"newsletter": "bounced"}
    assert rcp.is_suppressed(conn, "bounced@example.org", SECRET)


def test_purge_puts_back_an_unsubscribe_an_old_sign_up_had_overwritten(tmp_path: Path) -> None:
    """A state file from before the fix may hold such a pending membership: purge restores the unsubscribe."""
    from reallabor_mail.db import connect

    conn = connect(tmp_path / "state.sqlite3")
    then = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rcp.add_recipient(conn, Recipient("hans@example.org"), "newsletter", status="subscribed", source="t", now=then)
    rcp.unsubscribe(conn, "hans@example.org", None, source="t", now=then)
    conn.execute("UPDATE memberships SET status = 'pending'")  # what the old sign-up did
    assert rcp.purge_unconfirmed(conn, then + dt.timedelta(days=31)) == 1
    stored = rcp.find(conn, "hans@example.org")
    assert stored is not None and [m.status for m in stored.memberships] == ["unsubscribed"]
