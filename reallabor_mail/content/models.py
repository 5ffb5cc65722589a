"""The validated shapes of ``site.yaml``, newsletter, event and report front matter (contract §1).

Only what staff write lives here; anything derived (rendered Markdown, UIDs, file names) belongs to
the steps that derive it.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated
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
from pydantic_core import PydanticCustomError

from reallabor_mail.addresses import AddressFault, InvalidAddress, parse_address
from reallabor_mail.characters import control_character
from reallabor_mail.i18n.languages import LANGUAGES, Language
from reallabor_mail.i18n.messages import N_, _

__all__ = ["LANGUAGES", "Language"]  # re-exported: the layers above name them from here

_TZ_ALIASES = {"Europe/Kiev": "Europe/Kyiv"}

# The error type of a list name that site.yaml does not declare; the loader gives it its own code.
UNKNOWN_LIST = "unknown_list"
# The error type of a report dated before its event ended (context ``event_end``).
REPORT_BEFORE_EVENT = "report_before_event"


def _timezone_name(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(_("a time zone name such as 'Europe/Berlin' is expected"))
    name = _TZ_ALIASES.get(value, value)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            _("unknown time zone '{zone}'; use an IANA name such as 'Europe/Berlin'", zone=value)
        ) from None
    return name


_ADDRESS_FAULTS = {  # why an address was refused (addresses.py's code), as staff read it
    AddressFault.NON_ASCII_LOCAL: N_(
        "'{address}' is not an address mail can be sent to: the part before the @ has non-ASCII letters, "
        "which mail servers without SMTPUTF8 cannot deliver; use an address written in ASCII (e.g. joerg.weiss@…)"
    ),
    AddressFault.ENCODED_WORD: N_(
        "'{address}' is not an address mail can be sent to: '=?' (an encoded word) is not allowed before the @"
    ),
    AddressFault.SOURCE_ROUTE: N_(
        "'{address}' is not an address mail can be sent to: '%' and '!' (source routing) are not allowed before the @"
    ),
    AddressFault.MALFORMED: N_("'{address}' is not an address mail can be sent to; write it as name@example.org"),
}


def _email_address(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(_("an email address is expected"))
    try:
        return str(parse_address(value))
    except InvalidAddress as exc:
        raise ValueError(_(_ADDRESS_FAULTS[exc.fault], address=value)) from None


def _single_line(value: str) -> str:
    """One line of text: the control-character rule of characters.py, applied to the parsed value.

    The raw-text rule cannot see a control character that YAML's escapes produce (``"\\u001b"``).
    """
    found = control_character(value)
    if found:
        raise ValueError(
            _("must be a single line of text without control characters; remove {character}", character=found)
        )
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
# The only pattern-checked type: the loader words a pattern mismatch as a list-name rule.
ListName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
ReminderLead = Annotated[dt.timedelta, BeforeValidator(_reminder_lead)]


def _declared_lists(names: list[str], info: ValidationInfo) -> list[str]:
    """The content's ``lists:``, each declared in site.yaml (context ``known_lists``; absent: not checked)."""
    known: tuple[str, ...] | None = (info.context or {}).get("known_lists")
    unknown = [name for name in names if known is not None and name not in known]
    if unknown:
        raise PydanticCustomError(
            UNKNOWN_LIST, "unknown list {names}", {"names": ", ".join(unknown), "known": ", ".join(known or ())}
        )
    return names


class Strict(BaseModel):
    """Base for front-matter models: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Mailbox(Strict):
    name: SingleLine
    email: EmailAddress


Labels = dict[Language, SingleLine]


class MailingList(Strict):
    """A list people can be on: its name in every language, and what it is for."""

    label: Labels
    description: Labels | None = None


class Site(Strict):
    organisation: SingleLine
    sender: Mailbox
    reply_to: EmailAddress | None = None
    address: SingleLine
    phone: SingleLine | None = None
    website: WebUrl
    imprint_url: WebUrl
    privacy_url: WebUrl
    funding_note: SingleLine | None = None  # the funder's note: page footers, printed reports, the bound record
    project: SingleLine | None = None  # the project's name, on the title page of the bound record
    base_url: WebUrl | None = None
    timezone: TimezoneName = "Europe/Berlin"
    partner_timezone: TimezoneName = "Europe/Kyiv"
    language: Language = "de"
    reminder: ReminderLead | None = None  # the reminder mail of every event that does not set its own
    # None: site.yaml has no ``lists:``; the loader then declares the lists the content names.
    lists: dict[ListName, MailingList] | None = None

    @field_validator("lists", mode="after")
    @classmethod
    def _labelled_in_site_language(
        cls, lists: dict[str, MailingList] | None, info: ValidationInfo
    ) -> dict[str, MailingList] | None:
        language = info.data.get("language", "de")
        for name, mailing_list in (lists or {}).items():
            if language not in mailing_list.label:
                raise ValueError(_(
                    "list '{name}' has no label in {language}, the site's language; add label: {{{language}: …}}",
                    name=name, language=language,
                ))  # fmt: skip
        return lists

    @property
    def public_url(self) -> str:
        """Where the web versions, images and the unsubscribe endpoint live, without trailing slash."""
        return str(self.base_url or self.website).rstrip("/")

    @property
    def domain(self) -> str:
        """The sender's domain: UIDs and Message-IDs are minted on it."""
        return self.sender.email.rsplit("@", 1)[1].lower()

    @property
    def known_lists(self) -> tuple[str, ...]:
        """The names of every list, in the order site.yaml gives them."""
        return tuple(self.lists or ())

    def list_label(self, name: str, language: Language) -> str:
        """What a list is called in ``language``, else in the site's language; an undeclared list: its name."""
        declared = (self.lists or {}).get(name)
        if declared is None:
            return name
        return declared.label.get(language) or declared.label.get(self.language) or name

    def list_description(self, name: str, language: Language) -> str | None:
        """What a list is for in ``language``, else in the site's language; None if site.yaml does not say."""
        declared = (self.lists or {}).get(name)
        if declared is None or declared.description is None:
            return None
        return declared.description.get(language) or declared.description.get(self.language)


