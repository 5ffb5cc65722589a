"""``reallabor-mail recipients …`` and ``reallabor-mail serve``: thin wrappers over
:mod:`reallabor_mail.recipients.store` and :mod:`reallabor_mail.web.public`."""

from __future__ import annotations

import datetime as dt
import getpass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reallabor_mail.cli.options import STATE_TYPE
from reallabor_mail.cli.translated import TranslatedCommand, TranslatedSubgroup, confirmed
from reallabor_mail.db import Connection, connect, connect_read_only, state_path
from reallabor_mail.errors import ReallaborError
from reallabor_mail.i18n.messages import N_, _, ngettext
from reallabor_mail.settings import Settings

if TYPE_CHECKING:
    from reallabor_mail.db import StateLocation  # the commands import their libraries when they run (see cli/main.py)
    from reallabor_mail.web.public import PublicConfig
    from reallabor_mail.web.signup_queue import SignupLimits

STATE = click.option(
    "--state", "state_option", type=STATE_TYPE, default=None,
    help=N_("State database (default: $REALLABOR_STATE, else .reallabor/state.sqlite3)."),
)  # fmt: skip
CONTENT = click.option(
    "--content", "content_dir", type=click.Path(path_type=Path), default=Path("content"), show_default=True,
    help=N_("The content folder."),
)  # fmt: skip


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _open(state_option: StateLocation | None, settings: Settings, *, read_only: bool = False) -> Connection:
    path = state_path(state_option, settings)
    return connect_read_only(path) if read_only else connect(path)


def _who(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        raise ReallaborError(_("$USER is not set, so it is not known who records this; pass --by NAME")) from None


@click.group("recipients", cls=TranslatedSubgroup,
             help=N_("The mailing list: import, list, unsubscribe, export (GDPR access), delete (erasure), purge."))
def recipients_group() -> None:
    pass


@recipients_group.command(
    "import", help=N_("Import an Excel CSV (; or , — UTF-8, UTF-8 with BOM, UTF-16 or cp1252) onto a list as "
                      "subscribed.")
)
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--list", "list_name", required=True, help=N_("The list to put everyone on (e.g. newsletter)."))
@click.option("--skip-invalid", is_flag=True, help=N_("Import the valid rows and list the others."))
@click.option("--update", is_flag=True, help=N_("Take the file's details where they differ from the stored ones."))
@click.option("--encoding", help=N_("The file's encoding (e.g. cp1252), when it cannot be told from the file."))
@click.option("--by", help=N_("Who vouches for the consent of these contacts (default: $USER)."))
@STATE
@click.pass_obj
def import_command(
    settings: Settings, file: Path, list_name: str, skip_invalid: bool, update: bool, encoding: str | None,
    by: str | None, state_option: StateLocation | None,
) -> None:  # fmt: skip
    from reallabor_mail.recipients import spreadsheet
    from reallabor_mail.recipients.tokens import load_secret

    conn = _open(state_option, settings)
    report = spreadsheet.import_csv(
        conn, file, list_name, secret=load_secret(settings), by=_who(by), now=_now(), skip_invalid=skip_invalid,
        update=update, encoding=encoding,
    )  # fmt: skip
    notes = sorted((*report.invalid, *report.merged, *report.changed, *report.kept_out), key=lambda n: n.row)
    for note in notes:
        click.echo(note.line(file), err=True)
    skipped = len({p.row for p in report.invalid})
    differing = len(report.changed) - report.updated
    parts = [_("{path}: {added} added, {known} already known on '{list}'", path=file, added=report.added,
               known=report.known, list=list_name)]  # fmt: skip
    if report.updated:
        parts.append(ngettext("{count} updated", "{count} updated", report.updated))
    if differing:
        parts.append(ngettext("{count} with other details kept as stored (--update takes the file's)",
                              "{count} with other details kept as stored (--update takes the file's)", differing))
    if skipped:
        parts.append(ngettext("{count} invalid row skipped", "{count} invalid rows skipped", skipped))
    if report.kept_out:
        parts.append(ngettext("{count} kept out", "{count} kept out", len(report.kept_out)))
    click.echo("; ".join(parts))


@recipients_group.command("list", help=N_("Everyone stored, with their lists and status."))
@click.option("--list", "list_name", help=N_("Only people with a status on this list."))
@STATE
@click.pass_obj
def list_command(settings: Settings, list_name: str | None, state_option: StateLocation | None) -> None:
    from reallabor_mail.recipients import store as recipients

    conn = _open(state_option, settings, read_only=True)
    found = recipients.people(conn, recipients.check_list_name(list_name) if list_name else None)
    for person in found:
        r = person.recipient
        lists = ", ".join(
            f"{m.list_name}:{m.status}" for m in person.memberships if not list_name or m.list_name == list_name
        )
        name = " ".join(x for x in (r.salutation, r.title, r.first_name, r.last_name) if x)
        click.echo("\t".join((r.email, name, r.organisation or "", r.language, lists)))
    click.echo(ngettext("{count} recipient", "{count} recipients", len(found)), err=True)


@recipients_group.command(
    "unsubscribe", help=N_("Take a person off a list (or all lists) at once; the data stays, the consent record "
                           "notes it.")
)
@click.argument("email")
@click.option("--list", "list_name", help=N_("Only this list (default: every list)."))
@click.option("--by", help=N_("Who records the request (default: $USER)."))
@STATE
@click.pass_obj
def unsubscribe_command(
    settings: Settings, email: str, list_name: str | None, by: str | None, state_option: StateLocation | None
) -> None:
    from reallabor_mail.recipients import store as recipients

    conn = _open(state_option, settings)
    recipients.stored_person(conn, email)
    left = recipients.unsubscribe(conn, email, list_name, source="command line", actor=_who(by), now=_now())
    if left:
        click.echo(_("{email}: unsubscribed from {lists}", email=email, lists=", ".join(left)))
    else:
        click.echo(_("{email}: was not subscribed", email=email))


@recipients_group.command("export", help=N_("CSV of one person (everything stored, consent included) or of a list."))
@click.argument("email", required=False)
@click.option("--list", "list_name", help=N_("Export everyone on this list."))
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help=N_("Write to FILE (for Excel)."))  # fmt: skip
@STATE
@click.pass_obj
def export_command(
    settings: Settings, email: str | None, list_name: str | None, output: Path | None,
    state_option: StateLocation | None,
) -> None:
    from reallabor_mail.recipients import spreadsheet

    if bool(email) == bool(list_name):
        raise click.UsageError(_("give either EMAIL or --list NAME"))
    conn = _open(state_option, settings, read_only=True)
    text = spreadsheet.export_person(conn, email) if email else spreadsheet.export_list(conn, list_name or "")
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8-sig", newline="")  # the BOM makes Excel read UTF-8
        click.echo(_("written to {path}", path=output), err=True)


