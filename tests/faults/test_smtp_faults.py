"""SMTP fault campaign: `digest send` through a server injecting 421+close, 451, 452, resets
mid-DATA, resets after accepting, stalls past SMTP_TIMEOUT and 550/553 for chosen recipients.

For each mix and seed: rerun while the exit code is 4 (as the contract says), then everyone
subscribed is delivered or recorded failed with the server's reply, nobody twice unless the
server accepted their message and the reply was lost; exit 3 when someone failed, else 0; no
traceback, no secret in any output or in the state folder.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import CliResult, subscriber_addresses, write_subscribers
from smtp_server import FaultyHandler, SMTPTestServer

from faults.audit import audit_campaign, files_holding, texts_holding
from faults.conftest import DIGEST_SECRET, FAST_RETRY, SECRETS, SMTP_PASSWORD
from faults.figures import publish
from faults.ledger_view import by_status, ledger_rows
from faults.smtp_faults import SeededFaultHandler, SMTPFaultRates

COUNT = 300
CONCURRENCY = 8
SMTP_TIMEOUT = 0.5
MAX_RUNS = 6
SLUG = "2026-03"

MIXES = {
    "rcpt": SMTPFaultRates(closing_421=0.05, busy_451=0.06, full_452=0.05, permanent=0.03),
    "data": SMTPFaultRates(
        reset_mid_data=0.06, reset_after_accept=0.03, stall=0.01, permanent=0.02
    ),
    "all": SMTPFaultRates(
        closing_421=0.03,
        busy_451=0.03,
        full_452=0.03,
        reset_mid_data=0.03,
        reset_after_accept=0.02,
        stall=0.01,
        permanent=0.03,
    ),
}
CASES = [("rcpt", 1), ("data", 2), ("all", 3), ("all", 4), ("all", 5)]


def send_args() -> tuple[str, ...]:
    return (
        "send",
        "content/2026-03.yaml",
        "--subscribers",
        "subscribers.csv",
        "--yes",
        "--concurrency",
        str(CONCURRENCY),
        *FAST_RETRY,
    )


def smtp_env(send_env: dict[str, str], server: SMTPTestServer) -> dict[str, str]:
    return {
        **send_env,
        **server.env(),
        "DIGEST_SECRET": DIGEST_SECRET,
        "SMTP_TIMEOUT": str(SMTP_TIMEOUT),
        "SMTP_USERNAME": "digest",
        "SMTP_PASSWORD": SMTP_PASSWORD,
    }


def check_runs(runs: list[CliResult], failed: int) -> None:
    codes = [run.exit_code for run in runs]
    assert codes[-1] == (3 if failed else 0), [run.output[-400:] for run in runs]
    assert all(code == 4 for code in codes[:-1]), codes
    for run in runs:
        assert "Traceback" not in run.output
        if run.exit_code == 4:
            assert "rerun the same command" in run.stderr


# The server offers PIPELINING (MAIL, RCPT and DATA come in one write) or not (one by one):
# every fault must leave the same promises kept on both of the backend's paths.
@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])
@pytest.mark.parametrize(("mix", "seed"), CASES, ids=[f"{m}-seed{s}" for m, s in CASES])
def test_every_recipient_is_delivered_once_or_failed_with_the_servers_reason(
    tmp_path: Path,
    edition_file: Path,
    send_env: dict[str, str],
    run_digest: Any,
    capsys: pytest.CaptureFixture[str],
    tmp_path_factory: pytest.TempPathFactory,
    mix: str,
    seed: int,
    pipelining: bool,
) -> None:
    write_subscribers(tmp_path / "subscribers.csv", COUNT)
    subscribed = subscriber_addresses(COUNT)
    handler = SeededFaultHandler(
        rates=MIXES[mix], seed=seed, stall_seconds=SMTP_TIMEOUT * 2, pipelining=pipelining
    )
    permanent = handler.choose_permanent(sorted(subscribed))
    started = time.monotonic()
    with SMTPTestServer(handler, credentials=("digest", SMTP_PASSWORD)) as server:
        env = smtp_env(send_env, server)
        runs = [run_digest(*send_args(), env=env)]
        while runs[-1].exit_code == 4 and len(runs) < MAX_RUNS:
            runs.append(run_digest(*send_args(), env=env))
        received = server.recipients()
    elapsed = time.monotonic() - started

    rows = ledger_rows(tmp_path / ".digest", SLUG)
    figures = audit_campaign(
        subscribed=subscribed,
        received=received,
        rows=rows,
        ambiguous=handler.ambiguous,
        refusals=handler.replies,
    )
    failed = by_status(rows, "failed")
    assert set(permanent) <= failed  # 550/553: failed at once, never retried into success
    check_runs(runs, len(failed))
    assert not texts_holding(SECRETS, [run.output for run in runs])
    assert not files_holding(SECRETS, [tmp_path / ".digest"])
    publish(
        f"smtp faults {mix} seed={seed}" + ("" if pipelining else " one-by-one"),
        {
            **figures,
            "faults_injected": sum(handler.injected.values()),
            "faults": dict(sorted(handler.injected.items())),
            "runs": len(runs),
            "exit_codes": [run.exit_code for run in runs],
            "seconds": round(elapsed, 1),
        },
        tmp_path_factory=tmp_path_factory,
        capsys=capsys,
    )


class GoesDown(FaultyHandler):
    """Accepts ``after`` messages, then the whole server goes away (connection refused)."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after
        self.server: SMTPTestServer | None = None
        self.went_down = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if len(self.messages) == self.after and self.server is not None:
            owner = self.server
            threading.Thread(target=lambda: (owner.stop(), self.went_down.set())).start()
        return reply


def test_server_down_mid_send_exits_4_and_a_rerun_completes(
    tmp_path: Path,
    edition_file: Path,
    send_env: dict[str, str],
    run_digest: Any,
    capsys: pytest.CaptureFixture[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    write_subscribers(tmp_path / "subscribers.csv", COUNT)
    subscribed = subscriber_addresses(COUNT)
    handler = GoesDown(after=120)
    server = SMTPTestServer(handler)
    handler.server = server
    server.start()
    try:
        env = smtp_env(send_env, server)
        del env["SMTP_USERNAME"], env["SMTP_PASSWORD"]
        stopped = run_digest(*send_args(), env=env)
        assert handler.went_down.wait(10)
        assert stopped.exit_code == 4, stopped.output
        assert "rerun the same command" in stopped.stderr
        assert "Traceback" not in stopped.output
        rows = ledger_rows(tmp_path / ".digest", SLUG)
        received_before = Counter(server.recipients())
        assert by_status(rows, "sent") <= set(received_before)  # recorded sent = delivered
        assert not by_status(rows, "failed")  # a server that is down fails nobody
        in_flight = set(received_before) - by_status(rows, "sent")
        assert len(in_flight) <= CONCURRENCY

        server.start()  # back on the same port
        resumed = run_digest(*send_args(), env=env)
        assert resumed.exit_code == 0, resumed.output
        received = server.recipients()
    finally:
        server.stop()
    figures = audit_campaign(
        subscribed=subscribed,
        received=received,
        rows=ledger_rows(tmp_path / ".digest", SLUG),
        ambiguous=Counter(dict.fromkeys(in_flight, 1)),
        refusals={},
    )
    publish(
        "smtp server down then back",
        {**figures, "accepted_before_down": handler.after, "exit_codes": [4, 0]},
        tmp_path_factory=tmp_path_factory,
        capsys=capsys,
    )
