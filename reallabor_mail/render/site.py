"""The public web pages: newsletter web versions, event pages, the archive and the Atom feed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup

from reallabor_mail.content.loader import EventItem, Item, NewsletterItem
from reallabor_mail.content.models import Language
from reallabor_mail.i18n.dates import long_date
from reallabor_mail.i18n.messages import language_name, translations
from reallabor_mail.render import paths as layout
from reallabor_mail.render.engine import Renderer


@dataclass(frozen=True)
class Alternate:
    lang: str
    name: str
    url: str


class SitePages:
    """Renders the web pages of the archive with the same templates folder as the emails."""

    def __init__(self, renderer: Renderer, today: dt.date) -> None:
        self.renderer = renderer
        self.site = renderer.site
        self.today = today

    def _context(self, language: Language, page_title: str, alternates: list[Alternate]) -> dict[str, Any]:
        public = self.site.public_url
        return {
            **self.renderer.base_context(language),
            "page_title": page_title,
            "description": "",
            "alternates": alternates,
            "archive_url": layout.url(public, layout.ARCHIVE),
            "feed_url": layout.url(public, layout.ATOM_FEED),
        }

    def _alternates(self, item: Item[Any], kind: str) -> list[Alternate]:
        if len(item.versions) < 2:
            return []
        file = layout.newsletter_file if kind == "newsletter" else layout.event_file
        return [
            Alternate(
                lang,
                language_name(lang),
                layout.url(self.site.public_url, file(item.stem, "index.html", lang, item.default_language)),
            )
            for lang in item.versions
        ]

    def newsletter_page(self, item: NewsletterItem, language: Language) -> str:
        version = item.version(language)
        context = self._context(language, version.meta.title, self._alternates(item, "newsletter"))
        context.update(
            description=version.meta.preheader or "",
            date_iso=version.meta.date.isoformat(),
            date_text=long_date(version.meta.date, language),
            body=version.body.html,
            events=[self.renderer.event_view(e, language) for e in self.renderer.upcoming(item)],
        )
        return self.renderer.templates.render("web/newsletter.html.j2", context)

    def event_page(self, event: EventItem, language: Language) -> str:
        view = self.renderer.event_view(event, language)
        context = self._context(language, view.title, self._alternates(event, "event"))
        context.update(description=view.date_line, event=view, body=event.version(language).body.html)
        return self.renderer.templates.render("web/event.html.j2", context)

    def archive_page(self) -> str:
        language = self.site.language
        words = translations(language)
        content = self.renderer.content
        newsletters = [
            {
                "title": n.meta.title,
                "url": layout.url(
                    self.site.public_url, layout.newsletter_file(n.stem, "index.html", language, language)
                ),
                "date_iso": n.meta.date.isoformat(),
                "date_text": long_date(n.meta.date, language),
                "translations": [a for a in self._alternates(n, "newsletter") if a.lang != language],
            }
            for n in content.newsletters
        ]
        upcoming = [e for e in content.events if e.meta.end.date() >= self.today]
        past = [e for e in reversed(content.events) if e.meta.end.date() < self.today]
        groups = [
            {
                "id": layout.UPCOMING_ANCHOR,
                "title": words.pgettext("archive heading", "Upcoming events"),
                "events": [self.renderer.event_view(e, language) for e in upcoming],
            },
            {
                "id": "vergangene",
                "title": words.gettext("Past events"),
                "events": [self.renderer.event_view(e, language) for e in past],
            },
        ]
        title = words.gettext("{sender}: Archive").format(sender=self.site.sender.name)
        context = self._context(language, title, [])
        context.update(newsletters=newsletters, event_groups=groups)
        return self.renderer.templates.render("web/index.html.j2", context)

    def atom_feed(self) -> str:
        """Atom feed of the newsletters; ``updated`` comes from publication dates, not the clock."""
        language = self.site.language
        zone = ZoneInfo(self.site.timezone)

        def stamp(day: dt.date) -> str:
            return dt.datetime.combine(day, dt.time(8, 0), zone).isoformat()

        entries = []
        for n in self.renderer.content.newsletters:
            url = layout.url(self.site.public_url, layout.newsletter_file(n.stem, "index.html", language, language))
            entries.append(
                {
                    "title": n.meta.title,
                    "id": url,
                    "url": url,
                    "updated": stamp(n.meta.date),
                    "summary": n.meta.preheader or n.main.body.first_sentence,
                    "body": str(Markup(n.main.body.html)),
                }
            )
        newest = max((n.meta.date for n in self.renderer.content.newsletters), default=dt.date(2000, 1, 1))
        context = self._context(language, translations(language).gettext("Newsletters"), [])
        context.update(
            feed_id=layout.url(self.site.public_url, layout.ATOM_FEED),
            updated=stamp(newest),
            newsletters=entries,
        )
        return self.renderer.templates.render("feed.xml.j2", context)
