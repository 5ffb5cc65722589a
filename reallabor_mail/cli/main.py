"""The ``reallabor-mail`` command: thin wrappers that call one library function each.

Everything it prints, ``--help`` included, is in the staff language (see
:mod:`reallabor_mail.i18n.messages`): help texts are marked with ``N_`` and translated when shown,
because the language is only known once the command runs (``REALLABOR_LANG``, the locale, then
``site.yaml``).

A porch, not a hall: this module imports only click, the base modules and the catalogs at start; the
other command modules are imported when their command is asked for (:data:`COMMANDS`; ``--help``
lists them all, so it loads them all), and each command imports its library inside its function, so
``--help``, ``check`` and ``send`` do not load the web server, the SMTP client, the email toolchain or
the other commands they do not use (tests/cli/test_cli.py checks this). The environment is read once,
here, into a :class:`~reallabor_mail.settings.Settings` the commands pass down.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reallabor_mail import __version__
from reallabor_mail.cli.options import STATE_TYPE
from reallabor_mail.cli.translated import TranslatedCommand, show_usage_error
from reallabor_mail.content.site_language import site_language
from reallabor_mail.errors import ContentError, Problem, ReallaborError
from reallabor_mail.i18n.messages import N_, _, activate_staff_language, ngettext, staff_language
from reallabor_mail.settings import Settings

if TYPE_CHECKING:
    from reallabor_mail.db import StateLocation

DEFAULT_CONTENT = Path("content")
# click's own words in the help page, translated where they are shown
N_("Usage:"), N_("Options"), N_("Commands"), N_("Show this message and exit."), N_("Show the version and exit.")


def use_staff_language(settings: Settings, content_dir: Path = DEFAULT_CONTENT) -> None:
    """Speak the staff language from now on; ``site.yaml`` of ``content_dir`` decides if the environment does not."""
    activate_staff_language(staff_language(settings, site_language(content_dir)))


# the commands defined in other modules: name → (module, attribute), imported when the command is asked for
COMMANDS = {
    "recipients": ("reallabor_mail.cli.recipients", "recipients_group"),
    "serve": ("reallabor_mail.cli.recipients", "serve"),
    "send": ("reallabor_mail.cli.send", "send_command"),
    "worker": ("reallabor_mail.cli.worker", "worker"),
    "inbox": ("reallabor_mail.cli.inbox", "inbox_command"),
    "registrations": ("reallabor_mail.cli.registrations", "registrations_command"),
    "document": ("reallabor_mail.cli.document", "document_command"),
    "state": ("reallabor_mail.cli.state", "state_group"),
}


class TranslatedGroup(TranslatedCommand, click.Group):
    """The top-level group: chooses the staff language before anything, ``--help`` included, is written;
    loads a command of :data:`COMMANDS` when it is asked for."""

    command_class = TranslatedCommand

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        # an unknown name loads them all: click suggests the nearest from the loaded ones
        wanted = [cmd_name] if cmd_name in COMMANDS else [] if cmd_name in self.commands else list(COMMANDS)
        for name in wanted:
            if name not in self.commands:
                module, attribute = COMMANDS[name]
                command: click.Command = getattr(importlib.import_module(module), attribute)
                self.add_command(command, name)
        return super().get_command(ctx, cmd_name)

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        extra.setdefault("obj", None)
        if extra["obj"] is None:  # run() passes the settings; click's CliRunner does not
            extra["obj"] = Settings.from_environ()
        use_staff_language(extra["obj"])
        return super().make_context(info_name, args, parent, **extra)


CONTENT = click.option(
    "--content", "content_dir", type=click.Path(path_type=Path), default=DEFAULT_CONTENT,
    help=N_("The content folder (default: content)."),
)
TEMPLATES = click.option(
    "--templates", "templates_dir", type=click.Path(path_type=Path), default=None,
    help=N_("Templates folder: its files replace the shipped templates of the same name."),
)
STRICT = click.option("--strict", is_flag=True, help=N_("Treat warnings (alt text, preheader, size) as errors."))


def _print_problems(problems: Sequence[Problem]) -> None:
    for problem in problems:
        # Translators: the tag before a content warning ("path:line: warning: …").
        click.echo(problem.shown(_("warning")), err=True)


@click.group(cls=TranslatedGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reallabor-mail", help=N_("Show the version and exit."))
def main() -> None:
    """Newsletter and event mailing of the Netzwerkstelle Städtepartnerschaften."""


N_("Newsletter and event mailing of the Netzwerkstelle Städtepartnerschaften.")


@main.command(help=N_("Render all newsletters and events into OUT (nothing is written if there are errors)."))
@CONTENT
@TEMPLATES
@click.option("--out", type=click.Path(path_type=Path), default=Path("build"),
         help=N_("The folder the archive is written to (default: build)."))  # fmt: skip
@STRICT
@click.option("--state", "state_option", type=STATE_TYPE, default=None,
              help=N_("State file whose sent event versions the .ics downloads carry (read only; default: "
                      "$REALLABOR_STATE or .reallabor/state.sqlite3 if it exists)."))  # fmt: skip
@click.pass_obj
def build(
    settings: Settings, content_dir: Path, templates_dir: Path | None, out: Path, strict: bool,
    state_option: StateLocation | None,
) -> None:
    from reallabor_mail.db import state_path
    from reallabor_mail.delivery.event_versions import sent_versions
    from reallabor_mail.publish.build import build as build_site
    from reallabor_mail.publish.build import default_templates

    use_staff_language(settings, content_dir)
    sent = sent_versions(state_path(state_option, settings), required=state_option is not None)
    result = build_site(content_dir, templates_dir or default_templates(), out, strict=strict, sent=sent)
    _print_problems(result.warnings)
    click.echo(
        ngettext(
            "{count} file written to {out}/ — open {index} in a browser.",
            "{count} files written to {out}/ — open {index} in a browser.",
            result.written,
            out=out,
            index=out / "index.html",
        )
    )


@main.command(help=N_("Validate the content and templates without writing anything."))
@CONTENT
@TEMPLATES
@STRICT
@click.pass_obj
def check(settings: Settings, content_dir: Path, templates_dir: Path | None, strict: bool) -> None:
    from reallabor_mail.publish.build import check as check_content
    from reallabor_mail.publish.build import default_templates

    use_staff_language(settings, content_dir)
    warnings = check_content(content_dir, templates_dir or default_templates(), strict=strict)
    _print_problems(warnings)
    if warnings:
        click.echo(ngettext("{content}: OK ({count} warning)", "{content}: OK ({count} warnings)", len(warnings),
                            content=content_dir))  # fmt: skip
    else:
        click.echo(_("{content}: OK", content=content_dir))


def run() -> None:
    """Entry point: our errors become `path:line: message` lines and exit code 1, never a traceback."""
    try:
        main(standalone_mode=False, obj=Settings.from_environ())
    except ContentError as exc:
        _print_problems(exc.problems)
        click.echo(
            ngettext(
                "{count} problem; nothing was written or sent.",
                "{count} problems; nothing was written or sent.",
                len(exc.problems),
            ),
            err=True,
        )
        sys.exit(1)
    except ReallaborError as exc:
        from reallabor_mail.cli.failures import error_text

        click.echo(error_text(exc), err=True)  # starts with the path or the setting it is about
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo(_("Aborted."), err=True)
        sys.exit(1)
    except click.ClickException as exc:
        show_usage_error(exc)
        sys.exit(exc.exit_code)
