"""A registration race for the last seat (issue 14): confirmations pressed at once, over HTTP, against two
server processes' worth of state connections on one state file. The seat count and the taking of a seat
are one ``BEGIN IMMEDIATE`` transaction, so the capacity is never exceeded and the waiting list has no
gaps or doubles.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from reallabor_mail.cli.recipients import load_site
from reallabor_mail.content.loader import load_content
from reallabor_mail.mailbox import attendance
from reallabor_mail.recipients.person import Recipient
from reallabor_mail.web.public import PublicConfig, PublicSite
from tests.conftest import SAMPLE_CONTENT, TEMPLATES, SmtpServer, free_port
from tests.reliability.conftest import Row
from tests.web.conftest import SECRET, START, running, smtp_transport
from tests.web.test_registration import STEM, content_with_event

AREA = "Public server"
PEOPLE = 20


def test_twenty_confirmations_race_for_one_seat(tmp_path: Path, smtp_server: SmtpServer, row: Row) -> None:
    events = load_content(content_with_event(tmp_path, capacity=1)).events
    state = tmp_path / "state.sqlite3"
    site = load_site(SAMPLE_CONTENT)
    ports = [free_port(), free_port()]
    # two servers on one state file, each with its own connection, as two processes behind one proxy
    servers = [PublicSite(PublicConfig(
        site=site.model_copy(update={"base_url": f"http://127.0.0.1:{port}"}), templates=TEMPLATES, state=state,
        secret=SECRET, lists=("newsletter",), transport=smtp_transport(smtp_server.port), events=events,
        clock=lambda: START,
    )) for port in ports]  # fmt: skip
    conn = servers[0].conn
    event = servers[0].registrations.events[STEM]
    urls = []
    for n in range(PEOPLE):
        email = f"person{n}@example.org"
        attendance.request_registration(conn, STEM, Recipient(email, last_name=f"P{n}"), now=START)
        urls.append(servers[n % 2].registrations.confirm_url(event, email, START))

    async def race() -> list[int]:
        async with httpx.AsyncClient(timeout=60) as http:
            answers = await asyncio.gather(*(http.post(url) for url in urls))
        return [a.status_code for a in answers]

    with running(servers[0].app(), ports[0]), running(servers[1].app(), ports[1]):
        began = time.monotonic()
        codes = asyncio.run(race())
        seconds = time.monotonic() - began
    found = attendance.form_registrations(conn, STEM)
    registered = [r for r in found if r.state == "registered"]
    waiting = sorted(r.position or 0 for r in found if r.state == "waiting")
    row(AREA, f"registration race: {PEOPLE} confirmations at once over HTTP to two servers on one state file, "
        "for the last seat", PEOPLE, abs(len(registered) - 1) + abs(PEOPLE - 1 - len(waiting)),
        f"{len(registered)} registered, {len(waiting)} waiting (positions 1–{PEOPLE - 1}, no gap, no double), "
        f"all answered 200, in {seconds:.1f} s")  # fmt: skip
    assert codes == [200] * PEOPLE
    assert len(registered) == 1 and waiting == list(range(1, PEOPLE)), (registered, waiting)
