"""How a German office greets a person, in German, Ukrainian and English."""

from __future__ import annotations

from typing import Protocol

from reallabor_mail.i18n.languages import Language

FEMALE = "Frau"
MALE = "Herr"


class Named(Protocol):
    """The fields of a person a greeting reads (the recipient store's ``Recipient`` has them)."""

    @property
    def salutation(self) -> str | None: ...  # "Frau", "Herr" or None
    @property
    def title(self) -> str | None: ...
    @property
    def first_name(self) -> str | None: ...
    @property
    def last_name(self) -> str | None: ...
    @property
    def language(self) -> Language: ...
    @property
    def display_name(self) -> str: ...


def greeting(person: Named, language: Language | None = None) -> str:
    """The opening line: ``Sehr geehrte Frau Dr. Brockmann,`` and its Ukrainian and English kin."""
    language = language or person.language
    if language == "uk":
        return _greeting_uk(person)
    if language == "en":
        return _greeting_en(person)
    return _greeting_de(person)


def _greeting_de(p: Named) -> str:
    if p.last_name and p.salutation in (FEMALE, MALE):
        opening = "Sehr geehrte Frau" if p.salutation == FEMALE else "Sehr geehrter Herr"
        return " ".join(x for x in (opening, p.title, p.last_name) if x) + ","
    if p.display_name:
        return f"Guten Tag {' '.join(x for x in (p.title, p.display_name) if x)},"
    return "Sehr geehrte Damen und Herren,"


def _greeting_en(p: Named) -> str:
    if p.last_name and p.title:
        return f"Dear {p.title.replace('Prof. Dr.', 'Professor').rstrip('.')} {p.last_name},"
    if p.last_name and p.salutation in (FEMALE, MALE):
        return f"Dear {'Ms' if p.salutation == FEMALE else 'Mr'} {p.last_name},"
    if p.display_name:
        return f"Dear {p.display_name},"
    return "Dear Sir or Madam,"


def _greeting_uk(p: Named) -> str:
    if p.salutation in (FEMALE, MALE) and (p.first_name or p.last_name):
        female = p.salutation == FEMALE
        name = vocative(p.first_name, female) if p.first_name else p.last_name
        return f"{'Шановна пані' if female else 'Шановний пане'} {name},"
    if p.display_name:
        return f"Доброго дня, {p.display_name}!"
    return "Шановні колеги,"


def vocative(name: str, female: bool) -> str:
    """The Ukrainian vocative case of a first name (Олена → Олено, Іван → Іване, Андрій → Андрію).

    Rules for the regular patterns; a name outside them is returned unchanged, which reads as
    polite nominative rather than a wrong ending.
    """
    if not name or not _is_cyrillic(name):
        return name
    lower = name.lower()
    if female:
        if lower.endswith("ія"):
            return name[:-1] + "є"
        if lower.endswith("я"):
            return name[:-1] + "ю"
        if lower.endswith("а"):
            return name[:-1] + "о"
        return name
    if lower.endswith(("ій", "й")):
        return name[:-1] + "ю"
    if lower.endswith("ло") or lower.endswith("ро"):
        return name[:-1] + "е"
    if lower.endswith("а"):
        return name[:-1] + "о"
    if lower.endswith("ь"):
        return name[:-1] + "ю"
    if lower[-1] in "жчшщ":
        return name + "у"
    if lower[-1] in "бвгґдзклмнпрстфхц":
        return name + "е"
    return name


def _is_cyrillic(text: str) -> bool:
    return any("\u0400" <= ch <= "\u04ff" for ch in text)
