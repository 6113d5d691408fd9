"""The sending engine, with the real SMTP backend against a real SMTP server on 127.0.0.1, the
real ledger in tmp_path and the real message factory. Only the rate test uses a recording
backend, because it measures the engine's own timing."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import TEST_SECRET
from smtp_server import FaultyHandler, SMTPTestServer

from digest.audience.subscribers import Subscriber
from digest.audience.suppressions import SuppressionStore
from digest.backends.base import (
    Backend,
    CampaignInfo,
    DeliveryResult,
    DeliveryStatus,
    OutgoingMessage,
)
from digest.backends.smtp import SMTPBackend
from digest.edition.load import load_edition
from digest.errors import SendStopped
from digest.ledger import Ledger
from digest.render.email import render_edition
from digest.retry import RetryPolicy
from digest.send.campaign import (
    SKIP_ALREADY_SENT,
    SKIP_FAILED_BEFORE,
    SKIP_OVER_LIMIT,
    SKIP_SUPPRESSED,
    Campaign,
    CircuitBreaker,
    RateLimiter,
    RunResult,
    SendOptions,
    plan_campaign,
)
from digest.send.message import MessageFactory
from digest.settings import Settings, load_settings

FAST = RetryPolicy(backoff=0.02, max_backoff=0.1)


def people(count: int) -> list[Subscriber]:
    return [
        Subscriber(email=f"reader{n:04d}@example.org", name=f"Reader {n}", fields={}, line=n + 2)
        for n in range(count)
    ]


def settings_for(server: SMTPTestServer, tmp_path: Path) -> Settings:
    return load_settings(
        {
            **server.env(),
            "DIGEST_FROM": "Clippings <clippings@example.org>",
            "DIGEST_SECRET": TEST_SECRET,
            "DIGEST_UNSUBSCRIBE_URL": "https://example.org/unsubscribe/{token}",
            "DIGEST_STATE_DIR": str(tmp_path / ".digest"),
        },
        env_file=None,
    )


def run(
    server: SMTPTestServer,
    tmp_path: Path,
    edition_file: Path,
    recipients: Sequence[Subscriber],
    *,
    record: bool = True,
    retry: RetryPolicy = FAST,
    **options: object,
) -> RunResult:
    settings = settings_for(server, tmp_path)
    rendered = render_edition(load_edition(edition_file))
    ledger = Ledger(settings.state_dir) if record else None
    store = SuppressionStore(settings.state_dir)
    try:
        campaign = Campaign(
            messages=MessageFactory(rendered, settings),
            backend=SMTPBackend(settings),
            recipients=recipients,
            ledger=ledger,
            suppressions=store,
            options=SendOptions(retry=retry, **options),  # type: ignore[arg-type]
        )
        return asyncio.run(campaign.run())
    finally:
        store.close()
        if ledger is not None:
            ledger.close()


def ledger_summary(tmp_path: Path):  # type: ignore[no-untyped-def]
    with Ledger(tmp_path / ".digest") as ledger:
        return ledger.summary("2026-03")


def test_everyone_gets_one_message_over_few_connections(
    smtp_server: SMTPTestServer, tmp_path: Path, edition_file: Path
) -> None:
    result = run(smtp_server, tmp_path, edition_file, people(40), concurrency=4)
    assert (result.sent, result.failed, result.outcome) == (40, 0, "done")
    assert smtp_server.recipients() == {p.email: 1 for p in people(40)}
    assert smtp_server.connections <= 4
    summary = ledger_summary(tmp_path)
    assert (summary.sent, summary.pending, summary.failed) == (40, 0, 0)
    assert summary.runs[-1].outcome == "done"


def test_deferred_and_dropped_are_retried_and_550_fails_alone(
    tmp_path: Path, edition_file: Path
) -> None:
    handler = FaultyHandler(
        reject={"reader0001@example.org": "550 5.1.1 <reader0001@example.org>: no such user"},
        defer={
            "reader0002@example.org": (2, "451 4.7.1 Greylisted, try again"),
            "reader0003@example.org": (1, "421 4.3.2 Too busy, closing"),
        },
        drop_data={"reader0004@example.org": 1},
    )
    with SMTPTestServer(handler) as server:
        result = run(server, tmp_path, edition_file, people(8), concurrency=2)
        received = server.recipients()
    assert result.failed == 1
    assert result.sent == 7
    assert result.failures == [
        ("reader0001@example.org", "550 5.1.1 <reader0001@example.org>: no such user")
    ]
    assert set(received) == {p.email for p in people(8)} - {"reader0001@example.org"}
    assert set(received.values()) == {1}
    summary = ledger_summary(tmp_path)
    assert summary.failures == [
        ("reader0001@example.org", 1, "550 5.1.1 <reader0001@example.org>: no such user")
    ]


def test_attempts_are_bounded_then_failed_with_the_last_reply(
    tmp_path: Path, edition_file: Path
) -> None:
    handler = FaultyHandler(defer={"reader0000@example.org": (99, "452 4.2.2 Mailbox full")})
    with SMTPTestServer(handler) as server:
        result = run(server, tmp_path, edition_file, people(3), retry=FAST.refined(attempts=3))
        assert handler.rcpt_attempts["reader0000@example.org"] == 3
    assert result.sent == 2
    assert result.failures == [
        ("reader0000@example.org", "452 4.2.2 Mailbox full (after 3 attempts)")
    ]


def test_server_down_mid_run_stops_with_resume_hint_and_rerun_completes(
    tmp_path: Path, edition_file: Path
) -> None:
    server = SMTPTestServer(FaultyHandler()).start()
    port = server.port
    # The server goes away after 10 messages, as a crashed or restarted server would.
    original = server.handler.handle_DATA

    async def data_then_crash(*args: object) -> str:
        reply = await original(*args)  # type: ignore[arg-type]
        if len(server.handler.messages) == 10:
            threading.Thread(target=server.stop).start()
        return reply

    server.handler.handle_DATA = data_then_crash  # type: ignore[method-assign]
    with pytest.raises(SendStopped) as caught:
        run(
            server,
            tmp_path,
            edition_file,
            people(30),
            concurrency=2,
            breaker_failures=3,
            retry=FAST.refined(outage=0.3),
        )
    assert caught.value.exit_code == 4
    assert "rerun" in (caught.value.hint or "")
    first = server.recipients()
    summary = ledger_summary(tmp_path)
    assert summary.sent == len(first) >= 10
    assert summary.pending == 30 - summary.sent
    assert summary.runs[-1].outcome == "stopped"

    time.sleep(0.2)
    server.handler = FaultyHandler()
    server.port = port
    server.start()
    try:
        result = run(server, tmp_path, edition_file, people(30), concurrency=2)
    finally:
        server.stop()
    assert result.sent == 30 - len(first)
    assert result.skipped[SKIP_ALREADY_SENT] == len(first)
    everyone = {p.email for p in people(30)}
    assert set(first) | set(server.recipients()) == everyone
    assert not set(first) & set(server.recipients())  # the stop lost no record: no duplicate


def test_a_limit_run_stops_reading_at_the_limit_and_counts_the_rest_after_the_sends(
    smtp_server: SMTPTestServer, tmp_path: Path, edition_file: Path
) -> None:
    """Past --limit the rest of a long list (several chunks) is only counted for the summary,
    after the sends; suppressed and already-sent rows there are told apart as before."""
    with SuppressionStore(tmp_path / ".digest") as store:
        store.add("reader1100@example.org", "unsubscribed", "test")
    first = run(smtp_server, tmp_path, edition_file, people(1_200), limit=3)
    assert first.sent == 3
    assert first.skipped == {SKIP_OVER_LIMIT: 1_196, SKIP_SUPPRESSED: 1}
    assert ledger_summary(tmp_path).total == 3

    again = run(smtp_server, tmp_path, edition_file, people(1_200), limit=1_000)
    assert again.sent == 1_000
    assert again.skipped == {SKIP_ALREADY_SENT: 3, SKIP_OVER_LIMIT: 196, SKIP_SUPPRESSED: 1}
    assert len(smtp_server.recipients()) == 1_003


def test_limit_suppressions_retry_failed_and_no_ledger(
    smtp_server: SMTPTestServer, tmp_path: Path, edition_file: Path
) -> None:
    with SuppressionStore(tmp_path / ".digest") as store:
        store.add("Reader0005@example.org", "unsubscribed", "test")
    first = run(smtp_server, tmp_path, edition_file, people(10), limit=4)
    assert first.sent == 4
    assert first.skipped == {SKIP_OVER_LIMIT: 5, SKIP_SUPPRESSED: 1}
    assert ledger_summary(tmp_path).total == 4  # only what this run took on is pending/sent

    smtp_server.handler.reject["reader0009@example.org"] = "550 5.7.1 Rejected"
    second = run(smtp_server, tmp_path, edition_file, people(10))
    assert (second.sent, second.failed) == (4, 1)
    assert second.skipped == {SKIP_ALREADY_SENT: 4, SKIP_SUPPRESSED: 1}

    third = run(smtp_server, tmp_path, edition_file, people(10))
    assert third.sent == 0
    assert third.skipped[SKIP_FAILED_BEFORE] == 1

    del smtp_server.handler.reject["reader0009@example.org"]
    fourth = run(smtp_server, tmp_path, edition_file, people(10), retry_failed=True)
    assert (fourth.sent, fourth.failed) == (1, 0)
    assert smtp_server.recipients()["reader0005@example.org"] == 0
    assert set(smtp_server.recipients().values()) == {1}
    assert ledger_summary(tmp_path).sent == 9

    # Without a ledger (dry runs, proofs) nothing is recorded and nothing is skipped as sent.
    fifth = run(smtp_server, tmp_path, edition_file, people(2), record=False)
    assert fifth.sent == 2
    assert ledger_summary(tmp_path).sent == 9


def test_stop_request_finishes_in_flight_and_records_it(tmp_path: Path, edition_file: Path) -> None:
    with SMTPTestServer(FaultyHandler(data_delay=0.02)) as server:
        settings = settings_for(server, tmp_path)
        messages = MessageFactory(render_edition(load_edition(edition_file)), settings)
        with Ledger(settings.state_dir) as ledger:
            campaign = Campaign(
                messages=messages,
                backend=SMTPBackend(settings),
                recipients=people(50),
                ledger=ledger,
                options=SendOptions(concurrency=3),
            )
            campaign.on_progress = lambda p: p.sent >= 5 and campaign.request_stop()
            with pytest.raises(SendStopped, match="interrupted"):
                asyncio.run(campaign.run())
            summary = ledger.summary("2026-03")
        received = server.recipients()
    # Every message the server accepted is recorded: a graceful stop loses nothing.
    assert summary.sent == len(received) == campaign.result.sent
    assert 5 <= summary.sent < 50
    assert summary.pending == 50 - summary.sent


def test_plan_counts_without_writing(
    smtp_server: SMTPTestServer, tmp_path: Path, edition_file: Path
) -> None:
    run(smtp_server, tmp_path, edition_file, people(3))
    with Ledger(tmp_path / ".digest") as ledger:
        plan = plan_campaign(
            people(10),
            slug="2026-03",
            ledger=ledger,
            suppressions=None,
            options=SendOptions(limit=5),
        )
        assert ledger.summary("2026-03").total == 3
    assert plan.to_send == 5
    assert plan.skipped == {SKIP_ALREADY_SENT: 3, SKIP_OVER_LIMIT: 2}


# -- rate, backoff, breaker --------------------------------------------------------------------


class RecordingBackend(Backend):
    """Accepts everything and notes when: the engine's pacing, measured without a network."""

    name = "recording"
    batch_size = 1

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.times: list[float] = []

    async def open(self, campaign: CampaignInfo) -> None:
        return None

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        self.times.append(time.monotonic())
        return [DeliveryResult(m.address, DeliveryStatus.SENT, provider_id="x") for m in messages]

    async def close(self) -> None:
        return None


