"""The public server's test bench: the real app on a real SQLite file, confirmation mails through
the real aiosmtpd server of ``smtp_server``, a clock the tests move instead of waiting."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from reallabor_mail.content.loader import load_site
from reallabor_mail.content.models import Site
from reallabor_mail.db import Connection, StateLocation, connect
from reallabor_mail.delivery.transport import SmtpSettings, SmtpTransport
from reallabor_mail.recipients import store as rcp
from reallabor_mail.web.limits import ServerLimits, server_config
from reallabor_mail.web.public import PublicConfig, PublicSite

from ..conftest import SAMPLE_CONTENT, TEMPLATES, Received, SmtpServer, serving

SECRET = b"web-test-secret-0123456789"
START = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
CLIENT_IP = "203.0.113.7"

FORM = {
    "email": "Anna.Mueller@Dortmund.de", "salutation": "Frau", "title": "Dr.", "first_name": "Anna",
    "last_name": "Müller", "organisation": "Stadt Dortmund", "language": "de", "lists": "newsletter",
    "consent": "yes", "website": "", "lang": "de",
}  # fmt: skip


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    """The app's clock; tests move it forward instead of waiting."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now


def smtp_transport(port: int) -> SmtpTransport:
    return SmtpTransport(SmtpSettings("127.0.0.1", port, "none"))


@dataclass
class Setup:
    app: Starlette
    site: PublicSite
    config: PublicConfig
    clock: Clock
    smtp: SmtpServer

    def db(self) -> Connection:
        conn = connect(self.config.state)
        return conn

    def person(self, email: str) -> rcp.StoredPerson | None:
        return rcp.find(self.db(), email)

    def statuses(self, email: str) -> dict[str, str]:
        found = self.person(email)
        return {m.list_name: m.status for m in found.memberships} if found else {}

    async def delivered(self) -> list[Received]:
        """What the SMTP server received once the outbox was worked off (the server's worker does this
        in the background; the in-process client runs no lifespan, so the test does it)."""
        await self.site.queue.deliver_due()
        return self.smtp.messages

    def arrived(self, count: int = 1, timeout: float = 10.0) -> list[Received]:
        """Wait until the running server's background worker has delivered ``count`` mails."""
        import time

        deadline = time.monotonic() + timeout
        while len(self.smtp.messages) < count:
            assert time.monotonic() < deadline, f"{len(self.smtp.messages)} of {count} mails arrived"
            time.sleep(0.05)
        return self.smtp.messages


def make_setup(
    tmp_path: Path, smtp_server: SmtpServer, public_url: str, *, smtp_port: int | None = None,
    state: StateLocation | None = None, **options: Any
) -> Setup:
    """The public app; its mails go to ``smtp_server`` (or to ``smtp_port``, where nothing may listen yet);
    its state is ``state`` (a SQLite file in ``tmp_path`` if not given)."""
    site: Site = load_site(SAMPLE_CONTENT).model_copy(update={"base_url": public_url})
    archive = tmp_path / "build"
    (archive / "newsletters" / "2023-3").mkdir(parents=True)
    (archive / "index.html").write_text("<h1>Archiv</h1>", encoding="utf-8")
    (archive / "newsletters" / "2023-3" / "index.html").write_text("<h1>Newsletter 3/2023</h1>", encoding="utf-8")
    clock = Clock()
    config = PublicConfig(
        site=site, templates=TEMPLATES, state=state or tmp_path / "state.sqlite3", secret=SECRET,
        lists=("newsletter", "reallabor"), transport=smtp_transport(smtp_port or smtp_server.port),
        build_dir=archive, clock=clock, **options,
    )  # fmt: skip
    public = PublicSite(config)
    return Setup(public.app(), public, config, clock, smtp_server)


@pytest.fixture
def setup(tmp_path: Path, smtp_server: SmtpServer, state: StateLocation) -> Setup:
    """The app on each back end (``state``: SQLite, PostgreSQL)."""
    return make_setup(tmp_path, smtp_server, "http://testserver", state=state)


@pytest.fixture
async def client(setup: Setup) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=setup.app, client=(CLIENT_IP, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def link_in(message: EmailMessage, kind: str) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    match = re.search(rf"https?://\S+/{kind}/\S+", body.get_content())
    assert match, body.get_content()
    return match.group(0)


@contextmanager
def running(app: Starlette, port: int, *, forwarded_allow_ips: str | None = None,
            limits: ServerLimits | None = None) -> Iterator[str]:  # fmt: skip
    """The app under uvicorn with the configuration of ``serve --public`` (lifespan and outbox worker
    included) on 127.0.0.1:``port``, in a thread; yields the base URL."""
    config = server_config(app, host="127.0.0.1", port=port, forwarded_allow_ips=forwarded_allow_ips,
                           limits=limits or ServerLimits())  # fmt: skip
    with serving(app, config=config) as url:
        yield url
