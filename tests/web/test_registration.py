"""Registration for events by the public server's form (issue 14): double opt-in as the sign-up, seats,
the waiting list that moves up, signed cancel links, closing at the deadline and the start, erasure.

The app runs on a real SQLite file and sends through the real aiosmtpd server; the clock is moved, not
waited for. The event is a copy of the sample content with one future event that takes form registrations.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import shutil
from email.message import EmailMessage
from pathlib import Path

import httpx
import icalendar
import pytest
from click.testing import CliRunner

from reallabor_mail.cli.main import main
from reallabor_mail.content.loader import EventItem, load_content
from reallabor_mail.db import DatabaseUrl, StateLocation
from reallabor_mail.mailbox import attendance

from ..conftest import SAMPLE_CONTENT, SmtpServer
from .conftest import CLIENT_IP, SECRET, Setup, make_setup, running
from .test_safe_methods import dump

pytestmark = pytest.mark.anyio

STEM = "2026-04-23-tag-der-staedtepartnerschaften"
EVENT = """---
title: "Tag der Städtepartnerschaften"
kind: "Konferenz"
start: 2026-04-23 10:00
end: 2026-04-23 16:00
format: in_person
location: "Auslandsgesellschaft.de e.V., Steinstr. 48, 44147 Dortmund"
registration: {{form: true, capacity: {capacity}, deadline: 2026-04-16}}
status: scheduled
lists: [reallabor]
---
Ein Tag für Partnerschaften zwischen deutschen und ukrainischen Kommunen.
"""
PERSON = {
    "email": "anna.mueller@dortmund.de", "salutation": "Frau", "title": "", "first_name": "Anna",
    "last_name": "Müller", "organisation": "Stadt Dortmund", "language": "de", "consent": "yes", "website": "",
}  # fmt: skip


def content_with_event(tmp_path: Path, capacity: int = 1) -> Path:
    """The sample content plus one future event with ``registration: {form: true, capacity: N}``."""
    content = tmp_path / "content"
    shutil.copytree(SAMPLE_CONTENT, content)
    (content / "events" / f"{STEM}.md").write_text(EVENT.format(capacity=capacity), encoding="utf-8")
    return content


def the_event(content: Path) -> EventItem:
    return next(e for e in load_content(content).events if e.stem == STEM)


def registration_setup(tmp_path: Path, smtp_server: SmtpServer, public_url: str = "http://testserver",
                       capacity: int = 1, state: StateLocation | None = None) -> Setup:  # fmt: skip
    content = content_with_event(tmp_path, capacity)
    return make_setup(tmp_path, smtp_server, public_url, state=state, events=load_content(content).events)


@pytest.fixture
def reg(tmp_path: Path, smtp_server: SmtpServer, state: StateLocation) -> Setup:
    """The public app with one event to register for, on each back end."""
    return registration_setup(tmp_path, smtp_server, state=state)


@pytest.fixture
async def http(reg: Setup) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=reg.app, client=(CLIENT_IP, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def link(message: EmailMessage, kind: str) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    match = re.search(rf"https?://\S+/events/{STEM}/{kind}/\S+", body.get_content())
    assert match, body.get_content()
    return match.group(0)


def calendar_of(message: EmailMessage) -> icalendar.Calendar:
    part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    return icalendar.Calendar.from_ical(part.get_payload(decode=True))


async def new_mails(setup: Setup, seen: int) -> list[EmailMessage]:
    return [m.message for m in (await setup.delivered())[seen:]]


async def register_and_confirm(setup: Setup, http: httpx.AsyncClient, email: str, **fields: str) -> EmailMessage:
    """Send the form, press the confirmation button; the mail that says what became of it."""
    seen = len(setup.smtp.messages)
    answer = await http.post(f"/events/{STEM}/register", data={**PERSON, "email": email, **fields})
    assert answer.status_code == 200, answer.text
    (confirmation,) = await new_mails(setup, seen)
    assert (await http.post(link(confirmation, "confirm"))).status_code == 200
    (result,) = await new_mails(setup, seen + 1)
    return result


def state_option(state: StateLocation) -> str:
    """``--state`` for a state: the file's path or the server's URL."""
    return state.url if isinstance(state, DatabaseUrl) else str(state)


def states(setup: Setup) -> dict[str, tuple[str, int | None]]:
    return {r.email: (r.state, r.position) for r in attendance.form_registrations(setup.db(), STEM)}


async def test_form_in_each_language_and_unknown_event_404(reg: Setup, http: httpx.AsyncClient) -> None:
    for lang, words in (("de", "Zur Veranstaltung anmelden"), ("uk", "Зареєструватися на захід"),
                        ("en", "Register for the event")):  # fmt: skip
        page = await http.get(f"/events/{STEM}/register?lang={lang}")
        assert page.status_code == 200 and words in page.text and "Tag der Städtepartnerschaften" in page.text
        assert 'name="website"' in page.text and 'name="consent"' in page.text
    assert (await http.get("/events/no-such-event/register")).status_code == 404
    past = "2024-06-19-abschlussveranstaltung"  # registration by email only: no form
    assert (await http.get(f"/events/{past}/register")).status_code == 404


async def test_register_confirm_by_post_only_then_invitation_with_attendee(reg: Setup, http: httpx.AsyncClient) -> None:
    answer = await http.post(f"/events/{STEM}/register", data=PERSON)
    assert answer.status_code == 200 and "Postfach" in answer.text
    assert states(reg) == {"anna.mueller@dortmund.de": ("pending", None)}
    (confirmation,) = await new_mails(reg, 0)
    assert confirmation["Subject"].startswith("Bitte bestätigen Sie Ihre Anmeldung")
    assert "Anna" not in confirmation.get_body(("plain",)).get_content()  # no name a stranger typed
    url = link(confirmation, "confirm")
    before = dump(reg)
    for method in ("HEAD", "GET"):  # link scanners
        assert (await http.request(method, url, headers={"User-Agent": "Mimecast"})).status_code == 200
    assert dump(reg) == before

    done = await http.post(url)
    assert done.status_code == 200 and "Platz ist reserviert" in done.text
    assert states(reg) == {"anna.mueller@dortmund.de": ("registered", None)}
    (confirmed,) = await new_mails(reg, 1)
    assert confirmed["Subject"] == "Anmeldung bestätigt: Tag der Städtepartnerschaften"
    assert confirmed["DKIM-Signature"] is None  # no signer configured here; tests/web/test_dkim.py covers signing
    calendar = calendar_of(confirmed)
    assert calendar["METHOD"] == "REQUEST"
    (vevent,) = calendar.walk("VEVENT")
    assert str(vevent["ATTENDEE"]) == "mailto:anna.mueller@dortmund.de"
    assert vevent["ATTENDEE"].params["CN"] == "Anna Müller"
    assert f"/events/{STEM}/cancel/" in confirmed.get_body(("plain",)).get_content()
    again = await http.post(url)  # a second press registers nobody twice
    assert "Nichts zu bestätigen" in again.text and await new_mails(reg, 2) == []


async def test_full_event_waiting_list_and_move_up_on_cancel(reg: Setup, http: httpx.AsyncClient) -> None:
    first = await register_and_confirm(reg, http, "anna.mueller@dortmund.de")
    second = await register_and_confirm(reg, http, "olena@hromada.example.org", language="uk", first_name="Олена",
                                        last_name="Коваль")  # fmt: skip
    third = await register_and_confirm(reg, http, "jan@example.org", language="en", first_name="Jan", last_name="K")
    assert states(reg) == {
        "anna.mueller@dortmund.de": ("registered", None), "olena@hromada.example.org": ("waiting", 1),
        "jan@example.org": ("waiting", 2),
    }  # fmt: skip
    assert second["Subject"].startswith("Список очікування")
    assert "позиції 1" in second.get_body(("plain",)).get_content()
    assert "position 2" in third.get_body(("plain",)).get_content()
    assert not any(p.get_content_type() == "text/calendar" for p in second.walk())  # no seat, no invitation

    seen = len(reg.smtp.messages)
    cancel = link(first, "cancel")
    assert (await http.get(cancel)).status_code == 200 and states(reg)["anna.mueller@dortmund.de"][0] == "registered"
    done = await http.post(cancel)
    assert done.status_code == 200 and "storniert" in done.text
    assert states(reg) == {
        "olena@hromada.example.org": ("registered", None), "jan@example.org": ("waiting", 1),
        "anna.mueller@dortmund.de": ("cancelled", None),
    }  # fmt: skip
    (moved,) = await new_mails(reg, seen)
    assert moved["To"] == "olena@hromada.example.org" and moved["Subject"].startswith("Для вас звільнилося місце")
    (vevent,) = calendar_of(moved).walk("VEVENT")
    assert str(vevent["ATTENDEE"]) == "mailto:olena@hromada.example.org"
    # a waiting person who cancels frees no seat: nobody moves up
    assert (await http.post(link(third, "cancel"))).status_code == 200
    assert await new_mails(reg, seen + 1) == []
    assert "Nichts zu stornieren" in (await http.post(cancel)).text  # the first cancel link, pressed again


async def test_forged_expired_and_foreign_links_change_nothing(reg: Setup, http: httpx.AsyncClient) -> None:
    confirmed = await register_and_confirm(reg, http, "anna.mueller@dortmund.de")
    cancel = link(confirmed, "cancel")
    token = cancel.rpartition("/")[2]
    forged = cancel[: -len(token)] + token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    for url in (forged, cancel.replace(f"/events/{STEM}/", "/events/2024-06-19-abschlussveranstaltung/"),
                cancel.replace("/cancel/", "/confirm/")):  # fmt: skip
        assert (await http.post(url)).status_code == 400, url
    assert states(reg)["anna.mueller@dortmund.de"][0] == "registered"
    reg.clock.now = the_event_start(reg)  # the cancel link expires when the event starts
    assert (await http.post(cancel)).status_code == 400
    assert states(reg)["anna.mueller@dortmund.de"][0] == "registered"


def the_event_start(setup: Setup) -> dt.datetime:
    return setup.site.registrations.events[STEM].meta.start


async def test_closed_after_the_deadline_and_at_the_start(reg: Setup, http: httpx.AsyncClient) -> None:
    reg.clock.now = dt.datetime(2026, 4, 15, 12, 0, tzinfo=dt.UTC)
    await http.post(f"/events/{STEM}/register", data=PERSON)
    (confirmation,) = await new_mails(reg, 0)
    reg.clock.now = dt.datetime(2026, 4, 16, 21, 59, tzinfo=dt.UTC)  # 23:59 in Dortmund: the deadline day
    assert "Zur Veranstaltung anmelden" in (await http.get(f"/events/{STEM}/register")).text
    reg.clock.now = dt.datetime(2026, 4, 16, 22, 0, tzinfo=dt.UTC)  # 00:00 on the 17th
    for answer in (await http.get(f"/events/{STEM}/register"), await http.post(f"/events/{STEM}/register", data=PERSON),
                   await http.post(link(confirmation, "confirm"))):  # fmt: skip
        assert "Die Anmeldung zu „Tag der Städtepartnerschaften“ ist geschlossen" in answer.text
    assert states(reg) == {"anna.mueller@dortmund.de": ("pending", None)}


async def test_closed_at_the_start_without_deadline(tmp_path: Path, smtp_server: SmtpServer) -> None:
    content = content_with_event(tmp_path)
    path = content / "events" / f"{STEM}.md"
    path.write_text(path.read_text(encoding="utf-8").replace(", deadline: 2026-04-16", ""), encoding="utf-8")
    setup = make_setup(tmp_path, smtp_server, "http://testserver", events=load_content(content).events)
    setup.clock.now = the_event_start(setup)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=setup.app), base_url="http://testserver") as http:
        assert "ist geschlossen" in (await http.get(f"/events/{STEM}/register")).text


async def test_form_refuses_what_the_sign_up_refuses(reg: Setup, http: httpx.AsyncClient) -> None:
    url = f"/events/{STEM}/register"
    cross = await http.post(url, data=PERSON, headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    missing = await http.post(url, data={**PERSON, "last_name": "", "consent": ""})
    assert missing.status_code == 400 and "Bitte geben Sie Ihren Namen an." in missing.text
    bot = await http.post(url, data={**PERSON, "website": "http://spam.example"})
    assert bot.status_code == 200 and "Postfach" in bot.text
    assert states(reg) == {} and await new_mails(reg, 0) == []
    for _ in range(10):  # the per-client allowance is the sign-up's (10 an hour)
        assert (await http.post(url, data=PERSON)).status_code == 200
    assert (await http.post(url, data=PERSON)).status_code == 429
    # the per-mailbox cap of confirmation mails: 3 a day to one mailbox, however often the form is sent
    assert len(await new_mails(reg, 0)) == 3


async def test_form_refuses_bidi_and_zero_width_characters_in_the_readers_language(
    reg: Setup, http: httpx.AsyncClient
) -> None:
    url = f"/events/{STEM}/register"
    answer = await http.post(url, data={**PERSON, "lang": "uk", "organisation": "Stadt\u202eDortmund"})
    assert answer.status_code == 400 and "без спеціальних символів" in answer.text
    answer = await http.post(url, data={**PERSON, "first_name": "An\u200bna"})
    assert answer.status_code == 400 and "ohne Steuerzeichen" in answer.text
    assert states(reg) == {} and await new_mails(reg, 0) == []


async def test_a_link_confirms_only_the_details_its_mail_was_sent_for(reg: Setup, http: httpx.AsyncClient) -> None:
    url = f"/events/{STEM}/register"
    assert (await http.post(url, data=PERSON)).status_code == 200
    (owners,) = await new_mails(reg, 0)
    stranger = {**PERSON, "last_name": "<b>Zzfremd</b>", "organisation": "Falsche GmbH"}
    assert (await http.post(url, data=stranger)).status_code == 200
    (strangers,) = await new_mails(reg, 1)
    assert "Zzfremd" not in strangers.get_body(("plain",)).get_content()  # no stranger-chosen text in mails
    page = await http.get(link(owners, "confirm"))  # the owner's link: its details were replaced since
    assert "Zzfremd" not in page.text and "neueste" in page.text
    answer = await http.post(link(owners, "confirm"))
    assert answer.status_code == 409 and states(reg) == {"anna.mueller@dortmund.de": ("pending", None)}
    page = await http.get(link(strangers, "confirm"))  # the page behind the newer link shows what it confirms
    assert "&lt;b&gt;Zzfremd&lt;/b&gt;" in page.text and "Falsche GmbH" in page.text
    assert (await http.post(link(strangers, "confirm"))).status_code == 200


async def test_registered_person_keeps_seat_and_details_when_a_stranger_resends_the_form(
    reg: Setup, http: httpx.AsyncClient
) -> None:
    await register_and_confirm(reg, http, "anna.mueller@dortmund.de")
    assert (await http.post(f"/events/{STEM}/register", data={**PERSON, "last_name": "Fremd"})).status_code == 200
    found = attendance.form_registration(reg.db(), STEM, "anna.mueller@dortmund.de")
    assert found is not None and found.state == "registered" and found.person.last_name == "Müller"
    assert await new_mails(reg, 2) == []  # nothing to confirm: the outbox drops the mail


async def test_staff_see_registrations_with_counts_and_the_desk_csv(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    reg = registration_setup(tmp_path, smtp_server)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=reg.app), base_url="http://testserver") as http:
        first = await register_and_confirm(reg, http, "anna.mueller@dortmund.de")
        await register_and_confirm(reg, http, "olena@hromada.example.org", first_name="Olena", last_name="Koval")
        await register_and_confirm(reg, http, "jan@example.org", first_name="Jan", last_name="Kowalski")
        await http.post(link(first, "cancel"))
    csv_file = tmp_path / "desk.csv"
    result = CliRunner().invoke(main, [
        "registrations", str(tmp_path / "content" / "events" / f"{STEM}.md"), "--state", str(reg.config.state),
        "--csv", str(csv_file),
    ], env={"REALLABOR_LANG": "de"})  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Anmeldeformular: angemeldet 1, Warteliste 1, storniert 1, unbestätigt 0" in result.output
    assert re.search(r"angemeldet\s+olena@hromada.example.org  Olena Koval", result.output)
    assert re.search(r"Warteliste \(1\)\s+jan@example.org  Jan Kowalski", result.output)
    assert re.search(r"storniert\s+anna.mueller@dortmund.de", result.output)
    desk = csv_file.read_bytes()
    assert desk.startswith(b"\xef\xbb\xbf")
    rows = desk.decode("utf-8-sig").split("\r\n")
    assert any(r.startswith("angemeldet;Frau;;Olena;Koval;") for r in rows)
    assert rows[0].split(";")[7:] == ["Beantwortet am", "Unterschrift"]  # no version column for the desk
    olena = next(r for r in rows if "olena@" in r).split(";")
    assert olena[7] == "02.03.2026 10:30"  # confirmed at 09:30 UTC: Berlin time as the recipients export writes it
    assert any(r.startswith("Warteliste (1);Frau;;Jan;Kowalski;") for r in rows)
    assert not any("anna.mueller" in r for r in rows)  # cancelled: not on the desk's list


async def test_export_of_a_registrant_shows_the_registrations(reg: Setup) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=reg.app), base_url="http://testserver") as http:
        await register_and_confirm(reg, http, "anna.mueller@dortmund.de")
    result = CliRunner().invoke(main, [
        "recipients", "export", "Anna.Mueller@dortmund.de", "--state", state_option(reg.config.state),
    ], env={"REALLABOR_SECRET": SECRET.decode(), "REALLABOR_LANG": "de"})  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = result.output.splitlines()
    assert rows[0].startswith("Veranstaltung;Anmeldung;Angefragt am;Bestätigt am;")
    assert rows[1].startswith(f"{STEM};angemeldet;02.03.2026 10:30;02.03.2026 10:30;Frau;;Anna;Müller;Stadt Dortmund")


async def test_erasure_removes_the_registrations(reg: Setup) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=reg.app), base_url="http://testserver") as http:
        await register_and_confirm(reg, http, "anna.mueller@dortmund.de")
    result = CliRunner().invoke(main, [
        "recipients", "delete", "Anna.Mueller@dortmund.de", "--yes", "--state", state_option(reg.config.state),
    ], env={"REALLABOR_SECRET": SECRET.decode(), "REALLABOR_LANG": "en"})  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output == "Anna.Mueller@dortmund.de: the event registrations were erased; the address is suppressed\n"
    assert states(reg) == {}
    conn = reg.db()
    left = [tuple(row) for table in ("recipients", "event_registrations", "inbox_messages")
            for row in conn.execute(f"SELECT * FROM {table}").fetchall()]  # fmt: skip
    assert not any("mueller" in str(row).lower() for row in left), left
    if isinstance(reg.config.state, Path):
        assert b"Mueller" not in reg.config.state.read_bytes() and b"mueller" not in reg.config.state.read_bytes()


async def test_an_erased_seat_holder_frees_the_seat_for_the_first_waiting(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    reg = registration_setup(tmp_path, smtp_server)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=reg.app), base_url="http://testserver") as http:
        await register_and_confirm(reg, http, "anna.mueller@dortmund.de")
        await register_and_confirm(reg, http, "olena@hromada.example.org", language="uk")
        result = CliRunner().invoke(main, [
            "recipients", "delete", "anna.mueller@dortmund.de", "--yes", "--state", str(reg.config.state),
        ], env={"REALLABOR_SECRET": SECRET.decode(), "REALLABOR_LANG": "en"})  # fmt: skip
        assert result.exit_code == 0, result.output
        seen = len(reg.smtp.messages)
        reg.site.registrations.fill_all_seats()  # what the server does at each outbox poll
        (moved_up,) = await new_mails(reg, seen)
        assert moved_up["To"] == "olena@hromada.example.org" and calendar_of(moved_up).get("METHOD") == "REQUEST"
        assert states(reg) == {"olena@hromada.example.org": ("registered", None)}
        # a newcomer then finds the event full
        newcomer = await register_and_confirm(reg, http, "jan@example.org")
        assert states(reg)["jan@example.org"] == ("waiting", 1) and "Warteliste" in newcomer["Subject"]


async def test_a_calendar_decline_of_a_form_registrant_frees_the_seat(tmp_path: Path, smtp_server: SmtpServer) -> None:
    from tests.mailbox import samples
    from tests.mailbox.test_inbox import maildir

    reg = registration_setup(tmp_path, smtp_server)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=reg.app), base_url="http://testserver") as http:
        invite = await register_and_confirm(reg, http, "anna.mueller@dortmund.de")
        await register_and_confirm(reg, http, "olena@hromada.example.org")
        folder = maildir(tmp_path / "Maildir", samples.gmail_reply(invite, "TENTATIVE"),
                         samples.gmail_reply(invite, "DECLINED"))  # fmt: skip
        result = CliRunner().invoke(main, [
            "inbox", "--maildir", str(folder), "--content", str(tmp_path / "content"), "--state",
            str(reg.config.state),
        ], env={"REALLABOR_SECRET": SECRET.decode(), "REALLABOR_LANG": "en"})  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "an event we did not send" not in result.output
        assert states(reg)["anna.mueller@dortmund.de"] == ("cancelled", None)
        seen = len(reg.smtp.messages)
        reg.site.registrations.fill_all_seats()  # the server, at its next outbox poll
        (moved_up,) = await new_mails(reg, seen)
        assert moved_up["To"] == "olena@hromada.example.org"
        assert states(reg)["olena@hromada.example.org"] == ("registered", None)


def test_over_http_get_and_head_change_nothing_post_confirms(tmp_path: Path, smtp_server: SmtpServer) -> None:
    """The same over uvicorn with the server's own outbox worker (mails leave in the background)."""
    from ..conftest import free_port

    port = free_port()
    setup = registration_setup(tmp_path, smtp_server, f"http://127.0.0.1:{port}")
    with running(setup.app, port) as base, httpx.Client(base_url=base) as http:
        assert http.post(f"/events/{STEM}/register", data=PERSON).status_code == 200
        (confirmation,) = setup.arrived(1)
        url = link(confirmation.message, "confirm")
        assert http.head(url).status_code == 200 and http.get(url).status_code == 200
        assert states(setup) == {"anna.mueller@dortmund.de": ("pending", None)}
        assert http.post(url).status_code == 200
        _, confirmed = setup.arrived(2)
        assert states(setup) == {"anna.mueller@dortmund.de": ("registered", None)}
        assert calendar_of(confirmed.message)["METHOD"] == "REQUEST"


