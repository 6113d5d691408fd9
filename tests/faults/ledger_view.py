"""Read the send ledger the way an auditor would: straight from the SQLite file, no digest code."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

DB_NAME = "digest.sqlite3"


@dataclass(frozen=True)
class Row:
    address: str  # lower-cased
    status: str
    attempts: int
    last_error: str | None


def ledger_rows(state_dir: Path, slug: str) -> dict[str, Row]:
    """Every row of ``slug``, by lower-cased address; empty when there is no ledger yet."""
    path = state_dir / DB_NAME
    if not path.exists():
        return {}
    # A plain connection: the writer may have died mid-transaction; SQLite recovers the WAL.
    db = sqlite3.connect(path)
    try:
        rows = db.execute(
            "SELECT address_key, status, attempts, last_error FROM deliveries WHERE slug = ?",
            (slug,),
        ).fetchall()
    finally:
        db.close()
    return {
        address: Row(address, status, attempts, error) for address, status, attempts, error in rows
    }


def by_status(rows: dict[str, Row], status: str) -> set[str]:
    return {address for address, row in rows.items() if row.status == status}
