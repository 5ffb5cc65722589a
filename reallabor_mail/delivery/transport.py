"""Getting bytes to a mail server (or a Maildir): settings, TLS rules, connections, rate and replies.

SMTP settings (contract §3) are read by :mod:`reallabor_mail.settings`. TLS is on by default with the certificate
and host name verified; ``starttls`` requires the upgrade (never a plaintext fallback); ``none`` is
accepted only for loopback hosts. The password is wrapped in :class:`Secret`, whose repr hides it, and
errors raised while logging in are re-raised without the library's frames, so it appears in no output,
log or traceback.

Every server reply is classified once here (:func:`classify`), so the ledger records a decision and
the reason for it: 2xx sent; 4xx and connection errors retry later; 5.1.x bounce (the address is
suppressed); 5.7.x or a block of the whole domain stop sending to that domain without blaming its
recipients. A failure after the message's final "." was written (the connection dropped, or no reply
within ``REALLABOR_SMTP_DATA_TIMEOUT``, RFC 5321's 10 minutes by default) is *unknown*: the server may
have the message, so it is never sent again by itself (the ledger's promise, see README).

aiosmtplib opens the session (connect, TLS, EHLO, login); the messages then go through our own
:class:`Session` on that connection, with PIPELINING where the server offers it, so we know exactly
when the final "." has been written. :meth:`SmtpTransport.probe` opens one session before a send
uses any ledger row: a wrong host, port, TLS mode or login stops the run naming the setting to check.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import re
import socket
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import aiosmtplib

from reallabor_mail.errors import ReallaborError
from reallabor_mail.i18n import records
from reallabor_mail.i18n.messages import _, os_reason, server_shown
from reallabor_mail.settings import ENV_PREFIX, Secret, SmtpSettings

CONNECT_TIMEOUT = 30.0


class DeliveryError(ReallaborError):
    """The mail server cannot be used at all (settings, TLS, login): sending stops."""


# --- replies ---------------------------------------------------------------------------------------


class Verdict(enum.Enum):
    SENT = "sent"
    UNKNOWN = "unknown"  # handed over without a reply: never resent by itself
    RETRY = "retry"  # temporary: 4xx, connection errors
    BOUNCED = "bounced"  # 5.1.x: the address does not exist; failed and suppressed
    FAILED = "failed"  # other permanent errors about this message
    BLOCKED = "blocked"  # 5.7.x or a block: stop sending to the recipient's domain


@dataclass(frozen=True)
class Reply:
    """What the server said (``code`` None: no reply, the connection failed)."""

    code: int | None
    text: str
    sender_refused: bool = False  # refused at MAIL FROM: a problem with our sender, not the recipient
    unanswered: bool = False  # the whole message was handed over, the reply never came: fate unknown

    def __str__(self) -> str:
        return f"{self.code} {self.text}" if self.code is not None else self.text

    @property
    def verdict(self) -> Verdict:
        return Verdict.UNKNOWN if self.unanswered else classify(self.code, self.text)


_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
_BLOCK_WORDS = re.compile(r"block|blacklist|denylist|spamhaus|\blisted\b|reputation|policy", re.IGNORECASE)


def classify(code: int | None, text: str) -> Verdict:
    """Decide what a reply means for this message and address (see the module docstring)."""
    if code is None or 400 <= code < 500:
        return Verdict.RETRY
    if 200 <= code < 400:
        return Verdict.SENT
    enhanced = _ENHANCED.search(text)
    subject = enhanced.group(2) if enhanced else None
    if subject == "7" or (subject is None and _BLOCK_WORDS.search(text)):
        return Verdict.BLOCKED
    if subject == "1":
        return Verdict.BOUNCED
    return Verdict.FAILED


# --- transports ------------------------------------------------------------------------------------


class Connection(Protocol):
    """One channel to deliver messages through, used by one worker at a time."""

    async def deliver(self, sender: str, recipient: str, data: bytes) -> Reply: ...

    async def close(self) -> None: ...

    def abort(self) -> None: ...


class Transport(Protocol):
    """Opens connections; ``describe()`` says where messages go; ``probe()`` checks it can be used at all."""

    def connection(self) -> Connection: ...

    def describe(self) -> str: ...

    async def probe(self) -> None: ...


def default_tls_context() -> ssl.SSLContext:
    """Certificates and host names verified against the system's trust store, TLS 1.2 at least."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


