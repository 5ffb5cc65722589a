"""A person on the mailing list, and the one set of rules for their fields, whoever typed them: a CSV
row, the sign-up form or the command line."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from reallabor_mail.addresses import InvalidAddress, address_key
from reallabor_mail.characters import control_character, invisible_character
from reallabor_mail.content.models import Language
from reallabor_mail.errors import Code
from reallabor_mail.i18n.greetings import FEMALE, MALE
from reallabor_mail.i18n.messages import N_, _


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
    word, _space, rest = text.partition(" ")
    salutation = _SALUTATION_ALIASES.get(word.casefold())
    if salutation is None or (rest and not _TITLE.match(rest)):
        return None
    return salutation, rest or None


FIELD_LIMITS: dict[str, int] = {
    "salutation": 20, "title": 40, "first_name": 100, "last_name": 100, "organisation": 200, "language": 20,
}  # fmt: skip
PERSON_FIELDS = ("email", *FIELD_LIMITS)
FIELD_LABELS = {  # a person field as staff call it (translated where shown)
    "email": N_("email"), "salutation": N_("salutation"), "title": N_("title"), "first_name": N_("first name"),
    "last_name": N_("last name"), "organisation": N_("organisation"), "language": N_("language"),
}  # fmt: skip
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_LANGUAGE_NAMES: dict[str, Language] = {
    "de": "de", "deutsch": "de", "german": "de", "німецька": "de",
    "uk": "uk", "ua": "uk", "ukrainisch": "uk", "ukrainian": "uk", "українська": "uk",
    "en": "en", "englisch": "en", "english": "en", "англійська": "en",
}  # fmt: skip


def field_label(name: str) -> str:
    """A person field as staff call it, in the staff language (``first_name`` → "Vorname")."""
    return _(FIELD_LABELS[name])


@dataclass(frozen=True)
class FieldProblem:
    """What is wrong with one field: a stable ``code`` (the web form says it in the reader's language by it,
    :attr:`Code.FIELD_CONTROL_CHARACTER` stands for every control and invisible format character) and a
    message for staff."""

    field: str
    code: Code
    message: str


def _field_problem(name: str, value: str) -> FieldProblem | None:
    label = field_label(name)
    if found := control_character(value):
        if found in ("U+000A", "U+000D"):
            message = _("{field} contains a line break; type it without", field=label)
        else:
            message = _("{field} contains the control character {character}; type it without", field=label,
                        character=found)  # fmt: skip
        return FieldProblem(name, Code.FIELD_CONTROL_CHARACTER, message)
    if found := invisible_character(value):
        message = _("{field} contains the invisible character {character} (text direction or zero width); type it "
                    "without", field=label, character=found)  # fmt: skip
        return FieldProblem(name, Code.FIELD_CONTROL_CHARACTER, message)
    if value.startswith(FORMULA_START) and name != "email":
        message = _("{field} {value!r} starts with {start!r} like a spreadsheet formula; type it without that "
                    "character at the start", field=label, value=value[:30], start=value[0])  # fmt: skip
        return FieldProblem(name, Code.FIELD_FORMULA, message)
    if name in FIELD_LIMITS and len(value) > FIELD_LIMITS[name]:
        message = _("{field} is longer than {limit} characters", field=label, limit=FIELD_LIMITS[name])
        return FieldProblem(name, Code.FIELD_TOO_LONG, message)
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
            problems.append(FieldProblem("email", Code.FIELD_REQUIRED, _("the email address is missing")))
        else:
            try:
                values["email"] = address_key(values["email"])
            except InvalidAddress as exc:
                problems.append(FieldProblem("email", Code.FIELD_EMAIL, str(exc)))
    salutation = values["salutation"]
    if salutation and "salutation" not in failed:
        read = read_salutation(salutation)
        if read is None:
            message = _("salutation {value!r} is not Frau, Herr (with a title such as 'Frau Dr.') or Divers; "
                        "leave it empty otherwise", value=salutation)  # fmt: skip
            problems.append(FieldProblem("salutation", Code.FIELD_SALUTATION, message))
        else:
            values["salutation"], title = read
            if title and values["title"] not in (None, title):
                message = _(
                    "salutation {value!r} names the title {title!r}, the title column says {column!r}; "
                    "write the title in one place", value=salutation, title=title, column=values["title"],
                )  # fmt: skip
                problems.append(FieldProblem("salutation", Code.FIELD_SALUTATION, message))
            values["title"] = values["title"] or title
    language = (values["language"] or "de").lower()
    if language not in _LANGUAGE_NAMES and "language" not in failed:
        message = _("language {value!r} is not de, uk or en", value=language)
        problems.append(FieldProblem("language", Code.FIELD_LANGUAGE, message))
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
