"""The public web application: the subscription form, the double opt-in confirmation, the
unsubscribe link of every mail and the built archive (:func:`public_app`). The staff preview builds
its own app with :func:`create_app` and its routes under ``/preview/``, so the public server never
serves it.

Links in mails are opened by the link scanners of municipal mail gateways, which send GET and HEAD,
so only POST changes anything: the confirmation and unsubscribe links open a page with one button,
and the POST handlers are separate routes (Starlette answers HEAD with the GET handler). The
List-Unsubscribe URL also takes the RFC 8058 one-click POST (``List-Unsubscribe=One-Click``) without
cookie or token beyond the signed URL itself.

The form answers every valid sign-up with the same page and status, whatever the address's state
(new, pending, subscribed, unsubscribed, suppressed, erased) and whether a limit held its mail back,
and does the same work for each (one transaction; one consent record per list and day; one attempt
row; one outbox row): confirmation mails leave later through
:class:`~reallabor_mail.web.signup_queue.ConfirmationQueue`, which drops those with nothing to confirm.
A sign-up never changes a subscribed, unsubscribed or bounced membership; only the confirmation
click does. A POST to the form from another site's page (CSRF) gets 403; the confirm and unsubscribe
POSTs carry their signed token instead (RFC 8058 one-click requests come without ``Origin``). Only
the host of ``site.base_url`` is served; requests for another ``Host`` get 400, and no redirect is
built from the Host header. Every text is in the gettext catalogs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from gettext import GNUTranslations
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from reallabor_mail.addresses import address_key
from reallabor_mail.content.loader import EventItem
from reallabor_mail.content.models import LANGUAGES, Language, Site
from reallabor_mail.db import Connection, StateLocation, connect, transaction
from reallabor_mail.delivery.transport import Transport
from reallabor_mail.errors import Code, ReallaborError
from reallabor_mail.i18n.greetings import greeting
from reallabor_mail.i18n.messages import language_name, translations
from reallabor_mail.mail.dkim import DkimSigner
from reallabor_mail.mail.message import build_notice
from reallabor_mail.recipients import links
from reallabor_mail.recipients import store as recipients
from reallabor_mail.recipients.person import PERSON_FIELDS, Recipient, clean_person
from reallabor_mail.recipients.tokens import InvalidToken
from reallabor_mail.render import paths as layout
from reallabor_mail.render.engine import Templates
from reallabor_mail.web.limits import BodyLimit, ClientAllowance, ServerLimits
from reallabor_mail.web.registration import Registrations, is_registration_mail
from reallabor_mail.web.signup_queue import ConfirmationQueue, QueuedMail, SignupLimits

Clock = Callable[[], dt.datetime]


def list_label(name: str, words: GNUTranslations) -> str:
    """How the form and the mails name a list (site.yaml has no list names yet; unknown lists by name)."""
    if name == "newsletter":
        return words.gettext("Newsletter (quarterly)")
    if name == "reallabor":
        return words.gettext("Invitations to the Reallabor Ukraine")
    return name


def field_error(code: Code, words: GNUTranslations) -> str:
    """What the form says under a field with a :class:`~reallabor_mail.recipients.person.FieldProblem`."""
    return {
        Code.FIELD_REQUIRED: words.gettext("Please enter your email address."),
        Code.FIELD_EMAIL: words.gettext("This email address is not valid."),
        Code.FIELD_TOO_LONG: words.gettext("This is too long."),
        Code.FIELD_CONTROL_CHARACTER: words.gettext("Please use a single line, without special characters."),
        Code.FIELD_FORMULA: words.gettext("Please do not start with =, +, - or @."),
        Code.FIELD_SALUTATION: words.gettext("Please choose Ms, Mr or none."),
        Code.FIELD_LANGUAGE: words.gettext("Please choose a language."),
    }[code]


@dataclass
class PublicConfig:
    """What the public server needs; ``clock`` and ``transport`` are injected so tests run real parts.

    Every confirmation mail leaves through ``transport`` (the one the campaigns use), DKIM-signed by
    ``signer`` when one is configured.
    """

    site: Site
    templates: Path
    state: StateLocation
    secret: bytes
    lists: tuple[str, ...]
    transport: Transport
    signer: DkimSigner | None = None
    build_dir: Path | None = None
    events: tuple[EventItem, ...] = ()  # those with ``registration: form`` get a registration form
    clock: Clock = field(default=lambda: dt.datetime.now(dt.UTC))
    signup_limits: SignupLimits = field(default_factory=SignupLimits)
    server_limits: ServerLimits = field(default_factory=ServerLimits)
    outbox_poll_seconds: float = 30.0


# Never cached, no token leaks through a Referer, never framed (a framed button could be clicked unawares).
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
}
# The form's page has no token to hide; with no-referrer browsers would send ``Origin: null`` with its
# POST, which the CSRF check cannot tell from a sandboxed frame of another site.
FORM_HEADERS = {**_PAGE_HEADERS, "Referrer-Policy": "same-origin"}


class PublicSite:
    """The handlers of the public pages, sharing one state connection and one templates folder."""

    def __init__(self, config: PublicConfig) -> None:
        self.config = config
        self.site = config.site
        self.templates = Templates(config.templates)
        self.conn: Connection = connect(config.state)
        self.queue = ConfirmationQueue(
            self.conn, secret=config.secret, limits=config.signup_limits, clock=config.clock,
            transport=config.transport, signer=config.signer, compose=self.confirmation_mail,
        )  # fmt: skip
        self.clients = ClientAllowance(
            self.conn, secret=config.secret, per_hour=config.signup_limits.per_client_per_hour, clock=config.clock
        )
        self.registrations = Registrations(self, config.events)
        base = urlsplit(self.site.public_url)
        self.origin = f"{base.scheme}://{base.netloc}".lower()

    # --- helpers -------------------------------------------------------------------------------

    def language(self, request: Request, form: FormData | None = None) -> Language:
        """The page language: ``?lang=`` or the form's choice, else the browser's, else the site's."""
        wanted = request.query_params.get("lang") or (str(form.get("lang") or "") if form else "")
        if wanted in LANGUAGES:
            return wanted
        for part in request.headers.get("accept-language", "").split(","):
            code = part.split(";")[0].strip().lower()[:2]
            if code in LANGUAGES:
                return code
        return self.site.language

    def reader_language(self, request: Request, email: str) -> Language:
        """For a link from a mail: the language the person chose, unless ``?lang=`` asks otherwise."""
        person = recipients.find(self.conn, email)
        if person is None or "lang" in request.query_params:
            return self.language(request)
        return person.recipient.language

    def page(
        self, name: str, language: Language, status: int = 200, headers: dict[str, str] = _PAGE_HEADERS,
        **values: Any,
    ) -> HTMLResponse:  # fmt: skip
        """Render one of our pages (they extend ``web/base.html.j2``); never cached, no Referer sent."""
        public = self.site.public_url
        context = {
            "site": self.site,
            "lang": language,
            "page_title": values["title"],
            "description": "",
            "alternates": [],
            "archive_url": layout.url(public, layout.ARCHIVE),
            "feed_url": layout.url(public, layout.ATOM_FEED),
            "calendar_url": layout.url(public, layout.CALENDAR_FEED),
            "languages": [(code, language_name(code)) for code in LANGUAGES],
            **values,
        }
        return HTMLResponse(self.templates.render(name, context), status_code=status, headers=headers)

    def message(self, language: Language, title: str, text: str, status: int = 200) -> HTMLResponse:
        """A page with a heading and one paragraph (results, refusals, links that do not work)."""
        return self.page("web/message.html.j2", language, status, title=title, text=text)

    def check_inbox(self, language: Language) -> HTMLResponse:
        """The one answer to every sign-up the form takes, whatever became of it."""
        words = translations(language)
        return self.message(language, words.gettext("Please check your inbox"), words.gettext(
            "We have sent you an email. Please click the link in it to confirm your subscription. "
            "Without confirmation we delete your details after 30 days."
        ))  # fmt: skip

    def invalid_link(self, request: Request) -> HTMLResponse:
        language = self.language(request)
        words = translations(language)
        return self.message(language, words.gettext("This link does not work"), words.gettext(
            "The link is invalid or has expired. Nothing was changed. Please use the complete link from the "
            "email, or sign up again."
        ), 400)  # fmt: skip

    def consent_text(self, language: Language) -> str:
        return translations(language).gettext(
            "Yes, I want to receive emails from {org}. My details are stored for this purpose only; I can "
            "unsubscribe at any time with the link in every email. Privacy notice: {privacy}"
        ).format(org=self.site.organisation, privacy=self.site.privacy_url)

    def form(
        self, language: Language, errors: dict[str, str] | None = None,
        values: dict[str, Any] | None = None, status: int = 200,
    ) -> HTMLResponse:
        words = translations(language)
        return self.page(
            "web/subscribe.html.j2", language, status, FORM_HEADERS,
            title=words.gettext("Subscribe to the newsletter and invitations"),
            errors=errors or {},
            values=values or {"language": language, "lists": list(self.config.lists[:1])},
            lists=[(name, list_label(name, words)) for name in self.config.lists],
            consent=self.consent_text(language),
        )  # fmt: skip

    @staticmethod
    def ip(request: Request) -> str | None:
        return request.client.host if request.client else None

    def cross_site(self, request: Request) -> bool:
        """Whether a POST comes from a page of another site (CSRF): ``Sec-Fetch-Site: cross-site``, or an
        ``Origin``/``Referer`` of another origin than ``site.base_url``'s. Without them (curl, old browsers)
        it is not refused; the confirmation mail is the real check."""
        headers = request.headers
        if headers.get("sec-fetch-site", "").lower() == "cross-site":
            return True
        origin = headers.get("origin")
        if origin is not None:
            return origin.strip().lower() != self.origin
        referer = headers.get("referer")
        if referer:
            parts = urlsplit(referer.strip())
            return f"{parts.scheme}://{parts.netloc}".lower() != self.origin
        return False

    # --- subscribe -----------------------------------------------------------------------------

    async def subscribe_form(self, request: Request) -> Response:
        return self.form(self.language(request))

    async def subscribe(self, request: Request) -> Response:
        form = await request.form()
        language = self.language(request, form)
        words = translations(language)
        if self.cross_site(request):
            text = words.gettext("Please sign up with the form on our website: {url}")
            return self.message(language, words.gettext("Sign-up not accepted"),
                                text.format(url=f"{self.site.public_url}/subscribe"), 403)  # fmt: skip
        if str(form.get("website") or ""):  # the honeypot: people do not see it, bots fill it in
            return self.check_inbox(language)
        raw = {name: str(form.get(name) or "") for name in PERSON_FIELDS}
        chosen = [name for name in form.getlist("lists") if name in self.config.lists]
        person, problems = clean_person(raw)
        errors = {p.field: field_error(p.code, words) for p in problems}
        if not chosen:
            errors["lists"] = words.gettext("Please choose at least one list.")
        if not form.get("consent"):
            errors["consent"] = words.gettext("Please confirm your consent.")
        if person is None or errors:
            typed = {**raw, "lists": chosen, "consent": bool(form.get("consent"))}
            return self.form(language, errors, typed, status=400)
        if not self.clients.allow(self.ip(request)):
            return self.message(language, words.gettext("Too many attempts"),
                                words.gettext("Please try again in an hour."), 429)  # fmt: skip
        with transaction(self.conn):  # one commit whatever the address's state: no timing tells it
            email = recipients.sign_up(
                self.conn, person, chosen, consent_text=self.consent_text(language), consent_language=language,
                ip=self.ip(request), now=self.config.clock(),
            )  # fmt: skip
            self.queue.offer(email, chosen, person.language)
        return self.check_inbox(language)

    def confirmation_mail(self, mail: QueuedMail, now: dt.datetime) -> EmailMessage | None:
        """The double opt-in mail, plain text, in the language chosen on the form; None when none of
        its lists waits for confirmation (subscribed already; confirmed, erased or purged since). The
        mails of event registrations share the outbox and are composed by :mod:`.registration`.

        It carries nothing a stranger chose except the address: no name in the greeting or ``To:``.
        """
        if is_registration_mail(mail):
            return self.registrations.compose(mail, now)
        lists = recipients.awaiting_confirmation(self.conn, mail.email, mail.lists, now=now)
        if not lists:
            return None
        language = mail.language
        words = translations(language)
        link = links.confirm_url(self.site, mail.email, lists, self.config.secret, now=now)
        body = self.templates.render("email/confirm.txt.j2", {
            "site": self.site, "lang": language, "link": link,
            "greeting": greeting(Recipient(mail.email), language),
            "lists": [list_label(name, words) for name in lists],
        })  # fmt: skip
        return build_notice(
            self.site, to=mail.email, subject=words.gettext("Please confirm your subscription"), text=body,
            language=language, key=f"confirm:{mail.id}:{mail.attempts}:{now.isoformat()}",
            secret=self.config.secret, date=now,
        )  # fmt: skip

    # --- confirm -------------------------------------------------------------------------------

    def confirm_token(self, request: Request) -> tuple[str, list[str]] | None:
        """The address and lists of a confirmation link; None for anything but a link we made."""
        try:
            email, lists = links.read_confirm_token(self.config.secret, request.path_params["token"],
                                                    now=self.config.clock())  # fmt: skip
        except InvalidToken:
            return None
        return (email, lists) if _well_formed(email, lists) else None

    async def confirm_page(self, request: Request) -> Response:
        """GET (and HEAD): the page with the button; nothing changes."""
        if (read := self.confirm_token(request)) is None:
            return self.invalid_link(request)
        language = self.reader_language(request, read[0])
        words = translations(language)
        return self.page("web/confirm.html.j2", language, title=words.gettext("Confirm your subscription"),
                         email=read[0])  # fmt: skip

    async def confirm(self, request: Request) -> Response:
        """POST: the button was pressed; the lists waiting for it become subscribed."""
        if (read := self.confirm_token(request)) is None:
            return self.invalid_link(request)
        email, lists = read
        language = self.reader_language(request, email)
        words = translations(language)
        done = recipients.confirm(
            self.conn, email, lists, ip=self.ip(request), now=self.config.clock(), secret=self.config.secret
        )
        if done:
            return self.message(language, words.gettext("Thank you!"), words.gettext(
                "Your subscription is confirmed. You will receive our emails from now on."))  # fmt: skip
        return self.message(language, words.gettext("Nothing to confirm"), words.gettext(
            "There is nothing (left) to confirm: the subscription was already confirmed, cancelled, or deleted "
            "after 30 days. You can sign up again at any time."
        ))  # fmt: skip

    # --- unsubscribe ---------------------------------------------------------------------------

    def unsubscribe_token(self, request: Request) -> tuple[str, str] | None:
        """The address and list of an unsubscribe link; None for anything but a link we made."""
        try:
            email, list_name = links.read_unsubscribe_token(self.config.secret, request.path_params["token"],
                                                            now=self.config.clock())  # fmt: skip
        except InvalidToken:
            return None
        return (email, list_name) if _well_formed(email, [list_name]) else None

    async def unsubscribe_page(self, request: Request) -> Response:
        """GET (and HEAD): the page with the button; nothing changes."""
        if (read := self.unsubscribe_token(request)) is None:
            return self.invalid_link(request)
        email, list_name = read
        language = self.reader_language(request, email)
        words = translations(language)
        return self.page(
            "web/unsubscribe.html.j2", language, title=words.gettext("Unsubscribe"),
            email=email, list=list_label(list_name, words),
        )  # fmt: skip

    async def unsubscribe(self, request: Request) -> Response:
        """POST: the page's button, or a mail program's RFC 8058 one-click request."""
        if (read := self.unsubscribe_token(request)) is None:
            return self.invalid_link(request)
        email, list_name = read
        language = self.reader_language(request, email)
        words = translations(language)
        form = await request.form()
        one_click = form.get("List-Unsubscribe") == "One-Click" and form.get("via") != "page"
        recipients.unsubscribe(
            self.conn, email, list_name, now=self.config.clock(), ip=self.ip(request),
            source="one-click (RFC 8058)" if one_click else "unsubscribe page",
        )  # fmt: skip
        text = words.gettext("{email} will no longer receive emails from “{list}”.")
        return self.message(language, words.gettext("You are unsubscribed"),
                            text.format(email=email, list=list_label(list_name, words)))  # fmt: skip

    # --- the app -------------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        """Subscribe, confirm, unsubscribe (GET shows, POST acts), and the built archive as static files."""
        routes: list[BaseRoute] = [
            Route("/subscribe", self.subscribe_form, methods=["GET"]),
            Route("/subscribe", self.subscribe, methods=["POST"]),
            Route("/confirm/{token}", self.confirm_page, methods=["GET"]),
            Route("/confirm/{token}", self.confirm, methods=["POST"]),
            Route("/unsubscribe/{token}", self.unsubscribe_page, methods=["GET"]),
            Route("/unsubscribe/{token}", self.unsubscribe, methods=["POST"]),
            *self.registrations.routes(),
        ]
        if self.config.build_dir is not None:
            routes.append(Mount("/", Archive(directory=self.config.build_dir, html=True)))
        return routes

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """While the server runs, the outbox of confirmation mails is worked off in the background, and freed
        seats of events reach their waiting lists."""
        workers = [asyncio.create_task(self.queue.run(self.config.outbox_poll_seconds)),
                   asyncio.create_task(self.registrations.tend_seats(self.config.outbox_poll_seconds))]  # fmt: skip
        try:
            yield
        finally:
            for worker in workers:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker

    def app(self) -> Starlette:
        host = urlsplit(self.site.public_url).hostname or ""
        return Starlette(
            routes=self.routes(),
            middleware=[
                Middleware(TrustedHostMiddleware, allowed_hosts=[host], www_redirect=False),
                Middleware(BodyLimit, limit=self.config.server_limits.body_bytes),
            ],
            lifespan=self.lifespan,
        )


def _well_formed(email: str, lists: Sequence[str]) -> bool:
    """Whether a signed link names a stored-form address and list names (a link we made always does)."""
    try:
        return address_key(email) == email and all(recipients.check_list_name(name) for name in lists)
    except ReallaborError:
        return False


class Archive(StaticFiles):
    """The built archive; a folder without its slash redirects by path only, never to the Host header."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if isinstance(response, RedirectResponse):
            location = scope.get("root_path", "") + scope["path"].rstrip("/") + "/"
            return RedirectResponse("/" + location.lstrip("/"), status_code=response.status_code)
        return response


def public_app(config: PublicConfig) -> Starlette:
    """What ``serve --public`` runs (contract §4)."""
    return PublicSite(config).app()


def create_app(routes: Sequence[BaseRoute]) -> Starlette:
    """A plain app of ``routes``: the staff preview passes its routes mounted under ``/preview``."""
    return Starlette(routes=list(routes))
