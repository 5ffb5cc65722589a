"""``reallabor-mail registrations EVENT_FILE``: who was invited and what they answered (mailbox/attendance.py)."""

from __future__ import annotations

from pathlib import Path

import click

from reallabor_mail.cli.recipients import STATE
from reallabor_mail.cli.translated import TranslatedCommand
from reallabor_mail.errors import OutputError, ReallaborError, display_path
from reallabor_mail.i18n.messages import N_, _, ngettext, os_reason
from reallabor_mail.settings import Settings


@click.command("registrations", cls=TranslatedCommand, help=N_(
    "The answers to an event's invitation (accepted, tentative, declined, no answer) and the registrations by "
    "form (registered, waiting list, cancelled), with counts."
))  # fmt: skip
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help=N_("Also write the list as an Excel CSV (UTF-8, ;) for the sign-in desk."))  # fmt: skip
@STATE
@click.pass_obj
def registrations_command(settings: Settings, file: Path, csv_file: Path | None, state_option: Path | None) -> None:
    """``registrations``: everyone invited to the event and their calendar answer; the desk's CSV."""
    from reallabor_mail.cli.main import use_staff_language
    from reallabor_mail.content.loader import is_event, load_content
    from reallabor_mail.db import connect_read_only, state_path
    from reallabor_mail.mailbox.attendance import (
        FORM_STATES,
        STATES,
        attendance,
        attendance_csv,
        state_label,
    )
    from reallabor_mail.recipients.store import form_state_label

    content_dir = file.resolve().parent.parent
    use_staff_language(settings, content_dir)
    item = load_content(content_dir).find(file)
    if not is_event(item):
        raise ReallaborError(_("{path}: not an event; pass a file from events/", path=display_path(file)))
    conn = connect_read_only(state_path(state_option, settings))
    try:
        found = attendance(conn, item)
    finally:
        conn.close()
    counts = found.counts
    click.echo(f"{item.meta.title}  ({display_path(file)})")
    click.echo(ngettext("{count} invited", "{count} invited", len(found.people)) + ": " + ", ".join(
        f"{state_label(state)} {counts[state]}" for state in STATES
    ))  # fmt: skip
    for person in found.people:
        if person.answer is None:
            continue
        line = f"  {state_label(person.state):<14} {person.email}" + (f"  {person.name}" if person.name else "")
        if person.answer.outdated:
            line += "  " + _("(answered version {answered}, now {current})", answered=person.answer.sequence,
                             current=person.answer.current_sequence)  # fmt: skip
        click.echo(line)
    if (item.meta.registration is not None and item.meta.registration.form) or found.registrations:
        form_counts = found.form_counts
        click.echo(_("Registration form") + ": " + ", ".join(
            f"{form_state_label(state)} {form_counts[state]}" for state in FORM_STATES
        ))  # fmt: skip
        for registration in found.registrations:
            label = form_state_label(registration.state)
            if registration.position is not None:
                label = _("{state} ({position})", state=label, position=registration.position)
            name = f"  {registration.name}" if registration.name else ""
            click.echo(f"  {label:<14} {registration.email}{name}")
    if csv_file is not None:
        try:
            csv_file.write_bytes(attendance_csv(found))
        except OSError as exc:
            message = _("{path}: cannot write the list ({reason})", path=csv_file, reason=os_reason(exc))
            raise OutputError(message) from None
        click.echo(_("List written to {path}", path=csv_file))
