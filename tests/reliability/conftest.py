"""The reliability suite: every test here is marked `reliability` and reports rows of RELIABILITY.md.

A test calls ``row(area, tried, times, lost, detail)`` with its figures; after the test, the rows are
written with the test's outcome (and, on failure, what broke) to a JSON-lines file
(``$REALLABOR_RELIABILITY_LOG``, default test-artifacts/reliability.jsonl).
``python scripts/reliability.py`` runs the suite and writes the table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOG = Path(os.environ.get("REALLABOR_RELIABILITY_LOG", ROOT / "test-artifacts" / "reliability.jsonl"))

Row = Callable[..., None]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.reliability)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[_REPORT] = report


_REPORT = pytest.StashKey[pytest.TestReport]()


@pytest.fixture
def row(request: pytest.FixtureRequest) -> Iterator[Row]:
    """``row(area, tried, times, lost, detail="")``: lost counts what went wrong (0 = nothing)."""
    rows: list[dict[str, Any]] = []

    def record(area: str, tried: str, times: int, lost: int, detail: str = "") -> None:
        rows.append({"area": area, "tried": tried, "times": times, "lost": lost, "detail": detail})

    yield record
    report = request.node.stash.get(_REPORT, None)
    broke = ""
    if report is not None and report.failed:
        broke = str(report.longrepr).strip().splitlines()[-1][:200]
    if not rows:
        rows.append(
            {"area": request.node.name, "tried": "(failed before its figures)", "times": 0, "lost": 0, "detail": ""}
        )
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOG.open("a", encoding="utf-8") as fh:
        for entry in rows:
            entry.update(test=request.node.nodeid, failed=broke)
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
