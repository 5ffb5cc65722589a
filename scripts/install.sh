#!/usr/bin/env bash
# Install everything the project needs on a fresh Debian machine: system packages, a venv, the package.
# Usage: scripts/install.sh [test]   ("test" adds the test and benchmark tools)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "test" ]; then
  pkgs=(chromium postfix spamassassin nginx dovecot-imapd)
  missing=()
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
# constraints.txt pins the versions the tests and golden files were made with (reproducible on a fresh machine).
if [ "${1:-}" = "test" ]; then
  .venv/bin/python -m pip install -q -c constraints.txt -e '.[test,bench]'
else
  .venv/bin/python -m pip install -q -c constraints.txt -e .
fi
