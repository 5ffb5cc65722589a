"""Read iCalendar files with libical (Evolution's library, through PyGObject) and print what it sees, as JSON.

Usage: /usr/bin/python3 libical_check.py FILE...  (the system Python, where Debian's python3-gi and
gir1.2-ical-3.0 live; the project's venv does not see them). Times are resolved by libical itself, with
the VTIMEZONE the file carries.
"""

import datetime as dt
import json
import sys

import gi

gi.require_version("ICalGLib", "3.0")
from gi.repository import ICalGLib  # noqa: E402

UTC = ICalGLib.Timezone.get_utc_timezone()


def utc(time: "ICalGLib.Time") -> str:
    seconds = time.as_timet_with_zone(time.get_timezone() or UTC)
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def text(component: "ICalGLib.Component", kind: "ICalGLib.PropertyKind") -> "str | None":
    prop = component.get_first_property(kind)
    return prop.get_value_as_string() if prop is not None else None


def read(path: str) -> dict:
    with open(path, encoding="utf-8", newline="") as file:
        calendar = ICalGLib.Component.new_from_string(file.read())
    if calendar is None:
        raise SystemExit(f"{path}: libical could not parse the file")
    events = []
    event = calendar.get_first_component(ICalGLib.ComponentKind.VEVENT_COMPONENT)
    while event is not None:
        start = event.get_dtstart()
        zone = start.get_timezone()
        events.append(
            {
                "uid": event.get_uid(),
                "tzid": zone.get_tzid() if zone is not None else None,
                "start": utc(start),
                "end": utc(event.get_dtend()),
                "sequence": event.get_sequence(),
                "dtstamp": utc(event.get_dtstamp()),
                "status": text(event, ICalGLib.PropertyKind.STATUS_PROPERTY),
                "attendee": text(event, ICalGLib.PropertyKind.ATTENDEE_PROPERTY),
                "organizer": text(event, ICalGLib.PropertyKind.ORGANIZER_PROPERTY),
            }
        )
        event = calendar.get_next_component(ICalGLib.ComponentKind.VEVENT_COMPONENT)
    return {"file": path, "method": text(calendar, ICalGLib.PropertyKind.METHOD_PROPERTY), "events": events}


if __name__ == "__main__":
    json.dump([read(path) for path in sys.argv[1:]], sys.stdout)
