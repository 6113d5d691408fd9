"""How hard to push the server: the number of batches in flight, and a pause between them.

A :class:`Pacing` is shared by the workers of one run. Each worker takes a slot before it hands
a batch to the backend, so at most :attr:`Pacing.limit` batches (SMTP connections, Mailgun
requests) are in flight at once; the limit moves between 1 and ``ceiling``:

* it **grows** by one after every ``limit x GROW_AFTER`` messages accepted in a row, as long as
  the server still answers quickly (the recent answer time within ``SLOW_FACTOR`` times the best
  seen, or under ``QUICK_SECONDS``) and nothing was throttled in the last ``COOLDOWN`` seconds;
* it **halves** when the server throttles (421, 450, 451, 4.7.x, HTTP 429); once at one, the
  starts of batches are spaced out instead (the interval doubles, up to ``MAX_INTERVAL``);
* when calm returns, the interval halves again before the limit grows: back up the way it came.

An explicit ``--concurrency N`` starts at N (the user chose it) and only comes down on
throttling; the default starts at ``AUTO_START`` and grows to the default ceiling.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

AUTO_START = 2
AUTO_CEILING = 8
GROW_AFTER = 8  # accepted messages per slot in flight, between two steps up
SLOW_FACTOR = 4.0
QUICK_SECONDS = 0.05
COOLDOWN = 5.0  # seconds after a throttling reply during which nothing grows
MIN_INTERVAL = 0.05
MAX_INTERVAL = 5.0
_SMOOTHING = 0.2  # weight of the newest answer time in the moving average


class Pacing:
    """The shared limit on batches in flight; see the module's docstring."""

    def __init__(
        self,
        *,
        start: int,
        ceiling: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= start <= ceiling:
            raise ValueError("pacing needs 1 <= start <= ceiling")
        self.ceiling = ceiling
        self.limit = start
        self.interval = 0.0  # seconds between the starts of two batches; 0: no pause
        self.peak = start  # the highest limit reached, for the summary and the benchmark
        self.throttles = 0  # throttling replies seen in this run
        self._clock = clock
        self._in_flight = 0
        self._changed = asyncio.Condition()
        self._accepted_since_change = 0
        self._average: float | None = None
        self._best: float | None = None
        self._last_throttle: float | None = None
        self._next_start = 0.0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for a free slot (and the pause, when there is one); hold it for one batch."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._in_flight < self.limit)
            self._in_flight += 1
        try:
            if self.interval:
                now = self._clock()
                start = max(now, self._next_start)
                self._next_start = start + self.interval
                if start > now:
                    await asyncio.sleep(start - now)
            yield
        finally:
            async with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

    def accepted(self, count: int, seconds: float) -> None:
        """``count`` messages went through in a batch that took ``seconds``."""
        if count <= 0:
            return
        each = seconds / count
        self._average = (
            each if self._average is None else (1 - _SMOOTHING) * self._average + _SMOOTHING * each
        )
        self._best = self._average if self._best is None else min(self._best, self._average)
        self._accepted_since_change += count
        if self._accepted_since_change < self.limit * GROW_AFTER or self._cooling_down():
            return
        if self.interval:
            self.interval = self.interval / 2 if self.interval / 2 >= MIN_INTERVAL else 0.0
            self._changed_now()
        elif self.limit < self.ceiling and self._answers_quickly():
            self.limit += 1
            self.peak = max(self.peak, self.limit)
            self._changed_now()
            # No wake-up needed: the caller releases its slot next, which notifies the waiters.

    def throttled(self) -> None:
        """The server asked for a slower pace: fewer batches in flight, or longer pauses."""
        self.throttles += 1
        now = self._clock()
        if self._last_throttle is not None and now - self._last_throttle < 1.0:
            self._last_throttle = now
            return  # the batches in flight answer together: one step down per burst
        self._last_throttle = now
        if self.limit > 1:
            self.limit = max(1, self.limit // 2)
        else:
            self.interval = min(max(self.interval * 2, MIN_INTERVAL), MAX_INTERVAL)
        self._changed_now()

    # -- internals ------------------------------------------------------------------------------

    def _cooling_down(self) -> bool:
        return self._last_throttle is not None and self._clock() - self._last_throttle < COOLDOWN

    def _answers_quickly(self) -> bool:
        if self._average is None or self._best is None:
            return True
        return self._average <= QUICK_SECONDS or self._average <= SLOW_FACTOR * self._best

    def _changed_now(self) -> None:
        self._accepted_since_change = 0
