"""Calendar data of events: ICS files, the subscribable feed, invitations, updates and cancellations.

Pure: nothing here reads or writes the state database. Every event has one UID for its whole life, made
from its file name and the site's domain (``2024-06-19-abschlussveranstaltung@auslandsgesellschaft.de``).
What a calendar entry shows (time, zone, format, place, online link, status) is its :class:`Snapshot`,
whose *fingerprint* is a canonical JSON of it. Given the last version sent (a :class:`SentVersion`, kept by
:mod:`reallabor_mail.delivery.event_versions`), :func:`plan_version` decides what a campaign sends now:
a first invitation, a resend of the same version, an update (same UID, SEQUENCE + 1, new DTSTAMP, change
lines for the mail: "Neu: online statt in Präsenz", "Zeit: alt → neu") or a cancellation (METHOD:CANCEL).

API for the send path (rendering once per campaign and language, one ICS per recipient)::

    plan = plan_version(site, event, last_sent, dtstamp)       # per campaign: METHOD, SEQUENCE, DTSTAMP
    email = renderer.invitation_email(event, lang, changes=plan.changes(lang))
    invite = plan.invitation(recipient.email, language=lang, name=recipient.display_name)

Without send history :func:`first_sequence` is 0 (1 for a cancelled event: a cancellation always
supersedes what was announced). Downloads carry the SEQUENCE and DTSTAMP of the last version sent
(:class:`Published`); ``build``'s preview.eml shows a first invitation (:func:`preview_plan`).

ICS details: VTIMEZONE for every zone used, computed by icalendar from the tz database for
:data:`TIMEZONE_WINDOW`, widened to the years of the first and last event of the file, one RDATE per line; CRLF line
ends and folding at 75 octets (never inside a UTF-8 character) by icalendar; reminders the day before
and, for online events, 30 minutes before; LOCATION is the online link (online), the address (in
person) or both (hybrid); URL is the online link or the event page; ATTENDEE and ORGANIZER are the
addresses as on the wire (punycode domain, like the envelope and ``To:``). Control characters are
dropped from TEXT values (RFC 5545 3.3.11). The fixed window is there because vobject (and so
Radicale) keeps the first VTIMEZONE it saw per TZID for its whole process: every file we publish
carries the same definition, right for the events of every other file too.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import quote
from zoneinfo import ZoneInfo

import icalendar

from reallabor_mail.addresses import wire_address
from reallabor_mail.content.loader import Content, EventItem
from reallabor_mail.content.models import EventFormat, EventFrontMatter, EventStatus, Language, Site
from reallabor_mail.errors import ReallaborError
from reallabor_mail.i18n.words import date_line, long_date, strings
from reallabor_mail.render import paths as layout

PRODID = "-//Auslandsgesellschaft.de e.V.//reallabor-mail//DE"
FEED_REFRESH = dt.timedelta(hours=12)
# The years every VTIMEZONE covers at least (about 1 KB per zone); a file with events outside gets more.
TIMEZONE_WINDOW = (dt.date(2020, 1, 1), dt.date(2045, 1, 1))
REMINDER_DAY_BEFORE = dt.timedelta(days=-1)
REMINDER_ONLINE = dt.timedelta(minutes=-30)
_LINE_START = re.compile(r"^\s*(?:[-*] |\d+\. |\[\d+\] |> )")  # list items, link references, quotes
_RULE_CHARS = frozenset("=-+ ")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # RFC 5545 3.3.11: TEXT carries no control characters

class CalendarError(ReallaborError):
    """A time without zone where DTSTAMP needs one, or a version record that contradicts what is recorded."""


# --- identity and what a calendar entry shows ---------------------------------------------------


def event_uid(site: Site, event: EventItem) -> str:
    """The UID of an event: its file name at the site's domain, stable across builds and edits."""
    return f"{quote(event.stem, safe='-._~')}@{site.domain}"


