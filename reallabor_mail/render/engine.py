"""Render content into email HTML (Jinja → MJML → HTML → inlined CSS) and plain text.

An email is rendered once per campaign and language. The personal parts (greeting, unsubscribe link)
are placeholders filled in per recipient by :meth:`RenderedEmail.personalise`, so sending 10,000
messages renders MJML once, not 10,000 times.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import posixpath
import re
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, cast
from urllib.parse import urlsplit

import cssutils
import jinja2
from markupsafe import Markup
from mjml import mjml2html
from premailer import Premailer

from reallabor_mail.content.loader import Content, EventItem, NewsletterItem, ReportItem, Version
from reallabor_mail.content.markdown import LinkReferences
from reallabor_mail.content.models import EventFormat, EventFrontMatter, EventStatus, Language, Newsletter
from reallabor_mail.errors import Code, Problem, ReallaborError
from reallabor_mail.i18n.dates import date_line, long_date
from reallabor_mail.i18n.messages import _, current_staff_language, translations
from reallabor_mail.render import paths as layout
from reallabor_mail.render.calendar_links import Link, calendar_links
from reallabor_mail.render.reports import report_view

GREETING_MARK = "__RLM_GREETING__"
UNSUBSCRIBE_MARK = "__RLM_UNSUBSCRIBE__"

SIZE_WARNING_BYTES = 80 * 1024  # Gmail clips at about 102 KB; leave room for headers and encoding.

# premailer checks every inline style against cssutils' CSS profiles, although we pass disable_validation
# (its merge_styles does not hand the flag on). The check only logs, at a level premailer silences here,
# so all it does is compile cssutils' property patterns on first use: about 0.08 s of every process that
# renders (`send`, `check`). Without profiles cssutils checks nothing; the HTML is the same (issue 16).
cssutils.profile.removeProfile(all=True)

SHIPPED_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
UPCOMING_DAYS = 120  # a newsletter lists the events of about four months (or until the next issue)
UPCOMING_LIMIT = 8  # at most this many; the archive and the calendar feed have all of them

_DOCTYPE = "<!DOCTYPE html>\n"
_MRML_PREVIEW_STYLE = '<div style="display:none;font-size:1px;color:#ffffff;line-height:1px;'
_PREVIEW_STYLE = '<div style="display:none;mso-hide:all;font-size:1px;color:#4a5568;line-height:1px;'


class RenderError(ReallaborError):
    """A template or MJML error, located in the template file."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(str(problem))


@dataclass(frozen=True)
class RenderedEmail:
    """One campaign's email in one language, with placeholders for the personal parts."""

    language: Language
    subject: str
    preheader: str
    html: str
    text: str
    web_url: str

    def personalise(self, greeting: str, unsubscribe_url: str) -> tuple[str, str]:
        """HTML and text for one recipient: only string substitution, no rendering."""
        body_html = self.html.replace(GREETING_MARK, html.escape(greeting, quote=False)).replace(
            UNSUBSCRIBE_MARK, html.escape(unsubscribe_url)
        )
        body_text = self.text.replace(GREETING_MARK, greeting).replace(UNSUBSCRIBE_MARK, unsubscribe_url)
        return body_html, body_text

    @property
    def html_size(self) -> int:
        return len(self.html.encode("utf-8"))


@dataclass(frozen=True)
class RegistrationView:
    email: str | None
    url: str | None
    deadline: str | None
    form_url: str | None = None  # the public server's form (``registration: form``)


@dataclass(frozen=True)
class EventView:
    """What templates show of an event, in one language."""

    stem: str
    title: str
    kind: str | None
    cancelled: bool
    date_line: str
    format_label: str
    location: str | None
    online_url: str | None
    registration: RegistrationView | None
    page_url: str
    calendar_links: tuple[Link, ...] = ()

    @property
    def online_host(self) -> str:
        return urlsplit(self.online_url).hostname or "" if self.online_url else ""


@dataclass(frozen=True)
class SectionView:
    title: Markup | str
    html: Markup
    text: str


