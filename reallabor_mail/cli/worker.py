"""``reallabor-mail worker``: sends scheduled campaigns and event reminders when they are due.

A long-running process (``--interval`` seconds between rounds; SIGINT or SIGTERM ends it, a send in
progress stopped as Ctrl-C stops ``send``, continued by the next run), or ``--once`` for cron and systemd
timers. All the work is
:mod:`reallabor_mail.delivery.worker`'s; this module logs what it did, one line per campaign.
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from reallabor_mail.cli.failures import error_text
from reallabor_mail.cli.options import STATE_TYPE
from reallabor_mail.cli.translated import TranslatedCommand
from reallabor_mail.i18n.messages import N_, _, ngettext
from reallabor_mail.i18n.records import shown
from reallabor_mail.settings import Settings

if TYPE_CHECKING:
    from reallabor_mail.db import StateLocation
    from reallabor_mail.delivery.worker import Outcome, Round


def _grace(ctx: click.Context, param: click.Parameter, value: str) -> dt.timedelta:
    from reallabor_mail.content.models import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def outcome_lines(outcome: Outcome) -> list[str]:
    """What the worker did with one campaign, for its log."""
    report = outcome.report
    where = f"{outcome.key} ({outcome.path})"
    if outcome.what in ("sent", "reminder") and report is not None:
        counts = _("{sent} sent, {retry} to retry later, {failed} failed",
                   sent=report.sent, retry=report.retry, failed=report.failed)  # fmt: skip
        line = (_("reminder {where}: {counts}", where=where, counts=counts) if outcome.what == "reminder"
                else _("scheduled send {where}: {counts}", where=where, counts=counts))  # fmt: skip
        lines = [line + (f" ({shown(report.stopped)})" if report.stopped else "")]
    else:
        lines = [{
            "reminder": _("reminder {where}: nobody is owed it", where=where),
            "nothing owed": _("scheduled send {where}: nothing to send, everyone has it", where=where),
            "missed": _("scheduled send {where}: missed, not sent", where=where),
            "released": _("scheduled send {where}: interrupted and too late to continue by itself; "
                          "continue it with send FILE --resume", where=where),
            "failed": _("scheduled send {where}: failed, nothing sent", where=where),
            "deferred": _("{where}: not sent in this round, tried again in the next", where=where),
        }[outcome.what]]  # fmt: skip
    if outcome.detail:
        lines += [f"  {line}" for line in outcome.detail.splitlines()]
    return lines


class Stop:
    """SIGINT and SIGTERM end the worker: between rounds at once, during a send the way Ctrl-C stops ``send``."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.running = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.event.set()
        if not self.running:
            return
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        signal.raise_signal(signal.SIGINT)  # SIGTERM during a send: whoever handles Ctrl-C there stops it

    def install(self) -> None:
        signal.signal(signal.SIGINT, self)
        signal.signal(signal.SIGTERM, self)


def _log(round_: Round, message: str) -> None:
    click.echo(f"{round_.clock().astimezone():%Y-%m-%d %H:%M:%S %Z} {message}")


def _round(round_: Round) -> bool:
    """One round, logged; whether every campaign it got to went as planned (missed ones are only logged)."""
    from reallabor_mail.delivery.worker import run_due

    outcomes = run_due(round_)
    for outcome in outcomes:
        for line in outcome_lines(outcome):
            _log(round_, line)
    return all(outcome.what not in ("failed", "deferred") for outcome in outcomes)


@click.command("worker", cls=TranslatedCommand, help=N_(
    "Send scheduled campaigns (send FILE --at) and event reminders when they are due."
))  # fmt: skip
@click.option("--content", "content_dir", type=click.Path(path_type=Path), default=Path("content"),
              help=N_("The content folder of the events to remind of (default: content)."))  # fmt: skip
@click.option("--state", type=STATE_TYPE, default=None,
              help=N_("State file (default: $REALLABOR_STATE or .reallabor/state.sqlite3)."))  # fmt: skip
@click.option("--once", is_flag=True, help=N_("Do what is due now and exit (for cron or a systemd timer)."))
@click.option("--interval", type=click.FloatRange(min=1), default=60.0,
              help=N_("Seconds between rounds (default: 60)."))  # fmt: skip
@click.option("--grace", callback=_grace, default="6h", metavar="DURATION",
              help=N_("How late a scheduled send may still go out, e.g. 6h or 1d (default: 6h); "
                      "later it is marked missed."))  # fmt: skip
@click.option("--templates", "templates_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=N_("Templates folder: its files replace the shipped templates of the same name."))  # fmt: skip
@click.pass_obj
def worker(
    settings: Settings, content_dir: Path, state: StateLocation | None, once: bool, interval: float,
    grace: dt.timedelta, templates_dir: Path | None,
) -> None:  # fmt: skip
    from reallabor_mail.cli.main import use_staff_language
    from reallabor_mail.db import state_path
    from reallabor_mail.delivery.worker import Round
    from reallabor_mail.errors import ReallaborError

    use_staff_language(settings, content_dir)
    round_ = Round(state_path(state, settings), content_dir, settings, settings.now, grace, templates_dir)
    if once:
        if not _round(round_):
            raise ReallaborError(_("{state}: some campaigns were not sent (see above)", state=round_.state))
        return
    stop = Stop()
    stop.install()
    started = ngettext("worker started: a round every {count} second; Ctrl-C ends it",
                       "worker started: a round every {count} seconds; Ctrl-C ends it", round(interval))  # fmt: skip
    _log(round_, started)
    while not stop.event.is_set():
        stop.running = True
        try:
            _round(round_)
        except KeyboardInterrupt:
            _log(round_, _("worker stopped during a round; the next worker run continues what it did not finish"))
            return
        except ReallaborError as exc:  # the state file is busy or unreadable for a moment: log, go on
            _log(round_, error_text(exc))
        finally:
            stop.running = False
        stop.event.wait(interval)
    _log(round_, _("worker stopped"))