@dataclass(frozen=True)
class Snapshot:
    """What a calendar entry of an event shows; an update is due when this changes."""

    start: dt.datetime
    end: dt.datetime
    format: EventFormat
    location: str | None
    online_url: str | None
    status: EventStatus

    @classmethod
    def of(cls, meta: EventFrontMatter) -> Snapshot:
        """The snapshot of an event's front matter; a place or link its format does not use is ignored."""
        return cls(
            start=meta.start,
            end=meta.end,
            format=meta.format,
            location=meta.location if meta.format is not EventFormat.ONLINE else None,
            online_url=str(meta.online_url) if meta.online_url and meta.format is not EventFormat.IN_PERSON else None,
            status=meta.status,
        )

    @property
    def fingerprint(self) -> str:
        """Canonical JSON of the snapshot: compared as a string, and read back for change lines."""
        return json.dumps(
            {
                "start": self.start.replace(tzinfo=None).isoformat(timespec="minutes"),
                "end": self.end.replace(tzinfo=None).isoformat(timespec="minutes"),
                "timezone": str(self.start.tzinfo),
                "format": self.format.value,
                "location": self.location,
                "online_url": self.online_url,
                "status": self.status.value,
            },
            sort_keys=True,
            ensure_ascii=False,
        )

    @classmethod
    def from_fingerprint(cls, text: str) -> Snapshot:
        data = json.loads(text)
        zone = ZoneInfo(data["timezone"])
        return cls(
            start=dt.datetime.fromisoformat(data["start"]).replace(tzinfo=zone),
            end=dt.datetime.fromisoformat(data["end"]).replace(tzinfo=zone),
            format=EventFormat(data["format"]),
            location=data["location"],
            online_url=data["online_url"],
            status=EventStatus(data["status"]),
        )


def change_lines(old: Snapshot, new: Snapshot, language: Language) -> tuple[str, ...]:
    """What changed between two versions, in the reader's words, for the top of an update mail."""
    words = strings(language)
    lines: list[str] = []
    if old.status is EventStatus.CANCELLED and new.status is EventStatus.SCHEDULED:
        lines.append(words["change_reinstated"])
    if old.format is not new.format:
        lines.append(
            words["change_format"].format(old=words[f"mode_{old.format.value}"], new=words[f"mode_{new.format.value}"])
        )
    if (old.start, old.end, str(old.start.tzinfo)) != (new.start, new.end, str(new.start.tzinfo)):
        before = date_line(old.start, old.end, str(old.start.tzinfo), language)
        after = date_line(new.start, new.end, str(new.start.tzinfo), language)
        lines.append(f"{words['change_time']}: {before} → {after}")
    if new.location and old.location != new.location:
        place = f"{old.location} → {new.location}" if old.location else new.location
        lines.append(f"{words['change_place']}: {place}")
    if new.online_url and old.online_url != new.online_url:
        lines.append(f"{words['change_link']}: {new.online_url}")
    return tuple(lines)


@dataclass(frozen=True)
class SentVersion:
    """A version of an event that went out: its SEQUENCE, the fingerprint of what it showed, and the
    DTSTAMP its mails carried (``sent_at``; every mail of one version carries the same)."""

    event: str
    sequence: int
    fingerprint: str
    sent_at: dt.datetime


# --- ICS ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attendee:
    email: str
    name: str | None = None


@dataclass(frozen=True)
class EventData:
    """One VEVENT as plain values, independent of the content model (and so testable on its own)."""

    uid: str
    sequence: int
    dtstamp: dt.datetime
    start: dt.datetime
    end: dt.datetime
    summary: str
    description: str
    location: str | None
    url: str | None
    status: EventStatus
    organizer: Attendee
    online: bool
    attendee: Attendee | None = None
    categories: tuple[str, ...] = ()


def utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise CalendarError(f"{moment.isoformat()}: a time with zone is needed for DTSTAMP")
    return moment.astimezone(dt.UTC).replace(microsecond=0)


def _text(value: str) -> str:
    """A TEXT value: line breaks become LF (escaped as \\n by icalendar), other control characters go.

    Text pasted from office programs brings vertical tabs and the like; parsers refuse them.
    """
    lines = value.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(_CONTROL.sub("", line) for line in lines)


