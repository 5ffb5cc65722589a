"""Run the reliability suite and write RELIABILITY.md: what was tried, how often, what was lost.

Usage: .venv/bin/python scripts/reliability.py [--out PATH] [extra pytest args]
Exit status is pytest's: a failing row fails the run, and its row in the table names what broke.
The test command (scripts/test.sh) writes the table to test-artifacts/ so that it leaves `git status`
clean; only this command run by hand rewrites RELIABILITY.md.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOG = ROOT / "test-artifacts" / "reliability.jsonl"


def main() -> int:
    args = sys.argv[1:]
    out = ROOT / "RELIABILITY.md"
    if args[:1] == ["--out"]:
        out, args = Path(args[1]).resolve(), args[2:]
    LOG.parent.mkdir(parents=True, exist_ok=True)
    LOG.unlink(missing_ok=True)
    started = time.monotonic()
    env = {**os.environ, "REALLABOR_RELIABILITY_LOG": str(LOG)}
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "reliability", "tests/reliability", *args]
    status = subprocess.call(cmd, cwd=ROOT, env=env)
    minutes = (time.monotonic() - started) / 60
    rows = [json.loads(line) for line in LOG.read_text(encoding="utf-8").splitlines()] if LOG.exists() else []
    lines = [
        "# Reliability figures",
        "",
        "Written by `.venv/bin/python scripts/reliability.py`, which runs `tests/reliability/` (pytest marker",
        "`reliability`; the quick test run skips it, CI runs it). Every row is one kind of fault or abuse: what",
        "was tried, how many times, and how many messages, recipients or outputs were lost or wrong.",
        "",
        f"Machine: {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} cores. "
        f"The run took {minutes:.1f} min; pytest exit status {status}.",
        "",
        "| Area | What was tried | Times | Lost / wrong | Result |",
        "|---|---|---:|---:|---|",
    ]
    for r in rows:
        result = f"FAIL: {r['failed']}" if r["failed"] else ("ok" if r["lost"] == 0 else "FAIL")
        detail = f" ({r['detail']})" if r["detail"] else ""
        cells = [r["area"], f"{r['tried']}{detail}", str(r["times"]), str(r["lost"]), result]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    failing = sum(1 for r in rows if r["failed"] or r["lost"])
    print(f"{out.name}: {len(rows)} rows, {failing} failing")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