@dataclass
class SmtpTransport:
    """SMTP through aiosmtplib; each connection is kept open and reused for many messages."""

    settings: SmtpSettings
    tls_context: ssl.SSLContext = field(default_factory=default_tls_context)
    timeout: float = CONNECT_TIMEOUT
    pipelining: bool = True  # use PIPELINING where the server offers it

    def connection(self) -> SmtpConnection:
        return SmtpConnection(self)

    def describe(self) -> str:
        return server_shown(self.settings)

    async def probe(self) -> None:
        """Connect, TLS, log in and say goodbye: :class:`DeliveryError` naming the setting if that fails."""
        connection = SmtpConnection(self)
        try:
            smtp = await connection.open()
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            raise unreachable(self.settings, exc, self.timeout) from None
        with contextlib.suppress(TimeoutError, aiosmtplib.SMTPException, OSError):
            await smtp.quit()
        smtp.close()


def unreachable(s: SmtpSettings, exc: BaseException, timeout: float) -> DeliveryError:
    """Why the server cannot be reached at all, starting with the setting to check."""
    cause = exc.__cause__ or exc.__context__ or exc
    where = f"{s.host}:{s.port}"
    if isinstance(cause, socket.gaierror):
        return DeliveryError(
            f"{ENV_PREFIX}HOST: the mail server {s.host} cannot be found ({cause.strerror}); "
            "check the host name (and this computer's network connection)"
        )
    if isinstance(cause, ConnectionRefusedError):
        return DeliveryError(
            f"{ENV_PREFIX}PORT: {where} refuses connections; check {ENV_PREFIX}PORT (587 for starttls, 465 for "
            f"tls) and {ENV_PREFIX}HOST"
        )
    if isinstance(exc, TimeoutError) or isinstance(cause, TimeoutError) or "timed out" in str(exc).lower():
        return DeliveryError(
            f"{ENV_PREFIX}HOST: {where} did not answer within {timeout:.0f} s; check {ENV_PREFIX}HOST and "
            f"{ENV_PREFIX}PORT (a firewall may block the port)"
        )
    return DeliveryError(
        f"{ENV_PREFIX}HOST: {where} cannot be used ({describe_exception(exc)}); check {ENV_PREFIX}HOST, "
        f"{ENV_PREFIX}PORT and {ENV_PREFIX}SECURITY"
    )


_DOT_LINE = re.compile(rb"\n\.")  # a line starting with a dot (the regex is faster than `in` on CRLF text)


def _time_out(wakeup: asyncio.Future[None]) -> None:
    if not wakeup.done():
        wakeup.set_exception(TimeoutError())


