"""One test per finding of the second security test (issue 15), each reproducing it as reported.

SECURITY.md lists them. Real parts throughout: the endpoint under uvicorn on 127.0.0.1, the CLI
as a curator types it, files on disk.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import httpx
from conftest import CliResult
from test_unsubscribe_app import ONE_CLICK, SECRET, serving, settings_for

from digest.audience.subscribers import SubscriberReport, read_subscribers
from digest.errors import SubscribersError
from digest.tokens import make_token
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
