"""The unattended side of `digest send`: ``--due``, ``--max-late`` and ``--log-format json``.

:func:`run_send` wraps the single-edition function of ``digest.cli.send`` (passed in, so this
module does not import it back): with ``--due`` it asks :mod:`digest.schedule` which editions
are due and sends each, oldest first; with ``--log-format json`` every line the send prints
becomes one JSON object on stderr (``ts``, ``level``, ``event``, ``slug``, ``message``...), which
a log collector reads as is.

``DIGEST_NOW`` (an ISO 8601 time with its offset, e.g. ``2026-03-31T10:00:00Z``) replaces the
clock for ``--due``. It is a testing aid, read only here, never by the core.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import click
from rich.console import Console

from digest.cli.output import err, out, print_error
from digest.errors import ConfigError, DigestError, LockedError, ProblemsError
from digest.schedule import DEFAULT_MAX_LATE, DueDecision, due_editions, parse_duration
from digest.settings import Settings, load_settings

if TYPE_CHECKING:
    from digest.cli.send import SendRequest

LOG_FORMATS = ("text", "json")
NOW_VARIABLE = "DIGEST_NOW"


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

    @contextmanager
    def captured_output(self, slug: str | None) -> Iterator[None]:
        """In json mode, turn what the send prints (on both consoles) into ``output`` events."""
        if not self.json:
            yield
            return
        consoles: list[tuple[Console, str]] = [(out, "info"), (err, "warning")]
        saved = [vars(console).get("_file") for console, _ in consoles]
        writers = [_EventWriter(self, level, slug) for _, level in consoles]
        for (console, _), writer in zip(consoles, writers, strict=True):
            console.file = cast(IO[str], writer)
        try:
            yield
        finally:
            for (console, _), previous, writer in zip(consoles, saved, writers, strict=True):
                writer.flush_rest()
                console.file = previous  # type: ignore[assignment]  # None: back to sys.std*

    def _scrub(self, text: str) -> str:
        return self.settings.scrub(text) if self.settings is not None else text


class _EventWriter(io.TextIOBase):
    """A file for a rich Console: each complete line becomes one ``output`` event."""

    def __init__(self, log: EventLog, level: str, slug: str | None) -> None:
        super().__init__()
        self._log, self._level, self._slug = log, level, slug
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if line.strip():
                self._log.event("output", line.rstrip(), level=self._level, slug=self._slug)
        return len(text)

    def flush_rest(self) -> None:
        if self._pending.strip():
            self._log.event("output", self._pending.rstrip(), level=self._level, slug=self._slug)
        self._pending = ""

    def isatty(self) -> bool:
        return False


# --------------------------------------------------------------------------- the clock


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


# --------------------------------------------------------------------------- the runs

# digest.cli.send.send_edition, passed in (that module imports this one).
SendOne = Callable[[Path, "SendRequest", Settings], int]


def run_send(
    edition_path: Path,
    request: SendRequest,
    send_one: SendOne,
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
        return _send_logged(edition_path, slug, request, settings, send_one, log, due=False)
    try:
        now = current_time()
        decisions = _decisions(edition_path, request, settings, now, max_late or DEFAULT_MAX_LATE)
    except DigestError as exc:
        return log.failure(exc)
    return _send_due(edition_path, decisions, request, settings, send_one, log)


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
    send_one: SendOne,
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
            code = _send_logged(where, slug, request, settings, send_one, log, due=True)
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
        elif decision.state in ("too-late", "invalid"):
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
    send_one: SendOne,
    log: EventLog,
    *,
    due: bool,
) -> int:
    """Send one edition through ``send_one``; report errors as events; return the exit code."""
    if log.json:
        log.event("send-start", f"{path}: sending", slug=slug)
    try:
        with log.captured_output(slug):
            code = send_one(path, request, settings)
    except LockedError as exc:
        if due:
            # The other run is sending it (or resumes it): nothing for this one to do.
            log.event("locked", str(exc), slug=slug)
            return 0
        return log.failure(exc, slug=slug)
    except DigestError as exc:
        return log.failure(exc, slug=slug)
    if log.json:
        counts = _ledger_counts(settings, slug) if _records(request) and slug else {}
        log.event("send-end", f"{path}: done (exit {code})", slug=slug, exit_code=code, **counts)
    return code


def _slug_of(path: Path) -> str | None:
    """The edition's slug for the log, when the file reads; send_one reports it otherwise."""
    from digest.edition.load import load_edition

    try:
        return load_edition(path).slug
    except (DigestError, OSError):
        return None


def _records(request: SendRequest) -> bool:
    return not (request.dry_run or request.test_address)


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
