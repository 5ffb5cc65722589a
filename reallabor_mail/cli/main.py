"""The ``reallabor-mail`` command: thin wrappers that call one library function each.

A porch, not a hall: this package imports only click and the base modules at start, and each command
imports its library inside its function, so ``--help`` and ``check`` do not load the web server, the
SMTP client or the email toolchain they do not use (a test checks this). The environment is read once,
here, into a :class:`~reallabor_mail.settings.Settings` that the commands pass down.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from reallabor_mail import __version__
from reallabor_mail.errors import ContentError, Problem, ReallaborError
from reallabor_mail.settings import Settings

CONTENT = click.option(
    "--content", "content_dir", type=click.Path(path_type=Path), default=Path("content"), show_default=True,
    help="The content folder.",
)
TEMPLATES = click.option(
    "--templates", "templates_dir", type=click.Path(path_type=Path), default=None,
    help="Templates folder: its files replace the shipped templates of the same name.",
)
STRICT = click.option("--strict", is_flag=True, help="Treat warnings (alt text, preheader, size) as errors.")


def _print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        click.echo(str(problem), err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reallabor-mail")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Newsletter and event mailing of the Netzwerkstelle Städtepartnerschaften."""
    if ctx.obj is None:  # run() passes the settings; click's CliRunner does not
        ctx.obj = Settings.from_environ()


@main.command()
@CONTENT
@TEMPLATES
@click.option("--out", type=click.Path(path_type=Path), default=Path("build"), show_default=True)
@STRICT
def build(content_dir: Path, templates_dir: Path | None, out: Path, strict: bool) -> None:
    """Render all newsletters and events into OUT (nothing is written if there are errors)."""
    from reallabor_mail.publish.build import build as build_site
    from reallabor_mail.publish.build import default_templates

    result = build_site(content_dir, templates_dir or default_templates(), out, strict=strict)
    _print_problems(list(result.warnings))
    click.echo(f"{result.written} files written to {out}/ — open {out / 'index.html'} in a browser.")


@main.command()
@CONTENT
@TEMPLATES
@STRICT
def check(content_dir: Path, templates_dir: Path | None, strict: bool) -> None:
    """Validate the content and templates without writing anything."""
    from reallabor_mail.publish.build import check as check_content
    from reallabor_mail.publish.build import default_templates

    warnings = check_content(content_dir, templates_dir or default_templates(), strict=strict)
    _print_problems(warnings)
    click.echo(f"{content_dir}: OK" + (f" ({len(warnings)} warnings)" if warnings else ""))


from reallabor_mail.cli.recipients import recipients_group, serve  # noqa: E402

main.add_command(recipients_group)
main.add_command(serve)

from reallabor_mail.cli.send import send_command  # noqa: E402

main.add_command(send_command)


def run() -> None:
    """Entry point: our errors become `path:line: message` lines and exit code 1, never a traceback."""
    try:
        main(standalone_mode=False, obj=Settings.from_environ())
    except ContentError as exc:
        _print_problems(exc.problems)
        click.echo(f"{len(exc.problems)} problem(s); nothing was written or sent.", err=True)
        sys.exit(1)
    except ReallaborError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
