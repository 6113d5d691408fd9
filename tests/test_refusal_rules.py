"""The rules the send engine applies to refusals (issue 14), each on its own: how a reply is
read, how the pace adapts to throttling, and when soft bounces suppress. The engine's use of them
against a real SMTP server is tested in test_send_time_bounces.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from digest.audience.subscribers import Subscriber
from digest.audience.suppressions import SuppressionStore
from digest.ledger import Ledger
from digest.send.pacing import Pacing
from digest.send.replies import parse_reply


@pytest.mark.parametrize(
    ("reply", "unknown_user", "throttling"),
    [
        ("550 5.1.1 <ada@example.org>: Recipient address rejected: User unknown", True, False),
        ("550 5.1.2 bad destination system", True, False),
        ("550 5.1.10 Null MX", True, False),
        ("553 sorry, no such user here", True, False),
        ("550 Requested action not taken: mailbox does not exist", True, False),
        ("550 5.7.1 Relaying denied", False, False),
        ("554 5.7.1 Message rejected as spam", False, False),
        ("550 user unknown? no: 5.7.1 policy", False, False),
        ("554 no such user", False, False),
        ("452 4.2.2 Mailbox full", False, False),
        ("450 4.7.1 too much mail from 127.0.0.1", False, True),
        ("451 4.3.0 try again later", False, True),
        ("421 4.7.0 too many connections", False, True),
        ("452 4.7.1 rate limited", False, True),
        ("", False, False),
    ],
)
def test_replies_are_read_by_code_status_and_text(
    reply: str, unknown_user: bool, throttling: bool
) -> None:
    parsed = parse_reply(reply)
    assert (parsed.is_unknown_user, parsed.is_throttling) == (unknown_user, throttling)


def test_pacing_halves_on_throttling_then_grows_back() -> None:
    now = [0.0]
    pacing = Pacing(start=8, ceiling=8, clock=lambda: now[0])
    pacing.throttled()
    assert pacing.limit == 4
    pacing.throttled()  # the same burst of replies: one step down only
    assert pacing.limit == 4
    now[0] = 2.0
    pacing.throttled()
    pacing.throttled()  # same burst
    now[0] = 4.0
    pacing.throttled()
    assert pacing.limit == 1
    now[0] = 6.0
    pacing.throttled()  # already at one connection: the starts are spaced out instead
    assert pacing.limit == 1 and pacing.interval > 0
    now[0] = 20.0  # calm again: the pause goes first, then connections come back
    while pacing.limit < 8:
        pacing.accepted(pacing.limit * 8, 0.01 * pacing.limit * 8)
    assert pacing.interval == 0.0 and pacing.peak == 8


def test_pacing_grows_from_a_safe_start_while_answers_stay_quick() -> None:
    pacing = Pacing(start=2, ceiling=8, clock=lambda: 100.0)
    for _ in range(300):
        pacing.accepted(1, 0.002)
    assert pacing.limit == 8
    slow = Pacing(start=2, ceiling=8, clock=lambda: 100.0)
    slow.accepted(16, 16 * 0.1)  # 0.1 s a message: the best seen
    for _ in range(200):
        slow.accepted(1, 2.0)  # now twenty times slower: no more connections
    assert slow.limit == 3


def test_pacing_never_has_more_batches_in_flight_than_its_limit() -> None:
    import asyncio

    async def main() -> int:
        pacing = Pacing(start=3, ceiling=3)
        busy = most = 0

        async def batch() -> None:
            nonlocal busy, most
            async with pacing.slot():
                busy += 1
                most = max(most, busy)
                await asyncio.sleep(0.01)
                busy -= 1

        await asyncio.gather(*(batch() for _ in range(12)))
        return most

    assert asyncio.run(main()) == 3


def test_soft_bounces_suppress_after_three_editions_in_a_row(tmp_path: Path) -> None:
    ada = Subscriber("ada@example.org", "Ada", {}, 2)
    with Ledger(tmp_path) as ledger, SuppressionStore(tmp_path) as store:
        for slug in ("2026-01", "2026-02"):
            ledger.enqueue(slug, [ada])
            bounced = store.record_edition_soft_bounces(slug, [(ada.email, "4.2.2")], source="smtp")
            assert bounced == []
            assert not store.contains(ada.email)
        ledger.enqueue("2026-03", [ada])
        suppressed = store.record_edition_soft_bounces(
            "2026-03", [(ada.email, "4.2.2")], source="smtp"
        )
        assert suppressed == [ada.email]
        item = store.get(ada.email)
        assert item is not None
        assert (item.reason, item.source, item.slug) == ("soft-bounced", "smtp", "2026-03")
        assert store.edition_origins("2026-03") == {("soft-bounced", "smtp"): 1}


def test_an_edition_without_a_soft_bounce_breaks_the_row(tmp_path: Path) -> None:
    ada = Subscriber("ada@example.org", "Ada", {}, 2)
    with Ledger(tmp_path) as ledger, SuppressionStore(tmp_path) as store:
        for slug, bounced in (("2026-01", True), ("2026-02", True), ("2026-03", False)):
            ledger.enqueue(slug, [ada])
            if bounced:
                store.record_edition_soft_bounces(slug, [(ada.email, "4.2.2")], source="smtp")
        ledger.enqueue("2026-04", [ada])
        store.record_edition_soft_bounces("2026-04", [(ada.email, "4.2.2")], source="smtp")
        # The same edition twice counts once.
        store.record_edition_soft_bounces("2026-04", [(ada.email, "4.2.2")], source="dsn")
        assert not store.contains(ada.email)


def test_a_store_made_before_soft_bounced_existed_is_migrated(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "digest.sqlite3") as db:
        db.execute(
            "CREATE TABLE suppressions (address_lower TEXT PRIMARY KEY, address TEXT NOT NULL,"
            " reason TEXT NOT NULL CHECK (reason IN ('unsubscribed', 'bounced', 'complained',"
            " 'manual')), source TEXT NOT NULL, created_at TEXT NOT NULL, slug TEXT, note TEXT)"
            " WITHOUT ROWID"
        )
        db.execute(
            "INSERT INTO suppressions VALUES ('ada@example.org', 'ada@example.org',"
            " 'unsubscribed', 'one-click', '2026-03-01T00:00:00Z', '2026-03', NULL)"
        )
    with SuppressionStore(tmp_path) as store:
        assert store.add("bob@example.org", "soft-bounced", "smtp") is True
        assert store.get("ada@example.org") is not None  # kept through the migration
        assert store.count() == 2
    with SuppressionStore(tmp_path) as store:  # opened again: nothing to migrate
        assert store.count() == 2
