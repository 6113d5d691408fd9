"""`digest links` against a real local web server: broken links at their PATH:LINE:COL, HEAD
refused then GET, timeouts, TLS and connection errors, redirects to another host, 2 requests
per host at most, and an hour's cache in the state folder that the preview reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from web_server import Page, WebServer

from digest.curate.links import last_run


@pytest.fixture
def web() -> Iterator[WebServer]:
    server = WebServer().start()
    try:
        yield server
    finally:
        server.stop()


def position(text: str, needle: str) -> str:
    """``LINE:COL`` of the first ``needle`` in ``text`` (1-based)."""
    offset = text.index(needle)
    line = text.count("\n", 0, offset) + 1
    return f"{line}:{offset - text.rfind(chr(10), 0, offset)}"


def write_edition(folder: Path, web: WebServer, *, closed_port: int) -> tuple[Path, str]:
    ok = web.html("/ok", "<title>OK</title>")
    web.serve("/gone", Page(b"", status=404))
    web.serve("/error", Page(b"", status=500))
    web.serve("/no-head", Page(b"<title>x</title>", head_status=405))
    web.serve("/slow", Page(b"", delay=2.0))
    elsewhere = web.url("/ok").replace("127.0.0.1", "localhost")
    web.serve("/moved", Page(status=301, location=elsewhere))
    tls = web.url("/ok").replace("http://", "https://")
    refused = f"http://127.0.0.1:{closed_port}/nothing"
    text = f"""\
newsletter: Clippings
edition: April 2026
slug: 2026-04
subject: Links
intro: >-
  An intro that links to [a missing page]({web.url("/gone")}) in
  its second line.
sections:
  - title: Links
    items:
      - title: Fine
        url: {ok}
      - title: Gone
        url: {web.url("/gone")}
        summary: |
          First line.
          A [server error]({web.url("/error")}) here.
      - title: HEAD refused
        url: {web.url("/no-head")}
      - title: Slow
        url: {web.url("/slow")}
      - title: Moved away
        url: {web.url("/moved")}
      - title: Not TLS
        url: {tls}
      - title: Nobody there
        url: {refused}
