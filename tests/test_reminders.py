"""Event reminders through the real CLI and a real SMTP server: ``reminder: 24h`` (or the site's default),
sent by ``worker --once`` once per version to the invited who have neither declined nor unsubscribed."""

from __future__ import annotations

import pytest

from reallabor_mail.db import connect
from reallabor_mail.recipients import store as recipients
from reallabor_mail.recipients.person import Recipient
from tests import test_schedule
from tests.conftest import SmtpServer
from tests.test_schedule import Office
from tests.test_sending import EVENT, NOW, PEOPLE, by_recipient

STEM = "2024-06-19-abschlussveranstaltung"
UNSUBSCRIBED = "kim@bochum.example"
DECLINED = "info@hamm.example"

office = test_schedule.office  # the fixture: people, SMTP settings and a test clock


def edit(office: Office, old: str, new: str) -> None:
    file = office.content / EVENT
    text = file.read_text(encoding="utf-8")
    assert old in text
    file.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture
def invited(office: Office, smtp_server: SmtpServer) -> Office:
    """The event asks for a reminder a day ahead; its invitation went to all seven. Then one person
    unsubscribed, one declined, and one subscribed who was never invited."""
    edit(office, "status: scheduled", "status: scheduled\nreminder: 24h")
    sent = office.send(EVENT, "--yes")
    assert sent.exit_code == 0 and len(smtp_server.messages) == len(PEOPLE), sent.output
    smtp_server.messages.clear()
    conn = connect(office.state)
    recipients.unsubscribe(conn, UNSUBSCRIBED, "reallabor", source="test", now=NOW)
    conn.execute("INSERT INTO event_declines (event, email, at) VALUES (?, ?, '2024-06-01T00:00:00Z')",
                 (STEM, DECLINED))  # fmt: skip
    newcomer = Recipient("neu@herne.example", "Frau", None, "Ute", "Neu")
    recipients.add_recipient(conn, newcomer, "reallabor", status="subscribed", source="test", now=NOW)
    conn.close()
    return office


def test_a_reminder_goes_once_to_the_invited_who_stayed(invited: Office, smtp_server: SmtpServer) -> None:
    early = invited.worker("2024-06-18 09:59")
    assert early.exit_code == 0 and early.output == "" and smtp_server.messages == []

    due = invited.worker("2024-06-18 10:00")
    assert due.exit_code == 0, due.output
    assert f"reminder reminder:{STEM}:0" in due.output and "5 sent" in due.output
    messages = by_recipient(smtp_server)
    expected = {p.email for p in PEOPLE} - {UNSUBSCRIBED, DECLINED}
    assert set(messages) == expected  # not the unsubscribed, not the declined, not the never invited
    anke = messages["brockmann@dortmund.example"]
    assert str(anke["Subject"]).startswith("Erinnerung: Abschlussveranstaltung des Reallabors")
    assert [p.get_content_type() for p in anke.walk() if p.get_content_type() == "text/calendar"] == []
    text = anke.get_body(("plain",))
    assert text is not None
    body = text.get_content()
    assert body.startswith("Sehr geehrte Frau Dr. Brockmann,")
    assert "Mittwoch, 19. Juni 2024, 10:00–13:00 Uhr (Berlin) · 11:00–14:00 (Київ)" in body
    assert "https://us02web.zoom.us/j/88154063921" in body  # the online link
    assert "calendar.google.com" in body and "outlook.live.com" in body
    html = anke.get_body(("html",))
    assert html is not None and "us02web.zoom.us" in html.get_content()

    again = invited.worker("2024-06-18 12:00")
    assert again.output == "" and len(smtp_server.messages) == 5
    too_late = invited.worker("2024-06-19 10:30")  # the event has begun
    assert too_late.output == "" and len(smtp_server.messages) == 5


def test_reminders_are_in_the_recipients_language(invited: Office, smtp_server: SmtpServer) -> None:
    (invited.content / "events" / f"{STEM}.uk.md").write_text(
        "---\ntitle: \"Заключний захід\"\n---\nОпис.\n", encoding="utf-8"
    )
    invited.worker("2024-06-18 10:00")
    olena = by_recipient(smtp_server)["olena@dnipro.example"]
    assert str(olena["Subject"]) == "Нагадування: Заключний захід"


def test_a_cancelled_event_gets_no_reminder(invited: Office, smtp_server: SmtpServer) -> None:
    edit(invited, "status: scheduled", "status: cancelled")
    result = invited.worker("2024-06-18 10:00")
    assert result.output == "" and smtp_server.messages == []


def test_an_event_moved_after_its_reminder_gets_one_for_the_new_version(invited: Office,
                                                                        smtp_server: SmtpServer) -> None:  # fmt: skip
    assert "5 sent" in invited.worker("2024-06-18 10:00").output
    edit(invited, "start: 2024-06-19 10:00\nend: 2024-06-19 13:00", "start: 2024-06-26 10:00\nend: 2024-06-26 13:00")
    assert invited.worker("2024-06-25 10:00").output == ""  # the update has not gone out: it goes first
    invited.clock.at("2024-06-20 09:00")
    update = invited.send(EVENT, "--yes")
    assert update.exit_code == 0, update.output
    smtp_server.messages.clear()
    result = invited.worker("2024-06-25 10:00")
    # the update reached the newcomer too, so they are invited now
    assert f"reminder reminder:{STEM}:1" in result.output and "6 sent" in result.output
    anke = by_recipient(smtp_server)["brockmann@dortmund.example"]
    assert "Mittwoch, 26. Juni 2024" in str(anke.get_body(("plain",)))


def test_the_site_default_applies_and_an_event_can_turn_it_off(office: Office,
                                                               smtp_server: SmtpServer) -> None:  # fmt: skip
    site = office.content / "site.yaml"
    site.write_text(site.read_text(encoding="utf-8") + "reminder: 2d\n", encoding="utf-8")
    assert office.send(EVENT, "--yes").exit_code == 0
    smtp_server.messages.clear()
    assert "7 sent" in office.worker("2024-06-17 10:00").output
    edit(office, "status: scheduled", "status: scheduled\nreminder: off")
    conn = connect(office.state)
    conn.execute("DELETE FROM campaigns")
    conn.close()
    assert office.worker("2024-06-17 11:00").output == ""


def test_a_reminder_lead_that_is_not_a_duration_is_a_content_error(office: Office) -> None:
    edit(office, "status: scheduled", "status: scheduled\nreminder: morgen")
    result = office.run("check", "--content", str(office.content))
    assert result.exit_code != 0
    assert "reminder" in str(result.exception) and "24h or 2d" in str(result.exception)
