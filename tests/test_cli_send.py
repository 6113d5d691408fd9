"""`digest send` and `digest status` as a curator runs them, against a real SMTP server."""

from __future__ import annotations

import email
import email.policy
import json
import textwrap
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import TEST_SECRET, CliResult, subscriber_addresses, write_subscribers
from smtp_server import SMTPTestServer

from digest.audience.subscribers import Subscriber, SubscriberReport
from digest.ledger import Ledger
from digest.tokens import make_token, verify_token

Run = Callable[..., CliResult]
EDITION = "content/2026-03.yaml"


def send(run_digest: Run, env: dict[str, str], *args: str) -> CliResult:
    return run_digest("send", EDITION, "--subscribers", "subscribers.csv", *args, env=env)


def test_every_subscribed_address_gets_one_message_with_the_contract_headers(
    run_digest: Run,
    smtp_server: SMTPTestServer,
    send_env: dict[str, str],
    tmp_path: Path,
    edition_file: Path,
) -> None:
    write_subscribers(
        tmp_path / "subscribers.csv",
        12,
        extra_rows="""\
            gone@example.org,Gone,unsubscribed,Paris
            bounced@example.org,B,bounced,Paris
            READER0003@example.org,Duplicate,subscribed,Paris
            not-an-address,X,subscribed,Paris
            zoë@exämple.org,Zoë Ünïcode,subscribed,Zürich
        """,
    )
    env = {**send_env, **smtp_server.env()}
    result = send(run_digest, env, "--yes", "--concurrency", "3")
    assert result.exit_code == 0, result.output
    expected = subscriber_addresses(12) | {"zoë@exämple.org"}
    assert smtp_server.recipients() == dict.fromkeys(expected, 1)
    assert smtp_server.connections <= 3
    # The skipped row is reported with its line, once, in a summary; the send went on.
    assert "subscribers.csv:17" in result.stderr and "1 invalid row" in result.stderr
    assert "Sent 13 messages" in result.stdout

    by_address = {r.rcpt_tos[0]: r for r in smtp_server.messages}
    message = by_address["reader0003@example.org"].message
    assert message["From"] == "Clippings <clippings@example.org>"
    assert message["To"] == "Reader 3 <reader0003@example.org>"
    assert message["Subject"] == "Clippings, March 2026: a small test edition"
    assert message["Reply-To"] == "editor@example.org"
    assert message["Date"] and message["Message-ID"].endswith("@example.org>")
    assert message["List-Id"] == "Clippings <clippings.example.org>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = message["List-Unsubscribe"].strip("<>")
    assert link.startswith("https://example.org/unsubscribe/")
    claims = verify_token(TEST_SECRET, link.rsplit("/", 1)[1])
    assert (claims.address, claims.slug) == ("reader0003@example.org", "2026-03")
    assert message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    for part in message.iter_parts():
        assert link in part.get_content()
    # Every Message-ID is unique; no secret in any message.
    assert len({r.message["Message-ID"] for r in smtp_server.messages}) == 13
    assert all(TEST_SECRET.encode() not in r.data for r in smtp_server.messages)
    unicode_message = by_address["zoë@exämple.org"].message
    assert unicode_message["To"].addresses[0].display_name == "Zoë Ünïcode"