def test_rate_is_smooth_not_bursty(tmp_path: Path, edition_file: Path) -> None:
    settings = load_settings(
        {
            "DIGEST_FROM": "C <c@example.org>",
            "DIGEST_SECRET": "s" * 32,
            "DIGEST_UNSUBSCRIBE_URL": "https://example.org/u/{token}",
        },
        env_file=None,
    )
    backend = RecordingBackend(settings)
    campaign = Campaign(
        messages=MessageFactory(render_edition(load_edition(edition_file)), settings),
        backend=backend,
        recipients=people(8),
        ledger=None,
        options=SendOptions(concurrency=4, rate=20.0),
    )
    asyncio.run(campaign.run())
    gaps = [b - a for a, b in zip(backend.times, backend.times[1:], strict=False)]
    assert len(backend.times) == 8
    # 20/s is one message every 50 ms, even with four workers ready at once (a burst would
    # show gaps near zero; the event loop's own wake-up jitter is a few ms).
    assert min(gaps) >= 0.025
    assert backend.times[-1] - backend.times[0] >= 7 * 0.05 * 0.9


def test_rate_limiter_spaces_slots() -> None:
    now = [100.0]
    limiter = RateLimiter(2.5, clock=lambda: now[0])
    assert [limiter.reserve() for _ in range(4)] == pytest.approx([0.0, 0.4, 0.8, 1.2])
    now[0] = 110.0  # idle for a while: no burst credit is saved up
    assert [limiter.reserve() for _ in range(2)] == pytest.approx([0.0, 0.4])
    assert RateLimiter(None).reserve(1000) == 0.0


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    policy = RetryPolicy(backoff=1.0, max_backoff=8.0)
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)):
        delays = [policy.delay(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1
    assert policy.delay(1, retry_after=30.0) == 30.0
    assert policy.delay(1, retry_after=300.0) == 40.0  # a server's wait, capped at 5 x 8 s
    steady = policy.refined(jitter=0.0)
    assert [steady.delay(n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]


def test_retry_policy_from_the_command_line_spec() -> None:
    policy = RetryPolicy.from_spec("attempts=3, backoff=0.5s")
    assert (policy.attempts, policy.backoff, policy.max_backoff) == (3, 0.5, 60.0)
    assert RetryPolicy.from_spec("max-retry-time=1h,outage=2m").max_retry_time == 3600.0
    assert RetryPolicy.from_spec("outage=2m").outage == 120.0
    for wrong, message in (
        ("attempts=0", "attempts must be at least 1"),
        ("tries=3", "expected KEY=VALUE with KEY one of attempts, backoff"),
        ("backoff=soon", "'soon' is not a number"),
        ("jitter=2", "jitter must be between 0 and 1"),
    ):
        with pytest.raises(ValueError, match=message):
            RetryPolicy.from_spec(wrong)


def test_a_recipient_deferred_longer_than_max_retry_time_is_given_up() -> None:
    policy = RetryPolicy(attempts=10, max_retry_time=60.0)
    assert not policy.gives_up(attempts=3, deferred_for=59.0)
    assert policy.gives_up(attempts=3, deferred_for=60.0)
    assert policy.gives_up(attempts=10, deferred_for=0.0)
    assert not RetryPolicy(attempts=10, max_retry_time=None).gives_up(attempts=9, deferred_for=1e9)


def test_breaker_needs_failures_and_time_without_success() -> None:
    now = [0.0]
    breaker = CircuitBreaker(3, 10.0, clock=lambda: now[0])
    assert not any(breaker.failure() for _ in range(5))  # many failures, but within 10 s
    now[0] = 11.0
    assert breaker.failure()
    breaker.success()
    now[0] = 30.0
    assert not breaker.failure()
