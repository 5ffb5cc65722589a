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
(new, pending, subscribed, suppressed, erased) and whether a limit held its mail back: confirmation
mails leave later through :class:`~reallabor_mail.web.signup_queue.ConfirmationQueue`. Only the host
of ``site.base_url`` is served; requests for another ``Host`` get 400, and no redirect is built from
the Host header.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sqlite3
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
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

from reallabor_mail.content.models import LANGUAGES, Language, Site
from reallabor_mail.db import connect
from reallabor_mail.delivery.transport import Transport
from reallabor_mail.errors import Code
from reallabor_mail.i18n.greetings import greeting
from reallabor_mail.i18n.words import strings
from reallabor_mail.mail.dkim import DkimSigner
from reallabor_mail.mail.message import build_notice
from reallabor_mail.recipients import links
from reallabor_mail.recipients import store as recipients
from reallabor_mail.recipients.person import PERSON_FIELDS, Recipient, clean_person
from reallabor_mail.recipients.tokens import InvalidToken
from reallabor_mail.render import paths as layout
from reallabor_mail.render.engine import Templates
from reallabor_mail.web.limits import BodyLimit, ServerLimits
from reallabor_mail.web.signup_queue import ConfirmationQueue, QueuedMail, SignupLimits

Clock = Callable[[], dt.datetime]

