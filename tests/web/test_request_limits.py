"""What the public server accepts from the network (issue 12): before, a 200 MB form raised the
server's memory by 187 MB, a 300 MB upload filled /tmp, and idle or slow connections were never
closed (20,000 of them took the server down)."""

from __future__ import annotations

import contextlib
import socket
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from reallabor_mail.web.limits import ServerLimits

from ..conftest import SmtpServer, free_port
from .conftest import FORM, Setup, make_setup, running


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def live(tmp_path: Path, smtp_server: SmtpServer) -> tuple[Setup, int]:
    port = free_port()
    return make_setup(tmp_path, smtp_server, f"http://127.0.0.1:{port}"), port


def test_form_over_64_kb_is_refused(live: tuple[Setup, int]) -> None:
    setup, port = live
    with running(setup.app, port) as base:
        fits = httpx.post(f"{base}/subscribe", data={**FORM, "organisation": "x" * 100, "pad": "y" * 60_000})
        too_big = httpx.post(f"{base}/subscribe", data={**FORM, "pad": "y" * 70_000})
    assert fits.status_code == 200 and too_big.status_code == 413
    assert setup.statuses("anna.mueller@dortmund.de") == {"newsletter": "pending"}  # only the one that fit


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_200_mb_body_is_cut_off_at_the_limit(live: tuple[Setup, int], declared: bool) -> None:
    """The body is streamed as multipart (what spooled to /tmp before), with or without a length."""
    setup, port = live
    size, chunk = 200 * 1024 * 1024, b"z" * 65536
    temp_before = set(Path(tempfile.gettempdir()).iterdir())
    with running(setup.app, port), socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        rss_before = rss_kib()
        length = f"Content-Length: {size}\r\n" if declared else "Transfer-Encoding: chunked\r\n"
        sock.sendall(f"POST /subscribe HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{length}"
                     "Content-Type: multipart/form-data; boundary=XX\r\n\r\n".encode())  # fmt: skip
        part = b'--XX\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'
        sent, started = 0, time.monotonic()
        sock.settimeout(2)
        try:
            while sent < size and time.monotonic() - started < 20:
                data = part + chunk if sent == 0 else chunk
                sock.sendall(data if declared else b"%x\r\n%s\r\n" % (len(data), data))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the server stopped reading and closed: what we want
        sock.settimeout(5)
        try:
            reply = sock.recv(200)
        except (ConnectionResetError, TimeoutError):
            reply = b""
        grown_mib = (rss_kib() - rss_before) / 1024
    assert sent < size // 4, f"the server took {sent // 2**20} MiB"
    assert reply.startswith(b"HTTP/1.1 413") or reply == b"", reply
    assert grown_mib < 20, f"memory grew by {grown_mib:.0f} MiB"
    assert set(Path(tempfile.gettempdir()).iterdir()) - temp_before == set()


def test_five_hundred_idle_connections_do_not_lock_out_a_reader(live: tuple[Setup, int]) -> None:
    """A bounded slowloris: 500 connections that send half a request line, one byte a while; the header
    deadline closes them and normal requests are served meanwhile and after."""
    setup, port = live
    # fewer slots than attackers; one client may hold them all here (the per-client cap has its own test)
    limits = ServerLimits(header_seconds=1.0, connections=300, connections_per_client=1000)
    with running(setup.app, port, limits=limits) as base:
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(500)]
        try:
            for sock in idle:
                sock.sendall(b"GET /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: ")
            time.sleep(0.6)
            for sock in idle:
                sock.sendall(b"b")  # a trickle of bytes does not extend the deadline
            time.sleep(1.2)
            closed = 0
            for sock in idle:
                sock.settimeout(0.5)
                try:
                    closed += sock.recv(1) == b""
                except (ConnectionResetError, TimeoutError):
                    closed += 1
            served = sum(httpx.get(f"{base}/subscribe", timeout=5).status_code == 200 for _ in range(5))
        finally:
            for sock in idle:
                sock.close()
    assert closed == 500 and served == 5


def test_one_client_cannot_take_every_connection(live: tuple[Setup, int]) -> None:
    """Before, uvicorn's connection cap counted everyone together: 1,500 idle connections from one client
    and 58 of 58 requests from others got 503. Now one client holds at most ``connections_per_client``."""
    setup, port = live
    limits = ServerLimits(header_seconds=30.0, connections=60, connections_per_client=20)
    with running(setup.app, port, limits=limits) as base:
        hog = [socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.0.5", 0))
               for _ in range(80)]  # fmt: skip
        try:
            time.sleep(0.5)  # the server has accepted them all
            refused = 0
            for sock in hog[20:]:
                with contextlib.suppress(ConnectionResetError, TimeoutError):
                    refused += sock.recv(100).startswith(b"HTTP/1.1 503")
            transport = httpx.HTTPTransport(local_address="127.0.0.6")
            with httpx.Client(base_url=base, transport=transport) as other:
                served = [other.get("/subscribe", headers={"Connection": "close"}).status_code for _ in range(10)]
        finally:
            for sock in hog:
                sock.close()
    assert refused == 60 and served == [200] * 10