def _param_text(value: str) -> str:
    """A parameter value (CN) without what parsers disagree on.

    Parameters cannot carry double quotes or control characters; a backslash (which icalendar's parser
    takes as an escape) and the caret (RFC 6868 escaping, which vobject does not decode) are dropped.
    """
    cleaned = _CONTROL.sub(" ", value).replace('"', "'").replace("\\", " ").replace("^", " ")
    return " ".join(cleaned.split())


def _address(person: Attendee, **params: str) -> icalendar.vCalAddress:
    address = icalendar.vCalAddress(f"mailto:{wire_address(person.email)}")
    name = _param_text(person.name or "")
    if name:
        address.params["CN"] = name
    address.params.update(params)
    return address


def _attendee(person: Attendee, cancelled: bool) -> icalendar.vCalAddress:
    """The ATTENDEE of an invitation (RSVP only while the event takes place)."""
    return _address(
        person, CUTYPE="INDIVIDUAL", ROLE="REQ-PARTICIPANT", PARTSTAT="NEEDS-ACTION",
        RSVP="FALSE" if cancelled else "TRUE",
    )


def _attendee_line(person: Attendee, cancelled: bool) -> str:
    """The folded ``ATTENDEE`` content line with its CRLF, exactly as :func:`ics_calendar` writes it."""
    line: bytes = icalendar.Event().content_line("ATTENDEE", _attendee(person, cancelled)).to_ical()
    return line.decode("utf-8") + "\r\n"


def _alarm(trigger: dt.timedelta, text: str) -> icalendar.Alarm:
    alarm = icalendar.Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("trigger", trigger)
    alarm.add("description", _text(text))
    return alarm


def _vevent(data: EventData, method: str) -> icalendar.Event:
    event = icalendar.Event()
    event.add("uid", data.uid)
    event.add("sequence", data.sequence)
    event.add("dtstamp", utc(data.dtstamp))
    event.add("dtstart", data.start)
    event.add("dtend", data.end)
    event.add("summary", _text(data.summary))
    event.add("description", _text(data.description))
    location = _text(data.location or "")
    if location:
        event.add("location", location)
    if data.url:
        event.add("url", data.url)
    if data.categories:
        event.add("categories", list(data.categories))
    cancelled = data.status is EventStatus.CANCELLED
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "TRANSPARENT" if cancelled else "OPAQUE")
    event.add("class", "PUBLIC")
    event.add("organizer", _address(data.organizer))
    if data.attendee is not None and method in ("REQUEST", "CANCEL"):
        event.add("attendee", _attendee(data.attendee, cancelled))
    if not cancelled:
        event.add_component(_alarm(REMINDER_DAY_BEFORE, data.summary))
        if data.online:
            event.add_component(_alarm(REMINDER_ONLINE, data.summary))
    return event


@dataclass(frozen=True)
class FeedInfo:
    """What a subscribed calendar shows as its name and description, and where it is fetched."""

    name: str
    description: str
    url: str


def _one_rdate_per_line(timezone: icalendar.Timezone) -> None:
    """Write each onset of an observance as its own RDATE line (RFC 5545 allows both forms).

    vobject reads only the first value of an RDATE list in a VTIMEZONE, so with icalendar's one long
    list it (and Radicale) got the offset right only until the second transition of each kind.
    """
    for observance in timezone.subcomponents:
        onsets = observance.get("RDATE")
        if onsets is None:
            continue
        lists = onsets if isinstance(onsets, list) else [onsets]
        del observance["RDATE"]
        for onset in [d.dt for dates in lists for d in dates.dts]:
            observance.add("rdate", onset)


