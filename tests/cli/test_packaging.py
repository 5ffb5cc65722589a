"""A real, non-editable install: the wheel ``pip install .`` builds, in a fresh venv, run from another folder.

Offline and fast: the wheel is built from a copy of the source tree (so the checkout stays clean), and
installed with ``--no-deps`` into a venv whose only view of the dependencies is a ``.pth`` line naming
the test venv's site-packages. That line adds the folder to ``sys.path`` without running its ``.pth``
files, so the editable install there stays invisible and ``reallabor_mail`` can only come from the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from ..conftest import ROOT, SAMPLE_CONTENT


def sh(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def installed_venv(tmp_path: Path) -> Path:
    """A fresh venv with the wheel of this source tree installed; returns its bin folder."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "reallabor_mail", source / "reallabor_mail", ignore=shutil.ignore_patterns("__pycache__"))
    sh(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path / "wheels", source, cwd=tmp_path)
    [wheel] = (tmp_path / "wheels").glob("reallabor_mail-*.whl")
    venv = tmp_path / "venv"
    sh(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    purelib = sh(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path).strip()
    Path(purelib, "shared-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    sh(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel, cwd=tmp_path)
    return venv / "bin"


@pytest.mark.slow  # a wheel build and a venv: 7 s on a quiet machine, 25 s with the suite running beside it
def test_wheel_in_a_fresh_venv_builds_checks_and_sends_the_sample_content(tmp_path: Path) -> None:
    bin_dir = installed_venv(tmp_path)
    work = tmp_path / "elsewhere"
    shutil.copytree(SAMPLE_CONTENT, work / "content")
    # no locale: the staff language is site.yaml's (German), read from the catalogs the wheel ships
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "REALLABOR_", "LC_", "LANG"))}
    where = sh(bin_dir / "python", "-c", "import reallabor_mail; print(reallabor_mail.__file__)", cwd=work, env=env)
    assert where.startswith(str(tmp_path / "venv")), where

    built = sh(bin_dir / "reallabor-mail", "build", cwd=work, env=env)
    assert "Dateien nach build/ geschrieben" in built
    for output in ("index.html", "feed.xml", "calendar.ics", "newsletters/2023-3/email.html",
                   "newsletters/2023-3/preview.eml", "events/2023-09-19-kollegialer-austausch/event.ics"):  # fmt: skip
        assert (work / "build" / output).is_file(), output
    assert sh(bin_dir / "reallabor-mail", "check", cwd=work, env=env) == "content: in Ordnung\n"

    env["REALLABOR_SECRET"] = "packaging-test-secret-0123456789"
    sh(bin_dir / "reallabor-mail", "send", "content/newsletters/2023-3.md", "--to", "test@example.org",
       "--outbox", "outbox", "--state", "state.sqlite3", "--yes", cwd=work, env=env)  # fmt: skip
    [message] = (work / "outbox" / "new").iterdir()
    assert b"Subject:" in message.read_bytes()
