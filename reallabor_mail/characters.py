"""The one control-character rule, for every entry of personal data and every header value.

- Personal fields (names, title, organisation, address; from the form, a CSV or the command line) hold
  no control character at all: C0 (tab, line breaks, VT, FF, FS–RS, ESC, BS, NUL, …), DEL, C1
  (U+0080–U+009F, NEL among them) and the Unicode line and paragraph separators. A program that
  re-serialises a mail may turn any of them into a line break, and so a name into a ``Bcc:`` header.
- Nor do they hold the invisible format characters that turn text around or hide in it (bidi embeddings,
  overrides and isolates U+202A–U+202E, U+2066–U+2069; zero width U+200B–U+200D, U+FEFF): a name typed
  with them reads reversed or differently on the desk's list, in the calendar and in headers.
- A header value holds no CR, LF or NUL (header injection); the header builder checks every value.
- Text files (Markdown, YAML) keep tab, LF and CR; other control characters are found with
  :data:`TEXT_CONTROL` and removed with a warning (they come pasted from PDFs and Word).
"""

from __future__ import annotations

import re

from reallabor_mail.errors import MessageError

PERSONAL_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
INVISIBLE_FORMAT = re.compile("[\u202a-\u202e\u2066-\u2069\u200b-\u200d\ufeff]")
TEXT_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
HEADER_UNSAFE = re.compile("[\r\n\x00]")


class HeaderInjectionError(MessageError):
    """A value bound for a header contains a line break or NUL."""


def control_character(value: str) -> str | None:
    """The first control character in a personal field, as ``U+000B``; None if there is none."""
    found = PERSONAL_CONTROL.search(value)
    return f"U+{ord(found.group()):04X}" if found else None


def invisible_character(value: str) -> str | None:
    """The first bidi or zero-width character in a personal field, as ``U+202E``; None if there is none."""
    found = INVISIBLE_FORMAT.search(value)
    return f"U+{ord(found.group()):04X}" if found else None


def header_safe(value: str, field: str) -> str:
    """``value`` unchanged if it may go into a header; :class:`HeaderInjectionError` naming ``field`` if not."""
    if HEADER_UNSAFE.search(value):
        raise HeaderInjectionError(f"{field}: line breaks are not allowed in a header value: {value!r}")
    return value
