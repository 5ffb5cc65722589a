"""Round trips through a real CalDAV server: a throw-away Radicale on 127.0.0.1, started by the tests."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from zoneinfo import ZoneInfo

import caldav
import icalendar
import pytest

from reallabor_mail import db as state
from reallabor_mail.content.loader import load_content
from reallabor_mail.delivery import event_versions
from reallabor_mail.publish.build import render_all
from reallabor_mail.render import ics as calendar

from ..conftest import SAMPLE_CONTENT, TEMPLATES, TODAY, free_port
from ..interop.samples import make_samples
from .test_calendar import CLOSING, Clock, event_named, plan_in_person, set_front_matter


@dataclass
class CalDav:
    url: str
    client: caldav.DAVClient

    def new_calendar(self, name: str) -> caldav.Calendar:
        return self.client.principal().make_calendar(name=name, cal_id=name)

    def put(self, collection: caldav.Calendar, name: str, ics: str) -> None:
        """A raw PUT (the caldav library's save_event would rewrite the data first)."""
        href = f"{str(collection.url).rstrip('/')}/{name}"
        response = self.client.put(href, ics, {"Content-Type": "text/calendar; charset=utf-8"})
        assert response.status in (201, 204), (response.status, response.reason)


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"radicale exited: {log.read_text()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("radicale did not start within 20 s")


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CalDav]:
    """A throw-away Radicale server on 127.0.0.1 (no authentication, storage in a temp folder)."""
    folder = tmp_path_factory.mktemp("radicale")
    config = folder / "config"
    port = free_port()
    config.write_text(
        f"[server]\nhosts = 127.0.0.1:{port}\n"
        "[auth]\ntype = none\n"
        f"[storage]\nfilesystem_folder = {folder / 'collections'}\n"
        "[logging]\nlevel = warning\n",
        encoding="utf-8",
    )
    log = folder / "log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "radicale", "--config", str(config)], stdout=out, stderr=out)
        try:
            _wait_for_port(port, proc, log)
            url = f"http://127.0.0.1:{port}/"
            yield CalDav(url, caldav.DAVClient(url=url, username="netzwerkstelle", password="unused"))
        finally:
            proc.terminate()
            proc.wait(10)


def stored_events(collection: caldav.Calendar) -> list[icalendar.Event]:
    events = []
    for obj in collection.events():
        events.extend(icalendar.Calendar.from_ical(obj.data).events)
    return events


def test_closing_event_in_radicale_one_entry_updated_then_cancelled(
    radicale: CalDav, content_copy: Path, tmp_path: Path
) -> None:
    conn = state.connect(tmp_path / "state.sqlite3")
    clock = Clock(dt.datetime(2024, 5, 20, 10, 0, tzinfo=dt.UTC))
    inbox = radicale.new_calendar("beate")
    path = content_copy / "events" / f"{CLOSING}.md"
    original = path.read_text(encoding="utf-8")

    def send(expected_sequence: int) -> str:
        """Plan, 'deliver' to Beate's calendar by UID as a client does with an iTIP message, record."""
        content = load_content(content_copy)
        event = event_named(content, CLOSING)
        invite = event_versions.plan_event(content, event, conn, clock).invitation("beate.beispiel@example.org")
        assert invite.sequence == expected_sequence
        radicale.put(inbox, f"{calendar.event_uid(content.site, event)}.ics", invite.ics)
        event_versions.record_sent_version(conn, event, invite.sequence, invite.fingerprint, clock())
        clock.now += dt.timedelta(days=1)
        return invite.method

    plan_in_person(content_copy)
    assert send(0) == "REQUEST"
    (only,) = stored_events(inbox)
    assert str(only["LOCATION"]) == "Auslandsgesellschaft.de e.V., Steinstr. 48, 44147 Dortmund"

    path.write_text(original, encoding="utf-8")  # moved online
    assert send(1) == "REQUEST"
    (only,) = stored_events(inbox)
    assert (only["SEQUENCE"], str(only["LOCATION"])) == (1, "https://us02web.zoom.us/j/88154063921")

    set_front_matter(path, start="2024-06-19 11:00", end="2024-06-19 14:00")  # and an hour later
    assert send(2) == "REQUEST"
    (only,) = stored_events(inbox)
    assert only["SEQUENCE"] == 2
    assert only.start == dt.datetime(2024, 6, 19, 9, 0, tzinfo=dt.UTC)
    # the server's own time-range query finds it at the new time only
    berlin = ZoneInfo("Europe/Berlin")
    at_new = inbox.search(start=dt.datetime(2024, 6, 19, 13, 30, tzinfo=berlin),
                          end=dt.datetime(2024, 6, 19, 13, 45, tzinfo=berlin), event=True)
    at_old_start = inbox.search(start=dt.datetime(2024, 6, 19, 10, 0, tzinfo=berlin),
                                end=dt.datetime(2024, 6, 19, 10, 30, tzinfo=berlin), event=True)
    assert len(at_new) == 1 and at_old_start == []

    set_front_matter(path, status="cancelled")
    assert send(3) == "CANCEL"
    (only,) = stored_events(inbox)
    assert (only["SEQUENCE"], only["STATUS"]) == (3, "CANCELLED")
    conn.close()


def test_feed_uploads_as_a_whole_calendar(radicale: CalDav) -> None:
    """The subscribable feed, PUT as a whole collection, becomes one entry per event."""
    output, _ = render_all(SAMPLE_CONTENT, TEMPLATES, strict=False, today=TODAY)
    feed = output.files[PurePosixPath("calendar.ics")].decode("utf-8")
    url = f"{radicale.url}netzwerkstelle/feed/"
    response = radicale.client.put(url, feed, {"Content-Type": "text/calendar; charset=utf-8"})
    assert response.status in (201, 204), response.reason
    collection = caldav.Calendar(client=radicale.client, url=url)
    uids = sorted(str(e["UID"]) for e in stored_events(collection))
    assert uids == sorted(f"{e.stem}@auslandsgesellschaft.de" for e in load_content(SAMPLE_CONTENT).events)


def test_radicale_finds_every_event_at_its_intended_time_years_ahead(radicale: CalDav, tmp_path: Path) -> None:
    """Every download and every invitation's calendar part in one Radicale process, which keeps the first
    VTIMEZONE it saw per TZID: its own time-range search finds each event at its start and at its end.

    (An hour late misses the start, an hour early misses the end.)
    """
    samples = make_samples(tmp_path)
    collections: list[tuple[caldav.Calendar, set[str]]] = []  # a collection holds a UID once
    for number, (name, text) in enumerate(sorted(samples.ics.items())):
        if name == "calendar.ics":
            continue
        (uid,) = {str(e["UID"]) for e in icalendar.Calendar.from_ical(text).events}
        free = next((c for c in collections if uid not in c[1]), None)
        if free is None:
            free = (radicale.new_calendar(f"samples-{len(collections)}"), set())
            collections.append(free)
        radicale.put(free[0], f"{number:03d}.ics", text)
        free[1].add(uid)
    minute = dt.timedelta(minutes=1)
    wrong = []
    for collection, uids in collections:
        for uid in sorted(uids):
            meta = samples.event(uid).meta
            for moment in (meta.start, meta.end - minute):
                found = collection.search(start=moment, end=moment + minute, event=True)
                if uid not in {str(e["UID"]) for obj in found for e in icalendar.Calendar.from_ical(obj.data).events}:
                    wrong.append(f"{collection.url}: {uid} not at {moment.isoformat()}")
    assert not wrong, wrong[:5]
