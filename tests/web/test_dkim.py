"""Every mail leaves through the one builder and the one transport, DKIM-signed when configured
(issue 10): before, the confirmation mail was assembled by hand in the web module, wrapped SMTP
itself and was never signed."""

from __future__ import annotations

import base64
from pathlib import Path

import dkim
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from reallabor_mail.cli.recipients import public_config
from reallabor_mail.settings import Settings
from reallabor_mail.web.public import PublicSite
from reallabor_mail.web.signup_queue import SignupLimits

from ..conftest import SAMPLE_CONTENT, TEMPLATES, SmtpServer
from .conftest import CLIENT_IP, FORM, SECRET

pytestmark = pytest.mark.anyio


def dkim_key(tmp_path: Path) -> tuple[Path, bytes]:
    """A fresh RSA key as a PEM file, and the DNS TXT record that publishes its public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "dkim.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))  # fmt: skip
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


async def test_confirmation_mail_from_serve_public_is_signed(tmp_path: Path, smtp_server: SmtpServer) -> None:
    key_path, record = dkim_key(tmp_path)
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "index.html").write_text("<h1>Archiv</h1>", encoding="utf-8")
    settings = Settings.from_environ({
        "REALLABOR_SECRET": SECRET.decode(), "REALLABOR_SMTP_HOST": "127.0.0.1",
        "REALLABOR_SMTP_PORT": str(smtp_server.port), "REALLABOR_SMTP_SECURITY": "none",
        "REALLABOR_DKIM_KEY": str(key_path), "REALLABOR_DKIM_SELECTOR": "rlm2026",
        "REALLABOR_DKIM_DOMAIN": "auslandsgesellschaft.de",
    })  # fmt: skip
    config = public_config(SAMPLE_CONTENT, TEMPLATES, tmp_path / "build", tmp_path / "state.sqlite3",
                           ("newsletter",), SignupLimits(), settings)  # fmt: skip
    site = PublicSite(config)
    host = config.site.public_url.split("/")[2]
    transport = httpx.ASGITransport(app=site.app(), client=(CLIENT_IP, 50000))
    async with httpx.AsyncClient(transport=transport, base_url=f"https://{host}") as client:
        assert (await client.post("/subscribe", data=FORM)).status_code == 200
    await site.queue.deliver_due()

    (received,) = smtp_server.messages
    assert received.data.startswith(b"DKIM-Signature:")

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record if name == b"rlm2026._domainkey.auslandsgesellschaft.de." else b""

    assert dkim.verify(received.data, dnsfunc=dns)
    tampered = received.data.replace(b"Bitte", b"Bitt3", 1)
    assert not dkim.verify(tampered, dnsfunc=dns)
