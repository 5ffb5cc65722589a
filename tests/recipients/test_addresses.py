"""One address type, IDNA 2008 everywhere: ß, ς and ü domains stay what was typed and go out in their own
punycode; an emoji domain and a non-ASCII local part are refused at every entry."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from reallabor_mail.cli.main import main
from reallabor_mail.db import connect
from reallabor_mail.errors import Code
from reallabor_mail.mail.dkim import DkimError, DkimSigner
from reallabor_mail.recipients import spreadsheet
from reallabor_mail.recipients import store as recipients
from reallabor_mail.recipients.person import clean_person
from reallabor_mail.recipients.spreadsheet import ImportRefused
from reallabor_mail.settings import Settings
from tests.conftest import SmtpServer

SECRET = "test-secret-0123456789abcdef"
NOW = dt.datetime(2023, 10, 1, 9, 0, tzinfo=dt.UTC)
# typed → stored (Unicode, UTS 46 mapped) → on the wire. IDNA 2003 (Python's codec) would send
# a@strasse.de and a@xn--4xaa.gr: other people's domains.
IDN = [
    ("Anna@Straße.de", "anna@straße.de", "anna@xn--strae-oqa.de"),
    ("nikos@σς.gr", "nikos@σς.gr", "nikos@xn--3xab.gr"),
    ("joerg@MÜLLER.de", "joerg@müller.de", "joerg@xn--mller-kva.de"),
]
CSV_HEADER = "E-Mail;Anrede;Vorname;Nachname\r\n"


def check(content: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from reallabor_mail.cli.main import run; run()", "check", "--content", str(content)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_check_refuses_a_sender_address_delivery_cannot_send(content_copy: Path) -> None:
    site = content_copy / "site.yaml"
    text = site.read_text(encoding="utf-8")
    site.write_text(text.replace("becker@auslandsgesellschaft.de", "jörg.weiß@straße.de"))
    result = check(content_copy)
    assert result.returncode == 1, result.stderr
    assert "site.yaml:6: 'sender.email': 'jörg.weiß@straße.de' is not an address mail can be sent to" in result.stderr
    assert "non-ASCII letters" in result.stderr and "SMTPUTF8" in result.stderr
    assert "site.yaml:7: 'reply_to': 'jörg.weiß@straße.de' is not an address" in result.stderr
    site.write_text(text.replace("becker@auslandsgesellschaft.de", "becker@👍.de"))
    result = check(content_copy)
    assert result.returncode == 1 and "'sender.email': 'becker@👍.de' is not an address" in result.stderr
    site.write_text(text.replace("becker@auslandsgesellschaft.de", "becker@straße.de"))
    assert check(content_copy).returncode == 0


def test_csv_import_stores_the_domain_as_typed_and_refuses_emoji_domains(tmp_path: Path) -> None:
    conn = connect(tmp_path / "state.sqlite3")
    path = tmp_path / "liste.csv"
    rows = "".join(f"{typed};;;\r\n" for typed, _, _ in IDN)
    path.write_bytes((CSV_HEADER + rows + "x@👍.de;;;\r\njörg@example.org;;;\r\n").encode("utf-8"))
    with pytest.raises(ImportRefused) as refused:
        spreadsheet.import_csv(conn, path, "newsletter", secret=SECRET.encode(), by="t", now=NOW)
    assert "row 5: email: 'x@👍.de' is not an address mail can be sent to" in str(refused.value)
    assert "row 6: email: 'jörg@example.org' is not an address" in str(refused.value)
    spreadsheet.import_csv(conn, path, "newsletter", secret=SECRET.encode(), by="t", now=NOW, skip_invalid=True)
    assert [p.email for p in recipients.subscribers(conn, "newsletter")] == sorted(s for _, s, _ in IDN)
    punycode = tmp_path / "punycode.csv"  # the same people written in punycode are the same people
    punycode.write_bytes((CSV_HEADER + "".join(f"{w};;;\r\n" for _, _, w in IDN)).encode())
    report = spreadsheet.import_csv(conn, punycode, "newsletter", secret=SECRET.encode(), by="t", now=NOW)
    assert (report.added, report.known) == (0, 3)


def test_the_web_form_uses_the_same_rule() -> None:
    person, problems = clean_person({"email": "Anna@Straße.de"})
    assert person is not None and person.email == "anna@straße.de" and problems == []
    for bad in ("x@👍.de", "jörg.weiß@example.org"):
        person, problems = clean_person({"email": bad})
        assert person is None and [p.code for p in problems] == [Code.FIELD_EMAIL]


def test_dkim_signs_for_the_idna_2008_form_of_the_domain(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "dkim.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))  # fmt: skip
    dkim_env = {"REALLABOR_DKIM_KEY": str(tmp_path / "dkim.pem"), "REALLABOR_DKIM_SELECTOR": "rlm"}
    settings = Settings.from_environ({**dkim_env, "REALLABOR_DKIM_DOMAIN": "Straße.de"})
    signer = DkimSigner.from_settings(settings.dkim())
    assert signer is not None and signer.domain == "xn--strae-oqa.de"  # IDNA 2003 would sign as strasse.de
    signed = signer.sign(b"From: becker@xn--strae-oqa.de\r\nSubject: Test\r\n\r\nHallo\r\n")
    assert b" d=xn--strae-oqa.de;" in signed.split(b"\r\nFrom:")[0].replace(b"\r\n", b"")
    emoji = Settings.from_environ({**dkim_env, "REALLABOR_DKIM_DOMAIN": "👍.de"})
    with pytest.raises(DkimError, match=r"^REALLABOR_DKIM_DOMAIN: '👍.de' is not a domain name"):
        DkimSigner.from_settings(emoji.dkim())


def test_envelope_to_and_attendee_carry_the_idna_2008_form(
    tmp_path: Path, content_copy: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in {
        "REALLABOR_SECRET": SECRET, "REALLABOR_STATE": str(tmp_path / "state.sqlite3"),
        "REALLABOR_SMTP_HOST": smtp_server.host, "REALLABOR_SMTP_PORT": str(smtp_server.port),
        "REALLABOR_SMTP_SECURITY": "none",
    }.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    for key in ("REALLABOR_SMTP_USER", "REALLABOR_SMTP_PASSWORD", "REALLABOR_DKIM_KEY"):
        monkeypatch.delenv(key, raising=False)
    site = content_copy / "site.yaml"
    site.write_text(site.read_text(encoding="utf-8").replace("becker@auslandsgesellschaft.de", "becker@straße.de"))
    csv = tmp_path / "liste.csv"
    csv.write_bytes((CSV_HEADER + "".join(f"{typed};Frau;Anna;Groß\r\n" for typed, _, _ in IDN)).encode())
    imported = CliRunner().invoke(main, ["recipients", "import", str(csv), "--list", "reallabor", "--by", "t"])
    assert imported.exit_code == 0, imported.output
    sent = CliRunner().invoke(main, ["send", str(content_copy / "events/2024-06-19-abschlussveranstaltung.md"),
                                     "--yes"])  # fmt: skip
    assert sent.exit_code == 0, sent.output
    wire = {w for _, _, w in IDN}
    assert {m.mail_from for m in smtp_server.messages} == {"becker@xn--strae-oqa.de"}
    assert sorted(r for m in smtp_server.messages for r in m.rcpt_tos) == sorted(wire)
    for received in smtp_server.messages:
        (rcpt,) = received.rcpt_tos
        message = received.message
        assert message["To"].addresses[0].addr_spec == rcpt
        assert message["From"].addresses[0].addr_spec == "becker@xn--strae-oqa.de"
        assert str(message["Message-ID"]).endswith("@xn--strae-oqa.de>")
        (calendar,) = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
        ics = calendar.get_content()
        assert f"mailto:{rcpt}" in ics.replace("\r\n ", "")
        assert "strasse" not in ics and "xn--4xaa" not in ics
