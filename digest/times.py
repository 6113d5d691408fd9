"""Durations and moments as people write and read them (``7d``, ``2026-03-31 09:00 UTC``): a
leaf, so scheduling, sending and the command line say times the same way."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

_DURATION_PART = re.compile(r"(\d+)\s*([wdhms])")
_DURATION_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(text: str) -> timedelta:
    """``"7d"``, ``"36h"``, ``"90m"``, ``"1d12h"`` or ``"0"`` -> timedelta; ValueError otherwise."""
    cleaned = text.strip().lower()
    if cleaned == "0":
        return timedelta(0)
    if not cleaned or _DURATION_PART.sub("", cleaned).strip():
        raise ValueError(
            f"invalid duration {text!r}: use a number with a unit (w, d, h, m or s), "
            "e.g. 7d, 36h, 90m, 1d12h, or 0"
        )
    total = timedelta(0)
    for amount, unit in _DURATION_PART.findall(cleaned):
        total += timedelta(**{_DURATION_UNITS[unit]: int(amount)})
    return total


def format_duration(delta: timedelta) -> str:
    """A span as a person says it: ``3d 4h``, ``2h 5m``, ``45m``, ``less than a minute``."""
    minutes = int(abs(delta).total_seconds()) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m" if minutes else "less than a minute"


def format_time(moment: datetime) -> str:
    """``2026-03-31 09:00 UTC`` (or with its own offset when it is not UTC)."""
    offset = moment.utcoffset()
    if offset is None or offset == timedelta(0):
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return moment.strftime("%Y-%m-%d %H:%M%z")