class Session(asyncio.Protocol):
    """An established session (connected, TLS, EHLO and login done by aiosmtplib) taken over for
    sending. With PIPELINING (RFC 2920, ``pipelined``) MAIL, RCPT and DATA go out in one write and the
    body in a second, two round trips per message instead of four; without it, one command per
    reply. aiosmtplib spends most of its time normalising every message with regular expressions and
    cannot tell a drop before the final "." from one after it; our messages are built with CRLF line
    ends, so only dot-stuffing is left to do, and the reply to the final "." gets its own long wait.
    """

    def __init__(
        self, transport: asyncio.BaseTransport, *, size: bool, timeout: float, data_timeout: float, pipelined: bool
    ) -> None:
        self.transport = transport
        self.size = size
        self.timeout = timeout
        self.data_timeout = data_timeout
        self.pipelined = pipelined
        self.buffer = bytearray()
        self.lines: list[str] = []
        self.replies: deque[Reply] = deque()
        self.closed: str | None = None
        self.wakeup: asyncio.Future[None] | None = None
        transport.set_protocol(self)

    # asyncio.Protocol
    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\n")) != -1:
            line = self.buffer[: end + 1].decode("utf-8", "replace").rstrip("\r\n")
            del self.buffer[: end + 1]
            if not line[:3].isdigit():
                self.closed = f"malformed reply {line[:40]!r}"
                self.transport.close()
                break
            self.lines.append(line[4:].strip())
            if line[3:4] != "-":
                self.replies.append(Reply(int(line[:3]), "\n".join(self.lines)))
                self.lines = []
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = self.closed or (describe_exception(exc) if exc else records.CLOSED())
        self._wake()

    def eof_received(self) -> bool:
        return False

    def _wake(self) -> None:
        if self.wakeup is not None and not self.wakeup.done():
            self.wakeup.set_result(None)

    async def read(self, count: int, timeout: float | None = None) -> list[Reply]:
        """The next ``count`` replies; ConnectionError if the connection ends first, TimeoutError if none comes."""
        loop = asyncio.get_running_loop()
        while len(self.replies) < count:
            if self.closed is not None:
                raise ConnectionError(self.closed)
            wakeup = self.wakeup = loop.create_future()
            timer = loop.call_later(timeout or self.timeout, _time_out, wakeup)  # wait_for costs a task's worth
            try:
                await wakeup
            finally:
                timer.cancel()
        return [self.replies.popleft() for _ in range(count)]

    def write(self, data: bytes) -> None:
        if self.closed is not None or self.transport.is_closing():
            raise ConnectionError(self.closed or records.GONE())
        self.transport.write(data)  # type: ignore[attr-defined]

    async def send(self, sender: str, recipient: str, data: bytes) -> Reply:
        """One message; ``data`` has CRLF line ends (as every message built here has)."""
        size = f" SIZE={len(data)}" if self.size else ""
        commands = (f"MAIL FROM:<{sender}>{size}\r\n", f"RCPT TO:<{recipient}>\r\n", "DATA\r\n")
        try:
            if self.pipelined:
                self.write("".join(commands).encode("ascii"))
                mail, rcpt, start = await self.read(3)
            else:
                mail, rcpt, start = await self._one_by_one(commands)
        except ConnectionError:
            code = self.replies[0].code or 0 if self.replies else 0
            if code >= 400:  # e.g. 421 to MAIL FROM, then the server hung up
                return Reply(code, self.replies.popleft().text, sender_refused=code >= 500)
            raise
        if start.code == 354 and (mail.code != 250 or rcpt.code not in (250, 251)):
            self.write(b".\r\n")  # DATA accepted without a recipient: end it empty (RFC 2920 3.1)
            await self.read(1)
        if mail.code != 250:
            return Reply(mail.code, mail.text, sender_refused=True)
        if rcpt.code not in (250, 251):
            return Reply(rcpt.code, rcpt.text)
        if start.code != 354:
            return start
        body = b"." + data if data.startswith(b".") else data
        if _DOT_LINE.search(body):  # a search is cheaper than a copy; stamped messages need no dot-stuffing
            body = body.replace(b"\r\n.", b"\r\n..")
        self.write(body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n")
        try:  # from here on the server may have the message: no reply is not a reason to send it again
            (reply,) = await self.read(1, self.data_timeout)
        except (ConnectionError, TimeoutError) as exc:
            self.transport.close()
            text = (records.HANDED_OVER_SILENT(seconds=f"{self.data_timeout:.0f}") if isinstance(exc, TimeoutError)
                    else records.HANDED_OVER(why=exc))  # fmt: skip
            return Reply(None, text, unanswered=True)
        return reply

    async def _one_by_one(self, commands: tuple[str, str, str]) -> list[Reply]:
        """MAIL, RCPT, DATA without PIPELINING: each waits for the reply before the next; stops at a refusal."""
        replies: list[Reply] = []
        for command in commands:
            self.write(command.encode("ascii"))
            (reply,) = await self.read(1)
            replies.append(reply)
            if reply.code is None or reply.code >= 400:
                break
        skipped = Reply(503, records.EARLIER_REFUSED())
        return replies + [skipped] * (3 - len(replies))

    async def reset(self) -> None:
        self.write(b"RSET\r\n")
        await self.read(1)

    async def quit(self) -> None:
        with contextlib.suppress(ConnectionError, TimeoutError):
            self.write(b"QUIT\r\n")
            await self.read(1)
        self.transport.close()


class SmtpConnection:
    """A reusable SMTP session: connects on first use and again after the server dropped it."""

    def __init__(self, transport: SmtpTransport) -> None:
        self.transport = transport
        self.session: Session | None = None

    async def open(self) -> aiosmtplib.SMTP:
        """An aiosmtplib session: connected, TLS as the settings say, EHLO done, logged in."""
        s = self.transport.settings
        where = f"{s.host}:{s.port}"
        smtp = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            use_tls=s.security == "tls",
            start_tls=s.security == "starttls",  # True: required, an error if the server does not offer it
            validate_certs=s.security != "none",
            tls_context=self.transport.tls_context if s.security != "none" else None,
            timeout=self.transport.timeout,
        )
        security = f"{ENV_PREFIX}SECURITY ({s.security}): {where}"
        try:
            await smtp.connect()
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(f"{security}: the server's certificate is not trusted ({exc.verify_message})") from None
        except aiosmtplib.SMTPException as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, ssl.SSLCertVerificationError):
                raise DeliveryError(
                    f"{security}: the server's certificate is not trusted ({cause.verify_message})"
                ) from None
            if isinstance(cause, ssl.SSLError):
                raise DeliveryError(
                    f"{security}: TLS failed ({cause.reason or cause}); check {ENV_PREFIX}SECURITY "
                    f"(tls on port 465, starttls on 587) and {ENV_PREFIX}PORT"
                ) from None
            if s.security == "starttls" and "STARTTLS" in str(exc):
                raise DeliveryError(
                    f"{security}: the server does not offer STARTTLS; refusing to send unencrypted "
                    f"(set {ENV_PREFIX}SECURITY=tls if it speaks TLS on connect)"
                ) from None
            raise
        if s.user is not None and s.password is not None:
            await self._login(smtp, s.user, s.password, where)
        if smtp.last_ehlo_response is None:  # without TLS or login, aiosmtplib greets only on the first command
            await smtp.ehlo()
        return smtp

    @staticmethod
    async def _login(smtp: aiosmtplib.SMTP, user: str, password: Secret, where: str) -> None:
        login = f"{ENV_PREFIX}USER, {ENV_PREFIX}PASSWORD: {where}"
        try:
            await smtp.login(user, password.reveal())
        except aiosmtplib.SMTPAuthenticationError as exc:
            smtp.close()
            raise DeliveryError(
                f"{login}: login as {user} refused: {exc.code} {exc.message}; check the user name and password"
            ) from None
        except aiosmtplib.SMTPException as exc:
            smtp.close()
            raise DeliveryError(
                f"{login}: login as {user} failed ({describe_exception(exc)}); check the user name and password, "
                f"and {ENV_PREFIX}SECURITY (many servers offer login only after STARTTLS)"
            ) from None

    async def _connect(self) -> None:
        smtp = await self.open()
        if smtp.transport is None:
            raise ConnectionError(records.CLOSED_AFTER_GREETING())
        self.session = Session(
            smtp.transport, size=smtp.supports_extension("size"), timeout=self.transport.timeout,
            data_timeout=self.transport.settings.data_timeout,
            pipelined=self.transport.pipelining and smtp.supports_extension("pipelining"),
        )  # fmt: skip

    async def deliver(self, sender: str, recipient: str, data: bytes) -> Reply:
        """MAIL, RCPT, DATA on the open session; a failure is a Reply, not an exception."""
        for address, is_sender in ((sender, True), (recipient, False)):  # the sender's fault is nobody else's
            if not _ENVELOPE_ADDRESS.fullmatch(address):
                text = f"5.6.7 {address!r}: not an address that can be sent without SMTPUTF8"
                return Reply(553, text, sender_refused=is_sender)
        try:
            if self.session is not None and self.session.closed is not None:  # dropped while idle: reconnect
                self._drop()
            if self.session is None:
                await self._connect()
            assert self.session is not None
            reply = await self.session.send(sender, recipient, data)
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            self._drop()
            return Reply(None, records.CONNECTION_FAILED(why=describe_exception(exc)))
        if reply.unanswered:
            self._drop()
        elif reply.code is not None and reply.code >= 400:
            await self._after_refusal(reply.code)
        return reply

    async def _after_refusal(self, code: int) -> None:
        """Reset the envelope so the session can carry the next message; drop it after a 421."""
        try:
            if code == 421:
                self._drop()
            elif self.session is not None:
                await self.session.reset()
        except (TimeoutError, OSError):
            self._drop()

    def _drop(self) -> None:
        if self.session is not None:
            self.session.transport.close()
        self.session = None

    def abort(self) -> None:
        """Cut the connection at once (a second Ctrl-C), without QUIT."""
        if self.session is not None:
            self.session.transport.abort()  # type: ignore[attr-defined]
        self.session = None

    async def close(self) -> None:
        if self.session is not None:
            await self.session.quit()
        self._drop()