def test_a_550_for_one_recipient_does_not_stop_the_others_and_status_tells(
    run_digest: Run,
    smtp_server: SMTPTestServer,
    send_env: dict[str, str],
    tmp_path: Path,
    edition_file: Path,
) -> None:
    write_subscribers(tmp_path / "subscribers.csv", 6)
    # Not about the address (that one is suppressed at once, see the test below): retried later.
    smtp_server.handler.reject["reader0002@example.org"] = "550 5.7.1 Refused by policy"
    env = {**send_env, **smtp_server.env()}
    result = send(run_digest, env, "--yes")
    assert result.exit_code == 3, result.output
    assert "failed: reader0002@example.org: 550 5.7.1 Refused by policy" in result.stderr
    assert len(smtp_server.recipients()) == 5

    status = run_digest("status", EDITION, env=env)
    assert status.exit_code == 0
    assert "2026-03: 5 sent, 1 failed, 0 pending (of 6)" in status.stdout
    assert "reader0002@example.org: 550 5.7.1 Refused by policy" in status.stdout
    assert "failures" in status.stdout  # the run's outcome

    # A rerun sends nothing again and still says some failed; --retry-failed retries them.
    again = send(run_digest, env, "--yes")
    assert again.exit_code == 3
    assert "Nothing left to send" in again.stdout
    del smtp_server.handler.reject["reader0002@example.org"]
    retried = send(run_digest, env, "--yes", "--retry-failed")
    assert retried.exit_code == 0, retried.output
    assert smtp_server.recipients() == dict.fromkeys(subscriber_addresses(6), 1)


def test_an_unknown_user_is_suppressed_and_status_and_list_say_where_from(
    run_digest: Run,
    smtp_server: SMTPTestServer,
    send_env: dict[str, str],
    tmp_path: Path,
    edition_file: Path,
) -> None:
    write_subscribers(tmp_path / "subscribers.csv", 4)
    gone = "reader0001@example.org"
    smtp_server.handler.reject[gone] = f"550 5.1.1 <{gone}>: Recipient address rejected"
    env = {**send_env, **smtp_server.env()}
    assert send(run_digest, env, "--yes").exit_code == 3

    status = run_digest("status", EDITION, env=env)
    assert "suppressed through this edition: 1 bounced (smtp)" in status.stdout
    as_json = json.loads(run_digest("status", EDITION, "--json", env=env).stdout)
    assert as_json["suppressions"] == [{"reason": "bounced", "source": "smtp", "count": 1}]
    listed = run_digest("suppressions", "list", env=env)
    [line] = listed.stdout.splitlines()
    assert line.split()[1:4] == ["bounced", "smtp", gone]
    assert "edition 2026-03" in line and "5.1.1" in line

    # The next edition leaves the address out: no failure, exit 0.
    april = edition_file.with_name("2026-04.yaml")
    april.write_text(edition_file.read_text().replace("slug: 2026-03", "slug: 2026-04"))
    nxt = run_digest("send", str(april), "--subscribers", "subscribers.csv", "--yes", env=env)
    assert nxt.exit_code == 0, nxt.output
    assert "1 suppressed" in nxt.stdout
    assert smtp_server.handler.rcpt_attempts[gone] == 1


def test_max_retry_time_is_a_send_option(
    run_digest: Run,
    smtp_server: SMTPTestServer,
    send_env: dict[str, str],
    tmp_path: Path,
    edition_file: Path,
) -> None:
    write_subscribers(tmp_path / "subscribers.csv", 2)
    slow = "reader0000@example.org"
    smtp_server.handler.defer[slow] = (10_000, "450 4.7.1 Error: too much mail")
    env = {**send_env, **smtp_server.env()}
    result = send(run_digest, env, "--yes", "--max-retry-time", "0")
    assert result.exit_code == 3, result.output
    assert f"failed: {slow}: 450 4.7.1 Error: too much mail (after 1 attempt over" in (
        result.stderr
    )
    bad = send(run_digest, env, "--yes", "--max-retry-time", "soon")
    assert bad.exit_code == 2 and "--max-retry-time" in bad.output


def test_server_down_exits_4_with_a_resume_hint_then_rerun_completes(
    run_digest: Run, send_env: dict[str, str], tmp_path: Path, edition_file: Path
) -> None:
    write_subscribers(tmp_path / "subscribers.csv", 5)
    server = SMTPTestServer().start()
    env = {**send_env, **server.env()}
    port = server.port
    server.stop()
    down = send(run_digest, env, "--yes")
    assert down.exit_code == 4, down.output
    assert "cannot reach the SMTP server" in down.stderr
    assert "rerun the same command" in down.stderr
    assert "Traceback" not in down.output

    server.port = port
    server.start()
    try:
        up = send(run_digest, env, "--yes")
    finally:
        server.stop()
    assert up.exit_code == 0, up.output
    assert server.recipients() == dict.fromkeys(subscriber_addresses(5), 1)


