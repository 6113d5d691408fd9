"""Scheduled sends: which editions are due (``digest send --due``) and the job definitions
``digest schedule`` prints (crontab, systemd timer, GitHub Actions).

A scheduler may fire as often as it likes: :func:`decide` says "due" only when ``send_at`` has
come, the edition is not finished in the ledger and it is not older than the grace period;
:func:`digest.state.edition_lock` makes sure two overlapping runs never both send the same edition.
The clock is always passed in (``now``), so tests and the CLI control time.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol

from digest.edition.model import Edition
from digest.errors import ConfigError, DigestError
from digest.settings import DIGEST_STATE_DIR, every_declared_key
from digest.times import format_duration, format_time

DueState = Literal["not-due", "due", "too-late", "finished", "no-send-at", "invalid"]
DEFAULT_MAX_LATE = timedelta(days=7)
DEFAULT_CRON = "0 * * * *"
EDITION_SUFFIXES = (".yaml", ".yml")


class FinishedLedger(Protocol):
    """The one question the schedule asks the send ledger (``digest.ledger.Ledger``)."""

    def is_finished(self, slug: str) -> bool: ...


@dataclass(frozen=True)
class DueDecision:
    """What ``--due`` makes of one edition file at one moment."""

    path: Path
    slug: str
    send_at: datetime | None
    state: DueState
    reason: str

    @property
    def should_send(self) -> bool:
        return self.state == "due"


# --------------------------------------------------------------------------- due decisions


def _default_loader(path: Path) -> Edition:
    # Imported here so this module loads even where only the schedule is needed.
    from digest.edition.load import load_edition

    return load_edition(path)


def decide(
    edition_path: Path,
    *,
    now: datetime,
    max_late: timedelta = DEFAULT_MAX_LATE,
    ledger: FinishedLedger,
    subscribers: str | None = None,
    loader: Callable[[Path], Edition] = _default_loader,
) -> DueDecision:
    """Whether ``--due`` should send ``edition_path`` at ``now`` (timezone-aware).

    ``subscribers`` only makes the "too late" reason name the exact command to type.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    path = Path(edition_path)
    try:
        edition = loader(path)
    except DigestError as exc:
        return DueDecision(
            path,
            path.stem,
            None,
            "invalid",
            f"cannot be read: {exc} (see `digest validate {shlex.quote(str(path))}`)",
        )

    slug, send_at = edition.slug, edition.send_at
    if send_at is None:
        return DueDecision(
            path,
            slug,
            None,
            "no-send-at",
            "has no send_at, so --due never sends it "
            "(add e.g. `send_at: 2026-03-31T09:00:00Z` to schedule it, or send it by hand)",
        )
    if send_at > now:
        return DueDecision(
            path,
            slug,
            send_at,
            "not-due",
            f"not due yet: due at {format_time(send_at)} (in {format_duration(send_at - now)})",
        )
    if ledger.is_finished(slug):
        return DueDecision(path, slug, send_at, "finished", "already sent (finished in the ledger)")
    late = now - send_at
    if late > max_late:
        # A server that was off for a month must not mail last month's edition on its own.
        needed_days = late.days + 1
        command = f"digest send {shlex.quote(str(path))} --subscribers {subscribers or 'CSV'}"
        return DueDecision(
            path,
            slug,
            send_at,
            "too-late",
            f"was due at {format_time(send_at)}, {format_duration(late)} ago, longer than "
            f"--max-late {format_duration(max_late)}: not sent automatically. "
            f"If it should still go out, type `{command}` (without --due), "
            f"or allow it with `--due --max-late {needed_days}d`",
        )
    return DueDecision(
        path,
        slug,
        send_at,
        "due",
        f"due since {format_time(send_at)} ({format_duration(late)} ago)",
    )


def edition_files(folder: Path) -> list[Path]:
    """The edition files directly in ``folder`` (``*.yaml``, ``*.yml``), by name."""
    return sorted(
        p for p in folder.iterdir() if p.suffix.lower() in EDITION_SUFFIXES and p.is_file()
    )


def due_editions(
    folder_or_file: Path,
    *,
    now: datetime,
    max_late: timedelta = DEFAULT_MAX_LATE,
    ledger: FinishedLedger,
    subscribers: str | None = None,
    loader: Callable[[Path], Edition] = _default_loader,
) -> list[DueDecision]:
    """A decision for every edition of a folder (or the one file), oldest ``send_at`` first;
    editions without ``send_at`` (or unreadable) come last, by file name."""
    target = Path(folder_or_file)
    if not target.exists():
        raise ConfigError(f"{target}: no such file or folder")
    paths = edition_files(target) if target.is_dir() else [target]
    decisions = [
        decide(p, now=now, max_late=max_late, ledger=ledger, subscribers=subscribers, loader=loader)
        for p in paths
    ]
    far_future = datetime.max.replace(tzinfo=UTC)
    return sorted(decisions, key=lambda d: (d.send_at or far_future, d.path.name))


# --------------------------------------------------------------------------- job definitions

