"""The public web application: subscribe, double opt-in, one-click unsubscribe, the archive.

Every test runs the real app against a real SQLite file and sends the confirmation mails through the
real aiosmtpd server of ``smtp_server``; the end-to-end tests run uvicorn on 127.0.0.1 and drive the
form in headless Chromium.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from reallabor_mail.content.loader import load_content
from reallabor_mail.mail.message import Campaign, as_bytes, build_message, envelope
from reallabor_mail.recipients import links
from reallabor_mail.recipients import store as rcp
from reallabor_mail.recipients.person import Recipient
from reallabor_mail.render.engine import Renderer

from ..conftest import SAMPLE_CONTENT, TEMPLATES, SmtpServer, free_port
from .conftest import CLIENT_IP, FORM, SECRET, START, Setup, link_in, make_setup, running

pytestmark = pytest.mark.anyio


# --- double opt-in --------------------------------------------------------------------------------


async def test_subscribe_confirm_with_consent_record(setup: Setup, client: httpx.AsyncClient) -> None:
    form = await client.get("/subscribe?lang=de")
    assert form.status_code == 200
    assert "Newsletter und Einladungen abonnieren" in form.text and 'name="website"' in form.text

    done = await client.post("/subscribe", data=FORM)
    assert done.status_code == 200 and "Bitte prüfen Sie Ihr Postfach" in done.text
    assert setup.statuses("anna.mueller@dortmund.de") == {"newsletter": "pending"}

    (received,) = await setup.delivered()
    mail = received.message
    assert received.rcpt_tos == ["anna.mueller@dortmund.de"]
    assert mail["Subject"] == "Bitte bestätigen Sie Ihr Abonnement"
    assert mail.get_body(("plain",)).get_content().startswith("Sehr geehrte Damen und Herren,")  # type: ignore[union-attr]
    link = link_in(mail, "confirm")
    assert link.startswith("http://testserver/confirm/")

    page = await client.get(link)  # what a link scanner does: nothing changes
    assert page.status_code == 200 and "Jetzt bestätigen" in page.text
    assert setup.statuses("anna.mueller@dortmund.de") == {"newsletter": "pending"}

    setup.clock.now = START + dt.timedelta(hours=2)
    confirmed = await client.post(link)
    assert "Ihr Abonnement ist bestätigt" in confirmed.text
    assert [p.email for p in rcp.subscribers(setup.db(), "newsletter")] == ["anna.mueller@dortmund.de"]

    person = setup.person("anna.mueller@dortmund.de")
    assert person is not None
    signup, confirm = person.events
    assert (signup.action, signup.at, signup.ip, signup.source) == ("signup", "2026-03-02T09:30:00Z", CLIENT_IP, "form")
    assert signup.consent_version and signup.consent_version.startswith("de-")
    assert signup.consent_text and "Auslandsgesellschaft.de e.V." in signup.consent_text
    assert (confirm.action, confirm.at, confirm.ip) == ("confirm", "2026-03-02T11:30:00Z", CLIENT_IP)

    again = await client.post(link)  # a second click changes nothing
    assert "nichts (mehr) zu bestätigen" in again.text
    assert len(setup.person("anna.mueller@dortmund.de").events) == 2  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("query", "header", "words"),
    [
        ("?lang=uk", "", "Підписатися на розсилку та запрошення"),
        ("?lang=en", "", "Subscribe to the newsletter and invitations"),
        ("", "uk-UA,uk;q=0.9", "Підписатися на розсилку та запрошення"),
        ("", "fr-FR,fr", "Newsletter und Einladungen abonnieren"),
    ],
)
async def test_form_language(client: httpx.AsyncClient, query: str, header: str, words: str) -> None:
    page = await client.get(f"/subscribe{query}", headers={"Accept-Language": header} if header else {})
    assert words in page.text


async def test_confirmation_mail_in_the_chosen_language(setup: Setup, client: httpx.AsyncClient) -> None:
    form = {**FORM, "email": "olena@hromada.example.org", "first_name": "Олена", "last_name": "Коваленко",
            "title": "", "language": "uk", "lang": "uk"}  # fmt: skip
    assert (await client.post("/subscribe", data=form)).status_code == 200
    mail = (await setup.delivered())[0].message
    assert mail["Subject"] == "Будь ласка, підтвердьте підписку"
    assert mail.get_body(("plain",)).get_content().startswith("Шановні колеги,")  # type: ignore[union-attr]
    page = await client.get(link_in(mail, "confirm"))
    assert "Підтвердити" in page.text


@pytest.mark.parametrize(
    ("change", "field", "error"),
    [
        ({"last_name": "M" * 101}, "last_name", "Diese Angabe ist zu lang."),
        ({"first_name": "Anna\r\nBcc: victim@example.org"}, "first_name",
         "Bitte in einer Zeile und ohne Steuerzeichen schreiben."),
        ({"email": "anna@"}, "email", "Diese E-Mail-Adresse ist ungültig."),
        ({"email": "x" * 300 + "@example.org"}, "email", "Diese E-Mail-Adresse ist ungültig."),
        ({"email": ""}, "email", "Bitte geben Sie Ihre E-Mail-Adresse an."),
        ({"organisation": "=HYPERLINK(1)"}, "organisation", "Bitte nicht mit =, +, - oder @ beginnen."),
        ({"salutation": "Familie"}, "salutation", "Bitte wählen Sie Frau, Herr oder keine Angabe."),
        ({"consent": ""}, "consent", "Bitte bestätigen Sie die Einwilligung."),
        ({"lists": "secret-staff-list"}, "lists", "Bitte wählen Sie mindestens eine Liste."),
    ],
)
async def test_bad_form_input_stores_and_sends_nothing(
    setup: Setup, client: httpx.AsyncClient, change: dict[str, str], field: str, error: str
) -> None:
    page = await client.post("/subscribe", data={**FORM, **change})
    assert page.status_code == 400
    assert f'id="{field}-error">{error}</span>' in page.text
    assert 'value="Stadt Dortmund"' in page.text or field == "organisation"  # the form keeps what was typed
    assert ('id="consent" name="consent" value="yes" required checked>' in page.text) == (field != "consent")
    assert await setup.delivered() == [] and rcp.people(setup.db()) == []


async def test_second_sign_up_resends_without_duplicate(setup: Setup, client: httpx.AsyncClient) -> None:
    await client.post("/subscribe", data=FORM)
    await setup.delivered()
    setup.clock.now = START + dt.timedelta(days=8)  # the first link has expired by now
    await client.post("/subscribe", data={**FORM, "email": "anna.mueller@dortmund.de"})
    first, second = (m.message for m in await setup.delivered())
    assert (await client.post(link_in(first, "confirm"))).status_code == 400
    person = setup.person("anna.mueller@dortmund.de")
    assert person is not None and [e.action for e in person.events] == ["signup", "signup"]
    assert len(rcp.people(setup.db())) == 1 and setup.statuses(person.recipient.email) == {"newsletter": "pending"}
    await client.post(link_in(second, "confirm"))
    assert setup.statuses(person.recipient.email) == {"newsletter": "subscribed"}


async def test_subscribed_person_is_not_mailed_again(setup: Setup, client: httpx.AsyncClient) -> None:
    rcp.add_recipient(setup.db(), Recipient("anna.mueller@dortmund.de"), "newsletter", status="subscribed",
                      source="test", now=START)  # fmt: skip
    page = await client.post("/subscribe", data=FORM)
    assert "Bitte prüfen Sie Ihr Postfach" in page.text  # the same answer: the form tells nobody who is on the list
    assert await setup.delivered() == []


async def test_erased_address_needs_fresh_confirmation(setup: Setup, client: httpx.AsyncClient) -> None:
    conn = setup.db()
    rcp.add_recipient(conn, Recipient("anna.mueller@dortmund.de"), "newsletter", status="subscribed",
                      source="test", now=START)  # fmt: skip
    rcp.erase(conn, "anna.mueller@dortmund.de", SECRET, now=START)
    await client.post("/subscribe", data=FORM)
    assert rcp.is_suppressed(conn, "anna.mueller@dortmund.de", SECRET)
    assert list(rcp.subscribers(conn, "newsletter")) == []
    await client.post(link_in((await setup.delivered())[0].message, "confirm"))
    assert not rcp.is_suppressed(conn, "anna.mueller@dortmund.de", SECRET)
    assert [p.email for p in rcp.subscribers(conn, "newsletter")] == ["anna.mueller@dortmund.de"]


async def test_honeypot_pretends_success_and_does_nothing(setup: Setup, client: httpx.AsyncClient) -> None:
    page = await client.post("/subscribe", data={**FORM, "website": "http://spam.example"})
    assert page.status_code == 200 and "Bitte prüfen Sie Ihr Postfach" in page.text
    assert await setup.delivered() == [] and rcp.people(setup.db()) == []


async def test_rate_limit_per_ip(setup: Setup, client: httpx.AsyncClient) -> None:
    codes = [(await client.post("/subscribe", data={**FORM, "email": f"p{i}@example.org"})).status_code
             for i in range(12)]  # fmt: skip
    assert codes == [200] * 10 + [429] * 2  # ten attempts per IP and hour
    setup.clock.now = START + dt.timedelta(hours=1, seconds=1)
    assert (await client.post("/subscribe", data=FORM)).status_code == 200


# --- links that do not work -----------------------------------------------------------------------


async def test_forged_and_tampered_links_change_nothing(setup: Setup, client: httpx.AsyncClient) -> None:
    rcp.add_recipient(setup.db(), Recipient("anna.mueller@dortmund.de"), "newsletter", status="subscribed",
                      source="test", now=START)  # fmt: skip
    good = links.unsubscribe_url(setup.config.site, "anna.mueller@dortmund.de", "newsletter", SECRET)
    forged = links.unsubscribe_url(setup.config.site, "anna.mueller@dortmund.de", "newsletter", b"guessed-secret-xyz!")
    payload, signature = good.rsplit("/", 1)[1].split(".")
    tampered = f"/unsubscribe/{payload[:-2]}AA.{signature}"
    for url in (forged, tampered, "/unsubscribe/garbage", "/confirm/" + good.rsplit("/", 1)[1]):
        for method in ("GET", "POST"):
            page = await client.request(method, url, data={"List-Unsubscribe": "One-Click"})
            assert page.status_code == 400 and "Dieser Link funktioniert nicht" in page.text, (url, method)
    assert setup.statuses("anna.mueller@dortmund.de") == {"newsletter": "subscribed"}


async def test_unsubscribe_page_has_one_button(setup: Setup, client: httpx.AsyncClient) -> None:
    rcp.add_recipient(setup.db(), Recipient("olena@hromada.example.org", language="uk"), "reallabor",
                      status="subscribed", source="test", now=START)  # fmt: skip
    url = links.unsubscribe_url(setup.config.site, "olena@hromada.example.org", "reallabor", SECRET)
    page = await client.get(url)
    assert "Відписати olena@hromada.example.org від «Запрошення до «Реальної лабораторії Україна»»?" in page.text
    assert page.text.count("<button") == 1 and page.headers["referrer-policy"] == "no-referrer"
    assert setup.statuses("olena@hromada.example.org") == {"reallabor": "subscribed"}
    left = await client.post(url, data={"via": "page"})
    assert "Ви відписалися" in left.text
    person = setup.person("olena@hromada.example.org")
    assert person is not None and (person.events[-1].action, person.events[-1].source) == (
        "unsubscribe", "unsubscribe page",
    )  # fmt: skip


async def test_archive_is_served(client: httpx.AsyncClient) -> None:
    assert "Archiv" in (await client.get("/")).text
    assert "Newsletter 3/2023" in (await client.get("/newsletters/2023-3/")).text
    assert (await client.get("/preview/")).status_code == 404  # the public server never serves the preview


# --- end to end on 127.0.0.1 ----------------------------------------------------------------------


@pytest.fixture
def live(tmp_path: Path, smtp_server: SmtpServer) -> Iterator[tuple[Setup, str]]:
    """The public app under uvicorn on a free loopback port (the app must know its own address)."""
    port = free_port()
    setup = make_setup(tmp_path, smtp_server, f"http://127.0.0.1:{port}", outbox_poll_seconds=0.1)
    with running(setup.app, port) as base:
        yield setup, base


def send_newsletter(setup: Setup, person: Recipient) -> EmailMessage:
    """The real newsletter of the sample content, built and sent as the send path does."""
    content = load_content(SAMPLE_CONTENT)
    item = next(n for n in content.newsletters if n.stem == "2023-3")
    rendered = Renderer(content, TEMPLATES).newsletter_email(item, "de")
    url = links.unsubscribe_url(setup.config.site, person.email, "newsletter", SECRET)
    campaign = Campaign("newsletter:2023-3", "newsletter", START)
    message = build_message(setup.config.site, rendered, person, campaign, secret=SECRET, unsubscribe_url=url)

    async def send() -> None:
        connection = setup.config.transport.connection()
        await connection.deliver(*envelope(message), as_bytes(message))
        await connection.close()

    asyncio.run(send())
    return setup.smtp.messages[-1].message


def test_one_click_with_the_url_from_a_sent_message(live: tuple[Setup, str]) -> None:
    setup, base = live
    person = Recipient("anna.mueller@dortmund.de", "Frau", "Dr.", "Anna", "Müller")
    rcp.add_recipient(setup.db(), person, "newsletter", status="subscribed", source="test", now=START)
    received = send_newsletter(setup, person)
    header = received["List-Unsubscribe"]
    url = re.match(r"<(https?://[^>]+)>", header).group(1)  # type: ignore[union-attr]
    assert url.startswith(f"{base}/unsubscribe/") and received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert url in received.get_body(("plain",)).get_content()  # type: ignore[union-attr]  # footer link = header URL

    with httpx.Client() as http:  # a fresh client: no cookie, no session, no CSRF token
        assert http.get(url).status_code == 200
        assert setup.statuses(person.email) == {"newsletter": "subscribed"}  # GET never unsubscribes
        done = http.post(url, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    assert setup.statuses(person.email) == {"newsletter": "unsubscribed"}
    assert list(rcp.subscribers(setup.db(), "newsletter")) == []
    event = setup.person(person.email).events[-1]  # type: ignore[union-attr]
    assert (event.action, event.source, event.ip) == ("unsubscribe", "one-click (RFC 8058)", "127.0.0.1")


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]  # fmt: skip


@pytest.mark.browser
def test_subscribe_in_chromium_then_confirm_receive_and_leave(live: tuple[Setup, str]) -> None:
    """Done when: a person can subscribe, confirm, receive, and leave with one click, each step recorded."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    setup, base = live
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(locale="de-DE")
            page.goto(f"{base}/subscribe")
            page.fill("#email", "Joerg.Weiss@example.org")
            page.select_option("#salutation", "Herr")
            page.fill("#first_name", "Jörg")
            page.fill("#last_name", "Weiß")
            page.fill("#organisation", "Gemeinde Möhnesee")
            page.check("#list-reallabor")
            page.check("#consent")
            page.click("button[type=submit]")
            page.wait_for_selector("text=Bitte prüfen Sie Ihr Postfach")
            assert page.title().startswith("Bitte prüfen Sie Ihr Postfach")

            mail = setup.arrived(1)[0].message
            page.goto(link_in(mail, "confirm"))
            page.click("button[type=submit]")
            page.wait_for_selector("text=Ihr Abonnement ist bestätigt")
        finally:
            browser.close()
    email = "joerg.weiss@example.org"
    assert setup.statuses(email) == {"newsletter": "subscribed", "reallabor": "subscribed"}
    person = rcp.find(setup.db(), email)
    assert person is not None and person.recipient.last_name == "Weiß"

    received = send_newsletter(setup, person.recipient)
    url = re.match(r"<([^>]+)>", received["List-Unsubscribe"]).group(1)  # type: ignore[union-attr]
    assert httpx.post(url, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert setup.statuses(email) == {"newsletter": "unsubscribed", "reallabor": "subscribed"}
    actions = [(e.list_name, e.action) for e in rcp.find(setup.db(), email).events]  # type: ignore[union-attr]
    assert actions == [
        ("newsletter", "signup"), ("reallabor", "signup"),
        ("newsletter", "confirm"), ("reallabor", "confirm"),
        ("newsletter", "unsubscribe"),
    ]  # fmt: skip