FORM_ERRORS = {  # the form's word for each field problem (every control character reads "line break")
    Code.FIELD_REQUIRED: "err_required", Code.FIELD_EMAIL: "err_email", Code.FIELD_TOO_LONG: "err_too_long",
    Code.FIELD_CONTROL_CHARACTER: "err_line_break", Code.FIELD_FORMULA: "err_formula",
    Code.FIELD_SALUTATION: "err_salutation", Code.FIELD_LANGUAGE: "err_language",
}  # fmt: skip
WORDS: dict[Language, dict[str, str]] = {
    "de": {
        "subscribe_title": "Newsletter und Einladungen abonnieren",
        "subscribe_intro": "Tragen Sie sich ein, um unseren Newsletter und Einladungen zu unseren Veranstaltungen "
        "per E-Mail zu erhalten. Sie bekommen danach eine E-Mail mit einem Bestätigungslink.",
        "email": "E-Mail-Adresse", "salutation": "Anrede", "salutation_none": "keine Angabe",
        "Frau": "Frau", "Herr": "Herr", "title": "Titel", "first_name": "Vorname", "last_name": "Nachname",
        "organisation": "Organisation / Kommune", "language": "Sprache der E-Mails",
        "lists": "Was möchten Sie erhalten?",
        "optional": "freiwillig", "honeypot": "Bitte dieses Feld leer lassen",
        "consent": "Ja, ich möchte E-Mails von {org} erhalten. Meine Angaben werden nur dafür gespeichert; "
        "ich kann mich jederzeit über den Link in jeder E-Mail abmelden. Datenschutzhinweise: {privacy}",
        "submit": "Abonnieren",
        "errors": "Bitte prüfen Sie Ihre Angaben:",
        "err_required": "Bitte geben Sie Ihre E-Mail-Adresse an.",
        "err_email": "Diese E-Mail-Adresse ist ungültig.",
        "err_too_long": "Diese Angabe ist zu lang.",
        "err_line_break": "Bitte ohne Zeilenumbruch.",
        "err_formula": "Bitte nicht mit =, +, - oder @ beginnen.",
        "err_salutation": "Bitte wählen Sie Frau, Herr oder keine Angabe.",
        "err_language": "Bitte wählen Sie eine Sprache.",
        "err_lists": "Bitte wählen Sie mindestens eine Liste.",
        "err_consent": "Bitte bestätigen Sie die Einwilligung.",
        "check_inbox_title": "Bitte prüfen Sie Ihr Postfach",
        "check_inbox": "Wir haben Ihnen eine E-Mail geschickt. Bitte klicken Sie auf den Link darin, um Ihr "
        "Abonnement zu bestätigen. Ohne Bestätigung löschen wir Ihre Angaben nach 30 Tagen.",
        "confirm_title": "Abonnement bestätigen",
        "confirm_text": "Bitte bestätigen Sie, dass {email} unsere E-Mails erhalten möchte.",
        "confirm_button": "Jetzt bestätigen",
        "confirmed_title": "Vielen Dank!",
        "confirmed": "Ihr Abonnement ist bestätigt. Sie erhalten ab jetzt unsere E-Mails.",
        "nothing_to_confirm": "Es gibt nichts (mehr) zu bestätigen: Das Abonnement wurde schon bestätigt, "
        "abgemeldet oder nach 30 Tagen gelöscht. Sie können sich jederzeit neu eintragen.",
        "nothing_to_confirm_title": "Nichts zu bestätigen",
        "unsubscribe_title": "Abmelden",
        "unsubscribe_text": "Möchten Sie {email} von „{list}“ abmelden?",
        "unsubscribe_button": "Abmelden",
        "unsubscribed_title": "Sie sind abgemeldet",
        "unsubscribed": "{email} erhält keine E-Mails von „{list}“ mehr.",
        "invalid_title": "Dieser Link funktioniert nicht",
        "invalid": "Der Link ist ungültig oder abgelaufen. Es wurde nichts geändert. Bitte verwenden Sie den Link "
        "aus der E-Mail vollständig oder tragen Sie sich neu ein.",
        "too_many_title": "Zu viele Versuche",
        "too_many": "Bitte versuchen Sie es in einer Stunde noch einmal.",
        "mail_subject": "Bitte bestätigen Sie Ihr Abonnement",
        "mail_intro": "Sie (oder jemand mit Ihrer Adresse) haben sich für E-Mails von {org} eingetragen:",
        "mail_action": "Bitte bestätigen Sie das mit diesem Link (gültig 7 Tage):",
        "mail_ignore": "Wenn Sie das nicht waren, ignorieren Sie diese E-Mail einfach; Ihre Adresse wird dann "
        "nach 30 Tagen gelöscht.",
        "subscribe_link": "Newsletter abonnieren",
    },
    "uk": {
        "subscribe_title": "Підписатися на розсилку та запрошення",
        "subscribe_intro": "Підпишіться, щоб отримувати нашу розсилку та запрошення на заходи електронною поштою. "
        "Після цього ви отримаєте лист із посиланням для підтвердження.",
        "email": "Електронна пошта", "salutation": "Звертання", "salutation_none": "не вказано",
        "Frau": "Пані", "Herr": "Пан", "title": "Науковий ступінь / звання", "first_name": "Ім'я",
        "last_name": "Прізвище", "organisation": "Організація / громада", "language": "Мова листів",
        "lists": "Що ви хочете отримувати?", "optional": "необов'язково", "honeypot": "Залиште це поле порожнім",
        "consent": "Так, я хочу отримувати листи від {org}. Мої дані зберігаються лише для цього; "
        "я можу будь-коли відписатися за посиланням у кожному листі. Захист даних: {privacy}",
        "submit": "Підписатися",
        "errors": "Будь ласка, перевірте дані:",
        "err_required": "Будь ласка, вкажіть адресу електронної пошти.",
        "err_email": "Ця адреса електронної пошти недійсна.",
        "err_too_long": "Цей запис задовгий.",
        "err_line_break": "Будь ласка, без розриву рядка.",
        "err_formula": "Будь ласка, не починайте з =, +, - або @.",
        "err_salutation": "Будь ласка, оберіть «Пані», «Пан» або «не вказано».",
        "err_language": "Будь ласка, оберіть мову.",
        "err_lists": "Будь ласка, оберіть принаймні один список.",
        "err_consent": "Будь ласка, підтвердьте згоду.",
        "check_inbox_title": "Перевірте свою поштову скриньку",
        "check_inbox": "Ми надіслали вам лист. Натисніть на посилання в ньому, щоб підтвердити підписку. "
        "Без підтвердження ми видалимо ваші дані через 30 днів.",
        "confirm_title": "Підтвердження підписки",
        "confirm_text": "Будь ласка, підтвердьте, що {email} хоче отримувати наші листи.",
        "confirm_button": "Підтвердити",
        "confirmed_title": "Дякуємо!",
        "confirmed": "Вашу підписку підтверджено. Відтепер ви отримуватимете наші листи.",
        "nothing_to_confirm": "Підтверджувати нічого: підписку вже підтверджено, скасовано або видалено через "
        "30 днів. Ви можете підписатися знову будь-коли.",
        "nothing_to_confirm_title": "Нічого підтверджувати",
        "unsubscribe_title": "Відписатися",
        "unsubscribe_text": "Відписати {email} від «{list}»?",
        "unsubscribe_button": "Відписатися",
        "unsubscribed_title": "Ви відписалися",
        "unsubscribed": "{email} більше не отримуватиме листів «{list}».",
        "invalid_title": "Це посилання не працює",
        "invalid": "Посилання недійсне або застаріле. Нічого не змінено. Скористайтеся повним посиланням із листа "
        "або підпишіться знову.",
        "too_many_title": "Забагато спроб",
        "too_many": "Будь ласка, спробуйте ще раз за годину.",
        "mail_subject": "Будь ласка, підтвердьте підписку",
        "mail_intro": "Ви (або хтось із вашою адресою) підписалися на листи від {org}:",
        "mail_action": "Будь ласка, підтвердьте це за посиланням (дійсне 7 днів):",
        "mail_ignore": "Якщо це були не ви, просто проігноруйте цей лист; вашу адресу буде видалено через 30 днів.",
        "subscribe_link": "Підписатися на розсилку",
    },
    "en": {
        "subscribe_title": "Subscribe to the newsletter and invitations",
        "subscribe_intro": "Sign up to receive our newsletter and invitations to our events by email. You will then "
        "get an email with a confirmation link.",
        "email": "Email address", "salutation": "Salutation", "salutation_none": "none",
        "Frau": "Ms", "Herr": "Mr", "title": "Title", "first_name": "First name", "last_name": "Last name",
        "organisation": "Organisation / municipality", "language": "Language of the emails",
        "lists": "What would you like to receive?", "optional": "optional", "honeypot": "Leave this field empty",
        "consent": "Yes, I want to receive emails from {org}. My details are stored for this purpose only; "
        "I can unsubscribe at any time with the link in every email. Privacy notice: {privacy}",
        "submit": "Subscribe",
        "errors": "Please check your details:",
        "err_required": "Please enter your email address.",
        "err_email": "This email address is not valid.",
        "err_too_long": "This is too long.",
        "err_line_break": "Please use a single line.",
        "err_formula": "Please do not start with =, +, - or @.",
        "err_salutation": "Please choose Ms, Mr or none.",
        "err_language": "Please choose a language.",
        "err_lists": "Please choose at least one list.",
        "err_consent": "Please confirm your consent.",
        "check_inbox_title": "Please check your inbox",
        "check_inbox": "We have sent you an email. Please click the link in it to confirm your subscription. "
        "Without confirmation we delete your details after 30 days.",
        "confirm_title": "Confirm your subscription",
        "confirm_text": "Please confirm that {email} wants to receive our emails.",
        "confirm_button": "Confirm now",
        "confirmed_title": "Thank you!",
        "confirmed": "Your subscription is confirmed. You will receive our emails from now on.",
        "nothing_to_confirm": "There is nothing (left) to confirm: the subscription was already confirmed, "
        "cancelled, or deleted after 30 days. You can sign up again at any time.",
        "nothing_to_confirm_title": "Nothing to confirm",
        "unsubscribe_title": "Unsubscribe",
        "unsubscribe_text": "Do you want to unsubscribe {email} from “{list}”?",
        "unsubscribe_button": "Unsubscribe",
        "unsubscribed_title": "You are unsubscribed",
        "unsubscribed": "{email} will no longer receive emails from “{list}”.",
        "invalid_title": "This link does not work",
        "invalid": "The link is invalid or has expired. Nothing was changed. Please use the complete link from the "
        "email, or sign up again.",
        "too_many_title": "Too many attempts",
        "too_many": "Please try again in an hour.",
        "mail_subject": "Please confirm your subscription",
        "mail_intro": "You (or someone with your address) signed up for emails from {org}:",
        "mail_action": "Please confirm with this link (valid for 7 days):",
        "mail_ignore": "If this was not you, simply ignore this email; your address will be deleted after 30 days.",
        "subscribe_link": "Subscribe to the newsletter",
    },
}  # fmt: skip