def test_dry_run_writes_eml_files_and_touches_no_ledger(
    run_digest: Run, send_env: dict[str, str], tmp_path: Path, edition_file: Path
) -> None:
    write_subscribers(tmp_path / "subscribers.csv", 3)
    # No SMTP server at all: a dry run contacts none.
    env = {**send_env, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": "9", "SMTP_SECURITY": "none"}
    result = send(run_digest, env, "--dry-run")
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "outbox" / "2026-03").glob("*.eml"))
    assert [f.name for f in files] == [
        "000001-reader0000@example.org.eml",
        "000002-reader0001@example.org.eml",
        "000003-reader0002@example.org.eml",
    ]
    assert "outbox/2026-03/" in result.stdout
    assert not (tmp_path / ".digest").exists()
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["To"] == "Reader 0 <reader0000@example.org>"
    assert all(TEST_SECRET.encode() not in f.read_bytes() for f in files)
    assert not list((tmp_path / "outbox" / "2026-03").glob(".*.tmp"))

    elsewhere = send(run_digest, env, "--dry-run", "--outbox", "proofs", "--limit", "1")
    assert elsewhere.exit_code == 0
    assert len(list((tmp_path / "proofs").glob("*.eml"))) == 1


def test_test_sends_one_proof_and_records_nothing(
    run_digest: Run,
    smtp_server: SMTPTestServer,
    send_env: dict[str, str],
    tmp_path: Path,
    edition_file: Path,
) -> None:
    write_subscribers(tmp_path / "subscribers.csv", 5)
    env = {**send_env, **smtp_server.env()}
    result = send(run_digest, env, "--test", "me@example.org")
    assert result.exit_code == 0, result.output
    assert smtp_server.recipients() == {"me@example.org": 1}
    assert "Proof sent to me@example.org" in result.stdout
    status = run_digest("status", EDITION, env=env)
    assert "nothing sent yet" in status.stdout
    bad = send(run_digest, env, "--test", "not an address")
    assert bad.exit_code == 2


def test_without_a_terminal_a_real_send_needs_yes(
    run_digest: Run,
    smtp_server: SMTPTestServer,
    send_env: dict[str, str],
    tmp_path: Path,
    edition_file: Path,
) -> None:
    write_subscribers(tmp_path / "subscribers.csv", 3)
    result = send(run_digest, {**send_env, **smtp_server.env()})
    assert result.exit_code == 1
    assert "add --yes" in result.stderr
    assert smtp_server.messages == []
    assert "nothing sent yet" in run_digest("status", "2026-03", env=send_env).stdout


def test_limit_then_rerun_sends_the_rest(
    run_digest: Run,
    smtp_server: SMTPTestServer,
    send_env: dict[str, str],
    tmp_path: Path,
    edition_file: Path,
) -> None:
    write_subscribers(tmp_path / "subscribers.csv", 7)
    env = {**send_env, **smtp_server.env()}
    first = send(run_digest, env, "--yes", "--limit", "3")
    assert first.exit_code == 0
    assert len(smtp_server.recipients()) == 3
    assert "4 over --limit" in first.stdout
    with Ledger(tmp_path / ".digest") as ledger:
        # All three enqueued rows are sent, yet the edition is not finished: --due must resume.
        assert ledger.summary("2026-03").pending == 0
        assert not ledger.is_finished("2026-03")
    rest = send(run_digest, env, "--yes", "--rate", "50")
    assert rest.exit_code == 0
    assert smtp_server.recipients() == dict.fromkeys(subscriber_addresses(7), 1)
    assert "3 already sent" in rest.stdout
    with Ledger(tmp_path / ".digest") as ledger:
        assert ledger.is_finished("2026-03")


