"""What the public server accepts from the network: body size, slow clients, connections, proxies.

* Request bodies: at most :attr:`ServerLimits.body_bytes` (64 KB; the form needs under 2 KB). A
  larger ``Content-Length`` is answered 413 before a byte of the body is read; a body without a length
  is counted as it arrives and cut off at the limit, so neither memory nor the temporary folder fills.
* Headers: a connection has :attr:`ServerLimits.header_seconds` to send complete request headers
  (again after each response while kept alive), however slowly it trickles bytes in; headers are at most
  :attr:`ServerLimits.header_bytes`. Idle keep-alive connections close after ``keep_alive_seconds``.
* At most :attr:`ServerLimits.connections` connections at once; beyond that uvicorn answers 503.
* ``X-Forwarded-For``/``-Proto`` are believed only from the proxies the operator names
  (``--forwarded-allow-ips``); by default from nobody, not even 127.0.0.1 (uvicorn's default).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol


@dataclass(frozen=True)
class ServerLimits:
    body_bytes: int = 64 * 1024
    header_bytes: int = 16 * 1024
    header_seconds: float = 10.0
    keep_alive_seconds: float = 5.0
    connections: int = 1000


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


def header_deadline_protocol(seconds: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a deadline for complete request headers (slowloris).

    uvicorn resets its keep-alive timer on every byte received and has no timer before the first
    request, so a client that trickles header bytes (or sends none) holds its connection forever.
    """

    class HeaderDeadline(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _armed_for: Any = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.cycle is not self._armed_for and self._deadline is not None:  # headers complete
                self._deadline.cancel()
                self._deadline = None

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
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

    return HeaderDeadline


def server_config(
    app: ASGIApp, *, host: str, port: int, forwarded_allow_ips: str | None, limits: ServerLimits = ServerLimits()
) -> uvicorn.Config:
    """The uvicorn configuration of ``serve --public`` (tests run the same one)."""
    return uvicorn.Config(
        app, host=host, port=port,
        http=header_deadline_protocol(limits.header_seconds),
        h11_max_incomplete_event_size=limits.header_bytes,
        timeout_keep_alive=int(limits.keep_alive_seconds),
        limit_concurrency=limits.connections,
        proxy_headers=bool(forwarded_allow_ips),
        forwarded_allow_ips=forwarded_allow_ips or "",
        server_header=False,
        access_log=False,  # the links' tokens carry addresses, which do not belong in a log file
        log_level="warning",
    )  # fmt: skip
