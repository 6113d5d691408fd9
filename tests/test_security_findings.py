"""One test per finding of the second security test (issue 15), each reproducing it as reported.

SECURITY.md lists them. Real parts throughout: the endpoint under uvicorn on 127.0.0.1, the CLI
as a curator types it, files on disk.
"""

from __future__ import annotations

import csv
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from conftest import CliResult
from test_cli_lifecycle import clean_environ
from test_unsubscribe_app import ONE_CLICK, SECRET, serving, settings_for

from digest.audience.subscribers import SubscriberReport, read_subscribers
from digest.audience.suppressions import SuppressionStore
from digest.errors import SubscribersError
from digest.tokens import address_fingerprint, make_token
from digest.unsubscribe_app import create_app

RunDigest = Callable[..., CliResult]
FORMULAS = ("=1+1@example.org", '=HYPERLINK("https://evil.example","x")@x.org', "+SUM(1;2)@x.org")


# -- low: spreadsheet formula injection --------------------------------------------------------


def test_formula_addresses_are_refused_at_validation(tmp_path: Path) -> None:
    rows = "=1+1@example.org,Eve\n+SUM(1;2)@x.org,Eve\n-x@example.org,Eve\n@x@example.org,Eve\n"
    path = tmp_path / "subscribers.csv"
    path.write_text("email,name\nada@example.org,Ada\nbob@example.org,Bob\n" + rows)
    report = SubscriberReport(path=str(path))
    try:
        addresses = [s.email for s in read_subscribers(path, report)]
    except SubscribersError as exc:  # pragma: no cover - two rows are valid
        raise AssertionError(exc.problems) from exc
    assert addresses == ["ada@example.org", "bob@example.org"]
    problems = {p.line: p for p in report.problems}
    assert sorted(problems) == [4, 5, 6, 7]
    for problem in problems.values():
        assert problem.field == "email"
        assert "RFC 5321 allows but no real reader's address does" in problem.message
        assert "spreadsheet" in problem.message


def test_exported_suppressions_never_hold_a_live_formula(
    tmp_path: Path, run_digest: RunDigest
) -> None:
    # The address reached the list before the rule above (or through a token made for it): one
    # click unsubscribes it, and the export must still be inert in a spreadsheet.
    settings = settings_for(tmp_path)
    with serving(create_app(settings)) as base, httpx.Client(base_url=base) as client:
        for address in FORMULAS:
            token = make_token(SECRET, address, "2026-03")
            assert client.post(f"/u/{token}", data=ONE_CLICK).status_code == 200
    export = tmp_path / "suppressed.csv"
    env = {"DIGEST_STATE_DIR": str(settings.state_dir)}
    result = run_digest("suppressions", "export", "--out", str(export), env=env)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(export.open(encoding="utf-8", newline="")))
    assert sorted(r["email"] for r in rows) == sorted("'" + a for a in FORMULAS)
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), row


# -- info: a redirect to the client's Host, no no-store on errors ------------------------------


def test_no_path_or_method_answers_with_a_redirect_and_every_answer_is_no_store(
    tmp_path: Path,
) -> None:
    token = make_token(SECRET, "ada@example.org", "2026-03")
    paths = [
        f"/u/{token}/",
        f"/u/{token}//",
        f"/u/{token}/x",
        "/u/",
        "/u",
        "/",
        "//evil.example",
        f"/u/{token}",
        "/U/x",
        "/u/%2e%2e/",
        "/favicon.ico",
    ]
    methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]
    settings = settings_for(tmp_path)
    answers = 0
    with serving(create_app(settings)) as base, httpx.Client(base_url=base) as client:
        for path in paths:
            for method in methods:
                response = client.request(
                    method, path, headers={"Host": "evil.example"}, data=ONE_CLICK
                )
                answers += 1
                assert not 300 <= response.status_code < 400, (method, path)
                assert "location" not in response.headers, (method, path)
                assert response.headers.get("cache-control") == "no-store", (method, path)
                assert response.headers.get("referrer-policy") == "no-referrer", (method, path)
        # The reported request exactly: POST /unsubscribe/<token>/ with a foreign Host.
        response = client.post(f"/u/{token}/", headers={"Host": "evil.example"}, data=ONE_CLICK)
        assert response.status_code == 404 and "evil.example" not in response.text
    assert answers == len(paths) * len(methods)
    # Only the one exact POST unsubscribed anyone.
    with SuppressionStore(settings.state_dir) as store:
        assert [s.address for s in store.iter()] == ["ada@example.org"]


# -- info: the documented log line was never written -------------------------------------------


def test_one_log_line_per_new_unsubscribe_without_the_address(tmp_path: Path) -> None:
    environ = clean_environ() | {
        "DIGEST_SECRET": SECRET,
        "DIGEST_UNSUBSCRIBE_URL": "https://news.example.org/u/{token}",
        "DIGEST_STATE_DIR": str(tmp_path / "state"),
        "PYTHONUNBUFFERED": "1",
    }
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "digest"), "serve-unsubscribe", "--port", "0"],
        cwd=tmp_path,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    addresses = [f"reader{n}@example.org" for n in range(5)]
    try:
        assert server.stdout is not None
        match = re.match(
            r"Unsubscribe endpoint: (http://127\.0\.0\.1:\d+)/", server.stdout.readline()
        )
        assert match
        with httpx.Client(base_url=match.group(1), timeout=5) as client:
            for _ in range(100):  # uvicorn may still be starting
                try:
                    client.get("/")
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            for address in [*addresses, addresses[0], addresses[1]]:  # two already unsubscribed
                token = make_token(SECRET, address, "2026-03")
                assert client.post(f"/u/{token}", data=ONE_CLICK).status_code == 200
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=10)
    lines = [line for line in err.splitlines() if "unsubscribed" in line]
    assert len(lines) == len(addresses), err
    fingerprints = {address_fingerprint(SECRET, a) for a in addresses}
    assert {re.search(r"addr-[0-9a-f]{16}", line).group() for line in lines} == fingerprints  # type: ignore[union-attr]
    assert all("edition 2026-03" in line for line in lines)
    assert not any(a in err or a.split("@")[0] in err for a in addresses)