async def test_preview_shows_the_counts_and_the_pages_link_to_the_form(tmp_path: Path, smtp_server: SmtpServer) -> None:
    """The staff preview's event page shows the counts of ``registrations``; the event page and the
    invitation (HTML and text) link to the form."""
    from reallabor_mail.i18n.messages import activate_staff_language
    from reallabor_mail.settings import Settings
    from tests.test_preview import running_preview

    reg = registration_setup(tmp_path, smtp_server)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=reg.app), base_url="http://testserver") as http:
        first = await register_and_confirm(reg, http, "anna.mueller@dortmund.de")
        await register_and_confirm(reg, http, "olena@hromada.example.org")
        await register_and_confirm(reg, http, "jan@example.org")
        await http.post(link(first, "cancel"))
    activate_staff_language("de")
    try:
        with running_preview(tmp_path / "content", reg.config.state, Settings()) as live:
            page = live.get(f"events/{STEM}/?lang=de").text
            web = live.get(f"events/{STEM}/web.html?lang=de").text
            email = live.get(f"events/{STEM}/email.html?lang=de").text
    finally:
        activate_staff_language("en")
    assert "Anmeldeformular: angemeldet 1, Warteliste 1, storniert 1, unbestätigt 0" in page
    form = f"/events/{STEM}/register?lang="
    for html in (web, email):
        assert re.search(rf'href="https://[^"]*{re.escape(form)}de"[^>]*>Über unser Formular anmelden</a>', html)
    assert f"{form}de" in page  # the invitation's text part, shown on the page


