"""The command line's side of sending: what `digest send` prints and asks, ``--due`` and
``--log-format json``. The send itself is :func:`digest.send.run.run_edition`.

:func:`run_send` sends one edition, or with ``--due`` asks :mod:`digest.schedule` which editions
are due and sends each, oldest first. :class:`CliEvents` is how a run talks to the person (or the
log collector): it prints problems, warnings and the list's counts, asks for confirmation, draws
the progress bar on a terminal; with ``--log-format json`` every line becomes one JSON object on
stderr (``ts``, ``level``, ``event``, ``slug``, ``message``...), which a log collector reads as is.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from digest.cli import typed_command
from digest.cli.clock import current_time
from digest.cli.output import err, out, print_error, print_problems
from digest.errors import ConfigError, DigestError, LockedError, Problem, ProblemsError
from digest.schedule import DEFAULT_MAX_LATE, DueDecision, due_editions
from digest.send.run import Confirmation, EditionRun, SendRequest, run_edition
from digest.settings import Settings, load_settings
from digest.times import parse_duration

if TYPE_CHECKING:
    from digest.audience.subscribers import SubscriberReport
    from digest.send.campaign import Progress as SendProgress

LOG_FORMATS = ("text", "json")


# --------------------------------------------------------------------------- the event log


class EventLog:
    """Events of a run: human lines on stderr (``text``) or one JSON object per line (``json``).

    Every string is scrubbed of the secrets in force before it is written.
    """

    def __init__(self, log_format: str = "text", settings: Settings | None = None) -> None:
        if log_format not in LOG_FORMATS:
            raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}")
        self.json = log_format == "json"
        self.settings = settings  # set once loaded: its secrets are scrubbed from every line

    def event(
        self,
        event: str,
        message: str,
        *,
        level: str = "info",
        slug: str | None = None,
        **fields: Any,
    ) -> None:
        if not self.json:
            prefix = "" if level == "info" else f"{level}: "
            err.print(self._scrub(prefix + message), markup=False)
            return
        record: dict[str, Any] = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": level,
            "event": event,
        }
        if slug is not None:
            record["slug"] = slug
        record["message"] = message
        record.update({k: v for k, v in fields.items() if v is not None})
        line = json.dumps(record, ensure_ascii=False, default=str)
        # Written to the sys.stderr of the moment (a test runner may have replaced it).
        sys.stderr.write(self._scrub(line) + "\n")
        sys.stderr.flush()

    def failure(self, exc: DigestError, *, slug: str | None = None) -> int:
        """Report an error the core raised; return its exit code."""
        if not self.json:
            print_error(exc)
            return exc.exit_code
        if isinstance(exc, ProblemsError):
            for problem in exc.problems:
                self.event(
                    "problem",
                    str(problem),
                    level="warning" if problem.severity == "warning" else "error",
                    slug=slug,
                )
        self.event(
            "error", str(exc), level="error", slug=slug, hint=exc.hint, exit_code=exc.exit_code
        )
        return exc.exit_code

    def say(self, text: str, *, level: str = "info", slug: str | None = None) -> None:
        """A line for the person: stdout for results, stderr for the rest; in json mode an
        ``output`` event."""
        if self.json:
            if text.strip():
                self.event("output", text.rstrip(), level=level, slug=slug)
            return
        # As is: what a run reports is scrubbed where it comes from (the engine scrubs every
        # server reply); scrubbing again here would load every backend's declarations.
        (out if level == "info" else err).print(text, markup=False)

    def _scrub(self, text: str) -> str:
        return self.settings.scrub(text) if self.settings is not None else text


class CliEvents:
    """How a run (:func:`digest.send.run.run_edition`) talks to the person who started it."""

    def __init__(self, log: EventLog, slug: str | None) -> None:
        self.log, self.slug = log, slug

    def problems(self, problems: Sequence[Problem]) -> None:
        if not self.log.json:
            print_problems(problems)
            return
        for problem in problems:
            self.log.say(str(problem), level="warning", slug=self.slug)

    def warning(self, message: str) -> None:
        self.log.say(f"warning: {message}", level="warning", slug=self.slug)

    def note(self, message: str) -> None:
        self.log.say(message, level="warning", slug=self.slug)

    def list_read(self, report: SubscriberReport) -> None:
        for line in report.summary_lines():
            self.log.say(line, level="warning", slug=self.slug)

    def confirm(self, question: Confirmation) -> bool:
        if not sys.stdin.isatty():
            again = typed_command("--yes")
            raise ConfigError(
                "refusing to start a real send without confirmation (no terminal)",
                hint=f"add --yes to send without asking: {again}" if again else "add --yes",
            )
        edition = question.edition
        out.print(f"Edition:    {edition.edition} ({edition.slug})", markup=False)
        out.print(f"Subject:    {edition.subject}", markup=False)
        out.print(f"From:       {question.sender}", markup=False)
        out.print(f"Backend:    {question.backend}", markup=False)
        out.print(f"Recipients: {question.recipients:,} from {question.subscribers}", markup=False)
        if not click.confirm("Send now?", default=False):
            err.print("Nothing was sent.", markup=False)
            raise click.exceptions.Abort()
        return True

    def wants_total(self) -> bool:
        return not self.log.json and out.is_terminal

    @contextmanager
    def sending(self, total: int | None) -> Iterator[Callable[[SendProgress], None]]:
        """A progress bar with rate and ETA, on a terminal only (logs and CI stay clean)."""
        if not self.wants_total() or not total:
            yield lambda _progress: None
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        bar = Progress(
            TextColumn("[bold]sending[/bold]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:.1f}/s"),
            TextColumn("{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=out,
            transient=True,
        )
        task = bar.add_task("send", total=total, rate=0.0, failed=0)

        def update(progress: SendProgress) -> None:
            done = progress.sent + progress.failed
            bar.update(task, completed=done, rate=progress.rate, failed=progress.failed)

        with bar:
            yield update


def send_one(
    path: Path, request: SendRequest, settings: Settings, log: EventLog, slug: str | None
) -> int:
    """Send one edition, print how it went; return the exit code (0 or 3). Raises
    DigestError for 1 and 4."""
    run = run_edition(path, request, settings, CliEvents(log, slug))
    print_run(run, log, slug)
    if run.stopped is not None:
        raise run.stopped
    return run.exit_code


def print_run(run: EditionRun, log: EventLog, slug: str | None = None) -> None:
    """The summary of a run: counts, skips, the first failures, where a dry run wrote."""
    result, request = run.result, run.request
    stopped = run.stopped is not None

    def say(text: str, level: str = "info") -> None:
        log.say(text, level=level, slug=slug)

    rate = result.sent / result.elapsed if result.elapsed else 0.0
    idle = not (result.sent or result.failed or result.left_pending or result.stopped)
    if idle and not stopped:
        say("Nothing left to send.")
    if not (idle and (stopped or result.skipped)):
        # "Sent 0 messages" says nothing the line before or the error after does not.
        verb = "Wrote" if request.dry_run else "Sent"
        say(
            f"{verb} {result.sent:,} message{'s' if result.sent != 1 else ''} in "
            f"{result.elapsed:.1f} s ({rate:.1f}/s); failed {result.failed:,}."
        )
    if result.skipped:
        parts = ", ".join(f"{n:,} {reason}" for reason, n in sorted(result.skipped.items()))
        say(f"Skipped: {parts}.")
    if result.left_pending:
        say(f"Not sent yet: {result.left_pending:,} (rerun to resume).")
    for address, error in result.failures[:20]:
        say(f"  failed: {address}: {error}", "warning")
    if result.failed > 20:
        say(f"  ... and {result.failed - 20} more (see `digest status`)", "warning")
    if request.dry_run:
        say(f"Dry run: the messages are in {run.outbox}/ (nothing was sent).")
    elif request.test_address and result.sent:
        say(f"Proof sent to {request.test_address} (not recorded).")


# --------------------------------------------------------------------------- the runs


def run_send(
    edition_path: Path,
    request: SendRequest,
    *,
    due: bool,
    max_late: timedelta | None,
    log_format: str,
) -> int:
    """`digest send` with ``--due`` and/or ``--log-format``; returns the exit code."""
    log = EventLog(log_format)
    try:
        settings = load_settings()
    except DigestError as exc:
        return log.failure(exc)
    log.settings = settings
    if not due:
        slug = _slug_of(edition_path)
        return _send_logged(edition_path, slug, request, settings, log, due=False)
    try:
        now = current_time()
        decisions = _decisions(edition_path, request, settings, now, max_late or DEFAULT_MAX_LATE)
    except DigestError as exc:
        return log.failure(exc)
    return _send_due(edition_path, decisions, request, settings, log)


def _decisions(
    target: Path, request: SendRequest, settings: Settings, now: datetime, max_late: timedelta
) -> list[DueDecision]:
    from digest.ledger import Ledger

    # The ledger is closed again before any send: send_one opens its own, under the lock.
    with Ledger(settings.state_dir) as ledger:
        return due_editions(
            target, now=now, max_late=max_late, ledger=ledger, subscribers=str(request.subscribers)
        )


def _send_due(
    target: Path,
    decisions: list[DueDecision],
    request: SendRequest,
    settings: Settings,
    log: EventLog,
) -> int:
    single_file = not target.is_dir()
    if not decisions:
        log.event("nothing", f"{target}: no edition files (*.yaml, *.yml) here; nothing to send")
        return 0
    worst = 0
    for position, decision in enumerate(decisions):
        where, slug = decision.path, decision.slug
        send_at = decision.send_at.isoformat() if decision.send_at else None
        if decision.state == "due":
            log.event("due", f"{where}: {decision.reason}", slug=slug, send_at=send_at)
            code = _send_logged(where, slug, request, settings, log, due=True)
            worst = max(worst, code)
            if code == 4:
                # Stopped (interrupt, server down): the rest waits for the next run.
                left = len([d for d in decisions[position + 1 :] if d.state == "due"])
                if left:
                    log.event(
                        "stopped",
                        f"stopped; {left} more due edition(s) wait for the next run",
                        level="warning",
                    )
                break
        elif decision.state == "no-send-at" and single_file:
            log.event(
                "no-send-at",
                f"{where}: --due needs a send_at in the edition "
                "(e.g. `send_at: 2026-03-31T09:00:00Z`); or send it without --due",
                level="error",
                slug=slug,
            )
            worst = max(worst, 1)
        elif decision.state == "too-late":
            # Missed: a human decides (`digest status` lists it). Not a failure of this run: an
            # old edition in the folder (the bundled example) must not fail every scheduled run.
            log.event("missed", f"{where}: missed: {decision.reason}", level="warning", slug=slug)
        elif decision.state == "invalid":
            log.event(decision.state, f"{where}: {decision.reason}", level="error", slug=slug)
            worst = max(worst, 1)
        else:  # not-due, finished, no-send-at in a folder: a quiet note
            log.event(decision.state, f"{where}: {decision.reason}", slug=slug, send_at=send_at)
    return worst


def _send_logged(
    path: Path,
    slug: str | None,
    request: SendRequest,
    settings: Settings,
    log: EventLog,
    *,
    due: bool,
) -> int:
    """Send one edition (:func:`send_one`); report errors as events; return the exit code."""
    if log.json:
        log.event("send-start", f"{path}: sending", slug=slug)
    try:
        code = send_one(path, request, settings, log, slug)
    except LockedError as exc:
        if due:
            # The other run is sending it (or resumes it): nothing for this one to do.
            log.event("locked", str(exc), slug=slug)
            return 0
        return log.failure(exc, slug=slug)
    except DigestError as exc:
        return log.failure(exc, slug=slug)
    if log.json:
        counts = _ledger_counts(settings, slug) if request.records and slug else {}
        log.event("send-end", f"{path}: done (exit {code})", slug=slug, exit_code=code, **counts)
    return code


def _slug_of(path: Path) -> str | None:
    """The edition's slug for the log, when the file reads; send_one reports it otherwise."""
    from digest.edition.load import load_edition

    try:
        return load_edition(path).slug
    except (DigestError, OSError):
        return None


def _ledger_counts(settings: Settings, slug: str) -> dict[str, Any]:
    """The edition's totals in the ledger, for the ``send-end`` event."""
    from digest.ledger import Ledger

    try:
        with Ledger(settings.state_dir) as ledger:
            summary = ledger.summary(slug)
    except DigestError:
        return {}
    return {
        "total": summary.total,
        "sent": summary.sent,
        "failed": summary.failed,
        "pending": summary.pending,
    }


def duration_option(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> timedelta | None:
    """click callback for ``--max-late``: ``7d``, ``36h``, ``90m`` or ``0``."""
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
