"""Staff read the command line in their language: REALLABOR_LANG, else the locale, else site.yaml, else German."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from reallabor_mail.cli.main import main
from reallabor_mail.i18n.messages import staff_language
from reallabor_mail.settings import Settings

from ..conftest import ROOT

NO_LANGUAGE = {"REALLABOR_LANG": None, "LC_ALL": None, "LC_MESSAGES": None, "LANG": None, "LANGUAGE": None}


@pytest.mark.parametrize(
    ("environ", "site", "expected"),
    [
        ({"REALLABOR_LANG": "uk", "LANG": "en_US.UTF-8"}, "de", "uk"),
        ({"LANG": "de_DE.UTF-8"}, "en", "de"),
        ({"LANG": "en_US.UTF-8"}, "de", "en"),
        ({"LC_MESSAGES": "uk_UA", "LANG": "de_DE.UTF-8"}, None, "uk"),
        ({"LC_ALL": "C.UTF-8", "LANG": "uk_UA.UTF-8"}, "en", "en"),  # LC_ALL=C: no language, so site.yaml
        ({"LANG": "fr_FR.UTF-8"}, "uk", "uk"),
        ({}, None, "de"),
    ],
)
def test_staff_language_order(environ: dict[str, str], site: str | None, expected: str) -> None:
    assert staff_language(Settings.from_environ(environ), site) == expected  # type: ignore[arg-type]


def broken(content: Path) -> int:
    """Break two files; the line of the unknown key in the event comes back."""
    event = content / "events" / "2023-09-19-kollegialer-austausch.md"
    event.write_text(event.read_text(encoding="utf-8").replace("lists:", "ort: Dortmund\nlists:"), encoding="utf-8")
    newsletter = content / "newsletters" / "2023-3.md"
    newsletter.write_text(newsletter.read_text(encoding="utf-8").replace("---\n", "", 1), encoding="utf-8")
    return event.read_text(encoding="utf-8").splitlines().index("ort: Dortmund") + 1


def check(content: Path, **environ: str | None) -> subprocess.CompletedProcess[str]:
    """``reallabor-mail check`` as a separate process with exactly this language environment."""
    env = {key: value for key, value in os.environ.items() if key not in NO_LANGUAGE}
    env.update({key: value for key, value in environ.items() if value is not None})
    env["PYTHONPATH"] = str(ROOT)
    command = [sys.executable, "-c", "from reallabor_mail.cli.main import run; run()", "check", "--content", "content"]
    return subprocess.run(command, cwd=content.parent, env=env, capture_output=True, text=True, timeout=120)


EVENT = "content/events/2023-09-19-kollegialer-austausch.md"


@pytest.mark.parametrize("environ", [{"LANG": "de_DE.UTF-8"}, {}, {"LANG": "C.UTF-8"}], ids=["de_DE", "none", "C"])
def test_check_speaks_german_in_a_german_office(content_copy: Path, environ: dict[str, str]) -> None:
    number = broken(content_copy)
    result = check(content_copy, **environ)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert any(line.startswith(f"{EVENT}:{number}: unbekannter Schlüssel „ort“; erlaubt sind:")
               and line.endswith("[RLM107]") for line in lines), lines  # fmt: skip
    assert "content/newsletters/2023-3.md:1: die Datei muss mit einem Vorspann (Front Matter) beginnen" in result.stderr
    assert lines[-1] == "2 Probleme; es wurde nichts geschrieben oder versendet."


def test_check_speaks_english_under_an_english_locale(content_copy: Path) -> None:
    line = broken(content_copy)
    result = check(content_copy, LANG="en_US.UTF-8")
    assert f"{EVENT}:{line}: unknown key 'ort'; allowed keys are:" in result.stderr
    assert "content/newsletters/2023-3.md:1: the file must start with front matter" in result.stderr
    assert result.stderr.splitlines()[-1] == "2 problems; nothing was written or sent."


def test_reallabor_lang_wins_over_the_locale(content_copy: Path) -> None:
    line = broken(content_copy)
    result = check(content_copy, REALLABOR_LANG="uk", LANG="de_DE.UTF-8")
    assert f"{EVENT}:{line}: невідомий ключ «ort»; дозволені ключі:" in result.stderr
    assert result.stderr.splitlines()[-1] == "2 проблеми; нічого не записано й не надіслано."


def test_site_yaml_language_decides_without_a_locale(content_copy: Path) -> None:
    site = content_copy / "site.yaml"
    site.write_text(site.read_text(encoding="utf-8").replace('language: "de"', 'language: "en"'), encoding="utf-8")
    result = check(content_copy)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("content: OK")


def test_help_is_german_without_a_locale() -> None:
    result = CliRunner().invoke(main, ["check", "--help"], env=NO_LANGUAGE)
    assert result.exit_code == 0
    assert result.output.startswith("Aufruf: ")
    assert "Prüft Inhalte und Vorlagen, ohne etwas zu schreiben." in result.output
    assert "Optionen:" in result.output and "Zeigt diese Hilfe an und beendet das Programm." in result.output


def test_help_is_english_under_an_english_locale() -> None:
    result = CliRunner().invoke(main, ["--help"], env={**NO_LANGUAGE, "LANG": "en_US.UTF-8"})
    assert result.output.startswith("Usage: ")
    assert "Validate the content and templates without writing anything." in result.output
