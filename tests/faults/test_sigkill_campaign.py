"""`digest send` killed with SIGKILL at seeded random points, five times, then run to the end.

After every kill the ledger is read straight from SQLite: no row that existed before is lost,
no `sent` row goes back, every `sent` row was really received by the server, and messages the
server received but the ledger still has as pending (the in-flight window) are at most
``--concurrency``. At the end everyone has the edition, with at most that many duplicates per
kill. A kill may land anywhere: during start-up, while the list is enqueued, mid-send.
"""

from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import SETTING_PREFIXES, subscriber_addresses, write_subscribers
from smtp_server import FaultyHandler, SMTPTestServer

from faults.audit import audit_campaign, files_holding, texts_holding
from faults.conftest import DIGEST_SECRET, SECRETS, SMTP_PASSWORD
from faults.figures import publish
from faults.ledger_view import Row, by_status, ledger_rows

COUNT = 400
CONCURRENCY = 4
KILLS = 5
SLUG = "2026-03"


def start_send(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
    command = [sys.executable, "-c", "from digest.cli import main; main()", "send"]
    command += ["content/2026-03.yaml", "--subscribers", "subscribers.csv", "--yes"]
    command += ["--concurrency", str(CONCURRENCY)]
    return subprocess.Popen(
        command,
        cwd=tmp_path,
        env={**clean, **env, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        umask=0o022,  # the usual umask: the state must still be private (issue 15)
    )


def kill_when(
    process: subprocess.Popen[str], server: SMTPTestServer, *, messages: int, seconds: float
) -> str:
    """SIGKILL once the server holds ``messages`` messages or ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    while len(server.messages) < messages and time.monotonic() < deadline:
        if process.poll() is not None:
            return "finished before the kill"
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    return f"killed at {len(server.messages)} messages"


def private_modes(state: Path) -> int:
    """Every folder of the state 0700 and every file 0600, even right after a SIGKILL; return
    how many were checked."""
    if not state.exists():  # killed before it made the state folder
        return 0
    checked = 0
    for path in [state, *state.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"
        checked += 1
    return checked


def check_after_kill(
    before: dict[str, Row], after: dict[str, Row], received: Counter[str]
) -> set[str]:
    """The ledger checks after one kill; returns the in-flight addresses (received, pending)."""
    assert set(before) <= set(after), "a ledger row vanished"
    assert by_status(before, "sent") <= by_status(after, "sent"), "a sent row went back"
    assert by_status(after, "sent") <= set(received), "a row is `sent` the server never got"
    in_flight = set(received) & by_status(after, "pending")
    assert len(in_flight) <= CONCURRENCY, f"{len(in_flight)} in flight > --concurrency"
    return in_flight


@pytest.mark.parametrize("seed", [7, 8])
def test_kill_9_five_times_then_finish(
    tmp_path: Path,
    edition_file: Path,
    send_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    tmp_path_factory: pytest.TempPathFactory,
    seed: int,
) -> None:
    rng = random.Random(seed)
    write_subscribers(tmp_path / "subscribers.csv", COUNT)
    state = tmp_path / ".digest"
    # Kill points: after 5 to 60 more messages, and in one run after a random fraction of a
    # second (start-up, enqueueing, or the first messages).
    steps = [rng.randint(5, 60) for _ in range(KILLS)]
    early_kill = rng.randrange(KILLS)
    outcomes: list[str] = []
    ambiguous: Counter[str] = Counter()  # per address: copies received while pending
    outputs: list[str] = []
    with SMTPTestServer(
        FaultyHandler(data_delay=0.003), credentials=("digest", SMTP_PASSWORD)
    ) as server:
        env = {
            **send_env,
            **server.env(),
            "DIGEST_SECRET": DIGEST_SECRET,
            "SMTP_USERNAME": "digest",
            "SMTP_PASSWORD": SMTP_PASSWORD,
        }
        rows = ledger_rows(state, SLUG)
        private_paths = 0
        for kill in range(KILLS):
            process = start_send(tmp_path, env)
            if kill == early_kill:
                outcome = kill_when(process, server, messages=COUNT, seconds=rng.uniform(0.1, 0.8))
            else:
                target = len(server.messages) + steps[kill]
                outcome = kill_when(process, server, messages=target, seconds=30)
            outcomes.append(outcome)
            out, err = process.communicate()
            outputs += [out, err]
            after = ledger_rows(state, SLUG)
            received = server.recipients()
            in_flight = check_after_kill(rows, after, received)
            private_paths += private_modes(state)
            # Copies received while the row is pending are unrecorded: a later run resends.
            for address in in_flight:
                ambiguous[address] = received[address]
            rows = after

        final = start_send(tmp_path, env)
        out, err = final.communicate(timeout=60)
        outputs += [out, err]
        assert final.returncode == 0, err
        received = server.recipients()

    figures = audit_campaign(
        subscribed=subscriber_addresses(COUNT),
        received=received,
        rows=ledger_rows(state, SLUG),
        ambiguous=ambiguous,
        refusals={},
    )
    assert figures["duplicates"] <= KILLS * CONCURRENCY
    assert all("Traceback" not in text for text in outputs)
    assert not texts_holding(SECRETS, outputs)
    assert not files_holding(SECRETS, [state])
    publish(
        f"kill -9 seed={seed}",
        {
            **figures,
            "kills": KILLS,
            "points": outcomes,
            "final_exit": final.returncode,
            "state_paths_private": private_modes(state) + private_paths,
        },
        tmp_path_factory=tmp_path_factory,
        capsys=capsys,
    )
