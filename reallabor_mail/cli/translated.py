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


class TranslatedSubgroup(TranslatedCommand, click.Group):
    """A group below the top one (``recipients``): its commands' help pages are translated too."""

    command_class = TranslatedCommand


def confirmed(question: str) -> bool:
    """Ask staff a yes/no question in their language; only a yes (theirs or English: j, ja, y, yes) goes on."""
    answer = click.prompt(_("{question} [y/N]", question=question), default="", show_default=False).strip()
    # Translators: the word for "yes" a person types to answer a question at the command line.
    return bool(answer) and any(word.startswith(answer.casefold()) for word in (_("yes"), "yes"))
