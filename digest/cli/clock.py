"""The command line's clock: now, or ``DIGEST_NOW`` (an ISO 8601 time with its offset, e.g.
``2026-03-31T10:00:00Z``) for ``send --due`` and ``status``. It is a testing aid, read only here,
never by the core: the core is always given the time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime

from digest.errors import ConfigError

NOW_VARIABLE = "DIGEST_NOW"


def current_time(environ: Mapping[str, str] | None = None) -> datetime:
    """Now, or the time in DIGEST_NOW (a testing aid) when it is set."""
    raw = (os.environ if environ is None else environ).get(NOW_VARIABLE, "").strip()
    if not raw:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ConfigError(
            f"{NOW_VARIABLE} must be an ISO 8601 time with its offset, "
            f"e.g. 2026-03-31T10:00:00Z, not {raw!r}"
        )
    return moment
