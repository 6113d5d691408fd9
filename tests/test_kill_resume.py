"""`digest send` killed mid-send (SIGKILL: no chance to clean up; SIGTERM: a graceful stop), then
rerun: everyone gets the edition, and duplicates stay within the documented in-flight window
(at most concurrency x batch size messages; 1 message per batch for SMTP)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SETTING_PREFIXES, subscriber_addresses, write_subscribers
from smtp_server import FaultyHandler, SMTPTestServer

CONCURRENCY = 4
COUNT = 200


def start_send(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from digest.cli import main; main()",
            "send",
            "content/2026-03.yaml",
            "--subscribers",
            "subscribers.csv",
            "--yes",
            "--concurrency",
            str(CONCURRENCY),
        ],
        cwd=tmp_path,
        env={**clean, **env, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_messages(server: SMTPTestServer, count: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while len(server.messages) < count:
        if process.poll() is not None:
            pytest.fail(f"digest send ended early: {process.communicate()}")
        if time.monotonic() > deadline:
            pytest.fail("the send did not get going")
        time.sleep(0.005)


@pytest.mark.parametrize("kill_at", [40, 120])
def test_sigkill_mid_send_then_rerun_delivers_to_everyone(
    tmp_path: Path, edition_file: Path, send_env: dict[str, str], kill_at: int
) -> None:
    write_subscribers(tmp_path / "subscribers.csv", COUNT)
    # A little slow, so the kill lands with messages in flight on every connection.
    with SMTPTestServer(FaultyHandler(data_delay=0.01)) as server:
        env = {**send_env, **server.env()}
        process = start_send(tmp_path, env)
        wait_for_messages(server, kill_at, process)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        before_rerun = len(server.messages)

        server.handler.data_delay = 0
        rerun = start_send(tmp_path, env)
        _, err = rerun.communicate(timeout=60)
        assert rerun.returncode == 0, err
        received = server.recipients()

    assert set(received) == subscriber_addresses(COUNT)
    duplicates = sum(n - 1 for n in received.values())
    print(
        f"\nSIGKILL after {before_rerun} accepted messages: {duplicates} duplicate(s) on rerun "
        f"(in-flight window: {CONCURRENCY} x 1 = {CONCURRENCY})"
    )
    assert duplicates <= CONCURRENCY


def test_sigterm_stops_gracefully_with_exit_4_and_loses_nothing(
    tmp_path: Path, edition_file: Path, send_env: dict[str, str]
) -> None:
    write_subscribers(tmp_path / "subscribers.csv", COUNT)
    with SMTPTestServer(FaultyHandler(data_delay=0.01)) as server:
        env = {**send_env, **server.env()}
        process = start_send(tmp_path, env)
        wait_for_messages(server, 30, process)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 4, err
        assert "interrupted" in err and "rerun the same command" in err
        assert "Traceback" not in err
        stopped_at = len(server.messages)
        assert stopped_at < COUNT

        rerun = start_send(tmp_path, env)
        rerun.communicate(timeout=60)
        assert rerun.returncode == 0
        received = server.recipients()

    # A graceful stop records every message in flight: no duplicate at all.
    assert received == dict.fromkeys(subscriber_addresses(COUNT), 1)