def test_bad_input_exits_1_with_the_place_and_sends_nothing(
    run_digest: Run,
    smtp_server: SMTPTestServer,
    send_env: dict[str, str],
    tmp_path: Path,
    edition_file: Path,
) -> None:
    write_subscribers(tmp_path / "subscribers.csv", 2)
    env = {**send_env, **smtp_server.env()}
    broken = tmp_path / "content" / "broken.yaml"
    broken.write_text(
        textwrap.dedent(
            """\
            newsletter: Clippings
            edition: March 2026
            subject: Hi
            sections:
              - title: Papers
                items:
                  - title: A
                    url: ftp://example.org/a
            """
        ),
        encoding="utf-8",
    )
    bad_edition = run_digest(
        "send", str(broken), "--subscribers", "subscribers.csv", "--yes", env=env
    )
    assert bad_edition.exit_code == 1
    assert "broken.yaml:8:" in bad_edition.stderr

    no_sender = {k: v for k, v in env.items() if k != "DIGEST_FROM"}
    missing = send(run_digest, no_sender, "--yes")
    assert missing.exit_code == 1
    assert "DIGEST_FROM" in missing.stderr

    no_file = run_digest("send", EDITION, "--subscribers", "nope.csv", "--yes", env=env)
    assert no_file.exit_code == 1
    assert "nope.csv" in no_file.stderr
    assert smtp_server.messages == []
    assert all("Traceback" not in r.output for r in (bad_edition, missing, no_file))


def test_status_counts_the_suppressed_and_the_edition_s_unsubscribes(
    run_digest: Run,
    smtp_server: SMTPTestServer,
    send_env: dict[str, str],
    tmp_path: Path,
    edition_file: Path,
) -> None:
    # Issue 7: `digest status` shows delivered / failed / suppressed counts per edition.
    write_subscribers(tmp_path / "subscribers.csv", 4)
    env = {**send_env, **smtp_server.env()}
    assert run_digest("suppressions", "add", "reader0001@example.org", env=env).exit_code == 0
    token = make_token(TEST_SECRET, "reader0002@example.org", "2026-03")
    assert run_digest("unsubscribe", token, env=env).exit_code == 0
    assert send(run_digest, env, "--yes").exit_code == 0
    assert len(smtp_server.recipients()) == 2

    status = run_digest("status", EDITION, env=env)
    assert "2026-03: 2 sent, 0 failed, 0 pending (of 2)" in status.stdout
    assert (
        "suppressed: 2 of the list left out at the last run; "
        "1 unsubscribed through this edition's links" in status.stdout
    )
    as_json = json.loads(run_digest("status", EDITION, "--json", env=env).stdout)
    assert (as_json["suppressed"], as_json["unsubscribed_from_edition"]) == (2, 1)


def test_a_suppression_typed_with_a_unicode_domain_leaves_that_subscriber_out(
    run_digest: Run, send_env: dict[str, str], tmp_path: Path, edition_file: Path
) -> None:
    # The list reads user@bücher.de as user@xn--bcher-kva.de; the curator types the Unicode.
    write_subscribers(
        tmp_path / "subscribers.csv",
        2,
        extra_rows="""\
            leser@bücher.de,Leser,subscribed,Berlin
            autorin@bücher.de,Autorin,subscribed,Berlin
        """,
    )
    added = run_digest("suppressions", "add", "Leser@BÜCHER.de", env=send_env)
    assert added.exit_code == 0, added.output

    result = send(run_digest, send_env, "--backend", "outbox", "--yes")

    assert result.exit_code == 0, result.output
    assert "1 suppressed" in result.stdout
    written = sorted(path.name for path in (tmp_path / "outbox" / "2026-03").glob("*.eml"))
    recipients = [name.split("-", 1)[1].removesuffix(".eml") for name in written]
    assert sorted(recipients) == [
        "autorin@xn--bcher-kva.de",
        "reader0000@example.org",
        "reader0001@example.org",
    ]