@recipients_group.command(
    "delete", help=N_("Erase a person (GDPR Art. 17); only a keyed hash of the address stays, so they are never "
                      "mailed again.")
)
@click.argument("email")
@click.option("--yes", is_flag=True, help=N_("Do not ask for confirmation."))
@STATE
@click.pass_obj
def delete_command(settings: Settings, email: str, yes: bool, state_option: StateLocation | None) -> None:
    from reallabor_mail.addresses import address_key
    from reallabor_mail.delivery.ledger import forget
    from reallabor_mail.mailbox import filing as inbox_records
    from reallabor_mail.recipients import store as recipients
    from reallabor_mail.recipients.tokens import load_secret
    from reallabor_mail.web import signup_queue

    secret = load_secret(settings)
    address = address_key(email)
    conn = _open(state_option, settings)
    question = _("Really erase everything stored about {email}? This cannot be undone.", email=email)
    if not yes and not confirmed(question):
        raise click.exceptions.Abort
    registered = bool(recipients.registrations_of(conn, address))
    forget(conn, address, "erased:" + recipients.address_hash(address, secret))
    signup_queue.forget(conn, address)
    inbox_records.forget(conn, address)
    if recipients.erase(conn, address, secret, now=_now()):
        click.echo(_("{email}: erased; the address is suppressed", email=email))
    elif registered:
        click.echo(_("{email}: the event registrations were erased; the address is suppressed", email=email))
    else:
        click.echo(_("{email}: was not stored; the address is suppressed", email=email))


@recipients_group.command("purge", help=N_(
    "Delete sign-ups and event registrations not confirmed within 30 days (send does this too)."
))  # fmt: skip
@STATE
@click.pass_obj
def purge_command(settings: Settings, state_option: StateLocation | None) -> None:
    from reallabor_mail.recipients import store as recipients

    count = recipients.purge_unconfirmed(_open(state_option, settings), _now())
    click.echo(ngettext("{count} unconfirmed sign-up deleted", "{count} unconfirmed sign-ups deleted", count))


def public_config(
    content_dir: Path, templates: Path, out: Path, state_option: StateLocation | None, lists: tuple[str, ...],
    signup_limits: SignupLimits, settings: Settings,
) -> PublicConfig:  # fmt: skip
    """The public server of contract §4, from the environment's secret, SMTP and DKIM settings."""
    from reallabor_mail.content.loader import load_content, load_site
    from reallabor_mail.delivery.transport import SmtpTransport
    from reallabor_mail.mail.dkim import DkimSigner
    from reallabor_mail.recipients import store as recipients
    from reallabor_mail.recipients.tokens import load_secret
    from reallabor_mail.web.public import PublicConfig

    secret = load_secret(settings)
    site = load_site(content_dir)
    smtp = settings.smtp()
    if smtp is None:
        raise ReallaborError(_("REALLABOR_SMTP_HOST is not set; the public server sends the confirmation mails"))
    if not (out / "index.html").is_file():
        raise ReallaborError(_("{path}: no built archive here; run `reallabor-mail build` first (or pass --out DIR)",
                               path=out))  # fmt: skip
    content = load_content(content_dir)
    if not lists:
        named = [n.meta.lists for n in content.newsletters] + [e.meta.lists for e in content.events]
        lists = tuple(sorted({name for names in named for name in names}))
    return PublicConfig(
        site=site, templates=templates, state=state_path(state_option, settings), secret=secret,
        lists=tuple(recipients.check_list_name(n) for n in lists), transport=SmtpTransport(smtp),
        signer=DkimSigner.from_settings(settings.dkim()), build_dir=out, signup_limits=signup_limits,
        events=content.events,
    )  # fmt: skip


