"""The command line end to end, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import ROOT, SAMPLE_CONTENT


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "reallabor-mail"
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_build_in_project_folder(tmp_path: Path) -> None:
    out = tmp_path / "site"
    result = run("build", "--out", str(out), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "files written" in result.stdout
    assert (out / "newsletters" / "2023-3" / "email.html").is_file()


def test_check_reports_every_problem_with_path_and_line(content_copy: Path) -> None:
    event = content_copy / "events" / "2023-09-19-kollegialer-austausch.md"
    event.write_text(event.read_text(encoding="utf-8").replace("format: online", "format: webinar"))
    site = content_copy / "site.yaml"
    site.write_text(site.read_text(encoding="utf-8") + "farbe: blau\n")
    result = run("check", "--content", "content", cwd=content_copy.parent)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert any(
        line.startswith("content/events/2023-09-19-kollegialer-austausch.md:") and "'format'" in line for line in lines
    )
    assert any(line.startswith("content/site.yaml:") and "unknown key 'farbe'" in line for line in lines)
    assert "Traceback" not in result.stderr
    assert "nothing was written" in result.stderr


def test_check_passes_on_sample_content() -> None:
    result = run("check", "--content", str(SAMPLE_CONTENT), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_missing_content_folder(tmp_path: Path) -> None:
    result = run("check", "--content", "nirgends", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("nirgends: content folder not found")
