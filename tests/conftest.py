"""Shared fixtures: the sample content, a scratch copy of it, and a real recording SMTP server."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CONTENT = ROOT / "content"
TEMPLATES = ROOT / "reallabor_mail" / "templates"
TODAY = dt.date(2023, 10, 1)  # the clock every build in the tests sees

# Tests read messages in English (the catalogs' source language), whatever this machine's locale;
# tests/i18n sets the language explicitly to see German and Ukrainian.
os.environ["REALLABOR_LANG"] = "en"


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample content built once for the whole run (read it, never change it)."""
    from reallabor_mail.publish.build import build

    out = tmp_path_factory.mktemp("built") / "build"
    build(SAMPLE_CONTENT, TEMPLATES, out, today=TODAY)
    return out


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Any]:
    """A throw-away PostgreSQL server for the whole run (tests/pg.py); skips where PostgreSQL is missing."""
    from tests import pg

    if pg.pg_bin() is None:
        pytest.skip("PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb); scripts/install.sh test adds it")
    yield from pg.start_cluster()


@pytest.fixture
def pg_url(pg_cluster: Any) -> str:
    """A fresh, empty PostgreSQL database for one test: its URL."""
    return str(pg_cluster.fresh_database())


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """The state of one test on each back end: a SQLite file path, or a fresh PostgreSQL database (a
    :class:`~reallabor_mail.db.DatabaseUrl`)."""
    from reallabor_mail.db import DatabaseUrl

    if request.param == "sqlite":
        return tmp_path / "state.sqlite3"
    return DatabaseUrl(request.getfixturevalue("pg_url"))


@pytest.fixture
def content_copy(tmp_path: Path) -> Path:
    """A writable copy of the sample content folder."""
    target = tmp_path / "content"
    shutil.copytree(SAMPLE_CONTENT, target)
    return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]


@dataclass
class RecordingHandler:
    """aiosmtpd handler that keeps every message it accepts."""

    messages: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content)))
        return "250 2.0.0 OK: queued"


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: RecordingHandler

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 (aiosmtpd, in this process) that records what it gets."""
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler)
    finally:
        controller.stop()


# --- web apps under uvicorn and headless Chromium (preview and archive tests) -----------------------

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]  # fmt: skip


@contextmanager
def serving(app: Any, port: int | None = None, config: Any = None) -> Iterator[str]:
    """Run an ASGI app under uvicorn in a thread on 127.0.0.1 (a free port by default); yields its base URL.

    ``config`` (a ``uvicorn.Config``) replaces the plain test configuration, e.g. with ``serve --public``'s.
    """
    import threading
    import time

    import uvicorn

    if config is None:
        port = port or free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's headless Chromium driven by Playwright (its own browser download does not work here)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