LIST_LABELS: dict[str, dict[Language, str]] = {
    "newsletter": {
        "de": "Newsletter (vierteljährlich)", "uk": "Розсилка (щоквартально)", "en": "Newsletter (quarterly)",
    },
    "reallabor": {
        "de": "Einladungen zum Reallabor Ukraine",
        "uk": "Запрошення до «Реальної лабораторії Україна»",
        "en": "Invitations to the Reallabor Ukraine",
    },
}  # fmt: skip


def list_label(name: str, language: Language) -> str:
    return LIST_LABELS.get(name, {}).get(language, name)


class SlidingWindow:
    """At most ``limit`` events per key within ``window``; keeps only what the window still needs."""

    def __init__(self, limit: int, window: dt.timedelta) -> None:
        self.limit = limit
        self.window = window
        self._hits: dict[str, deque[dt.datetime]] = {}

    def allow(self, key: str, now: dt.datetime) -> bool:
        """Count an attempt for ``key``; False (and not counted) if the limit is reached."""
        if len(self._hits) > 10_000:
            self._hits = {k: v for k, v in self._hits.items() if v and v[-1] > now - self.window}
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return False
        hits.append(now)
        return True


@dataclass
class PublicConfig:
    """What the public server needs; ``clock`` and ``transport`` are injected so tests run real parts.

    Every confirmation mail leaves through ``transport`` (the one the campaigns use), DKIM-signed by
    ``signer`` when one is configured.
    """

    site: Site
    templates: Path
    state: Path
    secret: bytes
    lists: tuple[str, ...]
    transport: Transport
    signer: DkimSigner | None = None
    build_dir: Path | None = None
    clock: Clock = field(default=lambda: dt.datetime.now(dt.UTC))
    per_ip: SlidingWindow = field(default_factory=lambda: SlidingWindow(10, dt.timedelta(hours=1)))
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


