"""Mailgun fault campaign: `digest send --backend mailgun` against a local API injecting 429 with
"try again after <date>", 500/502/503, 400, timeouts and truncated answers.

Batches are cut to 5 recipients (Mailgun allows 1,000) so a few hundred recipients make dozens
of requests, and the HTTP timeout to 0.4 s so a timeout costs little. For each mix: everyone is
delivered or failed with Mailgun's message; duplicates only for batches Mailgun accepted after
the client gave up (timeouts), never for a 200 whose body is cut short (a 2xx is accepted); no
retry before the time Mailgun named; exit codes per the contract; the API key nowhere in the
output or the state folder.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import subscriber_addresses, write_subscribers

import digest.backends.mailgun as mailgun_backend
from faults.audit import audit_campaign, files_holding, texts_holding
from faults.conftest import DIGEST_SECRET, FAST_RETRY, MAILGUN_API_KEY, SECRETS
from faults.figures import publish
from faults.ledger_view import by_status, ledger_rows
from faults.mailgun_faults import REFUSAL_400, FaultyMailgun, MailgunFaultRates

COUNT = 300
BATCH = 5
CONCURRENCY = 4
MAX_RUNS = 6
SLUG = "2026-03"
DOMAIN = "mg.example.org"

MIXES = {
    "transient": MailgunFaultRates(rate_limited_429=0.1, server_error_5xx=0.25),
    "ambiguous": MailgunFaultRates(timeout=0.06, truncated=0.1, server_error_5xx=0.05),
    "all": MailgunFaultRates(
        rate_limited_429=0.08,
        server_error_5xx=0.15,
        timeout=0.04,
        truncated=0.06,
        refused_400=0.04,
    ),
}
CASES = [("transient", 1), ("ambiguous", 2), ("all", 3), ("all", 4)]


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mailgun_backend.MailgunBackend, "batch_size", BATCH)
    monkeypatch.setattr(mailgun_backend, "_DEFAULT_TIMEOUT", httpx.Timeout(0.4, connect=2.0))


@pytest.mark.parametrize(("mix", "seed"), CASES, ids=[f"{m}-seed{s}" for m, s in CASES])
def test_every_recipient_is_delivered_once_or_failed_with_mailguns_reason(
    tmp_path: Path,
    edition_file: Path,
    send_env: dict[str, str],
    run_digest: Any,
    small_batches: None,
    capsys: pytest.CaptureFixture[str],
    tmp_path_factory: pytest.TempPathFactory,
    mix: str,
    seed: int,
) -> None:
    write_subscribers(tmp_path / "subscribers.csv", COUNT)
    subscribed = subscriber_addresses(COUNT)
    started = time.monotonic()
    with FaultyMailgun(
        api_key=MAILGUN_API_KEY, domain=DOMAIN, rates=MIXES[mix], seed=seed
    ) as server:
        env = {
            **send_env,
            "DIGEST_SECRET": DIGEST_SECRET,
            "DIGEST_BACKEND": "mailgun",
            "MAILGUN_API_KEY": MAILGUN_API_KEY,
            "MAILGUN_DOMAIN": DOMAIN,
            "MAILGUN_API_URL": server.api_url,
        }
        args = ("send", "content/2026-03.yaml", "--subscribers", "subscribers.csv", "--yes")
        args += ("--concurrency", str(CONCURRENCY), *FAST_RETRY)
        runs = [run_digest(*args, env=env)]
        while runs[-1].exit_code == 4 and len(runs) < MAX_RUNS:
            runs.append(run_digest(*args, env=env))
        received = server.received()
        # Every request carried the key, and only in its Authorization header.
        assert all(r.password == MAILGUN_API_KEY for r in server.message_requests)
    elapsed = time.monotonic() - started

    rows = ledger_rows(tmp_path / ".digest", SLUG)
    figures = audit_campaign(
        subscribed=subscribed,
        received=received,
        rows=rows,
        ambiguous=server.ambiguous,
        refusals=server.refusals,
    )
    failed = by_status(rows, "failed")
    refused = {a for a, replies in server.refusals.items() if REFUSAL_400 in replies}
    assert refused <= failed | set(received)
    assert server.early_retries == 0, "a batch came back before Mailgun's 'try again after'"
    codes = [run.exit_code for run in runs]
    assert codes[-1] == (3 if failed else 0), [run.output[-400:] for run in runs]
    assert all(code == 4 for code in codes[:-1]), codes
    assert all("Traceback" not in run.output for run in runs)
    assert not texts_holding(SECRETS, [run.output for run in runs])
    assert not files_holding(SECRETS, [tmp_path / ".digest"])
    publish(
        f"mailgun faults {mix} seed={seed}",
        {
            **figures,
            "requests": server.posts,
            "cut_short_accepted": sum(server.cut_short.values()),
            "faults_injected": sum(server.injected.values()),
            "faults": dict(sorted(server.injected.items())),
            "early_retries": server.early_retries,
            "runs": len(runs),
            "exit_codes": codes,
            "seconds": round(elapsed, 1),
        },
        tmp_path_factory=tmp_path_factory,
        capsys=capsys,
    )
