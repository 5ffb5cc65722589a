"""``inbox`` and ``registrations`` through the real CLI: Dovecot over IMAP, or a Maildir, and a sent invitation."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
from pathlib import Path

import pytest

from reallabor_mail import db
from reallabor_mail.content.loader import load_content
from reallabor_mail.db import StateLocation, connect
from reallabor_mail.delivery import schedule
from reallabor_mail.errors import SettingsError
from reallabor_mail.i18n import messages as staff_messages
from reallabor_mail.mailbox.itip import declined
from reallabor_mail.recipients import store as recipients
from reallabor_mail.settings import ImapSettings
from tests.mailbox import samples
from tests.mailbox.conftest import EVENT, SECRET, Dovecot, Invited, cli

ANKE, JOERG, KIM, HAMM, OLENA, IVAN = (
    "brockmann@dortmund.example", "pfundheller@unna.example", "kim@bochum.example", "info@hamm.example",
    "olena@dnipro.example", "ivan@lviv.example",
)  # fmt: skip


def inbox_imap(dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch, invited: Invited) -> str:
    for key, value in dovecot.env().items():
        monkeypatch.setenv(key, value)
    result = cli("inbox", "--content", str(invited.content))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def maildir(path: Path, *messages: bytes) -> Path:
    for sub in ("new", "cur", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    start = len(list((path / "new").iterdir()))
    for number, data in enumerate(messages, start):
        (path / "new" / f"{1718000000 + number}.M{number}P1.host").write_bytes(data)
    return path


def inbox_maildir(invited: Invited, folder: Path, *extra: str) -> str:
    result = cli("inbox", "--maildir", str(folder), "--content", str(invited.content), *extra)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def registrations(invited: Invited, *extra: str) -> str:
    result = cli("registrations", str(invited.event), *extra)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def status(invited: Invited, email: str, list_name: str = "reallabor") -> str:
    conn = connect(invited.state)
    person = recipients.find(conn, email)
    conn.close()
    assert person is not None
    return next(m.status for m in person.memberships if m.list_name == list_name)


def dump(state: StateLocation) -> list[tuple[object, ...]]:
    """Every row of every table, sorted (what "changes nothing" compares), on either back end."""
    conn = connect(state)
    rows = sorted(((t, *row) for t in db.tables(conn) for row in conn.execute(f"SELECT * FROM {t}")), key=repr)
    conn.close()
    return rows


# --- calendar answers -------------------------------------------------------------------------------


def test_outlook_accept_over_imap_shows_as_accepted_in_registrations(
    invited: Invited, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dovecot.deliver(samples.outlook_reply(invited.messages[ANKE], "ACCEPTED"))
    output = inbox_imap(dovecot, monkeypatch, invited)
    assert "1 new message" in output and "calendar answers: 1" in output
    shown = registrations(invited, "--csv", str(tmp_path / "desk.csv"))
    assert "6 invited: accepted 1, tentative 0, declined 0, no answer 5" in shown
    assert f"accepted       {ANKE}  Dr. Anke Brockmann" in shown
    data = (tmp_path / "desk.csv").read_bytes()
    assert data.startswith(codecs.BOM_UTF8) and b"\r\n" in data
    rows = list(csv.reader(io.StringIO(data[3:].decode("utf-8")), delimiter=";"))
    assert rows[0][:2] == ["Answer", "Salutation"] and len(rows) == 7
    assert rows[1][0] == "accepted" and rows[1][6] == ANKE and rows[1][4] == "Brockmann"
    assert {row[0] for row in rows[2:]} == {"no answer"}


def test_every_client_writes_its_answer_differently_and_each_is_read(invited: Invited, tmp_path: Path) -> None:
    m = invited.messages
    folder = maildir(
        tmp_path / "Maildir",
        samples.gmail_reply(m[HAMM], "ACCEPTED"),  # Auto-Submitted, REPLY twice (inline and invite.ics)
        samples.apple_reply(m[OLENA], "DECLINED"),
        samples.thunderbird_reply(m[JOERG], "TENTATIVE"),
        samples.outlook_reply(m[KIM], "DECLINED"),
    )
    output = inbox_maildir(invited, folder)
    assert "calendar answers: 4" in output and "left for staff (unread in the mailbox): 0" in output
    assert "4 invited" not in output
    shown = registrations(invited)
    assert "6 invited: accepted 1, tentative 1, declined 2, no answer 2" in shown
    event = load_content(invited.content).find(invited.event)
    conn = connect(invited.state)
    assert declined(conn, event) == {OLENA, KIM}  # the hook the reminders call
    assert schedule.declined(conn, event.stem) == {OLENA, KIM}  # what they read today: table event_declines
    conn.close()


def test_a_later_answer_replaces_an_earlier_one(invited: Invited, tmp_path: Path) -> None:
    folder = maildir(tmp_path / "Maildir", samples.outlook_reply(invited.messages[ANKE], "ACCEPTED"))
    inbox_maildir(invited, folder)
    inbox_maildir(invited, maildir(folder, samples.outlook_reply(invited.messages[ANKE], "DECLINED")))
    assert "accepted 0, tentative 0, declined 1" in registrations(invited)
    inbox_maildir(invited, maildir(folder, samples.outlook_reply(invited.messages[ANKE], "TENTATIVE")))
    assert "accepted 0, tentative 1, declined 0" in registrations(invited)
    conn = connect(invited.state)
    assert schedule.declined(conn, "2024-06-19-abschlussveranstaltung") == frozenset()  # no longer declined
    conn.close()


def test_an_answer_to_an_older_sequence_is_recorded_as_such(invited: Invited, tmp_path: Path) -> None:
    old_invite = invited.messages[ANKE]
    event = invited.event
    event.write_text(event.read_text(encoding="utf-8").replace("end: 2024-06-19 13:00", "end: 2024-06-19 14:00"))
    result = cli("send", str(event), "--outbox", str(tmp_path / "outbox2"), "--yes")
    assert result.exit_code == 0, result.output
    folder = maildir(tmp_path / "Maildir", samples.outlook_reply(old_invite, "ACCEPTED", sequence=0))
    output = inbox_maildir(invited, folder)
    assert "(version 0, now 1)" not in output  # not for staff: an answer, only an old one
    shown = registrations(invited)
    assert f"accepted       {ANKE}  Dr. Anke Brockmann  (answered version 0, now 1)" in shown


def test_a_counter_is_shown_to_staff_and_never_applied(
    invited: Invited, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    dovecot.deliver(samples.counter(invited.messages[KIM]))
    output = inbox_imap(dovecot, monkeypatch, invited)
    assert "time proposals: 1" in output
    assert "proposes another time (not applied)" in output and "2024-06-19 14:00" in output
    assert "no answer 6" in registrations(invited)
    assert "\\Seen" not in dovecot.flags()["<AM6PR02MB4325COUNTER0001@AM6PR02MB4325.eurprd02.prod.outlook.com>"]


def test_answers_from_people_not_invited_or_for_unknown_events_are_kept_for_staff(
    invited: Invited, tmp_path: Path
) -> None:
    stranger = samples.outlook_reply(invited.messages[ANKE], sender="fremd@example.net", attendee="fremd@example.net")
    unknown = samples.outlook_reply(invited.messages[ANKE], uid="2031-01-01-gibt-es-nicht@auslandsgesellschaft.de")
    other_sender = samples.outlook_reply(invited.messages[ANKE], "DECLINED", sender="boss@dortmund.example")
    output = inbox_maildir(invited, maildir(tmp_path / "Maildir", stranger, unknown, other_sender))
    assert "a calendar answer from an address that was not invited" in output
    assert "a calendar answer for an event we did not send" in output
    assert "a calendar answer sent from another address than the attendee's" in output
    assert "left for staff (unread in the mailbox): 3" in output
    assert "no answer 6" in registrations(invited)


# --- bounces ----------------------------------------------------------------------------------------


def test_a_hard_bounce_over_imap_suppresses_the_address(
    invited: Invited, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    dovecot.deliver(samples.postfix_dsn(invited.messages[KIM]))
    output = inbox_imap(dovecot, monkeypatch, invited)
    assert "bounces: 1" in output
    assert f"Suppressed {KIM}: bounced: 5.1.1 smtp; 550 5.1.1" in output
    assert status(invited, KIM) == "bounced" and status(invited, KIM, "newsletter") == "bounced"
    conn = connect(invited.state)
    assert recipients.is_suppressed(conn, KIM, SECRET.encode())
    conn.close()
    assert "\\Seen" in dovecot.flags()["<20240610071244.3F2A1C0123@mail.auslandsgesellschaft.de>"]


@pytest.mark.parametrize("make", [samples.exchange_dsn, samples.gmail_dsn, samples.qmail_bounce])
def test_the_other_bounce_formats_suppress_too(invited: Invited, tmp_path: Path, make: object) -> None:
    output = inbox_maildir(invited, maildir(tmp_path / "Maildir", make(invited.messages[HAMM])))  # type: ignore[operator]
    assert f"Suppressed {HAMM}" in output, output
    assert status(invited, HAMM) == "bounced"
    assert status(invited, ANKE) == "subscribed"


def test_temporary_failures_suppress_only_after_the_threshold(invited: Invited, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    folder = tmp_path / "Maildir"
    for day in (1, 2):
        when = samples.dated(now - dt.timedelta(days=day))
        soft = samples.postfix_dsn(invited.messages[JOERG], status="4.2.2", when=when,
                                   message_id=f"<soft-{day}@mail.auslandsgesellschaft.de>")  # fmt: skip
        output = inbox_maildir(invited, maildir(folder, soft))
        assert "bounces: 1" in output and "Suppressed" not in output
    assert status(invited, JOERG) == "subscribed"
    third = samples.postfix_dsn(invited.messages[JOERG], status="4.2.2", when=samples.dated(now),
                                message_id="<soft-3@mail.auslandsgesellschaft.de>")  # fmt: skip
    output = inbox_maildir(invited, maildir(folder, third))
    assert f"Suppressed {JOERG}: bounced: temporary failures on 3 days within 30 days" in output
    assert status(invited, JOERG) == "bounced"


def test_the_threshold_is_configurable(invited: Invited, tmp_path: Path) -> None:
    soft = samples.postfix_dsn(invited.messages[JOERG], status="4.2.2", when=samples.dated(dt.datetime.now(dt.UTC)))
    output = inbox_maildir(invited, maildir(tmp_path / "Maildir", soft), "--bounce-limit", "1")
    assert f"Suppressed {JOERG}" in output


def test_a_bounce_for_no_message_we_sent_suppresses_nobody(invited: Invited, tmp_path: Path) -> None:
    foreign = samples.postfix_dsn(invited.messages[KIM]).replace(
        str(invited.messages[KIM]["Message-ID"]).encode(), b"<not-ours@elsewhere.example>"
    )
    output = inbox_maildir(invited, maildir(tmp_path / "Maildir", foreign))
    assert "a bounce for no message we sent (nobody suppressed)" in output and "Suppressed" not in output
    assert status(invited, KIM) == "subscribed"


# --- mailto unsubscribes --------------------------------------------------------------------------


def test_the_mailto_carries_the_links_token(invited: Invited) -> None:
    header = str(invited.messages[IVAN]["List-Unsubscribe"])
    url, mailto = (part.strip(" <>") for part in header.split(","))
    token = url.rsplit("/", 1)[1]
    assert mailto == f"mailto:becker@auslandsgesellschaft.de?subject=unsubscribe%20{token}"


def test_a_mailto_unsubscribe_with_a_valid_token_unsubscribes(
    invited: Invited, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    dovecot.deliver(samples.unsubscribe_mail(invited.messages[IVAN]))
    output = inbox_imap(dovecot, monkeypatch, invited)
    assert "unsubscribe mails: 1" in output and f"Unsubscribed {IVAN} from reallabor" in output
    assert status(invited, IVAN) == "unsubscribed" and status(invited, IVAN, "newsletter") == "subscribed"


def test_a_forged_mailto_unsubscribe_unsubscribes_nobody(
    invited: Invited, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    ivans = invited.messages[IVAN]
    token = str(ivans["List-Unsubscribe"]).split(",")[0].strip(" <>").rsplit("/", 1)[1]
    altered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    forged_from = samples.unsubscribe_mail(ivans, sender=ANKE, token=None).replace(
        token.encode(), b""
    )  # Anke's address, no token: the From alone proves nothing
    forged_token = samples.unsubscribe_mail(ivans, sender=ANKE, token=altered)
    dovecot.deliver(forged_from, forged_token)
    output = inbox_imap(dovecot, monkeypatch, invited)
    assert "Unsubscribed" not in output
    assert "asks to unsubscribe without the link's token" in output
    assert "asks to unsubscribe with a forged or altered token (nobody unsubscribed)" in output
    assert status(invited, ANKE) == "subscribed" and status(invited, IVAN) == "subscribed"
    assert all("\\Seen" not in flags for flags in dovecot.flags().values())  # left unread for staff


def test_someone_elses_valid_token_unsubscribes_only_its_owner(invited: Invited, tmp_path: Path) -> None:
    """A forged From with a valid token: the token decides, never the From (the link would do the same)."""
    mail = samples.unsubscribe_mail(invited.messages[IVAN], sender=ANKE)
    inbox_maildir(invited, maildir(tmp_path / "Maildir", mail))
    assert status(invited, ANKE) == "subscribed" and status(invited, IVAN) == "unsubscribed"


# --- the rest ---------------------------------------------------------------------------------------


def test_processing_the_same_mailbox_twice_changes_nothing(
    invited: Invited, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = invited.messages
    dovecot.deliver(
        samples.outlook_reply(m[ANKE]), samples.postfix_dsn(m[KIM]), samples.unsubscribe_mail(m[IVAN]),
        samples.out_of_office(m[HAMM]), samples.human(), samples.counter(m[JOERG]),
    )  # fmt: skip
    first = inbox_imap(dovecot, monkeypatch, invited)
    assert "6 new messages" in first and "auto-replies (ignored): 1" in first
    state, flags = dump(invited.state), dovecot.flags()
    assert flags["<frage-1@dortmund.example>"] == {"\\Recent"} or "\\Seen" not in flags["<frage-1@dortmund.example>"]
    assert "\\Seen" in flags["<ooo-0001@hamm.example>"]
    second = inbox_imap(dovecot, monkeypatch, invited)
    assert "0 new messages" in second and "Suppressed" not in second and "Unsubscribed" not in second
    assert dump(invited.state) == state
    assert {k: v - {"\\Recent"} for k, v in dovecot.flags().items()} == {k: v - {"\\Recent"} for k, v in flags.items()}
    # the same messages from a copy of the mailbox (a Maildir) are known too: key by Message-ID and body
    copy = maildir(dovecot.root / "copy", *(path.read_bytes() for path in sorted(dovecot.mail.rglob("*,S=*"))))
    third = cli("inbox", "--maildir", str(copy), "--content", str(invited.content))
    assert "0 new messages (6 read before)" in third.output, third.output
    assert dump(invited.state) == state


def test_malformed_mime_does_not_stop_the_run(invited: Invited, tmp_path: Path) -> None:
    folder = maildir(tmp_path / "Maildir", samples.malformed(), b"\x00\xff\xfe garbage", b"",
                     samples.outlook_reply(invited.messages[ANKE]))  # fmt: skip
    output = inbox_maildir(invited, folder)
    assert "4 new messages" in output and "calendar answers: 1" in output
    assert "accepted 1" in registrations(invited)


def test_imap_settings_follow_the_smtp_rules() -> None:
    base = {"REALLABOR_IMAP_HOST": "imap.example.org", "REALLABOR_IMAP_USER": "becker",
            "REALLABOR_IMAP_PASSWORD": "x"}  # fmt: skip
    settings = ImapSettings.from_env(base)
    assert settings is not None and (settings.security, settings.port, settings.folder) == ("tls", 993, "INBOX")
    assert repr(settings.password) == "Secret('********')"
    with pytest.raises(SettingsError, match=r"^REALLABOR_IMAP_SECURITY: 'none'"):
        ImapSettings.from_env({**base, "REALLABOR_IMAP_SECURITY": "none"})
    with pytest.raises(SettingsError, match=r"^REALLABOR_IMAP_USER and REALLABOR_IMAP_PASSWORD"):
        ImapSettings.from_env({"REALLABOR_IMAP_HOST": "imap.example.org"})
    assert ImapSettings.from_env({**base, "REALLABOR_IMAP_SECURITY": "starttls"}).port == 143  # type: ignore[union-attr]


def test_without_a_mailbox_the_command_says_what_to_set(invited: Invited) -> None:
    result = cli("inbox", "--content", str(invited.content))
    assert result.exit_code != 0 and "REALLABOR_IMAP_HOST" in str(result.exception)


def test_registrations_of_an_event_nothing_was_sent_for(invited: Invited) -> None:
    other = invited.content / "events" / "2024-06-24-wohnraum-in-der-ukraine.md"
    result = cli("registrations", str(other))
    assert result.exit_code == 0 and "0 invited" in result.output
    assert EVENT  # the sent one is another file


def test_the_report_and_the_list_speak_the_staff_language(
    invited: Invited, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REALLABOR_LANG", "de")
    monkeypatch.setattr(staff_messages, "_active", [])  # the CLI activates German; later tests get English back
    folder = maildir(tmp_path / "Maildir", samples.outlook_reply(invited.messages[ANKE]),
                     samples.postfix_dsn(invited.messages[KIM]), samples.human())  # fmt: skip
    output = inbox_maildir(invited, folder)
    assert "3 neue Nachrichten" in output and "Kalenderantwort: 1" in output
    assert f"Gesperrt: {KIM}: bounced: 5.1.1" in output and "zur Bearbeitung (ungelesen im Postfach): 1" in output
    shown = registrations(invited, "--csv", str(tmp_path / "liste.csv"))
    assert "6 eingeladen: zugesagt 1, vorläufig 0, abgesagt 0, keine Antwort 5" in shown
    header = (tmp_path / "liste.csv").read_bytes()[3:].decode("utf-8").splitlines()[0]
    assert header.startswith("Antwort;Anrede;Titel;Vorname;Nachname;Organisation;E-Mail")
