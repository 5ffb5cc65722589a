"""``build`` and ``check``: read → validate → render everything in memory → write (only if all is well).

Like MkDocs' build and Pelican's generate_context before generate_output: every file is rendered
before the first is written, so content with errors leaves the previous build untouched.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from zoneinfo import ZoneInfo

from reallabor_mail.content.images import published
from reallabor_mail.content.loader import Content, EventItem, NewsletterItem, load_content
from reallabor_mail.content.models import Language, Newsletter
from reallabor_mail.errors import Code, OutputError, Problem, ProblemLog, display_path
from reallabor_mail.i18n.greetings import greeting
from reallabor_mail.i18n.messages import _, os_reason
from reallabor_mail.mail.message import CalendarPart, Campaign, as_bytes, build_message
from reallabor_mail.recipients.person import Recipient
from reallabor_mail.render import ics as calendar
from reallabor_mail.render import paths as layout
from reallabor_mail.render.engine import (
    SHIPPED_TEMPLATES,
    SIZE_WARNING_BYTES,
    RenderedEmail,
    Renderer,
    RenderError,
    with_local_images,
)
from reallabor_mail.render.site import SitePages

# Who the preview messages are addressed to: one plausible reader per language.
SAMPLE_RECIPIENTS: dict[Language, Recipient] = {
    "de": Recipient("beate.beispiel@example.org", "Frau", "Dr.", "Beate", "Beispiel", "Stadt Musterstadt", "de"),
    "uk": Recipient("olena.prykladna@example.org", "Frau", None, "Олена", "Прикладна", "Громада", "uk"),
    "en": Recipient("alex.example@example.org", None, None, "Alex", "Example", "Example Town", "en"),
}
PREVIEW_SECRET = b"reallabor-preview"  # previews are public files; real sends use REALLABOR_SECRET


def default_templates() -> Path:
    """The templates shipped in the package (a ``--templates`` folder overrides them file by file)."""
    return SHIPPED_TEMPLATES


@dataclass
class Output:
    """Everything a build writes, held in memory until it is complete.

    ``files`` hold what is published (absolute ``public_url`` addresses, as sent); the ``pages`` among
    them are written to disk with their images relative to the build, so they show when opened from disk.
    """

    public_url: str = ""
    files: dict[PurePosixPath, bytes] = field(default_factory=dict)
    pages: set[PurePosixPath] = field(default_factory=set)

    def add(self, path: PurePosixPath, data: str | bytes) -> None:
        self.files[path] = data.encode("utf-8") if isinstance(data, str) else data

    def add_page(self, path: PurePosixPath, html: str) -> None:
        self.add(path, html)
        self.pages.add(path)

    def on_disk(self, path: PurePosixPath) -> bytes:
        """The bytes of a file as ``build`` writes it."""
        data = self.files[path]
        if path not in self.pages:
            return data
        return with_local_images(data.decode("utf-8"), self.public_url, path).encode("utf-8")


@dataclass(frozen=True)
class BuildResult:
    out: Path
    written: int
    warnings: tuple[Problem, ...]


def preview_date(item: NewsletterItem | EventItem, zone: str) -> dt.datetime:
    """A send date taken from the content, so previews are byte-identical across builds."""
    meta = item.meta
    day = meta.date if isinstance(meta, Newsletter) else meta.start.date() - dt.timedelta(days=14)
    return dt.datetime.combine(day, dt.time(9, 0), ZoneInfo(zone))


def unsubscribe_preview_url(public_url: str) -> str:
    return f"{public_url}/unsubscribe/preview"


class Builder:
    """Renders every output of contract §2 into an :class:`Output`, collecting problems.

    ``sent`` holds the last version sent of each event (read from the state by the caller): downloads
    carry its SEQUENCE and DTSTAMP. Before any send their DTSTAMP is the preview date or, if that is
    later, the start of the build's day (``now``, default the start of ``today``), so it is never later
    than the build and the same day's builds are byte-identical.
    """

    def __init__(
        self, content: Content, templates: Path, today: dt.date, *, now: dt.datetime | None = None,
        sent: Mapping[str, calendar.SentVersion] | None = None,
    ) -> None:
        self.content = content
        zone = ZoneInfo(content.site.timezone)
        moment = now.astimezone(zone) if now is not None else dt.datetime.combine(today, dt.time(0), zone)
        self.build_day = dt.datetime.combine(moment.date(), dt.time(0), zone)
        self.sent = dict(sent or {})
        self.renderer = Renderer(content, templates)
        self.pages = SitePages(self.renderer, today)
        self.problems = ProblemLog()
        self.problems.extend(content.warnings)
        self.output = Output(content.site.public_url)

    def published(self, event: EventItem) -> calendar.Published:
        """SEQUENCE and DTSTAMP of the event's downloads (event.ics, its entry in calendar.ics)."""
        unsent = min(preview_date(event, self.content.site.timezone), self.build_day)
        return calendar.Published.of(event, self.sent.get(event.stem), unsent)

    def _guard(self, render: Callable[[], None]) -> None:
        try:
            render()
        except RenderError as exc:
            self.problems.extend([exc.problem])

    def _check_size(self, email: RenderedEmail, source: Path) -> None:
        if email.html_size > SIZE_WARNING_BYTES:
            message = _(
                "the email is {size} KB; Gmail clips emails at about 102 KB, keep it under {limit} KB "
                "(shorten the text or split the issue)",
                size=email.html_size // 1024,
                limit=SIZE_WARNING_BYTES // 1024,
            )
            self.problems.warning(display_path(source), None, message, Code.EMAIL_TOO_LARGE)

    def _preview(
        self,
        email: RenderedEmail,
        item: NewsletterItem | EventItem,
        list_name: str,
        kind: str,
        calendar_part: CalendarPart | None = None,
    ) -> bytes:
        site = self.content.site
        recipient = SAMPLE_RECIPIENTS[email.language]
        campaign = Campaign(f"{kind}:{item.stem}", list_name, preview_date(item, site.timezone))
        msg = build_message(
            site,
            email,
            recipient,
            campaign,
            secret=PREVIEW_SECRET,
            unsubscribe_url=unsubscribe_preview_url(site.public_url),
            calendar=calendar_part,
        )
        return as_bytes(msg)

    def _personal_sample(self, email: RenderedEmail) -> tuple[str, str]:
        """The email's HTML and text as the sample recipient of its language gets them."""
        recipient = SAMPLE_RECIPIENTS[email.language]
        return email.personalise(
            greeting(recipient, email.language), unsubscribe_preview_url(self.content.site.public_url)
        )

    def newsletter(self, item: NewsletterItem) -> None:
        """Email HTML, text, web version and preview message of every language version."""
        for language in item.versions:

            def render(language: Language = language) -> None:
                def file(name: str) -> PurePosixPath:
                    return layout.newsletter_file(item.stem, name, language, item.default_language)

                email = self.renderer.newsletter_email(item, language)
                self._check_size(email, item.versions[language].path)
                html, text = self._personal_sample(email)
                self.output.add_page(file("email.html"), html)
                self.output.add(file("email.txt"), text)
                self.output.add_page(file("index.html"), self.pages.newsletter_page(item, language))
                self.output.add(file("preview.eml"), self._preview(email, item, item.meta.lists[0], "newsletter"))

            self._guard(render)

    def event(self, event: EventItem) -> None:
        """Invitation HTML, text, event page, .ics and the invitation with its calendar part, per language."""
        site = self.content.site
        stamp = preview_date(event, site.timezone)
        for language in event.versions:

            def render(language: Language = language) -> None:
                def file(name: str) -> PurePosixPath:
                    return layout.event_file(event.stem, name, language, event.default_language)

                email = self.renderer.invitation_email(event, language)
                self._check_size(email, event.versions[language].path)
                html, text = self._personal_sample(email)
                self.output.add_page(file("invitation.html"), html)
                self.output.add(file("invitation.txt"), text)
                self.output.add_page(file("index.html"), self.pages.event_page(event, language))
                self.output.add(file("event.ics"), calendar.publish_ics(site, event, language, self.published(event)))
                recipient = SAMPLE_RECIPIENTS[language]
                invite = calendar.preview_plan(site, event, stamp).invitation(
                    recipient.email, language=language, name=recipient.display_name
                )
                part = CalendarPart(invite.ics, invite.method)
                preview = self._preview(email, event, event.meta.lists[0], "event", part)
                self.output.add(file("preview.eml"), preview)

            self._guard(render)

    def run(self) -> Output:
        for item in self.content.newsletters:
            self.newsletter(item)
        for event in self.content.events:
            self.event(event)
        self._guard(lambda: self.output.add(layout.ARCHIVE, self.pages.archive_page()))
        self._guard(lambda: self.output.add(layout.ATOM_FEED, self.pages.atom_feed()))
        self.output.add(layout.CALENDAR_FEED, calendar.feed_ics(self.content, self.published))
        root = self.content.root.resolve()
        for image in sorted(self.content.images):  # scaled to the width emails and pages use
            self.output.add(PurePosixPath(image.relative_to(root).as_posix()), published(image).data)
        return self.output


