"""Greetings as a German office writes them, with Ukrainian vocatives and English forms."""

from __future__ import annotations

import pytest

from reallabor_mail.addresses import AddressFault, InvalidAddress, parse_address
from reallabor_mail.i18n.greetings import greeting, vocative
from reallabor_mail.recipients.person import Recipient, read_salutation


@pytest.mark.parametrize(
    ("person", "expected"),
    [
        (Recipient("a@x.de", "Frau", "Dr.", "Beate", "Brockmann"), "Sehr geehrte Frau Dr. Brockmann,"),
        (Recipient("a@x.de", "Herr", None, "Kai", "Pfundheller"), "Sehr geehrter Herr Pfundheller,"),
        (Recipient("a@x.de", "Herr", "Prof. Dr.", None, "Schmidt"), "Sehr geehrter Herr Prof. Dr. Schmidt,"),
        (Recipient("a@x.de", None, None, "Kim", "Schmidt"), "Guten Tag Kim Schmidt,"),
        (Recipient("a@x.de"), "Sehr geehrte Damen und Herren,"),
        (Recipient("a@x.de", "Frau", None, None, None), "Sehr geehrte Damen und Herren,"),
    ],
)
def test_german(person: Recipient, expected: str) -> None:
    assert greeting(person, "de") == expected


@pytest.mark.parametrize(
    ("person", "expected"),
    [
        (Recipient("a@x.ua", "Frau", None, "Олена", "Коваленко", language="uk"), "Шановна пані Олено,"),
        (Recipient("a@x.ua", "Herr", None, "Іван", "Петренко", language="uk"), "Шановний пане Іване,"),
        (Recipient("a@x.ua", "Herr", None, "Андрій", "Шевчук", language="uk"), "Шановний пане Андрію,"),
        (Recipient("a@x.ua", "Frau", None, "Марія", "Бондар", language="uk"), "Шановна пані Маріє,"),
        (Recipient("a@x.ua", language="uk"), "Шановні колеги,"),
    ],
)
def test_ukrainian(person: Recipient, expected: str) -> None:
    assert greeting(person) == expected


def test_english() -> None:
    assert greeting(Recipient("a@x.org", "Frau", None, "Beate", "Brockmann"), "en") == "Dear Ms Brockmann,"
    assert greeting(Recipient("a@x.org", "Herr", "Dr.", "Kai", "Pfundheller"), "en") == "Dear Dr Pfundheller,"
    assert greeting(Recipient("a@x.org"), "en") == "Dear Sir or Madam,"


@pytest.mark.parametrize(("name", "female", "expected"), [
    ("Олена", True, "Олено"), ("Наталія", True, "Наталіє"), ("Галя", True, "Галю"),
    ("Петро", False, "Петре"), ("Сергій", False, "Сергію"), ("Тарас", False, "Тарасе"), ("Микола", False, "Миколо"),
    ("Olena", True, "Olena"),
])  # fmt: skip
def test_vocative(name: str, female: bool, expected: str) -> None:
    assert vocative(name, female) == expected


def test_salutation_normalised() -> None:
    assert read_salutation(" frau ") == ("Frau", None)
    assert read_salutation("Mr.") == ("Herr", None)
    assert read_salutation("Frau Dr.") == ("Frau", "Dr.")
    assert read_salutation("Herr  Prof. Dr.-Ing.") == ("Herr", "Prof. Dr.-Ing.")
    assert read_salutation("Divers") == (None, None)  # greeted without Frau or Herr
    assert read_salutation("Frau Müller") is None  # a name, not a title: not guessed
    assert read_salutation("Familie") is None


@pytest.mark.parametrize(
    ("raw", "fault"),
    [
        ("jörg@example.org", AddressFault.NON_ASCII_LOCAL),
        ("=?utf-8?q?x?=@example.org", AddressFault.ENCODED_WORD),
        ("a%b@example.org", AddressFault.SOURCE_ROUTE),
        ("a!b@example.org", AddressFault.SOURCE_ROUTE),
        ("kein-at-zeichen", AddressFault.MALFORMED),
    ],
)
def test_a_refused_address_says_why_as_a_code(raw: str, fault: AddressFault) -> None:
    with pytest.raises(InvalidAddress) as refused:
        parse_address(raw)
    assert refused.value.fault is fault
