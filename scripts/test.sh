#!/usr/bin/env bash
# Install (with test tools) and run lint, type checks, the test suite and the reliability suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test
.venv/bin/ruff check reallabor_mail tests bench
.venv/bin/mypy
# The house rules first (one-way imports, one reader of the environment, one exception tree): seconds, not minutes.
.venv/bin/pytest -q tests/test_layers.py
.venv/bin/pytest -q "$@"
# The fault, abuse and deliverability suite (tests/reliability); its table goes to test-artifacts/ so the
# test command leaves `git status` clean (`.venv/bin/python scripts/reliability.py` rewrites RELIABILITY.md).
.venv/bin/python scripts/reliability.py --out test-artifacts/RELIABILITY.md
