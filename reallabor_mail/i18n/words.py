"""Words the templates need in German, Ukrainian and English, and dates as an office writes them.

Every date line shows the site's time and the partner time, each computed per date from the tz
database (never a fixed offset): the offset between Berlin and Kyiv changes with the DST switches.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time, get_timezone_location

from reallabor_mail.content.models import Language

STRINGS: dict[Language, dict[str, str]] = {
    "de": {
        "view_in_browser": "Im Browser ansehen",
        "unsubscribe": "Vom Newsletter abmelden",
        "unsubscribe_note": "Sie erhalten diese E-Mail, weil Sie in unserem Verteiler eingetragen sind.",
        "imprint": "Impressum",
        "privacy": "Datenschutz",
        "upcoming_events": "Termine",
        "add_to_calendar": "In den Kalender",
        "event_page": "Zur Veranstaltung",
        "register": "Anmeldung",
        "register_by_email": "Anmeldung per E-Mail an",
        "register_online": "Zur Anmeldung",
        "deadline": "Anmeldeschluss",
        "when": "Wann",
        "where": "Wo",
        "join_online": "Online teilnehmen",
        "online_link": "Zugangslink",
        "format_online": "Online",
        "format_in_person": "In Präsenz",
        "format_hybrid": "Hybrid (in Präsenz und online)",
        "cancelled": "abgesagt",
        "cancelled_notice": "Diese Veranstaltung ist abgesagt.",
        "invitation": "Einladung",
        "cancellation": "Absage",
        "newsletter": "Newsletter",
        "archive": "Archiv",
        "newsletters": "Newsletter",
        "events_upcoming": "Kommende Veranstaltungen",
        "events_past": "Vergangene Veranstaltungen",
        "phone": "Telefon",
        "image": "Bild",
        "links": "Links",
        "skip_to_content": "Zum Inhalt springen",
        "other_languages": "Andere Sprachen",
        "language_name": "Deutsch",
        "all_events_calendar": "Alle Termine als Kalender abonnieren",
        "google_calendar": "Google Kalender",
        "outlook_calendar": "Outlook.com",
        "subscribe_calendar": "Alle Termine abonnieren",
        "change_time": "Zeit",
        "change_place": "Ort",
        "change_format": "Neu: {new} statt {old}",
        "change_link": "Neuer Zugangslink",
        "change_reinstated": "Die Veranstaltung findet wieder statt.",
        "mode_online": "online",
        "mode_in_person": "in Präsenz",
        "mode_hybrid": "hybrid (in Präsenz und online)",
        "uhr": " Uhr",
    },
    "uk": {
        "view_in_browser": "Переглянути в браузері",
        "unsubscribe": "Відписатися від розсилки",
        "unsubscribe_note": "Ви отримуєте цей лист, оскільки ваша адреса є в нашому списку розсилки.",
        "imprint": "Вихідні дані",
        "privacy": "Захист даних",
        "upcoming_events": "Найближчі заходи",
        "add_to_calendar": "Додати до календаря",
        "event_page": "Сторінка заходу",
        "register": "Реєстрація",
        "register_by_email": "Реєстрація електронною поштою:",
        "register_online": "Зареєструватися",
        "deadline": "Реєстрація до",
        "when": "Коли",
        "where": "Де",
        "join_online": "Приєднатися онлайн",
        "online_link": "Посилання для участі",
        "format_online": "Онлайн",
        "format_in_person": "Очно",
        "format_hybrid": "Гібридно (очно та онлайн)",
        "cancelled": "скасовано",
        "cancelled_notice": "Цей захід скасовано.",
        "invitation": "Запрошення",
        "cancellation": "Скасування",
        "newsletter": "Розсилка",
        "archive": "Архів",
        "newsletters": "Випуски розсилки",
        "events_upcoming": "Найближчі заходи",
        "events_past": "Минулі заходи",
        "phone": "Телефон",
        "image": "Зображення",
        "links": "Посилання",
        "skip_to_content": "Перейти до змісту",
        "other_languages": "Інші мови",
        "language_name": "Українська",
        "all_events_calendar": "Підписатися на календар усіх заходів",
        "google_calendar": "Google Календар",
        "outlook_calendar": "Outlook.com",
        "subscribe_calendar": "Підписатися на всі заходи",
        "change_time": "Час",
        "change_place": "Місце",
        "change_format": "Формат змінено: {old} → {new}",
        "change_link": "Нове посилання для участі",
        "change_reinstated": "Захід знову відбудеться.",
        "mode_online": "онлайн",
        "mode_in_person": "очно",
        "mode_hybrid": "гібридно (очно та онлайн)",
        "uhr": "",
    },
    "en": {
        "view_in_browser": "View in your browser",
        "unsubscribe": "Unsubscribe from this newsletter",
        "unsubscribe_note": "You receive this email because you are on our mailing list.",
        "imprint": "Legal notice",
        "privacy": "Privacy",
        "upcoming_events": "Upcoming events",
        "add_to_calendar": "Add to calendar",
        "event_page": "Event page",
        "register": "Registration",
        "register_by_email": "Register by email to",
        "register_online": "Register online",
        "deadline": "Register by",
        "when": "When",
        "where": "Where",
        "join_online": "Join online",
        "online_link": "Link to join",
        "format_online": "Online",
        "format_in_person": "In person",
        "format_hybrid": "Hybrid (in person and online)",
        "cancelled": "cancelled",
        "cancelled_notice": "This event has been cancelled.",
        "invitation": "Invitation",
        "cancellation": "Cancelled",
        "newsletter": "Newsletter",
        "archive": "Archive",
        "newsletters": "Newsletters",
        "events_upcoming": "Upcoming events",
        "events_past": "Past events",
        "phone": "Phone",
        "image": "Image",
        "links": "Links",
        "skip_to_content": "Skip to content",
        "other_languages": "Other languages",
        "language_name": "English",
        "all_events_calendar": "Subscribe to the calendar of all events",
        "google_calendar": "Google Calendar",
        "outlook_calendar": "Outlook.com",
        "subscribe_calendar": "Subscribe to all events",
        "change_time": "Time",
        "change_place": "Place",
        "change_format": "New: {new} instead of {old}",
        "change_link": "New link to join",
        "change_reinstated": "The event is on again.",
        "mode_online": "online",
        "mode_in_person": "in person",
        "mode_hybrid": "hybrid (in person and online)",
        "uhr": "",
    },
}

_DATE_PATTERN: dict[Language, str] = {
    "de": "EEEE, d. MMMM y",
    "uk": "EEEE, d MMMM y 'р.'",
    "en": "EEEE, d MMMM y",
}
_SHORT_DATE_PATTERN: dict[Language, str] = {"de": "d.M.", "uk": "d.MM", "en": "d MMM"}

# City names where CLDR's exemplar city is not what the partners write.
_CITY_OVERRIDES: dict[str, dict[Language, str]] = {
    "Europe/Kyiv": {"de": "Київ", "uk": "Київ", "en": "Kyiv"},
}


def strings(language: str) -> dict[str, str]:
    """The template strings of a language, German for any language we do not have."""
    return STRINGS.get(language, STRINGS["de"])  # type: ignore[call-overload, no-any-return]


def long_date(day: dt.date, language: Language) -> str:
    """``Dienstag, 19. September 2023`` / ``вівторок, 19 вересня 2023 р.`` / ``Tuesday, 19 September 2023``."""
    return format_date(day, _DATE_PATTERN[language], locale=language)


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
    words = strings(language)
    if start.date() == end.date():
        here = f"{long_date(start.date(), language)}, {_clock(start)}–{_clock(end)}{words['uhr']}"
    else:
        here = (
            f"{long_date(start.date(), language)}, {_clock(start)}{words['uhr']} – "
            f"{long_date(end.date(), language)}, {_clock(end)}{words['uhr']}"
        )
    here += f" ({city(zone, language)})"
    if partner_zone == zone:
        return here
    partner = ZoneInfo(partner_zone)
    there = _span(start.astimezone(partner), end.astimezone(partner), language, start.date())
    return f"{here} · {there} ({city(partner_zone, language)})"
