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

from reallabor_mail.content.loader import load_content, load_site
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
        found = attendance.form_registration(conn, STEM, email)
        assert found is not None
        urls.append(servers[n % 2].registrations.confirm_url(event, found, START))

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


def test_twenty_processes_worth_of_connections_race_for_one_seat(tmp_path: Path, row: Row) -> None:
    """The same race below HTTP, where the threads really interleave: 20 threads, each with its own
    connection to the state file, confirm at one barrier."""
    import threading

    from reallabor_mail.db import connect

    event = next(e for e in load_content(content_with_event(tmp_path, capacity=1)).events if e.stem == STEM)
    state = tmp_path / "state.sqlite3"
    conns = [connect(state) for _ in range(PEOPLE)]
    for n in range(PEOPLE):
        attendance.request_registration(conns[0], STEM, Recipient(f"person{n}@example.org"), now=START)
    barrier = threading.Barrier(PEOPLE)
    errors: list[BaseException] = []

    def confirm(n: int) -> None:
        barrier.wait()
        try:
            attendance.confirm_registration(conns[n], event, f"person{n}@example.org", now=START)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=confirm, args=(n,)) for n in range(PEOPLE)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    seconds = time.monotonic() - began
    counts = attendance.seat_counts(conns[0], STEM)
    turns = sorted(r.position or 0 for r in attendance.form_registrations(conns[0], STEM) if r.state == "waiting")
    for conn in conns:
        conn.close()
    row(AREA, f"registration race: {PEOPLE} threads, each with its own state connection, confirm at one barrier "
        "for 1 seat", PEOPLE, abs(counts["registered"] - 1) + len(errors),
        f"{counts['registered']} registered, {counts['waiting']} waiting (positions 1–{len(turns)}), "
        f"{len(errors)} errors, in {seconds:.2f} s")  # fmt: skip
    assert not errors and counts == {"registered": 1, "waiting": PEOPLE - 1}
    assert turns == list(range(1, PEOPLE))
