"""Mailgun's own suppression lists (unsubscribes, bounces, complaints) pulled into the store.

Mailgun refuses to deliver to an address on its lists anyway, but the store is what every send,
``validate --subscribers`` and the exported CSV go by: syncing first means a Mailgun send leaves
those addresses out (and says how many) instead of reporting them as failures.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice

import httpx

from digest.audience.suppressions import (
    SuppressionError,
    SuppressionStore,
    checked_address,
)
from digest.backends.mailgun import fetch_suppressions
from digest.settings import Settings

SOURCE = "mailgun"
MAILGUN_REASONS = ("unsubscribed", "bounced", "complained")  # Mailgun's three lists
_BATCH = 500  # rows per transaction: a sync cut short keeps every batch already committed


@dataclass(frozen=True)
class SyncReport:
    added: int  # addresses new to the store
    seen: int  # entries Mailgun listed (an address on two lists counts twice)
    by_reason: dict[str, int] = field(default_factory=dict)  # entries seen per Mailgun list
    skipped: int = 0  # entries without a usable address or with an unknown reason


def sync_from_mailgun(
    store: SuppressionStore, settings: Settings, *, client: httpx.Client | None = None
) -> SyncReport:
    """Page through the domain's Mailgun unsubscribes, bounces and complaints into ``store``.

    Raises ConfigError when MAILGUN_API_KEY or MAILGUN_DOMAIN is missing, BackendError (from
    the Mailgun backend) when the API refuses or cannot be reached. ``client`` is passed on to
    ``fetch_suppressions`` (a caller's own httpx.Client, e.g. with a proxy)."""
    settings.require("MAILGUN_API_KEY", "MAILGUN_DOMAIN")
    by_reason = dict.fromkeys(MAILGUN_REASONS, 0)
    added = seen = skipped = 0
    entries: Iterator[tuple[str, str, datetime | str | None]] = iter(
        fetch_suppressions(settings, client=client)
    )
    while batch := list(islice(entries, _BATCH)):
        rows = []
        for address, reason, created_at in batch:
            seen += 1
            try:
                checked_address(address)
            except SuppressionError:
                skipped += 1
                continue
            if reason not in by_reason:
                skipped += 1
                continue
            by_reason[reason] += 1
            rows.append((address, reason, SOURCE, None, None, created_at))
        added += store.add_many(rows)
    return SyncReport(added=added, seen=seen, by_reason=by_reason, skipped=skipped)
