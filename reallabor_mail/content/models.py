"""The validated shapes of ``site.yaml``, newsletter and event front matter (contract §1).

Only what staff write lives here; anything derived (rendered Markdown, UIDs, file names) belongs to
the steps that derive it.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationInfo,
    field_validator,
    model_validator,
)

from reallabor_mail.addresses import InvalidAddress, parse_address
from reallabor_mail.characters import HEADER_UNSAFE

Language = Literal["de", "uk", "en"]
LANGUAGES: tuple[Language, ...] = ("de", "uk", "en")

_TZ_ALIASES = {"Europe/Kiev": "Europe/Kyiv"}


def _timezone_name(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("a time zone name such as 'Europe/Berlin' is expected")
    name = _TZ_ALIASES.get(value, value)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'Europe/Berlin'") from None
    return name


def _email_address(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("an email address is expected")
    try:
        return str(parse_address(value))
    except InvalidAddress as exc:
        raise ValueError(exc.detail) from None


def _single_line(value: str) -> str:
    if HEADER_UNSAFE.search(value):
        raise ValueError("must be a single line (no line breaks or NUL characters)")
    return value.strip()


def _url_string(value: HttpUrl) -> str:
    return str(value)


_DURATION = re.compile(r"^\s*(?P<count>\d+)\s*(?P<unit>[hd])\s*$")
_DURATION_UNITS = {"h": dt.timedelta(hours=1), "d": dt.timedelta(days=1)}
NO_REMINDER = dt.timedelta(0)


def parse_duration(text: str) -> dt.timedelta:
    """``24h`` or ``2d`` (hours or days) as a timedelta; ValueError naming the form otherwise."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration; write hours or days, e.g. 24h or 2d")
    return int(match["count"]) * _DURATION_UNITS[match["unit"]]


def _reminder_lead(value: object) -> object:
    """``reminder: 24h`` / ``2d`` before the start; ``reminder: off`` (or false) for none."""
    if value is False or (isinstance(value, str) and value.strip().lower() in ("off", "no", "none")):
        return NO_REMINDER
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError("a time before the start is expected, in hours or days (e.g. 24h or 2d), or 'off'")


TimezoneName = Annotated[str, AfterValidator(_timezone_name)]
EmailAddress = Annotated[str, AfterValidator(_email_address)]
SingleLine = Annotated[str, Field(min_length=1), AfterValidator(_single_line)]
WebUrl = Annotated[HttpUrl, AfterValidator(_url_string)]
ListName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
ReminderLead = Annotated[dt.timedelta, BeforeValidator(_reminder_lead)]


class Strict(BaseModel):
    """Base for front-matter models: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Mailbox(Strict):
    name: SingleLine
    email: EmailAddress


class Site(Strict):
    organisation: SingleLine
    sender: Mailbox
    reply_to: EmailAddress | None = None
    address: SingleLine
    phone: SingleLine | None = None
    website: WebUrl
    imprint_url: WebUrl
    privacy_url: WebUrl
    funding_note: SingleLine | None = None
    base_url: WebUrl | None = None
    timezone: TimezoneName = "Europe/Berlin"
    partner_timezone: TimezoneName = "Europe/Kyiv"
    language: Language = "de"
    reminder: ReminderLead | None = None  # the reminder mail of every event that does not set its own

    @property
    def public_url(self) -> str:
        """Where the web versions, images and the unsubscribe endpoint live, without trailing slash."""
        return str(self.base_url or self.website).rstrip("/")

    @property
    def domain(self) -> str:
        """The sender's domain: UIDs and Message-IDs are minted on it."""
        return self.sender.email.rsplit("@", 1)[1].lower()


class Newsletter(Strict):
    title: SingleLine
    date: dt.date
    preheader: SingleLine | None = None
    lists: list[ListName] = Field(default_factory=lambda: ["newsletter"])
    upcoming_events: bool = False
    upcoming_days: int | None = Field(default=None, ge=1, le=366)  # how far ahead "Termine" looks

    @field_validator("date", mode="before")
    @classmethod
    def _plain_date(cls, value: object) -> object:
        if isinstance(value, dt.datetime):
            raise ValueError("a date without time is expected, e.g. 2023-10-05")
        return value