@click.command("serve", cls=TranslatedCommand, help=N_(
    "The staff preview on 127.0.0.1, or with --public the pages recipients use."
))  # fmt: skip
@click.option("--public", is_flag=True,
              help=N_("Serve what recipients reach: subscribe, confirm, unsubscribe, archive."))
@click.option("--host", default="127.0.0.1", show_default=True, help=N_("Address to listen on (--public only)."))
@click.option("--port", default=None, type=int, help=N_("Port (default: 8000 with --public, else a free one)."))
@CONTENT
@click.option("--templates", "templates_dir", type=click.Path(path_type=Path), default=None,
              help=N_("Templates folder: its files replace the shipped templates of the same name."))
@click.option("--out", type=click.Path(path_type=Path), default=Path("build"), show_default=True,
              help=N_("The built archive to serve."))  # fmt: skip
@click.option("--list", "lists", multiple=True,
              help=N_("Lists offered on the form (default: those the content names)."))
@click.option("--forwarded-allow-ips", default=None, metavar="IPS",
              help=N_("Comma-separated addresses of your reverse proxy; only from them X-Forwarded-For is "
                      "believed (default: from nobody)."))  # fmt: skip
@click.option("--confirmations-per-mailbox", type=click.IntRange(min=1), default=None,
              help=N_("Confirmation mails to one mailbox per day (user+tag@ counts as user@; default: 3)."))
@click.option("--confirmations-per-hour", type=click.IntRange(min=1), default=None,
              help=N_("Confirmation mails per hour in all; more wait for a later hour (default: 100)."))  # fmt: skip
@click.option("--sign-ups-per-client", type=click.IntRange(min=1), default=None,
              help=N_("Sign-ups per hour from one client (IPv4 address or IPv6 /64; default: 10)."))  # fmt: skip
@click.option("--connections-per-client", type=click.IntRange(min=1), default=None,
              help=N_("Connections one client may hold at once (a named proxy is not counted; default: 50)."))
@STATE
@click.pass_obj
def serve(
    settings: Settings, public: bool, host: str, port: int | None, content_dir: Path, templates_dir: Path | None,
    out: Path, lists: tuple[str, ...], forwarded_allow_ips: str | None, confirmations_per_mailbox: int | None,
    confirmations_per_hour: int | None, sign_ups_per_client: int | None, connections_per_client: int | None,
    state_option: StateLocation | None,
) -> None:  # fmt: skip
    """The staff preview on 127.0.0.1, or with --public the pages recipients use."""
    from urllib.parse import urlsplit

    import uvicorn

    from reallabor_mail.publish.build import default_templates
    from reallabor_mail.web.limits import ServerLimits, server_config
    from reallabor_mail.web.preview import run_preview
    from reallabor_mail.web.public import public_app
    from reallabor_mail.web.signup_queue import SignupLimits

    templates = templates_dir or default_templates()
    if not public:  # the preview shows unpublished drafts: only on 127.0.0.1, never beyond this machine
        run_preview(content_dir, templates, state=state_path(state_option, settings), port=port, settings=settings)
        return
    port = port or 8000
    def limit(option: int | None, variable: str, default: int) -> int:  # the option, else the environment
        return option or settings.server_limit(variable) or default

    limits = SignupLimits(
        per_mailbox_per_day=limit(confirmations_per_mailbox, "REALLABOR_CONFIRMATIONS_PER_MAILBOX",
                                  SignupLimits.per_mailbox_per_day),
        per_hour=limit(confirmations_per_hour, "REALLABOR_CONFIRMATIONS_PER_HOUR", SignupLimits.per_hour),
        per_client_per_hour=limit(sign_ups_per_client, "REALLABOR_SIGN_UPS_PER_CLIENT",
                                  SignupLimits.per_client_per_hour),
    )  # fmt: skip
    server_limits = ServerLimits(connections_per_client=limit(
        connections_per_client, "REALLABOR_CONNECTIONS_PER_CLIENT", ServerLimits.connections_per_client))
    server = public_config(content_dir, templates, out, state_option, lists, limits, settings)
    app = public_app(server)
    click.echo(_("Serving on http://{host}:{port}/ (Ctrl+C stops). It answers only requests for {site} (the "
                 "address in base_url), as your proxy forwards them; to try it directly: curl -H 'Host: {name}' "
                 "http://{host}:{port}/", host=host, port=str(port), site=server.site.public_url,
                 name=urlsplit(server.site.public_url).hostname), err=True)  # fmt: skip
    config = server_config(app, host=host, port=port, forwarded_allow_ips=forwarded_allow_ips, limits=server_limits)
    uvicorn.Server(config).run()
