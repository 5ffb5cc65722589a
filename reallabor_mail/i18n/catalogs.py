"""Keep the gettext catalogs in step with the code: ``python -m reallabor_mail.i18n.catalogs update``.

``update`` extracts every sentence from the Python code and the templates (``babel.cfg``), merges
the result into ``locale/<lang>/LC_MESSAGES/messages.po`` (new sentences arrive untranslated, changed
ones fuzzy), copies the English source into the English catalog and compiles every ``.mo`` file.
``compile`` only compiles. Output is deterministic (no dates, no line numbers), so diffs show
only what changed.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any, cast

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from reallabor_mail.i18n.languages import LANGUAGES, Language
from reallabor_mail.i18n.messages import DOMAIN, LOCALE_DIR

PACKAGE = Path(__file__).resolve().parent.parent
MAPPING = Path(__file__).resolve().parent / "babel.cfg"
TEMPLATE = LOCALE_DIR / f"{DOMAIN}.pot"
KEYWORDS = {**DEFAULT_KEYWORDS, "N_": None}
_FIXED_DATE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)  # so a re-run changes no header line


def po_path(language: Language) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def _fixed(catalog: Catalog) -> Catalog:
    catalog.creation_date = _FIXED_DATE
    catalog.revision_date = _FIXED_DATE
    catalog.project, catalog.version = "reallabor-mail", "1"
    catalog.msgid_bugs_address = ""
    catalog.copyright_holder = ""
    return catalog


def extract() -> Catalog:
    """Every sentence the code and templates mark for translation."""
    with MAPPING.open(encoding="utf-8") as file:
        method_map, options_map = cast(Any, parse_mapping_cfg)(file, str(MAPPING))  # Babel ships no types here
    catalog = _fixed(Catalog(fuzzy=False))
    for filename, lineno, message, comments, context in extract_from_dir(
        PACKAGE, method_map, options_map, keywords=KEYWORDS, comment_tags=("Translators:",), strip_comment_tags=True
    ):
        catalog.add(message, None, [(f"reallabor_mail/{filename}", lineno)], auto_comments=comments, context=context)
    return catalog


def read(language: Language) -> Catalog:
    with po_path(language).open("rb") as file:
        return read_po(file, locale=language)


def write(catalog: Catalog, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as file:
        write_po(file, _fixed(catalog), width=100, sort_output=True, include_lineno=False)


def merge(template: Catalog, language: Language) -> Catalog:
    """The language's catalog brought in step with ``template``; English gets the source text."""
    catalog = read(language) if po_path(language).is_file() else Catalog(locale=language, domain=DOMAIN)
    catalog.update(template)
    catalog.obsolete.clear()
    if language == "en":
        for message in catalog:
            # A new or fuzzy-matched sentence takes the source text; a reviewed English wording stays.
            empty = not message.string or (isinstance(message.string, tuple) and not all(message.string))
            if message.id and (empty or message.fuzzy):
                message.string = message.id
                message.flags.discard("fuzzy")
    return catalog


def compile_catalog(language: Language) -> None:
    with (po_path(language).with_suffix(".mo")).open("wb") as file:
        write_mo(file, read(language), use_fuzzy=False)


def update() -> None:
    template = extract()
    write(template, TEMPLATE)
    for language in LANGUAGES:
        write(merge(template, language), po_path(language))
        compile_catalog(language)


def main(argv: list[str]) -> int:
    if argv == ["update"]:
        update()
    elif argv == ["compile"]:
        for language in LANGUAGES:
            compile_catalog(language)
    else:
        print("usage: python -m reallabor_mail.i18n.catalogs update|compile", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