class EventFormat(StrEnum):
    ONLINE = "online"
    IN_PERSON = "in_person"
    HYBRID = "hybrid"


class EventStatus(StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class Registration(Strict):
    email: EmailAddress | None = None
    url: WebUrl | None = None
    deadline: dt.date | None = None

    @model_validator(mode="after")
    def _one_way_to_register(self) -> Registration:
        if self.email is None and self.url is None:
            raise ValueError("registration needs 'email' or 'url'")
        return self


_REQUIRED_BY_FORMAT: dict[str, tuple[tuple[EventFormat, ...], str]] = {
    "location": ((EventFormat.IN_PERSON, EventFormat.HYBRID), "the address"),
    "online_url": ((EventFormat.ONLINE, EventFormat.HYBRID), "the https:// link"),
}


def _parse_local_time(value: object) -> object:
    """Accept ``2023-09-19 14:00`` as YAML leaves it (a string) or a YAML timestamp."""
    if isinstance(value, str):
        text = value.strip()
        for pattern in ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"):
            try:
                return dt.datetime.strptime(text, pattern)
            except ValueError:
                continue
        raise ValueError(f"{value!r} is not a local time; write it as YYYY-MM-DD HH:MM, e.g. 2023-09-19 14:00")
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            raise ValueError("write the local time without offset and set 'timezone' instead")
        return value
    raise ValueError("a local time is expected, written as YYYY-MM-DD HH:MM")


LocalTime = Annotated[dt.datetime, BeforeValidator(_parse_local_time)]


class EventFrontMatter(Strict):
    """An event as written, with its times resolved to zone-aware datetimes.

    Validate with ``context={"default_timezone": site.timezone}``. Fields are declared in the
    order their checks depend on each other (pydantic validates in declaration order).
    """

    title: SingleLine
    kind: SingleLine | None = None
    timezone: TimezoneName | None = None
    start: LocalTime
    end: LocalTime
    format: EventFormat
    location: SingleLine | None = Field(default=None, validate_default=True)
    online_url: WebUrl | None = Field(default=None, validate_default=True)
    registration: Registration | None = None
    status: EventStatus = EventStatus.SCHEDULED
    lists: list[ListName] = Field(default_factory=lambda: ["reallabor"])
    reminder: ReminderLead | None = None  # a reminder mail this long before the start (None: the site's default)

    @field_validator("start", "end", mode="after")
    @classmethod
    def _zone_aware(cls, value: dt.datetime, info: ValidationInfo) -> dt.datetime:
        if info.data.get("timezone"):
            zone = info.data["timezone"]
        else:
            zone = (info.context or {}).get("default_timezone", "Europe/Berlin")
        aware = resolve_local_time(value, zone)
        start = info.data.get("start")
        if info.field_name == "end" and start is not None and aware <= start:
            raise ValueError(f"the event ends ({value:%Y-%m-%d %H:%M}) before it starts; 'end' must come after 'start'")
        return aware

    @field_validator("location", "online_url", mode="after")
    @classmethod
    def _required_by_format(cls, value: str | None, info: ValidationInfo) -> str | None:
        fmt = info.data.get("format")
        needed_for, what = _REQUIRED_BY_FORMAT[str(info.field_name)]
        if value is None and fmt in needed_for:
            raise ValueError(f"'{info.field_name}' is required for format {fmt.value}; add {what}")
        return value

    @property
    def zone(self) -> str:
        tz = self.start.tzinfo
        return str(tz)


def resolve_local_time(local: dt.datetime, zone_name: str) -> dt.datetime:
    """Attach a zone to a wall-clock time, refusing times that do not exist or exist twice.

    Around the DST switches a wall-clock time can be skipped (spring) or repeated (autumn); a
    calendar entry must not silently move by an hour, so both are errors the author has to resolve.
    """
    zone = ZoneInfo(zone_name)
    early = local.replace(tzinfo=zone, fold=0)
    late = local.replace(tzinfo=zone, fold=1)
    if early.utcoffset() != late.utcoffset():
        back = early.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None)
        if back != local:
            raise ValueError(
                f"{local:%Y-%m-%d %H:%M} does not exist in {zone_name} (clocks jump forward); pick another time"
            )
        raise ValueError(f"{local:%Y-%m-%d %H:%M} happens twice in {zone_name} (clocks go back); pick another time")
    return early
