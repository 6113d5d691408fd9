#!/bin/sh
# Screenshots of the built email at phone (390 px) and desktop (1280 px) width, for a visual
# check in review. The PNGs are build output: they land in dist/ and are not committed.
#
#   digest build content/2026-03.yaml && sh bench/screenshots.sh [dist/2026-03/email.html]
set -eu
email="${1:-dist/2026-03/email.html}"
out="$(dirname "$email")"
for width in 390 1280; do
    /usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
        --disable-component-update --disable-sync --no-first-run --hide-scrollbars \
        --window-size="$width,3000" --screenshot="$out/email-$width.png" \
        "file://$(realpath "$email")" 2>/dev/null
    echo "$out/email-$width.png"
done