def test_an_unknown_backend_is_a_usage_error_from_the_option_a_setting_error_from_env(
    run_digest: Run, send_env: dict[str, str], tmp_path: Path, edition_file: Path
) -> None:
    write_subscribers(tmp_path / "subscribers.csv", 2)

    option = send(run_digest, send_env, "--backend", "nope", "--yes")
    assert option.exit_code == 2
    assert "'--backend': unknown backend 'nope' (installed: " in option.stderr
    assert "DIGEST_BACKEND" not in option.output

    setting = send(run_digest, {**send_env, "DIGEST_BACKEND": "nope"}, "--yes")
    assert setting.exit_code == 1
    assert "environment: DIGEST_BACKEND: unknown backend 'nope' (installed: " in setting.stderr
    assert "nothing was sent" in setting.stderr
    assert not (tmp_path / "outbox").exists()


def test_a_list_of_only_invalid_rows_stops_the_send_but_only_unsubscribed_sends_nothing(
    run_digest: Run, send_env: dict[str, str], tmp_path: Path, edition_file: Path
) -> None:
    (tmp_path / "subscribers.csv").write_text(
        "email,name\nnot-an-address,Ada\nalso@@wrong,Grace\n", encoding="utf-8"
    )
    broken = send(run_digest, send_env, "--backend", "outbox", "--yes")
    assert broken.exit_code == 1
    assert "subscribers.csv: no usable subscriber row: all 2 rows are invalid" in broken.stderr
    assert "subscribers.csv:2:1: email:" in broken.stderr  # and why, row by row
    assert "Sent" not in broken.stdout
    assert not list(tmp_path.glob("outbox/*/*.eml"))

    (tmp_path / "subscribers.csv").write_text(
        "email,status\nada@example.org,unsubscribed\ngrace@example.org,complained\n",
        encoding="utf-8",
    )
    left = send(run_digest, send_env, "--backend", "outbox", "--yes")
    assert left.exit_code == 0, left.output
    assert "Nothing left to send." in left.stdout
    assert not list(tmp_path.glob("outbox/*/*.eml"))


def test_a_proof_to_a_server_never_reached_says_which_settings_and_claims_nothing(
    run_digest: Run, send_env: dict[str, str], tmp_path: Path, edition_file: Path
) -> None:
    write_subscribers(tmp_path / "subscribers.csv", 2)
    server = SMTPTestServer().start()
    env = {**send_env, **server.env()}
    port = server.port
    server.stop()  # the curator's SMTP_PORT points at nothing
    result = send(run_digest, env, "--test", "me@example.org")
    assert result.exit_code == 4, result.output
    assert "cannot reach the SMTP server" in result.stderr
    assert (
        f"hint: check SMTP_HOST, SMTP_PORT and SMTP_SECURITY in environment (now "
        f"127.0.0.1:{port}, SMTP_SECURITY=none;" in result.stderr
    )
    # A proof is sent again, never "resumed"; and it was not sent, so no line says it was.
    assert "resume" not in result.output
    assert "Proof sent" not in result.output and "Nothing left to send" not in result.output


def test_without_a_terminal_the_hint_is_the_same_command_with_yes(
    run_digest: Run,
    smtp_server: SMTPTestServer,
    send_env: dict[str, str],
    tmp_path: Path,
    edition_file: Path,
) -> None:
    write_subscribers(tmp_path / "subscribers.csv", 2)
    result = run_digest(
        "send", EDITION, "--subscribers", "subscribers.csv", "--rate", "5",
        env={**send_env, **smtp_server.env()},
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "hint: add --yes to send without asking: digest send content/2026-03.yaml "
        "--subscribers subscribers.csv --rate 5 --yes"
    )
    assert smtp_server.messages == []