def ics_calendar(method: str, events: Sequence[EventData], feed: FeedInfo | None = None) -> str:
    """A VCALENDAR with these events and the VTIMEZONEs they use, as CRLF text folded at 75 octets."""
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)
    if feed is not None:
        cal.add("x-wr-calname", feed.name)
        cal.add("x-wr-caldesc", feed.description)
        cal.add("refresh-interval", FEED_REFRESH, parameters={"VALUE": "DURATION"})
        cal.add("x-published-ttl", icalendar.vDuration(FEED_REFRESH))
        cal.add("source", feed.url, parameters={"VALUE": "URI"})
    vevents = [_vevent_ics(data, method) for data in events]
    zones = ""
    if events:
        first, last = TIMEZONE_WINDOW
        # widened by whole years, so the files of one year share one VTIMEZONE (computed once, see _vtimezone)
        first = min([first, *((e.start.date() - dt.timedelta(days=1)).replace(month=1, day=1) for e in events)])
        last = max([last, *((e.end.date() + dt.timedelta(days=1)).replace(month=12, day=31) for e in events)])
        tzids = set().union(*(used for _text, used in vevents))
        zones = "".join(_vtimezone(tzid, first, last) for tzid in sorted(tzids))
    # icalendar writes a calendar as its own lines, then each component's lines, then END: the same text
    # as the VEVENTs' own, so they are joined in as text, with the VTIMEZONEs before them
    head: str = cal.to_ical().decode("utf-8")
    return head.removesuffix(_END) + zones + "".join(text for text, _used in vevents) + _END


_END = "END:VCALENDAR\r\n"


@functools.lru_cache(maxsize=2048)
def _vevent_ics(data: EventData, method: str) -> tuple[str, frozenset[str]]:
    """A VEVENT as ICS text, and the zones (TZIDs) it needs a VTIMEZONE for.

    Made once per event data: the build writes each event's VEVENT into its ``event.ics`` and again into
    the feed ``calendar.ics``.
    """
    vevent = _vevent(data, method)
    holder = icalendar.Calendar()  # icalendar finds the zones a component uses only inside a calendar
    holder.add_component(vevent)
    text: bytes = vevent.to_ical()
    return text.decode("utf-8"), frozenset(holder.get_missing_tzids())


@functools.lru_cache(maxsize=64)
def _vtimezone(tzid: str, first: dt.date, last: dt.date) -> str:
    """A VTIMEZONE as ICS text, computed by icalendar from the tz database once per zone and window.

    Computing and folding it is most of an ICS file's cost; a build writes hundreds with the same zone.
    """
    try:
        timezone = icalendar.Timezone.from_tzid(tzid, first_date=first, last_date=last)
    except ValueError:  # a zone icalendar does not know goes without VTIMEZONE, as add_missing_timezones does
        return ""
    _one_rdate_per_line(timezone)
    text: bytes = timezone.to_ical()
    return text.decode("utf-8")


# --- from content to ICS ------------------------------------------------------------------------


def _unwrap(text: str) -> str:
    """Undo the 72-column wrapping of the mail's text part: calendar apps wrap DESCRIPTION themselves.

    Paragraphs and list items become one line each; tables, code and underlined headings stay as they are.
    """
    blocks = []
    for block in text.split("\n\n"):
        lines = block.split("\n")
        if block.startswith("    ") or any(" | " in line or set(line) <= _RULE_CHARS for line in lines):
            blocks.append(block)
            continue
        joined: list[str] = []
        for line in lines:
            if joined and not _LINE_START.match(line):
                joined[-1] += " " + line.strip()
            else:
                joined.append(line)
        blocks.append("\n".join(joined))
    return "\n\n".join(blocks)


def _public_file(site: Site, event: EventItem, name: str, language: Language) -> str:
    version = event.version(language)
    return layout.url(site.public_url, layout.event_file(event.stem, name, version.language, event.default_language))


def event_page_url(site: Site, event: EventItem, language: Language) -> str:
    return _public_file(site, event, "index.html", language)


def event_ics_url(site: Site, event: EventItem, language: Language) -> str:
    return _public_file(site, event, "event.ics", language)


def feed_url(site: Site) -> str:
    return layout.url(site.public_url, layout.CALENDAR_FEED)


def place(meta: EventFrontMatter) -> str | None:
    """LOCATION: the online link for online events, the address in person, both for hybrid."""
    snap = Snapshot.of(meta)
    return " · ".join(p for p in (snap.location, snap.online_url) if p) or None


