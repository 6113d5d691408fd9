"""Time to publish 100 editions with `digest publish` (goal: under 5 s) and the site's size.

Usage (from the repository root):

    .venv/bin/python bench/publish.py [--editions N] [--runs R]

Writes N editions (copies of the bundled one, one a month back from March 2026, each with its
own slug and send_at in the past) and the bundled digest.toml into a temporary folder, then
publishes them R times through the real use-case (load, validate, render every page, feed,
sitemap, swap into place). Prints the median and worst wall time, the per-edition cost, the
number of files and the site's size on disk (and the feed's, which holds the newest 20 in full).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from digest.site.publish import publish_site

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "content" / "2026-03.yaml"


def month(index: int) -> tuple[int, int]:
    """March 2026 minus ``index`` months, as (year, month)."""
    total = 2026 * 12 + 2 - index
    return total // 12, total % 12 + 1


def write_content(root: Path, count: int) -> Path:
    content = root / "content"
    content.mkdir()
    shutil.copy(REPO / "digest.toml", root / "digest.toml")
    source = BUNDLED.read_text(encoding="utf-8")
    for index in range(count):
        year, number = month(index)
        slug = f"{year}-{number:02d}"
        text = re.sub(r"(?m)^slug: .*$", f"slug: {slug}", source)
        text = re.sub(r"(?m)^send_at: .*$", f"send_at: {slug}-28T09:00:00Z", text)
        text = re.sub(r"(?m)^edition: .*$", f"edition: Edition {slug}", text)
        (content / f"{slug}.yaml").write_text(text, encoding="utf-8")
    return content


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--editions", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="digest-bench-publish-") as folder:
        root = Path(folder)
        content = write_content(root, args.editions)
        out = root / "site"
        now = datetime(2026, 4, 1, tzinfo=UTC)
        times: list[float] = []
        for _ in range(args.runs):
            started = time.perf_counter()
            site = publish_site(content, out, now=now, state_dir=root / ".digest")
            times.append(time.perf_counter() - started)
        files = [path for path in out.rglob("*") if path.is_file()]
        size = sum(path.stat().st_size for path in files)
        feed = (out / "feed.xml").stat().st_size

    assert len(site.published) == args.editions, site.published
    median = statistics.median(times)
    print(
        f"publish {args.editions} editions: median {median:.2f} s, worst {max(times):.2f} s "
        f"({args.runs} runs; {median / args.editions * 1000:.1f} ms an edition); goal < 5 s"
    )
    print(
        f"site: {len(files)} files, {size / 1024 / 1024:.1f} MB "
        f"({size / 1024 / len(files):.0f} KB a file on average); feed.xml {feed / 1024:.0f} KB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
