"""What the public server accepts from the network: body size, slow clients, connections, proxies.

* Request bodies: at most :attr:`ServerLimits.body_bytes` (64 KB; the form needs under 2 KB). A
  larger ``Content-Length`` is answered 413 before a byte of the body is read; a body without a length
  is counted as it arrives and cut off at the limit, so neither memory nor the temporary folder fills.
* Headers: a connection has :attr:`ServerLimits.header_seconds` to send complete request headers
  (again after each response while kept alive), however slowly it trickles bytes in; headers are at most
  :attr:`ServerLimits.header_bytes`. Idle keep-alive connections close after ``keep_alive_seconds``.
* At most :attr:`ServerLimits.connections` connections at once (beyond that uvicorn answers 503),
  and at most :attr:`ServerLimits.connections_per_client` from one client: a further connection is
  answered 503 and closed as it is accepted, so one client cannot take every slot. The client is the
  socket's peer (:func:`client_key`); a named proxy is not capped (nginx's ``limit_conn`` does that).
* ``X-Forwarded-For``/``-Proto`` are believed only from the proxies the operator names
  (``--forwarded-allow-ips``); by default from nobody, not even 127.0.0.1 (uvicorn's default). A
  forwarded value that is not an IP address is ignored: the request counts as the proxy's.
* Sign-ups per client and hour (:class:`ClientAllowance`) are counted in the state database, so a
  restart does not reset them and several server processes share them. Clients are keyed as
  :func:`client_key` says: an IPv6 client by its /64 (one household or server has a whole /64), an
  IPv4-mapped IPv6 address as the IPv4 address.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import ipaddress
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from reallabor_mail.db import Connection, transaction, utc_stamp
from reallabor_mail.errors import SettingsError


@dataclass(frozen=True)
class ServerLimits:
    body_bytes: int = 64 * 1024
    header_bytes: int = 16 * 1024
    header_seconds: float = 10.0
    keep_alive_seconds: float = 5.0
    connections: int = 1000
    connections_per_client: int = 50


def client_key(host: str) -> str | None:
    """Who a client is for the limits: an IPv4 address, or the /64 of an IPv6 address (an IPv4-mapped
    one as its IPv4 address), in one spelling whatever the input's; None for what is not an IP address."""
    try:
        address = ipaddress.ip_address(host.strip().removeprefix("[").removesuffix("]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address.packed, 64), strict=False))
    return str(address)


class Proxies:
    """The reverse proxies named with ``--forwarded-allow-ips`` (addresses or networks, comma-separated)."""

    def __init__(self, spec: str | None) -> None:
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for item in (spec or "").split(","):
            if not item.strip():
                continue
            try:
                self.networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise SettingsError(
                    f"--forwarded-allow-ips: {item.strip()!r} is not an IP address or network; name your reverse "
                    "proxy's address, e.g. 127.0.0.1"
                ) from None

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, host: object) -> bool:
        if not isinstance(host, str):
            return False
        try:
            address = ipaddress.ip_address(host.strip().removeprefix("[").removesuffix("]"))
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def client(self, forwarded_for: Iterable[str]) -> str | None:
        """The client a proxy chain reports: the last hop that is not one of ours; None when that is
        not an IP address (then the request counts as the proxy's own)."""
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
        for hop in reversed(hops):
            if hop not in self:
                return hop.removeprefix("[").removesuffix("]") if client_key(hop) else None
        return None


class ForwardedClient:
    """ASGI middleware: the client address and scheme from ``X-Forwarded-For``/``-Proto``, only when
    the peer is one of ``proxies`` (uvicorn's own handling believes any value the proxy passes on)."""

    def __init__(self, app: ASGIApp, proxies: Proxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        if scope["type"] == "http" and peer and peer[0] in self.proxies:
            headers = [(name, value.decode("latin-1")) for name, value in scope["headers"]]
            client = self.proxies.client(value for name, value in headers if name == b"x-forwarded-for")
            scheme = next((value.strip() for name, value in headers if name == b"x-forwarded-proto"), "")
            scope = dict(scope)
            if client:
                scope["client"] = (client, 0)
            if scheme in ("http", "https"):
                scope["scheme"] = scheme
        await self.app(scope, receive, send)


class ClientAllowance:
    """At most ``per_hour`` sign-ups per client (see :func:`client_key`) within any hour, counted in the
    state database under a keyed hash of the client (an IP address is personal data)."""

    def __init__(self, conn: Connection, *, secret: bytes, per_hour: int,
                 clock: Callable[[], dt.datetime]) -> None:  # fmt: skip
        self.conn = conn
        self.secret = secret
        self.per_hour = per_hour
        self.clock = clock

    def allow(self, host: str | None) -> bool:
        """Count a sign-up of ``host``; False (and not counted) if its hour is used up."""
        now = self.clock()
        since = utc_stamp(now - dt.timedelta(hours=1))
        name = client_key(host or "") or "unknown"
        key = hmac.new(self.secret, f"client\x00{name}".encode(), hashlib.sha256).hexdigest()[:32]
        with transaction(self.conn):
            self.conn.execute("DELETE FROM web_client_attempts WHERE at <= ?", (since,))
            used = self.conn.execute(
                "SELECT count(*) FROM web_client_attempts WHERE client = ? AND at > ?", (key, since)
            ).fetchone()[0]
            if used >= self.per_hour:
                return False
            self.conn.execute("INSERT INTO web_client_attempts (at, client) VALUES (?, ?)", (utc_stamp(now), key))
        return True


class _BodyTooLarge(Exception):
    """Raised inside :class:`BodyLimit` when a streamed body passes the limit."""


_TOO_LARGE = b"Request body too large."


class BodyLimit:
    """ASGI middleware: 413 for a request body over ``limit`` bytes, reading at most ``limit`` of it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.limit:
            await self._refuse(send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _BodyTooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _BodyTooLarge:
            if not started:
                await self._refuse(send)

    @staticmethod
    async def _refuse(send: Send) -> None:
        await send({
            "type": "http.response.start", "status": 413,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close"),
                        (b"content-length", str(len(_TOO_LARGE)).encode())],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": _TOO_LARGE})


_BUSY = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


def guarded_protocol(limits: ServerLimits, proxies: Proxies) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a deadline for complete request headers (slowloris) and a cap on the
    connections one client holds at once.

    uvicorn resets its keep-alive timer on every byte received and has no timer before the first
    request, so a client that trickles header bytes (or sends none) holds its connection forever.
    uvicorn's ``limit_concurrency`` counts everyone together, so one client's idle connections made
    everyone else's requests 503 (1,500 idle connections: 58 of 58 requests refused).
    """
    seconds = limits.header_seconds
    open_by_client: Counter[str] = Counter()

    class Guarded(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _armed_for: Any = None
        _client: str | None = None  # who this connection counts for; None: not counted (a proxy, or refused)
        _refused = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            peer = transport.get_extra_info("peername")
            host = str(peer[0]) if isinstance(peer, tuple) and peer else ""
            if host and host not in proxies:
                client = client_key(host) or host
                if open_by_client[client] >= limits.connections_per_client:
                    self._refused = True
                    transport.write(_BUSY)
                    transport.close()
                    return
                open_by_client[client] += 1
                self._client = client
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            super().data_received(data)
            if self.cycle is not self._armed_for and self._deadline is not None:  # headers complete
                self._deadline.cancel()
                self._deadline = None

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._refused:
                return
            if self._client is not None:
                open_by_client[self._client] -= 1
                if open_by_client[self._client] <= 0:
                    del open_by_client[self._client]
            if self._deadline is not None:
                self._deadline.cancel()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._armed_for = self.cycle
            self._deadline = self.loop.call_later(seconds, self._expire)

        def _expire(self) -> None:
            self._deadline = None
            if self.cycle is self._armed_for and not self.transport.is_closing():
                self.transport.close()

    return Guarded


def server_config(
    app: ASGIApp, *, host: str, port: int, forwarded_allow_ips: str | None, limits: ServerLimits = ServerLimits()
) -> uvicorn.Config:
    """The uvicorn configuration of ``serve --public`` (tests run the same one)."""
    proxies = Proxies(forwarded_allow_ips)
    return uvicorn.Config(
        ForwardedClient(app, proxies), host=host, port=port,
        http=guarded_protocol(limits, proxies),
        h11_max_incomplete_event_size=limits.header_bytes,
        timeout_keep_alive=int(limits.keep_alive_seconds),
        limit_concurrency=limits.connections,
        proxy_headers=False,  # ForwardedClient does it, believing only the named proxies
        server_header=False,
        access_log=False,  # the links' tokens carry addresses, which do not belong in a log file
        log_level="warning",
    )  # fmt: skip
