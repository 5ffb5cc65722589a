"""``serve --public`` behind a real nginx (Debian package, loopback, a throw-away config): the per-IP
limit and the consent records see the real client, and an ``X-Forwarded-For`` a client made up is
ignored (issue 12). Before, uvicorn believed the header from 127.0.0.1: 2,000 of 2,000 spoofed
sign-ups passed the per-IP limit, and the consent records stored the spoofed address.

Loopback has many addresses: the client speaks from 127.0.0.5, nginx reaches the app from 127.0.0.2
(``proxy_bind``), which is the one address named in ``--forwarded-allow-ips``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from reallabor_mail.content.loader import load_site
from reallabor_mail.db import connect
from reallabor_mail.recipients import store as rcp

from ..conftest import SAMPLE_CONTENT, SmtpServer, free_port
from .conftest import FORM, SECRET

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
pytestmark = pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed (scripts/install.sh test)")

CLI = [sys.executable, "-c", "from reallabor_mail.cli.main import run; run()"]
CLIENT, OTHER_CLIENT, DIRECT_CLIENT, PROXY = "127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.2"

NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 64k;
        location / {{
            proxy_pass http://127.0.0.1:{app_port};
            proxy_bind {proxy};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        assert process.poll() is None, f"{what} ended early"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"{what} did not listen on {port}"
            time.sleep(0.1)


@pytest.fixture
def behind_nginx(tmp_path: Path, smtp_server: SmtpServer) -> Iterator[tuple[int, int, Path]]:
    """The real CLI's ``serve --public`` and nginx in front of it; yields (nginx port, app port, state)."""
    app_port, nginx_port = free_port(), free_port()
    state = tmp_path / "state.sqlite3"
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "index.html").write_text("<h1>Archiv</h1>", encoding="utf-8")
    env = {**os.environ, "REALLABOR_SECRET": SECRET.decode(), "REALLABOR_SMTP_HOST": "127.0.0.1",
           "REALLABOR_SMTP_PORT": str(smtp_server.port), "REALLABOR_SMTP_SECURITY": "none",
           "FORWARDED_ALLOW_IPS": "*"}  # fmt: skip  # uvicorn's own variable must not widen the trust
    server = subprocess.Popen([*CLI, "serve", "--public", "--port", str(app_port), "--content", str(SAMPLE_CONTENT),
                               "--out", str(tmp_path / "build"), "--state", str(state),
                               "--forwarded-allow-ips", PROXY], env=env)  # fmt: skip
    conf = tmp_path / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp_path, port=nginx_port, app_port=app_port, proxy=PROXY))
    nginx = subprocess.Popen([NGINX, "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(conf)])
    try:
        wait_for_port(app_port, server, "serve --public")
        wait_for_port(nginx_port, nginx, "nginx")
        yield nginx_port, app_port, state
    finally:
        for process in (nginx, server):
            process.terminate()
            process.wait(10)


def client(source: str, port: int, host: str) -> httpx.Client:
    """An HTTP client speaking from loopback address ``source`` to 127.0.0.1:``port`` as ``host``."""
    return httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Host": host},
                        transport=httpx.HTTPTransport(local_address=source))  # fmt: skip


def test_rate_limit_sees_the_real_client_and_ignores_spoofed_headers(behind_nginx: tuple[int, int, Path]) -> None:
    nginx_port, app_port, state = behind_nginx
    host = urlsplit(load_site(SAMPLE_CONTENT).public_url).hostname or ""
    with client(CLIENT, nginx_port, host) as http:
        codes = [http.post("/subscribe", data={**FORM, "email": f"p{i}@example.org"},
                           headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code for i in range(12)]  # fmt: skip
    assert codes == [200] * 10 + [429] * 2  # twelve made-up addresses, one real client: the limit holds
    with client(OTHER_CLIENT, nginx_port, host) as http:  # another real client has its own allowance
        assert http.post("/subscribe", data={**FORM, "email": "other@example.org"}).status_code == 200
    with client(DIRECT_CLIENT, app_port, host) as http:  # past the proxy: the header is not believed at all
        assert http.post("/subscribe", data={**FORM, "email": "direct@example.org"},
                         headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 200  # fmt: skip

    conn = connect(state)

    def ip_of(email: str) -> str | None:
        person = rcp.find(conn, email)
        assert person is not None
        return person.events[0].ip

    assert {ip_of(f"p{i}@example.org") for i in range(10)} == {CLIENT}
    assert ip_of("other@example.org") == OTHER_CLIENT
    assert ip_of("direct@example.org") == DIRECT_CLIENT
