"""What pages and emails show of a report: its title, opening sentence, date, author, photos and address.

The report lives on its event's page (``events/<stem>/``) once the event is over, so a report's
address is that page's and its PDF lies beside it (contract §2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from markupsafe import Markup

from reallabor_mail.content.loader import Content, EventItem, ReportItem, ShownPhoto
from reallabor_mail.content.markdown import LinkReferences
from reallabor_mail.content.models import Language
from reallabor_mail.i18n.dates import long_date
from reallabor_mail.render import paths as layout

REPORT_ANCHOR = "bericht"  # the report's section on its event's page

# A sentence ends at . ! ? (or …) followed by a space and a capital letter, a digit or an opening quote;
# "z. B. die" and "8. November" do not end one.
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[A-ZÄÖÜА-ЯЄІЇҐ0-9„“\"«])")
_ABBREVIATION = re.compile(r"(\b\w{1,3}\.|\d+\.)$")
_LINK_NUMBER = re.compile(r"\s?\[\d+\]")  # the plain text's footnote marks


def opening_sentence(text: str) -> str:
    """The first sentence of a text (spaces and link numbers dropped); the whole text if it has only one."""
    text = " ".join(_LINK_NUMBER.sub("", text).split())
    for match in _SENTENCE_END.finditer(text):
        candidate = text[: match.start()]
        if not _ABBREVIATION.search(candidate):
            return candidate
    return text


@dataclass(frozen=True)
class ReportView:
    """One report in one language, as the event page, the archive, the feed and the Rückblick show it."""

    stem: str
    title: str
    date_iso: str
    date_text: str
    author: str | None
    lead: str
    html: Markup
    photos: tuple[ShownPhoto, ...]
    url: str
    pdf_url: str


def report_view(content: Content, report: ReportItem, language: Language) -> ReportView:
    """A report in ``language`` (else the site language), linked to its event's page in that language."""
    version = report.version(language)
    event: EventItem = content.event_of(report)
    shown = event.version(version.language).language  # the event page in the report's language, if there is one
    page = layout.event_file(report.stem, "index.html", shown, event.default_language)
    return ReportView(
        stem=report.stem,
        title=version.meta.title,
        date_iso=version.meta.date.isoformat(),
        date_text=long_date(version.meta.date, language),
        author=version.meta.author,
        lead=opening_sentence(version.body.intro.text(LinkReferences())),
        html=version.body.html,
        photos=version.photos,
        url=layout.url(content.site.public_url, page),
        pdf_url=layout.url(content.site.public_url, layout.report_pdf(report.stem, shown, event.default_language)),
    )
