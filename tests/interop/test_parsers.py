"""The interoperability stage: every built ICS and the calendar part of every sample message through
independent parsers — Mozilla's ical.js (Thunderbird), libical (Evolution), and icalendar, ical and
vobject in one process (as a Radicale server reads them) — each event's start and end in UTC must be the
intended local time in its zone, years ahead and across DST; SEQUENCE, DTSTAMP and ATTENDEE must agree.

ical.js and libical come from ``scripts/install.sh test`` (npm ci in tests/interop, Debian packages):
without them these tests fail, naming what to install.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path

import icalendar
import pytest
import vobject
from ical.calendar_stream import IcsCalendarStream

from .samples import FAR_EVENTS, Samples, make_samples

HERE = Path(__file__).parent
ICAL_JS = HERE / "node_modules" / "ical.js"
SYSTEM_PYTHON = Path("/usr/bin/python3")
INSTALL = "run `bash scripts/install.sh test`"

logging.getLogger("vobject").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Reading:
    """One VEVENT as one parser read it, times in UTC (ISO 8601, seconds, Z)."""

    uid: str
    start: str
    end: str
    sequence: int
    dtstamp: str
    attendee: str | None


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Samples:
    return make_samples(tmp_path_factory.mktemp("interop"))


@pytest.fixture(scope="module")
def files(samples: Samples, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every ICS written to a file of its own, by name."""
    folder = tmp_path_factory.mktemp("ics")
    written = {}
    for number, (name, text) in enumerate(samples.ics.items()):
        written[name] = folder / f"{number:03d}.ics"
        written[name].write_text(text, encoding="utf-8", newline="")
    return written


def intended(samples: Samples, uid: str) -> tuple[str, str]:
    """Start and end of an event as its file says, in UTC by the tz database."""
    meta = samples.event(uid).meta
    return iso(meta.start), iso(meta.end)


def to_addresses(samples: Samples) -> dict[str, str]:
    """ICS name → ``mailto:`` of the message's To: (for calendar parts of messages)."""
    found = {}
    for name, data in samples.messages.items():
        msg = message_from_bytes(data, policy=policy.default)
        found[f"{name} (calendar part)"] = f"mailto:{msg['To'].addresses[0].addr_spec}"
    return found


def external(command: list[str], files: dict[str, Path]) -> dict[str, list[Reading]]:
    run = subprocess.run([*command, *map(str, files.values())], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    by_path = {str(path): name for name, path in files.items()}
    readings: dict[str, list[Reading]] = {}
    for entry in json.loads(run.stdout):
        readings[by_path[entry["file"]]] = [
            Reading(e["uid"], e["start"], e["end"], int(e["sequence"]), e["dtstamp"], e["attendee"])
            for e in entry["events"]
        ]
    return readings


def python_readings(samples: Samples) -> Iterator[tuple[str, dict[str, list[Reading]]]]:
    """icalendar, ical and vobject; vobject reads every file in this one process, keeping what it learnt."""
    by_parser: dict[str, dict[str, list[Reading]]] = {"icalendar": {}, "ical": {}, "vobject": {}}
    for name, text in samples.ics.items():
        cal = icalendar.Calendar.from_ical(text)
        by_parser["icalendar"][name] = [
            Reading(str(e["UID"]), iso(e.start), iso(e.end), int(e["SEQUENCE"]), iso(e.DTSTAMP),
                    str(e["ATTENDEE"]) if "ATTENDEE" in e else None)
            for e in cal.events
        ]  # fmt: skip
        stream = IcsCalendarStream.calendar_from_ics(text)
        by_parser["ical"][name] = [
            Reading(e.uid or "", iso(e.dtstart), iso(e.dtend), int(e.sequence or 0), iso(e.dtstamp),  # type: ignore[arg-type]
                    f"mailto:{e.attendees[0].uri.removeprefix('mailto:')}" if e.attendees else None)
            for e in stream.events
        ]  # fmt: skip
        (vcal,) = list(vobject.readComponents(text))
        by_parser["vobject"][name] = [
            Reading(v.uid.value, iso(v.dtstart.value), iso(v.dtend.value), int(v.sequence.value),
                    iso(v.dtstamp.value), v.attendee.value if hasattr(v, "attendee") else None)
            for v in vcal.vevent_list
        ]  # fmt: skip
    yield from by_parser.items()


def check(parser: str, readings: dict[str, list[Reading]], samples: Samples) -> None:
    """Every event at its intended time; SEQUENCE, DTSTAMP and ATTENDEE as icalendar (the writer) reads them."""
    reference = dict(python_readings(samples))["icalendar"]
    mailed = to_addresses(samples)
    wrong = []
    assert set(readings) == set(samples.ics), parser
    for name, events in readings.items():
        assert len(events) == len(reference[name]), (parser, name)
        for got, meant in zip(events, reference[name], strict=True):
            start, end = intended(samples, got.uid)
            if (got.start, got.end) != (start, end):
                wrong.append(f"{parser} {name} {got.uid}: {got.start}–{got.end}, meant {start}–{end}")
            if (got.sequence, got.dtstamp) != (meant.sequence, meant.dtstamp):
                wrong.append(f"{parser} {name}: SEQUENCE/DTSTAMP {got.sequence}/{got.dtstamp}")
            if name in mailed and got.attendee != mailed[name]:
                wrong.append(f"{parser} {name}: ATTENDEE {got.attendee}, the mail went to {mailed[name]}")
    assert not wrong, "\n".join(wrong[:10])


def test_the_samples_cover_years_ahead_both_zones_updates_and_cancellations(samples: Samples) -> None:
    feed = icalendar.Calendar.from_ical(samples.ics["calendar.ics"])
    assert {e.start.year for e in feed.events} >= {2023, 2024, 2027, 2031, 2040}
    assert {str(e.start.tzinfo) for e in feed.events} == {"Europe/Berlin", "Europe/Kyiv"}
    methods = [icalendar.Calendar.from_ical(samples.ics[f"{m} (calendar part)"])["METHOD"]
               for m in ("update.eml", "cancellation.eml")]  # fmt: skip
    assert methods == ["REQUEST", "CANCEL"]
    assert len([n for n in samples.ics if n.endswith("event.ics")]) == len(samples.content.events) >= len(FAR_EVENTS)


def test_python_parsers_in_one_process_read_every_file_as_meant(samples: Samples) -> None:
    """vobject keeps the first VTIMEZONE per TZID for the process (Radicale's case): no clearing here."""
    vars(vobject.icalendar)["__tzidMap"].clear()  # start like a fresh server, then read everything
    for parser, readings in python_readings(samples):
        check(parser, readings, samples)


def test_ical_js_reads_every_file_as_meant(samples: Samples, files: dict[str, Path]) -> None:
    node = shutil.which("node")
    assert node is not None and ICAL_JS.is_dir(), f"node and tests/interop/node_modules/ical.js are needed: {INSTALL}"
    check("ical.js", external([node, str(HERE / "icaljs_check.mjs")], files), samples)


def test_libical_reads_every_file_as_meant(samples: Samples, files: dict[str, Path]) -> None:
    probe = subprocess.run([str(SYSTEM_PYTHON), "-c", "import gi; gi.require_version('ICalGLib', '3.0')"],
                           capture_output=True, text=True)  # fmt: skip
    assert probe.returncode == 0, f"libical for Python (python3-gi, gir1.2-ical-3.0) is needed: {INSTALL}"
    check("libical", external([str(SYSTEM_PYTHON), str(HERE / "libical_check.py")], files), samples)


