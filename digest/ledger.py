"""The send ledger: which recipient of which edition has been sent to, in SQLite.

One file, ``DIGEST_STATE_DIR/digest.sqlite3`` (the suppression store keeps its own table in the
same file). One row per (edition slug, address) with its status: ``pending`` (to send),
``sent`` (the server or API accepted it) or ``failed`` (refused for good), the attempts, the
last error, the provider's message id and when.

What a ``kill -9`` (or a crash, or a pulled network cable) at any instant can do
-------------------------------------------------------------------------------
The database (opened by :func:`digest.state.open_database`, which says why) runs in WAL mode
with ``synchronous=NORMAL``: a transaction is durable once its
COMMIT returns, against the death of the process (the operating system keeps the WAL's writes);
only a power cut or an OS crash can roll back the last few commits, never corrupt the file.
Every method commits its own transaction, so:

* every row committed before the kill survives, and the rows are never half-written;
* a recipient is marked ``sent`` only after the server accepted their message. If the process
  dies after the server accepted a message but before ``mark_sent`` committed, the row is still
  ``pending`` and the rerun sends that message again. This in-flight window holds at most
  ``concurrency x batch size`` messages (the ones handed to the backend and not yet recorded);
  those recipients may get the edition twice, with the same content (a new Message-ID);
* nothing is lost: every recipient is ``sent``, ``failed`` or still ``pending``, and a rerun
  sends to every ``pending`` one (and to the ``failed`` ones with ``--retry-failed``).

Errors (a full disk, a database locked by another process for longer than the busy timeout, a
damaged file) raise :class:`LedgerError`, never a raw :mod:`sqlite3` error.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from digest.batching import batched
from digest.errors import DigestError
from digest.state import database_path, open_database
from digest.subscriber import Subscriber

STATUSES = ("pending", "sent", "failed")
_CHUNK = 5_000  # rows per INSERT transaction and per page read
_PARAMS_PER_QUERY = 500  # below SQLite's host-parameter limit

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id          INTEGER PRIMARY KEY,            -- insertion order: the send order
    slug        TEXT NOT NULL,
    address_key TEXT NOT NULL,                  -- lower-cased address: one row per person
    email       TEXT NOT NULL,                  -- the address as read
    name        TEXT NOT NULL DEFAULT '',
    fields      TEXT NOT NULL DEFAULT '{}',     -- the other CSV columns, JSON
    line        INTEGER NOT NULL DEFAULT 0,
    status      TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    provider_id TEXT,
    updated_at  TEXT NOT NULL,
    sent_at     TEXT,
    UNIQUE (slug, address_key)
);
CREATE INDEX IF NOT EXISTS deliveries_by_status ON deliveries (slug, status, id);
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY,
    slug        TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    counts      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS runs_by_slug ON runs (slug, id);
"""


_MARK_SENT = (
    "UPDATE deliveries SET status = 'sent', attempts = attempts + 1, provider_id = ?,"
    " last_error = NULL, updated_at = ?, sent_at = ? WHERE slug = ? AND address_key = ?"
)
_MARK_FAILED = (
    "UPDATE deliveries SET status = 'failed', attempts = attempts + 1, last_error = ?,"
    " updated_at = ? WHERE slug = ? AND address_key = ?"
)


class LedgerError(DigestError):
    """The send ledger cannot be read or written (disk full, locked, damaged)."""


@dataclass(frozen=True)
class RunRecord:
    started_at: str
    finished_at: str
    outcome: str
    counts: Mapping[str, int]


@dataclass(frozen=True)
class LedgerSummary:
    total: int
    sent: int
    failed: int
    pending: int
    first_sent_at: str | None
    last_sent_at: str | None
    failures: list[tuple[str, int, str | None]] = field(
        default_factory=list
    )  # address, tries, error
    runs: list[RunRecord] = field(default_factory=list)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _stamp(value: datetime | str) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat(timespec="milliseconds")
    return value