def test_a_rerun_after_everything_was_sent_says_so_in_two_lines(
    run_digest: Run,
    smtp_server: SMTPTestServer,
    send_env: dict[str, str],
    tmp_path: Path,
    edition_file: Path,
) -> None:
    write_subscribers(tmp_path / "subscribers.csv", 3)
    env = {**send_env, **smtp_server.env()}
    assert send(run_digest, env, "--yes").exit_code == 0
    again = send(run_digest, env, "--yes")
    assert again.exit_code == 0
    assert again.stdout.splitlines() == ["Nothing left to send.", "Skipped: 3 already sent."]
    assert len(smtp_server.messages) == 3


def test_status_of_a_folder_or_a_slug_typo_is_pointed_out(
    run_digest: Run,
    smtp_server: SMTPTestServer,
    send_env: dict[str, str],
    tmp_path: Path,
    edition_file: Path,
) -> None:
    write_subscribers(tmp_path / "subscribers.csv", 2)
    assert send(run_digest, send_env | smtp_server.env(), "--yes").exit_code == 0
    folder = run_digest("status", "content/", env=send_env)
    assert folder.exit_code == 1
    assert folder.stderr.startswith("content/: is a folder, not an edition file")
    assert "hint: name one edition file, e.g. content/2026-03.yaml" in folder.stderr
    typo = run_digest("status", "2026-3", env=send_env)
    assert typo.exit_code == 0
    assert typo.stdout == "2026-3: nothing sent yet.\n"
    assert typo.stderr == "The ledger knows: 2026-03.\n"
    assert run_digest("status", "no such edition", env=send_env).exit_code == 1


def test_status_with_failures_names_the_command_that_retries_them(
    run_digest: Run,
    smtp_server: SMTPTestServer,
    send_env: dict[str, str],
    tmp_path: Path,
    edition_file: Path,
) -> None:
    write_subscribers(tmp_path / "subscribers.csv", 3)
    smtp_server.handler.reject["reader0001@example.org"] = "550 5.1.1 User unknown"
    assert send(run_digest, send_env | smtp_server.env(), "--yes").exit_code == 3
    status = run_digest("status", EDITION, env=send_env)
    assert status.stdout.splitlines()[-1] == (
        "To try the failed ones again: digest send content/2026-03.yaml --subscribers CSV "
        "--retry-failed"
    )


@pytest.mark.parametrize(
    "extra",
    [
        ["--yes"],  # cron, CI: the list is read once, as it is sent
        ["--yes", "--strict"],  # checked first: a bad row stops the send before anything goes
    ],
)
def test_a_send_without_confirmation_reads_the_list_once_and_reports_it_after(
    run_digest: Run,
    send_env: dict[str, str],
    tmp_path: Path,
    edition_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
) -> None:
    import digest.audience.subscribers as subscribers

    opened: list[Path] = []
    real_read = subscribers.read_subscribers

    def counted_read(path: Path, report: SubscriberReport) -> Iterator[Subscriber]:
        opened.append(path)
        return real_read(path, report)

    monkeypatch.setattr(subscribers, "read_subscribers", counted_read)
    write_subscribers(tmp_path / "subscribers.csv", 3, extra_rows="not-an-address,Nobody\n")

    result = send(run_digest, send_env, "--backend", "outbox", *extra)

    assert len(opened) == 1  # never counted first, then read again
    if "--strict" in extra:
        assert result.exit_code == 1
        assert not list(tmp_path.glob("outbox/*/*.eml"))
    else:
        assert result.exit_code == 0, result.output
        assert len(list(tmp_path.glob("outbox/*/*.eml"))) == 3
        # Told after the run: the list's counts.
        assert "subscribers.csv: 4 rows: 3 to send, 1 invalid row skipped" in result.stderr
    assert "subscribers.csv:5:1: email:" in result.stderr  # the bad row, with its line
