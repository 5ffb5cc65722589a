"""The one exception tree, and the problem reports content checks collect.

Every message a user sees starts with the path (or the setting) it is about (``path:line: message``),
so an editor or a terminal can jump straight to it, and says what to do. The CLI is the only place that
prints them: one line each, exit code 1, never a traceback. Content problems end with a stable code in
brackets (``… [RLM203]``, as mypy shows its error codes): the wording is translated, the code is not, so
tools and the preview's checks panel select problems by code. Third-party errors are translated into
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
    │   └── NoState                    a read-only command found no state file yet (db.py)
    ├── CalendarError                  an event-version record contradicts the event (render/ics.py)
    ├── MessageError                   a mail cannot be built safely
    │   ├── HeaderInjectionError       a header value with a line break or NUL (characters.py)
    │   └── StampError                 one recipient's message cannot be stamped (mail/stamp.py)
    ├── RecipientError                 a recipient operation cannot be done (recipients/store.py)
    ├── ScheduleError                  a send cannot be scheduled or unscheduled as asked (delivery/schedule.py)
    ├── ImportRefused                  a CSV file cannot be imported (recipients/spreadsheet.py)
    ├── InvalidAddress                 an address that does not pass validation (addresses.py)
    ├── InvalidToken                   a link forged, altered, for another purpose or expired (recipients/tokens.py)
    ├── UnknownList                    a send names an unknown list, or one without subscribers (delivery/campaign.py)
    ├── SendIncomplete                 a send ended with messages not delivered: exit 1 (delivery/campaign.py)
    ├── DeliveryError                  the mail server cannot be used at all (delivery/transport.py)
    │   └── SenderRefused              the server refuses our sender address: the run stops (delivery/engine.py)
    └── MailboxError                   the organiser's mailbox (IMAP, Maildir) cannot be read (mailbox/source.py)

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


class Code(StrEnum):
    """The stable code of each kind of problem: 1xx files and front matter, 2xx Markdown, 3xx rendering, 4xx a
    recipient's fields (CSV row, sign-up form, command line) and the rows of a CSV import."""

    CONTENT_FOLDER_MISSING = "RLM100"
    INVALID_YAML = "RLM101"
    NOT_A_MAPPING = "RLM102"
    DUPLICATE_KEY = "RLM103"
    NO_FRONT_MATTER = "RLM104"
    FRONT_MATTER_NOT_CLOSED = "RLM105"
    MISSING_KEY = "RLM106"
    UNKNOWN_KEY = "RLM107"
    INVALID_VALUE = "RLM108"
    NOT_UTF8 = "RLM109"
    SITE_YAML_MISSING = "RLM110"
    UNKNOWN_LANGUAGE = "RLM111"
    TRANSLATION_WITHOUT_ORIGINAL = "RLM112"
    CONTROL_CHARACTER = "RLM113"
    NO_PREHEADER = "RLM114"
    QUOTES_NOT_STRAIGHT = "RLM115"
    UNKNOWN_LIST = "RLM120"
    SITE_LISTS_MISSING = "RLM121"
    REPORT_WITHOUT_EVENT = "RLM130"
    REPORT_BEFORE_EVENT_END = "RLM131"
    HEADING_IN_BODY = "RLM201"
    DECEPTIVE_LINK = "RLM202"
    IMAGE_WITHOUT_ALT = "RLM203"
    IMAGE_PATH = "RLM204"
    IMAGE_UNREADABLE = "RLM205"
    LINK_WITHOUT_ADDRESS = "RLM206"
    LINK_NOT_FULL_ADDRESS = "RLM207"
    DOUBLE_GREETING = "RLM208"
    IMAGE_TOO_HEAVY = "RLM209"
    TEMPLATE_NOT_FOUND = "RLM301"
    TEMPLATE_ERROR = "RLM302"
    MJML_ERROR = "RLM303"
    UNKNOWN_MJML_TAG = "RLM304"
    EMAIL_TOO_LARGE = "RLM305"
    TEMPLATES_FOLDER_MISSING = "RLM306"
    TEMPLATE_NOT_UTF8 = "RLM307"
    FIELD_REQUIRED = "RLM401"
    FIELD_EMAIL = "RLM402"
    FIELD_TOO_LONG = "RLM403"
    FIELD_CONTROL_CHARACTER = "RLM404"
    FIELD_FORMULA = "RLM405"
    FIELD_SALUTATION = "RLM406"
    FIELD_LANGUAGE = "RLM407"
    ROW_STATUS = "RLM410"
    ROW_FIELD_COUNT = "RLM411"
    ROW_UNREADABLE = "RLM412"
    ROW_CONFLICT = "RLM413"
    ROW_MERGED = "RLM414"
    ROW_STORED_OTHERWISE = "RLM415"
    ROW_SUPPRESSED = "RLM416"
    ROW_STATUS_KEPT = "RLM417"


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the content, located as precisely as we know."""

    path: str
    line: int | None
    message: str
    code: Code | None = None
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        """``path:line: [warning: ]message [CODE]``; logs and files keep the tag ``warning:`` untranslated."""
        return self.shown("warning")

    def shown(self, warning: str) -> str:
        """The line with ``warning`` as the word that tags a warning (the CLI passes the staff language's)."""
        where = f"{self.path}:{self.line}" if self.line else self.path
        prefix = f"{warning}: " if self.severity is Severity.WARNING else ""
        return f"{where}: {prefix}{self.message}" + (f" [{self.code}]" if self.code else "")


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

    def error(self, path: str, line: int | None, message: str, code: Code) -> None:
        self._problems.append(Problem(path, line, message, code, Severity.ERROR))

    def warning(self, path: str, line: int | None, message: str, code: Code) -> None:
        self._problems.append(Problem(path, line, message, code, Severity.WARNING))

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
            failing = sorted(failing + [Problem(p.path, p.line, p.message, p.code) for p in self.warnings])
        if failing:
            raise ContentError(failing)
