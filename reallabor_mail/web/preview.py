"""The staff preview (``reallabor-mail serve``): every email as recipients will see it, following the files.

Mounted under ``/preview/`` in the staff app only (:func:`staff_routes`); the public server never
serves it. A :class:`Watcher` follows the content and templates folders with watchfiles and keeps a
digest of their files; each page embeds the digest it was rendered from and polls ``_digest``, so
saving in the editor reloads the open page. A :class:`Snapshot` is the content at one digest: loaded
once, each item rendered on first view with the same :class:`~reallabor_mail.publish.build.Builder` that
``build`` uses, so the preview shows exactly what ``build`` writes and ``send`` sends. Content
errors show on the page as ``path:line: message``, never as a traceback.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import socket
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

import click
import uvicorn
import watchfiles
from markupsafe import escape
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from reallabor_mail.addresses import InvalidAddress, parse_address
from reallabor_mail.content.loader import (
    Content,
    ContentCache,
    EventItem,
    NewsletterItem,
    folder_stamps,
    is_cancelled,
    is_event,
    read_content,
)
from reallabor_mail.content.models import LANGUAGES, Language
from reallabor_mail.db import StateError, StateLocation, connect_read_only
from reallabor_mail.errors import Problem, ReallaborError, display_path
from reallabor_mail.i18n.dates import long_date
from reallabor_mail.i18n.greetings import greeting
from reallabor_mail.i18n.messages import N_, _, current_staff_language, language_name, ngettext, os_reason
from reallabor_mail.mailbox.attendance import FORM_STATES, STATES, attendance, state_label
from reallabor_mail.publish.build import SAMPLE_RECIPIENTS, Builder
from reallabor_mail.recipients.store import form_state_label
from reallabor_mail.render import paths as layout
from reallabor_mail.render.checks import Check, email_checks, public_path
from reallabor_mail.render.engine import SHIPPED_TEMPLATES, RenderedEmail, RenderError, Templates
from reallabor_mail.settings import Settings

log = logging.getLogger(__name__)

POLL_MS = 250  # how often an open page asks whether the files changed
LOCAL_HOSTS = ["127.0.0.1", "localhost"]
# Paths under site.public_url that the public app (web.py) answers rather than the built archive.
PUBLIC_APP_PATHS = ("subscribe", "confirm/", "unsubscribe/")
_HEAD = re.compile(r"<head(\s[^>]*)?>", re.IGNORECASE)
_SHOWN_HEADERS = (
    "From", "Reply-To", "To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe",
    "List-Unsubscribe-Post", "Content-Language",
)  # fmt: skip

Item = NewsletterItem | EventItem
Today = Callable[[], dt.date]
# Sends one test message of a content file to an address; returns what happened.
TestSender = Callable[[Path, str], str]

KINDS = ("newsletters", "events")  # the first part of an item's address, as build names its folders
_KIND_LABELS = {"newsletters": N_("Newsletter"), "events": N_("Event")}


def kind_label(kind: str) -> str:
    """What the start page calls a kind of item, in the staff language."""
    return _(_KIND_LABELS[kind]) if kind in _KIND_LABELS else kind


# --- following the files ------------------------------------------------------------------------


def tree_digest(roots: Sequence[Path]) -> str:
    """A hash of every file's name and bytes under the roots: equal digests, equal pages."""
    digest = hashlib.sha256()
    for root in roots:
        if not root.is_dir():
            continue
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = path.relative_to(root).as_posix()
            if any(part.startswith(".") for part in PurePosixPath(rel).parts):
                continue  # editor swap files, .git
            digest.update(f"{root}\0{rel}\0".encode())
            try:
                digest.update(path.read_bytes())
            except OSError:
                digest.update(b"\0unreadable")
    return digest.hexdigest()[:16]


