"""Staff read ``reallabor-mail recipients …`` in their language: the problems of an import row by row with
their codes, the summary with its plural forms, ``--help``, and the question before an erasure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from reallabor_mail.cli.main import main
from reallabor_mail.errors import Code
from reallabor_mail.recipients.person import clean_person
from tests.conftest import ROOT
from tests.test_recipients import GERMAN, SECRET, csv_bytes

LANGUAGE_VARIABLES = ("REALLABOR_LANG", "LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE")
BAD_ROWS = [
    ["", "Frau", "", "Anna", "Müller", "", ""],
    ["b@example.org", "Madame", "", "Berta", "", "", ""],
    ["c@example.org", "", "", "Carl\nZwei", "", "", "fr"],
    ["d@example.org", "", "", "Dora", "=1+1", "", ""],
]


def staff(tmp_path: Path, lang: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``reallabor-mail`` as a separate process whose only language setting is ``LANG``."""
    env = {key: value for key, value in os.environ.items() if key not in LANGUAGE_VARIABLES}
    env.update(LANG=lang, PYTHONPATH=str(ROOT), REALLABOR_SECRET=SECRET.decode(), USER="becker",
               REALLABOR_STATE=str(tmp_path / "state.sqlite3"))  # fmt: skip
    command = [sys.executable, "-c", "from reallabor_mail.cli.main import run; run()", *args]
    return subprocess.run(command, cwd=tmp_path, env=env, input=stdin, capture_output=True, text=True, timeout=120)


def test_an_import_with_bad_rows_is_refused_in_german_in_a_german_office(tmp_path: Path) -> None:
    (tmp_path / "verteiler.csv").write_bytes(csv_bytes(GERMAN, BAD_ROWS))
    refused = staff(tmp_path, "de_DE.UTF-8", "recipients", "import", "verteiler.csv", "--list", "newsletter")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.splitlines() == [
        "verteiler.csv: 4 ungültige Zeilen; nichts wurde importiert (korrigieren Sie sie oder importieren Sie mit "
        "--skip-invalid nur die gültigen Zeilen):",
        "verteiler.csv: Zeile 2: Die E-Mail-Adresse fehlt. [RLM401]",
        "verteiler.csv: Zeile 3: Die Anrede 'Madame' ist weder Frau noch Herr (auch mit Titel wie „Frau Dr.“) noch "
        "Divers; lassen Sie sie sonst leer. [RLM406]",
        "verteiler.csv: Zeile 4: Vorname enthält einen Zeilenumbruch; bitte ohne ihn eingeben. [RLM404]",
        "verteiler.csv: Zeile 4: Die Sprache 'fr' ist nicht de, uk oder en. [RLM407]",
        "verteiler.csv: Zeile 5: Nachname '=1+1' beginnt mit '=' wie eine Tabellenformel; bitte ohne dieses Zeichen "
        "am Anfang eingeben. [RLM405]",
    ]


def test_the_same_import_speaks_english_under_an_english_locale(tmp_path: Path) -> None:
    (tmp_path / "verteiler.csv").write_bytes(csv_bytes(GERMAN, BAD_ROWS))
    refused = staff(tmp_path, "en_US.UTF-8", "recipients", "import", "verteiler.csv", "--list", "newsletter")
    assert refused.returncode == 1
    lines = refused.stderr.splitlines()
    assert lines[0] == (
        "verteiler.csv: 4 invalid rows; nothing was imported (correct them, or use --skip-invalid to import the "
        "valid rows):"
    )
    assert lines[1] == "verteiler.csv: row 2: the email address is missing [RLM401]"
    assert "verteiler.csv: row 4: first name contains a line break; type it without [RLM404]" in lines


def test_the_summary_has_german_plural_forms(tmp_path: Path) -> None:
    (tmp_path / "verteiler.csv").write_bytes(csv_bytes(GERMAN, [["a@example.org", "", "", "", "", "", ""],
                                                                *BAD_ROWS[:1]]))  # fmt: skip
    done = staff(tmp_path, "de_DE.UTF-8", "recipients", "import", "verteiler.csv", "--list", "newsletter",
                 "--skip-invalid")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "verteiler.csv: 1 hinzugefügt, 0 schon auf der Liste „newsletter“; 1 ungültige Zeile übersprungen\n"
    )
    listed = staff(tmp_path, "de_DE.UTF-8", "recipients", "list")
    assert listed.stderr == "1 Empfänger\n"
    purged = staff(tmp_path, "de_DE.UTF-8", "recipients", "purge")
    assert purged.stdout == "0 unbestätigte Anmeldungen gelöscht\n"


def test_an_erasure_asks_in_german_and_takes_a_german_yes(tmp_path: Path) -> None:
    (tmp_path / "verteiler.csv").write_bytes(csv_bytes(GERMAN, [["a@example.org", "", "", "", "", "", ""]]))
    imported = staff(tmp_path, "de_DE.UTF-8", "recipients", "import", "verteiler.csv", "--list", "newsletter")
    assert imported.returncode == 0, imported.stderr
    kept = staff(tmp_path, "de_DE.UTF-8", "recipients", "delete", "a@example.org", stdin="n\n")
    assert kept.stdout.startswith(
        "Wirklich alles löschen, was über a@example.org gespeichert ist? Das lässt sich nicht rückgängig machen. [j/N]"
    )
    assert (kept.returncode, kept.stderr) == (1, "Abgebrochen.\n")
    erased = staff(tmp_path, "de_DE.UTF-8", "recipients", "delete", "a@example.org", stdin="j\n")
    assert erased.returncode == 0, erased.stderr
    assert erased.stdout.endswith("a@example.org: gelöscht; die Adresse steht auf der Sperrliste\n")


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("de", ["Eine Excel-CSV-Datei", "Die Liste, auf die alle kommen", "[Pflichtangabe]"]),
        ("uk", ["Імпортувати CSV-файл з Excel", "Список, до якого", "[обов’язково]"]),
        ("en", ["Import an Excel CSV", "The list to put everyone on", "[required]"]),
    ],
)
def test_help_of_the_import_is_in_the_staff_language(language: str, expected: list[str]) -> None:
    shown = CliRunner().invoke(main, ["recipients", "import", "--help"], env={"REALLABOR_LANG": language})
    assert shown.exit_code == 0, shown.output
    assert all(text in shown.output for text in expected), shown.output


def test_field_problems_carry_stable_codes() -> None:
    _, problems = clean_person({"email": "", "first_name": "x" * 101, "salutation": "Madame", "language": "fr"})
    assert [(p.field, p.code) for p in problems] == [
        ("first_name", Code.FIELD_TOO_LONG),
        ("email", Code.FIELD_REQUIRED),
        ("salutation", Code.FIELD_SALUTATION),
        ("language", Code.FIELD_LANGUAGE),
    ]