def _template_location(exc: BaseException, templates: Path) -> tuple[str, int | None]:
    """The template file and line a Jinja error happened in."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        name = exc.filename or exc.name or "?"
        return name, exc.lineno
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith(".j2"):
            return frame.filename, frame.lineno
    return str(templates), None


def _unreadable_template(exc: UnicodeDecodeError, fallback: Path) -> Problem:
    """The template file Jinja's loader failed to decode (the loader's frame knows which one)."""
    tb = exc.__traceback__
    filename: object = str(fallback)
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "get_source":
            filename = tb.tb_frame.f_locals.get("filename", filename)
        tb = tb.tb_next
    return Problem(str(filename), None, _("the template is not UTF-8; save it as UTF-8"), Code.TEMPLATE_NOT_UTF8)


class _CompiledOnce(jinja2.BytecodeCache):
    """Compiled templates shared by the environments of one :class:`Templates`, in memory.

    The environments differ only in the catalog installed, not in the code a template compiles to, so each
    template is compiled once, not once per language. Jinja checks the source's checksum before reusing.
    """

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


@dataclass
class Templates:
    """The Jinja environments of a templates folder: strict undefined, autoescape for HTML and MJML.

    One environment per language, each with that language's catalog installed for ``{% trans %}``
    and ``_()``, so pages in different languages can render side by side. A folder other than the
    shipped one overrides the shipped templates file by file (that folder first, then the package's),
    so staff copy only the template they change.
    """

    root: Path
    folders: list[Path] = field(init=False, default_factory=list)  # where templates are looked up, in order
    _environments: dict[Language, jinja2.Environment] = field(init=False, default_factory=dict)
    _compiled: _CompiledOnce = field(init=False, default_factory=_CompiledOnce)

    def __post_init__(self) -> None:
        if not self.root.is_dir():
            message = _("not a templates folder (not found); pass --templates DIR")
            raise RenderError(Problem(str(self.root), None, message, Code.TEMPLATES_FOLDER_MISSING))
        shipped_only = self.root.resolve() == SHIPPED_TEMPLATES
        self.folders = [self.root] if shipped_only else [self.root, SHIPPED_TEMPLATES]

    def environment(self, language: Language) -> jinja2.Environment:
        if language not in self._environments:
            env = jinja2.Environment(
                loader=jinja2.FileSystemLoader([str(folder) for folder in self.folders]),
                undefined=jinja2.StrictUndefined,
                autoescape=lambda name: name is not None and name.endswith((".mjml.j2", ".html.j2", ".xml.j2")),
                trim_blocks=True,
                lstrip_blocks=True,
                keep_trailing_newline=True,
                extensions=["jinja2.ext.i18n"],
                bytecode_cache=self._compiled,
            )
            # the i18n extension adds this method at run time, so the type stubs do not know it
            cast(Any, env).install_gettext_translations(translations(language), newstyle=True)
            self._environments[language] = env
        return self._environments[language]

    def render(self, name: str, context: dict[str, Any], language: Language | None = None) -> str:
        """Render a template in ``language`` (else the context's ``lang``, else the staff language).

        Any template error becomes a RenderError naming the template and line.
        """
        language = language or context.get("lang") or current_staff_language()
        try:
            return self.environment(language).get_template(name).render(context)
        except jinja2.TemplateNotFound as exc:
            message = _("template {name!r} not found", name=exc.name)
            raise RenderError(Problem(str(self.root / name), None, message, Code.TEMPLATE_NOT_FOUND)) from None
        except UnicodeDecodeError as exc:
            raise RenderError(_unreadable_template(exc, self.root / name)) from None
        except jinja2.TemplateError as exc:
            where, line = _template_location(exc, self.root)
            message = _("template error: {detail}", detail=exc.message or exc)
            raise RenderError(Problem(where, line, message, Code.TEMPLATE_ERROR)) from None


StyleRules = tuple[list[Any], list[Any]]  # what premailer makes of one <style> block: rules to inline, leftover


class _Inliner(Premailer):  # type: ignore[misc]  # premailer is untyped
    """premailer that turns each distinct ``<style>`` block into rules once per :class:`Renderer`, not per email.

    premailer caches the parsed stylesheet but walks it and serialises every declaration again for each
    email (about half of its time over an archive); the emails of one template share their ``<style>``
    blocks, so the rules are the same. The rules depend only on the block's text, its position and the
    options, which are fixed here.
    """

    def __init__(self, html: str, style_rules: dict[tuple[str, int], StyleRules]) -> None:
        super().__init__(
            html,
            keep_style_tags=True,
            allow_network=False,
            remove_classes=False,
            strip_important=False,
            disable_validation=True,
            disable_basic_attributes=["height"],  # CSS "height: auto" would become the invalid height="auto"
            cssutils_logging_level=logging.CRITICAL,
        )
        self._style_rules = style_rules

    def _parse_style_rules(self, css_body: str, ruleset_index: int) -> StyleRules:
        key = (css_body, ruleset_index)
        if key not in self._style_rules:
            self._style_rules[key] = super()._parse_style_rules(css_body, ruleset_index)
        rules, leftover = self._style_rules[key]
        return list(rules), list(leftover)


def mjml_to_html(source: str, template: str, style_rules: dict[tuple[str, int], StyleRules] | None = None) -> str:
    """MJML → HTML with CSS inlined; keeps ``@media`` rules and the doctype, fetches nothing.

    ``style_rules``: the rules of the ``<style>`` blocks already seen, kept by the caller across its emails.
    """
    try:
        raw = mjml2html(source, fonts={}, disable_comments=True)
    except ValueError as exc:
        raise RenderError(Problem(template, None, _("MJML error: {detail}", detail=exc), Code.MJML_ERROR)) from None
    if "<mj-" in raw:
        tag = raw[raw.index("<mj-") :].split(">", 1)[0] + ">"
        message = _("unknown MJML tag {tag}; check its spelling", tag=tag)
        raise RenderError(Problem(template, None, message, Code.UNKNOWN_MJML_TAG))
    # MRML hides the preheader as white text, which spam filters score as hidden low-contrast text
    # (SpamAssassin HTML_FONT_LOW_CONTRAST); it is display:none anyway, and Outlook needs mso-hide.
    raw = raw.replace(_MRML_PREVIEW_STYLE, _PREVIEW_STYLE, 1)
    inlined: str = _Inliner(raw, {} if style_rules is None else style_rules).transform(pretty_print=False)
    if inlined.lstrip().lower().startswith("<!doctype"):
        return inlined
    return _DOCTYPE + inlined


class Renderer:
    """Turns validated content into emails and pages; knows nothing about recipients or I/O."""

    def __init__(self, content: Content, templates: Path | Templates) -> None:
        """``templates``: a folder, or its templates already compiled (the preview keeps them between reloads)."""
        self.content = content
        self.site = content.site
        self.templates = templates if isinstance(templates, Templates) else Templates(templates)
        self._event_views: dict[tuple[str, Language], EventView] = {}
        self._style_rules: dict[tuple[str, int], StyleRules] = {}  # the emails' <style> blocks, inlined once

    # --- views -----------------------------------------------------------------------------------

    def base_context(self, language: Language) -> dict[str, Any]:
        return {
            "site": self.site,
            "lang": language,
            "calendar_url": layout.url(self.site.public_url, layout.CALENDAR_FEED),
            "all_events_url": layout.url(self.site.public_url, layout.ARCHIVE) + "#" + layout.UPCOMING_ANCHOR,
        }

    def event_view(self, event: EventItem, language: Language) -> EventView:
        """What templates show of an event; made once per event and language (an archive's newsletters,
        pages and lists show the same events thousands of times)."""
        key = (event.stem, language)
        if key not in self._event_views:
            self._event_views[key] = self._make_event_view(event, language)
        return self._event_views[key]

    def _make_event_view(self, event: EventItem, language: Language) -> EventView:
        version: Version[EventFrontMatter] = event.version(language)
        meta = version.meta
        registration = None
        if meta.registration is not None:
            deadline = meta.registration.deadline
            registration = RegistrationView(
                email=meta.registration.email,
                url=str(meta.registration.url) if meta.registration.url else None,
                deadline=long_date(deadline, language) if deadline else None,
                form_url=(
                    layout.registration_url(self.site.public_url, event.stem, language)
                    if meta.registration.form else None
                ),
            )
        # the page in this language if the event has one, else the original's (no index.uk.html to link to)
        page = layout.event_file(event.stem, "index.html", version.language, event.default_language)
        return EventView(
            stem=event.stem,
            title=meta.title,
            kind=meta.kind,
            cancelled=meta.status is EventStatus.CANCELLED,
            date_line=date_line(meta.start, meta.end, self.site.partner_timezone, language),
            format_label=format_label(meta.format, language),
            location=meta.location if meta.format is not EventFormat.ONLINE else None,
            online_url=str(meta.online_url) if meta.online_url else None,
            registration=registration,
            page_url=layout.url(self.site.public_url, page),
            calendar_links=calendar_links(self.site, event, language),
        )

    @staticmethod
    def _sections(version: Version[Any]) -> tuple[Markup, str, list[SectionView], LinkReferences]:
        refs = LinkReferences()
        intro_html = version.body.intro.html
        intro_text = version.body.intro.text(refs)
        sections = [SectionView(s.title_html, s.html, s.text(refs)) for s in version.body.sections]
        return intro_html, intro_text, sections, refs

    def _text_sections(self, sections: list[SectionView], version: Version[Any]) -> list[SectionView]:
        return [
            SectionView(s.title_text, v.html, v.text)
            for s, v in zip(version.body.sections, sections, strict=True)
        ]

    # --- emails ----------------------------------------------------------------------------------

    def _email(
        self, kind: str, language: Language, subject: str, preheader: str, web_url: str, context: dict[str, Any],
        version: Version[Any],
    ) -> RenderedEmail:
        intro_html, intro_text, sections, refs = self._sections(version)
        context = {
            **self.base_context(language),
            **context,
            "subject": subject,
            "preheader": preheader,
            "web_url": web_url,
            "intro": intro_html,
            "sections": sections,
            "unsubscribe_label": self._unsubscribe_label(version.meta.lists, language),
        }
        name = f"email/{kind}.mjml.j2"
        html_out = mjml_to_html(
            self.templates.render(name, context), str(self.templates.root / name), self._style_rules
        )
        text_context = {
            **context,
            "intro": intro_text,
            "sections": self._text_sections(sections, version),
            "links": refs.footnotes(),
        }
        text_out = _tidy_text(self.templates.render(f"email/{kind}.txt.j2", text_context))
        return RenderedEmail(language, subject, preheader, html_out, text_out, web_url)

    def _unsubscribe_label(self, lists: Sequence[str], language: Language) -> str:
        """The footer's unsubscribe link names the list the mail went to (an invitation is no newsletter)."""
        words = translations(language)
        if len(lists) == 1:
            return words.gettext("Unsubscribe from “{list}”").format(list=self.site.list_label(lists[0], language))
        return words.gettext("Unsubscribe")

    def newsletter_email(self, item: NewsletterItem, language: Language) -> RenderedEmail:
        version: Version[Newsletter] = item.version(language)
        meta = version.meta
        preheader = meta.preheader or version.body.first_sentence
        events = [self.event_view(e, language) for e in self.upcoming(item)]
        web = layout.newsletter_file(item.stem, "index.html", language, item.default_language)
        kicker = translations(language).gettext("Newsletter · {date}").format(date=long_date(meta.date, language))
        return self._email(
            "newsletter",
            language,
            subject=meta.title,
            preheader=preheader,
            web_url=layout.url(self.site.public_url, web),
            context={
                "kicker": kicker,
                "heading": meta.title,
                "events": events,
                "reviews": [report_view(self.content, r, language) for r in self.review(item)],
            },
            version=version,
        )

    def invitation_email(
        self, event: EventItem, language: Language, changes: Sequence[str] = ()
    ) -> RenderedEmail:
        """The invitation (or, for a cancelled event, the cancellation) in one language.

        ``changes`` lists what changed since the last invitation went out ("Neu: online statt in Präsenz").
        """
        view = self.event_view(event, language)
        version: Version[EventFrontMatter] = event.version(language)
        words = translations(language)
        if view.cancelled:
            label = words.gettext("Cancelled")
            subject = words.gettext("Cancelled: {title}").format(title=view.title)
        elif changes:  # an update: the subject says so, the change block comes first under its heading
            label = words.gettext("Changed")
            subject = words.gettext("Changed: {title}").format(title=view.title)
        else:
            label = view.kind or words.gettext("Invitation")
            subject = words.gettext("Invitation: {title}").format(title=view.title)
        preheader = f"{view.date_line} · {view.format_label}"
        web = layout.event_file(event.stem, "index.html", language, event.default_language)
        return self._email(
            "invitation",
            language,
            subject=subject,
            preheader=preheader,
            web_url=layout.url(self.site.public_url, web),
            context={"kicker": label, "heading": view.title, "event": view, "changes": list(changes)},
            version=version,
        )

    def upcoming(self, item: NewsletterItem) -> list[EventItem]:
        """The events a newsletter lists: after its date, within its window, at most ``UPCOMING_LIMIT``.

        The window is ``upcoming_days`` when the issue sets it, else until the next issue appears
        (at most ``UPCOMING_DAYS``): the next issue lists what comes after.
        """
        meta = item.meta
        if not meta.upcoming_events:
            return []
        if meta.upcoming_days is not None:
            until = meta.date + dt.timedelta(days=meta.upcoming_days)
        else:
            later = [n.meta.date for n in self.content.newsletters if n.meta.date > meta.date]
            until = min([meta.date + dt.timedelta(days=UPCOMING_DAYS), *later])
        window = [e for e in self.content.upcoming_events(meta.date) if e.meta.start.date() <= until]
        return window[:UPCOMING_LIMIT]

    def review(self, item: NewsletterItem) -> list[ReportItem]:
        """The reports of a newsletter's Rückblick (``review: true``): since the previous issue, up to this one."""
        return self.content.review(item) if item.meta.review else []

    def reminder_email(self, event: EventItem, language: Language) -> RenderedEmail:
        """The reminder a while before an event: when (both zones), the link or the address, the calendar links."""
        view = self.event_view(event, language)
        words = translations(language)
        return self._email(
            "reminder",
            language,
            subject=words.gettext("Reminder: {title}").format(title=view.title),
            preheader=f"{view.date_line} · {view.format_label}",
            web_url=view.page_url,
            context={"kicker": words.gettext("Reminder"), "heading": view.title, "event": view},
            version=event.version(language),
        )


def format_label(event_format: EventFormat, language: Language) -> str:
    """How an event takes place, as its facts table says it: ``Online``, ``In Präsenz``, ``Hybrid (…)``."""
    words = translations(language)
    labels = {
        EventFormat.ONLINE: words.gettext("Online"),
        EventFormat.IN_PERSON: words.gettext("In person"),
        EventFormat.HYBRID: words.gettext("Hybrid (in person and online)"),
    }
    return labels[event_format]


def _tidy_text(text: str) -> str:
    """Collapse runs of blank lines the templates leave and strip trailing spaces (not the sig dash)."""
    lines = [line if line == "-- " else line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line == "" and out and out[-1] == "":
            continue
        out.append(line)
    while out and out[0] == "":
        out.pop(0)
    return "\n".join(out).rstrip("\n") + "\n"


def with_local_images(page: str, public_url: str, at: PurePosixPath) -> str:
    """A built page whose images load from the build folder beside it, for opening it from disk.

    ``at`` is the page's path in the build; images under ``public_url`` get a path relative to it,
    which also works on the web server (the build is published at ``public_url``). What is sent
    keeps the absolute addresses.
    """
    folder = at.parent.as_posix() or "."

    def relative(match: re.Match[str]) -> str:
        return f'src="{posixpath.relpath(match.group(1), folder)}"'

    return re.sub(r'src="' + re.escape(public_url) + r'/([^"#?]+)"', relative, page)
