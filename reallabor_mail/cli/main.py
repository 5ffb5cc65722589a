"""The ``reallabor-mail`` command: thin wrappers that call one library function each."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from reallabor_mail import __version__
from reallabor_mail.errors import ContentError, Problem, ReallaborError
from reallabor_mail.publish.build import build as build_site
from reallabor_mail.publish.build import check as check_content
from reallabor_mail.publish.build import default_templates

CONTENT = click.option(
    "--content", "content_dir", type=click.Path(path_type=Path), default=Path("content"), show_default=True,
    help="The content folder.",
)
TEMPLATES = click.option(
    "--templates", "templates_dir", type=click.Path(path_type=Path), default=None,
    help="Templates folder (default: templates/ here, else the shipped templates).",
)
STRICT = click.option("--strict", is_flag=True, help="Treat warnings (alt text, preheader, size) as errors.")


def _print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        click.echo(str(problem), err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reallabor-mail")
def main() -> None:
    """Newsletter and event mailing of the Netzwerkstelle Städtepartnerschaften."""


@main.command()
@CONTENT
@TEMPLATES
@click.option("--out", type=click.Path(path_type=Path), default=Path("build"), show_default=True)
@STRICT
def build(content_dir: Path, templates_dir: Path | None, out: Path, strict: bool) -> None:
    """Render all newsletters and events into OUT (nothing is written if there are errors)."""
    result = build_site(content_dir, templates_dir or default_templates(), out, strict=strict)
    _print_problems(list(result.warnings))
    click.echo(f"{result.written} files written to {out}/ — open {out / 'index.html'} in a browser.")


@main.command()
@CONTENT
@TEMPLATES
@STRICT
def check(content_dir: Path, templates_dir: Path | None, strict: bool) -> None:
    """Validate the content and templates without writing anything."""
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
        main(standalone_mode=False)
    except ContentError as exc:
        _print_problems(exc.problems)
        click.echo(f"{len(exc.problems)} problem(s); nothing was written or sent.", err=True)
        sys.exit(1)
    except ReallaborError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
