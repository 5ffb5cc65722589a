#!/usr/bin/env bash
# Install everything the project needs on a fresh Debian machine: system packages, a venv, the package.
# Usage: scripts/install.sh [test]   ("test" adds the test and benchmark tools)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "test" ]; then
  # rspamd: the second spam filter; python3-gi + gir1.2-ical-3.0: libical (Evolution's library) for the
  # system Python; nodejs + npm: Mozilla's ical.js (Thunderbird's parser) for tests/interop;
  # dovecot-imapd: the IMAP server tests/mailbox starts on a loopback port (never the system service);
  # postgresql: the throw-away cluster tests/pg.py starts in a temp folder (never the system service).
  pkgs=(chromium postfix spamassassin nginx rspamd python3-gi gir1.2-ical-3.0 dovecot-imapd postgresql)
  missing=()
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  # node may come from another source (NodeSource bundles npm): install Debian's only if the command is missing
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # ical.js at the version pinned in tests/interop/package-lock.json, into tests/interop/node_modules
  (cd tests/interop && npm ci --no-audit --no-fund --silent)
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
# constraints.txt pins the versions the tests and golden files were made with (reproducible on a fresh machine).
if [ "${1:-}" = "test" ]; then
  .venv/bin/python -m pip install -q -c constraints.txt -e '.[test,bench]'
else
  .venv/bin/python -m pip install -q -c constraints.txt -e .
fi
