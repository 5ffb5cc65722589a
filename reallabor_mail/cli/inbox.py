"""``reallabor-mail inbox``: read the organiser's mailbox and say what was filed (mailbox/filing.py does the work)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from reallabor_mail.cli.recipients import CONTENT, STATE
from reallabor_mail.cli.translated import TranslatedCommand
from reallabor_mail.errors import ReallaborError
from reallabor_mail.i18n.messages import N_, _, ngettext
from reallabor_mail.settings import ENV_IMAP_PREFIX, Settings

if TYPE_CHECKING:
    from reallabor_mail.mailbox.filing import Filed, InboxReport

NO_MAILBOX = N_(
    "{prefix}HOST is not set, so there is no mailbox to read: set {prefix}HOST, {prefix}USER and {prefix}PASSWORD "
    "(and {prefix}FOLDER, {prefix}PORT, {prefix}SECURITY=tls|starttls|none), or read a Maildir with --maildir DIR"
)


def reason_text(filed: Filed) -> str:
    """Why a message was left for staff, as a sentence (the detail follows it)."""
    from reallabor_mail.mailbox.filing import Reason

    texts = {
        Reason.UNREADABLE: _("could not be read (broken MIME)"),
        Reason.UNKNOWN_EVENT: _("a calendar answer for an event we did not send"),
        Reason.NOT_INVITED: _("a calendar answer from an address that was not invited"),
        Reason.OTHER_SENDER: _("a calendar answer sent from another address than the attendee's"),
        Reason.UNUSUAL_ANSWER: _("a calendar answer other than accept, decline or tentative"),
        Reason.COUNTER: _("proposes another time (not applied)"),
        Reason.OTHER_METHOD: _("a calendar message that is not an answer"),
        Reason.BOUNCE_UNMATCHED: _("a bounce for no message we sent (nobody suppressed)"),
        Reason.UNSUBSCRIBE_WITHOUT_TOKEN: _(
            "asks to unsubscribe without the link's token; check and use `recipients unsubscribe` by hand"
        ),
        Reason.UNSUBSCRIBE_BAD_TOKEN: _("asks to unsubscribe with a forged or altered token (nobody unsubscribed)"),
        Reason.FOR_A_HUMAN: _("for a human"),
    }
    return texts.get(filed.reason, filed.reason.value)


def report_lines(report: InboxReport) -> list[str]:
    """What a run did, as shown: counts per kind, the addresses taken off, the messages left for staff."""
    from reallabor_mail.mailbox.classify import Kind

    counts = report.counts
    lines = [
        ngettext("{source}: {count} new message", "{source}: {count} new messages", len(report.filed),
                 source=report.source)
        + (" " + ngettext("({count} read before)", "({count} read before)", report.already) if report.already else ""),
        "  " + ngettext("calendar answers: {count}", "calendar answers: {count}", counts[Kind.CALENDAR_REPLY]),
        "  " + ngettext("time proposals: {count}", "time proposals: {count}", counts[Kind.COUNTER]),
        "  " + ngettext("bounces: {count}", "bounces: {count}", counts[Kind.BOUNCE]),
        "  " + ngettext("unsubscribe mails: {count}", "unsubscribe mails: {count}", counts[Kind.UNSUBSCRIBE]),
        "  " + ngettext("auto-replies (ignored): {count}", "auto-replies (ignored): {count}", counts[Kind.AUTO_REPLY]),
        "  " + ngettext(
            "left for staff (unread in the mailbox): {count}", "left for staff (unread in the mailbox): {count}",
            len(report.for_staff),
        ),
    ]
    for email, reason in report.suppressed:
        lines.append(_("Suppressed {email}: {reason}", email=email, reason=reason))
    for email, list_name in report.unsubscribed:
        lines.append(_("Unsubscribed {email} from {list}", email=email, list=list_name))
    for filed in report.for_staff:
        who = filed.sender or "?"
        lines.append(
            _("For staff: {location}: from {sender}, “{subject}”: {reason}", location=filed.location, sender=who,
              subject=filed.subject or "", reason=reason_text(filed))
            + (f" ({filed.detail})" if filed.detail else "")
        )
    return lines


@click.command("inbox", cls=TranslatedCommand, help=N_(
    "Read new mail of the organiser's mailbox once: calendar answers, bounces, unsubscribes, auto-replies. "
    "Everything else stays unread for a human. Running it twice changes nothing."
))  # fmt: skip
@click.option("--maildir", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
              help=N_("Read this Maildir instead of the IMAP mailbox of REALLABOR_IMAP_*."))  # fmt: skip
@CONTENT
@STATE
@click.option("--bounce-limit", type=click.IntRange(1), default=3, show_default=True,
              help=N_("Days with a temporary failure that suppress an address (within --bounce-days)."))  # fmt: skip
@click.option("--bounce-days", type=click.IntRange(1), default=30, show_default=True,
              help=N_("The window of days in which temporary failures count."))  # fmt: skip
@click.pass_obj
def inbox_command(
    settings: Settings, maildir: Path | None, content_dir: Path, state_option: Path | None, bounce_limit: int,
    bounce_days: int,
) -> None:  # fmt: skip
    """``inbox``: read the mailbox, file each new message, print the report."""
    from reallabor_mail.cli.main import use_staff_language
    from reallabor_mail.content.loader import load_site
    from reallabor_mail.db import connect, state_path
    from reallabor_mail.mailbox.bounces import BouncePolicy
    from reallabor_mail.mailbox.filing import Filing, process
    from reallabor_mail.mailbox.source import ImapSource, MaildirSource, Source
    from reallabor_mail.recipients.tokens import load_secret

    use_staff_language(settings, content_dir)
    site = load_site(content_dir)
    secret = load_secret(settings)
    conn = connect(state_path(state_option, settings))
    source: Source
    if maildir is not None:
        source = MaildirSource(maildir)
    else:
        imap = settings.imap()
        if imap is None:
            raise ReallaborError(_(NO_MAILBOX, prefix=ENV_IMAP_PREFIX))
        source = ImapSource(imap, conn)
    try:
        filing = Filing(conn, site, secret, settings.now, BouncePolicy(bounce_limit, bounce_days))
        report = process(source, filing)
    finally:
        source.close()
        conn.close()
    for line in report_lines(report):
        click.echo(line)