class Watcher:
    """Follows folders with watchfiles in a daemon thread; :attr:`digest` changes when a file does.

    ``on_change`` runs in the watcher's thread after each change, so the next snapshot can be
    rendered while the open page is still polling.
    """

    def __init__(self, roots: Sequence[Path], on_change: Callable[[], None] = lambda: None) -> None:
        self.roots = [r for r in roots if r.is_dir()]
        self.digest = tree_digest(self.roots)
        self.on_change = on_change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="preview-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # debounce 50 ms: editors write a file in several steps, but the page must follow within a second.
        for _changes in watchfiles.watch(*self.roots, debounce=50, step=20, stop_event=self._stop, rust_timeout=500):
            digest = tree_digest(self.roots)
            if digest != self.digest:
                self.digest = digest
                try:
                    self.on_change()
                except Exception:  # the next request shows what is wrong; the watcher must go on
                    log.exception("preview: rendering after a change failed")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


# --- one state of the content -------------------------------------------------------------------


@dataclass
class Rendered:
    """One newsletter or event as build renders it: its output files, emails per language, errors."""

    kind: str
    item: Item
    files: dict[PurePosixPath, bytes]
    errors: list[Problem]
    emails: dict[Language, RenderedEmail] = field(default_factory=dict)

    def file(self, name: str, language: Language) -> bytes | None:
        make = layout.newsletter_file if self.kind == "newsletters" else layout.event_file
        return self.files.get(make(self.item.stem, name, language, self.item.default_language))


