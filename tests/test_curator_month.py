"""The whole month of a curator on a fresh folder, every step as typed and checked as a curator
would: `digest new`, `digest add` of 12 addresses from a real local web server (two featured
last month, one broken), `digest links`, `digest validate`, `digest send --test`, then
`digest send --now` to a real local SMTP server. The edition file only ever gains items."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import write_subscribers
from web_server import Page, WebServer

LAST_MONTH = """\
# Clippings, the March edition.
newsletter: Clippings
edition: March 2026
slug: 2026-03
subject: "Clippings, March 2026"
send_at: 2026-03-31T09:00:00Z
sections:
  - title: Research Papers
    groups:
      - title: Speech & Audio
        items:
          - title: A paper featured in March
            url: {featured_paper}
  - title: Tools
    items:
      - title: A tool featured in March
        url: {featured_tool}
"""


@pytest.fixture
def web() -> Iterator[WebServer]:
    server = WebServer().start()
    try:
        yield server
    finally:
        server.stop()


def test_a_month_from_new_to_send(web, tmp_path: Path, run_digest, smtp_server, send_env):
    content = tmp_path / "content"
    content.mkdir()
    featured_paper = web.html("/paper-march", "<title>March paper</title>")
    featured_tool = web.html("/tool-march/", "<title>March tool</title>")
    (content / "2026-03.yaml").write_text(
        LAST_MONTH.format(featured_paper=featured_paper, featured_tool=featured_tool),
        encoding="utf-8",
    )
    write_subscribers(tmp_path / "subscribers.csv", 3)
    env = {**send_env, **smtp_server.env(), "DIGEST_NOW": "2026-04-15T09:00:00Z"}

    # 1. A new edition from last month's structure.
    made = run_digest("new", "content")
    assert made.exit_code == 0, made.output
    assert made.stdout.splitlines()[:2] == [
        "Wrote content/2026-04.yaml: April 2026, to be sent 2026-04-30 09:00 UTC "
        "(from content/2026-03.yaml).",
        "Sections to fill: Research Papers / Speech & Audio; Tools.",
    ]
    edition = content / "2026-04.yaml"
    fresh = edition.read_text(encoding="utf-8")

    # 2. Twelve addresses: nine new pages, two featured in March (written another way), one gone.
    papers = [
        web.html(
            f"/paper-{n}",
            f'<meta property="og:title" content="Paper {n}">'
            '<meta property="og:site_name" content="Speech Lab">'
            f'<meta property="og:description" content="What paper {n} found. It is good.">',
        )
        for n in range(1, 4)
    ]
    tools = [web.html(f"/tool-{n}", f"<title>Tool {n}</title>") for n in range(1, 6)]
    web.serve(
        "/moved", Page(status=301, location=web.url("/tool-1").replace("127.0.0.1", "localhost"))
    )
    moved = web.url("/moved")
    gone = web.url("/gone")
    first = run_digest(
        "add",
        "content/2026-04.yaml",
        *papers,
        featured_paper + "?utm_source=newsletter",
        "--section",
        "Research Papers",
    )
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines() == [
        *(f"added: Paper {n} ({url})" for n, url in enumerate(papers, 1)),
        "Added 3 items to Research Papers / Speech & Audio in content/2026-04.yaml, 1 skipped.",
    ]
    assert first.stderr.splitlines() == [
        f"skipped: {featured_paper}?utm_source=newsletter: already in 2026-03; "
        "add --again to add it anyway"
    ]
    second = run_digest(
        "add",
        "content/2026-04.yaml",
        *tools,
        moved,
        featured_tool.replace("http://", "https://").rstrip("/"),
        gone,
        "--section",
        "Tools",
    )
    assert second.exit_code == 3  # a page could not be fetched
    assert second.stdout.splitlines() == [
        *(f"added: Tool {n} ({url})" for n, url in enumerate(tools, 1)),
        f"added: Tool 1 ({moved})",
        "Added 6 items to Tools in content/2026-04.yaml, 1 skipped, 1 failed.",
    ]
    assert second.stderr.splitlines() == [
        f"skipped: {featured_tool.replace('http://', 'https://').rstrip('/')}: already in "
        "2026-03; add --again to add it anyway",
        f"failed: {gone}: 404 NOT FOUND",
    ]
    # Only items were added: the two `items: []` became lists, nothing else changed.
    after = edition.read_text(encoding="utf-8")
    removed = [
        line for line in difflib.ndiff(fresh.splitlines(), after.splitlines()) if line[:1] == "-"
    ]
    assert removed == ["-         items: []", "-     items: []"]
    assert after.count("- title: ") == 2 + 1 + 9  # sections, the group, the items

    # 3. Every link is there; the redirect to another host is a note.
    links = run_digest("links", "content/2026-04.yaml", "--timeout", "5", env=env)
    assert links.exit_code == 0, links.output
    assert links.stdout.splitlines()[-1] == "Checked 9 links: all reachable."
    assert "sections[1].items[5].url: note: redirects to another host:" in links.stdout

    # 4. Valid, with the list and the settings.
    valid = run_digest(
        "validate", "content/2026-04.yaml", "--subscribers", "subscribers.csv", env=env
    )
    assert valid.exit_code == 0, valid.output
    assert valid.stdout.splitlines()[0] == (
        "content/2026-04.yaml: OK — Clippings, April 2026: 2 sections, 9 items"
    )

    # 5. A proof, without the list, marked as a test.
    proof = run_digest("send", "content/2026-04.yaml", "--test", "me@example.org", env=env)
    assert proof.exit_code == 0, proof.output
    assert "Proof sent to me@example.org (not recorded)." in proof.stdout
    (message,) = smtp_server.messages
    assert message.rcpt_tos == ("me@example.org",)
    assert message.message["Subject"] == "[TEST] Clippings, April 2026"

    # 6. The real send waits for its day unless told --now.
    early = run_digest(
        "send", "content/2026-04.yaml", "--subscribers", "subscribers.csv", "--yes", env=env
    )
    assert early.exit_code == 1
    assert (
        "error: content/2026-04.yaml is scheduled for 2026-04-30 09:00 UTC (in 15 days); "
        "add --now to send it anyway" in early.stderr
    )
    assert len(smtp_server.messages) == 1
    sent = run_digest(
        "send",
        "content/2026-04.yaml",
        "--subscribers",
        "subscribers.csv",
        "--yes",
        "--now",
        env=env,
    )
    assert sent.exit_code == 0, sent.output
    assert "Sent 3 messages" in sent.stdout
    real = smtp_server.messages[1:]
    assert sorted(m.rcpt_tos[0] for m in real) == [f"reader{n:04d}@example.org" for n in range(3)]
    assert {m.message["Subject"] for m in real} == {"Clippings, April 2026"}
    status = run_digest("status", "content/2026-04.yaml", env=env)
    assert status.stdout.splitlines()[0] == "2026-04: 3 sent, 0 failed, 0 pending (of 3)"
