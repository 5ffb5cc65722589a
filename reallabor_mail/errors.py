"""The one exception tree, and the problem reports content checks collect.

Every message a user sees starts with the path (or the setting) it is about (``path:line: message``),
so an editor or a terminal can jump straight to it, and says what to do. The CLI is the only place that
prints them: one line each, exit code 1, never a traceback. Third-party errors are translated into
these where they enter our code (``UnicodeDecodeError`` and YAML errors in the loader,
``jinja2.TemplateError`` in render/engine.py, ``sqlite3.Error`` in db.py, ``OSError`` where files are
read or written), so nothing above that line needs to know the library.

    ReallaborError                     anything a user can cause or fix
    ├── SettingsError                  an environment variable is missing or wrong (settings.py)
    │   ├── SecretMissing              REALLABOR_SECRET not set or too short (recipients/tokens.py)
    │   └── DkimError                  the DKIM key cannot be read or cannot sign (mail/dkim.py)
    ├── ContentError                   the content has problems; carries every Problem, not just the first
    ├── RenderError                    a template or MJML error, at template:line (render/engine.py)
    ├── OutputError                    the build folder cannot be written (publish/build.py)
    ├── StateError                     the state database cannot be opened, read or written (db.py)
    ├── CalendarError                  an event-version record contradicts the event (render/ics.py)
    ├── MessageError                   a mail cannot be built safely
    │   ├── HeaderInjectionError       a header value with a line break or NUL (mail/message.py)
    │   └── StampError                 one recipient's message cannot be stamped (mail/stamp.py)
    ├── RecipientError                 a recipient operation cannot be done (recipients/store.py)
    ├── ImportRefused                  a CSV file cannot be imported (recipients/store.py)
    ├── InvalidAddress                 an address that does not pass validation (recipients/store.py)
    ├── InvalidToken                   a link forged, altered, for another purpose or expired (recipients/tokens.py)
    └── DeliveryError                  the mail server cannot be used at all (delivery/transport.py)

A test (tests/test_layers.py) checks that every exception class in the package is in this tree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class ReallaborError(Exception):
    """Base of every error this package raises on purpose."""


class SettingsError(ReallaborError):
    """An environment variable is missing or has a value we cannot use."""


class OutputError(ReallaborError):
    """A folder or file we were asked to write cannot be written."""


class MessageError(ReallaborError):
    """A mail cannot be built safely from what it was given."""


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the content, located as precisely as we know."""

    path: str
    line: int | None
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        prefix = "warning: " if self.severity is Severity.WARNING else ""
        return f"{where}: {prefix}{self.message}"


def display_path(path: Path, root: Path | None = None) -> str:
    """A path as the user typed it, relative to the working directory where that is shorter."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        if root is not None:
            try:
                return str(path.resolve().relative_to(root.resolve().parent))
            except ValueError:
                pass
        return str(path)


class ContentError(ReallaborError):
    """Raised when the content has errors; carries all of them, not just the first."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(set(problems))  # a template error repeats for every item using it
        super().__init__("\n".join(str(p) for p in self.problems))


class ProblemLog:
    """Collects problems across every file, so all of them are reported before we abort."""

    def __init__(self) -> None:
        self._problems: list[Problem] = []

    def error(self, path: str, line: int | None, message: str) -> None:
        self._problems.append(Problem(path, line, message, Severity.ERROR))

    def warning(self, path: str, line: int | None, message: str) -> None:
        self._problems.append(Problem(path, line, message, Severity.WARNING))

    def extend(self, problems: Iterable[Problem]) -> None:
        self._problems.extend(problems)

    @property
    def errors(self) -> list[Problem]:
        return sorted(p for p in self._problems if p.severity is Severity.ERROR)

    @property
    def warnings(self) -> list[Problem]:
        return sorted(p for p in self._problems if p.severity is Severity.WARNING)

    def raise_if_errors(self, strict: bool = False) -> None:
        """Abort with every error (and, when strict, every warning turned into an error)."""
        failing = self.errors
        if strict:
            failing = sorted(failing + [Problem(p.path, p.line, p.message) for p in self.warnings])
        if failing:
            raise ContentError(failing)
