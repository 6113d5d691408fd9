#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh Debian machine, then run it.
#   - Debian packages: chromium (browser tests), postfix (smtp-sink, and a real MTA the tests
#     start on loopback), spamassassin (local rules only, scores the bundled edition)
#   - a virtualenv in .venv with digest and its test extras
#   - ruff (lint + format check), mypy, the import contract (lint-imports, see
#     docs/ARCHITECTURE.md), the wheel test (scripts/wheel_test.sh), then pytest
# Safe to rerun: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/sbin/smtp-sink ] || need_apt+=(postfix)
[ -x /usr/bin/spamassassin ] || need_apt+=(spamassassin)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "== installing Debian packages: ${need_apt[*]}"
  # postfix asks how to configure itself; we only want its smtp-sink binary.
  echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  python3 -m venv .venv
fi
echo "== installing digest[test] into .venv (log: .venv/install.log)"
if ! .venv/bin/python -m pip install -e ".[test]" >.venv/install.log 2>&1; then
  tail -n 30 .venv/install.log
  exit 1
fi

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .

echo "== mypy"
.venv/bin/mypy digest

echo "== import contract (lint-imports)"
.venv/bin/lint-imports

echo "== wheel test"
bash scripts/wheel_test.sh

echo "== pytest"
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
