"""A real SMTP server (aiosmtpd) that records what it accepts and injects the faults of issue 4.

Used in-process by the sending tests (:func:`fault_server`) and as a separate process by the crash
test (``python -m tests.smtp_faults PORT LOGFILE``: appends one line per accepted message).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import ssl
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.conftest import Received, free_port


@dataclass
class Faults:
    """What the server does wrong, and to whom. Replies given ``*_once`` happen on the first try only."""

    rcpt: dict[str, str] = field(default_factory=dict)  # address → reply at RCPT, every time
    rcpt_once: dict[str, str] = field(default_factory=dict)  # address → reply at RCPT, first time only
    domain: dict[str, str] = field(default_factory=dict)  # domain → reply at RCPT, every time
    mail: str | None = None  # reply to every MAIL FROM
    storm: int = 0  # the first N MAIL FROM commands get 421 and the connection is closed
    drop_in_data: set[str] = field(default_factory=set)  # close the connection in DATA, first time only
    lose_reply: set[str] = field(default_factory=set)  # accept the message after the final ".", then close unanswered
    delay: float = 0.0  # seconds before every reply to MAIL, RCPT and DATA
    data_delay: float = 0.0  # seconds before the reply to the final "." (the message is accepted either way)
    pipelining: bool = False  # advertise PIPELINING (aiosmtpd reads commands in order either way)


@dataclass
class FaultHandler:
    faults: Faults = field(default_factory=Faults)
    messages: list[Received] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)  # RCPT commands per address
    connections_closed: int = 0

    def _close_soon(self, server: Any) -> None:
        self.connections_closed += 1
        asyncio.get_running_loop().call_soon(server.transport.close)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.faults.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        await asyncio.sleep(self.faults.delay)
        if self.faults.storm > 0:
            self.faults.storm -= 1
            self._close_soon(server)
            return "421 4.7.0 Too many connections, slow down"
        if self.faults.mail:
            return self.faults.mail
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        await asyncio.sleep(self.faults.delay)
        self.attempts[address] += 1
        domain = address.rpartition("@")[2]
        if address in self.faults.rcpt:
            return self.faults.rcpt[address]
        if domain in self.faults.domain:
            return self.faults.domain[domain]
        if address in self.faults.rcpt_once:
            return self.faults.rcpt_once.pop(address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.faults.delay)
        for address in envelope.rcpt_tos:
            if address in self.faults.drop_in_data:
                self.faults.drop_in_data.discard(address)
                self._close_soon(server)
                return "451 4.3.0 (never seen: the connection is closed first)"
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content)))
        if self.faults.lose_reply & set(envelope.rcpt_tos):  # delivered, but the client never hears of it
            self.faults.lose_reply -= set(envelope.rcpt_tos)
            self.connections_closed += 1
            server.transport.close()  # before the reply is written: it is never sent
            return "250 2.0.0 (never seen: the connection is closed first)"
        await asyncio.sleep(self.faults.data_delay)
        return "250 2.0.0 OK: queued"

    def received_by(self) -> Counter[str]:
        """How many messages each address got."""
        return Counter(rcpt for message in self.messages for rcpt in message.rcpt_tos)


@dataclass
class FaultServer:
    host: str
    port: int
    handler: FaultHandler

    @property
    def faults(self) -> Faults:
        return self.handler.faults


@contextmanager
def fault_server(faults: Faults | None = None, **server_options: Any) -> Iterator[FaultServer]:
    """A fault-injecting aiosmtpd server on 127.0.0.1 in this process."""
    handler = FaultHandler(faults or Faults())
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **server_options)
    controller.start()
    try:
        yield FaultServer("127.0.0.1", port, handler)
    finally:
        controller.stop()


def self_signed(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` (as an IP address SAN) and its key, as PEM files."""
    import ipaddress

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


class _LoggingHandler:
    """Crash-test server: one line per accepted message, flushed at once (this process is not killed)."""

    def __init__(self, log: Path) -> None:
        self.out = log.open("a", encoding="utf-8", buffering=1)
        self.asked = log.with_suffix(".rcpt").open("a", encoding="utf-8", buffering=1)  # every RCPT, accepted or not

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        self.asked.write(address + "\n")
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for rcpt in envelope.rcpt_tos:
            self.out.write(rcpt + "\n")
        return "250 2.0.0 OK"


def serve(port: int, log: Path) -> None:
    controller = Controller(_LoggingHandler(log), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


if __name__ == "__main__":
    serve(int(sys.argv[1]), Path(sys.argv[2]))
