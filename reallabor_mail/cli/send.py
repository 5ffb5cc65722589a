"""The ``send`` command (contract §3): a thin wrapper around :func:`reallabor_mail.delivery.campaign.send`."""

from __future__ import annotations

from pathlib import Path

import click

from reallabor_mail.settings import Settings


def _rate(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    from reallabor_mail.delivery.transport import parse_rate

    return None if value is None else parse_rate(value)


@click.command("send")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--list", "lists", multiple=True, metavar="NAME",
              help="Send to this list (repeatable; default: the lists in the file's front matter).")
@click.option("--to", "to", metavar="EMAIL", help="Send one test message to this address only.")
@click.option("--outbox", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Write the messages into a Maildir instead of sending them.")
@click.option("--rate", callback=_rate, metavar="N/min", help="At most N messages per minute (e.g. 120/min).")
@click.option("--connections", type=click.IntRange(1, 32), default=1, show_default=True,
              help="Parallel SMTP connections.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before sending.")
@click.option("--resume", is_flag=True, help="Continue an interrupted send.")
@click.option("--retry-failed", is_flag=True, help="Send again to those with a temporary failure.")
@click.option("--status", "show_status", is_flag=True, help="Show the send ledger of this file and exit.")
@click.option("--state", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="State file (default: $REALLABOR_STATE or .reallabor/state.sqlite3).")
@click.option("--limit", type=click.IntRange(1), default=None, help="Send at most N messages in this run.")
@click.option("--templates", "templates_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Templates folder: its files replace the shipped templates of the same name.")
@click.pass_obj
def send_command(
    settings: Settings, file: Path, lists: tuple[str, ...], to: str | None, outbox: Path | None, rate: float | None,
    connections: int, yes: bool, resume: bool, retry_failed: bool, show_status: bool, state: Path | None,
    limit: int | None, templates_dir: Path | None,
) -> None:  # fmt: skip
    """Send FILE (a newsletter or event) to its lists: one personal message per recipient.

    Shows what will happen and asks first (--yes for scripts). SMTP settings come from
    REALLABOR_SMTP_*; --outbox DIR writes a Maildir instead.
    """
    from rich.console import Console

    from reallabor_mail.delivery.campaign import SendRequest, send, status

    request = SendRequest(
        file=file, lists=lists, to=to, outbox=outbox, rate=rate, connections=connections, resume=resume,
        retry_failed=retry_failed, limit=limit, templates=templates_dir, state=state,
    )  # fmt: skip
    console = Console(highlight=False, soft_wrap=True)
    if show_status:
        status(request, settings=settings, console=console)
        return
    confirm = None if yes else lambda q: click.confirm(q, default=False)
    send(request, settings=settings, console=console, confirm=confirm)