class Snapshot:
    """The content folder at one digest: loaded once, items rendered on first use.

    One :class:`Builder` per snapshot; each item is rendered by the Builder's own
    ``newsletter``/``event`` step, exactly as ``build`` does. The snapshot after a change
    (:meth:`following`) reads only the changed content files again (the loader's
    :class:`~reallabor_mail.content.loader.ContentCache`) and keeps the compiled templates while the
    templates folder is unchanged; the rules across files are checked again over the whole folder.
    """

    def __init__(
        self, digest: str, content_dir: Path, templates: Path, today: dt.date, cache: ContentCache | None = None,
        compiled: Templates | None = None,
    ) -> None:  # fmt: skip
        """``cache``: the files parsed for earlier snapshots; ``compiled``: an earlier one's templates, unchanged."""
        self.digest = digest
        self.today = today
        self.content_dir = content_dir
        self.templates = templates
        self.templates_stamps = folder_stamps(templates)  # before compiling: a change while compiling is seen next time
        self.cache = cache or ContentCache()
        self.content: Content | None = None
        self.builder: Builder | None = None
        self.problems: list[Problem] = []
        self._rendered: dict[tuple[str, str], Rendered] = {}
        self._checks: dict[tuple[str, str, Language], list[Check]] = {}
        self._lock = threading.RLock()
        # What loads is shown even when other files have errors: one broken file must not hide the rest.
        self.content, loaded = read_content(content_dir, self.cache)
        self.problems = loaded.errors
        if self.content is not None:
            try:
                self.builder = Builder(self.content, compiled or templates, today)
            except ReallaborError as exc:
                self.problems.append(Problem(str(templates), None, str(exc)))
                self.content = None

    def following(self, digest: str, today: dt.date) -> Snapshot:
        """The snapshot after a change: only changed content files are read again, and the compiled
        templates are kept unless a file of the templates folder changed."""
        unchanged = self.builder is not None and folder_stamps(self.templates) == self.templates_stamps
        compiled = self.builder.renderer.templates if self.builder is not None and unchanged else None
        return Snapshot(digest, self.content_dir, self.templates, today, self.cache, compiled)

    def items(self) -> Iterator[tuple[str, Item]]:
        if self.content is not None:
            yield from (("newsletters", n) for n in self.content.newsletters)
            yield from (("events", e) for e in self.content.events)

    def find(self, kind: str, stem: str) -> Item | None:
        return next((item for k, item in self.items() if k == kind and item.stem == stem), None)

    def built(self, kind: str, stem: str) -> Rendered | None:
        """The files build writes for one item (all languages); None if there is no such item."""
        with self._lock:
            key = (kind, stem)
            if key in self._rendered:
                return self._rendered[key]
            item = self.find(kind, stem)
            if item is None or self.builder is None:
                return None
            problems = self.builder.problems
            before = Counter(problems.errors)
            if kind == "newsletters":
                self.builder.newsletter(item)  # type: ignore[arg-type]
            else:
                self.builder.event(item)  # type: ignore[arg-type]
            files = {path: data for path, data in self.builder.output.files.items() if path.parts[:2] == key}
            errors = list((Counter(problems.errors) - before).elements())
            self._rendered[key] = Rendered(kind, item, files, errors)
            return self._rendered[key]

    def rendered(self, kind: str, stem: str) -> Rendered | None:
        """:meth:`built`, plus the campaign's email per language (with its placeholders) for the checks."""
        with self._lock:
            result = self.built(kind, stem)
            if result is None or self.builder is None or result.emails or result.errors:
                return result
            renderer = self.builder.renderer
            for language in result.item.versions:
                try:
                    if kind == "newsletters":
                        email = renderer.newsletter_email(result.item, language)  # type: ignore[arg-type]
                    else:
                        email = renderer.invitation_email(result.item, language)  # type: ignore[arg-type]
                except RenderError as exc:
                    result.errors.append(exc.problem)
                else:
                    result.emails[language] = email
            return result

    def warnings(self, item: Item, language: Language) -> list[Problem]:
        """The loader's and build's warnings about one language version's file."""
        if self.builder is None or self.content is None:
            return []
        path = item.version(language).path
        names = {display_path(path, self.content.root), display_path(path)}
        return [p for p in self.builder.problems.warnings if p.path in names]

    def checks(self, kind: str, stem: str, language: Language) -> list[Check]:
        """The checks panel of one item in one language (empty if it does not render)."""
        with self._lock:
            key = (kind, stem, language)
            if key not in self._checks:
                rendered = self.rendered(kind, stem)
                email = rendered.emails.get(language) if rendered else None
                if rendered is None or email is None or self.content is None:
                    return []
                self._checks[key] = email_checks(
                    email,
                    self.content.site,
                    warnings=self.warnings(rendered.item, language),
                    greeting=greeting(SAMPLE_RECIPIENTS[language], language),
                    resolves=self.resolves,
                )
            return self._checks[key]

    def files_of(self, item: Item) -> set[str]:
        """The paths problems name for an item's files (all its language versions, also the broken ones)."""
        if self.content is None:
            return set()
        folder = item.path.parent
        files = {display_path(v.path, self.content.root) for v in item.versions.values()}
        files |= {display_path(folder / f"{item.stem}.{code}.md", self.content.root) for code in LANGUAGES}
        return files

    def image_paths(self) -> dict[str, Path]:
        """Content-relative path → file of every image the content uses."""
        if self.content is None:
            return {}
        root = self.content.root.resolve()
        return {image.relative_to(root).as_posix(): image for image in self.content.images}

    def resolves(self, url: str) -> bool:
        """Whether a URL under site.public_url exists: a file build writes, an image, or a public-app page."""
        if self.content is None:
            return False
        path = public_path(url, self.content.site.public_url)
        if path is None:
            return False
        if path.startswith(PUBLIC_APP_PATHS) or path in self.image_paths():
            return True
        target = PurePosixPath(path + "index.html" if path == "" or path.endswith("/") else path)
        if target in (layout.ARCHIVE, layout.ATOM_FEED, layout.CALENDAR_FEED):
            return True
        if len(target.parts) != 3 or target.parts[0] not in KINDS:
            return False
        built = self.built(target.parts[0], target.parts[1])
        return built is not None and target in built.files

    def local_html(self, html: str, image_url: Callable[[str], str]) -> str:
        """Public image URLs → the preview's own, so images show before they are uploaded (and offline)."""
        if self.content is None:
            return html
        public = self.content.site.public_url
        for rel in sorted(self.image_paths(), key=len, reverse=True):
            html = html.replace(f"{public}/{rel}", image_url(rel))
        return html


# --- what the pages show ------------------------------------------------------------------------


class Timing(StrEnum):
    """Where an item stands on the start page: a file that does not load first, then upcoming, then past."""

    BROKEN = "broken"
    UPCOMING = "upcoming"
    PAST = "past"