_ENVELOPE_ADDRESS = re.compile(r"[!-;=?-~]+@[!-;=?-~]+")  # printable ASCII without <, >, space


def describe_exception(exc: BaseException) -> str:
    """A one-line reason, without library internals (and never a credential)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


@dataclass
class MaildirTransport:
    """``--outbox DIR``: every message becomes a file in a Maildir (tmp/, then renamed into new/)."""

    root: Path

    def __post_init__(self) -> None:
        try:
            for sub in ("tmp", "new", "cur"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeliveryError(f"{self.root}: cannot create the outbox: {os_reason(exc)}") from None
        self._host = socket.gethostname().replace("/", "_").replace(":", "_")
        self._counter = 0

    def connection(self) -> MaildirTransport:
        return self

    def describe(self) -> str:
        return f"the Maildir {self.root} (nothing goes over the network)"

    async def probe(self) -> None:
        return None  # the folders were made (or refused) when the outbox was opened

    def abort(self) -> None:
        return None

    async def deliver(self, sender: str, recipient: str, data: bytes) -> Reply:
        """Write, fsync, rename: a file in new/ is complete, a crash leaves at most a file in tmp/."""
        self._counter += 1
        name = f"{time.time_ns() // 1000}.P{os.getpid()}Q{self._counter}.{self._host}"
        tmp = self.root / "tmp" / name
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                envelope = f"Return-Path: <{sender}>\nDelivered-To: {recipient}\n".encode()
                os.write(fd, envelope + data.replace(b"\r\n", b"\n"))  # Maildir files use local line ends
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, self.root / "new" / name)
        except OSError as exc:
            raise DeliveryError(f"{tmp}: cannot write the message: {os_reason(exc)}") from None
        return Reply(250, f"written to {self.root.name}/new/{name}")

    async def close(self) -> None:
        return None


# --- rate ------------------------------------------------------------------------------------------


def parse_rate(text: str) -> float:
    """``120/min``, ``2/s``, ``3600/h`` or a bare number (per minute) → messages per minute."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|min|m|h|hour))?\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise ReallaborError(_("--rate: {value!r} is not a rate like 120/min", value=text))
    per = {"s": 1 / 60, "sec": 1 / 60, "h": 60.0, "hour": 60.0}.get(match.group(2) or "min", 1.0)
    return float(match.group(1)) / per


@dataclass
class RateLimiter:
    """Spaces message starts evenly so that no more than ``per_minute`` begin in any minute.

    ``now`` and ``sleep`` are injectable so tests can check the schedule without waiting.
    """

    per_minute: float | None
    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    _next: float = 0.0

    async def acquire(self) -> None:
        if not self.per_minute:
            return
        interval = 60.0 / self.per_minute
        now = self.now()
        slot = max(now, self._next)
        self._next = slot + interval
        if slot > now:
            await self.sleep(slot - now)