_CRON_SHORTCUTS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
}
_CRON_FIELDS = (  # name, lowest, highest
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
_MONTH_NAMES = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAY_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_SYSTEMD_DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_CRON_ATOM = re.compile(r"^(\*|[0-9a-z]+(-[0-9a-z]+)?)(/[0-9]+)?$")
_SUPPORTED_SHAPES = (
    "'M * * * *' (hourly), 'M H * * *' (daily), 'M H D * *' (monthly) or 'M H * * W' (weekly), "
    'e.g. --cron "0 9 1 * *"'
)


def normalize_cron(expression: str) -> str:
    """Check a 5-field cron expression (or @hourly/@daily/@weekly/@monthly); return 5 fields.

    ValueError names the field that is wrong.
    """
    text = " ".join(expression.split()).lower()
    text = _CRON_SHORTCUTS.get(text, text)
    fields = text.split(" ")
    if len(fields) != 5:
        raise ValueError(
            f"cron expression {expression!r} must have 5 fields "
            "(minute hour day-of-month month day-of-week), e.g. '0 9 1 * *'"
        )
    for value, (name, low, high) in zip(fields, _CRON_FIELDS, strict=True):
        names = _MONTH_NAMES if name == "month" else _DAY_NAMES if name == "day of week" else ()
        for atom in value.split(","):
            match = _CRON_ATOM.match(atom)
            if not match:
                raise ValueError(f"cron expression {expression!r}: bad {name} field {value!r}")
            for part in match.group(1).split("-"):
                if part == "*" or part in names:
                    continue
                if not part.isdigit() or not low <= int(part) <= high:
                    raise ValueError(
                        f"cron expression {expression!r}: {name} must be {low}-{high}, not {part!r}"
                    )
    return text


def _weekdays_on_calendar(weekdays: str) -> str | None:
    """Cron's day-of-week list (``1``, ``mon,thu``, ``1-5``) as systemd's (``Mon..Fri``)."""
    days: list[str] = []
    for atom in weekdays.split(","):
        ends = [int(e) if e.isdigit() else _DAY_NAMES.index(e) for e in atom.split("-")]
        first, last = ends[0], ends[-1]
        if first > last:
            return None
        if first == 0 and last > 0:
            # systemd weeks start on Monday: cron's "0-3" is Sunday plus Monday to Wednesday.
            days.append("Sun")
            first = 1
        days.append(
            _SYSTEMD_DAYS[first]
            if first == last
            else f"{_SYSTEMD_DAYS[first]}..{_SYSTEMD_DAYS[last]}"
        )
    return ",".join(days)


def cron_to_on_calendar(expression: str) -> str:
    """A systemd ``OnCalendar=`` value for the common cron shapes; ValueError otherwise."""
    minute, hour, day, month, weekdays = normalize_cron(expression).split(" ")
    unsupported = ValueError(
        f"cannot turn cron expression {expression!r} into a systemd OnCalendar; "
        f"use --cron in one of the shapes {_SUPPORTED_SHAPES}"
    )
    if not minute.isdigit() or month != "*":
        raise unsupported
    if hour == "*" and day == "*" and weekdays == "*":
        return f"*-*-* *:{int(minute):02d}:00"
    if not hour.isdigit():
        raise unsupported
    time = f"{int(hour):02d}:{int(minute):02d}:00"
    if day == "*" and weekdays == "*":
        return f"*-*-* {time}"
    if day.isdigit() and weekdays == "*":
        return f"*-*-{int(day):02d} {time}"
    if day == "*" and "/" not in weekdays and "*" not in weekdays:
        days = _weekdays_on_calendar(weekdays)
        if days:
            return f"{days} *-*-* {time}"
    raise unsupported


def send_arguments(content: str, subscribers: str) -> list[str]:
    """The arguments every scheduled job runs: ``digest <these>``."""
    return ["send", content, "--due", "--subscribers", subscribers, "--yes", "--log-format", "json"]


def _refuse_control_characters(**values: str) -> None:
    for name, value in values.items():
        if re.search(r"[\x00-\x1f\x7f]", value):
            raise ValueError(f"{name} holds a control character; a job line cannot carry it")


def crontab_line(
    workdir: Path,
    cron: str,
    digest_cmd: str,
    subscribers: str,
    *,
    content: str = "content/",
    log_file: str = ".digest/cron.log",
) -> str:
    """One crontab line: the schedule, then ``cd WORKDIR && digest send --due ...``.

    The output is appended to a log file in the state folder rather than mailed by cron.
    """
    _refuse_control_characters(
        workdir=str(workdir), digest_cmd=digest_cmd, subscribers=subscribers, content=content
    )
    schedule = normalize_cron(cron)
    log_dir = str(Path(log_file).parent)
    command = " ".join(
        [
            "cd",
            shlex.quote(str(workdir)),
            "&&",
            "mkdir -p",
            shlex.quote(log_dir),
            "&&",
            shlex.join([digest_cmd, *send_arguments(content, subscribers)]),
            ">>",
            shlex.quote(log_file),
            "2>&1",
        ]
    )
    # cron turns an unescaped % into a newline.
    return f"{schedule} {command.replace('%', chr(92) + '%')}"


def _systemd_quote(argument: str) -> str:
    """One ExecStart= word: double-quoted when needed; % and $ escaped (specifiers, variables)."""
    if re.search(r'[\s"\'\\;]', argument) or argument == "":
        argument = '"' + argument.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return argument.replace("%", "%%").replace("$", "$$")


def systemd_units(
    workdir: Path,
    cron: str,
    digest_cmd: str,
    subscribers: str,
    *,
    content: str = "content/",
) -> tuple[str, str]:
    """``(service_text, timer_text)`` for user units ``digest-send.service`` / ``.timer``."""
    _refuse_control_characters(
        workdir=str(workdir), digest_cmd=digest_cmd, subscribers=subscribers, content=content
    )
    on_calendar = cron_to_on_calendar(cron)
    exec_start = " ".join(
        _systemd_quote(a) for a in [digest_cmd, *send_arguments(content, subscribers)]
    )
    service = (
        "[Unit]\n"
        "Description=Send the due digest editions (digest send --due)\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"WorkingDirectory={str(workdir).replace('%', '%%')}\n"
        f"ExecStart={exec_start}\n"
    )
    timer = (
        "[Unit]\n"
        "Description=Run digest send --due on schedule\n"
        "\n"
        "[Timer]\n"
        f"OnCalendar={on_calendar}\n"
        "# A run missed while the machine was off happens at the next boot; --due decides.\n"
        "Persistent=true\n"
        "Unit=digest-send.service\n"
        "\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
    return service, timer


def _workflow_settings() -> tuple[list[str], list[str]]:
    """Every declared key (core, then each installed backend's) as the workflow passes it:
    non-secret ones from repository variables, secrets from repository secrets. The state
    folder is set by the workflow itself (it caches it)."""
    keys = [key for key in every_declared_key() if key.env != DIGEST_STATE_DIR.env]
    return [k.env for k in keys if not k.secret], [k.env for k in keys if k.secret]


def github_workflow(
    cron: str = DEFAULT_CRON,
    subscribers: str = "subscribers.csv",
    *,
    content: str = "content/",
    python_version: str = "3.11",
) -> str:
    """A GitHub Actions workflow running ``digest send --due`` on ``cron`` (UTC) and by hand.

    It sends only when the repository variable DIGEST_SEND_ENABLED is ``true`` (a fork has no
    such variable, so it cannot send). The ledger (``.digest/``) is kept between runs in the
    Actions cache: restored from the newest entry, saved under a new key after every run, even
    a failed one, so a half-finished send resumes instead of starting again.
    """
    _refuse_control_characters(subscribers=subscribers, content=content)
    schedule = normalize_cron(cron)
    command = shlex.join(["digest", *send_arguments(content, subscribers)])
    variables, secrets = _workflow_settings()
    env_lines = "\n".join(
        [f"      {name}: ${{{{ vars.{name} }}}}" for name in variables]
        + [f"      {name}: ${{{{ secrets.{name} }}}}" for name in secrets]
    )
    csv_target = shlex.quote(subscribers)
    return f"""\
# Sends every due edition of {content} with `digest send --due` (printed by `digest schedule`).
# Off until the repository variable DIGEST_SEND_ENABLED is set to 'true'
# (Settings > Secrets and variables > Actions > Variables); a fork never has it, so it cannot send.
# Safe to run often: --due sends an edition only once its send_at has come, and only once.
name: Send digest

on:
  schedule:
    - cron: "{schedule}"  # UTC
  workflow_dispatch:

permissions:
  contents: read

# One run at a time: runners do not share the send lock, only this queue.
concurrency:
  group: digest-send
  cancel-in-progress: false

jobs:
  send:
    if: ${{{{ vars.DIGEST_SEND_ENABLED == 'true' }}}}
    runs-on: ubuntu-latest
    timeout-minutes: 120
    env:
      DIGEST_STATE_DIR: .digest
{env_lines}
    steps:
      - uses: actions/checkout@v4

      - uses: actions/setup-python@v5
        with:
          python-version: "{python_version}"

      - name: Install digest
        run: python -m pip install .

      # The subscriber list may live in a secret instead of the repository (secrets hold 48 KB).
      - name: Subscriber list from the SUBSCRIBERS_CSV secret, when set
        env:
          SUBSCRIBERS_CSV: ${{{{ secrets.SUBSCRIBERS_CSV }}}}
        run: |
          if [ -n "$SUBSCRIBERS_CSV" ]; then printf '%s\\n' "$SUBSCRIBERS_CSV" > {csv_target}; fi

      # The send ledger: what was sent to whom. Without it a due edition would go out again.
      - name: Restore the send ledger
        uses: actions/cache/restore@v4
        with:
          path: .digest
          key: digest-state-${{{{ github.run_id }}}}-${{{{ github.run_attempt }}}}
          restore-keys: |
            digest-state-

      - name: Send due editions
        run: |
          mkdir -p .digest
          {command}

      # Saved even when the send failed or stopped, so the next run resumes where it ended.
      - name: Save the send ledger
        if: always()
        uses: actions/cache/save@v4
        with:
          path: .digest
          key: digest-state-${{{{ github.run_id }}}}-${{{{ github.run_attempt }}}}
"""
