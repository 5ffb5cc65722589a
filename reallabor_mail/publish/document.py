"""The bound record (``reallabor-mail document``): everything of a project period in one A4 PDF.

A title page (organisation, project, funder, period), a table of contents with page numbers, then
every newsletter and every event of the period in date order, each event with its report and the
counts the state knows (handed in by the command: this layer does not read the mailbox tables).
WeasyPrint prints it, as it prints the report pages: ``target-counter()`` puts the page numbers in
the contents and ``bookmark-level`` makes exactly the contents' entries the PDF's bookmarks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup

from reallabor_mail.content.loader import Content, EventItem, Kind, NewsletterItem
from reallabor_mail.content.models import Language
from reallabor_mail.errors import ReallaborError
from reallabor_mail.i18n.dates import long_date, plain_date
from reallabor_mail.i18n.messages import _, translations
from reallabor_mail.publish.reports import pdf
from reallabor_mail.render.engine import Renderer
from reallabor_mail.render.reports import report_view


@dataclass(frozen=True)
class Counts:
    """What the state knows of one newsletter or event: messages sent and, for an event, the calendar answers."""

    sent: int
    accepted: int | None = None
    tentative: int | None = None
    declined: int | None = None


@dataclass(frozen=True)
class Entry:
    """One newsletter or event of the record, as the template shows it."""

    anchor: str
    kind: str
    title: str
    day: str  # 19.09.2023: the contents and the bookmarks tell the many "Kollegialer Austausch" apart by it
    date_text: str
    facts: str
    html: Markup
    counts: str | None
    report: Any = None  # a ReportView
    no_report: bool = False


def record_key(item: NewsletterItem | EventItem) -> str:
    """How the command keys its counts: ``newsletter:2023-3``, ``event:2023-09-19-kollegialer-austausch``."""
    return f"{item.kind}:{item.stem}"


def _counts_line(
    known: Mapping[str, Counts] | None, item: NewsletterItem | EventItem, language: Language
) -> str | None:
    """What the state knows of an item, as a line of the record; None without a state file."""
    if known is None:
        return None
    counts = known.get(record_key(item), Counts(0))
    words = translations(language)
    if item.kind is Kind.NEWSLETTER:
        return words.ngettext("Sent to {count} recipient", "Sent to {count} recipients", counts.sent).format(
            count=counts.sent
        )
    sent = words.ngettext("{count} invitation sent", "{count} invitations sent", counts.sent).format(count=counts.sent)
    answers = words.gettext("calendar answers: {accepted} accepted, {tentative} tentative, {declined} declined")
    return f"{sent} · " + answers.format(
        accepted=counts.accepted or 0, tentative=counts.tentative or 0, declined=counts.declined or 0
    )


def entries(
    content: Content, renderer: Renderer, start: dt.date, end: dt.date, language: Language,
    counts: Mapping[str, Counts] | None,
) -> list[tuple[dt.date, Entry]]:
    """The newsletters (by date) and events (by start) from ``start`` to ``end``, oldest first."""
    words = translations(language)
    found: list[tuple[dt.date, Entry]] = []
    for n in content.newsletters:
        if not start <= n.meta.date <= end:
            continue
        version = n.version(language)
        found.append((n.meta.date, Entry(
            anchor=f"newsletter-{n.stem}", kind=words.gettext("Newsletter"), title=version.meta.title,
            day=f"{n.meta.date:%d.%m.%Y}",
            date_text=long_date(n.meta.date, language), facts="", html=version.body.html,
            counts=_counts_line(counts, n, language),
        )))  # fmt: skip
    for e in content.events:
        day = e.meta.start.date()
        if not start <= day <= end:
            continue
        view = renderer.event_view(e, language)
        report = content.report_of(e)
        found.append((day, Entry(
            anchor=f"event-{e.stem}", kind=view.kind or words.gettext("Event"), title=view.title, day=f"{day:%d.%m.%Y}",
            date_text=view.date_line, facts=view.format_label + (f" · {view.location}" if view.location else ""),
            html=e.version(language).body.html,
            counts=_counts_line(counts, e, language),
            report=report_view(content, report, language) if report is not None else None,
            no_report=report is None,
        )))  # fmt: skip
    found.sort(key=lambda pair: pair[0])
    return found


def bound_record(
    content: Content, templates: Path, *, start: dt.date, end: dt.date, language: Language,
    counts: Mapping[str, Counts] | None,
) -> bytes:
    """The PDF of everything from ``start`` to ``end`` in ``language``; ``counts`` None: no state file was found."""
    if start > end:
        raise ReallaborError(_("--from {start} is after --to {end}; swap them", start=start, end=end))
    renderer = Renderer(content, templates)
    found = entries(content, renderer, start, end, language, counts)
    if not found:
        raise ReallaborError(_(
            "--from {start} --to {end}: no newsletter or event in this period; choose a period the content covers",
            start=start, end=end,
        ))  # fmt: skip
    context = {
        **renderer.base_context(language),
        "period": f"{plain_date(start, language)} – {plain_date(end, language)}",
        "entries": [entry for _day, entry in found],
        "with_counts": counts is not None,
    }
    html = renderer.templates.render("print/document.html.j2", context, language)
    return pdf(html, content, created=end)
