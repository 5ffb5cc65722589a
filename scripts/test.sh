#!/usr/bin/env bash
# Install (with test tools) and run the whole test suite plus lint and type checks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test
.venv/bin/ruff check reallabor_mail tests bench
.venv/bin/mypy
.venv/bin/pytest -q "$@"
