"""``digest send EDITION --subscribers CSV [options]``: deliver an edition, resumably.

The click command only parses options into a :class:`~digest.send.run.SendRequest`; the send is
:func:`digest.send.run.run_edition`, and what it prints and asks is in ``digest.cli.send_due``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click

from digest.cli import cli
from digest.cli.options import backend_option
from digest.cli.send_due import LOG_FORMATS, current_time, duration_option, run_send
from digest.retry import RetryPolicy
from digest.send.campaign import SendOptions
from digest.send.pacing import AUTO_CEILING, AUTO_START
from digest.send.run import SendRequest


def _retry_option(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> RetryPolicy | None:
    """click callback for ``--retry``: ``attempts=3,backoff=0.5s`` over the defaults."""
    if value is None:
        return None
    try:
        return RetryPolicy.from_spec(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@cli.command()
@click.argument("edition_path", metavar="EDITION", type=click.Path(path_type=Path))
@click.option(
    "--subscribers",
    "subscribers",
    metavar="CSV",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The subscribers CSV (a header row with an `email` column); only `subscribed` rows "
    "are sent to. Required, except for a --test proof.",
)
@click.option(
    "--backend",
    metavar="smtp|mailgun|outbox",
    callback=backend_option,
    help="Default: DIGEST_BACKEND.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Write every message as an .eml file under --outbox; contact no server, touch no ledger.",
)
@click.option(
    "--outbox",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where --dry-run writes (default: outbox/<slug>/).",
)
@click.option(
    "--test",
    "test_address",
    metavar="ADDRESS",
    help="Send one proof copy to ADDRESS only, subject marked [TEST] (with its row's name when "
    "it is in the list); needs no list, ignores send_at, records nothing, unsubscribes no one.",
)
@click.option(
    "--now",
    "send_early",
    is_flag=True,
    help="Send although the edition's send_at is still ahead (a real send waits for it).",
)
@click.option(
    "--strict",
    is_flag=True,
    help="A bad row of the list stops the send (exit 1, nothing sent); without it, bad rows "
    "are skipped with a warning.",
)
@click.option(
    "--limit",
    metavar="N",
    type=click.IntRange(min=0),
    help="Send to at most N recipients now; rerun to send the rest.",
)
@click.option(
    "--concurrency",
    metavar="N",
    type=click.IntRange(1, 64),
    help="The most messages (SMTP connections, Mailgun requests) in flight at once; fewer while "
    "the server throttles. Default: start at 2 and grow to 8 while the server answers quickly.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    metavar="MESSAGES_PER_SECOND",
    help="Cap the sending rate, evenly spaced (2.5 = one message every 0.4 s).",
)
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--retry-failed", is_flag=True, help="Try again the recipients that failed before.")
@click.option(
    "--due",
    is_flag=True,
    help="Send only if send_at has come (for schedulers); EDITION may then be a folder: "
    "every due edition in it, oldest first.",
)
@click.option(
    "--max-late",
    metavar="DURATION",
    callback=duration_option,
    help="With --due: leave to a human an edition due for longer than this "
    "(7d, 36h, 90m; default 7d).",
)
@click.option(
    "--retry",
    metavar="SPEC",
    callback=_retry_option,
    help="How failures are retried, e.g. attempts=6,backoff=2s,max-backoff=60s,jitter=0.5,"
    "outage=30s (stop when nothing succeeds for that long); the backend may refine it.",
)
@click.option(
    "--max-retry-time",
    metavar="DURATION",
    callback=duration_option,
    help="How long a recipient the server throttles (421, 450, 451, 4.7.x) is retried before "
    "it counts as failed (90m, 2h; default 1h; the same as --retry max-retry-time=...).",
)
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    default="text",
    show_default=True,
    help="json: one JSON object per event on stderr, for log collectors.",
)
def send(
    edition_path: Path,
    subscribers: Path | None,
    backend: str | None,
    dry_run: bool,
    outbox: Path | None,
    test_address: str | None,
    send_early: bool,
    strict: bool,
    limit: int | None,
    concurrency: int | None,
    rate: float | None,
    assume_yes: bool,
    retry_failed: bool,
    due: bool,
    max_late: timedelta | None,
    retry: RetryPolicy | None,
    max_retry_time: timedelta | None,
    log_format: str,
) -> int:
    """Send EDITION to every subscribed row of CSV, in batches; rerun to resume.

    Exit codes: 0 done; 1 bad input or settings (nothing sent); 3 finished but some recipients
    failed permanently (see `digest status`); 4 stopped before the end (rerun to resume).

    \b
    Examples:
      digest send content/2026-03.yaml --subscribers subscribers.csv --dry-run
      digest send content/2026-03.yaml --test me@example.org
      digest send content/2026-04.yaml --subscribers subscribers.csv --now
      digest send content/2026-03.yaml --subscribers subscribers.csv --rate 5 --yes
      digest send content/ --due --subscribers subscribers.csv --yes --log-format json
    """
    if subscribers is None and test_address is None:
        raise click.UsageError("Missing option '--subscribers' (only --test needs none).")
    if due and test_address is not None:
        raise click.UsageError("--test cannot be used with --due")
    if due and send_early:
        raise click.UsageError("--now cannot be used with --due (which sends only what is due)")
    if max_late is not None and not due:
        raise click.UsageError("--max-late is only used with --due")
    if edition_path.is_dir() and not due:
        raise click.UsageError(
            f"{edition_path} is a folder: add --due to send every due edition in it, "
            "or name one edition file"
        )
    if outbox is not None and not dry_run:
        raise click.UsageError("--outbox is only used with --dry-run")
    if test_address is not None:
        test_address = _checked_address(test_address)
    policy = retry or RetryPolicy()
    if max_retry_time is not None:
        policy = policy.refined(max_retry_time=max_retry_time.total_seconds())
    request = SendRequest(
        subscribers=subscribers,
        backend=backend,
        dry_run=dry_run,
        outbox=outbox,
        test_address=test_address,
        options=SendOptions(
            # An explicit --concurrency starts there; the default grows from a safe start.
            concurrency=concurrency or AUTO_CEILING,
            start_concurrency=None if concurrency else AUTO_START,
            rate=rate,
            limit=limit,
            retry_failed=retry_failed,
            retry=policy,
        ),
        assume_yes=assume_yes,
        send_early=send_early,
        strict=strict,
        now=current_time(),
    )
    return run_send(edition_path, request, due=due, max_late=max_late, log_format=log_format)


# -- pieces ---------------------------------------------------------------------------------


def _checked_address(address: str) -> str:
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise click.BadParameter(str(exc), param_hint="--test") from None
