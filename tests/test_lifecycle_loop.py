"""The whole unsubscribe loop, with real parts: a send over SMTP, a one-click POST (RFC 8058) to
the running `digest serve-unsubscribe` on the link from the subscriber's own List-Unsubscribe
header, and the next edition's send leaving that subscriber out."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from conftest import SETTING_PREFIXES, SMALL_EDITION, CliResult, write_subscribers
from smtp_server import SMTPTestServer

Run = Callable[..., CliResult]


def start_endpoint(env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen[str], str]:
    """`digest serve-unsubscribe --port 0` as a curator starts it; returns it and its base URL."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "digest"), "serve-unsubscribe", "--port", "0"],
        cwd=cwd,
        env=clean | env | {"PYTHONUNBUFFERED": "1", "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    first = server.stdout.readline()
    match = re.match(r"Unsubscribe endpoint: (http://127\.0\.0\.1:\d+)/", first)
    assert match, first
    return server, match.group(1)


def request(method: str, url: str, **kwargs: object) -> httpx.Response:
    """One request, retried while uvicorn is still starting (the socket listens at once)."""
    for _ in range(100):
        try:
            return httpx.request(method, url, timeout=5, **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError(f"the endpoint never answered at {url}")


def test_one_click_unsubscribe_leaves_that_reader_out_of_the_next_send(
    run_digest: Run,
    smtp_server: SMTPTestServer,
    send_env: dict[str, str],
    tmp_path: Path,
    edition_file: Path,
) -> None:
    write_subscribers(tmp_path / "subscribers.csv", 3)
    env = send_env | smtp_server.env()
    march = run_digest(
        "send", str(edition_file), "--subscribers", "subscribers.csv", "--yes", env=env
    )
    assert march.exit_code == 0, march.output
    (letter,) = [m.message for m in smtp_server.messages if "reader0001" in m.rcpt_tos[0]]
    assert letter["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = re.search(r"<(https://[^>]+)>", letter["List-Unsubscribe"])
    assert link, letter["List-Unsubscribe"]
    path = link.group(1).removeprefix("https://example.org")  # behind the curator's proxy

    endpoint, base = start_endpoint(env, tmp_path)
    try:
        # A link scanner's GET shows the confirmation page and changes nothing ...
        assert request("GET", base + path).status_code == 200
        assert "reader0001" not in run_digest("suppressions", "list", env=env).output
        # ... what Gmail sends for its unsubscribe button does (no cookies, no redirect).
        clicked = request("POST", base + path, data={"List-Unsubscribe": "One-Click"})
    finally:
        endpoint.send_signal(signal.SIGINT)
        endpoint.communicate(timeout=10)
    assert clicked.status_code == 200 and not clicked.is_redirect

    april = tmp_path / "content" / "2026-04.yaml"
    april.write_text(
        textwrap.dedent(SMALL_EDITION).replace("slug: 2026-03", "slug: 2026-04"), encoding="utf-8"
    )
    smtp_server.handler.messages.clear()
    sent = run_digest("send", str(april), "--subscribers", "subscribers.csv", "--yes", env=env)

    assert sent.exit_code == 0, sent.output
    assert sorted(smtp_server.recipients()) == ["reader0000@example.org", "reader0002@example.org"]
    assert "1 suppressed" in sent.output
