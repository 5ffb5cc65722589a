"""Two ``serve --public`` processes on one PostgreSQL state (issue 15): they share the per-client rate
limit, and an unsubscribe through one of them is honoured by a later ``send`` (kept in the database, not in
process memory)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from click.testing import CliRunner

from reallabor_mail.cli.main import main
from reallabor_mail.content.loader import load_site
from reallabor_mail.db import DatabaseUrl, connect
from reallabor_mail.recipients import store as rcp
from reallabor_mail.recipients.links import unsubscribe_url
from reallabor_mail.recipients.person import Recipient

from ..conftest import ROOT, SAMPLE_CONTENT, SmtpServer, free_port
from .conftest import FORM, SECRET, START
from .test_behind_nginx import wait_for_port

CLI = [sys.executable, "-c", "from reallabor_mail.cli.main import run; run()"]
CLIENT = "127.0.0.5"


@pytest.fixture
def two_servers(tmp_path: Path, smtp_server: SmtpServer, pg_url: str) -> Iterator[tuple[list[str], dict[str, str]]]:
    """Two public servers (two processes) on one PostgreSQL database; yields their base URLs and the env."""
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "index.html").write_text("<h1>Archiv</h1>", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REALLABOR_SECRET": SECRET.decode(),
           "REALLABOR_DATABASE_URL": pg_url, "REALLABOR_SMTP_HOST": "127.0.0.1",
           "REALLABOR_SMTP_PORT": str(smtp_server.port), "REALLABOR_SMTP_SECURITY": "none"}  # fmt: skip
    connect(DatabaseUrl(pg_url)).close()  # migrated once, before both start
    ports = [free_port(), free_port()]
    servers = [subprocess.Popen([*CLI, "serve", "--public", "--port", str(port), "--content", str(SAMPLE_CONTENT),
                                 "--out", str(tmp_path / "build")], env=env) for port in ports]  # fmt: skip
    try:
        for port, server in zip(ports, servers, strict=True):
            wait_for_port(port, server, "serve --public")
        yield [f"http://127.0.0.1:{port}" for port in ports], env
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)


def test_two_processes_share_one_rate_limit(two_servers: tuple[list[str], dict[str, str]]) -> None:
    bases, _env = two_servers
    host = urlsplit(load_site(SAMPLE_CONTENT).public_url).hostname or ""
    transport = httpx.HTTPTransport(local_address=CLIENT)
    with httpx.Client(headers={"Host": host}, transport=transport) as http:
        codes = [http.post(f"{bases[i % 2]}/subscribe", data={**FORM, "email": f"p{i}@example.org"}).status_code
                 for i in range(12)]  # fmt: skip
    assert codes == [200] * 10 + [429] * 2  # one client's ten an hour, counted across both processes


def test_an_unsubscribe_through_one_process_is_honoured_by_a_send(
    two_servers: tuple[list[str], dict[str, str]], smtp_server: SmtpServer, content_copy: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    bases, env = two_servers
    state = DatabaseUrl(env["REALLABOR_DATABASE_URL"])
    conn = connect(state)
    for name in ("stays", "leaves"):
        rcp.add_recipient(conn, Recipient(f"{name}@example.org"), "newsletter", status="subscribed", source="t",
                          now=START)  # fmt: skip
    site = load_site(SAMPLE_CONTENT)
    link = urlsplit(unsubscribe_url(site, "leaves@example.org", "newsletter", SECRET))
    host = urlsplit(site.public_url).hostname or ""
    done = httpx.post(f"{bases[0]}{link.path}", data={"List-Unsubscribe": "One-Click"}, headers={"Host": host})
    assert done.status_code == 200, done.text
    page = httpx.get(f"{bases[1]}{link.path}", headers={"Host": host})  # the other process reads the same state
    assert page.status_code == 200
    for key in ("REALLABOR_SECRET", "REALLABOR_DATABASE_URL", "REALLABOR_SMTP_HOST", "REALLABOR_SMTP_PORT",
                "REALLABOR_SMTP_SECURITY"):  # fmt: skip
        monkeypatch.setenv(key, env[key])
    sent = CliRunner().invoke(main, ["send", str(content_copy / "newsletters" / "2023-3.md"), "--list", "newsletter",
                                     "--yes"], catch_exceptions=True)  # fmt: skip
    assert sent.exit_code == 0, sent.output
    assert sorted(r for m in smtp_server.messages for r in m.rcpt_tos) == ["stays@example.org"]
