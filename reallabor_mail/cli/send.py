"""The ``send`` command (contract §3): the plan, the question, a progress bar and the summary.

All the work is :mod:`reallabor_mail.delivery.campaign`'s; this module only shows it. It imports rich and
the delivery code when the command runs, so ``--help`` and ``check`` do not load them (see cli/main.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click

from reallabor_mail.cli.options import STATE_TYPE
from reallabor_mail.cli.translated import TranslatedCommand, confirmed
from reallabor_mail.errors import ReallaborError
from reallabor_mail.i18n.messages import N_, _, ngettext, number
from reallabor_mail.i18n.records import shown
from reallabor_mail.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

    from reallabor_mail.db import StateLocation
    from reallabor_mail.delivery.campaign import CampaignStatus, Plan, SendRequest
    from reallabor_mail.delivery.engine import RunReport
    from reallabor_mail.delivery.ledger import Row, State

DETAIL = 50  # addresses listed per section of --status
REASONS = 3  # reasons shown per kind of failure in the summary


def plan_lines(plan: Plan) -> list[str]:
    """What ``send`` is about to do, as shown before it asks."""
    out = [f"[bold]{plan.title}[/bold]  ({plan.path})", "  " + _("campaign   {campaign}", campaign=plan.campaign)]
    if plan.ended is not None:
        out.append("  [yellow]" + _("Note: this event is already over (it ended on {date}); an invitation to it is "
                                    "probably not what you want.", date=f"{plan.ended:%d.%m.%Y %H:%M}") + "[/yellow]")
    if plan.to is not None:
        out.append("  " + _("to         {address} only: a test message, subject marked [TEST], not counted in "
                            "the campaign", address=plan.to))  # fmt: skip
    else:
        lists = ", ".join(ngettext("{name} ({count} subscribed)", "{name} ({count} subscribed)", count,
                                   name=name) for name, count in plan.lists)  # fmt: skip
        out.append("  " + _("lists      {lists}", lists=lists))
    out.append("  " + _("from       {sender}", sender=plan.sender))
    out.append("  " + _("via        {via}", via=plan.via) + (f" · {plan.signing}" if plan.signing else ""))
    if plan.state:
        out.append("  " + _("state      {state}", state=plan.state))
    b = plan.before
    if b is not None and b.total:
        interrupted = b["pending"] + b["sending"]
        earlier = _(
            "earlier    {sent} sent, {failed} failed, {retry} to retry, {unknown} unknown, {skipped} skipped, "
            "{interrupted} interrupted", sent=b["sent"], failed=b["failed"], retry=b["retry"], unknown=b["unknown"],
            skipped=b["skipped"], interrupted=interrupted,
        )  # fmt: skip
        out.append("  " + earlier)
        if b["retry"] and not plan.retry_failed:
            out.append("             " + ngettext(
                "({count} waiting for --retry-failed is not sent now)",
                "({count} waiting for --retry-failed are not sent now)", b["retry"],
            ))  # fmt: skip
        if b["sending"] and plan.resume:
            out.append("             " + ngettext("({count} was in flight: it becomes 'unknown' and is NOT resent)",
                                                  "({count} were in flight: they become 'unknown' and are NOT resent)",
                                                  b["sending"]))  # fmt: skip
    languages = ", ".join(f"{lang} {number(n)}" for lang, n in sorted(plan.languages.items()))
    out.append("  " + _("to send    {count}", count=plan.owed) + (
        " " + _("new ({languages})", languages=languages) if languages else ""))  # fmt: skip
    if plan.updates:
        kind = _("the cancellation") if plan.cancellation else _("the update (subject “Changed: …”)")
        out.append("             " + ngettext(
            "{count} got an earlier version and gets {kind}", "{count} got an earlier version and get {kind}",
            plan.updates, kind=kind))  # fmt: skip
        if plan.new > plan.updates:
            out.append("             " + ngettext(
                "{count} never got it and gets the invitation", "{count} never got it and get the invitation",
                plan.new - plan.updates))  # fmt: skip
    if plan.limit is not None and plan.limit < plan.owed:
        out.append("  " + _("this run   at most {count} (--limit)", count=plan.limit))
    return out


def state_words() -> dict[State, str]:
    """What the summary lines call each state of a ledger row, in their order (the progress bar's tally too)."""
    return {"sent": _("sent"), "retry": _("retry later"), "failed": _("failed"), "unknown": _("unknown"),
            "skipped": _("skipped"), "pending": _("not yet sent"), "sending": _("in flight")}  # fmt: skip


@contextlib.contextmanager
def terminate_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (a shutdown, ``kill``, a service manager) stops a send as Ctrl-C does: the first stops handing
    messages over and lets those in flight finish, so that their outcome is recorded, not left unknown."""
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None):  # someone else decides (e.g. the worker's handler)
        yield
        return
    signal.signal(signal.SIGTERM, lambda signum, frame: signal.raise_signal(signal.SIGINT))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class ProgressBar:
    """The engine's :class:`~reallabor_mail.delivery.engine.Progress` as a rich progress bar with a tally."""

    def __init__(self, console: Console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        columns = (
            TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[tally]}"), TimeRemainingColumn(),
        )  # fmt: skip
        self.bar = Progress(*columns, console=console, transient=False)
        self.tally: Counter[str] = Counter()
        self.task: TaskID | None = None

    def start(self, total: int) -> None:
        self.task = self.bar.add_task(_("sending"), total=total, tally="")
        self.bar.start()

    def done(self, state: State) -> None:
        self.tally[state] += 1
        if self.task is not None:
            words = state_words()
            tally = " · ".join(f"{number(self.tally[s])} {words[s]}" for s in words if self.tally[s])
            self.bar.update(self.task, advance=1, tally=tally)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.bar.stop()


def _reasons(report: RunReport, state: State) -> str:
    """The most frequent reasons of one kind of failure: ``451 4.3.0 Try later (2); …``."""
    found = Counter({why: n for (kind, why), n in report.reasons.items() if kind == state})
    return "; ".join(f"{shown(why)} ({number(n)})" for why, n in found.most_common(REASONS))


def print_report(console: Console, report: RunReport) -> None:
    """This run's numbers, each kind of failure with its reasons."""
    console.print(_(
        "This run: {sent} sent, {retry} to retry later, {failed} failed, {unknown} unknown, {skipped} skipped",
        sent=report.sent, retry=report.retry, failed=report.failed, unknown=report.unanswered, skipped=report.skipped,
    ))  # fmt: skip
    labels: tuple[tuple[State, str], ...] = (
        ("retry", _("to retry later")), ("failed", _("failed")), ("unknown", _("unknown")),
    )  # fmt: skip
    for state, label in labels:
        reasons = _reasons(report, state)
        if reasons:
            console.print(f"  [yellow]{label}[/yellow]: {reasons}")
    if report.skipped:
        console.print("  " + ngettext("{count} skipped: unsubscribed or suppressed after the send began",
                                      "{count} skipped: unsubscribed or suppressed after the send began",
                                      report.skipped))  # fmt: skip
    for domain, reply in sorted(report.blocked.items()):
        console.print("  [yellow]" + _("stopped sending to {domain}", domain=domain) + f"[/yellow]: {shown(reply)}")
    if report.stopped:
        console.print("  [red]" + _("stopped early") + f"[/red]: {shown(report.stopped)}")


def print_summary(console: Console, state: CampaignStatus, report: RunReport | None = None) -> None:
    """The ledger's numbers for a campaign, the addresses with unknown fate, and what to do next."""
    s = state.summary
    if report is not None:
        print_report(console, report)
    console.print(f"[bold]{state.campaign}[/bold]: " + _(
        "{sent} sent · {retry} retry later · {failed} failed · {unknown} unknown · {skipped} skipped · "
        "{owed} not yet sent", sent=s["sent"], retry=s["retry"], failed=s["failed"], unknown=s["unknown"],
        skipped=s["skipped"], owed=s["pending"] + s["sending"],
    ))  # fmt: skip
    if state.unknown:
        console.print("[yellow]" + _("Unknown ({count})", count=len(state.unknown)) + "[/yellow]: " + _(
            "the server may have these messages (the send stopped, or its reply never came); they may or may "
            "not have arrived and are not resent automatically. Ask the recipients, or send one a copy with "
            "--to EMAIL:",
        ))  # fmt: skip
        for row in state.unknown:
            console.print(f"  {row.email}")
    if s["pending"] + s["sending"]:
        console.print(_("Continue with: reallabor-mail send {path} --resume", path=state.path), markup=False)
    if s["retry"]:
        console.print(_("Temporary failures: reallabor-mail send {path} --retry-failed (later, e.g. in an hour)",
                        path=state.path), markup=False)  # fmt: skip


def print_status(console: Console, state: CampaignStatus) -> None:
    """``--status``: the summary plus the failed and waiting addresses with the server's reply."""
    console.print(f"{state.title}  ({state.path})")
    print_summary(console, state)
    sections: tuple[tuple[str, list[Row]], ...] = (
        (_("Failed ({count})", count=len(state.failed)), state.failed),
        (_("Retry later ({count})", count=len(state.retry)), state.retry),
    )  # fmt: skip
    for label, rows in sections:
        if rows:
            console.print(f"{label}:")
            for row in rows[:DETAIL]:
                console.print(f"  {row.email}  {shown(row.reply or '')}", markup=False)
            if len(rows) > DETAIL:
                console.print("  " + _("… and {count} more", count=len(rows) - DETAIL))


def print_schedule(console: Console, request: SendRequest, settings: Settings) -> None:
    """The schedule part of ``--status``: when the worker sends FILE, or that it missed or failed it."""
    from reallabor_mail.db import connect_read_only, state_path
    from reallabor_mail.delivery import schedule

    item, site = schedule.load_item(request.file)
    conn = connect_read_only(state_path(request.state, settings, request.content_dir))
    try:
        record = schedule.latest_schedule(conn, schedule.item_key(item))
    finally:
        conn.close()
    if record is None or record.due is None:
        return
    when = local_time(record.due, site.timezone)
    lines = {
        "scheduled": _("Scheduled: {key} is sent at {when} by `reallabor-mail worker`.", key=record.key, when=when),
        "missed": _("Missed: {key} was due at {when} and was not sent; schedule it again with --at.",
                    key=record.key, when=when),
        "failed": _("Failed: {key} was due at {when} and was not sent:", key=record.key, when=when),
        "sending": _("Sending: {key} (scheduled for {when}) started and has not ended; if no send is running, "
                     "the next worker run continues it.", key=record.key, when=when),
        "interrupted": _("Interrupted: {key} (scheduled for {when}) did not finish; the next worker run "
                         "continues it.", key=record.key, when=when),
        "sent": _("Sent as scheduled for {when}: {key}.", key=record.key, when=when),
    }  # fmt: skip
    line = lines[record.state]
    if record.state in ("sending", "interrupted") and not record.by_worker:
        line = _("Interrupted: {key} (scheduled for {when}) is too late for the worker; continue it with --resume.",
                 key=record.key, when=when)  # fmt: skip
    console.print(line, markup=False)
    for detail in (record.detail or "").splitlines():
        console.print(f"  {detail}", markup=False)


def local_time(moment: dt.datetime, zone: str) -> str:
    """``2026-12-14 09:00 (Europe/Berlin)``: a moment as staff read it."""
    return f"{moment.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} ({zone})"


def schedule_send(console: Console, request: SendRequest, settings: Settings, at: str | None, *, yes: bool) -> None:
    """``send FILE --at TIME`` (show the plan, ask, record the schedule) and ``send FILE --unschedule``."""
    from reallabor_mail.db import connect, state_path
    from reallabor_mail.delivery import schedule
    from reallabor_mail.delivery.campaign import prepare

    if at is None:
        item, _site = schedule.load_item(request.file)
        conn = connect(state_path(request.state, settings, request.content_dir))
        try:
            removed = schedule.unschedule(conn, item)
        finally:
            conn.close()
        if removed is None:
            console.print(_("{path}: no schedule to remove.", path=request.file))
        else:
            console.print(_("Schedule removed: {key} is not sent by the worker.", key=removed.key))
        return
    for flag, given in (("--to", request.to), ("--outbox", request.outbox), ("--dry-run", request.dry_run),
                        ("--resume", request.resume),
                        ("--retry-failed", request.retry_failed), ("--limit", request.limit)):  # fmt: skip
        if given:
            raise ReallaborError(_("--at: cannot be combined with {flag}; schedule the whole send", flag=flag))
    with prepare(request, settings=settings, clock=settings.now) as prepared:
        due = schedule.parse_at(at, prepared.site.timezone, settings.now())
        plan = prepared.plan
        for line in plan_lines(plan):
            console.print(line)
        console.print(_("  at         {when}", when=local_time(due, prepared.site.timezone)))
        question = _("Schedule this send for {when}?", when=local_time(due, prepared.site.timezone))
        if not yes and not confirmed(question):
            console.print(_("Nothing scheduled."))
            return
        schedule.schedule(prepared.conn, plan.campaign, prepared.composer.item, due, settings.now(),
                          lists=request.lists, rate=request.rate, connections=request.connections)  # fmt: skip
    console.print(_("Scheduled. `reallabor-mail worker` sends it at {when} to those subscribed then; "
                    "see send FILE --status.", when=local_time(due, prepared.site.timezone)))  # fmt: skip


def _rate(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    from reallabor_mail.delivery.transport import parse_rate

    return None if value is None else parse_rate(value)


@click.command("send", cls=TranslatedCommand, help=N_(
    "Send FILE (a newsletter or event) to its lists: one personal message per recipient.\n\n"
    "Shows what will happen and asks first (--yes for scripts). SMTP settings come from REALLABOR_SMTP_*; "
    "--dry-run writes every personal message into a folder for review instead. Ctrl-C stops handing messages "
    "over (the ones in flight finish); a second Ctrl-C ends at once."
))  # fmt: skip
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--list", "lists", multiple=True, metavar="NAME",
              help=N_("Send to this list (repeatable; default: the lists in the file's front matter)."))
@click.option("--to", "to", metavar="EMAIL", help=N_("Send one test message to this address only."))
@click.option("--dry-run", is_flag=True,
              help=N_("Do everything but hand the messages over: they go into a folder for review, the ledger stays."))
@click.option("--outbox", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help=N_("Write the messages into this Maildir: with --dry-run for review, else as the real send."))
@click.option("--rate", callback=_rate, metavar="N/min", help=N_("At most N messages per minute (e.g. 120/min)."))
@click.option("--connections", type=click.IntRange(1, 32), default=1, show_default=True,
              help=N_("Parallel SMTP connections."))
@click.option("--yes", "-y", is_flag=True, help=N_("Do not ask before sending."))
@click.option("--resume", is_flag=True, help=N_("Continue an interrupted send."))
@click.option("--retry-failed", is_flag=True, help=N_("Send again to those with a temporary failure."))
@click.option("--status", "show_status", is_flag=True, help=N_("Show the send ledger of this file and exit."))
@click.option("--state", type=STATE_TYPE, default=None,
              help=N_("State file (default: $REALLABOR_STATE or .reallabor/state.sqlite3 next to the content folder)."))
@click.option("--content", "content_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=N_("The content folder (default: the folder above FILE's)."))
@click.option("--limit", type=click.IntRange(1), default=None, help=N_("Send at most N messages in this run."))
@click.option("--at", "at", metavar="'YYYY-MM-DD HH:MM'",
              help=N_("Send at this time (site time zone) instead of now: `reallabor-mail worker` sends it."))
@click.option("--unschedule", is_flag=True, help=N_("Remove the schedule of FILE (made with --at)."))
@click.option("--templates", "templates_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=N_("Templates folder: its files replace the shipped templates of the same name."))
@click.pass_obj
def send_command(
    settings: Settings, file: Path, lists: tuple[str, ...], to: str | None, dry_run: bool, outbox: Path | None,
    rate: float | None, connections: int, yes: bool, resume: bool, retry_failed: bool, show_status: bool,
    state: StateLocation | None, content_dir: Path | None, limit: int | None, at: str | None, unschedule: bool,
    templates_dir: Path | None,
) -> None:  # fmt: skip
    """``send``: plan, ask, hand over, report (the help text above says it for staff)."""
    from rich.console import Console

    from reallabor_mail.cli.main import use_staff_language
    from reallabor_mail.delivery.campaign import SendIncomplete, SendRequest, execute, prepare, status

    use_staff_language(settings, content_dir or file.parent.parent)
    request = SendRequest(
        file=file, lists=lists, to=to, outbox=outbox, rate=rate, connections=connections, resume=resume,
        retry_failed=retry_failed, limit=limit, templates=templates_dir, state=state, content=content_dir,
        dry_run=dry_run,
    )  # fmt: skip
    console = Console(highlight=False, soft_wrap=True)
    if show_status:
        print_status(console, status(request, settings=settings))
        print_schedule(console, request, settings)
        return
    if at is not None or unschedule:
        schedule_send(console, request, settings, at, yes=yes)
        return
    with prepare(request, settings=settings, clock=settings.now) as prepared:
        plan = prepared.plan
        for line in plan_lines(plan):
            console.print(line)
        if plan.owed == 0:
            unknown = plan.before["unknown"] if plan.before is not None else 0
            console.print(ngettext(
                "Nothing new to send; the fate of {count} message is unknown (see --status): it is not resent "
                "automatically. Ask the recipient, or send a copy with --to EMAIL.",
                "Nothing new to send; the fate of {count} messages is unknown (see --status): they are not resent "
                "automatically. Ask the recipients, or send one a copy with --to EMAIL.", unknown,
            ) if unknown else _("Nothing to send: everyone on the list has this message (see --status)."))  # fmt: skip
            return
        question = (
            ngettext("Write {count} message into {outbox} for review?",
                     "Write {count} messages into {outbox} for review?", plan.this_run, outbox=prepared.outbox)
            if plan.dry_run and prepared.outbox is not None
            else ngettext("Send {count} message via {via}?", "Send {count} messages via {via}?", plan.this_run,
                          via=plan.via)
        )  # fmt: skip
        if not yes and not confirmed(question):
            console.print(_("Nothing sent."))
            return
        try:
            with ProgressBar(console) as progress, terminate_as_ctrl_c():
                report = execute(prepared, progress=progress)
        except KeyboardInterrupt:
            print_summary(console, prepared.status())
            raise ReallaborError(
                _("{path}: interrupted (Ctrl-C twice); the messages in flight are listed as unknown; continue "
                  "with --resume", path=plan.path)
            ) from None  # fmt: skip
        if plan.dry_run and prepared.outbox is not None:
            if not report.complete:
                print_report(console, report)
            console.print(ngettext(
                "Dry run: {count} message written to {outbox} for review; nothing was sent and the ledger is "
                "unchanged.",
                "Dry run: {count} messages written to {outbox} for review; nothing was sent and the ledger is "
                "unchanged.", report.sent, outbox=prepared.outbox / "new",
            ))  # fmt: skip
        else:
            print_summary(console, prepared.status(), report)
        if not report.complete:
            raise SendIncomplete.of(plan.path, report)