def render_all(
    content_dir: Path, templates: Path, *, strict: bool, today: dt.date, now: dt.datetime | None = None,
    sent: Mapping[str, calendar.SentVersion] | None = None, print_reports: bool = False,
) -> tuple[Output, list[Problem]]:
    """Validate and render everything; raise ContentError listing every problem if any is an error.

    ``print_reports`` adds the PDF of every report page (``build`` does; ``check`` need not load WeasyPrint).
    """
    content = load_content(content_dir)
    builder = Builder(content, templates, today, now=now, sent=sent)
    output = builder.run()
    builder.problems.raise_if_errors(strict=strict)
    if print_reports:
        from reallabor_mail.publish.reports import add_report_pdfs

        add_report_pdfs(output.files, builder.pages)
    return output, builder.problems.warnings


def check(content_dir: Path, templates: Path, *, strict: bool = False, today: dt.date | None = None) -> list[Problem]:
    """Validate and render without writing; returns the warnings."""
    _, warnings = render_all(content_dir, templates, strict=strict, today=today or dt.date.today())
    return warnings


def build(
    content_dir: Path, templates: Path, out: Path, *, strict: bool = False, today: dt.date | None = None,
    sent: Mapping[str, calendar.SentVersion] | None = None,
) -> BuildResult:
    """Write every output of contract §2; on any error nothing is written.

    ``sent``: the last version sent of each event (:func:`reallabor_mail.delivery.event_versions.sent_versions`).
    Without ``today`` the build's clock is the real one.
    """
    now = None if today is not None else dt.datetime.now(dt.UTC)
    output, warnings = render_all(
        content_dir, templates, strict=strict, today=today or dt.date.today(), now=now, sent=sent, print_reports=True
    )
    try:
        write_output(output, out)
    except OSError as exc:
        raise OutputError(unwritable(out, exc)) from None
    return BuildResult(out, len(output.files), tuple(warnings))


def unwritable(out: Path, exc: OSError) -> str:
    """Why ``--out`` cannot be written, starting with the folder as the user typed it."""
    blocking = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        return f"{out}: {blocking} is a file, not a folder; choose another --out folder"
    return f"{out}: cannot write the build there ({os_reason(exc)}); choose another --out folder"


def write_output(output: Output, out: Path) -> None:
    """Write into a fresh folder beside ``out`` and swap it in, so a build is never half-written."""
    out = out.resolve()
    if out.exists() and not out.is_dir():  # never swap a file the user keeps there for a folder
        raise FileExistsError(errno.EEXIST, "is a file, not a folder", str(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for rel in output.files:
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(output.on_disk(rel))
        os.chmod(staging, 0o755)
        if out.exists():
            old = out.with_name(f".{out.name}-old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            staging.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
