#!/usr/bin/env bash
# The package as `pip install` leaves it: build the wheel, install it into a fresh virtualenv
# OUTSIDE the checkout, and check that `digest validate`, `digest build` and `digest publish` of
# a copied edition work there, and that `digest templates export` gives the packaged templates. This proves the
# templates and other package data ship in the wheel (a checkout hides a missing file).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/digest-wheel.XXXXXX")
# setuptools builds in ./build; remove it afterwards unless it was there before.
if [ -e build ]; then keep_build=1; else keep_build=0; fi
trap 'rm -rf "$work"; [ "$keep_build" = 1 ] || rm -rf "$repo/build"' EXIT

python=${PYTHON:-.venv/bin/python}
"$python" -m pip wheel -q --no-deps -w "$work/dist" . >"$work/build.log" 2>&1 \
  || { tail -n 30 "$work/build.log"; exit 1; }
wheel=$(ls "$work"/dist/digest-*.whl)
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "$wheel" >"$work/install.log" 2>&1 \
  || { tail -n 30 "$work/install.log"; exit 1; }

mkdir -p "$work/newsletter/content"
cp content/2026-03.yaml "$work/newsletter/content/"
cp digest.toml "$work/newsletter/"
cd "$work/newsletter"
# The installed package, not this checkout: the working folder is elsewhere and has no digest/.
"$work/venv/bin/python" - "$repo" <<'PY'
import pathlib, sys
import digest
where = pathlib.Path(digest.__file__).resolve()
assert pathlib.Path(sys.argv[1]).resolve() not in where.parents, f"digest imported from {where}"
PY
"$work/venv/bin/digest" validate content/2026-03.yaml
"$work/venv/bin/digest" build content/2026-03.yaml --out out
test -s out/2026-03/email.html && test -s out/2026-03/email.txt
grep -q "Clippings" out/2026-03/email.html
# The site's own templates ship too: publish the web archive there.
"$work/venv/bin/digest" publish content --out site
test -s site/index.html && test -s site/2026-03/index.html && test -s site/feed.xml
if "$work/venv/bin/digest" templates --help >/dev/null 2>&1; then
  "$work/venv/bin/digest" templates export exported
  test -n "$(ls exported)"
fi
echo "wheel test: $(basename "$wheel") installs, validates, builds and publishes outside the checkout"