def test_updates_and_cancellations_reach_form_registrants_and_reminders_skip_the_cancelled(
    tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An update reaches who holds a seat by form (not the waiting, not who cancelled); a cancellation also
    the waiting; reminders skip who cancelled their registration, even a list member invited by list."""
    from reallabor_mail.db import connect
    from reallabor_mail.delivery.reminders import invited
    from tests.test_sending import PEOPLE, subscribed_env
    from tests.test_sending import SECRET as SEND_SECRET

    subscribed_env(tmp_path, "127.0.0.1", smtp_server.port, monkeypatch)
    reg = registration_setup(tmp_path, smtp_server, capacity=2)
    reg.config.secret = SEND_SECRET.encode()
    member = PEOPLE[0].email  # on the list, registers by form and cancels

    async def fill() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=reg.app), base_url="http://testserver") as http:
            first = await register_and_confirm(reg, http, member)
            await register_and_confirm(reg, http, "olena@hromada.example.org")
            await register_and_confirm(reg, http, "jan@example.org")
            await http.post(link(first, "cancel"))
            await reg.delivered()  # the moved-up mail
            await register_and_confirm(reg, http, "wait@example.org")

    asyncio.run(fill())
    assert states(reg) == {
        "olena@hromada.example.org": ("registered", None), "jan@example.org": ("registered", None),
        "wait@example.org": ("waiting", 1), member: ("cancelled", None),
    }  # fmt: skip
    event_file = tmp_path / "content" / "events" / f"{STEM}.md"
    everyone = {p.email for p in PEOPLE}

    def send() -> set[str]:
        smtp_server.handler.messages.clear()
        result = CliRunner().invoke(main, ["send", str(event_file), "--yes"])
        assert result.exit_code == 0, result.output
        return {m.rcpt_tos[0] for m in smtp_server.handler.messages}

    assert send() == everyone  # the first invitation: the registered hold theirs already
    later = event_file.read_text(encoding="utf-8").replace("end: 2026-04-23 16:00", "end: 2026-04-23 17:00")
    event_file.write_text(later, encoding="utf-8")
    second = send()
    assert second == everyone | {"olena@hromada.example.org", "jan@example.org"}
    conn = connect(reg.config.state)
    reminded = {person.email for person, _list in invited(conn, the_event(tmp_path / "content"), SEND_SECRET.encode())}
    assert reminded == (everyone - {member}) | {"olena@hromada.example.org", "jan@example.org"}
    event_file.write_text(event_file.read_text(encoding="utf-8").replace("status: scheduled", "status: cancelled"),
                          encoding="utf-8")  # fmt: skip
    assert send() == everyone | {"olena@hromada.example.org", "jan@example.org", "wait@example.org"}