@dataclass(frozen=True)
class Row:
    """A line of the start page: one item, or one file that does not load (``linked`` False)."""

    kind: str
    kind_label: str
    stem: str
    title: str
    date: str
    status: str
    languages: tuple[str, ...]
    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    last_send: str
    timing: Timing
    moment: dt.datetime  # when it happens or appeared (local wall-clock time), for the order
    linked: bool = True


def in_start_page_order(rows: Sequence[Row]) -> list[Row]:
    """Files that do not load first; then upcoming items, soonest first; then past ones, newest first."""
    broken = sorted((r for r in rows if r.timing is Timing.BROKEN), key=lambda r: r.title)
    upcoming = sorted((r for r in rows if r.timing is Timing.UPCOMING), key=lambda r: (r.moment, r.stem))
    past = sorted((r for r in rows if r.timing is Timing.PAST), key=lambda r: (r.moment, r.stem), reverse=True)
    return [*broken, *upcoming, *past]


def broken_rows(snap: Snapshot) -> list[Row]:
    """A row for every content file with load errors that no listed item stands for (its errors with path:line)."""
    if snap.content is None:
        return []
    listed = {display_path(v.path, snap.content.root) for _kind, item in snap.items() for v in item.versions.values()}
    by_file: dict[str, list[str]] = {}
    for problem in snap.problems:
        if problem.path not in listed and PurePosixPath(problem.path).suffix == ".md":
            by_file.setdefault(problem.path, []).append(str(problem))
    rows = []
    for path, errors in by_file.items():
        file = PurePosixPath(path)
        kind = file.parent.name if file.parent.name in KINDS else ""
        rows.append(Row(
            kind=kind, kind_label=kind_label(kind), stem=file.stem, title=path, date="",
            status=_("does not load"), languages=(), errors=tuple(errors), warnings=(), last_send="–",
            timing=Timing.BROKEN, moment=dt.datetime.min, linked=False,
        ))  # fmt: skip
    return rows


def last_send(state: StateLocation | None, kind: str, stem: str) -> str:
    """When the item last went out and to how many, from the send ledger ("–" if never or no state)."""
    if state is None or (isinstance(state, Path) and not state.is_file()):
        return "–"
    prefix = "newsletter" if kind == "newsletters" else "event"
    try:
        conn = (
            sqlite3.connect(f"{state.resolve().as_uri()}?mode=ro", uri=True)
            if isinstance(state, Path) else connect_read_only(state)
        )  # fmt: skip
        try:
            row = conn.execute(
                "SELECT max(updated), count(*) FROM send_ledger WHERE state = 'sent' "
                "AND (campaign = ? OR substr(campaign, 1, ?) = ?)",
                (f"{prefix}:{stem}", len(prefix) + len(stem) + 2, f"{prefix}:{stem}:"),
            ).fetchone()
        finally:
            conn.close()
    except (sqlite3.Error, StateError):  # no ledger table yet, or a state file being written
        return "–"
    if not row or not row[1]:
        return "–"
    when = dt.datetime.fromisoformat(str(row[0]).replace("Z", "+00:00"))
    sent_at = f"{when:%Y-%m-%d %H:%M}"
    return ngettext("{when} UTC · {count} sent", "{when} UTC · {count} sent", int(row[1]), when=sent_at)


def attendance_line(state: StateLocation | None, event: EventItem) -> str | None:
    """The counts ``registrations`` shows for an event: calendar answers, and the form's registrations if it
    takes them; None without a state file."""
    if state is None or (isinstance(state, Path) and not state.is_file()):
        return None
    try:
        conn = connect_read_only(state)
        try:
            found = attendance(conn, event)
        finally:
            conn.close()
    except ReallaborError:  # a state file being written, or from a newer version
        return None
    counts, form_counts = found.counts, found.form_counts
    line = _("Answers") + ": " + ", ".join(f"{state_label(s)} {counts[s]}" for s in STATES)
    if (event.meta.registration is not None and event.meta.registration.form) or found.registrations:
        line += " · " + _("Registration form") + ": " + ", ".join(
            f"{form_state_label(s)} {form_counts[s]}" for s in FORM_STATES
        )
    return line


