#!/bin/sh
# Screenshots of the built email for a visual check in review: light and dark, phone (390 px)
# and desktop (1280 px), full length. Debian's Chromium through Playwright (as in the tests);
# dark mode is prefers-color-scheme: dark, as Apple Mail and most apps apply it. The PNGs are
# build output: they land beside the email (dist/ is not committed).
#
#   digest build content/2026-03.yaml && sh bench/screenshots.sh [dist/2026-03/email.html]
set -eu
email="${1:-dist/2026-03/email.html}"
[ -f "$email" ] || { echo "no $email: run \`digest build content/2026-03.yaml\` first" >&2; exit 1; }
python="${PYTHON:-.venv/bin/python}"
exec "$python" - "$email" <<'PY'
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

email = Path(sys.argv[1]).resolve()
args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=args)
    for scheme in ("light", "dark"):
        for width in (390, 1280):
            page = browser.new_page(viewport={"width": width, "height": 844}, color_scheme=scheme)
            page.goto(email.as_uri())
            shot = email.parent / f"email-{scheme}-{width}.png"
            page.screenshot(path=str(shot), full_page=True)
            first = email.parent / f"email-{scheme}-{width}-first-screen.png"
            page.screenshot(path=str(first))  # what a reader sees before scrolling
            page.close()
            print(shot)
            print(first)
    browser.close()
PY
