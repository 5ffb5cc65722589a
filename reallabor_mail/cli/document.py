"""``reallabor-mail document``: the bound record of a project period as one PDF (publish/document.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reallabor_mail.cli.recipients import STATE
from reallabor_mail.cli.translated import TranslatedCommand
from reallabor_mail.errors import OutputError
from reallabor_mail.i18n.languages import LANGUAGES
from reallabor_mail.i18n.messages import N_, _, os_reason
from reallabor_mail.settings import Settings

if TYPE_CHECKING:
    from reallabor_mail.content.loader import Content
    from reallabor_mail.db import Connection, StateLocation
    from reallabor_mail.publish.document import Counts

DAY = click.DateTime(formats=["%Y-%m-%d"])


def state_counts(conn: Connection, content: Content) -> dict[str, Counts]:
    """Per newsletter the messages sent, per event the invitations sent and the current calendar answers."""
    from reallabor_mail.mailbox.attendance import attendance
    from reallabor_mail.publish.document import Counts, record_key

    counts: dict[str, Counts] = {}
    for newsletter in content.newsletters:
        key = record_key(newsletter)
        row = conn.execute(
            "SELECT count(DISTINCT email) FROM send_ledger WHERE campaign = ? AND state = 'sent'", (key,)
        ).fetchone()
        counts[key] = Counts(int(row[0]))
    for event in content.events:
        found = attendance(conn, event).counts
        counts[record_key(event)] = Counts(
            sum(found.values()), found["accepted"], found["tentative"], found["declined"]
        )
    return counts


@click.command("document", cls=TranslatedCommand, help=N_(
    "Bind everything of a period (newsletters, events with their reports, the counts the state knows) into one "
    "PDF with a title page, contents and bookmarks."
))  # fmt: skip
@click.option("--from", "start", type=DAY, required=True, metavar="YYYY-MM-DD", help=N_("First day of the period."))
@click.option("--to", "end", type=DAY, required=True, metavar="YYYY-MM-DD", help=N_("Last day of the period."))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help=N_("The PDF file to write, e.g. dokumentation.pdf."))  # fmt: skip
@click.option("--lang", "language", type=click.Choice(LANGUAGES), default=None,
              help=N_("Language of the record (default: the site's language)."))  # fmt: skip
@click.option("--content", "content_dir", type=click.Path(path_type=Path), default=Path("content"),
              help=N_("The content folder (default: content)."))  # fmt: skip
@click.option("--templates", "templates_dir", type=click.Path(path_type=Path), default=None,
              help=N_("Templates folder: its files replace the shipped templates of the same name."))  # fmt: skip
@STATE
@click.pass_obj
def document_command(
    settings: Settings, start: dt.datetime, end: dt.datetime, out: Path, language: str | None, content_dir: Path,
    templates_dir: Path | None, state_option: StateLocation | None,
) -> None:
    """``document``: the bound record; without a state file the counts are left out (the record says so)."""
    from reallabor_mail.cli.main import use_staff_language
    from reallabor_mail.content.loader import load_content
    from reallabor_mail.db import connect_read_only, state_path
    from reallabor_mail.publish.build import default_templates
    from reallabor_mail.publish.document import bound_record

    use_staff_language(settings, content_dir)
    content = load_content(content_dir)
    location = state_path(state_option, settings, content_dir)
    counts = None
    if state_option is None and isinstance(location, Path) and not location.is_file():
        message = _("{path}: no state file; the record leaves out the counts of invitations and answers", path=location)
        click.echo(message)
    else:
        conn = connect_read_only(location)
        try:
            counts = state_counts(conn, content)
        finally:
            conn.close()
    data = bound_record(
        content, templates_dir or default_templates(), start=start.date(), end=end.date(),
        language=language or content.site.language, counts=counts,  # type: ignore[arg-type]  # a Choice of LANGUAGES
    )
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise OutputError(_("{path}: cannot write the record ({reason})", path=out, reason=os_reason(exc))) from None
    click.echo(_("Record written to {path} ({size} KB).", path=out, size=len(data) // 1024))
