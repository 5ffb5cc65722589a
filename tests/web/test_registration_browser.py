"""Registration for an event end to end in headless Chromium (issue 14's "done when"): the real form,
the real server under uvicorn with its outbox worker, the mails from the real SMTP server. In a module of
its own: the browser (module-scoped) keeps an event loop running that the async tests must not meet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..conftest import SmtpServer
from .conftest import running
from .test_registration import STEM, calendar_of, link, registration_setup, states


def test_end_to_end_in_chromium_with_one_seat(tmp_path: Path, smtp_server: SmtpServer, chromium: Any) -> None:
    """Two people register through the form in headless Chromium for one seat: the first gets it, the second
    waits; the first cancels with the link of their mail, the second moves up and gets the invitation."""
    from ..conftest import free_port

    port = free_port()
    setup = registration_setup(tmp_path, smtp_server, f"http://127.0.0.1:{port}")
    people = [("anna.mueller@dortmund.de", "Anna", "Müller"), ("olena@hromada.example.org", "Olena", "Koval")]
    with running(setup.app, port) as base:
        page = chromium.new_page()
        for number, (email, first, last) in enumerate(people):
            page.goto(f"{base}/events/{STEM}/register?lang=de")
            page.fill("#email", email)
            page.fill("#first_name", first)
            page.fill("#last_name", last)
            page.fill("#organisation", "Stadt Dortmund")
            page.check("#consent")
            page.click("button[type=submit]")
            assert page.locator("h1").inner_text() == "Bitte prüfen Sie Ihr Postfach"
            confirmation = setup.arrived(2 * number + 1)[-1].message
            page.goto(link(confirmation, "confirm"))  # GET: a page with one button
            page.click("button[type=submit]")
            expected = "Sie sind angemeldet" if number == 0 else "Sie stehen auf der Warteliste"
            assert page.locator("h1").inner_text() == expected
        mails = setup.arrived(4)
        assert states(setup) == {people[0][0]: ("registered", None), people[1][0]: ("waiting", 1)}
        assert "Position 1" in mails[3].message.get_body(("plain",)).get_content()

        page.goto(link(mails[1].message, "cancel"))
        page.click("button[type=submit]")
        assert page.locator("h1").inner_text() == "Anmeldung storniert"
        moved = setup.arrived(5)[4].message
    assert moved["To"] == people[1][0] and moved["Subject"].startswith("Ein Platz ist für Sie frei geworden")
    (vevent,) = calendar_of(moved).walk("VEVENT")
    assert str(vevent["ATTENDEE"]) == f"mailto:{people[1][0]}"
    assert states(setup) == {people[1][0]: ("registered", None), people[0][0]: ("cancelled", None)}
