"""The suppression store: add/remove/filter, CSV export, crash safety, Mailgun sync."""

from __future__ import annotations

import csv
import io
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from digest.audience.suppressions import (
    SuppressionError,
    SuppressionStore,
)
from digest.send.suppression_sync import sync_from_mailgun
from digest.settings import load_settings
from digest.state import DB_NAME

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def store(tmp_path: Path) -> SuppressionStore:
    with SuppressionStore(tmp_path / "state") as opened:
        yield opened


def test_add_is_case_insensitive_and_keeps_the_first_reason(store: SuppressionStore) -> None:
    assert store.add("Ada@Example.org", "unsubscribed", "one-click", slug="2026-03") is True
    assert store.add("ada@example.ORG", "bounced", "dsn") is False
    assert store.contains("ADA@EXAMPLE.ORG")
    item = store.get("ada@example.org")
    assert item is not None
    assert (item.address, item.reason, item.source, item.slug) == (
        "Ada@Example.org",
        "unsubscribed",
        "one-click",
        "2026-03",
    )
    assert item.created_at.endswith("Z")
    assert store.count() == 1


def test_filter_returns_the_suppressed_ones_lower_cased(store: SuppressionStore) -> None:
    store.add("Ada@Example.org", "unsubscribed", "cli")
    store.add("eve@example.org", "complained", "mailgun")
    found = store.filter(["ADA@example.org", "bob@example.org", " eve@example.org ", ""])
    assert found == {"ada@example.org", "eve@example.org"}
    assert store.filter([]) == set()


def test_filter_is_fast_for_ten_thousand_addresses(store: SuppressionStore) -> None:
    store.add_many(
        (f"user{i}@example.org", "bounced", "dsn", None, None, None) for i in range(0, 20_000, 2)
    )
    addresses = [f"User{i}@example.org" for i in range(10_000)]
    started = time.perf_counter()
    found = store.filter(addresses)
    elapsed = time.perf_counter() - started
    assert found == {f"user{i}@example.org" for i in range(0, 10_000, 2)}
    assert elapsed < 1.0, f"filter of 10,000 addresses took {elapsed:.2f}s"


def test_remove_lets_an_address_be_mailed_again(store: SuppressionStore) -> None:
    store.add("ada@example.org", "manual", "cli")
    assert store.remove("ADA@example.org") is True
    assert not store.contains("ada@example.org")
    assert store.remove("ada@example.org") is False


def test_iter_count_and_counts_by_reason(store: SuppressionStore) -> None:
    store.add("b@example.org", "bounced", "dsn", created_at="2026-03-02T00:00:00Z")
    store.add("a@example.org", "unsubscribed", "one-click", created_at="2026-03-01T00:00:00Z")
    store.add("c@example.org", "bounced", "mailgun", created_at="Tue, 03 Mar 2026 10:00:00 UTC")
    assert [s.address for s in store.iter()] == ["a@example.org", "b@example.org", "c@example.org"]
    assert [s.address for s in store.iter("bounced")] == ["b@example.org", "c@example.org"]
    assert store.get("c@example.org").created_at == "2026-03-03T10:00:00Z"
    assert store.count("bounced") == 2
    assert store.count_by_reason() == {
        "unsubscribed": 1,
        "bounced": 2,
        "soft-bounced": 0,
        "complained": 0,
        "manual": 0,
    }


def test_export_csv_uses_the_subscribers_statuses(store: SuppressionStore) -> None:
    store.add("a@example.org", "unsubscribed", "one-click", created_at="2026-03-01T00:00:00Z")
    store.add("m@example.org", "manual", "cli", created_at="2026-03-02T00:00:00Z")
    store.add("c@example.org", "complained", "mailgun", created_at="2026-03-03T00:00:00Z")
    stream = io.StringIO()
    assert store.export_csv(stream) == 3
    rows = list(csv.DictReader(io.StringIO(stream.getvalue())))
    assert list(rows[0]) == ["email", "status", "reason", "source", "created_at"]
    assert [(r["email"], r["status"], r["reason"]) for r in rows] == [
        ("a@example.org", "unsubscribed", "unsubscribed"),
        ("m@example.org", "unsubscribed", "manual"),
        ("c@example.org", "complained", "complained"),
    ]


@pytest.mark.parametrize(
    "address", ["", "ada", "@example.org", "ada@", "ada@exa mple.org", "ada@example.org\r\nBcc: x"]
)
def test_bad_addresses_are_refused_and_nothing_is_written(
    store: SuppressionStore, address: str
) -> None:
    with pytest.raises(SuppressionError):
        store.add_many(
            [
                ("good@example.org", "manual", "cli", None, None, None),
                (address, "manual", "cli", None, None, None),
            ]
        )
    assert store.count() == 0


def test_unknown_reason_is_refused(store: SuppressionStore) -> None:
    with pytest.raises(SuppressionError, match="unknown reason"):
        store.add("ada@example.org", "annoyed", "cli")


