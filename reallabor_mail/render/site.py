"""The public web pages: newsletter web versions, event pages, the archive and the Atom feed.

An event's page invites until the event is over (its end before the build's day); then it shows the
event's report, or says plainly that there is none, with the event's facts kept as a small block.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup

from reallabor_mail.content.loader import EventItem, Item, NewsletterItem, ReportItem
from reallabor_mail.content.models import Language
from reallabor_mail.i18n.dates import long_date
from reallabor_mail.i18n.messages import language_name, translations
from reallabor_mail.render import paths as layout
from reallabor_mail.render.engine import Renderer
from reallabor_mail.render.reports import REPORT_ANCHOR, report_view


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
            reviews=[report_view(self.renderer.content, r, language) for r in self.renderer.review(item)],
        )
        return self.renderer.templates.render("web/newsletter.html.j2", context)

    def is_over(self, event: EventItem) -> bool:
        """Whether an event has ended before the build's day: its page then reports instead of inviting."""
        return event.meta.end.date() < self.today

    def printed_report(self, event: EventItem) -> bool:
        """Whether the event's page shows a report (and ``build`` prints it as a PDF beside the page)."""
        return self.is_over(event) and self.renderer.content.report_of(event) is not None

    def published_reports(self) -> list[ReportItem]:
        """The reports the archive and the feed carry: those whose event is over, oldest first."""
        content = self.renderer.content
        return [r for r in content.reports if self.is_over(content.event_of(r))]

    def event_page(self, event: EventItem, language: Language) -> str:
        view = self.renderer.event_view(event, language)
        report = self.renderer.content.report_of(event) if self.is_over(event) else None
        shown = report_view(self.renderer.content, report, language) if report is not None else None
        title = shown.title if shown is not None else view.title
        context = self._context(language, title, self._alternates(event, "event"))
        context.update(
            description=shown.lead if shown is not None else view.date_line,
            event=view,
            body=event.version(language).body.html,
            over=self.is_over(event),
            report=shown,
            report_anchor=REPORT_ANCHOR,
        )
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
        reports = [report_view(content, r, language) for r in reversed(self.published_reports())]
        title = words.gettext("{sender}: Archive").format(sender=self.site.sender.name)
        context = self._context(language, title, [])
        context.update(newsletters=newsletters, event_groups=groups, reports=reports)
        return self.renderer.templates.render("web/index.html.j2", context)

    def atom_feed(self) -> str:
        """Atom feed of the newsletters and published reports; ``updated`` comes from their dates, not the clock."""
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
        content = self.renderer.content
        published = self.published_reports()
        for r in published:
            report = report_view(content, r, language)
            entries.append(
                {
                    "title": report.title,
                    "id": report.url,
                    "url": report.url,
                    "updated": stamp(r.meta.date),
                    "summary": report.lead,
                    "body": str(report.html),
                }
            )
        entries.sort(key=lambda entry: entry["updated"], reverse=True)
        dates = [n.meta.date for n in content.newsletters] + [r.meta.date for r in published]
        newest = max(dates, default=dt.date(2000, 1, 1))
        context = self._context(language, translations(language).gettext("Newsletters"), [])
        context.update(
            feed_id=layout.url(self.site.public_url, layout.ATOM_FEED),
            updated=stamp(newest),
            newsletters=entries,
        )
        return self.renderer.templates.render("feed.xml.j2", context)
