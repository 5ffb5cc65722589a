"""The links beside an event in mails and pages: "In den Kalender" (.ics), Google, Outlook and the feed.

A label never names a domain (no "Outlook.com" for a link to outlook.live.com): spam filters such as
Rspamd score link text that names another domain than the link's own as phishing. Pure, like
:mod:`reallabor_mail.render.ics` whose URLs and times it uses; the renderer puts them into every event
view.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from reallabor_mail.content.loader import EventItem
from reallabor_mail.content.models import EventFrontMatter, EventStatus, Language, Site
from reallabor_mail.i18n.words import strings
from reallabor_mail.render.ics import event_ics_url, event_page_url, feed_url, place, utc


@dataclass(frozen=True)
class Link:
    """A labelled URL."""

    label: str
    url: str


def _google_url(meta: EventFrontMatter, details: str) -> str:
    stamp = "%Y%m%dT%H%M%SZ"
    query = {
        "action": "TEMPLATE",
        "text": meta.title,
        "dates": f"{utc(meta.start):{stamp}}/{utc(meta.end):{stamp}}",
        "ctz": str(meta.start.tzinfo),
        "details": details,
        "location": place(meta) or "",
    }
    return "https://calendar.google.com/calendar/render?" + urlencode(query, quote_via=quote)


def _outlook_url(meta: EventFrontMatter, details: str) -> str:
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    query = {
        "path": "/calendar/action/compose",
        "rru": "addevent",
        "subject": meta.title,
        "startdt": f"{utc(meta.start):{stamp}}",
        "enddt": f"{utc(meta.end):{stamp}}",
        "body": details,
        "location": place(meta) or "",
    }
    return "https://outlook.live.com/calendar/0/action/compose?" + urlencode(query, quote_via=quote)


def calendar_links(site: Site, event: EventItem, language: Language) -> tuple[Link, ...]:
    """"In den Kalender" (.ics), Google and Outlook add-links and the feed; none for a cancelled event."""
    meta = event.version(language).meta
    if meta.status is EventStatus.CANCELLED:
        return ()
    words = strings(language)
    # The add-links carry the event page as their text: URLs have length limits, and the text part of a
    # mail shows them in full. Times and place travel as their own parameters.
    details = event_page_url(site, event, language)
    return (
        Link(words["add_to_calendar"], event_ics_url(site, event, language)),
        Link(words["google_calendar"], _google_url(meta, details)),
        Link(words["outlook_calendar"], _outlook_url(meta, details)),
        Link(words["subscribe_calendar"], feed_url(site)),
    )
