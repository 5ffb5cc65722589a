"""Dates and times as an office writes them, in German, Ukrainian and English (Babel, CLDR).

Every date line shows the site's time and the partner time, each computed per date from the tz
database (never a fixed offset): the offset between Berlin and Kyiv changes with the DST switches.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time, get_timezone_location

from reallabor_mail.i18n.languages import Language
from reallabor_mail.i18n.messages import translations

_DATE_PATTERN: dict[Language, str] = {
    "de": "EEEE, d. MMMM y",
    "uk": "EEEE, d MMMM y 'р.'",
    "en": "EEEE, d MMMM y",
}
_DAY_PATTERN: dict[Language, str] = {"de": "d. MMMM y", "uk": "d MMMM y 'р.'", "en": "d MMMM y"}
_SHORT_DATE_PATTERN: dict[Language, str] = {"de": "d.M.", "uk": "d.MM", "en": "d MMM"}

# City names where CLDR's exemplar city is not what the partners write.
_CITY_OVERRIDES: dict[str, dict[Language, str]] = {
    "Europe/Kyiv": {"de": "Київ", "uk": "Київ", "en": "Kyiv"},
}


def long_date(day: dt.date, language: Language) -> str:
    """``Dienstag, 19. September 2023`` / ``вівторок, 19 вересня 2023 р.`` / ``Tuesday, 19 September 2023``."""
    return format_date(day, _DATE_PATTERN[language], locale=language)


def plain_date(day: dt.date, language: Language) -> str:
    """``19. September 2023``: a date without its weekday (periods, where the weekday is noise)."""
    return format_date(day, _DAY_PATTERN[language], locale=language)


def city(zone: str, language: Language) -> str:
    """The city a time zone is named after, in the reader's words."""
    if zone in _CITY_OVERRIDES:
        return _CITY_OVERRIDES[zone][language]
    return str(get_timezone_location(ZoneInfo(zone), locale=language, return_city=True))


def _clock(moment: dt.datetime) -> str:
    return format_time(moment, "HH:mm", locale="de")


def _span(start: dt.datetime, end: dt.datetime, language: Language, main_day: dt.date) -> str:
    """``14:00–15:30`` in the zone of the datetimes, marking a day that differs from the main one."""
    text = f"{_clock(start)}–{_clock(end)}"
    if start.date() != main_day:
        text = f"{format_date(start, _SHORT_DATE_PATTERN[language], locale=language)} {text}"
    return text


def date_line(start: dt.datetime, end: dt.datetime, partner_zone: str, language: Language) -> str:
    """The date line of an event in the event's zone and the partner zone.

    ``Dienstag, 19. September 2023, 14:00–15:30 Uhr (Berlin) · 15:00–16:30 (Київ)``
    """
    zone = str(start.tzinfo)
    words = translations(language)
    if start.date() == end.date():
        here = words.gettext("{date}, {start}–{end} ({city})").format(
            date=long_date(start.date(), language), start=_clock(start), end=_clock(end), city=city(zone, language)
        )
    else:
        here = words.gettext("{start_date}, {start} – {end_date}, {end} ({city})").format(
            start_date=long_date(start.date(), language),
            start=_clock(start),
            end_date=long_date(end.date(), language),
            end=_clock(end),
            city=city(zone, language),
        )
    if partner_zone == zone:
        return here
    partner = ZoneInfo(partner_zone)
    there = _span(start.astimezone(partner), end.astimezone(partner), language, start.date())
    return f"{here} · {there} ({city(partner_zone, language)})"