def _date_without_time(value: object) -> object:
    if isinstance(value, dt.datetime):
        raise ValueError(_("a date without time is expected, e.g. 2023-10-05"))
    return value


PlainDate = Annotated[dt.date, BeforeValidator(_date_without_time)]


class Newsletter(Strict):
    title: SingleLine
    date: PlainDate
    preheader: SingleLine | None = None
    lists: Annotated[list[ListName], AfterValidator(_declared_lists)] = Field(
        default_factory=lambda: ["newsletter"], validate_default=True
    )
    upcoming_events: bool = False
    upcoming_days: int | None = Field(default=None, ge=1, le=366)  # how far ahead "Termine" looks
    review: bool = False  # a "Rückblick": the reports published since the previous issue


class Photo(Strict):
    """A picture of a report: the image file, what it shows (for screen readers and print) and who took it."""

    path: SingleLine
    alt: SingleLine
    credit: SingleLine | None = None


class Report(Strict):
    """What happened at an event, written afterwards: ``reports/<event-stem>.md``.

    ``date`` is when the report is published (after the event ended); it places the report in a
    newsletter's Rückblick and in the bound record.
    """

    title: SingleLine
    date: PlainDate
    author: SingleLine | None = None
    photos: list[Photo] = Field(default_factory=list)

    @field_validator("date", mode="after")
    @classmethod
    def _after_the_event(cls, value: dt.date, info: ValidationInfo) -> dt.date:
        end: dt.date | None = (info.context or {}).get("event_end")
        if end is not None and value < end:
            raise PydanticCustomError(
                REPORT_BEFORE_EVENT, "dated before the event ended", {"date": value.isoformat(), "end": end.isoformat()}
            )
        return value


class EventFormat(StrEnum):
    ONLINE = "online"
    IN_PERSON = "in_person"
    HYBRID = "hybrid"


class EventStatus(StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class Registration(Strict):
    """How people register: by mail to ``email``, on another site (``url``), or on our public server's
    form (``form: true``, or ``registration: form`` for short), with ``capacity`` seats and then a waiting list."""

    email: EmailAddress | None = None
    url: WebUrl | None = None
    form: bool = False
    capacity: int | None = Field(default=None, gt=0)
    deadline: dt.date | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: object) -> object:
        return {"form": True} if value == "form" else value

    @model_validator(mode="after")
    def _one_way_to_register(self) -> Registration:
        if self.email is None and self.url is None and not self.form:
            raise ValueError(_("registration needs 'email', 'url' or 'form: true'"))
        if self.capacity is not None and not self.form:
            raise ValueError(_("'capacity' needs 'form: true': only the form can keep count of the seats"))
        return self


_REQUIRED_BY_FORMAT: dict[str, tuple[tuple[EventFormat, ...], str]] = {
    "location": (
        (EventFormat.IN_PERSON, EventFormat.HYBRID),
        N_("'location' is required for format {format}; add the address"),
    ),
    "online_url": (
        (EventFormat.ONLINE, EventFormat.HYBRID),
        N_("'online_url' is required for format {format}; add the https:// link"),
    ),
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
        raise ValueError(
            _("'{value}' is not a local time; write it as YYYY-MM-DD HH:MM, e.g. 2023-09-19 14:00", value=value)
        )
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            raise ValueError(_("write the local time without offset and set 'timezone' instead"))
        return value
    raise ValueError(_("a local time is expected, written as YYYY-MM-DD HH:MM"))


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
    lists: Annotated[list[ListName], AfterValidator(_declared_lists)] = Field(
        default_factory=lambda: ["reallabor"], validate_default=True
    )
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
            raise ValueError(_(
                "the event ends ({end}) before it starts; 'end' must come after 'start'", end=f"{value:%Y-%m-%d %H:%M}"
            ))  # fmt: skip
        return aware

    @field_validator("location", "online_url", mode="after")
    @classmethod
    def _required_by_format(cls, value: str | None, info: ValidationInfo) -> str | None:
        fmt = info.data.get("format")
        needed_for, sentence = _REQUIRED_BY_FORMAT[str(info.field_name)]
        if value is None and fmt in needed_for:
            raise ValueError(_(sentence, format=fmt.value))
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
        wall_clock = f"{local:%Y-%m-%d %H:%M}"
        back = early.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None)
        if back != local:
            message = _(
                "{time} does not exist in {zone} (clocks jump forward); pick another time",
                time=wall_clock,
                zone=zone_name,
            )
            raise ValueError(message)
        raise ValueError(
            _("{time} happens twice in {zone} (clocks go back); pick another time", time=wall_clock, zone=zone_name)
        )
    return early
