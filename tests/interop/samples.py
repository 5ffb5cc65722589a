"""The sample output every independent checker reads: the built ICS files and the sample messages.

The sample content plus events years ahead on both sides of the DST switches, in Berlin and Kyiv, is
built once; beside the build's preview messages (newsletter de/uk, invitations) an update and a
cancellation of the closing event are composed the way ``send`` composes them.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from reallabor_mail.content.loader import Content, EventItem, load_content
from reallabor_mail.mail.message import CalendarPart, Campaign, as_bytes, build_message
from reallabor_mail.publish.build import PREVIEW_SECRET, build, unsubscribe_preview_url
from reallabor_mail.recipients.person import Recipient
from reallabor_mail.render import ics as calendar
from reallabor_mail.render.engine import Renderer

from ..calendar.test_calendar import CLOSING, event_named, plan_in_person, set_front_matter
from ..conftest import SAMPLE_CONTENT, TEMPLATES, TODAY

# stem → (zone, start, end): years ahead, the days around the switches of 2031 and 2040, two zones
FAR_EVENTS = {
    "2027-05-12-im-jahr-2027": ("Europe/Berlin", "2027-05-12 10:00", "2027-05-12 13:00"),
    "2031-03-29-vor-der-umstellung": ("Europe/Berlin", "2031-03-29 14:00", "2031-03-29 15:30"),
    "2031-03-31-nach-der-umstellung": ("Europe/Berlin", "2031-03-31 14:00", "2031-03-31 15:30"),
    "2031-10-25-vor-der-winterzeit": ("Europe/Kyiv", "2031-10-25 11:00", "2031-10-25 12:00"),
    "2031-10-27-nach-der-winterzeit": ("Europe/Kyiv", "2031-10-27 11:00", "2031-10-27 12:00"),
    "2040-07-15-sommer-2040": ("Europe/Berlin", "2040-07-15 10:00", "2040-07-15 12:00"),
    "2040-12-02-winter-2040": ("Europe/Berlin", "2040-12-02 10:00", "2040-12-02 12:00"),
}
TEMPLATE_EVENT = "2023-09-19-kollegialer-austausch"


@dataclass(frozen=True)
class Samples:
    """What the checkers read: ICS files (name → text) and messages (name → bytes), and the content."""

    content: Content
    ics: dict[str, str]
    messages: dict[str, bytes]

    def event(self, uid: str) -> EventItem:
        return next(e for e in self.content.events if calendar.event_uid(self.content.site, e) == uid)


def calendar_text(message: bytes) -> str:
    """The inline text/calendar part of a message."""
    msg = message_from_bytes(message, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    (part,) = [p for p in msg.walk() if p.get_content_type() == "text/calendar"]
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode("utf-8")


# the update and the cancellation go to a town whose domain has umlauts (punycode on the wire)
UMLAUT_RECIPIENT = Recipient("rathaus@städtepartner-münster.de", None, None, None, None, "Stadt Münster", "de")


def _message(content: Content, event: EventItem, plan: calendar.EventPlan, kind: str) -> bytes:
    site = content.site
    recipient = UMLAUT_RECIPIENT
    email = Renderer(content, TEMPLATES).invitation_email(event, "de", plan.changes("de"))
    invite = plan.invitation(recipient.email, language="de", name=recipient.display_name)
    campaign = Campaign(f"event:{event.stem}:{plan.sequence}", event.meta.lists[0], plan.dtstamp)
    unsubscribe = unsubscribe_preview_url(site.public_url)
    msg = build_message(
        site, email, recipient, campaign, secret=PREVIEW_SECRET, unsubscribe_url=unsubscribe,
        calendar=CalendarPart(invite.ics, invite.method),
    )  # fmt: skip
    assert (plan.method, plan.is_update or plan.method == "CANCEL") == (kind, True)
    return as_bytes(msg)


def make_samples(folder: Path) -> Samples:
    """Build the sample content with the far events into ``folder``; compose the update and cancellation."""
    content_dir = folder / "content"
    shutil.copytree(SAMPLE_CONTENT, content_dir)
    events = content_dir / "events"
    template = (events / f"{TEMPLATE_EVENT}.md").read_text(encoding="utf-8")
    for stem, (zone, start, end) in FAR_EVENTS.items():
        (events / f"{stem}.md").write_text(template, encoding="utf-8")
        set_front_matter(events / f"{stem}.md", timezone=f'"{zone}"', start=start, end=end)
    out = folder / "build"
    build(content_dir, TEMPLATES, out, today=TODAY)
    ics = {str(p.relative_to(out)): p.read_text(encoding="utf-8") for p in sorted(out.rglob("*.ics"))}
    messages = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("preview*.eml"))}

    # the closing event: invited in person, then moved online (an update), then cancelled
    original = (events / f"{CLOSING}.md").read_text(encoding="utf-8")
    plan_in_person(content_dir)
    first = calendar.Snapshot.of(event_named(load_content(content_dir), CLOSING).meta)
    (events / f"{CLOSING}.md").write_text(original, encoding="utf-8")
    content = load_content(content_dir)
    event = event_named(content, CLOSING)
    sent = calendar.SentVersion(CLOSING, 0, first.fingerprint, dt.datetime(2024, 5, 20, 8, 0, tzinfo=dt.UTC))
    update = calendar.plan_version(content.site, event, sent, dt.datetime(2024, 6, 17, 8, 0, tzinfo=dt.UTC))
    messages["update.eml"] = _message(content, event, update, "REQUEST")
    set_front_matter(events / f"{CLOSING}.md", status="cancelled")
    cancelled = load_content(content_dir)
    updated = calendar.SentVersion(CLOSING, 1, update.fingerprint, update.dtstamp)
    cancel_event = event_named(cancelled, CLOSING)
    cancel = calendar.plan_version(cancelled.site, cancel_event, updated, dt.datetime(2024, 6, 18, 8, 0, tzinfo=dt.UTC))
    messages["cancellation.eml"] = _message(cancelled, cancel_event, cancel, "CANCEL")
    (events / f"{CLOSING}.md").write_text(original, encoding="utf-8")
    for name, data in messages.items():
        if name.startswith("events/") or name in ("update.eml", "cancellation.eml"):
            ics[f"{name} (calendar part)"] = calendar_text(data)
    return Samples(load_content(content_dir), ics, messages)