def description(site: Site, event: EventItem, language: Language) -> str:
    """DESCRIPTION: notice, dual-zone date line, place, registration, event page, then the body text."""
    version = event.version(language)
    meta = version.meta
    words = strings(language)
    lines = []
    if meta.status is EventStatus.CANCELLED:
        lines.append(words["cancelled_notice"])
    lines.append(f"{words['when']}: {date_line(meta.start, meta.end, site.partner_timezone, language)}")
    snap = Snapshot.of(meta)
    where = words[f"format_{meta.format.value}"] + (f", {snap.location}" if snap.location else "")
    lines.append(f"{words['where']}: {where}")
    if snap.online_url:
        lines.append(f"{words['online_link']}: {snap.online_url}")
    if meta.registration is not None:
        reg = meta.registration
        how = str(reg.email or reg.url or layout.registration_url(site.public_url, event.stem, language))
        if reg.deadline:
            how += f" ({words['deadline']}: {long_date(reg.deadline, language)})"
        lines.append(f"{words['register']}: {how}")
    lines.append(f"{words['event_page']}: {event_page_url(site, event, language)}")
    body = _unwrap(version.body.text)  # the body's text, its links as numbered references
    return "\n".join(lines) + (f"\n\n{body}" if body else "")


def event_data(
    site: Site, event: EventItem, language: Language, *, sequence: int, dtstamp: dt.datetime,
    attendee: Attendee | None = None,
) -> EventData:
    """The VEVENT values of an event in one language."""
    meta = event.version(language).meta
    words = strings(language)
    cancelled = meta.status is EventStatus.CANCELLED
    snap = Snapshot.of(meta)
    return EventData(
        uid=event_uid(site, event),
        sequence=sequence,
        dtstamp=dtstamp,
        start=meta.start,
        end=meta.end,
        summary=f"{meta.title} ({words['cancelled']})" if cancelled else meta.title,
        description=description(site, event, language),
        location=place(meta),
        url=snap.online_url or event_page_url(site, event, language),
        status=meta.status,
        organizer=Attendee(site.sender.email, site.sender.name),
        online=meta.format is EventFormat.ONLINE,
        attendee=attendee,
        categories=(meta.kind,) if meta.kind else (),
    )


def first_sequence(event: EventItem) -> int:
    """SEQUENCE without send history: 0, or 1 for a cancellation (it supersedes the announcement)."""
    return 1 if event.meta.status is EventStatus.CANCELLED else 0


@dataclass(frozen=True)
class Published:
    """The SEQUENCE and DTSTAMP a download carries."""

    sequence: int
    dtstamp: dt.datetime

    @classmethod
    def of(cls, event: EventItem, last: SentVersion | None, unsent: dt.datetime) -> Published:
        """Those of the last version sent, so a download never looks newer (RFC 5546 ordering) than the
        invitation a recipient holds; before any send :func:`first_sequence` and ``unsent``."""
        if last is None:
            return cls(first_sequence(event), utc(unsent))
        return cls(last.sequence, utc(last.sent_at))


def publish_ics(site: Site, event: EventItem, language: Language, version: Published) -> str:
    """``event.ics`` for download (METHOD:PUBLISH)."""
    data = event_data(site, event, language, sequence=version.sequence, dtstamp=version.dtstamp)
    return ics_calendar("PUBLISH", [data])


def feed_ics(content: Content, version: Callable[[EventItem], Published]) -> str:
    """``calendar.ics``: every event in the site language, for subscribing (METHOD:PUBLISH)."""
    site = content.site
    language = site.language
    events = []
    for event in content.events:
        published = version(event)
        events.append(
            event_data(site, event, language, sequence=published.sequence, dtstamp=published.dtstamp)
        )
    info = FeedInfo(
        name=f"{site.sender.name} – {strings(language)['upcoming_events']}",
        description=site.organisation,
        url=feed_url(site),
    )
    return ics_calendar("PUBLISH", events, info)


# --- invitations --------------------------------------------------------------------------------

_PLACEHOLDER = Attendee("rlm-attendee@rlm.invalid")


