"""Registration for events on the public server (``registration: form`` in an event's front matter).

``GET /events/<stem>/register`` shows the form; its POST is checked like the sign-up's (CSRF, honeypot,
the per-client allowance, the per-mailbox and hourly caps of the confirmation mails) and answered with
the same page whatever the address's state. The double opt-in mail links to a page with one button;
its POST confirms: a seat if one is free, else the end of the waiting list (the counting is in
:mod:`reallabor_mail.mailbox.attendance`, one write transaction). The confirmed person gets a mail with
the event as a calendar invitation (METHOD:REQUEST, them as ATTENDEE) or their waiting position, and a
signed cancel link (again a page with one button); a freed seat (a cancellation, an erasure, a raised
capacity: checked on each confirmation and cancellation, at start and every outbox poll) moves the first on
the waiting list up, who is told by mail with the invitation. Link scanners send GET and HEAD: those
change nothing.

Every mail goes through the server's one outbox (:class:`~reallabor_mail.web.signup_queue.ConfirmationQueue`);
its rows name the mail as ``<kind>:<stem>`` in place of list names, and the mail is composed when it
leaves from the registration's state then (a mail no longer true is dropped). Registration closes at
the end of the ``deadline`` day (the event's time zone), at the start of the event, and for a cancelled
event. The events are those the server was started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
from email.message import EmailMessage
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from reallabor_mail.addresses import address_key
from reallabor_mail.content.loader import EventItem
from reallabor_mail.content.models import EventStatus, Language
from reallabor_mail.db import transaction
from reallabor_mail.delivery.event_versions import last_sent_version
from reallabor_mail.errors import ReallaborError
from reallabor_mail.i18n.dates import date_line
from reallabor_mail.i18n.greetings import greeting
from reallabor_mail.i18n.messages import translations
from reallabor_mail.mail.message import CalendarPart, build_notice
from reallabor_mail.mailbox import attendance
from reallabor_mail.mailbox.attendance import FormRegistration
from reallabor_mail.recipients.links import CONFIRM_DAYS
from reallabor_mail.recipients.person import PERSON_FIELDS, Recipient, clean_person
from reallabor_mail.recipients.tokens import InvalidToken, make_token, read_token
from reallabor_mail.render import paths as layout
from reallabor_mail.render.ics import event_page_url, place, plan_version
from reallabor_mail.web.signup_queue import QueuedMail

if TYPE_CHECKING:
    from reallabor_mail.web.public import PublicSite

# The outbox rows of registration mails: "<kind>:<stem>" where sign-ups name their lists.
MAIL_KINDS = ("register", "registered", "moved_up")


def is_registration_mail(mail: QueuedMail) -> bool:
    return len(mail.lists) == 1 and mail.lists[0].partition(":")[0] in MAIL_KINDS


def takes_form(event: EventItem) -> bool:
    return event.meta.registration is not None and event.meta.registration.form


def closed(event: EventItem, now: dt.datetime) -> bool:
    """Whether the form takes no more registrations: cancelled event, started, or past the deadline day."""
    meta = event.meta
    if meta.status is EventStatus.CANCELLED or now >= meta.start:
        return True
    deadline = meta.registration.deadline if meta.registration else None
    return deadline is not None and now.astimezone(meta.start.tzinfo).date() > deadline


class Registrations:
    """The registration pages of the public server; they share its connection, outbox and page helpers."""

    def __init__(self, public: PublicSite, events: tuple[EventItem, ...]) -> None:
        self.public = public
        self.events = {event.stem: event for event in events if takes_form(event)}

    # --- links ---------------------------------------------------------------------------------

    def _url(self, purpose: str, event: EventItem, email: str, expires: dt.datetime, **extra: str) -> str:
        token = make_token(self.public.config.secret, purpose, {"e": address_key(email), "v": event.stem, **extra},
                           expires=expires)  # fmt: skip
        return f"{self.public.site.public_url}/events/{event.stem}/{purpose}/{token}"

    def details_digest(self, person: Recipient) -> str:
        """A keyed digest of the details a confirmation mail was sent for (the link carries it, not the names)."""
        details = "\x00".join(str(getattr(person, name) or "") for name in PERSON_FIELDS)
        mac = hmac.new(self.public.config.secret, b"registration-details\x00" + details.encode("utf-8"), "sha256")
        return mac.hexdigest()[:24]

    def confirm_url(self, event: EventItem, found: FormRegistration, now: dt.datetime) -> str:
        """The double opt-in link: valid :data:`CONFIRM_DAYS` days, never beyond the event's start; it confirms
        only the details it was sent for (a later form sending for the address voids it)."""
        expires = min(now + dt.timedelta(days=CONFIRM_DAYS), event.meta.start)
        return self._url("confirm", event, found.email, expires, d=self.details_digest(found.person))

    def cancel_url(self, event: EventItem, email: str) -> str:
        """The cancel link of the confirmed: valid until the event starts."""
        return self._url("cancel", event, email, event.meta.start)

    def read_link(self, request: Request, purpose: str) -> tuple[EventItem, str] | None:
        """The event and address of a confirm or cancel link; None for anything but a valid link we made
        (a confirm link also when the details it was sent for were replaced since: see :meth:`current`)."""
        event = self.events.get(request.path_params["stem"])
        if event is None:
            return None
        try:
            data = read_token(self.public.config.secret, purpose, request.path_params["token"],
                              now=self.public.config.clock(), fields=("e", "v"))  # fmt: skip
        except InvalidToken:
            return None
        if data["v"] != event.stem or address_key(data["e"]) != data["e"]:
            return None
        if purpose == "confirm":
            found = attendance.form_registration(self.public.conn, event.stem, data["e"])
            if found is not None and found.state == "pending" and data.get("d") != self.details_digest(found.person):
                return event, ""  # the address's details were replaced by a later form sending
        return event, data["e"]

    # --- pages ---------------------------------------------------------------------------------

    def language(self, request: Request, event: EventItem, email: str) -> Language:
        """For a link from a mail: the language chosen on the form, unless ``?lang=`` asks otherwise."""
        found = attendance.form_registration(self.public.conn, event.stem, email)
        if found is None or "lang" in request.query_params:
            return self.public.language(request)
        return found.person.language

    def not_found(self, request: Request) -> Response:
        language = self.public.language(request)
        words = translations(language)
        return self.public.message(language, words.gettext("No registration here"), words.gettext(
            "We know no event with registration at this address. Please use the link on the event page."
        ), 404)  # fmt: skip

    def closed_page(self, event: EventItem, language: Language, status: int = 200) -> Response:
        words = translations(language)
        title = event.version(language).meta.title
        return self.public.message(language, words.gettext("Registration is closed"), words.gettext(
            "Registration for “{event}” is closed. Nothing was changed."
        ).format(event=title), status)  # fmt: skip

    def consent_text(self, event: EventItem, language: Language) -> str:
        site = self.public.site
        return translations(language).gettext(
            "Yes, I want to register for “{event}”. {org} stores my details to organise this event only; I can "
            "cancel with the link in the confirmation email. Privacy notice: {privacy}"
        ).format(event=event.version(language).meta.title, org=site.organisation, privacy=site.privacy_url)

    def when(self, event: EventItem, language: Language) -> str:
        meta = event.meta
        return date_line(meta.start, meta.end, self.public.site.partner_timezone, language)

    def seats_left(self, event: EventItem) -> int | None:
        capacity = event.meta.registration.capacity if event.meta.registration else None
        if capacity is None:
            return None
        counts = attendance.seat_counts(self.public.conn, event.stem)
        return max(capacity - counts["registered"], 0)

    def form(
        self, event: EventItem, language: Language, errors: dict[str, str] | None = None,
        values: dict[str, object] | None = None, status: int = 200,
    ) -> Response:  # fmt: skip
        from reallabor_mail.web.public import FORM_HEADERS

        words = translations(language)
        meta = event.version(language).meta
        return self.public.page(
            "web/register.html.j2", language, status, FORM_HEADERS,
            title=words.gettext("Register for the event"), event_title=meta.title, when=self.when(event, language),
            place=place(meta), seats_left=self.seats_left(event), errors=errors or {},
            values=values or {"language": language}, consent=self.consent_text(event, language),
        )  # fmt: skip

    async def form_page(self, request: Request) -> Response:
        """GET (and HEAD): the form, or the page saying registration is closed."""
        event = self.events.get(request.path_params["stem"])
        if event is None:
            return self.not_found(request)
        language = self.public.language(request)
        if closed(event, self.public.config.clock()):
            return self.closed_page(event, language)
        return self.form(event, language)

    async def register(self, request: Request) -> Response:
        """POST of the form: checked as the sign-up; every valid request gets the same answer."""
        from reallabor_mail.web.public import field_error

        public = self.public
        event = self.events.get(request.path_params["stem"])
        if event is None:
            return self.not_found(request)
        form = await request.form()
        language = public.language(request, form)
        words = translations(language)
        if public.cross_site(request):
            return public.message(language, words.gettext("Registration not accepted"), words.gettext(
                "Please register with the form on our website: {url}"
            ).format(url=layout.registration_url(public.site.public_url, event.stem, language)), 403)  # fmt: skip
        now = public.config.clock()
        if closed(event, now):
            return self.closed_page(event, language, 409)
        if str(form.get("website") or ""):  # the honeypot
            return self.check_inbox(language)
        raw = {name: str(form.get(name) or "") for name in PERSON_FIELDS}
        person, problems = clean_person(raw)
        errors = {p.field: field_error(p.code, words) for p in problems}
        for name in ("first_name", "last_name"):
            if not raw[name].strip() and name not in errors:
                errors[name] = words.gettext("Please enter your name.")
        if not form.get("consent"):
            errors["consent"] = words.gettext("Please confirm your consent.")
        if person is None or errors:
            return self.form(event, language, errors, {**raw, "consent": bool(form.get("consent"))}, status=400)
        if not public.clients.allow(public.ip(request)):
            return public.message(language, words.gettext("Too many attempts"),
                                  words.gettext("Please try again in an hour."), 429)  # fmt: skip
        with transaction(public.conn):  # one commit whatever the address's state: no timing tells it
            attendance.request_registration(public.conn, event.stem, person, now=now)
            public.queue.offer(address_key(person.email), [f"register:{event.stem}"], person.language)
        return self.check_inbox(language)

    def check_inbox(self, language: Language) -> Response:
        words = translations(language)
        return self.public.message(language, words.gettext("Please check your inbox"), words.gettext(
            "We have sent you an email. Please click the link in it to confirm your registration; it counts "
            "only once confirmed."
        ))  # fmt: skip

    async def confirm_page(self, request: Request) -> Response:
        """GET (and HEAD) of the double opt-in link: the page with the button; nothing changes."""
        if (read := self.read_link(request, "confirm")) is None:
            return self.public.invalid_link(request)
        event, email = read
        if not email:
            return self.replaced_page(request)
        language = self.language(request, event, email)
        words = translations(language)
        title = event.version(language).meta.title
        found = attendance.form_registration(self.public.conn, event.stem, email)
        text = words.gettext("Please confirm that {email} registers for “{event}”.").format(email=email, event=title)
        if found is not None and found.state == "pending":  # what the button confirms (escaped by the template)
            who = ", ".join(p for p in (found.name, found.person.organisation) if p)
            details = words.gettext("Details: {details}").format(details=who)
            text = f"{text} {details}"
        return self.public.page(
            "web/button.html.j2", language, title=words.gettext("Confirm your registration"), text=text,
            button=words.gettext("Confirm registration"),
        )  # fmt: skip

    def replaced_page(self, request: Request) -> Response:
        """A confirm link whose details a later form sending replaced: it confirms nothing."""
        language = self.public.language(request)
        words = translations(language)
        return self.public.message(language, words.gettext("Please use the newest email"), words.gettext(
            "The form was sent again for this address since this email; this link no longer confirms anything. "
            "Please use the link in the newest email, or send the form again."
        ), 409)  # fmt: skip

    async def confirm(self, request: Request) -> Response:
        """POST: a seat if one is free, else the waiting list; the mail saying which leaves through the outbox."""
        public = self.public
        if (read := self.read_link(request, "confirm")) is None:
            return public.invalid_link(request)
        event, email = read
        if not email:
            return self.replaced_page(request)
        language = self.language(request, event, email)
        words = translations(language)
        now = public.config.clock()
        if closed(event, now):
            return self.closed_page(event, language, 409)
        with transaction(public.conn):
            self.fill_seats(event)  # the waiting first: a newcomer never takes a seat someone waits for
            done = attendance.confirm_registration(public.conn, event, email, now=now)
            if done is not None:
                public.queue.send_soon(email, [f"registered:{event.stem}"], done.person.language)
        if done is None:
            return public.message(language, words.gettext("Nothing to confirm"), words.gettext(
                "There is nothing (left) to confirm: the registration was already confirmed or cancelled. You can "
                "register again with the form."
            ))  # fmt: skip
        if done.state == "registered":
            return public.message(language, words.gettext("You are registered"), words.gettext(
                "Thank you! Your seat is reserved. We have sent you an email with the calendar invitation and a "
                "link to cancel."
            ))  # fmt: skip
        return public.message(language, words.gettext("You are on the waiting list"), words.gettext(
            "All seats are taken. You are on the waiting list, at position {position}; when a seat becomes free, "
            "you move up and we tell you by email."
        ).format(position=done.position))  # fmt: skip

    async def cancel_page(self, request: Request) -> Response:
        """GET (and HEAD) of the cancel link: the page with the button; nothing changes."""
        if (read := self.read_link(request, "cancel")) is None:
            return self.public.invalid_link(request)
        event, email = read
        language = self.language(request, event, email)
        words = translations(language)
        title = event.version(language).meta.title
        return self.public.page(
            "web/button.html.j2", language, title=words.gettext("Cancel your registration"),
            text=words.gettext("Do you want to cancel the registration of {email} for “{event}”?").format(
                email=email, event=title),
            button=words.gettext("Cancel registration"),
        )  # fmt: skip

    async def cancel(self, request: Request) -> Response:
        """POST: the seat (or place) is given up; the first on the waiting list moves up and is told."""
        public = self.public
        if (read := self.read_link(request, "cancel")) is None:
            return public.invalid_link(request)
        event, email = read
        language = self.language(request, event, email)
        words = translations(language)
        with transaction(public.conn):
            cancelled, moved_up = attendance.cancel_registration(public.conn, event, email, now=public.config.clock())
            self.tell_moved_up(event, moved_up)
        if not cancelled:
            return public.message(language, words.gettext("Nothing to cancel"), words.gettext(
                "There is no registration (left) to cancel for this address."))  # fmt: skip
        return public.message(language, words.gettext("Registration cancelled"), words.gettext(
            "Your registration for “{event}” is cancelled. Thank you for letting us know."
        ).format(event=event.version(language).meta.title))  # fmt: skip

    # --- seats ---------------------------------------------------------------------------------

    def tell_moved_up(self, event: EventItem, moved_up: list[FormRegistration]) -> None:
        for found in moved_up:
            self.public.queue.send_soon(found.email, [f"moved_up:{event.stem}"], found.person.language)

    def fill_seats(self, event: EventItem) -> None:
        """Free seats to the waiting (:func:`~reallabor_mail.mailbox.attendance.fill_free_seats`), who are mailed."""
        now = self.public.config.clock()
        if closed(event, now):
            return
        with transaction(self.public.conn):
            self.tell_moved_up(event, attendance.fill_free_seats(self.public.conn, event, now=now))

    def fill_all_seats(self) -> None:
        """Every open event's free seats to its waiting: at server start and each outbox poll, so seats freed
        by an erasure (``recipients delete``, another process) or a raised ``capacity`` reach the waiting."""
        for event in self.events.values():
            self.fill_seats(event)

    async def tend_seats(self, poll_seconds: float) -> None:
        """The background task: :meth:`fill_all_seats` now and every ``poll_seconds``."""
        while True:
            with contextlib.suppress(ReallaborError):  # e.g. the state file locked too long: again at the next poll
                self.fill_all_seats()
            await asyncio.sleep(poll_seconds)

    # --- mails ---------------------------------------------------------------------------------

    def compose(self, mail: QueuedMail, now: dt.datetime) -> EmailMessage | None:
        """A registration mail as it stands now; None when it is no longer true (confirmed, cancelled,
        moved, erased since) or the event is gone from the server."""
        kind, _colon, stem = mail.lists[0].partition(":")
        event = self.events.get(stem)
        found = attendance.form_registration(self.public.conn, stem, mail.email) if event else None
        if event is None or found is None:
            return None
        wanted = {"register": ("pending",), "registered": ("registered", "waiting"), "moved_up": ("registered",)}
        if found.state not in wanted[kind]:
            return None
        template_kind = {"register": "confirm", "registered": found.state, "moved_up": "moved_up"}[kind]
        language = found.person.language
        words = translations(language)
        calendar = None
        if template_kind in ("registered", "moved_up"):
            calendar = self.invitation(event, found, now)
        link = self.confirm_url(event, found, now) if kind == "register" else self.cancel_url(event, mail.email)
        title = event.version(language).meta.title
        site = self.public.site
        body = self.public.templates.render("email/registration.txt.j2", {
            "site": site, "lang": language, "kind": template_kind, "link": link, "event_title": title,
            "when": self.when(event, language), "position": found.position,
            "page_url": event_page_url(site, event, language),
            # the double opt-in mail greets nobody by a name a stranger may have typed
            "greeting": greeting(Recipient(mail.email) if kind == "register" else found.person, language),
        })  # fmt: skip
        subject = {
            "confirm": words.gettext("Please confirm your registration: {event}"),
            "registered": words.gettext("Registration confirmed: {event}"),
            "waiting": words.gettext("Waiting list: {event}"),
            "moved_up": words.gettext("A seat is free for you: {event}"),
        }[template_kind].format(event=title)
        return build_notice(
            site, to=mail.email, subject=subject, text=body, language=language,
            key=f"registration:{mail.id}:{mail.attempts}:{now.isoformat()}", secret=self.public.config.secret,
            date=now, calendar=calendar,
        )  # fmt: skip

    def invitation(self, event: EventItem, found: FormRegistration, now: dt.datetime) -> CalendarPart:
        """The event as a calendar invitation to this person: the version last sent (so no client takes it
        for newer than the campaign's), with them as ATTENDEE."""
        plan = plan_version(self.public.site, event, last_sent_version(self.public.conn, event), now)
        invitation = plan.invitation(found.email, language=found.person.language, name=found.person.display_name)
        return CalendarPart(invitation.ics, invitation.method)

    def routes(self) -> list[BaseRoute]:
        """The form, the confirm and the cancel link (GET shows, POST acts)."""
        return [
            Route("/events/{stem}/register", self.form_page, methods=["GET"]),
            Route("/events/{stem}/register", self.register, methods=["POST"]),
            Route("/events/{stem}/confirm/{token}", self.confirm_page, methods=["GET"]),
            Route("/events/{stem}/confirm/{token}", self.confirm, methods=["POST"]),
            Route("/events/{stem}/cancel/{token}", self.cancel_page, methods=["GET"]),
            Route("/events/{stem}/cancel/{token}", self.cancel, methods=["POST"]),
        ]
