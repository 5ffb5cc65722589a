"""click in the staff language: yes/no questions (:func:`confirmed`) and help pages. Every command's and
option's help is marked with ``N_`` and
translated when shown, because the language is only known once the command runs (see cli/main.py).

Commands of a sub-group (``recipients …``) use :class:`TranslatedSubgroup`, so their ``--help`` is the
staff's language too. click's own tag after an option's help (``[required]``) is translated with it.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable

import click

from reallabor_mail.i18n.messages import N_, _

N_("required")  # click's tag after the help of a required option
_TAGGED = re.compile(r"^(?P<help>.*?)\s*\[(?P<tags>[^\[\]]*)\]$", re.DOTALL)


def translate_help(text: str) -> str:
    """An option's or command's help in the staff language, click's ``  [tag; tag]`` after it too."""
    if not text:
        return text
    match = _TAGGED.match(text)
    if match is None:
        return _(text)
    tags = "; ".join(_(tag) for tag in match["tags"].split("; "))
    return f"{_(match['help'])}  [{tags}]" if match["help"] else f"[{tags}]"


class TranslatedFormatter(click.HelpFormatter):
    """click's help page in the staff language: usage prefix, headings and every option's and command's help."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, args, prefix=_("Usage:") + " ")

    def write_heading(self, heading: str) -> None:
        super().write_heading(_(heading))

    def write_dl(self, rows: Iterable[tuple[str, str]], col_max: int = 30, col_spacing: int = 2) -> None:
        super().write_dl([(term, translate_help(text)) for term, text in rows], col_max, col_spacing)


class TranslatedContext(click.Context):
    formatter_class = TranslatedFormatter


class TranslatedCommand(click.Command):
    """A command whose help text is translated when shown (in a list of commands, untruncated)."""

    context_class = TranslatedContext

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if self.help:
            formatter.write_paragraph()
            with formatter.indentation():
                formatter.write_text(_(inspect.cleandoc(self.help)))

    def get_short_help_str(self, limit: int = 45) -> str:
        return inspect.cleandoc(self.help) if self.help else ""

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return [_("[OPTIONS]") if piece == "[OPTIONS]" else piece for piece in super().collect_usage_pieces(ctx)]


class TranslatedSubgroup(TranslatedCommand, click.Group):
    """A group below the top one (``recipients``): its commands' help pages are translated too."""

    command_class = TranslatedCommand


def confirmed(question: str) -> bool:
    """Ask staff a yes/no question in their language; only a yes (theirs or English: j, ja, y, yes) goes on."""
    answer = click.prompt(_("{question} [y/N]", question=question), default="", show_default=False).strip()
    # Translators: the word for "yes" a person types to answer a question at the command line.
    return bool(answer) and any(word.startswith(answer.casefold()) for word in (_("yes"), "yes"))


# click's own error sentences (a usage error is found before a command runs), each as click writes it in
# English, with the whole sentence of ours it becomes. Anything not listed stays in click's English.
_CLICK_SENTENCES: tuple[tuple[re.Pattern[str], dict[str, str]], ...] = tuple(
    (re.compile(pattern), sentences)
    for pattern, sentences in (
        (r"No such option '(?P<name>[^']*)'\.", {"": N_("There is no option {name}.")}),
        (r"No such command '(?P<name>[^']*)'\.", {"": N_("There is no command {name}.")}),
        (r"Did you mean '(?P<name>[^']*)'\?", {"": N_("Did you mean {name}?")}),
        (r"\(Did you mean one of: (?P<name>[^?]*)\?\)", {"": N_("(Did you mean one of {name}?)")}),
        (r"Missing (?P<kind>argument|option) (?P<names>'[^']*'(?: / '[^']*')*)\.", {
            "argument": N_("The argument {name} is missing."), "option": N_("The option {name} is missing."),
        }),
        (r"Option '(?P<name>[^']*)' requires an argument\.", {"": N_("The option {name} needs a value.")}),
        (r"Option '(?P<name>[^']*)' requires (?P<count>\d+) arguments\.", {
            "": N_("The option {name} needs {count} values."),
        }),
        (r"Option '(?P<name>[^']*)' does not take a value\.", {"": N_("The option {name} takes no value.")}),
        (r"Got unexpected extra arguments? \((?P<args>[^)]*)\)", {"": N_("Unexpected extra input: {args}")}),
        (r"Missing command\.", {"": N_("A command is missing.")}),
        (r"Invalid value for '(?P<name>[^']*)':(?= )", {"": N_("Invalid value for {name}:")}),
        (r"(?P<kind>File|Directory|Path) '(?P<name>[^']*)' does not exist\.", {
            "File": N_("The file {name} does not exist."), "Directory": N_("The folder {name} does not exist."),
            "Path": N_("{name} does not exist."),
        }),
        (r"(?P<kind>File|Directory|Path) '(?P<name>[^']*)' is a directory\.", {"": N_("{name} is a folder.")}),
        (r"(?P<kind>File|Directory|Path) '(?P<name>[^']*)' is a file\.", {"": N_("{name} is a file, not a folder.")}),
        (r"(?P<kind>File|Directory|Path) '(?P<name>[^']*)' is not readable\.", {"": N_("{name} cannot be read.")}),
        (r"(?P<kind>File|Directory|Path) '(?P<name>[^']*)' is not writable\.", {
            "": N_("{name} cannot be written."),
        }),
        (r"'(?P<name>[^']*)' is not (?:one of )?(?P<choices>'.*'|\w+)\.", {
            "": N_("{name} is not possible here; choose from {choices}."),
        }),
        (r"'(?P<name>[^']*)' is not a valid integer\.", {"": N_("{name} is not a whole number.")}),
        (r"'(?P<name>[^']*)' is not a valid float\.", {"": N_("{name} is not a number.")}),
        (r"'(?P<name>[^']*)' does not match the formats? (?P<choices>.*)\.", {
            "": N_("{name} does not match the format {choices}."),
        }),
    )
)


def _date_format(text: str) -> str:
    """``'%Y-%m-%d'`` as staff write a date (``JJJJ-MM-TT``)."""
    return text.replace("%Y-%m-%d", _("YYYY-MM-DD")).replace("%H:%M", _("HH:MM"))


def translate_click_message(message: str) -> str:
    """click's English error message in the staff language, sentence by sentence."""
    for pattern, sentences in _CLICK_SENTENCES:

        def sentence(match: re.Match[str], sentences: dict[str, str] = sentences) -> str:
            values = match.groupdict()
            chosen = sentences.get(values.pop("kind", None) or "", sentences.get(""))
            values = {  # a name as click quotes it; several ("'-o' / '--out'") come quoted already
                "name" if key == "names" else key: f"'{value}'" if key == "name" else _date_format(value)
                for key, value in values.items()
            }
            return _(chosen or match[0], **values)

        message = pattern.sub(sentence, message)
    return message


def show_usage_error(error: click.ClickException) -> None:
    """What click shows for a wrong command line, in the staff language: usage, where help is, what was wrong."""
    ctx = error.ctx if isinstance(error, click.UsageError) else None
    if ctx is not None:
        click.echo(ctx.get_usage(), err=True)
        help_option = max(ctx.help_option_names, key=len, default="--help")
        click.echo(_("Help: {command}", command=f"{ctx.command_path} {help_option}"), err=True)
        click.echo(err=True)
    click.echo(_("Error: {message}", message=translate_click_message(error.format_message())), err=True)
