"""``send`` end to end through a real SMTP server, the ledger, stamped messages, headers and DKIM."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import functools
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from reallabor_mail.cli.main import main
from reallabor_mail.content.loader import load_content
from reallabor_mail.db import DatabaseUrl, StateLocation, connect, parse_state
from reallabor_mail.delivery.ledger import Ledger
from reallabor_mail.mail.dkim import DkimSigner
from reallabor_mail.mail.message import Campaign, as_bytes, build_message
from reallabor_mail.mail.stamp import MessageStamp, _qp_piece
from reallabor_mail.recipients import store as recipients
from reallabor_mail.recipients.person import Recipient
from reallabor_mail.render.engine import RenderedEmail, Renderer
from reallabor_mail.settings import DkimSettings, Settings
from tests.conftest import SAMPLE_CONTENT, TEMPLATES, SmtpServer
from tests.smtp_faults import Faults, fault_server

SECRET = "test-secret-0123456789abcdef"
NOW = dt.datetime(2023, 10, 1, 9, 0, tzinfo=dt.UTC)
NEWSLETTER = "newsletters/2023-3.md"
EVENT = "events/2024-06-19-abschlussveranstaltung.md"
PEOPLE = [
    Recipient("brockmann@dortmund.example", "Frau", "Dr.", "Anke", "Brockmann", "Stadt Dortmund", "de"),
    Recipient("pfundheller@unna.example", "Herr", None, "Jörg", "Pfundheller", "Kreis Unna", "de"),
    Recipient("kim@bochum.example", None, None, "Kim", "Schmidt", None, "de"),
    Recipient("info@hamm.example", None, None, None, None, "Stadt Hamm", "de"),
    Recipient("olena@dnipro.example", "Frau", None, "Олена", "Коваль", "Дніпровська громада", "uk"),
    Recipient("ivan@lviv.example", "Herr", None, "Іван", "Петренко", None, "uk"),
    Recipient("alex@example.org", "Herr", None, "Alex", "Turner", None, "en"),
]
GREETINGS = {
    "brockmann@dortmund.example": "Sehr geehrte Frau Dr. Brockmann,",
    "pfundheller@unna.example": "Sehr geehrter Herr Pfundheller,",
    "kim@bochum.example": "Guten Tag Kim Schmidt,",
    "info@hamm.example": "Sehr geehrte Damen und Herren,",
    "olena@dnipro.example": "Шановна пані Олено,",
    "ivan@lviv.example": "Шановний пане Іване,",
}


def subscribed_env(
    tmp_path: Path, host: str, port: int, monkeypatch: pytest.MonkeyPatch, state: StateLocation | None = None
) -> dict[str, str]:
    """A state (``state``, else a file in ``tmp_path``) with :data:`PEOPLE` on both lists, and SMTP settings
    pointing at ``host:port``."""
    state = state or tmp_path / "state.sqlite3"
    values = {
        "REALLABOR_SECRET": SECRET,
        "REALLABOR_STATE": str(tmp_path / "state.sqlite3"),
        "REALLABOR_DATABASE_URL": state.url if isinstance(state, DatabaseUrl) else "",
        "REALLABOR_SMTP_HOST": host,
        "REALLABOR_SMTP_PORT": str(port),
        "REALLABOR_SMTP_SECURITY": "none",
    }
    for key in ("REALLABOR_SMTP_USER", "REALLABOR_SMTP_PASSWORD", "REALLABOR_DKIM_KEY", "REALLABOR_SMTP_DATA_TIMEOUT"):
        monkeypatch.delenv(key, raising=False)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    conn = connect(state)
    for person in PEOPLE:
        for name in ("newsletter", "reallabor"):
            recipients.add_recipient(conn, person, name, status="subscribed", source="test", now=NOW)
    conn.close()
    return values


def state_of(env: dict[str, str]) -> StateLocation:
    """The state an ``env`` of :func:`subscribed_env` names (as the CLI finds it)."""
    return parse_state(env["REALLABOR_DATABASE_URL"] or env["REALLABOR_STATE"])


@pytest.fixture
def env(
    tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch, state: StateLocation
) -> dict[str, str]:
    """The people on both lists (on each back end), SMTP settings pointing at the recording server."""
    return subscribed_env(tmp_path, smtp_server.host, smtp_server.port, monkeypatch, state)


def send(*args: str, answer: str | None = None) -> Result:
    return CliRunner().invoke(main, ["send", *args], input=answer, catch_exceptions=True)


def by_recipient(server: SmtpServer) -> dict[str, EmailMessage]:
    found: dict[str, EmailMessage] = {}
    for received in server.messages:
        assert len(received.rcpt_tos) == 1
        assert received.rcpt_tos[0] not in found, f"{received.rcpt_tos[0]} got two messages"
        found[received.rcpt_tos[0]] = received.message
    return found


def first_line(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return next(line for line in body.get_content().splitlines() if line.strip())


def test_newsletter_goes_to_everyone_once_in_their_language(env: dict[str, str], content_copy: Path,
                                                            smtp_server: SmtpServer) -> None:  # fmt: skip
    result = send(str(content_copy / NEWSLETTER), "--connections", "2", "--yes")
    assert result.exit_code == 0, result.output
    assert "newsletter (7 subscribed)" in result.output and "to send    7 new (de 5, uk 2)" in result.output
    assert "7 sent · 0 retry later · 0 failed · 0 unknown" in result.output
    messages = by_recipient(smtp_server)
    assert set(messages) == {p.email for p in PEOPLE}
    for address, greeting in GREETINGS.items():
        assert first_line(messages[address]) == greeting
    assert first_line(messages["alex@example.org"]) == "Sehr geehrter Herr Turner,"  # no English version: German
    olena = messages["olena@dnipro.example"]
    assert str(olena["To"]) == "Олена Коваль <olena@dnipro.example>"
    assert olena["Content-Language"] == "uk" and olena["Subject"].startswith("Реаллабор")
    anke = messages["brockmann@dortmund.example"]
    assert anke["Subject"] == "Reallabor Ukraine – Newsletter 3/2023" and anke["Content-Language"] == "de"
    unsubscribe = str(anke["List-Unsubscribe"])
    assert unsubscribe.startswith("<https://") and "/unsubscribe/" in unsubscribe and "<mailto:" in unsubscribe
    assert anke["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert [p.get_content_type() for p in anke.walk()] == ["multipart/alternative", "text/plain", "text/html"]
    ids = {str(m["Message-ID"]) for m in messages.values()}
    assert len(ids) == 7 and all(i.endswith("@auslandsgesellschaft.de>") for i in ids)


def test_invitation_carries_a_personal_calendar_part(env: dict[str, str], content_copy: Path,
                                                     smtp_server: SmtpServer, tmp_path: Path) -> None:  # fmt: skip
    result = send(str(content_copy / EVENT), "--yes")
    assert result.exit_code == 0, result.output
    messages = by_recipient(smtp_server)
    assert len(messages) == 7
    german = {  # the event has only a German version, so everyone gets it in German
        "olena@dnipro.example": "Sehr geehrte Frau Коваль,",
        "ivan@lviv.example": "Sehr geehrter Herr Петренко,",
        "alex@example.org": "Sehr geehrter Herr Turner,",
    }
    for address, message in messages.items():
        calendar = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
        assert len(calendar) == 1 and calendar[0].get_param("method") == "REQUEST"
        ics = calendar[0].get_content()
        assert f"mailto:{address}" in ics.replace("\r\n ", "").lower()
        assert first_line(message) == german.get(address, GREETINGS.get(address))
    conn = connect(state_of(env))
    assert conn.execute("SELECT sequence FROM event_versions").fetchall()[0][0] == 0


def test_a_second_send_reaches_only_new_subscribers(env: dict[str, str], content_copy: Path,
                                                    smtp_server: SmtpServer, tmp_path: Path) -> None:  # fmt: skip
    assert send(str(content_copy / NEWSLETTER), "--yes").exit_code == 0
    again = send(str(content_copy / NEWSLETTER), "--yes")
    assert "Nothing to send" in again.output and len(smtp_server.messages) == 7
    conn = connect(state_of(env))
    newcomer = Recipient("neu@herne.example", "Frau", None, "Ute", "Neu")
    recipients.add_recipient(conn, newcomer, "newsletter", status="subscribed", source="test", now=NOW)
    third = send(str(content_copy / NEWSLETTER), "--yes")
    assert "to send    1 new" in third.output
    assert len(smtp_server.messages) == 8 and smtp_server.messages[-1].rcpt_tos == ["neu@herne.example"]


def test_the_plan_is_shown_and_nothing_is_sent_without_yes(env: dict[str, str], content_copy: Path,
                                                            smtp_server: SmtpServer) -> None:  # fmt: skip
    result = send(str(content_copy / NEWSLETTER), answer="n\n")
    assert f"via        127.0.0.1:{env['REALLABOR_SMTP_PORT']} (unencrypted, loopback)" in result.output
    assert "Send 7 messages via" in result.output and "Nothing sent." in result.output
    assert smtp_server.messages == []


def test_without_server_or_outbox_both_choices_are_explained(env: dict[str, str], content_copy: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.delenv("REALLABOR_SMTP_HOST")
    result = send(str(content_copy / NEWSLETTER), "--yes")
    assert result.exit_code != 0
    assert "REALLABOR_SMTP_HOST" in str(result.exception) and "--outbox" in str(result.exception)


def test_outbox_is_a_real_run_through_the_ledger(env: dict[str, str], content_copy: Path, tmp_path: Path,
                                                 smtp_server: SmtpServer) -> None:  # fmt: skip
    outbox = tmp_path / "outbox"
    result = send(str(content_copy / NEWSLETTER), "--outbox", str(outbox), "--yes", "--limit", "3")
    assert result.exit_code == 0, result.output
    assert len(list((outbox / "new").iterdir())) == 3 and smtp_server.messages == []
    refused = send(str(content_copy / NEWSLETTER), "--outbox", str(outbox), "--yes")
    assert "interrupted" in str(refused.exception) and "--resume" in str(refused.exception)
    resumed = send(str(content_copy / NEWSLETTER), "--outbox", str(outbox), "--yes", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert len(list((outbox / "new").iterdir())) == 7
    assert "Dry run" not in resumed.output and "for review" not in resumed.output  # it was a real send
    assert "7 sent" in resumed.output
    status = send(str(content_copy / NEWSLETTER), "--status")
    assert "7 sent · 0 retry later · 0 failed · 0 unknown · 0 skipped · 0 not yet sent" in status.output


def test_test_message_goes_to_one_address_only(env: dict[str, str], content_copy: Path,
                                                smtp_server: SmtpServer) -> None:  # fmt: skip
    for _ in range(2):
        result = send(str(content_copy / NEWSLETTER), "--to", "olena@dnipro.example", "--yes")
        assert result.exit_code == 0, result.output
    assert [m.rcpt_tos for m in smtp_server.messages] == [["olena@dnipro.example"]] * 2
    assert first_line(smtp_server.messages[0].message) == "Шановна пані Олено,"
    real = send(str(content_copy / NEWSLETTER), "--yes")
    assert "to send    7 new" in real.output  # a test message does not count as the real one


def test_interrupted_rows_become_unknown_and_are_listed_not_resent(
    env: dict[str, str], content_copy: Path, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    conn = connect(state_of(env))
    ledger = Ledger(conn, lambda: NOW)
    ledger.add("newsletter:2023-3", ((p, "newsletter") for p in PEOPLE))
    entry = next(e for e in ledger.due("newsletter:2023-3") if e.email == "kim@bochum.example")
    ledger.apply([ledger.start_op(entry, "<x@auslandsgesellschaft.de>")])  # as if killed after MAIL FROM
    result = send(str(content_copy / NEWSLETTER), "--yes", "--resume")
    assert result.exit_code == 0, result.output
    assert "1 was in flight: it becomes 'unknown' and is NOT resent" in result.output
    assert "6 sent · 0 retry later · 0 failed · 1 unknown" in result.output
    assert "Unknown (1)" in result.output and "  kim@bochum.example" in result.output
    assert "kim@bochum.example" not in by_recipient(smtp_server)
    status = send(str(content_copy / NEWSLETTER), "--status")
    assert "kim@bochum.example" in status.output and "1 unknown" in status.output


def test_a_refused_sender_stops_the_send_naming_the_setting_and_every_row_stays_owed(
    env: dict[str, str], content_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refusal = "553 5.7.1 <becker@auslandsgesellschaft.de>: Sender address rejected: not owned by user"
    with fault_server(Faults(mail=refusal)) as server:
        monkeypatch.setenv("REALLABOR_SMTP_PORT", str(server.port))
        result = send(str(content_copy / NEWSLETTER), "--yes", "--connections", "2")
        assert result.exit_code == 1
        message = str(result.exception)
        assert message.startswith("site.yaml: sender.email (becker@auslandsgesellschaft.de): ") and "553" in message
        assert "\n" not in message and server.handler.messages == []
        states = Ledger(connect(state_of(env)), lambda: NOW).states("newsletter:2023-3")
        assert set(states.values()) == {"pending"} and len(states) == 7
        retried = send(str(content_copy / NEWSLETTER), "--yes", "--retry-failed")  # nothing failed: nothing to retry
        assert retried.exit_code == 1 and "--resume" in str(retried.exception)
        server.faults.mail = None  # the sender setting was fixed
        resumed = send(str(content_copy / NEWSLETTER), "--yes", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "7 sent · 0 retry later · 0 failed · 0 unknown" in resumed.output
    assert sorted(r for m in server.handler.messages for r in m.rcpt_tos) == sorted(p.email for p in PEOPLE)


# --- the ledger ----------------------------------------------------------------------------------------


def test_ledger_rows_are_unique_per_campaign_and_forget_details_when_final(state: StateLocation) -> None:
    ledger = Ledger(connect(state), lambda: NOW)
    assert ledger.add("c", ((p, "newsletter") for p in PEOPLE)) == 7
    assert ledger.add("c", ((p, "reallabor") for p in PEOPLE)) == 0
    entries = list(ledger.due("c", batch=2))
    assert [e.recipient for e in entries] == PEOPLE
    ledger.apply([ledger.start_op(entries[0], "<1@x>"), ledger.finish_op(entries[0], "sent", "250 OK")])
    ledger.apply([ledger.start_op(entries[1], "<2@x>"), ledger.finish_op(entries[1], "retry", "451 later")])
    raw = dict(ledger.conn.execute("SELECT email, recipient FROM send_ledger").fetchall())
    assert raw[PEOPLE[0].email] is None and "Pfundheller" in raw[PEOPLE[1].email]
    assert ledger.summary("c").counts == {"sent": 1, "retry": 1, "pending": 5}
    assert ledger.requeue("c") == 1 and ledger.summary("c")["pending"] == 6


# --- stamped messages equal build_message ------------------------------------------------------------


@functools.cache
def rendered(language: str) -> tuple[RenderedEmail, object]:
    content = load_content(SAMPLE_CONTENT)
    item = content.find(SAMPLE_CONTENT / NEWSLETTER)
    return Renderer(content, TEMPLATES).newsletter_email(item, language), content.site  # type: ignore[arg-type]


def _parts(message: EmailMessage) -> list[str]:
    return [p.get_content().replace("\r\n", "\n") for p in message.walk() if not p.is_multipart()]


def _words(text: str) -> str:
    return " ".join(text.split())


WORDS = st.sampled_from(["Hans", "Олена", "Müller-Lüdenscheidt", "O'Brien", "Ґрінченко", "😀", "🇺🇦", "(Stadt)",
                         'the "boss"', "Dr.", "Łódź", "Їжак", "Є", "a,b", "Straße"])  # fmt: skip
NAMES = st.lists(st.one_of(WORDS, st.text(alphabet="AaÄäÖöÜüßéОлеаніЇїЄєҐґ😀-'.", min_size=1, max_size=12)),
                 min_size=1, max_size=6).map(lambda words: _words(" ".join(words))).filter(bool)  # fmt: skip


def rfc2047(message: EmailMessage, name: str) -> str:
    """A header as RFC 2047 §6.2 says to display it (space between adjacent encoded words is ignored)."""
    raw = next(value for key, value in message.raw_items() if key == name)
    return str(make_header(decode_header(raw)))


def display_name(message: EmailMessage) -> str:
    """The To display name. An encoded one is decoded per RFC 2047: Python's address parser keeps the
    folding space between two encoded words of one phrase, which RFC 2047 §6.2 says to ignore."""
    raw = next(value for key, value in message.raw_items() if key == "To")
    if "=?" not in raw:
        return str(message["To"].addresses[0].display_name)
    return str(make_header(decode_header(raw.rsplit("<", 1)[0].strip())))


@settings(max_examples=40, deadline=None)
@given(first=NAMES, last=NAMES, subject=NAMES, language=st.sampled_from(["de", "uk"]))
def test_every_header_decodes_back_and_stamps_match_build_message(first: str, last: str, subject: str,
                                                                   language: str) -> None:  # fmt: skip
    base, site = rendered(language)
    email = RenderedEmail(language, f"{subject} – Newsletter", base.preheader, base.html, base.text, base.web_url)  # type: ignore[arg-type]
    campaign = Campaign("newsletter:2023-3", "newsletter", NOW)
    person = Recipient("olena@приклад.укр", "Frau", "Dr.", first, last, language=language)  # type: ignore[arg-type]
    url = "https://newsletter.example.org/unsubscribe/token"
    stamp = MessageStamp.prepare(site, email, campaign, secret=b"s")  # type: ignore[arg-type]
    message_id, data = stamp.message(person, url)
    assert max(len(line) for line in data.split(b"\r\n")) <= 998 and data.isascii()
    assert b"\r\n." not in data  # no line for SMTP to dot-stuff (a copy of the message per recipient)
    stamped = message_from_bytes(data, policy=policy.default)
    reference = message_from_bytes(
        as_bytes(build_message(site, email, person, campaign, secret=b"s", unsubscribe_url=url)),  # type: ignore[arg-type]
        policy=policy.default,
    )
    assert rfc2047(stamped, "Subject") == str(stamped["Subject"]) == f"{subject} – Newsletter"
    assert display_name(stamped) == f"{first} {last}"
    assert stamped["To"].addresses[0].addr_spec == "olena@xn--80aikifvh.xn--j1amh"
    assert rfc2047(stamped, "From") == "Netzwerkstelle Städtepartnerschaften <becker@auslandsgesellschaft.de>"
    assert stamped["Message-ID"] == message_id == reference["Message-ID"]
    for header in ("From", "To", "Reply-To", "List-Id", "List-Unsubscribe", "Content-Language", "Date"):
        assert str(stamped[header]) == str(reference[header]), header
    assert _parts(stamped) == _parts(reference)


# --- DKIM ---------------------------------------------------------------------------------------------


def test_dkim_signature_verifies_and_covers_list_unsubscribe(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "dkim.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))  # fmt: skip
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    signer = DkimSigner.from_settings(DkimSettings.from_env({
        "REALLABOR_DKIM_KEY": str(pem), "REALLABOR_DKIM_SELECTOR": "rlm2023",
        "REALLABOR_DKIM_DOMAIN": "auslandsgesellschaft.de",
    }))  # fmt: skip
    assert signer is not None and "BEGIN" not in repr(signer)
    email, site = rendered("uk")
    stamp = MessageStamp.prepare(site, email, Campaign("newsletter:2023-3", "newsletter", NOW), secret=b"s")  # type: ignore[arg-type]
    _, data = stamp.message(PEOPLE[4], "https://newsletter.example.org/unsubscribe/t")
    signed = signer.sign(data)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"rlm2023._domainkey.auslandsgesellschaft.de."
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    assert dkim.verify(signed, dnsfunc=dns)
    header = message_from_bytes(signed, policy=policy.default)["DKIM-Signature"]
    signed_headers = _words(str(header)).replace(" ", "").split("h=")[1].split(";")[0].lower().split(":")
    assert {"list-unsubscribe", "list-unsubscribe-post", "from", "subject", "to"} <= set(signed_headers)
    assert not dkim.verify(signed.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
                                          b"List-Unsubscribe-Post: nothing"), dnsfunc=dns)  # fmt: skip


def test_incomplete_dkim_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="missing: REALLABOR_DKIM_SELECTOR"):
        DkimSettings.from_env({"REALLABOR_DKIM_KEY": str(tmp_path / "k"), "REALLABOR_DKIM_DOMAIN": "x.de"})
    assert DkimSigner.from_settings(DkimSettings.from_env({})) is None


@settings(max_examples=200, deadline=None)
@given(
    pieces=st.lists(
        st.lists(st.sampled_from([*"ab =.\tÄ😀Ол\n", "x" * 70, "=" * 30, " " * 5]), max_size=30).map("".join),
        min_size=1,
        max_size=6,
    )
)
def test_quoted_printable_pieces_join_into_one_valid_body(pieces: list[str]) -> None:
    """Pieces encoded apart (as the stamp does around the greeting) decode to the whole, lines ≤ 76."""
    text = "".join(pieces).replace("\n", "\r\n") + "\r\n"
    parts = [p.replace("\n", "\r\n") for p in pieces] + ["\r\n"]
    encoded = b"".join(_qp_piece(part) for part in parts)
    assert binascii.a2b_qp(encoded).decode("utf-8") == text
    assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))
    assert b"\n" not in encoded.replace(b"\r\n", b"")
    assert not any(line.startswith(b".") for line in encoded.split(b"\r\n"))  # SMTP would have to double it


def test_a_real_send_purges_sign_ups_never_confirmed(env: dict[str, str], content_copy: Path,
                                                     smtp_server: SmtpServer, tmp_path: Path) -> None:  # fmt: skip
    conn = connect(state_of(env))
    stale = Recipient("vergessen@herne.example", None, None, "Ute", "Vergessen")
    recipients.add_recipient(conn, stale, "newsletter", status="pending", source="form", now=NOW)
    assert recipients.find(conn, stale.email) is not None
    assert send(str(content_copy / NEWSLETTER), "--yes").exit_code == 0
    assert recipients.find(conn, stale.email) is None  # unconfirmed for more than 30 days: gone
    assert "vergessen@herne.example" not in {r.rcpt_tos[0] for r in smtp_server.messages}


def test_an_invitation_to_an_event_that_is_over_is_pointed_out_before_the_question(
    env: dict[str, str], content_copy: Path, smtp_server: SmtpServer
) -> None:
    def plan_with_clock(moment: dt.datetime) -> str:
        office = dataclasses.replace(Settings.from_environ(), clock=lambda: moment)
        result = CliRunner().invoke(main, ["send", str(content_copy / EVENT), "--dry-run", "--yes"], obj=office)
        assert result.exit_code == 0, result.output
        return result.output

    before = plan_with_clock(dt.datetime(2024, 6, 1, 9, 0, tzinfo=dt.UTC))
    after = plan_with_clock(dt.datetime(2024, 6, 20, 9, 0, tzinfo=dt.UTC))
    assert "already over" not in before
    assert "this event is already over (it ended on 19.06.2024" in after
    assert smtp_server.messages == []
