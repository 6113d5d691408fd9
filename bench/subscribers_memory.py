"""Peak memory and time of reading a million-row subscribers CSV (target: peak RSS < 150 MB).

    .venv/bin/python bench/subscribers_memory.py [--rows 1000000]

Writes the CSV into a temporary folder (realistic rows: accented names, a few hundred domains,
1 % unsubscribed or bounced, 1 % duplicates in another case, a few invalid rows), then reads it
in a fresh child process, so the figure is the reader's alone, and prints that process's peak
resident memory (``resource.getrusage``) and the time of the full read.
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIRST = ["Ada", "José", "Zoë", "Grace", "Li", "Nadia", "François", "Émilie", "Alan", "Björn"]
LAST = ["Lovelace", "Martínez", "Ünal", "Hopper", "Wei", "O'Brien", "Dupont", "Müller"]
CITIES = ["London", "Sevilla", "Zürich", "Arlington", "Shanghai", "Dublin", "Lyon", "Köln"]


def write_csv(path: Path, rows: int) -> None:
    rng = random.Random(2026)
    domains = [f"mail{n}.example.org" for n in range(300)] + ["example.com", "example.net"]
    previous = ""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("email,name,status,city,plan\n")
        for n in range(rows):
            roll = rng.random()
            address = f"reader{n}@{rng.choice(domains)}"
            status = ""
            if roll < 0.005:
                status = "unsubscribed"
            elif roll < 0.01:
                status = "bounced"
            elif roll < 0.02 and previous:
                address = previous.upper()  # a duplicate in another case
            elif roll < 0.0201:
                address = f"broken{n}@"  # an invalid row
            previous = address
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            if "'" in name or rng.random() < 0.1:
                name = f'"{name}, Jr."'
            out.write(f"{address},{name},{status},{rng.choice(CITIES)},free\n")


def read_only(path: Path) -> None:
    """The measured part: one full read, as `digest validate --subscribers` does."""
    from digest.audience.subscribers import SubscriberReport, read_subscribers

    started = time.perf_counter()
    report = SubscriberReport(path=path.name)
    count = sum(1 for _ in read_subscribers(path, report))
    elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(report.summary_lines()[0])
    print(f"read {report.rows:,} rows ({count:,} to send) in {elapsed:.1f} s")
    print(f"peak RSS of the reading process: {peak_mb:.0f} MB (target < 150 MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--read", type=Path, help=argparse.SUPPRESS)  # the child's mode
    args = parser.parse_args()
    if args.read is not None:
        read_only(args.read)
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "subscribers.csv"
        started = time.perf_counter()
        write_csv(path, args.rows)
        size_mb = path.stat().st_size / 1e6
        print(
            f"wrote {args.rows:,} rows ({size_mb:.0f} MB) in {time.perf_counter() - started:.1f} s"
        )
        subprocess.run([sys.executable, __file__, "--read", str(path)], check=True)


if __name__ == "__main__":
    main()
