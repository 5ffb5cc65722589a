"""Delivery: settings from the environment, TLS rules against real servers, replies, rate, Maildir."""

from __future__ import annotations

import asyncio
import email
import ssl
import traceback
from email import policy
from pathlib import Path

import pytest
from aiosmtpd.smtp import AuthResult

from reallabor_mail.delivery.transport import (
    DeliveryError,
    MaildirTransport,
    RateLimiter,
    Reply,
    Secret,
    SmtpSettings,
    SmtpTransport,
    Verdict,
    classify,
    parse_rate,
)
from reallabor_mail.errors import ReallaborError, SettingsError
from reallabor_mail.i18n.messages import server_shown
from tests.smtp_faults import fault_server, self_signed, server_tls_context

MESSAGE = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nHallo\r\n.dot line\r\n"
PASSWORD = "correct-horse-battery-staple"


def deliver(transport: SmtpTransport | MaildirTransport, rcpt: str = "b@example.org") -> Reply:
    async def go() -> Reply:
        connection = transport.connection()
        try:
            return await connection.deliver("a@example.org", rcpt, MESSAGE)
        finally:
            await connection.close()

    return asyncio.run(go())


# --- settings ----------------------------------------------------------------------------------------


def test_settings_default_to_starttls_on_587() -> None:
    settings = SmtpSettings.from_env({"REALLABOR_SMTP_HOST": "smtp.example.org"})
    assert settings == SmtpSettings("smtp.example.org", 587, "starttls")
    assert SmtpSettings.from_env({}) is None
    assert SmtpSettings.from_env({"REALLABOR_SMTP_HOST": "h", "REALLABOR_SMTP_SECURITY": "tls"}).port == 465  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REALLABOR_SMTP_SECURITY": "none"}, "only for a server on this machine"),
        ({"REALLABOR_SMTP_SECURITY": "ssl3"}, "not one of starttls, tls, none"),
        ({"REALLABOR_SMTP_PORT": "smtp"}, "not a port number"),
        ({"REALLABOR_SMTP_USER": "becker"}, "must be set together"),
    ],
)
def test_settings_refuse_unsafe_or_broken_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        SmtpSettings.from_env({"REALLABOR_SMTP_HOST": "smtp.example.org", **env})


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.53"])
def test_plaintext_is_allowed_for_loopback(host: str) -> None:
    assert SmtpSettings.from_env({"REALLABOR_SMTP_HOST": host, "REALLABOR_SMTP_SECURITY": "none"}) is not None


def test_password_is_hidden_in_repr_and_description() -> None:
    settings = SmtpSettings.from_env(
        {
            "REALLABOR_SMTP_HOST": "smtp.example.org",
            "REALLABOR_SMTP_USER": "becker",
            "REALLABOR_SMTP_PASSWORD": PASSWORD,
        }
    )
    assert settings is not None and settings.password == Secret(PASSWORD)
    shown = server_shown(settings)
    for text in (repr(settings), str(settings), shown, repr(settings.password), f"{settings.password}"):
        assert PASSWORD not in text
    assert shown == "smtp.example.org:587 (STARTTLS, user becker)"


# --- replies and rate ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "text", "verdict"),
    [
        (250, "2.0.0 OK: queued", Verdict.SENT),
        (421, "4.7.0 Too many connections", Verdict.RETRY),
        (450, "4.2.0 Mailbox busy", Verdict.RETRY),
        (451, "4.7.1 Greylisted, try again later", Verdict.RETRY),
        (452, "4.5.3 Too many recipients", Verdict.RETRY),
        (None, "connection failed: Connection lost", Verdict.RETRY),
        (550, "5.1.1 <x@example.org>: Recipient address rejected: User unknown", Verdict.BOUNCED),
        (553, "5.1.3 Bad recipient address syntax", Verdict.BOUNCED),
        (554, "5.7.1 Service unavailable; client host blocked using zen.spamhaus.org", Verdict.BLOCKED),
        (550, "5.7.606 Access denied, banned sending IP", Verdict.BLOCKED),
        (554, "Service unavailable; Client host [1.2.3.4] blocked", Verdict.BLOCKED),
        (552, "5.3.4 Message size exceeds fixed limit", Verdict.FAILED),
    ],
)
def test_replies_are_classified(code: int | None, text: str, verdict: Verdict) -> None:
    assert classify(code, text) is verdict


