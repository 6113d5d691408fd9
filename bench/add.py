"""Time of `digest add` for 50 URLs against a local web server that takes 200 ms per page
(goal: under 3 s, which only fetching concurrently reaches: one after another is 10 s).

Usage (from the repository root):

    .venv/bin/python bench/add.py [--urls N] [--delay SECONDS]

Serves N pages (Open Graph title, site name and description) from a threaded server on
127.0.0.1, writes a one-section edition to a temporary folder and runs the real command line
(`.venv/bin/digest add EDITION URL...`, start-up included). Prints the wall time and checks that
every page became an item.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

DIGEST = Path(sys.executable).with_name("digest")
EDITION = """\
newsletter: Bench
edition: April 2026
slug: 2026-04
subject: Bench
sections:
  - title: Links
    items:
      - title: First
        url: https://example.org/first
"""


def serve(delay: float) -> ThreadingHTTPServer:
    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(delay)
            number = self.path.strip("/")
            body = (
                f'<html><head><meta property="og:title" content="Page {number}">'
                '<meta property="og:site_name" content="Bench site">'
                f'<meta property="og:description" content="What page {number} is about. '
                'A second sentence."></head><body>text</body></html>'
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--urls", type=int, default=50)
    parser.add_argument("--delay", type=float, default=0.2)
    args = parser.parse_args()
    server = serve(args.delay)
    port = server.server_address[1]
    urls = [f"http://127.0.0.1:{port}/{n}" for n in range(args.urls)]
    with tempfile.TemporaryDirectory() as folder:
        edition = Path(folder) / "2026-04.yaml"
        edition.write_text(EDITION, encoding="utf-8")
        started = time.perf_counter()
        done = subprocess.run(
            [str(DIGEST), "add", str(edition), *urls], capture_output=True, text=True, check=False
        )
        elapsed = time.perf_counter() - started
        items = yaml.safe_load(edition.read_text(encoding="utf-8"))["sections"][0]["items"]
    server.shutdown()
    if done.returncode != 0 or len(items) != args.urls + 1:
        print(done.stdout, done.stderr, sep="\n")
        print(f"FAILED: exit {done.returncode}, {len(items) - 1} of {args.urls} items added")
        return 1
    serial = args.urls * args.delay
    print(
        f"digest add of {args.urls} URLs ({args.delay * 1000:.0f} ms per page): "
        f"{elapsed:.2f} s wall, start-up included (one after another: {serial:.1f} s; goal < 3 s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
