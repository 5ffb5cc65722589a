"""Transitional: the old ``strings(language)["key"]`` lookups, answered from the gettext catalogs.

Only for the callers that are not yet on gettext (``render/ics.py``, ``render/calendar_links.py``,
``web/public.py`` and the templates they render with ``t.…``); new code calls
:func:`reallabor_mail.i18n.messages.translations` with the English sentence itself. Remove this
module when the last caller has moved.
"""

from __future__ import annotations

from reallabor_mail.i18n.dates import date_line, long_date
from reallabor_mail.i18n.languages import LANGUAGES
from reallabor_mail.i18n.messages import language_name, translations

__all__ = ["date_line", "long_date", "strings"]


def strings(language: str) -> dict[str, str]:
    """The template words of a language by their old keys, German for any language we do not have."""
    words = translations(language if language in LANGUAGES else "de")
    _ = words.gettext
    return {
        "view_in_browser": _("View in your browser"),
        "unsubscribe": _("Unsubscribe from this newsletter"),
        "unsubscribe_note": _("You receive this email because you are on our mailing list."),
        "imprint": _("Legal notice"),
        "privacy": _("Privacy"),
        "upcoming_events": words.pgettext("newsletter section", "Upcoming events"),
        "add_to_calendar": _("Add to calendar"),
        "event_page": _("Event page"),
        "register": _("Registration"),
        "register_by_email": _("Register by email to"),
        "register_online": _("Register online"),
        "deadline": _("Register by"),
        "when": _("When"),
        "where": _("Where"),
        "join_online": _("Join online"),
        "online_link": _("Link to join"),
        "format_online": _("Online"),
        "format_in_person": _("In person"),
        "format_hybrid": _("Hybrid (in person and online)"),
        "cancelled": _("cancelled"),
        "cancelled_notice": _("This event has been cancelled."),
        "invitation": _("Invitation"),
        "cancellation": _("Cancelled"),
        "newsletter": _("Newsletter"),
        "archive": _("Archive"),
        "newsletters": _("Newsletters"),
        "events_upcoming": words.pgettext("archive heading", "Upcoming events"),
        "events_past": _("Past events"),
        "phone": _("Phone"),
        "image": _("Image"),
        "links": _("Links"),
        "skip_to_content": _("Skip to content"),
        "other_languages": _("Other languages"),
        "language_name": language_name(language if language in LANGUAGES else "de"),
        "all_events_calendar": _("Subscribe to the calendar of all events"),
        "google_calendar": _("Google Calendar"),
        "outlook_calendar": _("Outlook Calendar"),
        "subscribe_calendar": _("Subscribe to all events"),
        "change_time": _("Time"),
        "change_place": _("Place"),
        "change_format": _("New: {new} instead of {old}"),
        "change_link": _("New link to join"),
        "change_reinstated": _("The event is on again."),
        "mode_online": _("online"),
        "mode_in_person": _("in person"),
        "mode_hybrid": _("hybrid (in person and online)"),
    }