def test_an_unusable_state_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the state folder should be")
    with pytest.raises(SuppressionError, match="cannot open the suppression store"):
        SuppressionStore(blocker)


def test_the_store_shares_the_ledger_file_in_wal_mode(tmp_path: Path) -> None:
    SuppressionStore(tmp_path).close()
    db = sqlite3.connect(tmp_path / DB_NAME)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        assert {"suppressions", "soft_bounces"} <= tables
    finally:
        db.close()


_WRITER = textwrap.dedent(
    """\
    import sys
    from pathlib import Path
    from digest.audience.suppressions import SuppressionStore

    store = SuppressionStore(Path(sys.argv[1]))
    n = 0
    while True:
        store.add(f"single{n}@example.org", "bounced", "crash-test")
        print(f"single {n}", flush=True)
        rows = [(f"batch{n}-{k}@example.org", "manual", "crash-test", None, None, None)
                for k in range(25)]
        store.add_many(rows)
        print(f"batch {n}", flush=True)
        n += 1
    """
)


def test_suppressions_survive_a_crash(tmp_path: Path) -> None:
    """A writer killed with SIGKILL mid-run: every committed write is there, no half batch."""
    state = tmp_path / "state"
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    child = subprocess.Popen(
        [sys.executable, str(script), str(state)], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    assert child.stdout is not None
    committed: list[str] = []
    try:
        while len(committed) < 120:
            line = child.stdout.readline()
            assert line, "the writer stopped on its own"
            committed.append(line.strip())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)

    db = sqlite3.connect(state / DB_NAME)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()
    with SuppressionStore(state) as store:
        for entry in committed:
            kind, n = entry.split()
            if kind == "single":
                assert store.contains(f"single{n}@example.org"), entry
            else:
                batch = [f"batch{n}-{k}@example.org" for k in range(25)]
                assert store.filter(batch) == set(batch), entry
        # A batch is all there or not at all, even the one the kill interrupted.
        present = store.filter(f"batch{n}-{k}@example.org" for n in range(500) for k in range(25))
        for n in {address.split("-")[0] for address in present}:
            assert sum(1 for a in present if a.startswith(f"{n}-")) == 25


def test_sync_from_mailgun_pages_through_every_list(tmp_path: Path) -> None:
    mailgun_server = pytest.importorskip("mailgun_server")
    with mailgun_server.MailgunServer(
        api_key="key-test", domain="mg.example.org", page_size=2
    ) as server:
        server.add_suppressions(
            "unsubscribes", mailgun_server.sample_suppressions("unsubscribes", 5)
        )
        server.add_suppressions("bounces", mailgun_server.sample_suppressions("bounces", 3))
        server.add_suppressions("complaints", mailgun_server.sample_suppressions("complaints", 1))
        # The same address on Mailgun's unsubscribe list already known to the store.
        settings = load_settings(
            {
                "MAILGUN_API_KEY": "key-test",
                "MAILGUN_DOMAIN": "mg.example.org",
                "MAILGUN_API_URL": server.api_url,
                "DIGEST_STATE_DIR": str(tmp_path / "state"),
            },
            env_file=None,
        )
        with SuppressionStore(settings.state_dir) as store:
            store.add("unsubscribe0@example.net", "manual", "cli")
            report = sync_from_mailgun(store, settings)
            unsubscribe_pages = [
                r for r in server.requests if r.path.endswith("/unsubscribes") and r.method == "GET"
            ]
            assert len(unsubscribe_pages) >= 3  # 2 + 2 + 1 entries: three pages with items
            assert report.seen == 9
            assert report.added == 8
            assert report.by_reason == {"unsubscribed": 5, "bounced": 3, "complained": 1}
            assert store.count_by_reason() == {
                "unsubscribed": 4,
                "bounced": 3,
                "soft-bounced": 0,
                "complained": 1,
                "manual": 1,
            }
            bounce = store.get("bounce2@example.net")
            assert bounce is not None
            assert (bounce.source, bounce.created_at) == ("mailgun", "2026-03-01T14:00:00Z")
            # A second sync finds nothing new.
            assert sync_from_mailgun(store, settings).added == 0


def test_a_unicode_domain_matches_its_ascii_form_both_ways(store: SuppressionStore) -> None:
    # The subscribers list stores user@bücher.de as user@xn--bcher-kva.de (IDNA).
    store.add("User@Bücher.de", "manual", "cli")
    assert store.contains("user@xn--bcher-kva.de")
    assert store.filter(["user@xn--bcher-kva.de", "other@xn--bcher-kva.de"]) == {
        "user@xn--bcher-kva.de"
    }
    store.add("eve@xn--mller-kva.de", "bounced", "dsn")
    assert store.contains("Eve@Müller.de")
    item = store.get("user@xn--bcher-kva.de")
    assert item is not None and item.address == "User@Bücher.de"  # shown as typed
    assert store.remove("user@BÜCHER.de") is True
    assert store.count() == 1