@dataclass(frozen=True)
class InvitationStamp:
    """An invitation's ICS in one language, serialised once; per recipient only the ATTENDEE line is made.

    icalendar takes about 2 ms per calendar (most of it the VTIMEZONE); the ATTENDEE line alone is built
    by the same icalendar code (:func:`_attendee_line`), so a stamped calendar is the one
    :func:`ics_calendar` writes for that recipient (tests/calendar checks both parse the same).
    """

    before: str  # everything up to the ATTENDEE line
    after: str  # everything after it
    cancelled: bool

    @classmethod
    def of(cls, method: str, data: EventData) -> InvitationStamp:
        cancelled = data.status is EventStatus.CANCELLED
        text = ics_calendar(method, [replace(data, attendee=_PLACEHOLDER)])
        before, found, after = text.partition(_attendee_line(_PLACEHOLDER, cancelled))
        if not found:
            raise CalendarError(f"{data.uid}: the invitation has no ATTENDEE line to fill in")
        return cls(before, after, cancelled)

    def ics(self, attendee: Attendee) -> str:
        return self.before + _attendee_line(attendee, self.cancelled) + self.after



@dataclass(frozen=True)
class InvitationPlan:
    """One recipient's calendar part and what the mail says about the version it carries."""

    method: str
    sequence: int
    dtstamp: dt.datetime
    ics: str
    changes: tuple[str, ...]
    fingerprint: str


@dataclass(frozen=True)
class EventPlan:
    """The version of an event a campaign sends: METHOD, SEQUENCE, DTSTAMP, and what changed."""

    site: Site
    event: EventItem
    method: str
    sequence: int
    dtstamp: dt.datetime
    current: Snapshot
    previous: Snapshot | None
    stamps: dict[Language, InvitationStamp] = field(default_factory=dict, compare=False, repr=False)

    @property
    def fingerprint(self) -> str:
        return self.current.fingerprint

    @property
    def is_update(self) -> bool:
        return self.previous is not None and self.previous != self.current

    def changes(self, language: Language) -> tuple[str, ...]:
        """Change lines for the mail in ``language``; empty for a first invitation or a resend."""
        if self.previous is None or not self.is_update:
            return ()
        return change_lines(self.previous, self.current, language)

    def invitation(
        self, recipient_email: str, *, language: Language | None = None, name: str | None = None
    ) -> InvitationPlan:
        """The ICS (METHOD:REQUEST or CANCEL) addressed to one recipient, in their language (stamped: the
        calendar is serialised once per language, see :class:`InvitationStamp`)."""
        lang = language or self.site.language
        stamp = self.stamps.get(lang)
        if stamp is None:
            data = event_data(self.site, self.event, lang, sequence=self.sequence, dtstamp=self.dtstamp)
            stamp = self.stamps[lang] = InvitationStamp.of(self.method, data)
        return InvitationPlan(
            method=self.method,
            sequence=self.sequence,
            dtstamp=self.dtstamp,
            ics=stamp.ics(Attendee(recipient_email, name)),
            changes=self.changes(lang),
            fingerprint=self.fingerprint,
        )


def plan_version(site: Site, event: EventItem, last: SentVersion | None, dtstamp: dt.datetime) -> EventPlan:
    """What a campaign for ``event`` sends now, given the last version that went out (None: none did)."""
    current = Snapshot.of(event.meta)
    method = "CANCEL" if current.status is EventStatus.CANCELLED else "REQUEST"
    if last is None:
        return EventPlan(site, event, method, first_sequence(event), utc(dtstamp), current, None)
    previous = Snapshot.from_fingerprint(last.fingerprint)
    if last.fingerprint == current.fingerprint:  # a resend: the same version, SEQUENCE and DTSTAMP
        return EventPlan(site, event, method, last.sequence, utc(last.sent_at), current, previous)
    return EventPlan(site, event, method, last.sequence + 1, utc(dtstamp), current, previous)


def preview_plan(site: Site, event: EventItem, dtstamp: dt.datetime) -> EventPlan:
    """The plan without send history (``build``'s preview.eml), DTSTAMP given by the caller."""
    return plan_version(site, event, None, dtstamp)
