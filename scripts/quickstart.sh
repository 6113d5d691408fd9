#!/usr/bin/env bash
# Set up digest on a fresh machine and run the whole pipeline on the bundled edition:
# validate it (and the example list), build the HTML + text email, and make a dry-run send that
# writes every message to outbox/ — no server, no account, no secret needed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
echo "== installing digest into .venv (log: .venv/install.log)"
if ! .venv/bin/python -m pip install -e . >.venv/install.log 2>&1; then
  tail -n 30 .venv/install.log
  exit 1
fi

# A throwaway configuration for the dry run: example values only (no real secret anywhere).
# Values already set in the environment win. (Plain ifs: `${X:-...{token}}` would end at the brace.)
[ -n "${DIGEST_FROM:-}" ] || export DIGEST_FROM='Clippings <clippings@example.org>'
[ -n "${DIGEST_SECRET:-}" ] || export DIGEST_SECRET='quickstart-example-secret-not-for-production'
[ -n "${DIGEST_UNSUBSCRIBE_URL:-}" ] || export DIGEST_UNSUBSCRIBE_URL='https://example.org/unsubscribe/{token}'
[ -n "${DIGEST_ARCHIVE_URL:-}" ] || export DIGEST_ARCHIVE_URL='https://example.org/clippings/{slug}/'

run() { printf '\n$ %s\n' "$*"; "$@"; }
# The dry run writes through the outbox backend, so check the list against that one.
run .venv/bin/digest validate content/2026-03.yaml --subscribers subscribers.example.csv --backend outbox
run .venv/bin/digest build content/2026-03.yaml
run .venv/bin/digest send content/2026-03.yaml --subscribers subscribers.example.csv --dry-run
# The web archive of the published editions (the bundled one's send_at has passed).
run .venv/bin/digest publish content --out site

echo
echo "Done. The email is in dist/2026-03/ (email.html, email.txt); the dry run's messages are"
echo "in outbox/2026-03/ (one .eml file per subscriber; nothing was sent)."
echo "The web archive is in site/: open site/index.html in a browser."
echo "Next: see it live while you edit:  .venv/bin/digest preview content/2026-03.yaml"
echo "Then start your own month:         .venv/bin/digest new   (see 'A month with digest' in README.md)"
