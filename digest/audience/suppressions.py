"""The suppression store: the addresses that must never get mail again, and why.

It lives in ``<DIGEST_STATE_DIR>/digest.sqlite3``, the SQLite file the send ledger uses too, in
tables of its own (opened by :func:`digest.state.open_database`, durable: ``synchronous=FULL``).
Every write is one transaction, so a run
killed mid-way loses nothing that was committed and leaves nothing half-written. Addresses are
compared as the subscribers list reads them (an IDNA domain in its ASCII form) and
case-insensitively: each row is keyed by :func:`address_key`.

    >>> with SuppressionStore(Path(".digest")) as store:  # doctest: +SKIP
    ...     store.add("Ada@Example.org", "unsubscribed", "one-click", slug="2026-03")
    ...     store.filter(["ada@example.org", "bob@example.org"])
    True
    {'ada@example.org'}
"""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TextIO

from digest.addresses import address_key as _key
from digest.addresses import cleaned_address
from digest.errors import DigestError
from digest.spreadsheet import neutralise_row
from digest.state import database_path, open_database

REASONS = ("unsubscribed", "bounced", "soft-bounced", "complained", "manual")
# The subscribers CSV (contract §2) knows only these statuses; `manual` merges back as unsubscribed.
CSV_STATUS_OF_REASON = {
    "unsubscribed": "unsubscribed",
    "bounced": "bounced",
    "soft-bounced": "bounced",
    "complained": "complained",
    "manual": "unsubscribed",
}
# Soft bounces (a temporary refusal that outlasted every retry) in this many consecutive editions
# sent to an address suppress it: a mailbox full or a server refusing for three months is gone.
SOFT_BOUNCE_EDITIONS = 3
EXPORT_COLUMNS = ("email", "status", "reason", "source", "created_at")

_CHUNK = 500  # bound variables per IN query; far below SQLite's limit, still few round trips

_SCHEMA = """
CREATE TABLE IF NOT EXISTS suppressions (
    address_lower TEXT PRIMARY KEY,
    address       TEXT NOT NULL,
    reason        TEXT NOT NULL CHECK (reason IN
                  ('unsubscribed', 'bounced', 'soft-bounced', 'complained', 'manual')),
    source        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    slug          TEXT,
    note          TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS suppressions_by_reason ON suppressions (reason);
CREATE TABLE IF NOT EXISTS soft_bounces (
    address_lower TEXT PRIMARY KEY,
    address       TEXT NOT NULL,
    count         INTEGER NOT NULL,
    last_status   TEXT,
    last_at       TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bounce_reports (
    report_id   TEXT PRIMARY KEY,
    imported_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS edition_soft_bounces (
    address_lower TEXT NOT NULL,
    slug          TEXT NOT NULL,
    status        TEXT,
    source        TEXT NOT NULL,
    at            TEXT NOT NULL,
    PRIMARY KEY (address_lower, slug)
) WITHOUT ROWID;
"""
# Stores made before `soft-bounced` existed: SQLite cannot change a CHECK constraint, so the
# table is copied into one with the new constraint, in the same transaction that opens the store.
_MIGRATE_REASONS = """
CREATE TABLE suppressions_new (
    address_lower TEXT PRIMARY KEY,
    address       TEXT NOT NULL,
    reason        TEXT NOT NULL CHECK (reason IN
                  ('unsubscribed', 'bounced', 'soft-bounced', 'complained', 'manual')),
    source        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    slug          TEXT,
    note          TEXT
) WITHOUT ROWID;
INSERT INTO suppressions_new SELECT address_lower, address, reason, source, created_at, slug, note
    FROM suppressions;
DROP TABLE suppressions;
ALTER TABLE suppressions_new RENAME TO suppressions;
CREATE INDEX IF NOT EXISTS suppressions_by_reason ON suppressions (reason);
"""


class SuppressionError(DigestError):
    """The suppression store cannot be used, or was handed an unusable address or reason."""


@dataclass(frozen=True, slots=True)
class Suppression:
    address: str
    reason: str
    source: str
    created_at: str  # ISO 8601, UTC, e.g. 2026-03-31T09:00:00Z
    slug: str | None = None
    note: str | None = None

    @property
    def csv_status(self) -> str:
        return CSV_STATUS_OF_REASON[self.reason]


@dataclass(frozen=True, slots=True)
class SoftBounce:
    address: str
    count: int
    last_status: str | None
    last_at: str


def checked_address(address: str) -> str:
    """:func:`~digest.addresses.cleaned_address`, or SuppressionError for what is no address."""
    cleaned = cleaned_address(address)
    if cleaned is None:
        raise SuppressionError(f"not an email address: {address!r}")
    return cleaned


