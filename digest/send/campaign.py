"""The sending engine: recipients in, messages out, every outcome in the ledger.

It knows two interfaces: where recipients come from (any iterable of
:class:`~digest.audience.subscribers.Subscriber`) and where messages go (a
:class:`~digest.backends.base.Backend`). One run, in asyncio:

* a **producer** reads recipients in chunks, leaves out suppressed addresses and those the ledger
  already has as sent (or failed, unless ``retry_failed``), records the rest as *pending* in the
  ledger **before** any is sent, and queues them in batches of ``backend.batch_size``;
* ``concurrency`` **workers** take batches, wait for the shared rate limiter (GCRA: ``rate=2.5``
  spaces messages 0.4 s apart, it never bursts), hand the batch to the backend and record each
  result at once: ``mark_sent`` right after the server accepted, ``mark_failed`` for a permanent
  refusal;
* DEFERRED results and transient :class:`BackendError` are retried as the run's
  :class:`~digest.retry.RetryPolicy` says (exponential backoff with jitter, a server's
  ``retry_after`` honoured; the command line sets it, the backend may refine it). A recipient
  the server keeps deferring gets ``policy.attempts`` tries, then is marked failed with the last
  reply. A batch that cannot be tried at all (server unreachable, connection lost) is never
  marked failed: after ``policy.attempts`` it is left pending and the run ends with exit 4, for a
  rerun to take it;
* **throttling** (421, 450, 451, 4.7.x, HTTP 429: :mod:`digest.send.replies`) is the server
  asking for a slower pace, not a verdict on the recipient: the shared :class:`Pacing` takes
  fewer batches in flight (then spaces them out) and closes idle connections beyond them; the
  recipient is retried, those attempts not counted against ``policy.attempts``, until
  ``policy.max_retry_time`` (``--max-retry-time``, 1 h) has passed since its first throttled
  attempt; only then is it failed. Quiet again, the pace grows back;
* a recipient refused because the address does not exist (5.1.1, 5.1.2, 5.1.10, or a 550/553
  saying so) is suppressed at once (reason ``bounced``, source ``smtp``); one failed on a
  temporary refusal is a soft bounce of this edition, and soft bounces in three editions in a
  row suppress (reason ``soft-bounced``);
* a **circuit breaker** stops the run when the server stays down (``breaker_failures``
  consecutive failed attempts with no success for ``policy.outage`` seconds):
  :class:`SendStopped`, exit 4, rerun to resume;
* SIGINT/SIGTERM (when ``handle_signals``): no new batch is started, batches in flight get
  ``grace_seconds`` to finish and be recorded, then :class:`SendStopped`.

The in-flight window: a message the server accepted is recorded before its worker takes anything
else, so a ``kill -9`` can lose at most the record of the batches in flight at that instant,
``concurrency × batch_size`` messages, which a rerun sends again. Nothing else is lost or resent.
(Results that arrive in the same turn of the event loop share one ledger transaction; each
worker still waits for its own results' commit before it takes more work.)
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from digest.backends.base import (
    Backend,
    CampaignInfo,
    DeliveryResult,
    DeliveryStatus,
    OutgoingMessage,
)
from digest.batching import batched
from digest.errors import BackendError, ConfigError, DigestError, SendStopped
from digest.retry import RetryPolicy
from digest.send.pacing import Pacing
from digest.send.replies import parse_reply

if TYPE_CHECKING:
    from digest.audience.subscribers import Subscriber
    from digest.audience.suppressions import SuppressionStore
    from digest.ledger import Ledger

# Reasons a recipient of the list is not sent to in this run (keys of RunResult.skipped).
SKIP_SUPPRESSED = "suppressed"
SKIP_ALREADY_SENT = "already sent"
SKIP_FAILED_BEFORE = "failed before (use --retry-failed)"
SKIP_OVER_LIMIT = "over --limit"
_FAILURES_KEPT = 100
SUPPRESSION_SOURCE = "smtp"  # refusals read from the server's reply at send time
# How aiosmtplib shows a refusal when connecting, inside a BackendError's text: "(421, '4.7.0 ..".
_THROTTLING_IN_TEXT = re.compile(r"\(4(?:21|50|51), |\b4\.7\.\d{1,3}\b")


class MessageSource(Protocol):
    """What the engine needs of :class:`digest.send.message.MessageFactory`."""

    campaign: CampaignInfo

    def message_for(self, subscriber: Subscriber) -> OutgoingMessage: ...


@dataclass(frozen=True)
class SendOptions:
    concurrency: int = 4  # the most batches in flight (SMTP connections, Mailgun requests)
    start_concurrency: int | None = None  # where the adaptive pace starts; None: at concurrency
    rate: float | None = None  # messages per second, smooth; None: as fast as the backend goes
    limit: int | None = None  # send to at most this many recipients in this run
    retry_failed: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)  # the backend may refine it
    breaker_failures: int = 5  # consecutive failed attempts, across all workers, with no
    # success for retry.outage seconds: the server is down
    grace_seconds: float = 10.0  # on interrupt, how long batches in flight may take to finish
    chunk_size: int = 500  # recipients read, filtered and enqueued per ledger transaction

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.start_concurrency is not None and not (
            1 <= self.start_concurrency <= self.concurrency
        ):
            raise ValueError("start_concurrency must be between 1 and concurrency")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be a positive number of messages per second")
        if self.limit is not None and self.limit < 0:
            raise ValueError("limit must not be negative")


@dataclass(frozen=True)
class Progress:
    sent: int
    failed: int
    total: int | None  # recipients this run means to send to, when known beforehand
    rate: float  # messages per second since the start


@dataclass
class RunResult:
    slug: str
    sent: int = 0
    failed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0
    left_pending: int = 0  # queued for this run but not finished (stopped, or server kept failing)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (address, error), this run
    stopped: str | None = None  # why the run stopped before the end

    @property
    def outcome(self) -> str:
        if self.stopped or self.left_pending:
            return "stopped"
        if self.skipped.get(SKIP_OVER_LIMIT):
            return "partial"  # --limit left recipients for a later run
        return "failures" if self.failed else "done"


class RateLimiter:
    """GCRA: each message reserves the next slot ``1/rate`` seconds after the previous one, so
    ``rate=2.5`` means one message every 0.4 s, never five at once then a pause."""

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._clock = clock
        self._next_slot = 0.0

    def reserve(self, count: int = 1) -> float:
        """Reserve ``count`` slots; return how many seconds to wait before sending."""
        if not self.interval:
            return 0.0
        now = self._clock()
        start = max(now, self._next_slot)
        self._next_slot = start + self.interval * count
        return start - now


class CircuitBreaker:
    """Trips when attempts keep failing and nothing has succeeded for ``seconds``."""

    def __init__(
        self, failures: int, seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failures = failures
        self.seconds = seconds
        self._clock = clock
        self._consecutive = 0
        self._since: float | None = None

    def success(self) -> None:
        self._consecutive = 0
        self._since = None

    def failure(self) -> bool:
        """Count one failed attempt; True when the server must be considered down."""
        now = self._clock()
        self._consecutive += 1
        if self._since is None:
            self._since = now
        return self._consecutive >= self.failures and now - self._since >= self.seconds


def filter_recipients(
    chunk: Sequence[Subscriber],
    *,
    slug: str,
    ledger: Ledger | None,
    suppressions: SuppressionStore | None,
    retry_failed: bool,
    skipped: Counter[str],
) -> list[Subscriber]:
    """The recipients of ``chunk`` this run must send to; counts the others in ``skipped``."""
    suppressed = suppressions.filter(s.email for s in chunk) if suppressions else set()
    statuses = ledger.statuses(slug, [s.email for s in chunk]) if ledger else {}
    keep = []
    for subscriber in chunk:
        key = subscriber.email.lower()
        status = statuses.get(subscriber.email, statuses.get(key))
        if key in suppressed:
            skipped[SKIP_SUPPRESSED] += 1
        elif status == "sent":
            skipped[SKIP_ALREADY_SENT] += 1
        elif status == "failed" and not retry_failed:
            skipped[SKIP_FAILED_BEFORE] += 1
        else:
            keep.append(subscriber)
    return keep


@dataclass(frozen=True)
class Plan:
    """What a run would do, counted before it starts (for the confirmation prompt)."""

    to_send: int
    skipped: Counter[str]


def plan_campaign(
    recipients: Iterable[Subscriber],
    *,
    slug: str,
    ledger: Ledger | None,
    suppressions: SuppressionStore | None,
    options: SendOptions,
) -> Plan:
    """Count who a run would send to; reads, never writes."""
    skipped: Counter[str] = Counter()
    to_send = 0
    for chunk in batched(recipients, options.chunk_size):
        to_send += len(
            filter_recipients(
                chunk,
                slug=slug,
                ledger=ledger,
                suppressions=suppressions,
                retry_failed=options.retry_failed,
                skipped=skipped,
            )
        )
    if options.limit is not None and to_send > options.limit:
        skipped[SKIP_OVER_LIMIT] = to_send - options.limit
        to_send = options.limit
    return Plan(to_send=to_send, skipped=skipped)


class _Fatal(Exception):
    """A worker met an error that must stop the whole run."""


def _is_throttling_reply(error: str) -> bool:
    """A deferral asking for a slower pace: SMTP 421/450/451/4.7.x, or an API's rate limit."""
    return parse_reply(error).is_throttling or "rate limit" in error.lower()


