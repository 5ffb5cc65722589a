"""``state copy``: move a state between SQLite and PostgreSQL."""

from __future__ import annotations

import click

from reallabor_mail.cli.options import STATE_TYPE
from reallabor_mail.cli.translated import TranslatedSubgroup
from reallabor_mail.db import StateLocation
from reallabor_mail.i18n.messages import N_, _, ngettext
from reallabor_mail.settings import Settings


@click.group("state", cls=TranslatedSubgroup, help=N_("The state database: copy it between SQLite and PostgreSQL."))
def state_group() -> None:
    pass


@state_group.command("copy", help=N_(
    "Copy every table of the state SRC into DST (a state file or a postgresql:// URL), then count both."
))  # fmt: skip
@click.argument("source", type=STATE_TYPE, metavar="SRC")
@click.argument("target", type=STATE_TYPE, metavar="DST")
@click.option("--force", is_flag=True, help=N_("Replace what DST holds (its rows are deleted first)."))
@click.pass_obj
def copy_command(settings: Settings, source: StateLocation, target: StateLocation, force: bool) -> None:
    """``state copy SRC DST``: SQLite → PostgreSQL or back; one line per table with both counts."""
    from reallabor_mail.cli.main import use_staff_language
    from reallabor_mail.db import StateError, connect, connect_read_only, copy_rows, shown, tables

    use_staff_language(settings)
    if source == target:
        raise StateError(_("{target}: the source and the target are the same state", target=shown(target)))
    reader = connect_read_only(source)
    writer = connect(target)
    try:
        filled = [name for name in tables(writer) if writer.execute(f"SELECT 1 FROM {name} LIMIT 1").fetchone()]
        if filled and not force:
            raise StateError(
                _("{target}: the target already holds data (tables {tables}); choose an empty one, or pass --force "
                  "to replace it", target=shown(target), tables=", ".join(filled))
            )  # fmt: skip
        counts = copy_rows(reader, writer)
    finally:
        reader.close()
        writer.close()
    width = max(map(len, counts), default=0)
    for name, (read, written) in counts.items():
        click.echo(f"{name:<{width}}  {read:>9,}  {written:>9,}")
    wrong = [name for name, (read, written) in counts.items() if read != written]
    if wrong:
        raise StateError(
            _("{target}: the counts differ in {tables}; the copy is not complete, run it again with --force",
              target=shown(target), tables=", ".join(wrong))
        )  # fmt: skip
    total = sum(read for read, _written in counts.values())
    click.echo(ngettext("{count} row copied from {source} to {target}; the counts match.",
                        "{count} rows copied from {source} to {target}; the counts match.", total,
                        source=shown(source), target=shown(target)))  # fmt: skip
