"""The results of the last ``digest links`` of each edition, as kept in the state folder.

A leaf: ``digest.curate.links`` writes them, the preview's checks panel reads them, and neither
imports the other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CACHE_FILE = "links.json"  # in the state folder: answers per address, and runs per edition


@dataclass(frozen=True)
class LinkRun:
    """The last check of one edition."""

    slug: str
    path: str
    checked_at: float  # seconds since the epoch
    links: int
    broken: list[dict[str, Any]]  # {where, url, status}
    notes: list[dict[str, Any]]  # {where, url, note}


def read_link_file(state_dir: Path) -> dict[str, Any]:
    """The whole file; empty when there is none or it is damaged (then links are asked again)."""
    try:
        data = json.loads((state_dir / CACHE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def last_link_check(state_dir: Path, slug: str) -> LinkRun | None:
    """The results of the last ``digest links`` of edition ``slug``, or None."""
    runs = read_link_file(state_dir).get("editions")
    entry = runs.get(slug) if isinstance(runs, dict) else None
    if not isinstance(entry, dict):
        return None
    try:
        return LinkRun(**entry)
    except TypeError:
        return None


__all__ = ["CACHE_FILE", "LinkRun", "last_link_check", "read_link_file"]
