"""Reminder mails before an event (``reminder: 24h`` in its front matter, or the site's ``reminder:``).

The worker (:mod:`reallabor_mail.delivery.worker`) asks :func:`due` which reminders are due now and sends
each with :func:`send_reminder`. A reminder goes once per version of an event (campaign
``reminder:<stem>:<SEQUENCE>`` through the same ledger as every send, so a killed run continues without
duplicates) to everyone who was sent an invitation of the event and has neither declined
(:func:`reallabor_mail.delivery.schedule.declined`) nor unsubscribed. None for a cancelled event, none
once the event has begun, and none while an update of the event is still to be sent: the update goes
first, and its new version gets its own reminder if that is still ahead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from reallabor_mail.content.loader import Content, EventItem, is_cancelled
from reallabor_mail.content.models import Site
from reallabor_mail.db import Connection, StateLocation
from reallabor_mail.delivery import schedule
from reallabor_mail.delivery.campaign import Composer, StoreAudience, choose_transport, lock_campaign
from reallabor_mail.delivery.engine import DEFAULT_RETRY, RunReport, deliver
from reallabor_mail.delivery.event_versions import last_sent_version
from reallabor_mail.delivery.ledger import Ledger
from reallabor_mail.mail.dkim import DkimSigner
from reallabor_mail.mailbox import attendance
from reallabor_mail.publish.build import default_templates
from reallabor_mail.recipients import store as recipients
from reallabor_mail.recipients.person import Recipient
from reallabor_mail.recipients.tokens import load_secret
from reallabor_mail.render.engine import Renderer
from reallabor_mail.render.ics import Snapshot
from reallabor_mail.settings import Settings

Clock = Callable[[], dt.datetime]


def lead(site: Site, event: EventItem) -> dt.timedelta | None:
    """How long before the start the event's reminder goes out; None for no reminder (``reminder: off``)."""
    own = event.meta.reminder
    value = own if own is not None else site.reminder
    return value if value else None


@dataclass(frozen=True)
class DueReminder:
    """A reminder whose time has come: the event, the version its invitations carried, the campaign key."""

    event: EventItem
    sequence: int

    @property
    def key(self) -> str:
        return f"reminder:{self.event.stem}:{self.sequence}"


def due(content: Content, conn: Connection, now: dt.datetime) -> list[DueReminder]:
    """The reminders to send now: lead time reached, event not begun, invitations of this version out, not sent."""
    found = []
    for event in content.events:
        before = lead(content.site, event)
        if before is None or is_cancelled(event) or not event.meta.start - before <= now < event.meta.start:
            continue
        last = last_sent_version(conn, event)
        if last is None or last.fingerprint != Snapshot.of(event.meta).fingerprint:
            continue  # never invited, or an update is still to go out
        reminder = DueReminder(event, last.sequence)
        record = schedule.find(conn, reminder.key)
        if record is None or record.state != "sent":
            found.append(reminder)
    return found


def invited(conn: Connection, event: EventItem, secret: bytes) -> Iterator[tuple[Recipient, str]]:
    """Everyone sent an invitation of ``event`` (any version, test sends aside) who neither declined, nor
    cancelled a registration by form, nor left; then those with a seat by form (under the event's first list).

    With the list the invitation went to; an erased person (only a keyed hash left) is not among them.
    """
    prefix = f"event:{event.stem}:"
    rows = conn.execute(
        "SELECT campaign, email, list_name FROM send_ledger WHERE substr(campaign, 1, ?) = ? AND state = 'sent' "
        "ORDER BY id",
        (len(prefix), prefix),
    ).fetchall()
    declined = schedule.declined(conn, event.stem) | attendance.cancelled_by_form(conn, event.stem)
    seen: set[str] = set()
    for campaign, email, list_name in rows:
        if not campaign[len(prefix) :].isdigit() or email in seen or email in declined:
            continue
        stored = recipients.find(conn, email)
        if stored is None or recipients.is_suppressed(conn, email, secret):
            continue
        if recipients.is_subscribed(conn, email, [list_name]):
            seen.add(email)
            yield stored.recipient, list_name
    for person in attendance.form_audience(conn, event.stem):
        if person.email not in seen and not recipients.is_suppressed(conn, person.email, secret):
            seen.add(person.email)
            yield person, event.meta.lists[0]


def send_reminder(
    reminder: DueReminder, content: Content, conn: Connection, state: StateLocation, settings: Settings, clock: Clock,
    templates: Path | None = None,
) -> RunReport | None:  # fmt: skip
    """Send one reminder (or continue it after a crash); None if nobody is owed it."""
    site, event, key = content.site, reminder.event, reminder.key
    _via, open_transport = choose_transport(None, settings)
    signer = DkimSigner.from_settings(settings.dkim())
    secret = load_secret(settings)
    renderer = Renderer(content, templates or default_templates())
    lock = lock_campaign(state, key)
    try:
        composer = Composer(
            site, event, lambda language, _update: renderer.reminder_email(event, language), key, clock(), secret,
            None, signer,
        )
        for language in event.versions:  # render now: a template error shows before anything is recorded
            composer.email(language)
        ledger = Ledger(conn, clock)
        people = list(invited(conn, event, secret))
        schedule.mark(conn, key, "sending", clock())
        ledger.recover(key)  # rows in flight when a run was killed become `unknown`: never sent twice
        ledger.add(key, people)
        if ledger.summary(key)["pending"] == 0:
            schedule.mark_finished(conn, key, ledger.summary(key), clock())
            return None
        lists = sorted({*event.meta.lists, *(list_name for _, list_name in people)})
        registrants = frozenset(person.email for person in attendance.form_audience(conn, event.stem))
        # asked again before each message: unsubscribes count
        audience = StoreAudience(conn, secret, clock, lists, registrants)
        report = deliver(
            ledger, key, composer, open_transport(), sender=site.sender.email, audience=audience, retry=DEFAULT_RETRY
        )
        schedule.mark_finished(conn, key, ledger.summary(key), clock())
        return report
    finally:
        lock.release()
