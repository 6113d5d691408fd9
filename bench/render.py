"""Time to load, validate and render an edition in-process (target: < 50 ms per render).

Usage (from the repository root):

    .venv/bin/python bench/render.py [EDITION] [--runs N]

Prints the median, min and max of N runs (after one warm-up run that compiles the templates),
and the sizes of the HTML and text as `digest build` writes them. The screenshots for visual
checks: bench/screenshots.sh.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from digest.edition.load import load_edition
from digest.render.email import render_edition
from digest.render.sample import sample_values
from digest.settings import Settings

BUNDLED = Path(__file__).resolve().parents[1] / "content" / "2026-03.yaml"
TARGET_MS = 50.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("edition", nargs="?", type=Path, default=BUNDLED)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    def once() -> float:
        start = time.perf_counter()
        render_edition(load_edition(args.edition))
        return (time.perf_counter() - start) * 1000

    first = once()
    times = [once() for _ in range(max(args.runs, 1))]
    edition = load_edition(args.edition)
    rendered = render_edition(edition)
    values = sample_values(Settings(), edition.slug)
    html_kb = len(rendered.html.fill(values).encode("utf-8")) / 1024
    text_kb = len(rendered.text.fill(values).encode("utf-8")) / 1024

    median = statistics.median(times)
    verdict = "OK" if median < TARGET_MS else f"SLOWER than the {TARGET_MS:.0f} ms target"
    print(f"edition   {args.edition} ({len(edition.all_items())} items)")
    print(
        f"render    median {median:.1f} ms  min {min(times):.1f}  max {max(times):.1f}  "
        f"over {len(times)} runs (load + validate + render)  {verdict}"
    )
    print(f"first     {first:.1f} ms (compiles the templates)")
    print(f"html      {html_kb:.1f} KB")
    print(f"text      {text_kb:.1f} KB")


if __name__ == "__main__":
    main()
