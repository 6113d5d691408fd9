"""The send use-case: one edition to one list, from the edition file to the last ledger record.

:func:`run_edition` is what ``digest send`` and ``digest send --due`` both run: check the
settings, render, take the edition's lock, open the suppression store (pulling Mailgun's lists
first when sending through Mailgun) and the ledger, count the list when anything needs the
count first (the counting pass), ask for confirmation, then run the
:class:`~digest.send.campaign.Campaign` in asyncio. It prints nothing
and asks nothing itself: whatever the person who started it should see or answer goes through
the :class:`RunEvents` it is given (the command line prints, asks, draws the progress bar, or
writes JSON log lines).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from digest.errors import ConfigError, DigestError, Problem, SendStopped, SubscribersError
from digest.send.campaign import (
    SKIP_FAILED_BEFORE,
    Campaign,
    Progress,
    RunResult,
    SendOptions,
    plan_campaign,
)
from digest.settings import Settings

if TYPE_CHECKING:
    from digest.audience.subscribers import Subscriber, SubscriberReport
    from digest.audience.suppressions import SuppressionStore
    from digest.backends.base import Backend
    from digest.checks import Finding
    from digest.edition.model import Edition
    from digest.ledger import Ledger
    from digest.render.result import RenderedEdition


@dataclass(frozen=True)
class SendRequest:
    """Everything a send was asked, besides the edition itself."""

    subscribers: Path | None  # None only for a --test proof
    backend: str | None = None  # None: DIGEST_BACKEND
    dry_run: bool = False
    outbox: Path | None = None  # where a dry run writes (default outbox/<slug>/)
    test_address: str | None = None  # a --test proof: one copy, nothing recorded
    options: SendOptions = field(default_factory=SendOptions)
    assume_yes: bool = False
    send_early: bool = False  # --now: a real send before the edition's send_at
    strict: bool = False  # --strict: a bad row of the list stops the send (nothing sent)
    now: datetime | None = None  # the moment send_at is judged at; None: the clock

    @property
    def records(self) -> bool:
        """Whether this run writes the ledger (a real send; not a dry run, not a proof)."""
        return not (self.dry_run or self.test_address)


@dataclass(frozen=True)
class Confirmation:
    """What a real send asks before it starts."""

    edition: Edition
    sender: str | None
    backend: str
    recipients: int  # counted, suppressed and already-sent addresses left out
    subscribers: Path


class RunEvents(Protocol):
    """What a run tells, and asks, the one who started it."""

    def problems(self, problems: Sequence[Problem]) -> None:
        """Problems of the settings (errors stop the run after this; warnings do not)."""

    def warning(self, message: str) -> None:
        """Something to look at that does not stop the run (a render warning, a failed sync)."""

    def note(self, message: str) -> None:
        """Plain information (the list's counts, suppressions synced)."""

    def list_read(self, report: SubscriberReport) -> None:
        """The counting pass read the list (its rows, skipped rows and their lines)."""

    def confirm(self, question: Confirmation) -> bool:
        """Whether to start the real send; False: nothing is sent."""

    def sending(self, total: int | None) -> AbstractContextManager[Callable[[Progress], None]]:
        """Around the send itself; yields what to call after each recorded batch."""

    def wants_total(self) -> bool:
        """Whether ``sending`` shows the count (a progress bar): the list is then counted
        before the start."""


@dataclass
class EditionRun:
    """How one run of one edition ended."""

    edition: Edition
    request: SendRequest
    backend_name: str
    backend: Backend
    result: RunResult
    stopped: SendStopped | None = None  # exit 4: rerun to resume (hint explains)

    @property
    def outbox(self) -> Path | None:
        """Where a dry run wrote its messages."""
        directory = getattr(self.backend, "directory", None)
        return directory if isinstance(directory, Path) else None

    @property
    def exit_code(self) -> int:
        """0 done, 3 some recipients failed (now or before), 4 stopped before the end."""
        if self.stopped is not None:
            return self.stopped.exit_code
        if self.result.failed or self.result.skipped.get(SKIP_FAILED_BEFORE):
            return 3
        return 0


class SendCancelled(DigestError):
    """The person asked said no: nothing was sent."""


class NotYetDue(ConfigError):
    """A real send of an edition whose send_at is still ahead, without --now: nothing sent."""


def run_edition(
    edition_path: Path, request: SendRequest, settings: Settings, events: RunEvents
) -> EditionRun:
    """Send one edition as ``request`` says.

    Returns how it ended (also when it stopped part-way: ``stopped`` holds the SendStopped with
    a hint that fits, and ``result`` what was done). Raises DigestError when nothing could be
    sent: bad edition, settings or list (exit 1), the edition locked by another run.
    """
    # Imported here: `digest --help` and the other commands need none of this.
    from digest.edition.load import load_edition
    from digest.render.locations import default_templates_dir
    from digest.send.message import MessageFactory
    from digest.send.preflight import backend_problems, settings_problems
    from digest.send.rendered_cache import rendered_edition

    edition = load_edition(edition_path)
    if request.records and not request.send_early:
        _refuse_before_send_at(edition_path, edition, request.now or datetime.now(UTC))
    is_test = request.test_address is not None
    chosen_backend = "outbox" if request.dry_run else request.backend
    backend_name = chosen_backend or settings.backend
    # check_send_setup's checks, but the CSV's row problems do not stop a send (contract §2):
    # they are counted, reported and skipped while the list is read. None: the backend comes
    # from DIGEST_BACKEND, so a wrong name is reported as that setting's.
    problems = settings_problems(edition, settings, test=is_test)
    problems += backend_problems(settings, chosen_backend)
    events.problems(problems)
    errors = [p for p in problems if p.severity != "warning"]
    if errors:
        raise ConfigError(
            f"{len(errors)} problem{'s' if len(errors) != 1 else ''} in the send settings; "
            "nothing was sent",
            hint=f"digest validate {edition_path}"
            + (f" --subscribers {request.subscribers}" if request.subscribers else ""),
        )

    def render() -> RenderedEdition:
        from digest.newsletter import find_newsletter
        from digest.render.email import render_edition

        # The newsletter beside the edition: its identity, and the default "view in browser"
        # link (its digest.toml is part of the cache key).
        return render_edition(
            edition, newsletter=find_newsletter(edition_path), archive_url=settings.archive_url
        )

    # A rerun, a --limit run or --due finds the edition rendered in the state folder, and
    # imports nothing of the renderer.
    rendered = rendered_edition(
        edition,
        edition_path,
        settings.state_dir,
        archive_url=settings.archive_url,
        render=render,
        templates_dir=default_templates_dir,
        store=request.records,
    )
    for finding in _warnings(edition, rendered, settings):
        events.warning(str(finding))
    messages = MessageFactory(rendered, settings, test=is_test)
    backend = _make_backend(backend_name, settings, request, edition.slug)

    with ExitStack() as stack:
        ledger, suppressions = _open_state(stack, edition, request, settings, backend, events)
        recipients, total, unreported = _recipients(
            edition, request, settings, backend_name, ledger, suppressions, events
        )
        campaign = Campaign(
            messages=messages,
            backend=backend,
            recipients=recipients,
            ledger=ledger,
            suppressions=suppressions,
            options=request.options,
            total=total,
        )
        run = EditionRun(edition, request, backend_name, backend, campaign.result)
        try:
            with events.sending(total) as on_progress:
                campaign.on_progress = on_progress
                asyncio.run(campaign.run(handle_signals=True))
        except SendStopped as stopped:
            if unreported is not None:
                events.list_read(unreported)
                _raise_unusable_list(stopped, campaign.result)
            run.stopped = _explained_stop(stopped, campaign.result, request, settings, backend)
        else:
            if unreported is not None:
                events.list_read(unreported)
    return run


# -- the steps ---------------------------------------------------------------------------------


def _refuse_before_send_at(edition_path: Path, edition: Edition, now: datetime) -> None:
    """A real send waits for the edition's send_at (a proof and a dry run do not): sending
    two weeks early by mistake cannot be undone."""
    from digest.times import format_duration, format_time

    if edition.send_at is None or edition.send_at <= now:
        return
    ahead = edition.send_at - now
    days = ahead.days
    when = f"in {days} day{'s' if days != 1 else ''}" if days else f"in {format_duration(ahead)}"
    raise NotYetDue(
        f"{edition_path} is scheduled for {format_time(edition.send_at)} ({when}); "
        "add --now to send it anyway"
    )


def _warnings(edition: Edition, rendered: RenderedEdition, settings: Settings) -> list[Finding]:
    """The one set of checks (digest.checks) that build, validate and the preview run too, on
    the email as a sample subscriber gets it."""
    from digest.checks import Subject, run_checks, warnings_of
    from digest.render.sample import sample_values

    values = sample_values(settings, edition.slug)
    subject = Subject(edition, rendered.html.fill(values), rendered.text.fill(values))
    return warnings_of(run_checks(subject))


def _make_backend(name: str, settings: Settings, request: SendRequest, slug: str) -> Backend:
    from digest.backends.base import load_backend
    from digest.backends.outbox import OutboxBackend

    if name == "outbox":
        return OutboxBackend(settings, directory=request.outbox or Path("outbox") / slug)
    backend_class = load_backend(name)
    backend_class.check_settings(settings)
    return backend_class(settings)


def _open_state(
    stack: ExitStack,
    edition: Edition,
    request: SendRequest,
    settings: Settings,
    backend: Backend,
    events: RunEvents,
) -> tuple[Ledger | None, SuppressionStore | None]:
    """The edition's lock, the suppression store and the ledger, as this kind of run needs
    them: a real send all three; a dry run only an existing store (it leaves out the same
    addresses, but never creates the state folder); a proof none."""
    from digest.audience.suppressions import SuppressionStore

    if request.records:
        from digest.ledger import Ledger
        from digest.state import edition_lock

        stack.enter_context(edition_lock(settings.state_dir, edition.slug))
        suppressions = stack.enter_context(SuppressionStore(settings.state_dir))
        if backend.name == "mailgun":
            _sync_mailgun_suppressions(suppressions, settings, events)
        ledger = stack.enter_context(Ledger(settings.state_dir))
        return ledger, suppressions
    if request.dry_run and not request.test_address:
        from digest.state import has_database

        if has_database(settings.state_dir):
            return None, stack.enter_context(SuppressionStore(settings.state_dir))
    return None, None


def _sync_mailgun_suppressions(
    store: SuppressionStore, settings: Settings, events: RunEvents
) -> None:
    """Pull Mailgun's unsubscribes, bounces and complaints first; a failure only warns (Mailgun
    itself never delivers to an address on its suppression lists)."""
    from digest.send.suppression_sync import sync_from_mailgun

    try:
        report = sync_from_mailgun(store, settings)
    except DigestError as exc:
        events.warning(f"could not sync Mailgun's suppressions: {exc}")
        return
    if report.added:
        events.note(f"{report.added} new suppression(s) synced from Mailgun")


def _recipients(
    edition: Edition,
    request: SendRequest,
    settings: Settings,
    backend_name: str,
    ledger: Ledger | None,
    suppressions: SuppressionStore | None,
    events: RunEvents,
) -> tuple[Iterable[Subscriber], int | None, SubscriberReport | None]:
    """Who to send to, how many when counted, and the list's report when it is told only after
    the run.

    The list is counted first (a pass that checks every row before anything is sent, then read
    again as it is sent) when something needs the count or the check before the start: the
    confirmation of a real send, ``--strict``, a progress bar. Otherwise (``--yes`` in cron or
    CI) it is read once, as it is sent: the counting pass costs as much as a second read of
    the whole list (0.05 s per 10,000 rows), and its report is told after the run instead.
    """
    from digest.audience.subscribers import SubscriberReport, read_subscribers

    if request.test_address is not None:
        return [_proof_recipient(request)], 1, None
    if request.subscribers is None:
        raise ConfigError("a send needs the subscribers list (--subscribers CSV)")
    report = SubscriberReport(path=str(request.subscribers))
    confirming = request.records and not request.assume_yes
    if not (confirming or request.strict or events.wants_total()):
        return read_subscribers(request.subscribers, report), None, report
    try:
        plan = plan_campaign(
            read_subscribers(request.subscribers, report),
            slug=edition.slug,
            ledger=ledger,
            suppressions=suppressions,
            options=request.options,
        )
    except SubscribersError:
        if report.rows:  # every row was refused: show why, before the error itself
            events.list_read(report)
        raise
    if request.strict and report.problems:
        raise SubscribersError(
            report.problems,
            hint="--strict: a bad row stops the send (nothing was sent); fix the rows, or send "
            "without --strict to skip them",
        )
    events.list_read(report)
    if request.records and not request.assume_yes:
        question = Confirmation(
            edition, settings.from_address, backend_name, plan.to_send, request.subscribers
        )
        if not events.confirm(question):
            raise SendCancelled("nothing was sent")
    recipients = read_subscribers(request.subscribers, SubscriberReport(path=report.path))
    return recipients, plan.to_send, None


def _raise_unusable_list(stopped: SendStopped, result: RunResult) -> None:
    """A list read only as it is sent may turn out unusable at its end (no row, or not one
    valid row): nothing went out, so it is the same error as when counted first (exit 1)."""
    cause = stopped.__cause__
    if isinstance(cause, SubscribersError) and not (result.sent or result.failed):
        raise cause


def _proof_recipient(request: SendRequest) -> Subscriber:
    """The --test address, with its row's name and fields when it is in the list."""
    from digest.audience.subscribers import Subscriber, SubscriberReport, read_subscribers

    wanted = (request.test_address or "").lower()
    if request.subscribers is not None and request.subscribers.is_file():
        for subscriber in read_subscribers(request.subscribers, SubscriberReport(path="")):
            if subscriber.email.lower() == wanted:
                return subscriber
    return Subscriber(email=request.test_address or "", name="", fields={}, line=0)


def _explained_stop(
    stopped: SendStopped,
    result: RunResult,
    request: SendRequest,
    settings: Settings,
    backend: Backend,
) -> SendStopped:
    """The stop, with a hint that fits it: a server never reached is most likely a setting
    (named, with its value now, from the backend's declaration); a proof is sent again, never
    resumed."""
    from digest.send.preflight import settings_source

    if result.sent or result.failed or result.stopped:
        return stopped  # the campaign's own "rerun to resume" fits
    now = backend.describe_connection(settings)
    hints = []
    if now is not None:
        names = [key.env for key in backend.connection_settings]
        listed = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
        hints.append(f"check {listed} in {settings_source()} (now {now})")
    hints.append("then rerun the same command" if hints else "rerun the same command")
    if not request.test_address:
        hints[-1] += "; nothing was sent yet"
    explained = SendStopped(str(stopped), hint=", ".join(hints))
    explained.__cause__ = stopped
    return explained
