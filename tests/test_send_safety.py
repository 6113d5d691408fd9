"""Sending by hand, safely (contract §8): an edition scheduled for later waits unless --now;
a --test proof needs no list, ignores send_at and says [TEST]; --strict makes bad rows of the
list errors (nothing sent), without it they are skipped with a warning. Real SMTP server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conftest import CliResult, subscriber_addresses, write_subscribers
from smtp_server import SMTPTestServer

Run = Callable[..., CliResult]
NOW = "2026-03-16T09:00:00Z"  # fifteen days before the edition's send_at


def scheduled(edition_file: Path) -> None:
    text = edition_file.read_text(encoding="utf-8")
    edition_file.write_text(text + "send_at: 2026-03-31T09:00:00Z\n", encoding="utf-8")


def test_a_send_before_send_at_refuses_unless_now(
    run_digest: Run,
    smtp_server: SMTPTestServer,
    send_env: dict[str, str],
    tmp_path: Path,
    edition_file: Path,
) -> None:
    scheduled(edition_file)
    write_subscribers(tmp_path / "subscribers.csv", 3)
    env = {**send_env, **smtp_server.env(), "DIGEST_NOW": NOW}
    command = ("send", str(edition_file), "--subscribers", "subscribers.csv", "--yes")
    early = run_digest(*command, env=env)
    assert early.exit_code == 1
    assert (
        f"error: {edition_file} is scheduled for 2026-03-31 09:00 UTC (in 15 days); "
        "add --now to send it anyway" in early.stderr
    )
    assert smtp_server.messages == []
    assert not (tmp_path / ".digest" / "ledger.sqlite3").exists() or "nothing sent yet" in (
        run_digest("status", str(edition_file), env=env).stdout
    )

    now = run_digest(*command, "--now", env=env)
    assert now.exit_code == 0, now.output
    assert smtp_server.recipients() == dict.fromkeys(subscriber_addresses(3), 1)

    # On its day (or after), no --now is needed.
    later = {**env, "DIGEST_NOW": "2026-03-31T09:00:00Z"}
    again = run_digest(*command, env=later)
    assert again.exit_code == 0, again.output
    assert "Nothing left to send." in again.stdout


def test_a_dry_run_ignores_send_at(
    run_digest: Run, send_env: dict[str, str], tmp_path: Path, edition_file: Path
) -> None:
    scheduled(edition_file)
    write_subscribers(tmp_path / "subscribers.csv", 2)
    env = {**send_env, "DIGEST_NOW": NOW}
    dry = run_digest(
        "send", str(edition_file), "--subscribers", "subscribers.csv", "--dry-run", env=env
    )
    assert dry.exit_code == 0, dry.output
    assert len(list((tmp_path / "outbox" / "2026-03").glob("*.eml"))) == 2


def test_a_proof_needs_no_list_ignores_send_at_and_says_test(
    run_digest: Run,
    smtp_server: SMTPTestServer,
    send_env: dict[str, str],
    edition_file: Path,
) -> None:
    scheduled(edition_file)
    env = {**send_env, **smtp_server.env(), "DIGEST_NOW": NOW}
    proof = run_digest("send", str(edition_file), "--test", "me@example.org", env=env)
    assert proof.exit_code == 0, proof.output
    assert "Proof sent to me@example.org (not recorded)." in proof.stdout
    (received,) = smtp_server.messages
    assert received.rcpt_tos == ("me@example.org",)
    assert received.message["Subject"] == "[TEST] Clippings, March 2026: a small test edition"
    assert "nothing sent yet" in run_digest("status", str(edition_file), env=env).stdout


def test_without_a_list_a_real_send_is_a_usage_error(
    run_digest: Run, send_env: dict[str, str], edition_file: Path
) -> None:
    result = run_digest("send", str(edition_file), "--yes", env=send_env)
    assert result.exit_code == 2
    assert "Missing option '--subscribers'" in result.stderr
    assert "(only --test needs none)" in result.stderr


def test_bad_rows_are_skipped_with_a_warning_or_stop_the_send_with_strict(
    run_digest: Run,
    smtp_server: SMTPTestServer,
    send_env: dict[str, str],
    tmp_path: Path,
    edition_file: Path,
) -> None:
    write_subscribers(
        tmp_path / "subscribers.csv",
        3,
        extra_rows="""\
            not-an-address,X,subscribed,Paris
            also-bad,Y,maybe,Paris
        """,
    )
    env = {**send_env, **smtp_server.env()}
    command = ("send", str(edition_file), "--subscribers", "subscribers.csv", "--yes")
    strict = run_digest(*command, "--strict", env=env)
    assert strict.exit_code == 1
    assert "subscribers.csv:5:1: email:" in strict.stderr
    assert "subscribers.csv:6" in strict.stderr
    assert "--strict" in strict.stderr
    assert smtp_server.messages == []

    lenient = run_digest(*command, env=env)
    assert lenient.exit_code == 0, lenient.output
    assert "2 invalid rows skipped" in lenient.stderr
    assert smtp_server.recipients() == dict.fromkeys(subscriber_addresses(3), 1)
