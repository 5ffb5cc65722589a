"""Addresses that reach one mailbox under many spellings (red team of issue 12, findings 2 and 6).

Before: ``email==?utf-8?q?=74arget?=@example.org`` and its charset variants passed the form, 60
confirmation mails reached ``target@example.org`` (the limit is 3 a day), the encoded form was
stored, ``To:`` came out decoded and ``=?utf-8?b?…?=`` gave a raw 8-bit RCPT TO. Gmail's dots and
``googlemail.com`` counted as other mailboxes; ``victim%example.org@example.net`` was accepted.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest

from reallabor_mail.addresses import InvalidAddress, parse_address, wire_address
from reallabor_mail.content.loader import load_site
from reallabor_mail.content.models import Site
from reallabor_mail.db import connect
from reallabor_mail.mail.message import as_bytes, build_notice, envelope
from reallabor_mail.recipients import spreadsheet
from reallabor_mail.recipients.spreadsheet import ImportRefused
from reallabor_mail.web.signup_queue import SignupLimits

from ..conftest import SAMPLE_CONTENT, SmtpServer
from .conftest import CLIENT_IP, FORM, SECRET, START, Setup, make_setup

pytestmark = pytest.mark.anyio

ENCODED_WORDS = [
    "=?utf-8?q?=74arget?=@example.org", "=?UTF-8?Q?target?=@example.org", "=?iso-8859-1?q?=74arget?=@example.org",
    "=?utf-8?b?dGFyZ2V0?=@example.org", "=?utf-8*de?q?target?=@example.org", "x=?utf-8?q?target?=@example.org",
]  # fmt: skip
SOURCE_ROUTES = ["victim%example.org@example.net", "example.org!victim@example.net"]


@pytest.fixture
def open_setup(tmp_path: Path, smtp_server: SmtpServer) -> Setup:
    return make_setup(tmp_path, smtp_server, "http://testserver",
                      signup_limits=SignupLimits(per_mailbox_per_day=3, per_hour=1000,
                                                 per_client_per_hour=100_000))  # fmt: skip


async def sign_ups(setup: Setup, addresses: list[str]) -> list[int]:
    transport = httpx.ASGITransport(app=setup.app, client=(CLIENT_IP, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return [(await client.post("/subscribe", data={**FORM, "email": a})).status_code for a in addresses]


@pytest.mark.parametrize("typed", ENCODED_WORDS + SOURCE_ROUTES)
def test_the_address_type_refuses_encoded_words_and_source_routes(typed: str) -> None:
    with pytest.raises(InvalidAddress, match="not allowed before the @"):
        parse_address(typed)
    with pytest.raises(InvalidAddress):
        wire_address(typed)  # what the envelope, To: and ATTENDEE go through


async def test_encoded_word_sign_ups_mail_nobody(open_setup: Setup) -> None:
    codes = await sign_ups(open_setup, ENCODED_WORDS * 10 + SOURCE_ROUTES)
    assert set(codes) == {400}
    assert await open_setup.delivered() == []
    assert open_setup.db().execute("SELECT count(*) FROM recipients").fetchone()[0] == 0


def test_csv_and_site_yaml_refuse_encoded_words(tmp_path: Path) -> None:
    path = tmp_path / "liste.csv"
    path.write_text("E-Mail;Vorname\r\n=?utf-8?q?=74arget?=@example.org;Anna\r\n", encoding="utf-8")
    with pytest.raises(ImportRefused, match=r"row 2: email: .*encoded word"):
        spreadsheet.import_csv(connect(tmp_path / "s.sqlite3"), path, "newsletter", secret=SECRET, by="t",
                               now=START)  # fmt: skip
    site = load_site(SAMPLE_CONTENT).model_dump(mode="json")
    with pytest.raises(ValueError, match="encoded word"):
        Site.model_validate({**site, "reply_to": "=?utf-8?q?=74arget?=@example.org"})


def test_to_header_is_the_wire_form_and_never_decoded() -> None:
    site = load_site(SAMPLE_CONTENT)
    msg = build_notice(site, to="anna@straße.de", subject="s", text="t", language="de", key="k", secret=SECRET,
                       date=START)  # fmt: skip
    raw = as_bytes(msg)
    assert b"\r\nTo: anna@xn--strae-oqa.de\r\n" in raw
    assert envelope(msg)[1] == "anna@xn--strae-oqa.de" and raw.isascii()
    with pytest.raises(InvalidAddress):
        build_notice(site, to="=?utf-8?b?dGFyZ2V0?=@example.org", subject="s", text="t", language="de", key="k",
                     secret=SECRET, date=START)  # fmt: skip


GMAIL_SPELLINGS = ["victim@gmail.com", "v.i.c.t.i.m@gmail.com", "Victim@GoogleMail.com", "vic.tim+x@googlemail.com",
                   "V.ictim+news@gmail.com", "victim.@gmail.com"]  # fmt: skip


async def test_gmail_dots_and_googlemail_count_as_one_mailbox(open_setup: Setup) -> None:
    valid = [a for a in GMAIL_SPELLINGS if a != "victim.@gmail.com"]  # a dot at the end is not an address
    assert set(await sign_ups(open_setup, valid * 4)) == {200}
    assert len(await open_setup.delivered()) == 3
    stored = {r[0] for r in open_setup.db().execute("SELECT email FROM recipients")}
    assert "v.i.c.t.i.m@gmail.com" in stored and "victim@googlemail.com" in stored  # stored as typed (lower case)
    open_setup.clock.now = START + dt.timedelta(days=1, seconds=1)
    assert await sign_ups(open_setup, ["someone.else@gmail.com"]) == [200]
    assert len(await open_setup.delivered()) == 4  # another Gmail mailbox is not held back


def test_mailbox_is_only_for_limits() -> None:
    assert parse_address("V.ictim+news@GoogleMail.com").mailbox == "victim@gmail.com"
    assert parse_address("v.ictim+news@example.org").mailbox == "v.ictim@example.org"  # dots matter elsewhere
    assert parse_address("V.ictim+news@GoogleMail.com").key == "v.ictim+news@googlemail.com"