def address_key(address: str) -> str:
    """What a row is keyed by (:func:`digest.addresses.address_key`: the subscribers list's
    normal form, so ``user@bücher.de`` typed here finds ``user@xn--bcher-kva.de`` read from the
    CSV); SuppressionError for what is no address."""
    key = _key(checked_address(address))
    assert key is not None  # checked_address() refused what has no key
    return key


def utc_timestamp(moment: datetime | str | None = None) -> str:
    """``moment`` (a datetime, an RFC 2822 or ISO 8601 string) as ISO 8601 UTC; now when unknown."""
    when: datetime | None = None
    if isinstance(moment, datetime):
        when = moment
    elif isinstance(moment, str) and moment.strip():
        text = moment.strip()
        try:
            when = parsedate_to_datetime(text)  # Mailgun's "Fri, 21 Oct 2011 11:02:55 UTC"
        except (TypeError, ValueError, IndexError):
            try:
                when = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                when = None
    if when is None:
        when = datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_reason(reason: str) -> str:
    if reason not in REASONS:
        raise SuppressionError(f"unknown reason {reason!r} (one of {', '.join(REASONS)})")
    return reason


class SuppressionStore:
    """Who must never get mail again: ``add``, ``remove``, ``contains``, ``filter``, ``iter``.

    One store object holds one SQLite connection; use it from one thread (open one per thread or
    request: opening is cheap). Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = database_path(state_dir)
        try:
            # Every transaction is opened here with BEGIN IMMEDIATE, so a writer waits for the
            # lock up front instead of failing half-way through.
            self._db = open_database(state_dir, _SCHEMA, durable=True)
            self._migrate_reasons()
        except (OSError, sqlite3.Error) as exc:
            raise SuppressionError(f"cannot open the suppression store {self.path}: {exc}") from exc

    def _migrate_reasons(self) -> None:
        """A store made before ``soft-bounced`` existed gets the table with the new CHECK."""
        table = self._db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'suppressions'"
        ).fetchone()
        if table is None or "soft-bounced" in table[0]:
            return
        with self._transaction() as db:
            for statement in _MIGRATE_REASONS.split(";"):
                if statement.strip():
                    db.execute(statement)

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error; sqlite errors become ours."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise SuppressionError(f"cannot write to {self.path}: {exc}") from exc
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._db.execute("ROLLBACK")
            raise SuppressionError(f"cannot write to {self.path}: {exc}") from exc

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise SuppressionError(f"cannot read {self.path}: {exc}") from exc

    # -- suppressions -------------------------------------------------------------------------

    def add(
        self,
        address: str,
        reason: str,
        source: str,
        slug: str | None = None,
        *,
        note: str | None = None,
        created_at: datetime | str | None = None,
    ) -> bool:
        """Suppress ``address``; True if it is new. An address already suppressed keeps its
        first reason and time (the first cause is the one worth knowing)."""
        return self.add_many([(address, reason, source, slug, note, created_at)]) == 1

    def add_many(
        self,
        entries: Iterable[tuple[str, str, str, str | None, str | None, datetime | str | None]],
    ) -> int:
        """Suppress each ``(address, reason, source, slug, note, created_at)`` in one
        transaction; return how many were new. Nothing is written if any entry is invalid."""
        rows = [
            (
                address_key(address),
                checked_address(address),
                _check_reason(reason),
                source,
                utc_timestamp(created_at),
                slug,
                note,
            )
            for address, reason, source, slug, note, created_at in entries
        ]
        added = 0
        with self._transaction() as db:
            for row in rows:
                try:
                    cursor = db.execute(
                        "INSERT OR IGNORE INTO suppressions"
                        " (address_lower, address, reason, source, created_at, slug, note)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        row,
                    )
                except sqlite3.Error as exc:
                    raise SuppressionError(f"cannot write to {self.path}: {exc}") from exc
                added += cursor.rowcount
        return added

    def remove(self, address: str) -> bool:
        """Take ``address`` off the list (it may be mailed again); True if it was there."""
        key = address_key(address)
        with self._transaction() as db:
            try:
                cursor = db.execute("DELETE FROM suppressions WHERE address_lower = ?", (key,))
            except sqlite3.Error as exc:
                raise SuppressionError(f"cannot write to {self.path}: {exc}") from exc
        return cursor.rowcount == 1

    def get(self, address: str) -> Suppression | None:
        key = address_key(address)
        rows = self._query(f"SELECT {_COLUMNS} FROM suppressions WHERE address_lower = ?", (key,))
        return _suppression(rows[0]) if rows else None

    def contains(self, address: str) -> bool:
        try:
            key = address_key(address)
        except SuppressionError:
            return False
        return bool(self._query("SELECT 1 FROM suppressions WHERE address_lower = ?", (key,)))

    def filter(self, addresses: Iterable[str]) -> set[str]:
        """The suppressed ones among ``addresses``, lower-cased as given (chunked IN queries)."""
        if not self._query("SELECT 1 FROM suppressions LIMIT 1"):
            return set()  # the common case of a young list: nothing to normalise or look up
        given_by_key: dict[str, set[str]] = {}
        for address in addresses:
            try:
                key = address_key(address)
            except SuppressionError:
                continue  # not an address: it cannot be on the list
            given_by_key.setdefault(key, set()).add(address.strip().lower())
        keys = list(given_by_key)
        found: set[str] = set()
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._query(
                f"SELECT address_lower FROM suppressions WHERE address_lower IN ({marks})", chunk
            )
            for (key,) in rows:
                found |= given_by_key[str(key)]
        return found

    def iter(self, reason: str | None = None) -> Iterator[Suppression]:
        """Every suppression, oldest first; only those of ``reason`` when given."""
        params: tuple[str, ...] = ()
        sql = f"SELECT {_COLUMNS} FROM suppressions"
        if reason is not None:
            sql += " WHERE reason = ?"
            params = (_check_reason(reason),)
        sql += " ORDER BY created_at, address_lower"
        try:
            cursor = self._db.execute(sql, params)
            while rows := cursor.fetchmany(1000):
                yield from (_suppression(row) for row in rows)
        except sqlite3.Error as exc:
            raise SuppressionError(f"cannot read {self.path}: {exc}") from exc

    def __iter__(self) -> Iterator[Suppression]:
        return self.iter()

    def count(self, reason: str | None = None) -> int:
        if reason is None:
            rows = self._query("SELECT COUNT(*) FROM suppressions")
        else:
            rows = self._query(
                "SELECT COUNT(*) FROM suppressions WHERE reason = ?", (_check_reason(reason),)
            )
        return int(rows[0][0])

    def count_for_edition(self, slug: str) -> int:
        """How many addresses were suppressed through the links of edition ``slug``."""
        return int(self._query("SELECT COUNT(*) FROM suppressions WHERE slug = ?", (slug,))[0][0])

    def edition_origins(self, slug: str) -> dict[tuple[str, str], int]:
        """``{(reason, source): count}`` of the suppressions that edition ``slug`` caused: its
        unsubscribe links, its refusals at send time, the bounce reports about it."""
        rows = self._query(
            "SELECT reason, source, COUNT(*) FROM suppressions WHERE slug = ?"
            " GROUP BY reason, source ORDER BY COUNT(*) DESC, reason, source",
            (slug,),
        )
        return {(str(reason), str(source)): int(n) for reason, source, n in rows}

    def count_by_reason(self) -> dict[str, int]:
        """``{reason: count}`` for every reason, zeros included, in REASONS order."""
        counts = dict.fromkeys(REASONS, 0)
        for reason, n in self._query("SELECT reason, COUNT(*) FROM suppressions GROUP BY reason"):
            counts[str(reason)] = int(n)
        return counts

    def export_csv(self, stream: TextIO, reason: str | None = None) -> int:
        """Write ``email,status,reason,source,created_at`` rows (``status`` in the subscribers
        CSV's vocabulary, so the file merges back into a list); return the number of rows.
        A cell a spreadsheet would evaluate (``=1+1@x``) is written with a leading ``'``."""
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(EXPORT_COLUMNS)
        written = 0
        for item in self.iter(reason):
            row = (item.address, item.csv_status, item.reason, item.source, item.created_at)
            writer.writerow(neutralise_row(row))
            written += 1
        return written

    # -- bounces ------------------------------------------------------------------------------

    def record_bounce_report(
        self,
        report_id: str,
        hard: Sequence[tuple[str, str | None]],
        soft: Sequence[tuple[str, str | None]],
        *,
        source: str = "dsn",
    ) -> tuple[int, int] | None:
        """Record one delivery report in one transaction: each ``(address, status)`` of ``hard``
        becomes a ``bounced`` suppression, each of ``soft`` adds one to that address's soft-bounce
        count. Returns ``(new suppressions, soft bounces counted)``, or None when a report of
        this id was already imported (re-importing a mailbox counts nothing twice)."""
        now = utc_timestamp()
        hard_rows = [(checked_address(a), address_key(a), status) for a, status in hard]
        soft_rows = [(checked_address(a), address_key(a), status) for a, status in soft]
        with self._transaction() as db:
            try:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO bounce_reports (report_id, imported_at) VALUES (?, ?)",
                    (report_id, now),
                )
                if cursor.rowcount == 0:
                    return None
                added = 0
                for address, key, status in hard_rows:
                    cursor = db.execute(
                        "INSERT OR IGNORE INTO suppressions"
                        " (address_lower, address, reason, source, created_at, slug, note)"
                        " VALUES (?, ?, 'bounced', ?, ?, NULL, ?)",
                        (key, address, source, now, status and f"status {status}"),
                    )
                    added += cursor.rowcount
                for address, key, status in soft_rows:
                    db.execute(
                        "INSERT INTO soft_bounces (address_lower, address, count, last_status,"
                        " last_at) VALUES (?, ?, 1, ?, ?) ON CONFLICT (address_lower) DO UPDATE"
                        " SET count = count + 1, last_status = excluded.last_status,"
                        " last_at = excluded.last_at",
                        (key, address, status, now),
                    )
            except sqlite3.Error as exc:
                raise SuppressionError(f"cannot write to {self.path}: {exc}") from exc
        return added, len(soft_rows)

    def record_edition_soft_bounces(
        self, slug: str, bounces: Sequence[tuple[str, str | None]], *, source: str
    ) -> list[str]:
        """Note that each ``(address, status)`` of ``bounces`` bounced softly in edition ``slug``
        (once per edition, however often); return the addresses this suppressed (reason
        ``soft-bounced``): those that bounced softly in each of the last
        :data:`SOFT_BOUNCE_EDITIONS` editions the send ledger holds for them."""
        now = utc_timestamp()
        rows = [(address_key(a), checked_address(a), status) for a, status in bounces]
        suppressed: list[str] = []
        with self._transaction() as db:
            try:
                has_ledger = db.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'deliveries'"
                ).fetchone()
                for key, address, status in rows:
                    db.execute(
                        "INSERT INTO edition_soft_bounces (address_lower, slug, status, source, at)"
                        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (address_lower, slug) DO UPDATE"
                        " SET status = excluded.status, at = excluded.at",
                        (key, slug, status, source, now),
                    )
                    if not has_ledger:
                        continue  # without the ledger no edition order is known
                    # The editions this address was sent (the ledger's rows, newest first), each
                    # with whether it bounced softly there.
                    latest = db.execute(
                        "SELECT EXISTS (SELECT 1 FROM edition_soft_bounces b"
                        " WHERE b.address_lower = d.address_key AND b.slug = d.slug)"
                        " FROM deliveries d WHERE d.address_key = ? ORDER BY d.id DESC LIMIT ?",
                        (key, SOFT_BOUNCE_EDITIONS),
                    ).fetchall()
                    if len(latest) < SOFT_BOUNCE_EDITIONS or not all(b for (b,) in latest):
                        continue
                    cursor = db.execute(
                        "INSERT OR IGNORE INTO suppressions"
                        " (address_lower, address, reason, source, created_at, slug, note)"
                        " VALUES (?, ?, 'soft-bounced', ?, ?, ?, ?)",
                        (
                            key,
                            address,
                            source,
                            now,
                            slug,
                            f"soft bounces in {SOFT_BOUNCE_EDITIONS} editions in a row"
                            + (f", last {status}" if status else ""),
                        ),
                    )
                    if cursor.rowcount:
                        suppressed.append(address)
            except sqlite3.Error as exc:
                raise SuppressionError(f"cannot write to {self.path}: {exc}") from exc
        return suppressed

    def soft_bounce_count(self, address: str) -> int:
        key = address_key(address)
        rows = self._query("SELECT count FROM soft_bounces WHERE address_lower = ?", (key,))
        return int(rows[0][0]) if rows else 0

    def soft_bounces(self) -> Iterator[SoftBounce]:
        """Every address that bounced softly, most bounces first."""
        rows = self._query(
            "SELECT address, count, last_status, last_at FROM soft_bounces"
            " ORDER BY count DESC, address_lower"
        )
        for address, count, last_status, last_at in rows:
            yield SoftBounce(str(address), int(count), last_status, str(last_at))


_COLUMNS = "address, reason, source, created_at, slug, note"


def _suppression(row: tuple[Any, ...]) -> Suppression:
    address, reason, source, created_at, slug, note = row
    return Suppression(
        address=str(address),
        reason=str(reason),
        source=str(source),
        created_at=str(created_at),
        slug=None if slug is None else str(slug),
        note=None if note is None else str(note),
    )