@pytest.mark.parametrize(("text", "per_minute"), [("120/min", 120), ("2/s", 120), ("600/h", 10), ("30", 30)])
def test_rates_parse(text: str, per_minute: float) -> None:
    assert parse_rate(text) == per_minute


def test_bad_rate_is_an_error() -> None:
    with pytest.raises(ReallaborError, match="not a rate"):
        parse_rate("fast")


def test_rate_limiter_spaces_messages_evenly() -> None:
    clock = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    limiter = RateLimiter(60, now=lambda: clock[0], sleep=sleep)

    async def five() -> None:
        for _ in range(5):
            await limiter.acquire()

    asyncio.run(five())
    assert slept == [1.0, 1.0, 1.0, 1.0]  # the first goes at once, then one per second
    assert clock[0] == 104.0


# --- TLS rules against real servers ----------------------------------------------------------------


def test_self_signed_certificate_is_refused(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    with fault_server(ssl_context=server_tls_context(cert, key)) as server:
        transport = SmtpTransport(SmtpSettings(server.host, server.port, "tls"))
        with pytest.raises(DeliveryError, match="certificate is not trusted"):
            deliver(transport)
        assert server.handler.messages == []


def test_tls_works_with_a_trusted_certificate(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    trusting = ssl.create_default_context(cafile=str(cert))
    with fault_server(ssl_context=server_tls_context(cert, key)) as server:
        reply = deliver(SmtpTransport(SmtpSettings(server.host, server.port, "tls"), tls_context=trusting))
        assert reply.verdict is Verdict.SENT
        assert len(server.handler.messages) == 1


def test_starttls_is_required_when_configured(tmp_path: Path) -> None:
    with fault_server() as server:  # no tls_context: the server does not offer STARTTLS
        transport = SmtpTransport(SmtpSettings(server.host, server.port, "starttls"))
        with pytest.raises(DeliveryError, match="does not offer STARTTLS; refusing to send unencrypted"):
            deliver(transport)
        assert server.handler.messages == []


def test_starttls_with_a_self_signed_certificate_is_refused(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    with fault_server(tls_context=server_tls_context(cert, key), require_starttls=True) as server:
        with pytest.raises(DeliveryError, match="certificate is not trusted"):
            deliver(SmtpTransport(SmtpSettings(server.host, server.port, "starttls")))
        trusting = ssl.create_default_context(cafile=str(cert))
        transport = SmtpTransport(SmtpSettings(server.host, server.port, "starttls"), tls_context=trusting)
        assert deliver(transport).verdict is Verdict.SENT
        assert len(server.handler.messages) == 1


def _authenticator(server: object, session: object, envelope: object, mechanism: str, data: object) -> AuthResult:
    ok = getattr(data, "password", b"") == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


def test_refused_login_never_shows_the_password(tmp_path: Path) -> None:
    wrong = PASSWORD[::-1]
    with fault_server(authenticator=_authenticator, auth_require_tls=False) as server:
        good = SmtpSettings(server.host, server.port, "none", "becker", Secret(PASSWORD))
        assert deliver(SmtpTransport(good)).verdict is Verdict.SENT
        bad = SmtpSettings(server.host, server.port, "none", "becker", Secret(wrong))
        with pytest.raises(DeliveryError, match="login as becker refused") as info:
            deliver(SmtpTransport(bad))
    shown = "".join(traceback.format_exception(info.value)) + repr(info.value) + repr(bad)
    assert wrong not in shown
    assert "becker" in shown


def test_a_dead_server_is_a_retry_not_a_crash() -> None:
    with fault_server() as server:
        port = server.port
    reply = deliver(SmtpTransport(SmtpSettings("127.0.0.1", port, "none")))
    assert reply.code is None and reply.verdict is Verdict.RETRY
    assert reply.text.startswith("connection failed")


# --- Maildir ---------------------------------------------------------------------------------------


def test_maildir_outbox_holds_complete_messages(tmp_path: Path) -> None:
    outbox = MaildirTransport(tmp_path / "outbox")
    for _ in range(3):
        assert deliver(outbox).verdict is Verdict.SENT
    files = sorted((tmp_path / "outbox" / "new").iterdir())
    assert len(files) == 3 and not any((tmp_path / "outbox" / "tmp").iterdir())
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert parsed["Delivered-To"] == "b@example.org"
    assert parsed.get_content() == "Hallo\n.dot line\n"