def _is_throttling(exc: BackendError) -> bool:
    """A whole batch refused for pace: HTTP 420/429, or SMTP 421/4.7.x when connecting."""
    if exc.status in (420, 429):
        return True
    text = str(exc)
    return bool(_THROTTLING_IN_TEXT.search(text)) or "rate limit" in text.lower()


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass
class _Tries:
    """The retry state of one batch while a worker holds it."""

    waiting: list[Subscriber]  # still to be tried
    attempts: Counter[str] = field(default_factory=Counter)  # per recipient: deferrals
    counted: Counter[str] = field(default_factory=Counter)  # those policy.attempts counts
    first_deferred: dict[str, float] = field(default_factory=dict)  # first throttled, monotonic
    last_error: dict[str, str] = field(default_factory=dict)
    batch_failures: int = 0  # whole-batch transient errors


@dataclass
class _Sorted:
    """One answer of the backend, sorted by what happens next to each recipient."""

    sent: list[tuple[str, str]] = field(default_factory=list)  # (address, provider id)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (address, error)
    deferred: list[Subscriber] = field(default_factory=list)
    retry_after: float | None = None  # the longest wait a server named
    throttled: bool = False  # the server asked for a slower pace
    seconds: float = 0.0  # how long the backend took to answer


class Campaign:
    """One run of one edition. ``ledger=None`` records nothing (dry runs, ``--test`` proofs)."""

    def __init__(
        self,
        *,
        messages: MessageSource,
        backend: Backend,
        recipients: Iterable[Subscriber],
        ledger: Ledger | None,
        suppressions: SuppressionStore | None = None,
        options: SendOptions | None = None,
        total: int | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.messages = messages
        self.backend = backend
        self.recipients = recipients
        self.ledger = ledger
        self.suppressions = suppressions
        self.options = options or SendOptions()
        self.retry = backend.retry_policy(self.options.retry)
        self.total = total
        self.on_progress = on_progress
        self.slug = messages.campaign.slug
        self.result = RunResult(slug=self.slug)
        self._limiter = RateLimiter(self.options.rate)
        self._breaker = CircuitBreaker(self.options.breaker_failures, self.retry.outage)
        self._stop = asyncio.Event()
        self._queue: asyncio.Queue[list[Subscriber] | None] = asyncio.Queue(
            # Two batches per connection for SMTP's one-message batches; for Mailgun's batches
            # of 1,000, two in all: a request takes far longer than reading the next batch.
            maxsize=max(2, self.options.concurrency * 2 // max(backend.batch_size, 1))
        )
        self._started = time.monotonic()
        self._queued = 0
        self._busy: set[asyncio.Task[None]] = set()
        self.pacing = Pacing(
            start=self.options.start_concurrency or self.options.concurrency,
            ceiling=self.options.concurrency,
        )
        self._produced_all = False  # the producer read the whole list
        self._unread: Iterator[Sequence[Subscriber]] | None = None  # what it had not read
        self._over_limit: Iterator[Sequence[Subscriber]] | None = None  # the rest, past --limit
        self._uncommitted_sent: list[tuple[str, str]] = []
        self._uncommitted_failed: list[tuple[str, str]] = []
        self._commit_due: asyncio.Future[None] | None = None

    # -- public -------------------------------------------------------------------------------

    def request_stop(self, reason: str = "interrupted") -> None:
        """Stop taking new work; batches in flight finish (the signal handlers call this)."""
        if self.result.stopped is None:
            self.result.stopped = reason
        self._stop.set()

    async def run(self, *, handle_signals: bool = False) -> RunResult:
        """Send; return the counts. Raises SendStopped (exit 4) when stopped before the end."""
        started_at = datetime.now(UTC)
        self._started = time.monotonic()
        try:
            await self.backend.open(self.messages.campaign)
        except BackendError as exc:
            await self.backend.close()
            if exc.transient:
                raise SendStopped(str(exc), hint=self._resume_hint()) from None
            raise
        except BaseException:
            await self.backend.close()
            raise
        fatal: BaseException | None = None
        with self._signals(handle_signals):
            finished = False
            try:
                fatal = await self._run_workers()
                finished = True
            finally:
                await self.backend.close()
                self.result.elapsed = time.monotonic() - self._started
                if finished and fatal is None:
                    await self._count_over_limit()
                self._record_run(started_at)
        if fatal is not None:
            if isinstance(fatal, ConfigError) and not self.result.sent:
                raise fatal  # e.g. a rejected API key before anything went out: exit 1
            message = str(fatal) if isinstance(fatal, DigestError) else repr(fatal)
            raise SendStopped(
                f"the send stopped: {message} ({self._counts_line()})", hint=self._resume_hint()
            ) from fatal
        if self.result.stopped or self.result.left_pending:
            reason = self.result.stopped or (
                f"{self.result.left_pending} recipient(s) could not be tried; the server kept "
                "failing"
            )
            raise SendStopped(
                f"the send stopped before the end: {reason} ({self._counts_line()})",
                hint=self._resume_hint(),
            )
        return self.result

    # -- the run ------------------------------------------------------------------------------

    async def _run_workers(self) -> BaseException | None:
        producer = asyncio.create_task(self._produce(), name="digest-producer")
        workers = [
            asyncio.create_task(self._work(), name=f"digest-worker-{n}")
            for n in range(self.options.concurrency)
        ]
        everything = [producer, *workers]
        stop_wait = asyncio.create_task(self._stop.wait())
        done_all = asyncio.gather(*everything, return_exceptions=True)
        waiters: list[asyncio.Future[Any]] = [stop_wait, done_all]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if not done_all.done():
            # Stopping: idle workers go now; those with a batch in hand get the grace period
            # to finish it and record the results.
            producer.cancel()
            for task in workers:
                if task not in self._busy:
                    task.cancel()
            await asyncio.wait([done_all], timeout=self.options.grace_seconds)
            for task in everything:
                task.cancel()
        stop_wait.cancel()
        outcomes = await done_all
        if self._commit_due is not None:
            # Results of workers cancelled while they waited for the commit: recorded now.
            with contextlib.suppress(Exception):
                await self._commit_due
        fatal = None
        for outcome in outcomes:
            if isinstance(outcome, _Fatal):
                fatal = fatal or outcome.__cause__ or outcome
            elif isinstance(outcome, Exception):
                fatal = fatal or outcome
        left = max(self._queued - self.result.sent - self.result.failed, 0)
        if not self._produced_all:
            # Stopped before the whole list was read: what is left is also the rest of the list
            # (issue 14: "Not sent yet: 400" when 1,400 were left). Counted here, in the loop's
            # thread: the suppression store is not shared with others.
            left += self._count_unread()
        self.result.left_pending = left
        return fatal

    async def _count_over_limit(self) -> None:
        """Count the part of the list past ``--limit`` into the summary's skipped figures."""
        rest, self._over_limit = self._over_limit, None
        if rest is None:
            return

        # Only a figure of the summary: a list that became unreadable leaves it short. Rows are
        # read in a thread, as the producer does; the look-ups stay in the loop's thread (the
        # state database's connections are not shared with others).
        with contextlib.suppress(DigestError, OSError, ValueError):
            while (chunk := await asyncio.to_thread(next, rest, None)) is not None:
                kept = filter_recipients(
                    chunk,
                    slug=self.slug,
                    ledger=self.ledger,
                    suppressions=self.suppressions,
                    retry_failed=self.options.retry_failed,
                    skipped=self.result.skipped,
                )
                self.result.skipped[SKIP_OVER_LIMIT] += len(kept)

    def _count_unread(self) -> int:
        """How many recipients of the part of the list not read yet this run would send to."""
        if self._unread is None:
            return max((self.total or 0) - self._queued, 0)
        limit = self.options.limit
        room = None if limit is None else max(limit - self._queued, 0)
        count = 0
        ignored: Counter[str] = Counter()
        try:
            for chunk in self._unread:
                count += len(
                    filter_recipients(
                        chunk,
                        slug=self.slug,
                        ledger=self.ledger,
                        suppressions=self.suppressions,
                        retry_failed=self.options.retry_failed,
                        skipped=ignored,
                    )
                )
                if room is not None and count >= room:
                    return room
        except (DigestError, OSError, ValueError):
            # The list became unreadable (or is still being read by the producer's thread):
            # the planned total is the best count there is.
            return max((self.total or 0) - self._queued, 0)
        return count

    async def _produce(self) -> None:
        limit = self.options.limit
        batch_size = max(self.backend.batch_size, 1)
        # A chunk smaller than the backend's batch would cut Mailgun's 1,000 down to 500.
        chunks = batched(self.recipients, max(self.options.chunk_size, batch_size))
        self._unread = chunks
        try:
            while not self._stop.is_set():
                # Reading and validating CSV rows is CPU work; a thread keeps workers sending.
                chunk = await asyncio.to_thread(next, chunks, None)
                if chunk is None:
                    self._produced_all = True
                    break
                keep = filter_recipients(
                    chunk,
                    slug=self.slug,
                    ledger=self.ledger,
                    suppressions=self.suppressions,
                    retry_failed=self.options.retry_failed,
                    skipped=self.result.skipped,
                )
                if limit is not None and self._queued + len(keep) > limit:
                    room = max(limit - self._queued, 0)
                    self.result.skipped[SKIP_OVER_LIMIT] += len(keep) - room
                    keep = keep[:room]
                if keep:
                    if self.ledger is not None:
                        # Pending before sent: a crash from here on leaves a row to resume from.
                        self.ledger.enqueue(self.slug, keep)
                    self._queued += len(keep)
                    for start in range(0, len(keep), batch_size):
                        await self._queue.put(keep[start : start + batch_size])
                if limit is not None and self._queued >= limit:
                    # Past the limit the rest is only counted, so the summary is complete; once
                    # the sends are done: read now, it would take the CPU from them.
                    self._over_limit = chunks
                    self._produced_all = True
                    break
        except (DigestError, OSError) as exc:
            self.request_stop(self._scrubbed(str(exc)))
            raise _Fatal() from exc
        for _ in range(self.options.concurrency):
            await self._queue.put(None)  # one "no more work" per worker

    async def _work(self) -> None:
        task = asyncio.current_task()
        while not self._stop.is_set():
            batch = await self._queue.get()
            if batch is None:
                return
            if task is not None:
                self._busy.add(task)
            try:
                await self._deliver(batch)
            except (DigestError, OSError) as exc:
                self.request_stop(self._scrubbed(str(exc)))
                raise _Fatal() from exc
            finally:
                self._busy.discard(task)  # type: ignore[arg-type]

    async def _deliver(self, batch: list[Subscriber]) -> None:
        """Try ``batch`` until each recipient is sent or failed, or the run stops (whoever is
        left stays pending in the ledger for a rerun)."""
        tries = _Tries(waiting=list(batch))
        while tries.waiting and not self._stop.is_set():
            try:
                async with self.pacing.slot():
                    # The rate's slot is taken once a batch may go: a batch that waited for
                    # the pace must not be sent the moment it gets through, right after another.
                    delay = self._limiter.reserve(len(tries.waiting))
                    if delay and await self._sleep(delay):
                        return
                    started = time.monotonic()
                    results = await self._send_batch(tries.waiting)
                    took = time.monotonic() - started
            except BackendError as exc:
                if not exc.transient:
                    raise
                go_on = await self._after_batch_error(tries, exc)
            else:
                answer = self._sort(tries, results)
                answer.seconds = took
                go_on = await self._after_results(tries, answer)
            if not go_on:
                return

    async def _send_batch(self, waiting: list[Subscriber]) -> list[DeliveryResult]:
        """One call of the backend: one result per recipient, in order.

        The messages are handed over, not kept: a backend done with them before the server
        answers (Mailgun, once its request is encoded) can let them go while it waits."""
        results = await self.backend.send([self.messages.message_for(s) for s in waiting])
        if len(results) != len(waiting):
            raise BackendError(
                f"backend {self.backend.name!r} answered {len(results)} results for "
                f"{len(waiting)} messages",
                transient=False,
            )
        return results

    async def _after_batch_error(self, tries: _Tries, exc: BackendError) -> bool:
        """The whole batch could not be tried (server unreachable, connection lost): not the
        recipients' fault, so they stay pending, never failed. True: try the batch again."""
        if _is_throttling(exc):
            # A relay refusing one more connection (421): fewer connections, not a failure.
            await self._slow_down()
        else:
            tries.batch_failures += 1
        reason = self._scrubbed(str(exc))
        self._note_attempts([(s.email, reason) for s in tries.waiting])
        if self._breaker.failure():
            self.request_stop(f"the server kept failing for {self.retry.outage:.0f} s: {reason}")
            return False
        if tries.batch_failures >= self.retry.attempts:
            return False  # left pending for a rerun; the run ends with exit 4
        return not await self._sleep(
            self.retry.delay(max(tries.batch_failures, 1), exc.retry_after)
        )

    def _sort(self, tries: _Tries, results: list[DeliveryResult]) -> _Sorted:
        """Sort the backend's answer; count a try for each deferred recipient."""
        answer = _Sorted()
        now = time.monotonic()
        for subscriber, outcome in zip(tries.waiting, results, strict=True):
            if outcome.status is DeliveryStatus.SENT:
                answer.sent.append((subscriber.email, outcome.provider_id or ""))
            elif outcome.status is DeliveryStatus.FAILED:
                answer.failed.append((subscriber.email, self._scrubbed(outcome.error or "refused")))
            else:
                email = subscriber.email
                answer.deferred.append(subscriber)
                tries.attempts[email] += 1
                error = tries.last_error[email] = self._scrubbed(outcome.error or "deferred")
                if _is_throttling_reply(error):
                    answer.throttled = True
                    tries.first_deferred.setdefault(email, now)
                else:
                    tries.counted[email] += 1
                if outcome.retry_after is not None:
                    answer.retry_after = max(answer.retry_after or 0.0, outcome.retry_after)
        return answer

    async def _after_results(self, tries: _Tries, answer: _Sorted) -> bool:
        """Record the answer; decide who is tried again. True: try the rest again."""
        if answer.throttled:
            await self._slow_down()
        elif answer.sent:
            self.pacing.accepted(len(answer.sent), answer.seconds)
        tries.waiting = self._give_up_on_spent(tries, answer)
        # Only the attempts still to be retried are noted here: the last attempt of a failure is
        # counted once, by mark_failed (issue 14: "after 6 attempts (7 attempts)").
        self._note_attempts([(s.email, tries.last_error[s.email]) for s in tries.waiting])
        await self._record(answer.sent, answer.failed)
        self._learn_from_refusals(answer.failed)
        if answer.sent or answer.failed:
            self._breaker.success()
        elif tries.waiting and not answer.throttled and self._breaker.failure():
            # A server deferring everything for long is down; one asking for a slower pace is
            # not: it gets max_retry_time.
            self.request_stop(
                f"the server deferred every message for {self.retry.outage:.0f} s: "
                f"{tries.last_error[tries.waiting[0].email]}"
            )
            return False
        if not tries.waiting:
            return True
        attempt = max(tries.attempts[s.email] for s in tries.waiting)
        return not await self._sleep(self.retry.delay(attempt, answer.retry_after))

    def _give_up_on_spent(self, tries: _Tries, answer: _Sorted) -> list[Subscriber]:
        """Add to ``answer.failed`` whoever the policy gives up on; return the others.

        Throttled tries do not count against ``policy.attempts``: only the time since the first
        throttled one does (``policy.max_retry_time``)."""
        now = time.monotonic()
        waiting = []
        for subscriber in answer.deferred:
            email = subscriber.email
            throttled_for = now - tries.first_deferred.get(email, now)
            if not self.retry.gives_up(tries.counted[email], throttled_for):
                waiting.append(subscriber)
                continue
            over = ""
            if tries.counted[email] < self.retry.attempts:
                over = f" over {_duration(throttled_for)}"
            tries_text = (
                f"{tries.attempts[email]} attempt{'s' if tries.attempts[email] != 1 else ''}"
            )
            answer.failed.append((email, f"{tries.last_error[email]} (after {tries_text}{over})"))
        return waiting

    async def _slow_down(self) -> None:
        """The server throttles: fewer batches in flight, and idle connections beyond them closed
        (a relay counting connections must see fewer)."""
        self.pacing.throttled()
        await self.backend.trim(self.pacing.limit)

    def _learn_from_refusals(self, failed: list[tuple[str, str]]) -> None:
        """Suppress the addresses the server says do not exist; note this edition's soft bounces."""
        if self.ledger is None or self.suppressions is None or not failed:
            return  # dry runs and --test proofs change nobody's standing
        unknown: list[tuple[str, str, str, str | None, str | None, str | None]] = []
        soft: list[tuple[str, str | None]] = []
        for address, error in failed:
            reply = parse_reply(error)
            if reply.is_unknown_user:
                unknown.append((address, "bounced", SUPPRESSION_SOURCE, self.slug, error, None))
            elif reply.is_temporary:
                soft.append((address, reply.status or (str(reply.code) if reply.code else None)))
        if unknown:
            self.suppressions.add_many(unknown)
        if soft:
            self.suppressions.record_edition_soft_bounces(
                self.slug, soft, source=SUPPRESSION_SOURCE
            )

    # -- helpers ------------------------------------------------------------------------------

    async def _record(self, sent: list[tuple[str, str]], failed: list[tuple[str, str]]) -> None:
        """Record results in the ledger; return once they are committed.

        Workers whose results arrive in the same turn of the event loop share one transaction
        (a commit costs far more than a row: one per message was a third of the send's CPU), and
        each waits for that commit before it takes more work, so the in-flight window stays
        ``concurrency x batch_size`` messages."""
        if not sent and not failed:
            return
        if self.ledger is None:
            self._count(sent, failed)
            return
        self._uncommitted_sent.extend(sent)
        self._uncommitted_failed.extend(failed)
        if self._commit_due is None:
            loop = asyncio.get_running_loop()
            self._commit_due = loop.create_future()
            loop.call_soon(self._commit)  # after the other results of this turn are in
        # Shielded: a worker cancelled while it waits (the end of the grace period) must not
        # cancel the commit of everyone's results.
        await asyncio.shield(self._commit_due)

    def _commit(self) -> None:
        due, self._commit_due = self._commit_due, None
        sent, self._uncommitted_sent = self._uncommitted_sent, []
        failed, self._uncommitted_failed = self._uncommitted_failed, []
        assert due is not None and self.ledger is not None
        try:
            self.ledger.mark_results(self.slug, sent=sent, failed=failed)  # one transaction
        except Exception as exc:
            due.set_exception(exc)
            due.add_done_callback(lambda done: done.exception())  # retrieved, even if no waiter
            return
        self._count(sent, failed)
        due.set_result(None)

    def _count(self, sent: list[tuple[str, str]], failed: list[tuple[str, str]]) -> None:
        self.result.sent += len(sent)
        self.result.failed += len(failed)
        # The first few, for the summary; the ledger keeps them all.
        self.result.failures.extend(failed[: max(_FAILURES_KEPT - len(self.result.failures), 0)])
        if self.on_progress is not None:
            elapsed = max(time.monotonic() - self._started, 1e-9)
            self.on_progress(
                Progress(
                    sent=self.result.sent,
                    failed=self.result.failed,
                    total=self.total,
                    rate=self.result.sent / elapsed,
                )
            )

    def _scrubbed(self, error: str) -> str:
        """A backend's error text without any secret in force: a plug-in may quote a server
        that echoes its credentials, and the ledger, the summary and the log all show it."""
        return self.backend.settings.scrub(error)

    def _note_attempts(self, errors: list[tuple[str, str]]) -> None:
        if self.ledger is not None and errors:
            self.ledger.note_attempt(self.slug, errors)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep, waking early on stop; True when the run is stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        return self._stop.is_set()

    def _record_run(self, started_at: datetime) -> None:
        if self.ledger is None:
            return
        counts = {
            "sent": self.result.sent,
            "failed": self.result.failed,
            "left_pending": self.result.left_pending,
            **{f"skipped: {k}": v for k, v in self.result.skipped.items()},
        }
        with contextlib.suppress(DigestError):
            self.ledger.record_run(
                self.slug, started_at, datetime.now(UTC), self.result.outcome, counts
            )

    def _counts_line(self) -> str:
        return f"{self.result.sent} sent, {self.result.failed} failed in this run"

    @staticmethod
    def _resume_hint() -> str:
        return "rerun the same command to resume; recipients already sent are skipped"

    @contextlib.contextmanager
    def _signals(self, enabled: bool) -> Iterator[None]:
        """SIGINT/SIGTERM: the first asks to stop gracefully; a second stops at once."""
        if not enabled:
            yield
            return
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []

        def on_signal() -> None:
            if self._stop.is_set():
                for task in asyncio.all_tasks(loop):
                    if task.get_name().startswith("digest-worker-"):
                        task.cancel()
            self.request_stop("interrupted")

        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, on_signal)
                installed.append(signum)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread, or not a POSIX loop: default handling applies
        try:
            yield
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)
