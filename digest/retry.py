"""How a send retries: one :class:`RetryPolicy`, set by the command line, refined by a backend.

The sending engine asks the policy how long to wait before the next try and when to give up; it
holds no retry constants of its own. ``digest send --retry attempts=3,backoff=0.5`` sets it from
the command line (:meth:`RetryPolicy.from_spec`); a backend may refine it for its provider in
``Backend.retry_policy`` (e.g. a longer first wait for an API with strict rate limits).
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

_SPEC_KEYS = {
    "attempts": "attempts",
    "backoff": "backoff",
    "max-backoff": "max_backoff",
    "jitter": "jitter",
    "max-retry-time": "max_retry_time",
    "outage": "outage",
}
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of one run.

    * ``attempts``: tries per recipient (deferred replies and whole-batch transient errors
      together) before a deferred recipient counts as failed, or the batch is left pending;
    * ``backoff``: seconds; the wait before try ``n + 1`` is up to ``backoff * 2**(n-1)``...
    * ``max_backoff``: ... capped at this;
    * ``jitter``: the random share of each wait (0: none; 0.5: between half and all of it), so
      workers refused together do not come back together;
    * ``max_retry_time``: seconds a recipient the server throttles (421, 450, 451, 4.7.x,
      HTTP 429) is retried, from its first throttled try; throttled tries do not count against
      ``attempts`` (the server asks for a slower pace, which says nothing about the recipient),
      so this alone ends them (``--max-retry-time``, default 1 h; None: never);
    * ``outage``: seconds of consecutive failures with no success anywhere after which the run
      stops (exit 4): the server is down, a rerun resumes.
    """

    attempts: int = 6
    backoff: float = 2.0
    max_backoff: float = 60.0
    jitter: float = 0.5
    max_retry_time: float | None = 3600.0
    outage: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.backoff < 0 or self.max_backoff < 0:
            raise ValueError("backoff must not be negative")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")
        if self.max_retry_time is not None and self.max_retry_time < 0:
            raise ValueError("max-retry-time must not be negative")
        if self.outage <= 0:
            raise ValueError("outage must be a positive number of seconds")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after ``attempt`` failed tries (1 for the first), at least the
        server's ``retry_after`` (itself capped at five times ``max_backoff``)."""
        ceiling = min(self.max_backoff, self.backoff * 2 ** max(attempt - 1, 0))
        delay = random.uniform(ceiling * (1 - self.jitter), ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_backoff * 5))
        return delay

    def gives_up(self, attempts: int, deferred_for: float) -> bool:
        """Whether a recipient tried ``attempts`` times (throttled tries not counted), first
        throttled ``deferred_for`` seconds ago (0 when never), is not tried again."""
        if attempts >= self.attempts:
            return True
        return self.max_retry_time is not None and deferred_for >= self.max_retry_time

    def refined(self, **changes: float | int | None) -> RetryPolicy:
        """A copy with ``changes`` (for a backend's :meth:`Backend.retry_policy`)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_spec(cls, spec: str, base: RetryPolicy | None = None) -> RetryPolicy:
        """``attempts=3,backoff=0.5s,max-retry-time=1h`` over ``base``; ValueError naming the
        part that is wrong. Durations take ``s``, ``m`` or ``h`` (default seconds)."""
        changes: dict[str, float | int | None] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, text = part.partition("=")
            name = _SPEC_KEYS.get(key.strip().lower())
            if not sep or name is None:
                raise ValueError(
                    f"{part!r}: expected KEY=VALUE with KEY one of {', '.join(_SPEC_KEYS)}"
                )
            text = text.strip().lower()
            try:
                if name == "attempts":
                    changes[name] = int(text)
                elif name == "jitter":
                    changes[name] = float(text)
                elif name == "max_retry_time" and text in ("none", "off"):
                    changes[name] = None
                else:
                    unit = _UNITS.get(text[-1:])
                    changes[name] = float(text[:-1] if unit else text) * (unit or 1.0)
            except ValueError:
                raise ValueError(f"{part!r}: {text!r} is not a number") from None
        return dataclasses.replace(base or cls(), **changes)  # type: ignore[arg-type]