class PublicSite:
    """The handlers of the public pages, sharing one state connection and one templates folder."""

    def __init__(self, config: PublicConfig) -> None:
        self.config = config
        self.site = config.site
        self.templates = Templates(config.templates)
        self.conn: sqlite3.Connection = connect(config.state)
        self.queue = ConfirmationQueue(
            self.conn, secret=config.secret, limits=config.signup_limits, clock=config.clock,
            transport=config.transport, signer=config.signer, compose=self.confirmation_mail,
        )  # fmt: skip

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

    def page(self, name: str, language: Language, status: int = 200, **values: Any) -> HTMLResponse:
        """Render one of our pages (they extend ``web/base.html.j2``); never cached, no Referer sent."""
        public = self.site.public_url
        context = {
            "site": self.site,
            "t": strings(language),
            "w": WORDS[language],
            "lang": language,
            "page_title": values["title"],
            "description": "",
            "alternates": [],
            "archive_url": layout.url(public, layout.ARCHIVE),
            "feed_url": layout.url(public, layout.ATOM_FEED),
            "calendar_url": layout.url(public, layout.CALENDAR_FEED),
            "languages": [(code, strings(code)["language_name"]) for code in LANGUAGES],
            **values,
        }
        return HTMLResponse(self.templates.render(name, context), status_code=status, headers=_PAGE_HEADERS)

    def message(self, key: str, language: Language, status: int = 200, **fmt: str) -> HTMLResponse:
        """A page with a heading and one paragraph: ``WORDS[key + "_title"]`` and ``WORDS[key]``."""
        words = WORDS[language]
        return self.page(
            "web/message.html.j2", language, status, title=words[f"{key}_title"], text=words[key].format(**fmt)
        )

    def consent_text(self, language: Language) -> str:
        return WORDS[language]["consent"].format(org=self.site.organisation, privacy=self.site.privacy_url)

    def form(
        self, language: Language, errors: dict[str, str] | None = None,
        values: dict[str, Any] | None = None, status: int = 200,
    ) -> HTMLResponse:
        return self.page(
            "web/subscribe.html.j2", language, status,
            title=WORDS[language]["subscribe_title"],
            errors=errors or {},
            values=values or {"language": language, "lists": list(self.config.lists[:1])},
            lists=[(name, list_label(name, language)) for name in self.config.lists],
            consent=self.consent_text(language),
        )

    @staticmethod
    def ip(request: Request) -> str | None:
        return request.client.host if request.client else None

    # --- subscribe -----------------------------------------------------------------------------

    async def subscribe_form(self, request: Request) -> Response:
        return self.form(self.language(request))

    async def subscribe(self, request: Request) -> Response:
        form = await request.form()
        language = self.language(request, form)
        words = WORDS[language]
        if str(form.get("website") or ""):  # the honeypot: people do not see it, bots fill it in
            return self.message("check_inbox", language)
        raw = {name: str(form.get(name) or "") for name in PERSON_FIELDS}
        chosen = [name for name in form.getlist("lists") if name in self.config.lists]
        person, problems = clean_person(raw)
        errors = {p.field: words[FORM_ERRORS[p.code]] for p in problems}
        if not chosen:
            errors["lists"] = words["err_lists"]
        if not form.get("consent"):
            errors["consent"] = words["err_consent"]
        if person is None or errors:
            typed = {**raw, "lists": chosen, "consent": bool(form.get("consent"))}
            return self.form(language, errors, typed, status=400)
        now = self.config.clock()
        if not self.config.per_ip.allow(f"ip:{self.ip(request)}", now):
            return self.message("too_many", language, 429)
        signup = recipients.sign_up(
            self.conn, person, chosen, consent_text=self.consent_text(language), consent_language=language,
            ip=self.ip(request), now=now,
        )  # fmt: skip
        if signup.pending:
            self.queue.offer(signup.email, signup.pending, person.language)
        return self.message("check_inbox", language)

    def confirmation_mail(self, mail: QueuedMail, now: dt.datetime) -> EmailMessage | None:
        """The double opt-in mail, plain text, in the language chosen on the form; None when none of
        its lists waits for confirmation any more (confirmed, erased or purged since the sign-up).

        It carries nothing a stranger chose except the address: no name in the greeting or ``To:``.
        """
        stored = recipients.find(self.conn, mail.email)
        waiting = {m.list_name for m in stored.memberships if m.status == "pending"} if stored else set()
        lists = [name for name in mail.lists if name in waiting]
        if not lists:
            return None
        language = mail.language
        words = WORDS[language]
        link = links.confirm_url(self.site, mail.email, lists, self.config.secret, now=now)
        body = self.templates.render("email/confirm.txt.j2", {
            "site": self.site, "t": strings(language), "w": words, "link": link,
            "greeting": greeting(Recipient(mail.email), language),
            "intro": words["mail_intro"].format(org=self.site.organisation),
            "lists": [list_label(name, language) for name in lists],
        })  # fmt: skip
        return build_notice(
            self.site, to=mail.email, subject=words["mail_subject"], text=body, language=language,
            key=f"confirm:{mail.id}:{mail.attempts}:{now.isoformat()}", secret=self.config.secret, date=now,
        )  # fmt: skip

    # --- confirm -------------------------------------------------------------------------------

    def confirm_token(self, request: Request) -> tuple[str, list[str]] | None:
        try:
            return links.read_confirm_token(self.config.secret, request.path_params["token"],
                                                 now=self.config.clock())  # fmt: skip
        except InvalidToken:
            return None

    async def confirm_page(self, request: Request) -> Response:
        """GET (and HEAD): the page with the button; nothing changes."""
        if (read := self.confirm_token(request)) is None:
            return self.message("invalid", self.language(request), 400)
        language = self.reader_language(request, read[0])
        return self.page("web/confirm.html.j2", language, title=WORDS[language]["confirm_title"], email=read[0])

    async def confirm(self, request: Request) -> Response:
        """POST: the button was pressed; the pending lists become subscribed."""
        if (read := self.confirm_token(request)) is None:
            return self.message("invalid", self.language(request), 400)
        email, lists = read
        language = self.reader_language(request, email)
        done = recipients.confirm(
            self.conn, email, lists, ip=self.ip(request), now=self.config.clock(), secret=self.config.secret
        )
        return self.message("confirmed" if done else "nothing_to_confirm", language)

    # --- unsubscribe ---------------------------------------------------------------------------

    def unsubscribe_token(self, request: Request) -> tuple[str, str] | None:
        try:
            return links.read_unsubscribe_token(self.config.secret, request.path_params["token"],
                                                     now=self.config.clock())  # fmt: skip
        except InvalidToken:
            return None

    async def unsubscribe_page(self, request: Request) -> Response:
        """GET (and HEAD): the page with the button; nothing changes."""
        if (read := self.unsubscribe_token(request)) is None:
            return self.message("invalid", self.language(request), 400)
        email, list_name = read
        language = self.reader_language(request, email)
        return self.page(
            "web/unsubscribe.html.j2", language, title=WORDS[language]["unsubscribe_title"],
            email=email, list=list_label(list_name, language),
        )  # fmt: skip

    async def unsubscribe(self, request: Request) -> Response:
        """POST: the page's button, or a mail program's RFC 8058 one-click request."""
        if (read := self.unsubscribe_token(request)) is None:
            return self.message("invalid", self.language(request), 400)
        email, list_name = read
        language = self.reader_language(request, email)
        form = await request.form()
        one_click = form.get("List-Unsubscribe") == "One-Click" and form.get("via") != "page"
        recipients.unsubscribe(
            self.conn, email, list_name, now=self.config.clock(), ip=self.ip(request),
            source="one-click (RFC 8058)" if one_click else "unsubscribe page",
        )  # fmt: skip
        return self.message("unsubscribed", language, email=email, list=list_label(list_name, language))

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
        ]
        if self.config.build_dir is not None:
            routes.append(Mount("/", Archive(directory=self.config.build_dir, html=True)))
        return routes

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """While the server runs, the outbox of confirmation mails is worked off in the background."""
        worker = asyncio.create_task(self.queue.run(self.config.outbox_poll_seconds))
        try:
            yield
        finally:
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