"""
    path = folder / "2026-04.yaml"
    path.write_text(text, encoding="utf-8")
    return path, text


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_each_broken_link_at_its_place_with_its_status(web, tmp_path, run_digest):
    port = closed_port()
    _, text = write_edition(tmp_path, web, closed_port=port)
    env = {"DIGEST_STATE_DIR": str(tmp_path / ".digest")}
    result = run_digest("links", "2026-04.yaml", "--timeout", "0.5", env=env)
    assert result.exit_code == 1, result.output
    errors = result.stderr.splitlines()
    gone, error = web.url("/gone"), web.url("/error")
    assert f"2026-04.yaml:{position(text, gone)}: intro: 404 NOT FOUND: {gone}" in errors
    assert (
        f"2026-04.yaml:{_after(text, 'url: ' + gone)}: sections[0].items[1].url: "
        f"404 NOT FOUND: {gone}" in errors
    )
    assert (
        f"2026-04.yaml:{position(text, error)}: sections[0].items[1].summary: "
        f"500 INTERNAL SERVER ERROR: {error}" in errors
    )
    slow = web.url("/slow")
    assert (
        f"2026-04.yaml:{_after(text, 'url: ' + slow)}: sections[0].items[3].url: "
        f"timeout after 0.5 s: {slow}" in errors
    )
    tls_line = next(line for line in errors if "items[5]" in line)
    assert ": TLS error: " in tls_line
    refused_line = next(line for line in errors if "items[6]" in line)
    assert refused_line.endswith(f"connection refused: http://127.0.0.1:{port}/nothing")
    assert errors[-1] == "Checked 8 links: 5 broken."
    # HEAD refused with 405: asked again with GET, which answered 200.
    methods = [seen.method for seen in web.requests if seen.path == "/no-head"]
    assert methods == ["HEAD", "GET"]
    assert not any("items[2]" in line for line in errors)
    # A redirect to another host is a note, not a failure.
    assert (
        f"2026-04.yaml:{_after(text, 'url: ' + web.url('/moved'))}: sections[0].items[4].url: "
        f"note: redirects to another host: {web.url('/ok').replace('127.0.0.1', 'localhost')}"
        in result.stdout.splitlines()
    )


def _after(text: str, prefix: str) -> str:
    """The position of the value that follows ``prefix`` (``url: `` + the URL)."""
    line, col = position(text, prefix).split(":")
    return f"{line}:{int(col) + len('url: ')}"


def test_answers_are_kept_an_hour_and_the_preview_reads_the_last_run(web, tmp_path, run_digest):
    state = tmp_path / ".digest"
    path, _ = write_edition(tmp_path, web, closed_port=closed_port())
    env = {"DIGEST_STATE_DIR": str(state)}
    first = run_digest("links", str(path), "--timeout", "0.5", env=env)
    asked = len(web.requests)
    second = run_digest("links", str(path), "--timeout", "0.5", env=env)
    assert len(web.requests) == asked  # nothing asked again within the hour
    assert second.exit_code == first.exit_code == 1
    assert second.stderr.splitlines()[-1] == (
        "Checked 8 links (8 from the last hour's answers): 5 broken."
    )
    assert (state / "links.json").stat().st_mode & 0o777 == 0o600
    assert state.stat().st_mode & 0o777 == 0o700
    run = last_run(state, "2026-04")
    assert run is not None
    assert run.links == 8
    assert {entry["url"] for entry in run.broken} >= {web.url("/gone"), web.url("/error")}
    assert run.notes[0]["note"].startswith("redirects to another host")


def test_two_at_most_per_host_and_n_at_once(web, tmp_path, run_digest):
    urls = [web.serve(f"/p{n}", Page(b"", delay=0.3)) for n in range(6)]
    items = "".join(f"      - title: P{n}\n        url: {url}\n" for n, url in enumerate(urls))
    path = tmp_path / "2026-04.yaml"
    path.write_text(
        "newsletter: C\nedition: E\nsubject: S\nsections:\n  - title: T\n    items:\n" + items,
        encoding="utf-8",
    )
    env = {"DIGEST_STATE_DIR": str(tmp_path / ".digest")}
    result = run_digest("links", str(path), "--concurrency", "8", env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Checked 6 links: all reachable."
    assert web.most_at_once == 2
    assert [seen.method for seen in web.requests] == ["HEAD"] * 6


def test_an_invalid_edition_is_reported_not_checked(web, tmp_path, run_digest):
    path = tmp_path / "2026-04.yaml"
    path.write_text("edition: E\n", encoding="utf-8")
    result = run_digest("links", str(path))
    assert result.exit_code == 1
    assert "missing required key 'subject'" in result.stderr
    assert web.requests == []


def test_a_name_that_does_not_resolve_is_a_dns_error() -> None:
    # No DNS server is reachable from the tests; the error as httpx raises it for a name that
    # does not resolve (httpcore wraps socket.gaierror).
    import socket

    import httpx

    from digest.curate.fetching import FetchLimits, describe_error

    try:
        try:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        except socket.gaierror as cause:
            raise httpx.ConnectError("[Errno -2] Name or service not known") from cause
    except httpx.ConnectError as exc:
        assert describe_error(exc, FetchLimits()) == "DNS error: no such host"


def test_the_preview_checks_panel_shows_the_last_check(web, tmp_path, run_digest):
    from digest.preview.snapshot import PreviewOptions, Snapshot, render_snapshot
    from digest.settings import Settings

    state = tmp_path / ".digest"
    path, _ = write_edition(tmp_path, web, closed_port=closed_port())
    options = PreviewOptions(edition_path=path, settings=Settings(state_dir=state))
    before = render_snapshot(options)
    assert isinstance(before, Snapshot)
    (unchecked,) = [c for c in before.checks if c.title == "Link check"]
    assert (unchecked.level, unchecked.detail) == (
        "info",
        "not run yet: digest links EDITION checks every link",
    )

    run_digest("links", str(path), "--timeout", "0.5", env={"DIGEST_STATE_DIR": str(state)})
    after = render_snapshot(options)
    assert isinstance(after, Snapshot)
    (broken,) = [c for c in after.checks if c.title == "Broken links"]
    assert broken.level == "error"
    assert broken.detail == "5 broken at the last check (0 min ago)"
    assert f"{path}:" in broken.items[0] and "404 NOT FOUND" in " ".join(broken.items)