def parse_headers(eml: bytes | None) -> tuple[list[tuple[str, str]], list[str]]:
    """The headers an inbox shows and the MIME structure of a preview message."""
    if eml is None:
        return [], []
    msg = message_from_bytes(eml, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    headers = [(name, str(msg[name])) for name in _SHOWN_HEADERS if msg[name] is not None]
    parts = []
    for part in msg.walk():
        name = part.get_filename()
        parts.append(part.get_content_type() + (f" ({name})" if name else ""))
    return headers, parts


def sending_path(templates: Path, state: StateLocation | None, settings: Settings) -> TestSender:
    """The test send of the sending path (``send FILE --to EMAIL --yes``), its report as one line."""

    def send_test(file: Path, to: str) -> str:
        from reallabor_mail.delivery.campaign import SendRequest, send

        report = send(SendRequest(file, to=to, templates=templates, state=state), settings=settings)
        if report is not None and report.sent:
            return _("Sent a test to {address} (in the language stored for that address, else the site's).",
                     address=to)  # fmt: skip
        from reallabor_mail.i18n.records import shown

        reason = shown(report.stopped) if report is not None and report.stopped else _("the server did not accept it")
        return not_sent(reason)

    return send_test


def not_sent(reason: str) -> str:
    return _("Not sent: {reason}", reason=reason)


def no_sending() -> str:
    return _("sending is not available in this installation")


def smtp_status(settings: Settings) -> str | None:
    """None when SMTP is configured, else why test mails cannot go out."""
    try:
        smtp = settings.smtp()
    except ReallaborError as exc:
        return str(exc)
    if smtp is None:
        return _(
            "SMTP is not configured: set REALLABOR_SMTP_HOST (and REALLABOR_SMTP_PORT, REALLABOR_SMTP_USER, "
            "REALLABOR_SMTP_PASSWORD) in the environment of `reallabor-mail serve` to send test mails"
        )
    return None


# --- the web pages ------------------------------------------------------------------------------


_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
_EMAIL_CSP = "default-src 'none'; img-src 'self' https: data:; style-src 'unsafe-inline'; base-uri 'self' https:"


class Preview:
    """The preview's state (watcher, current snapshot) and its request handlers."""

    def __init__(
        self,
        content_dir: Path,
        templates: Path,
        *,
        state: StateLocation | None = None,
        today: Today = dt.date.today,
        send_test: TestSender | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.content_dir = content_dir
        self.settings = settings or Settings()  # no settings: test mails say SMTP is not configured
        self.templates = templates
        self.state = state
        self.today = today
        self.send_test = send_test
        self.pages = Templates(SHIPPED_TEMPLATES)
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self._viewing: tuple[str, str] | None = None  # the item last opened (None: the start page)
        self.watcher = Watcher([content_dir, templates], on_change=self.render_ahead)

    def close(self) -> None:
        self.watcher.stop()

    def snapshot(self) -> Snapshot:
        """The content at the watcher's current digest (rebuilt only when a file changed)."""
        with self._lock:
            digest = self.watcher.digest
            if self._snapshot is None:
                self._snapshot = Snapshot(digest, self.content_dir, self.templates, self.today())
            elif self._snapshot.digest != digest:
                self._snapshot = self._snapshot.following(digest, self.today())
            return self._snapshot

    def render_ahead(self) -> None:
        """After a change: render what the open page will ask for while it is still polling."""
        snap = self.snapshot()
        # The start page (None) shows the checks of every item.
        everything = [(kind, item.stem) for kind, item in snap.items()]
        wanted = everything if self._viewing is None else [self._viewing]
        for kind, stem in wanted:
            rendered = snap.rendered(kind, stem)
            for language in rendered.item.versions if rendered else ():
                snap.checks(kind, stem, language)

    # --- rendering pages -----------------------------------------------------------------------

    def page(self, request: Request, name: str, snap: Snapshot, status: int = 200, **values: Any) -> HTMLResponse:
        """A preview page; if our own template fails, a bare page with the error (never a traceback)."""

        def url(route: str, **params: str) -> str:
            return str(request.url_for(route, **params).path)

        context = {
            "digest": snap.digest,
            "digest_url": url("preview:digest"),
            "home_url": url("preview:home"),
            "poll_ms": POLL_MS,
            "problems": [str(p) for p in snap.problems],
            "staff_language": current_staff_language(),
            "site": snap.content.site if snap.content else None,
            "url": url,
            **values,
        }
        try:
            body = self.pages.render(name, context)
        except RenderError as exc:
            title = escape(_("Preview error"))
            body = f"<!DOCTYPE html><title>{title}</title><pre>{escape(str(exc))}</pre>"
            status = 500
        return HTMLResponse(body, status_code=status, headers=_NO_STORE)

    def guarded(self, handler: Callable[[Request, Snapshot], Response]) -> Callable[[Request], Response]:
        """Run a handler on the current snapshot; unexpected errors become a page, not a traceback."""

        def endpoint(request: Request) -> Response:
            snap = self.snapshot()
            try:
                return handler(request, snap)
            except ReallaborError as exc:
                return self.page(request, "web/preview_index.html.j2", snap, 500, rows=[], error=str(exc))
            except Exception as exc:  # a bug, but the staff member still needs the page to follow the files
                log.exception("preview: %s", request.url.path)
                return self.page(
                    request, "web/preview_index.html.j2", snap, 500, rows=[],
                    error=_("internal error ({error}); the details are in the terminal",
                            error=f"{type(exc).__name__}: {exc}"),
                )  # fmt: skip

        return endpoint

    # --- handlers ------------------------------------------------------------------------------

    def digest(self, request: Request) -> Response:
        return JSONResponse({"digest": self.watcher.digest}, headers=_NO_STORE)

    def home(self, request: Request, snap: Snapshot) -> Response:
        self._viewing = None
        rows = [self.row(snap, kind, item) for kind, item in snap.items()] + broken_rows(snap)
        return self.page(request, "web/preview_index.html.j2", snap, rows=in_start_page_order(rows), error=None)

    def row(self, snap: Snapshot, kind: str, item: Item) -> Row:
        rendered = snap.rendered(kind, item.stem)
        warnings: list[str] = []
        for language in item.versions:
            for check in snap.checks(kind, item.stem, language):
                if not check.ok:
                    warnings.append(f"{check.name} ({language})" if len(item.versions) > 1 else check.name)
        sent = last_send(self.state, kind, item.stem)
        if is_event(item):
            start = item.meta.start
            moment = start.replace(tzinfo=None)
            date = f"{long_date(start.date(), item.default_language)}, {start:%H:%M}"
            timing = Timing.PAST if start.date() < snap.today else Timing.UPCOMING
            status = _("cancelled") if is_cancelled(item) else (_("past") if timing is Timing.PAST else _("upcoming"))
        else:
            published = item.meta.date
            moment = dt.datetime.combine(published, dt.time())
            date = long_date(published, item.default_language)
            timing = Timing.PAST if published < snap.today else Timing.UPCOMING
            status = _("sent") if sent != "–" else _("not sent yet")
        errors = [str(p) for p in snap.problems if p.path in snap.files_of(item)]
        errors += [str(p) for p in rendered.errors] if rendered else []
        return Row(
            kind=kind, kind_label=kind_label(kind), stem=item.stem, title=item.meta.title, date=date,
            status=status, languages=tuple(item.versions), errors=tuple(errors), warnings=tuple(warnings),
            last_send=sent, timing=timing, moment=moment,
        )  # fmt: skip

    def item(self, request: Request, snap: Snapshot, notice: str | None = None) -> Response:
        kind, stem = request.path_params["kind"], request.path_params["stem"]
        if snap.content is None:
            return self.page(request, "web/preview_index.html.j2", snap, 200, rows=[], error=None)
        rendered = snap.rendered(kind, stem)
        if rendered is None:
            message = _("{item}: no such newsletter or event (renamed or deleted?)", item=f"{kind}/{stem}")
            return self.page(request, "web/preview_index.html.j2", snap, 404, rows=[], error=message)
        item = rendered.item
        self._viewing = (kind, stem)
        language = self.language(request, item)
        email = rendered.emails.get(language)
        headers, parts = parse_headers(rendered.file("preview.eml", language))
        email_name = "email.txt" if kind == "newsletters" else "invitation.txt"
        text = rendered.file(email_name, language)
        params = {"kind": kind, "stem": stem}
        event = None
        if kind == "events" and not rendered.errors:
            event = snap.builder.renderer.event_view(item, language) if snap.builder else None  # type: ignore[arg-type]
        return self.page(
            request, "web/preview_item.html.j2", snap,
            kind=kind, kind_label=kind_label(kind), item=item, language=language,
            languages=[(code, language_name(code)) for code in item.versions],
            source=display_path(item.version(language).path, snap.content.root),
            errors=[str(p) for p in snap.problems if p.path in snap.files_of(item)] + [str(p) for p in rendered.errors],
            email=email,
            preview_line=(email.preheader[:100] if email else ""),
            text=text.decode("utf-8") if text else "", headers=headers, parts=parts, event=event,
            checks=snap.checks(kind, stem, language),
            email_url=url_with_lang(request, "preview:email", params, language),
            web_url=url_with_lang(request, "preview:web", params, language),
            ics_url=url_with_lang(request, "preview:ics", params, language),
            eml_url=url_with_lang(request, "preview:eml", params, language),
            send_url=str(request.url_for("preview:send", **params).path),
            smtp_problem=smtp_status(self.settings) if self.send_test else no_sending(),
            notice=notice, last_send=last_send(self.state, kind, stem),
            attendance=attendance_line(self.state, item) if is_event(item) else None,
        )  # fmt: skip

    @staticmethod
    def language(request: Request, item: Item) -> Language:
        wanted = request.query_params.get("lang", "")
        return next((code for code in item.versions if code == wanted), item.default_language)

    def _file_response(
        self, request: Request, snap: Snapshot, name: str, media_type: str, download: str | None = None
    ) -> Response:
        rendered = snap.rendered(request.path_params["kind"], request.path_params["stem"])
        if rendered is None:
            return Response(_("not found"), 404, media_type="text/plain; charset=utf-8")
        language = self.language(request, rendered.item)
        data = rendered.file(name, language)
        if data is None:
            problems = "\n".join(str(p) for p in rendered.errors) or _("{name}: not rendered", name=name)
            return Response(problems, 404, media_type="text/plain; charset=utf-8", headers=_NO_STORE)
        headers = dict(_NO_STORE)
        if download:
            suffix = "" if language == rendered.item.default_language else f".{language}"
            stem, _dot, ext = download.rpartition(".")
            headers["Content-Disposition"] = f'attachment; filename="{rendered.item.stem}-{stem}{suffix}.{ext}"'
        if media_type.startswith("text/html"):
            html = snap.local_html(
                data.decode("utf-8"), lambda rel: str(request.url_for("preview:file", path=rel).path)
            )
            if name != "index.html":  # the email: its links open outside the frame
                html = _HEAD.sub(lambda m: m.group(0) + '<base target="_blank">', html, count=1)
                headers["Content-Security-Policy"] = _EMAIL_CSP
            return HTMLResponse(html, headers=headers)
        return Response(data, media_type=media_type, headers=headers)

    def email_html(self, request: Request, snap: Snapshot) -> Response:
        name = "email.html" if request.path_params["kind"] == "newsletters" else "invitation.html"
        return self._file_response(request, snap, name, "text/html; charset=utf-8")

    def web_html(self, request: Request, snap: Snapshot) -> Response:
        return self._file_response(request, snap, "index.html", "text/html; charset=utf-8")

    def ics(self, request: Request, snap: Snapshot) -> Response:
        return self._file_response(request, snap, "event.ics", "text/calendar; charset=utf-8", "event.ics")

    def eml(self, request: Request, snap: Snapshot) -> Response:
        return self._file_response(request, snap, "preview.eml", "message/rfc822", "preview.eml")

    def file(self, request: Request, snap: Snapshot) -> Response:
        path = snap.image_paths().get(request.path_params["path"])
        if path is None:
            return Response(_("not found"), 404, media_type="text/plain; charset=utf-8")
        return FileResponse(path, headers={"Cache-Control": "no-cache"})

    async def send(self, request: Request) -> Response:
        """POST: send one test message of the item to an address (the sending path's ``--to``)."""
        form = await request.form()
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.headers.get('host')}":
            return Response(_("cross-site request refused"), 403, media_type="text/plain; charset=utf-8")
        to = str(form.get("to") or "").strip()
        language = str(form.get("lang") or "")
        snap = self.snapshot()

        def respond(notice: str) -> Response:
            request.scope["query_string"] = f"lang={language}".encode()
            return self.item(request, snap, notice=notice)

        item = snap.find(request.path_params["kind"], request.path_params["stem"])
        if item is None:
            return respond(_("this item no longer exists"))
        sender = self.send_test
        problem = smtp_status(self.settings) if sender else no_sending()
        if sender is None or problem is not None:
            return respond(not_sent(str(problem)))
        try:
            address = str(parse_address(to, "to"))
        except InvalidAddress:
            return respond(not_sent(_("'{address}' is not an address mail can be sent to", address=to)))
        try:
            result = await run_in_threadpool(sender, item.path, address)
        except ReallaborError as exc:
            return respond(not_sent(str(exc)))
        return respond(result)


def url_with_lang(request: Request, route: str, params: dict[str, str], language: str) -> str:
    return f"{request.url_for(route, **params).path}?lang={language}"


def preview_mount(preview: Preview) -> Mount:
    """The preview routes under ``/preview``, answering only requests addressed to this machine."""
    g = preview.guarded
    routes = [
        Route("/", g(preview.home), name="home"),
        Route("/_digest", preview.digest, name="digest"),
        Route("/files/{path:path}", g(preview.file), name="file"),
        Route("/{kind:str}/{stem:str}/", g(preview.item), name="item"),
        Route("/{kind:str}/{stem:str}/email.html", g(preview.email_html), name="email"),
        Route("/{kind:str}/{stem:str}/web.html", g(preview.web_html), name="web"),
        Route("/{kind:str}/{stem:str}/event.ics", g(preview.ics), name="ics"),
        Route("/{kind:str}/{stem:str}/preview.eml", g(preview.eml), name="eml"),
        Route("/{kind:str}/{stem:str}/send-test", preview.send, methods=["POST"], name="send"),
    ]
    # The Host check stops DNS-rebinding pages from reading unpublished drafts through the browser.
    return Mount(
        "/preview", routes=routes, name="preview",
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=LOCAL_HOSTS)],
    )  # fmt: skip


