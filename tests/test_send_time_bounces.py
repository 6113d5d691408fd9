"""Refusals at send time (issue 14), through the real engine: an unknown user is suppressed at
once, soft bounces in three editions in a row suppress, throttling slows the run instead of
failing it, attempts are counted once, and a stopped run counts everything still to send.
Against aiosmtpd on 127.0.0.1 (the shared ``SMTPTestServer``), with the real ledger and the real
suppression store. The rules on their own are tested in test_refusal_rules.py."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import TEST_SECRET
from smtp_server import FaultyHandler, SMTPTestServer

from digest.audience.subscribers import Subscriber
from digest.audience.suppressions import SuppressionStore
from digest.backends.smtp import SMTPBackend
from digest.edition.load import load_edition
from digest.errors import SendStopped
from digest.ledger import Ledger
from digest.render.email import render_edition
from digest.retry import RetryPolicy
from digest.send.campaign import Campaign, RunResult, SendOptions
from digest.send.message import MessageFactory
from digest.settings import Settings, load_settings

FAST = RetryPolicy(backoff=0.02, max_backoff=0.1)


def people(count: int) -> list[Subscriber]:
    return [
        Subscriber(email=f"reader{n:04d}@example.org", name=f"Reader {n}", fields={}, line=n + 2)
        for n in range(count)
    ]


def settings_for(server: SMTPTestServer, state: Path) -> Settings:
    return load_settings(
        {
            **server.env(),
            "DIGEST_FROM": "Clippings <clippings@example.org>",
            "DIGEST_SECRET": TEST_SECRET,
            "DIGEST_UNSUBSCRIBE_URL": "https://example.org/unsubscribe/{token}",
            "DIGEST_STATE_DIR": str(state),
        },
        env_file=None,
    )


def send(
    server: SMTPTestServer,
    state: Path,
    edition_file: Path,
    recipients: Sequence[Subscriber],
    *,
    retry: RetryPolicy = FAST,
    **options: object,
) -> RunResult:
    """One run of one edition (the edition file's slug) through the real engine."""
    settings = settings_for(server, state)
    rendered = render_edition(load_edition(edition_file))
    with Ledger(settings.state_dir) as ledger, SuppressionStore(settings.state_dir) as store:
        campaign = Campaign(
            messages=MessageFactory(rendered, settings),
            backend=SMTPBackend(settings),
            recipients=recipients,
            ledger=ledger,
            suppressions=store,
            options=SendOptions(retry=retry, **options),  # type: ignore[arg-type]
        )
        return asyncio.run(campaign.run())


def edition_copy(edition_file: Path, slug: str) -> Path:
    """The test edition under another slug: the next month's edition."""
    copy = edition_file.with_name(f"{slug}.yaml")
    text = edition_file.read_text(encoding="utf-8").replace("slug: 2026-03", f"slug: {slug}")
    copy.write_text(text, encoding="utf-8")
    return copy


# -- 1. an unknown user at RCPT time is suppressed at once ---------------------------------------


def test_unknown_user_is_suppressed_at_once_and_the_next_edition_skips_it(
    tmp_path: Path, edition_file: Path
) -> None:
    gone = "reader0001@example.org"
    handler = FaultyHandler(reject={gone: f"550 5.1.1 <{gone}>: Recipient address rejected"})
    state = tmp_path / ".digest"
    with SMTPTestServer(handler) as server:
        first = send(server, state, edition_file, people(4))
        assert (first.sent, first.failed) == (3, 1)
        with SuppressionStore(state) as store:
            item = store.get(gone)
            assert item is not None
            assert (item.reason, item.source, item.slug) == ("bounced", "smtp", "2026-03")
            assert "5.1.1" in (item.note or "")
            assert store.count() == 1  # only the refused address
        second = send(server, state, edition_copy(edition_file, "2026-04"), people(4))
    assert (second.sent, second.failed) == (3, 0)
    assert second.skipped["suppressed"] == 1
    assert handler.rcpt_attempts[gone] == 1  # never tried again


def test_a_refusal_that_is_not_about_the_address_suppresses_no_one(
    tmp_path: Path, edition_file: Path
) -> None:
    handler = FaultyHandler(reject={"reader0000@example.org": "550 5.7.1 Message refused: spam"})
    state = tmp_path / ".digest"
    with SMTPTestServer(handler) as server:
        result = send(server, state, edition_file, people(2))
    assert result.failed == 1
    with SuppressionStore(state) as store:
        assert store.count() == 0


# -- 2. soft bounces in three editions in a row --------------------------------------------------


def test_soft_bounces_in_three_editions_in_a_row_suppress(
    tmp_path: Path, edition_file: Path
) -> None:
    full = "reader0000@example.org"
    handler = FaultyHandler(defer={full: (10_000, "452 4.2.2 Mailbox full")})
    state = tmp_path / ".digest"
    twice = FAST.refined(attempts=2)
    with SMTPTestServer(handler) as server:
        for month in ("2026-04", "2026-05"):
            result = send(server, state, edition_copy(edition_file, month), people(2), retry=twice)
            assert result.failed == 1
            with SuppressionStore(state) as store:
                assert not store.contains(full)  # one or two editions: not yet
        send(server, state, edition_copy(edition_file, "2026-06"), people(2), retry=twice)
        with SuppressionStore(state) as store:
            item = store.get(full)
            assert item is not None
            assert (item.reason, item.source, item.slug) == ("soft-bounced", "smtp", "2026-06")
            assert store.get("reader0001@example.org") is None
        fourth = send(server, state, edition_copy(edition_file, "2026-07"), people(2))
    assert fourth.skipped["suppressed"] == 1


def test_a_delivered_edition_between_soft_bounces_breaks_the_row(
    tmp_path: Path, edition_file: Path
) -> None:
    full = "reader0000@example.org"
    state = tmp_path / ".digest"
    twice = FAST.refined(attempts=2)
    for month, refuses in (("2026-04", True), ("2026-05", True), ("2026-06", False)):
        handler = FaultyHandler(defer={full: (10_000, "452 4.2.2 Mailbox full")} if refuses else {})
        with SMTPTestServer(handler) as server:
            send(server, state, edition_copy(edition_file, month), people(2), retry=twice)
    handler = FaultyHandler(defer={full: (10_000, "452 4.2.2 Mailbox full")})
    with SMTPTestServer(handler) as server:
        send(server, state, edition_copy(edition_file, "2026-07"), people(2), retry=twice)
    with SuppressionStore(state) as store:
        assert not store.contains(full)  # 04, 05 bounced, 06 delivered, 07 bounced: no row of 3


# -- 4. throttling slows the run down, never fails before max-retry-time -------------------------


def test_throttling_is_retried_past_the_attempts_and_counted_once_per_attempt(
    tmp_path: Path, edition_file: Path
) -> None:
    slow = "reader0002@example.org"
    handler = FaultyHandler(defer={slow: (8, "450 4.7.1 Error: too much mail from 127.0.0.1")})
    state = tmp_path / ".digest"
    with SMTPTestServer(handler) as server:
        result = send(
            server, state, edition_file, people(6), concurrency=3, retry=FAST.refined(attempts=3)
        )
    assert (result.sent, result.failed) == (6, 0)  # 8 refusals > 3 attempts: still delivered
    assert handler.rcpt_attempts[slow] == 9
    with Ledger(state) as ledger:
        rows = ledger._read("SELECT attempts FROM deliveries WHERE address_key = ?", (slow,))
    assert rows == [(9,)]  # the attempts column, as `digest status` shows it


def test_throttling_fails_only_after_max_retry_time_with_attempts_counted_once(
    tmp_path: Path, edition_file: Path
) -> None:
    slow = "reader0000@example.org"
    handler = FaultyHandler(defer={slow: (10_000, "451 4.7.1 Try again later")})
    state = tmp_path / ".digest"
    with SMTPTestServer(handler) as server:
        policy = FAST.refined(attempts=2, max_retry_time=0.6)
        result = send(server, state, edition_file, people(2), retry=policy)
        tried = handler.rcpt_attempts[slow]
    assert result.sent == 1
    assert tried > 2  # not stopped by the attempts
    [(address, error)] = result.failures
    assert address == slow
    assert error.startswith(f"451 4.7.1 Try again later (after {tried} attempts over ")
    with Ledger(state) as ledger:
        summary = ledger.summary("2026-03")
    assert summary.failures == [(slow, tried, error)]  # the ledger counts the same attempts


def test_a_421_halves_the_connections_and_everyone_still_gets_the_edition(
    tmp_path: Path, edition_file: Path
) -> None:
    handler = FaultyHandler(
        defer={f"reader{n:04d}@example.org": (1, "421 4.7.0 Too many connections") for n in (0, 1)}
    )
    state = tmp_path / ".digest"
    with SMTPTestServer(handler) as server:
        settings = settings_for(server, state)
        with Ledger(state) as ledger, SuppressionStore(state) as store:
            campaign = Campaign(
                messages=MessageFactory(render_edition(load_edition(edition_file)), settings),
                backend=SMTPBackend(settings),
                recipients=people(300),
                ledger=ledger,
                suppressions=store,
                options=SendOptions(concurrency=4, retry=FAST),
            )
            result = asyncio.run(campaign.run())
    assert (result.sent, result.failed) == (300, 0)
    assert campaign.pacing.throttles >= 1
    assert campaign.pacing.limit < 4  # halved (growing back waits for calm: test_refusal_rules)
    assert server.recipients() == {p.email: 1 for p in people(300)}


# -- 5. a stopped run counts what is left in the whole list --------------------------------------


def test_a_stopped_run_counts_everything_left_in_the_list(
    tmp_path: Path, edition_file: Path
) -> None:
    state = tmp_path / ".digest"
    server = SMTPTestServer(FaultyHandler()).start()
    recipients = people(1_400)
    settings = settings_for(server, state)
    rendered = render_edition(load_edition(edition_file))

    def stop_after_some() -> None:
        if len(server.messages) >= 50:
            server.stop()

    with Ledger(state) as ledger, SuppressionStore(state) as store:
        campaign = Campaign(
            messages=MessageFactory(rendered, settings),
            backend=SMTPBackend(settings),
            recipients=recipients,
            ledger=ledger,
            suppressions=store,
            options=SendOptions(
                concurrency=2, chunk_size=100, retry=FAST.refined(attempts=2, outage=0.2)
            ),
            on_progress=lambda progress: stop_after_some(),
        )
        with pytest.raises(SendStopped):
            asyncio.run(campaign.run())
    result = campaign.result
    assert result.sent >= 50
    assert result.left_pending == 1_400 - result.sent - result.failed
