"""The send ledger: idempotent, resumable, and consistent after a kill -9 at any instant."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.audience.subscribers import Subscriber
from digest.ledger import Ledger, LedgerError
from digest.state import DB_NAME

SLUG = "2026-03"


def people(count: int, start: int = 0) -> list[Subscriber]:
    return [
        Subscriber(f"Reader{n}@Example.org", f"Reader {n}", {"city": "Lyon"}, n + 2)
        for n in range(start, start + count)
    ]


def test_enqueue_is_idempotent_and_keeps_insertion_order(tmp_path: Path) -> None:
    with Ledger(tmp_path) as ledger:
        assert ledger.enqueue(SLUG, people(3)) == 3
        assert ledger.enqueue(SLUG, people(5)) == 2  # the first three are known already
        # Another case of a known address is the same person.
        lowered = [Subscriber("reader0@example.org", "Other", {}, 99)]
        assert ledger.enqueue(SLUG, lowered) == 0
        assert ledger.enqueue("2026-04", people(2)) == 2  # another edition, its own rows
        assert list(ledger.to_send(SLUG)) == people(5)
        assert ledger.slugs() == [SLUG, "2026-04"]


def test_statuses_are_keyed_by_lower_cased_address(tmp_path: Path) -> None:
    with Ledger(tmp_path) as ledger:
        ledger.enqueue(SLUG, people(3))
        ledger.mark_sent(SLUG, [("READER0@example.org", "queue-id-1")])
        ledger.mark_failed(SLUG, [("reader1@example.org", "550 no such user")])
        found = ledger.statuses(SLUG, ["Reader0@Example.org", "reader1@example.org", "x@y.org"])
        assert found == {"reader0@example.org": "sent", "reader1@example.org": "failed"}
        assert ledger.statuses("other", ["reader0@example.org"]) == {}


def test_statuses_of_many_addresses(tmp_path: Path) -> None:
    with Ledger(tmp_path) as ledger:
        ledger.enqueue(SLUG, people(2000))
        found = ledger.statuses(SLUG, [s.email for s in people(2100)])
        assert len(found) == 2000 and set(found.values()) == {"pending"}


def test_mark_and_resume(tmp_path: Path) -> None:
    with Ledger(tmp_path) as ledger:
        ledger.enqueue(SLUG, people(6))
        ledger.mark_sent(SLUG, [(s.email, f"id{n}") for n, s in enumerate(people(2))])
        ledger.mark_failed(SLUG, [(people(3)[2].email, "550 mailbox unavailable")])
        ledger.note_attempt(SLUG, [(people(4)[3].email, "421 try later")])
        assert not ledger.is_finished(SLUG)

    # Another process (here: another connection) resumes where the first stopped.
    with Ledger(tmp_path) as ledger:
        assert [s.email for s in ledger.to_send(SLUG)] == [s.email for s in people(6)[3:]]
        assert [s.email for s in ledger.to_send(SLUG, retry_failed=True)] == [
            s.email for s in people(6)[2:]
        ]
        assert [s.email for s in ledger.to_send(SLUG, limit=2)] == [s.email for s in people(6)[3:5]]
        resumed = next(ledger.to_send(SLUG))
        assert resumed == people(4)[3]  # name, fields and line come back as they went in
        ledger.mark_sent(SLUG, [(s.email, None) for s in people(6)[3:]])
        # Every enqueued row is settled, but no run has gone through the whole list yet.
        assert not ledger.is_finished(SLUG)
        now = datetime.now(UTC)
        ledger.record_run(SLUG, now, now, "partial", {"sent": 5})
        assert not ledger.is_finished(SLUG)
        ledger.record_run(SLUG, now, now, "failures", {"sent": 5, "failed": 1})
        assert ledger.is_finished(SLUG)

        summary = ledger.summary(SLUG)
        assert (summary.total, summary.sent, summary.failed, summary.pending) == (6, 5, 1, 0)
        assert summary.failures == [("Reader2@Example.org", 1, "550 mailbox unavailable")]
        assert summary.first_sent_at is not None and summary.last_sent_at is not None
        assert summary.first_sent_at <= summary.last_sent_at


def test_note_attempt_counts_and_keeps_the_row_pending(tmp_path: Path) -> None:
    with Ledger(tmp_path) as ledger:
        ledger.enqueue(SLUG, people(1))
        address = people(1)[0].email
        ledger.note_attempt(SLUG, [(address, "451 greylisted")])
        ledger.note_attempt(SLUG, [(address, "421 busy")])
        ledger.mark_failed(SLUG, [(address, "550 gone")])
        assert ledger.statuses(SLUG, [address]) == {address.lower(): "failed"}
        assert ledger.summary(SLUG).failures == [(address, 3, "550 gone")]


def test_marking_while_iterating_yields_each_row_once(tmp_path: Path) -> None:
    with Ledger(tmp_path) as ledger:
        ledger.enqueue(SLUG, people(12_000))
        seen = []
        for subscriber in ledger.to_send(SLUG):
            seen.append(subscriber.email)
            ledger.mark_sent(SLUG, [(subscriber.email, None)])
            if len(seen) == 6_000:
                break
        rest = [s.email for s in ledger.to_send(SLUG)]
        assert len(set(seen) | set(rest)) == 12_000 and not set(seen) & set(rest)


def test_runs_are_recorded(tmp_path: Path) -> None:
    started = datetime(2026, 3, 31, 9, 0, tzinfo=UTC)
    with Ledger(tmp_path) as ledger:
        ledger.record_run(SLUG, started, datetime.now(UTC), "stopped", {"sent": 3, "failed": 1})
        ledger.record_run(SLUG, started, started, "finished", {"sent": 7})
        runs = ledger.summary(SLUG).runs
        assert [(r.outcome, dict(r.counts)) for r in runs] == [
            ("stopped", {"sent": 3, "failed": 1}),
            ("finished", {"sent": 7}),
        ]
        assert runs[1].started_at.startswith("2026-03-31T09:00:00")
        assert ledger.summary("nothing-yet").runs == []
        assert not ledger.is_finished("nothing-yet")


def test_enqueue_is_fast(tmp_path: Path) -> None:
    rows = people(100_000)
    with Ledger(tmp_path) as ledger:
        started = time.perf_counter()
        assert ledger.enqueue(SLUG, rows) == 100_000
        elapsed = time.perf_counter() - started
    assert elapsed < 5  # about a second on this machine; generous for a loaded CI box


def test_the_database_is_in_wal_mode(tmp_path: Path) -> None:
    with Ledger(tmp_path):
        pass
    db = sqlite3.connect(tmp_path / DB_NAME)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()


def test_a_locked_database_raises_a_ledger_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("digest.state.BUSY_TIMEOUT_MS", 100)
    with Ledger(tmp_path) as ledger:
        ledger.enqueue(SLUG, people(1))
        other = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            with Ledger(tmp_path) as waiting, pytest.raises(LedgerError, match="locked"):
                waiting.mark_sent(SLUG, [(people(1)[0].email, None)])
        finally:
            other.execute("ROLLBACK")
            other.close()


def test_an_unwritable_state_dir_raises_a_ledger_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(LedgerError, match="state folder"):
        Ledger(blocker / "state")


def test_a_closed_ledger_says_so(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.close()
    ledger.close()  # twice is fine
    with pytest.raises(LedgerError, match="closed"):
        ledger.summary(SLUG)


CHILD = """\
    import sys
    from pathlib import Path
    from digest.audience.subscribers import Subscriber
    from digest.ledger import Ledger

    state, total = Path(sys.argv[1]), int(sys.argv[2])
    people = [Subscriber(f"r{n}@example.org", "", {}, n) for n in range(total)]
    with Ledger(state) as ledger:
        ledger.enqueue("2026-03", people)
        print("enqueued", flush=True)
        for start in range(0, total, 10):
            sys.stdin.readline()  # the parent paces the batches, so it can kill mid-run
            batch = [(s.email, f"id-{s.email}") for s in people[start:start + 10]]
            ledger.mark_sent("2026-03", batch)
            print("committed", start + 10, flush=True)  # said only after COMMIT returned
    """


def test_a_process_killed_mid_way_leaves_a_consistent_ledger(tmp_path: Path) -> None:
    total = 20_000
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD))
    child = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "state"), str(total)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[1],
    )
    assert child.stdout is not None and child.stdin is not None
    assert child.stdout.readline().strip() == "enqueued"
    child.stdin.write("go\n" * 500)  # 500 batches allowed: it cannot finish the 2,000
    child.stdin.flush()
    committed = 0
    while committed < 1_000:  # let it mark a hundred batches, then kill it mid-stride
        committed = int(child.stdout.readline().split()[1])
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    # Lines it printed before dying were committed too.
    for line in child.stdout:
        committed = max(committed, int(line.split()[1]))
    assert child.returncode == -signal.SIGKILL

    db = sqlite3.connect(tmp_path / "state" / DB_NAME)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    with Ledger(tmp_path / "state") as ledger:
        summary = ledger.summary("2026-03")
        assert summary.total == total  # nothing lost
        assert summary.sent + summary.pending == total and summary.failed == 0
        assert committed <= summary.sent < total  # every commit it reported survived
        assert summary.sent % 10 == 0  # no batch half-applied
        statuses = ledger.statuses("2026-03", [f"r{n}@example.org" for n in range(committed)])
        assert set(statuses.values()) == {"sent"}
        # The rerun resumes exactly after the last committed batch.
        first = next(ledger.to_send("2026-03"))
        assert first.email == f"r{summary.sent}@example.org"
