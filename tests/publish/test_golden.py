"""Golden files: the rendered sample content, in the readable form of tests/publish/golden_format.py.

HTML is stored one tag per line and messages with every part decoded, so a reviewer reads what changed.
After an intended change, regenerate and review the diff:
    REALLABOR_UPDATE_GOLDEN=1 .venv/bin/pytest tests/publish/test_golden.py && git diff tests/publish/golden
Byte-identical builds are checked separately (building twice gives the same bytes).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from .golden_format import readable

GOLDEN = Path(__file__).parent / "golden"
FILES = [
    "newsletters/2023-3/email.html",
    "newsletters/2023-3/email.txt",
    "newsletters/2023-3/email.uk.txt",
    "newsletters/2024-1/email.txt",
    "events/2024-06-19-abschlussveranstaltung/invitation.html",
    "events/2024-06-19-abschlussveranstaltung/invitation.txt",
    "events/2024-06-19-abschlussveranstaltung/event.ics",
    "events/2023-09-19-kollegialer-austausch/preview.eml",
    "index.html",
    "feed.xml",
]
UPDATE = os.environ.get("REALLABOR_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("name", FILES)
def test_matches_golden(built_site: Path, name: str) -> None:
    actual = readable(name, (built_site / name).read_bytes())
    golden = GOLDEN / (name + ".txt" if name.endswith(".eml") else name)
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual, encoding="utf-8", newline="\n")
    assert golden.exists(), f"no golden file; run REALLABOR_UPDATE_GOLDEN=1 pytest {__file__}"
    expected = golden.read_text(encoding="utf-8")
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(),
            actual.splitlines(),
            "golden/" + name,
            "build/" + name,
            lineterm="",
            n=1,
        )
        pytest.fail("rendered output changed; review and regenerate:\n" + "\n".join(list(diff)[:60]))