class Ledger:
    """The send ledger in ``state_dir``; use as a context manager or call :meth:`close`."""

    def __init__(self, state_dir: Path) -> None:
        self.path = database_path(state_dir)
        self._lock = threading.Lock()  # one connection, possibly used from worker threads
        self._db: sqlite3.Connection | None = None
        try:
            # Each method opens and commits its own transaction explicitly.
            self._db = open_database(state_dir, _SCHEMA, durable=False, threads=True)
        except OSError as exc:
            raise LedgerError(
                f"cannot create the state folder {self.path.parent}: {exc.strerror or exc}",
                hint="set DIGEST_STATE_DIR to a writable folder",
            ) from exc
        except sqlite3.Error as exc:
            raise _ledger_error(exc, self.path) from exc

    # -- life cycle ----------------------------------------------------------------------

    def close(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            finally:
                self._db = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------

    def enqueue(self, slug: str, subscribers: Iterable[Subscriber]) -> int:
        """Add each subscriber as ``pending`` unless the edition already has their address;
        returns how many were new. Commits every few thousand rows."""
        added = 0
        for chunk in batched(subscribers, _CHUNK):
            now = _now()
            rows = [
                (
                    slug,
                    s.email.lower(),
                    s.email,
                    s.name,
                    json.dumps(dict(s.fields), ensure_ascii=False) if s.fields else "{}",
                    s.line,
                    now,
                )
                for s in chunk
            ]

            def insert(db: sqlite3.Connection, rows: list[tuple[Any, ...]] = rows) -> int:
                before = db.total_changes
                db.executemany(
                    "INSERT OR IGNORE INTO deliveries"
                    " (slug, address_key, email, name, fields, line, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                return db.total_changes - before

            added += self._write(insert)
        return added

    def mark_sent(self, slug: str, items: Sequence[tuple[str, str | None]]) -> None:
        """Record (address, provider_id) pairs as accepted by the server."""
        self.mark_results(slug, sent=items)

    def mark_failed(self, slug: str, items: Sequence[tuple[str, str]]) -> None:
        """Record (address, error) pairs as refused for good."""
        self.mark_results(slug, failed=items)

    def mark_results(
        self,
        slug: str,
        *,
        sent: Sequence[tuple[str, str | None]] = (),
        failed: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Record accepted (address, provider_id) and refused (address, error) pairs in one
        transaction (a commit costs far more than a row)."""
        if not sent and not failed:
            return
        now = _now()
        sent_rows = [(pid, now, now, slug, address.lower()) for address, pid in sent]
        failed_rows = [(error, now, slug, address.lower()) for address, error in failed]

        def update(db: sqlite3.Connection) -> None:
            if sent_rows:
                db.executemany(_MARK_SENT, sent_rows)
            if failed_rows:
                db.executemany(_MARK_FAILED, failed_rows)

        self._write(update)

    def note_attempt(self, slug: str, items: Sequence[tuple[str, str]]) -> None:
        """Record a transient error for (address, error) pairs: one more attempt, still pending."""
        now = _now()
        rows = [(error, now, slug, address.lower()) for address, error in items]
        self._update(
            "UPDATE deliveries SET attempts = attempts + 1, last_error = ?, updated_at = ?"
            " WHERE slug = ? AND address_key = ? AND status = 'pending'",
            rows,
        )

    def record_run(
        self,
        slug: str,
        started_at: datetime | str,
        finished_at: datetime | str,
        outcome: str,
        counts: Mapping[str, int],
    ) -> None:
        """Remember one run of ``digest send`` (for ``digest status``)."""
        row = (slug, _stamp(started_at), _stamp(finished_at), outcome, json.dumps(dict(counts)))

        def insert(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO runs (slug, started_at, finished_at, outcome, counts)"
                " VALUES (?, ?, ?, ?, ?)",
                row,
            )

        self._write(insert)

    # -- reading -------------------------------------------------------------------------

    def statuses(self, slug: str, addresses: Sequence[str]) -> dict[str, str]:
        """The status of each listed address the ledger knows, keyed by lower-cased address."""
        found: dict[str, str] = {}
        if not self._read("SELECT 1 FROM deliveries WHERE slug = ? LIMIT 1", (slug,)):
            return found  # a first send: the counting pass need not look anyone up
        keys = list(dict.fromkeys(a.lower() for a in addresses))
        for chunk in batched(keys, _PARAMS_PER_QUERY):
            marks = ",".join("?" * len(chunk))
            rows = self._read(
                f"SELECT address_key, status FROM deliveries"
                f" WHERE slug = ? AND address_key IN ({marks})",
                (slug, *chunk),
            )
            found.update({key: status for key, status in rows})
        return found

    def to_send(
        self, slug: str, *, retry_failed: bool = False, limit: int | None = None
    ) -> Iterator[Subscriber]:
        """The pending (and with ``retry_failed`` the failed) recipients, in insertion order.

        Read page by page, so marking rows while iterating is safe and each row comes once.
        """
        wanted = ("pending", "failed") if retry_failed else ("pending",)
        marks = ",".join("?" * len(wanted))
        last_id = 0
        remaining = limit
        while remaining is None or remaining > 0:
            page = _CHUNK if remaining is None else min(_CHUNK, remaining)
            rows = self._read(
                f"SELECT id, email, name, fields, line FROM deliveries"
                f" WHERE slug = ? AND status IN ({marks}) AND id > ? ORDER BY id LIMIT ?",
                (slug, *wanted, last_id, page),
            )
            if not rows:
                return
            for row_id, email, name, fields, line in rows:
                last_id = row_id
                yield Subscriber(email=email, name=name, fields=json.loads(fields), line=line)
            if remaining is not None:
                remaining -= len(rows)

    def summary(self, slug: str) -> LedgerSummary:
        counts = dict(
            self._read(
                "SELECT status, COUNT(*) FROM deliveries WHERE slug = ? GROUP BY status", (slug,)
            )
        )
        first, last = self._read(
            "SELECT MIN(sent_at), MAX(sent_at) FROM deliveries WHERE slug = ? AND status = 'sent'",
            (slug,),
        )[0]
        failures = [
            (email, attempts, error)
            for email, attempts, error in self._read(
                "SELECT email, attempts, last_error FROM deliveries"
                " WHERE slug = ? AND status = 'failed' ORDER BY id",
                (slug,),
            )
        ]
        runs = [
            RunRecord(started, finished, outcome, json.loads(run_counts))
            for started, finished, outcome, run_counts in self._read(
                "SELECT started_at, finished_at, outcome, counts FROM runs"
                " WHERE slug = ? ORDER BY id",
                (slug,),
            )
        ]
        return LedgerSummary(
            total=sum(counts.values()),
            sent=counts.get("sent", 0),
            failed=counts.get("failed", 0),
            pending=counts.get("pending", 0),
            first_sent_at=first,
            last_sent_at=last,
            failures=failures,
            runs=runs,
        )

    def is_finished(self, slug: str) -> bool:
        """True when a run went through the whole list (outcome ``done`` or ``failures``) and no
        recipient is pending. Rows alone cannot tell: a run killed early, or one cut by
        ``--limit``, enqueued only part of the list, and all of that part may be sent."""
        rows = self._read(
            "SELECT COUNT(*), COALESCE(SUM(status = 'pending'), 0),"
            " EXISTS (SELECT 1 FROM runs WHERE slug = ? AND outcome IN ('done', 'failures'))"
            " FROM deliveries WHERE slug = ?",
            (slug, slug),
        )
        total, pending, completed = rows[0]
        return bool(total) and not pending and bool(completed)

    def slugs(self) -> list[str]:
        """Every edition the ledger knows, in slug order."""
        return [
            slug for (slug,) in self._read("SELECT DISTINCT slug FROM deliveries ORDER BY slug")
        ]

    # -- plumbing ------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise LedgerError("the send ledger is closed")
        return self._db

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._connection().execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise _ledger_error(exc, self.path) from exc

    def _write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``work`` in one IMMEDIATE transaction: committed whole or not at all."""
        with self._lock:
            db = self._connection()
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    result = work(db)
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise _ledger_error(exc, self.path) from exc
            return result

    def _update(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return

        def run(db: sqlite3.Connection) -> None:
            db.executemany(sql, rows)

        self._write(run)


def _ledger_error(exc: sqlite3.Error, path: Path) -> LedgerError:
    text = str(exc)
    lowered = text.lower()
    if "full" in lowered:
        return LedgerError(
            f"the send ledger {path} cannot be written: the disk is full ({text})",
            hint="free some space, then rerun the same command to resume",
        )
    if "locked" in lowered or "busy" in lowered:
        return LedgerError(
            f"the send ledger {path} is locked by another process ({text})",
            hint="wait for the other digest command to finish, then rerun",
        )
    if "readonly" in lowered or "read-only" in lowered or "unable to open" in lowered:
        return LedgerError(
            f"the send ledger {path} cannot be opened for writing ({text})",
            hint="set DIGEST_STATE_DIR to a writable folder",
        )
    return LedgerError(f"the send ledger {path} failed: {text}")
