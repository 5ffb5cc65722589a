"""The gettext catalogs at run time: what recipients read in their language, what staff read in theirs.

Source strings are English sentences with named placeholders (``{count} files written``); the
catalogs in ``locale/<lang>/LC_MESSAGES/messages.po`` translate them (``python -m
reallabor_mail.i18n.catalogs update`` re-extracts and merges, then compiles the ``.mo`` files this
module reads with the standard library alone, so ``--help`` does not import Babel).

Staff language: ``REALLABOR_LANG``, else the locale (``LC_ALL``, ``LC_MESSAGES``, ``LANG``), else
``site.yaml``'s ``language``, else German: the office this is written for.
"""

from __future__ import annotations

import errno
import gettext as _gettext
from functools import cache
from pathlib import Path

from reallabor_mail.i18n.languages import LANGUAGES, Language
from reallabor_mail.settings import ImapSettings, ServerSettings, Settings

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
OFFICE_LANGUAGE: Language = "de"


@cache
def translations(language: Language) -> _gettext.GNUTranslations:
    """The compiled catalog of one language (a missing catalog is a packaging error, so it raises)."""
    with (LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.mo").open("rb") as file:
        return _gettext.GNUTranslations(file)


def language_name(language: Language) -> str:
    """The name of a language in that language (``Deutsch``, ``Українська``, ``English``)."""
    # Translators: the name of the catalog's own language, as a language switcher shows it.
    return translations(language).pgettext("the name of this language", "English")


def language_of_locale(value: str) -> Language | None:
    """``de_DE.UTF-8`` → ``de``, ``uk_UA`` → ``uk``; None for ``C``, ``POSIX`` and languages we lack."""
    code = value.split(".")[0].split("@")[0].split("_")[0].split("-")[0].lower()
    return code if code in LANGUAGES else None


def staff_language(settings: Settings, site_language: Language | None = None) -> Language:
    """The language staff read: ``REALLABOR_LANG``, else the locale, else the site's, else German.

    Like gettext, the first locale variable that is set decides (``LC_ALL=C`` means no language).
    """
    for value in (settings.language, settings.locale):
        found = language_of_locale(value or "")
        if found:
            return found
    return site_language or OFFICE_LANGUAGE


_active: list[Language] = []  # the staff language the CLI chose; empty: decided from the environment


def activate_staff_language(language: Language) -> None:
    """Make ``language`` the one every staff-facing message of this process is written in."""
    _active[:] = [language]


def current_staff_language() -> Language:
    if _active:
        return _active[0]
    return staff_language(Settings.from_environ())  # outside the CLI (library use, tests)


def _(message: str, /, **values: object) -> str:
    """A staff-facing sentence in the staff language, its ``{placeholders}`` filled in (numbers as in
    :func:`number`)."""
    language = current_staff_language()
    text = translations(language).gettext(message)
    return text.format(**_numbers(values, language)) if values else text


def ngettext(singular: str, plural: str, count: int, /, **values: object) -> str:
    """A staff-facing sentence whose form depends on ``count`` (available as ``{count}``)."""
    language = current_staff_language()
    text = translations(language).ngettext(singular, plural, count)
    return text.format(**_numbers({"count": count, **values}, language))


def number(value: int, language: Language | None = None) -> str:
    """A count as staff read it: ``3.000`` in German, ``3 000`` (no-break space) in Ukrainian, ``3,000`` in English.

    The one rule for numbers in staff text: ``_`` and ``ngettext`` apply it to every int placeholder, so
    msgids carry no format specs; a number that is a name, not a count (a port), is passed as text.
    """
    from babel.numbers import format_decimal  # only when a number is shown: --help stays light

    return format_decimal(value, locale=language or current_staff_language())


def _numbers(values: dict[str, object], language: Language) -> dict[str, object]:
    return {key: number(value, language) if type(value) is int else value for key, value in values.items()}


def N_(message: str) -> str:
    """Mark a sentence for the catalog that is translated later, where it is shown (click's help)."""
    return message


def server_shown(server: ServerSettings) -> str:
    """Where a command connects, as it shows before it works: ``smtp.example.org:587 (STARTTLS, user becker)``."""
    how = {"starttls": "STARTTLS", "tls": "TLS", "none": _("unencrypted, loopback")}[server.security]
    text = _("{host}:{port} ({security}, user {user})", host=server.host, port=str(server.port), security=how,
             user=server.user) if server.user else f"{server.host}:{server.port} ({how})"  # fmt: skip
    return f"{text}, {server.folder}" if isinstance(server, ImapSettings) else text


_OS_REASONS = {  # why the system refused a file, as staff read it (the C library's words are English)
    errno.ENOENT: N_("the file or folder does not exist"),
    errno.EACCES: N_("no permission"),
    errno.EPERM: N_("no permission"),
    errno.EROFS: N_("the disk is read-only"),
    errno.ENOSPC: N_("the disk is full"),
    errno.EISDIR: N_("it is a folder"),
    errno.ENOTDIR: N_("a part of the path is a file, not a folder"),
    errno.EEXIST: N_("it exists already"),
}


def os_reason(exc: OSError) -> str:
    """Why an operating-system call failed, in the staff language (the system's own words if unknown)."""
    known = _OS_REASONS.get(exc.errno) if exc.errno is not None else None
    return _(known) if known else str(exc.strerror or exc)
