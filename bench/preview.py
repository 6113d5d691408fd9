"""Save-to-visible latency of `digest preview` in real headless Chromium (target: < 300 ms).

Usage (from the repository root):

    .venv/bin/python bench/preview.py [EDITION] [--edits N]

Copies EDITION (default: the bundled edition) to a temporary folder, serves it with the preview
server on 127.0.0.1, opens the page in Debian's /usr/bin/chromium, then saves N edits (one
warm-up first, not counted), alternating a new edition label (shown in the email's masthead) and
a new subject (the email's <title>). Each latency runs from just before the file is written to
the moment the page swaps in the frame holding the new text: a MutationObserver in the page
stamps that moment, on the same clock. Prints the median and worst, and the server's own render
time for comparison.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from digest.preview.server import serve_in_thread
from digest.preview.snapshot import PreviewOptions
from digest.settings import Settings

BUNDLED = Path(__file__).resolve().parents[1] / "content" / "2026-03.yaml"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TARGET_MS = 300.0

# Stamps (epoch ms) the moment the shown frame holds window.benchMarker.
WATCH_SWAPS = """() => {
    window.benchMarker = null;
    window.benchSeen = null;
    const box = document.getElementById('frame-box');
    new MutationObserver(() => {
        const frame = document.getElementById('email-frame');
        if (!window.benchMarker || window.benchSeen || frame.classList.contains('loading')) return;
        const doc = frame.contentDocument;
        if (doc && doc.documentElement.textContent.includes(window.benchMarker)) {
            window.benchSeen = performance.timeOrigin + performance.now();
        }
    }).observe(box, {childList: true, subtree: true, attributes: true});
}"""


def _edit(text: str, n: int) -> tuple[str, str]:
    """The edition text with edit number ``n`` applied, and the marker to wait for."""
    marker = f"bench-edit-{n}-{time.monotonic_ns()}"
    if n % 2:
        key, value = "subject", f"Subject under test {marker}"
    else:
        key, value = "edition", f"Edition {marker}"
    edited, count = re.subn(rf"(?m)^{key}:.*$", f'{key}: "{value}"', text, count=1)
    if not count:
        raise SystemExit(f"the edition has no top-level `{key}:` line to edit")
    return edited, marker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("edition", nargs="?", type=Path, default=BUNDLED)
    parser.add_argument("--edits", type=int, default=20)
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is needed (apt install chromium)")

    with tempfile.TemporaryDirectory(prefix="digest-bench-") as folder:
        edition = Path(folder) / args.edition.name
        shutil.copyfile(args.edition, edition)
        original = edition.read_text(encoding="utf-8")
        options = PreviewOptions(edition_path=edition, settings=Settings())
        render_ms: list[float] = []
        rendered_at: list[float] = []  # epoch ms when each render was done and pushed

        def note(outcome: object) -> None:
            ms = getattr(outcome, "render_ms", None)
            if ms is not None:
                render_ms.append(ms)
                rendered_at.append(time.time() * 1000)

        latencies: list[float] = []
        server_side: list[float] = []  # save -> render pushed (watch delay + render)
        page_side: list[float] = []  # render pushed -> new frame shown (SSE, fetch, layout)
        with (
            serve_in_thread(options, on_render=note) as url,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url + "/")
            page.wait_for_function("() => document.body.dataset.version !== undefined")
            page.wait_for_function("() => !document.getElementById('email-frame-next')")
            page.evaluate(WATCH_SWAPS)
            for n in range(args.edits + 1):
                text, marker = _edit(original, n)
                page.evaluate("m => { window.benchSeen = null; window.benchMarker = m; }", marker)
                saved = time.time() * 1000
                edition.write_text(text, encoding="utf-8")
                page.wait_for_function("() => window.benchSeen !== null", timeout=10_000)
                seen = page.evaluate("() => window.benchSeen")
                if n:  # the first edit warms up the watcher and the templates
                    latencies.append(seen - saved)
                    server_side.append(rendered_at[-1] - saved)
                    page_side.append(seen - rendered_at[-1])
                    print(
                        f"edit {n:2d}: {seen - saved:6.1f} ms"
                        f" (server {rendered_at[-1] - saved:5.1f} ms, render {render_ms[-1]:5.1f})",
                        file=sys.stderr,
                    )
                time.sleep(0.15)  # let the editor's "save" settle, as between real saves
            browser.close()

    median = statistics.median(latencies)
    worst = max(latencies)
    verdict = "OK" if worst < TARGET_MS else f"over the {TARGET_MS:.0f} ms target"
    print(f"edition         {args.edition}")
    print(f"edits           {len(latencies)} (after 1 warm-up)")
    print(f"save-to-visible median {median:.0f} ms, worst {worst:.0f} ms ({verdict})")
    print(
        f"of which         save -> render pushed median {statistics.median(server_side):.0f} ms"
        f" (render itself {statistics.median(render_ms[2:] or render_ms):.0f} ms),"
        f" push -> frame shown median {statistics.median(page_side):.0f} ms"
    )


if __name__ == "__main__":
    main()