def staff_routes(preview: Preview) -> list[BaseRoute]:
    """The staff app: ``/`` leads to the preview at ``/preview/``."""
    return [Route("/", lambda request: RedirectResponse("/preview/")), preview_mount(preview)]


def free_socket(port: int | None) -> socket.socket:
    """A listening socket on 127.0.0.1: the port asked for, or a free one."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port or 0))
    except OSError as exc:
        sock.close()
        message = _("{address}: cannot listen there ({reason}); leave out --port", address=f"127.0.0.1:{port}",
                    reason=os_reason(exc))  # fmt: skip
        raise ReallaborError(message) from None
    return sock


def run_preview(
    content_dir: Path, templates: Path, *, state: StateLocation | None, port: int | None, settings: Settings
) -> None:
    """``reallabor-mail serve``: the staff app on 127.0.0.1 (a free port unless --port), URL printed."""
    from reallabor_mail.web.public import create_app

    if not content_dir.is_dir():
        raise ReallaborError(_("{path}: content folder not found; pass --content DIR", path=content_dir))
    send_test = sending_path(templates, state, settings)
    preview = Preview(content_dir, templates, state=state, send_test=send_test, settings=settings)
    sock = free_socket(port)
    address = f"http://127.0.0.1:{sock.getsockname()[1]}/preview/"
    click.echo(_("Preview of {folder}/ at {address}  (follows your files; Ctrl+C stops)", folder=content_dir,
                 address=address))  # fmt: skip
    config = uvicorn.Config(create_app(staff_routes(preview)), access_log=False, log_level="warning")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        preview.close()
        sock.close()
