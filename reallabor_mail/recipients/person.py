"""A person on the mailing list, and the one set of rules for their fields, whoever typed them: a CSV
row, the sign-up form or the command line."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from reallabor_mail.addresses import InvalidAddress, address_key
from reallabor_mail.characters import control_character
from reallabor_mail.content.models import Language
from reallabor_mail.i18n.greetings import FEMALE, MALE


@dataclass(frozen=True)
class Recipient:
    """One person a message goes to; only the email is required."""

    email: str
    salutation: str | None = None  # "Frau", "Herr" or None
    title: str | None = None  # "Dr.", "Prof. Dr."
    first_name: str | None = None
    last_name: str | None = None
    organisation: str | None = None
    language: Language = "de"

    @property
    def display_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)


_SALUTATION_ALIASES = {
    "frau": FEMALE, "fr.": FEMALE, "ms": FEMALE, "ms.": FEMALE, "mrs": FEMALE, "mrs.": FEMALE, "пані": FEMALE,
    "herr": MALE, "hr.": MALE, "mr": MALE, "mr.": MALE, "пан": MALE,
}  # fmt: skip
# Written in the Anrede column of many Excel lists for people not greeted as Frau or Herr.
_UNGENDERED = frozenset({"divers", "div.", "d", "x", "mx", "mx.", "keine angabe", "k. a.", "k.a.", "ohne"})
_TITLE_WORD = r"(?:[^\W\d_][\w.-]*\.|Dr|Prof)"  # Dr. · Prof. · Dr.-Ing. · h.c.
_TITLE = re.compile(rf"^{_TITLE_WORD}(?:\s+{_TITLE_WORD})*$", re.IGNORECASE)


def read_salutation(value: str) -> tuple[str | None, str | None] | None:
    """``(Frau/Herr or None, a title written with it)`` from an Anrede cell; None if not understood.

    ``Frau Dr.`` is Frau with title Dr.; ``Divers`` and the like greet without Frau or Herr.
    """
    text = " ".join(value.split())
    if text.casefold() in _UNGENDERED:
        return None, None
    word, _, rest = text.partition(" ")
    salutation = _SALUTATION_ALIASES.get(word.casefold())
    if salutation is None or (rest and not _TITLE.match(rest)):
        return None
    return salutation, rest or None


FIELD_LIMITS: dict[str, int] = {
    "salutation": 20, "title": 40, "first_name": 100, "last_name": 100, "organisation": 200, "language": 20,
}  # fmt: skip
PERSON_FIELDS = ("email", *FIELD_LIMITS)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_LANGUAGE_NAMES: dict[str, Language] = {
    "de": "de", "deutsch": "de", "german": "de", "німецька": "de",
    "uk": "uk", "ua": "uk", "ukrainisch": "uk", "ukrainian": "uk", "українська": "uk",
    "en": "en", "englisch": "en", "english": "en", "англійська": "en",
}  # fmt: skip


@dataclass(frozen=True)
class FieldProblem:
    """What is wrong with one field; ``code`` lets the web form say it in the reader's language
    (``line_break`` stands for every control character)."""

    field: str
    code: Literal["required", "email", "too_long", "line_break", "formula", "salutation", "language"]
    message: str


def _field_problem(name: str, value: str) -> FieldProblem | None:
    label = name.replace("_", " ")
    if found := control_character(value):
        kind = "a line break" if found in ("U+000A", "U+000D") else f"the control character {found}"
        return FieldProblem(name, "line_break", f"{label} contains {kind}; type it without")
    if value.startswith(FORMULA_START) and name != "email":
        return FieldProblem(
            name, "formula", f"{label} {value[:30]!r} starts with {value[0]!r} like a spreadsheet formula"
        )
    if name in FIELD_LIMITS and len(value) > FIELD_LIMITS[name]:
        return FieldProblem(name, "too_long", f"{label} is longer than {FIELD_LIMITS[name]} characters")
    return None


def clean_person(raw: Mapping[str, str | None]) -> tuple[Recipient | None, list[FieldProblem]]:
    """A :class:`Recipient` from untrusted strings (form, CSV row, command line), or every problem in them."""
    problems: list[FieldProblem] = []
    values: dict[str, str | None] = {}
    for name in PERSON_FIELDS:
        value = (raw.get(name) or "").strip(" ")
        problem = _field_problem(name, value)
        if problem is not None:
            problems.append(problem)
        values[name] = value or None
    failed = {p.field for p in problems}
    if "email" not in failed:
        if not values["email"]:
            problems.append(FieldProblem("email", "required", "the email address is missing"))
        else:
            try:
                values["email"] = address_key(values["email"])
            except InvalidAddress as exc:
                problems.append(FieldProblem("email", "email", str(exc)))
    salutation = values["salutation"]
    if salutation and "salutation" not in failed:
        read = read_salutation(salutation)
        if read is None:
            problems.append(FieldProblem("salutation", "salutation", (
                f"salutation {salutation!r} is not Frau, Herr (with a title such as 'Frau Dr.') or Divers; "
                "leave it empty otherwise"
            )))
        else:
            values["salutation"], title = read
            if title and values["title"] not in (None, title):
                problems.append(FieldProblem("salutation", "salutation", (
                    f"salutation {salutation!r} names the title {title!r}, the title column says "
                    f"{values['title']!r}; write the title in one place"
                )))
            values["title"] = values["title"] or title
    language = (values["language"] or "de").lower()
    if language not in _LANGUAGE_NAMES and "language" not in failed:
        problems.append(FieldProblem("language", "language", f"language {language!r} is not de, uk or en"))
    if problems:
        return None, problems
    person = Recipient(
        email=values["email"] or "",
        salutation=values["salutation"],
        title=values["title"],
        first_name=values["first_name"],
        last_name=values["last_name"],
        organisation=values["organisation"],
        language=_LANGUAGE_NAMES[language],
    )
    return person, []
