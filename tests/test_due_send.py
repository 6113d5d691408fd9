"""`digest send --due` end to end: a real SMTP server, the real ledger, a controlled clock.

The clock is DIGEST_NOW (a testing aid read only by the CLI layer); everything else is what a
cron job would run: `digest send content/ --due --subscribers subscribers.csv --yes`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import TEST_SECRET, CliResult, subscriber_addresses, write_subscribers
from smtp_server import SMTPTestServer

from digest.state import edition_lock

DIGEST = Path(sys.executable).parent / "digest"
DUE_NOW = "2026-03-31T10:00:00Z"  # an hour after the edition's send_at
EDITION = """\
    newsletter: Clippings
    edition: {label}
    subject: "Clippings, {label}"
    {send_at_line}
    sections:
      - title: Research Papers
        items:
          - title: A paper about speech
            url: https://arxiv.org/abs/2601.00001
"""


def write_edition(content: Path, slug: str, send_at: str | None, label: str | None = None) -> Path:
    content.mkdir(parents=True, exist_ok=True)
    send_at_line = f"send_at: {send_at}" if send_at else ""
    text = textwrap.dedent(EDITION).format(label=label or slug, send_at_line=send_at_line)
    path = content / f"{slug}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def job(
    tmp_path: Path,
    smtp_server: SMTPTestServer,
    send_env: dict[str, str],
    run_digest: Callable[..., CliResult],
) -> Callable[..., CliResult]:
    """``job(*extra, now=...)``: the scheduled command, in tmp_path, at time ``now``."""
    write_subscribers(tmp_path / "subscribers.csv", 3)

    def run(*extra: str, target: str = "content/", now: str = DUE_NOW) -> CliResult:
        env = {**send_env, **smtp_server.env(), "DIGEST_NOW": now}
        args = ["send", target, "--due", "--subscribers", "subscribers.csv", "--yes", *extra]
        return run_digest(*args, env=env)

    return run


def test_not_due_sends_nothing_and_says_when(
    tmp_path: Path, job: Callable[..., CliResult], smtp_server: SMTPTestServer
) -> None:
    write_edition(tmp_path / "content", "2026-03", "2026-03-31T09:00:00Z")
    result = job(now="2026-03-30T09:00:00Z")
    assert result.exit_code == 0, result.output
    assert "not due yet: due at 2026-03-31 09:00 UTC (in 1d)" in result.stderr
    assert smtp_server.messages == []
    assert not (tmp_path / ".digest" / "locks").exists()  # no lock taken for nothing


def test_due_sends_once_and_a_second_run_sends_nothing(
    tmp_path: Path, job: Callable[..., CliResult], smtp_server: SMTPTestServer
) -> None:
    write_edition(tmp_path / "content", "2026-03", "2026-03-31T09:00:00Z")
    first = job()
    assert first.exit_code == 0, first.output
    assert smtp_server.recipients() == dict.fromkeys(subscriber_addresses(3), 1)

    second = job(now="2026-03-31T11:00:00Z")
    assert second.exit_code == 0, second.output
    assert "already sent" in second.stderr
    assert len(smtp_server.messages) == 3  # nothing more


def test_a_half_finished_send_resumes(
    tmp_path: Path, job: Callable[..., CliResult], smtp_server: SMTPTestServer
) -> None:
    """A run that crashed left pending rows in the ledger: the next run sends only those."""
    from digest.audience.subscribers import SubscriberReport, read_subscribers
    from digest.ledger import Ledger

    write_edition(tmp_path / "content", "2026-03", "2026-03-31T09:00:00Z")
    subscribers = list(
        read_subscribers(tmp_path / "subscribers.csv", SubscriberReport(path="subscribers.csv"))
    )
    with Ledger(tmp_path / ".digest") as ledger:
        ledger.enqueue("2026-03", subscribers)
        ledger.mark_sent("2026-03", [("reader0000@example.org", "queued-before-the-crash")])
        assert not ledger.is_finished("2026-03")

    result = job()
    assert result.exit_code == 0, result.output
    assert smtp_server.recipients() == {"reader0001@example.org": 1, "reader0002@example.org": 1}
    with Ledger(tmp_path / ".digest") as ledger:
        assert ledger.is_finished("2026-03")
        assert ledger.summary("2026-03").sent == 3


def test_a_killed_run_is_resumed_and_its_lock_does_not_stick(
    tmp_path: Path,
    job: Callable[..., CliResult],
    smtp_server: SMTPTestServer,
    send_env: dict[str, str],
) -> None:
    """kill -9 in the middle of a send (slow server): the rerun finishes the list."""
    write_edition(tmp_path / "content", "2026-03", "2026-03-31T09:00:00Z")
    write_subscribers(tmp_path / "subscribers.csv", 8)
    smtp_server.handler.data_delay = 0.25
    killed = _spawn_job(tmp_path, {**send_env, **smtp_server.env()}, "--concurrency", "1")
    try:
        _wait_until(lambda: len(smtp_server.messages) >= 2, killed)
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
    finally:
        killed.kill()
        killed.wait()
    before = len(smtp_server.messages)
    assert 2 <= before < 8

    smtp_server.handler.data_delay = 0.0
    result = job()
    assert result.exit_code == 0, result.output
    received = smtp_server.recipients()
    assert set(received) == subscriber_addresses(8)
    # At most the one message in flight at the kill (concurrency 1) went out twice.
    assert sum(received.values()) <= 9


def test_two_overlapping_runs_never_both_send(
    tmp_path: Path,
    job: Callable[..., CliResult],
    smtp_server: SMTPTestServer,
    send_env: dict[str, str],
) -> None:
    write_edition(tmp_path / "content", "2026-03", "2026-03-31T09:00:00Z")
    write_subscribers(tmp_path / "subscribers.csv", 6)
    smtp_server.handler.data_delay = 0.2
    first = _spawn_job(tmp_path, {**send_env, **smtp_server.env()}, "--concurrency", "1")
    try:
        _wait_until(lambda: len(smtp_server.messages) >= 1, first)
        second = job()  # while the first is still sending
        assert second.exit_code == 0, second.output
        assert "another run is sending 2026-03" in second.stderr
        assert f"pid {first.pid}" in second.stderr
        assert first.wait(timeout=30) == 0
    finally:
        first.kill()
        first.wait()
    assert smtp_server.recipients() == dict.fromkeys(subscriber_addresses(6), 1)


def test_a_held_lock_without_due_is_an_error(
    tmp_path: Path,
    job: Callable[..., CliResult],
    run_digest: Callable[..., CliResult],
    send_env: dict[str, str],
    smtp_server: SMTPTestServer,
) -> None:
    path = write_edition(tmp_path / "content", "2026-03", "2026-03-31T09:00:00Z")
    env = {**send_env, **smtp_server.env()}
    with edition_lock(tmp_path / ".digest", "2026-03"):
        by_hand = run_digest(
            "send", str(path), "--subscribers", "subscribers.csv", "--yes", env=env
        )
        scheduled = job()
    assert by_hand.exit_code == 1
    assert "another run is sending 2026-03" in by_hand.stderr
    assert scheduled.exit_code == 0  # a scheduler must not raise an alarm for it
    assert "another run is sending 2026-03" in scheduled.stderr
    assert smtp_server.messages == []


def test_too_late_is_missed_a_warning_that_names_the_command(
    tmp_path: Path,
    job: Callable[..., CliResult],
    smtp_server: SMTPTestServer,
    send_env: dict[str, str],
    run_digest: Callable[..., CliResult],
) -> None:
    write_edition(tmp_path / "content", "2026-02", "2026-02-28T09:00:00Z")
    write_edition(tmp_path / "content", "2026-03", "2026-03-31T09:00:00Z")
    result = job()
    # Contract §3: not sent, a warning, and the run's exit code is not changed by it (an old
    # edition in the folder, like the bundled example, must not fail every scheduled run).
    assert result.exit_code == 0, result.output
    assert "warning: content/2026-02.yaml: missed: was due at 2026-02-28 09:00 UTC" in (
        result.stderr
    )
    assert "longer than --max-late 7d: not sent automatically" in result.stderr
    assert "digest send content/2026-02.yaml --subscribers subscribers.csv" in result.stderr
    assert "--due --max-late 32d" in result.stderr
    assert [m.message["Subject"] for m in smtp_server.messages] == ["Clippings, 2026-03"] * 3

    status_env = {**send_env, "DIGEST_NOW": DUE_NOW}
    missed = run_digest("status", "content/2026-02.yaml", env=status_env)
    assert missed.exit_code == 0
    first, second = missed.stdout.splitlines()[:2]
    assert first == "2026-02: nothing sent yet."
    assert second.startswith("missed: was due at 2026-02-28 09:00 UTC, 31d 1h ago")
    sent = run_digest("status", "content/2026-03.yaml", env=status_env)
    assert "missed" not in sent.stdout

    allowed = job("--max-late", "32d")
    assert allowed.exit_code == 0, allowed.output
    assert len(smtp_server.messages) == 6


def test_folder_sends_due_editions_oldest_first_and_notes_the_rest(
    tmp_path: Path, job: Callable[..., CliResult], smtp_server: SMTPTestServer
) -> None:
    content = tmp_path / "content"
    write_edition(content, "a-march", "2026-03-31T09:00:00Z", "March")
    write_edition(content, "b-february-late", "2026-03-25T09:00:00Z", "February")
    write_edition(content, "c-april", "2026-04-30T09:00:00Z", "April")
    write_edition(content, "draft", None, "Draft")
    result = job()
    assert result.exit_code == 0, result.output
    subjects = [m.message["Subject"] for m in smtp_server.messages]
    assert subjects == ["Clippings, February"] * 3 + ["Clippings, March"] * 3
    assert "draft.yaml: has no send_at" in result.stderr
    assert "c-april.yaml: not due yet" in result.stderr


def test_single_edition_without_send_at_is_refused(
    tmp_path: Path, job: Callable[..., CliResult], smtp_server: SMTPTestServer
) -> None:
    write_edition(tmp_path / "content", "2026-03", None)
    result = job(target="content/2026-03.yaml")
    assert result.exit_code == 1
    assert "--due needs a send_at in the edition" in result.stderr
    assert smtp_server.messages == []


def test_json_log_is_one_object_per_line_without_secrets(
    tmp_path: Path, job: Callable[..., CliResult], smtp_server: SMTPTestServer
) -> None:
    write_edition(tmp_path / "content", "2026-03", "2026-03-31T09:00:00Z")
    write_edition(tmp_path / "content", "2026-04", "2026-04-30T09:00:00Z")
    result = job("--log-format", "json")
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stderr.splitlines()]
    assert all({"ts", "level", "event", "message"} <= set(e) for e in events)
    by_event = {e["event"]: e for e in events}
    assert by_event["not-due"]["slug"] == "2026-04"
    assert by_event["due"]["slug"] == "2026-03"
    end = by_event["send-end"]
    assert (end["slug"], end["exit_code"], end["sent"], end["pending"]) == ("2026-03", 0, 3, 0)
    assert result.stdout == ""  # the summary went into the log as events too
    assert any(e["event"] == "output" and "Sent 3 messages" in e["message"] for e in events)
    assert TEST_SECRET not in result.output


def test_json_log_reports_a_missed_edition_as_a_warning_event(
    tmp_path: Path, job: Callable[..., CliResult]
) -> None:
    write_edition(tmp_path / "content", "2026-02", "2026-02-01T09:00:00Z")
    result = job("--log-format", "json")
    assert result.exit_code == 0
    (event,) = [json.loads(line) for line in result.stderr.splitlines()]
    assert (event["event"], event["level"], event["slug"]) == ("missed", "warning", "2026-02")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-late", "soon"], "invalid duration 'soon'"),
        (["--test", "me@example.org"], "--test cannot be used with --due"),
    ],
)
def test_bad_options_are_usage_errors(
    tmp_path: Path, job: Callable[..., CliResult], args: list[str], message: str
) -> None:
    write_edition(tmp_path / "content", "2026-03", "2026-03-31T09:00:00Z")
    result = job(*args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_a_folder_needs_due(
    tmp_path: Path, run_digest: Callable[..., CliResult], send_env: dict[str, str]
) -> None:
    write_edition(tmp_path / "content", "2026-03", "2026-03-31T09:00:00Z")
    write_subscribers(tmp_path / "subscribers.csv", 1)
    result = run_digest("send", "content", "--subscribers", "subscribers.csv", env=send_env)
    assert result.exit_code == 2
    assert "add --due" in result.stderr


def test_a_bad_clock_is_a_clear_error(tmp_path: Path, job: Callable[..., CliResult]) -> None:
    write_edition(tmp_path / "content", "2026-03", "2026-03-31T09:00:00Z")
    result = job(now="2026-03-31 10:00")
    assert result.exit_code == 1
    assert "DIGEST_NOW must be an ISO 8601 time with its offset" in result.stderr


# --------------------------------------------------------------------------- helpers


def _spawn_job(cwd: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    """The scheduled command as its own process (what cron starts)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DIGEST_", "SMTP_"))}
    clean.update(env, DIGEST_NOW=DUE_NOW, NO_COLOR="1")
    args = [str(DIGEST), "send", "content/", "--due", "--subscribers", "subscribers.csv", "--yes"]
    return subprocess.Popen(
        [*args, *extra],
        cwd=cwd,
        env=clean,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_until(condition: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"the job ended early ({process.returncode}):\n{output}")
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting for the job")
        time.sleep(0.02)
