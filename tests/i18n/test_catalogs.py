"""Every sentence the code and templates show is in every catalog, translated, and compiled as shipped."""

from __future__ import annotations

import io
import re

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import write_mo

from reallabor_mail.i18n import catalogs
from reallabor_mail.i18n.languages import LANGUAGES, Language

_PLACEHOLDER = re.compile(r"\{(\w+)(?:![rsa])?\}")


@pytest.fixture(scope="module")
def extracted() -> Catalog:
    return catalogs.extract()


def _texts(value: str | tuple[str, ...] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return value if isinstance(value, tuple) else (value,)


def _key(message: Message) -> tuple[str | None, str]:
    return message.context, _texts(message.id)[0]


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_sentence_is_translated(extracted: Catalog, language: Language) -> None:
    catalog = {_key(m): m for m in catalogs.read(language) if m.id}
    missing = [_key(m) for m in extracted if m.id and _key(m) not in catalog]
    assert not missing, f"{language}: not in the catalog; run python -m reallabor_mail.i18n.catalogs update"
    untranslated = [
        _key(m) for m in extracted if m.id and (not all(_texts(catalog[_key(m)].string)) or catalog[_key(m)].fuzzy)
    ]
    assert not untranslated, f"{language}: untranslated or fuzzy in {catalogs.po_path(language)}: {untranslated}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_the_placeholders(extracted: Catalog, language: Language) -> None:
    catalog = {_key(m): m for m in catalogs.read(language) if m.id}
    wrong = []
    for message in extracted:
        if not message.id:
            continue
        wanted = set(_PLACEHOLDER.findall(" ".join(_texts(message.id))))
        for text in _texts(catalog[_key(message)].string):
            if set(_PLACEHOLDER.findall(text)) - wanted or set(_PLACEHOLDER.findall(text)) < wanted - {"count"}:
                wrong.append((_key(message), text))
    assert not wrong


@pytest.mark.parametrize("language", LANGUAGES)
def test_shipped_mo_files_are_compiled_from_the_po_files(language: Language) -> None:
    compiled = io.BytesIO()
    write_mo(compiled, catalogs.read(language), use_fuzzy=False)
    shipped = catalogs.po_path(language).with_suffix(".mo").read_bytes()
    assert shipped == compiled.getvalue(), "run python -m reallabor_mail.i18n.catalogs compile"


def test_ukrainian_has_its_three_plural_forms() -> None:
    from reallabor_mail.i18n.messages import translations

    uk = translations("uk")
    singular, plural = "{count} problem; nothing was written or sent.", "{count} problems; nothing was written or sent."
    forms = [uk.ngettext(singular, plural, n).format(count=n) for n in (1, 3, 5, 21)]
    assert forms == [
        "1 проблема; нічого не записано й не надіслано.",
        "3 проблеми; нічого не записано й не надіслано.",
        "5 проблем; нічого не записано й не надіслано.",
        "21 проблема; нічого не записано й не надіслано.",
    ]
