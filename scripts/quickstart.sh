#!/usr/bin/env bash
# Set up digest on a fresh machine and run the whole pipeline on the bundled edition:
# validate it (and the example list), build the HTML + text email, and make a dry-run send that
# writes every message to outbox/ — no server, no account, no secret needed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e .

# A throwaway configuration for the dry run: example values only (no real secret anywhere).
export DIGEST_FROM="${DIGEST_FROM:-Clippings <clippings@example.org>}"
export DIGEST_SECRET="${DIGEST_SECRET:-quickstart-example-secret-not-for-production}"
export DIGEST_UNSUBSCRIBE_URL="${DIGEST_UNSUBSCRIBE_URL:-https://example.org/unsubscribe/{token}}"
export DIGEST_ARCHIVE_URL="${DIGEST_ARCHIVE_URL:-https://example.org/clippings/{slug}/}"

set -x
.venv/bin/digest validate content/2026-03.yaml --subscribers subscribers.example.csv
.venv/bin/digest build content/2026-03.yaml
.venv/bin/digest send content/2026-03.yaml --subscribers subscribers.example.csv --dry-run
