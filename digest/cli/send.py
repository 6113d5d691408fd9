"""``digest send EDITION --subscribers CSV [options]``: deliver an edition, resumably.

The click command only parses options; :func:`send_edition` is the whole single-edition path
(load, check, render, confirm, run, summarise), so ``--due`` can call it once per due edition.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from digest.cli import cli, typed_command
from digest.cli.options import backend_option
from digest.cli.output import err, out, print_problems
from digest.cli.send_due import LOG_FORMATS, duration_option, run_send
from digest.errors import ConfigError, SendStopped, SubscribersError
from digest.send.campaign import (
    SKIP_FAILED_BEFORE,
    Campaign,
    RunResult,
    SendOptions,
    plan_campaign,
)
from digest.send.campaign import Progress as SendProgress
from digest.settings import Settings, load_settings

if TYPE_CHECKING:
    from digest.audience.subscribers import Subscriber
    from digest.audience.suppressions import SuppressionStore
    from digest.backends.base import Backend
    from digest.edition.model import Edition


@dataclass(frozen=True)
class SendRequest:
    """Everything ``digest send`` was asked, besides the edition itself."""

    subscribers: Path
    backend: str | None = None
    dry_run: bool = False
    outbox: Path | None = None
    test_address: str | None = None
    options: SendOptions = field(default_factory=SendOptions)
    assume_yes: bool = False


@cli.command()
@click.argument("edition_path", metavar="EDITION", type=click.Path(path_type=Path))
@click.option(
    "--subscribers",
    "subscribers",
    metavar="CSV",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The subscribers CSV (a header row with an `email` column); only `subscribed` rows "
    "are sent to.",
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
    help="Send one proof copy to ADDRESS only (with its row's name when it is in the list); "
    "nothing is recorded.",
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
    default=4,
    show_default=True,
    help="Messages (SMTP connections, Mailgun requests) in flight at once.",
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
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    default="text",
    show_default=True,
    help="json: one JSON object per event on stderr, for log collectors.",
)
def send(
    edition_path: Path,
    subscribers: Path,
    backend: str | None,
    dry_run: bool,
    outbox: Path | None,
    test_address: str | None,
    limit: int | None,
    concurrency: int,
    rate: float | None,
    assume_yes: bool,
    retry_failed: bool,
    due: bool,
    max_late: timedelta | None,
    log_format: str,
) -> int:
    """Send EDITION to every subscribed row of CSV, in batches; rerun to resume.

    Exit codes: 0 done; 1 bad input or settings (nothing sent); 3 finished but some recipients
    failed permanently (see `digest status`); 4 stopped before the end (rerun to resume).

    \b
    Examples:
      digest send content/2026-03.yaml --subscribers subscribers.csv --dry-run
      digest send content/2026-03.yaml --subscribers subscribers.csv --test me@example.org
      digest send content/2026-03.yaml --subscribers subscribers.csv --rate 5 --yes
      digest send content/ --due --subscribers subscribers.csv --yes --log-format json
    """
    if due and test_address is not None:
        raise click.UsageError("--test cannot be used with --due")
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
    request = SendRequest(
        subscribers=subscribers,
        backend=backend,
        dry_run=dry_run,
        outbox=outbox,
        test_address=test_address,
        options=SendOptions(
            concurrency=concurrency, rate=rate, limit=limit, retry_failed=retry_failed
        ),
        assume_yes=assume_yes,
    )
    if due or log_format != "text":
        return run_send(
            edition_path,
            request,
            send_edition,
            due=due,
            max_late=max_late,
            log_format=log_format,
        )
    return send_edition(edition_path, request, load_settings())


def send_edition(edition_path: Path, request: SendRequest, settings: Settings) -> int:
    """Send one edition; return the exit code (0 or 3). Raises DigestError for 1 and 4."""
    # Imported here so `digest --help` stays quick and other commands need none of this.
    from digest.audience.subscribers import SubscriberReport, read_subscribers
    from digest.edition.load import load_edition
    from digest.newsletter import find_newsletter
    from digest.render.email import render_edition
    from digest.send.message import MessageFactory
    from digest.send.preflight import backend_problems, settings_problems

    edition = load_edition(edition_path)
    is_test = request.test_address is not None
    chosen_backend = "outbox" if request.dry_run else request.backend
    backend_name = chosen_backend or settings.backend
    # check_send_setup's checks, but the CSV's row problems do not stop a send (contract §2):
    # they are counted, summarised and skipped while the list is read below. None: the backend
    # comes from DIGEST_BACKEND, so a wrong name is reported as that setting's.
    problems = settings_problems(edition, settings, test=is_test)
    problems += backend_problems(settings, chosen_backend)
    errors = [p for p in problems if p.severity != "warning"]
    print_problems(problems)
    if errors:
        raise ConfigError(
            f"{len(errors)} problem{'s' if len(errors) != 1 else ''} in the send settings; "
            "nothing was sent",
            hint=f"digest validate {edition_path} --subscribers {request.subscribers}",
        )

    # The newsletter beside the edition: its identity, and the default "view in browser" link.
    rendered = render_edition(
        edition, newsletter=find_newsletter(edition_path), archive_url=settings.archive_url
    )
    for warning in rendered.warnings:
        err.print(f"warning: {warning}", markup=False)
    messages = MessageFactory(rendered, settings, test=is_test)
    backend = _make_backend(backend_name, settings, request, edition.slug)
    records = not (request.dry_run or is_test)

    with ExitStack() as stack:
        ledger = suppressions = None
        if records:
            from digest.audience.suppressions import SuppressionStore
            from digest.ledger import Ledger
            from digest.schedule import edition_lock

            stack.enter_context(edition_lock(settings.state_dir, edition.slug))
            suppressions = SuppressionStore(settings.state_dir)
            stack.callback(suppressions.close)
            if backend_name == "mailgun":
                _sync_mailgun_suppressions(suppressions, settings)
            ledger = Ledger(settings.state_dir)
            stack.callback(getattr(ledger, "close", lambda: None))
        elif request.dry_run and not is_test:
            suppressions = _existing_suppressions(settings)
            if suppressions is not None:
                stack.callback(suppressions.close)

        recipients: Iterable[Subscriber]
        if is_test:
            recipients = [_proof_recipient(request)]
            total = 1
        else:
            report = SubscriberReport(path=str(request.subscribers))
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
                    for line in report.summary_lines():
                        err.print(line, markup=False)
                raise
            for line in report.summary_lines():
                err.print(line, markup=False)
            total = plan.to_send
            if records and not request.assume_yes:
                _confirm(edition, settings, request, backend_name, plan.to_send)
            recipients = read_subscribers(request.subscribers, SubscriberReport(path=report.path))

        campaign = Campaign(
            messages=messages,
            backend=backend,
            recipients=recipients,
            ledger=ledger,
            suppressions=suppressions,
            options=request.options,
            total=total,
        )
        try:
            with _progress_bar(campaign, total):
                result = asyncio.run(campaign.run(handle_signals=True))
        except SendStopped as stopped:
            _print_summary(campaign.result, request, backend, stopped=True)
            raise _explained_stop(
                stopped, campaign.result, request, settings, backend_name
            ) from stopped
        _print_summary(result, request, backend)
    if result.failed or result.skipped.get(SKIP_FAILED_BEFORE):
        return 3
    return 0


# -- pieces ---------------------------------------------------------------------------------


def _checked_address(address: str) -> str:
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise click.BadParameter(str(exc), param_hint="--test") from None


def _make_backend(name: str, settings: Settings, request: SendRequest, slug: str) -> Backend:
    from digest.backends.base import load_backend
    from digest.backends.outbox import OutboxBackend

    if name == "outbox":
        return OutboxBackend(settings, directory=request.outbox or Path("outbox") / slug)
    backend_class = load_backend(name)
    backend_class.check_settings(settings)
    return backend_class(settings)


def _existing_suppressions(settings: Settings) -> SuppressionStore | None:
    """The suppression store when there is one: a dry run leaves out the same addresses a real
    send would, but never creates the state folder."""
    from digest.audience.suppressions import SuppressionStore
    from digest.ledger import DB_NAME

    if (settings.state_dir / DB_NAME).is_file():
        return SuppressionStore(settings.state_dir)
    return None


def _sync_mailgun_suppressions(store: SuppressionStore, settings: Settings) -> None:
    """Pull Mailgun's unsubscribes, bounces and complaints first; a failure only warns (Mailgun
    itself never delivers to an address on its suppression lists)."""
    from digest.audience.sync import sync_from_mailgun
    from digest.errors import DigestError

    try:
        report = sync_from_mailgun(store, settings)
    except DigestError as exc:
        err.print(f"warning: could not sync Mailgun's suppressions: {exc}", markup=False)
        return
    if report.added:
        err.print(f"{report.added} new suppression(s) synced from Mailgun", markup=False)


def _proof_recipient(request: SendRequest) -> Subscriber:
    """The --test address, with its row's name and fields when it is in the list."""
    from digest.audience.subscribers import Subscriber, SubscriberReport, read_subscribers

    wanted = (request.test_address or "").lower()
    if request.subscribers.is_file():
        for subscriber in read_subscribers(request.subscribers, SubscriberReport(path="")):
            if subscriber.email.lower() == wanted:
                return subscriber
    return Subscriber(email=request.test_address or "", name="", fields={}, line=0)


def _confirm(
    edition: Edition, settings: Settings, request: SendRequest, backend: str, count: int
) -> None:
    if not sys.stdin.isatty():
        again = typed_command("--yes")
        raise ConfigError(
            "refusing to start a real send without confirmation (no terminal)",
            hint=f"add --yes to send without asking: {again}" if again else "add --yes",
        )
    out.print(f"Edition:    {edition.edition} ({edition.slug})", markup=False)
    out.print(f"Subject:    {edition.subject}", markup=False)
    out.print(f"From:       {settings.from_address}", markup=False)
    out.print(f"Backend:    {backend}", markup=False)
    out.print(f"Recipients: {count:,} from {request.subscribers}", markup=False)
    if not click.confirm("Send now?", default=False):
        err.print("Nothing was sent.", markup=False)
        raise click.exceptions.Abort()


def _explained_stop(
    stopped: SendStopped,
    result: RunResult,
    request: SendRequest,
    settings: Settings,
    backend: str,
) -> SendStopped:
    """The stop, with a hint that fits it: a server never reached is most likely a setting;
    a proof is sent again, never resumed."""
    from digest.send.preflight import settings_source

    if result.sent or result.failed or result.stopped:
        return stopped  # the campaign's own "rerun to resume" fits
    check = _CONNECTION_SETTINGS.get(backend)
    where = settings_source()
    hints = []
    if check is not None:
        names, describe = check
        hints.append(f"check {names} in {where} (now {describe(settings)})")
    hints.append("then rerun the same command" if hints else "rerun the same command")
    if not request.test_address:
        hints[-1] += "; nothing was sent yet"
    return SendStopped(str(stopped), hint=", ".join(hints))


def _smtp_now(settings: Settings) -> str:
    port = settings.smtp_port if settings.smtp_port is not None else "the default port"
    return (
        f"{settings.smtp_host}:{port}, SMTP_SECURITY={settings.smtp_security}; tls is usually "
        "port 465, starttls 587, none a local server"
    )


# Per backend: the settings that decide where it connects, and how to show their values.
_CONNECTION_SETTINGS = {
    "smtp": ("SMTP_HOST, SMTP_PORT and SMTP_SECURITY", _smtp_now),
    "mailgun": (
        "MAILGUN_API_URL and MAILGUN_DOMAIN",
        lambda s: f"{s.mailgun_api_url}, {s.mailgun_domain}",
    ),
}


@contextmanager
def _progress_bar(campaign: Campaign, total: int | None) -> Iterator[None]:
    """A progress bar with rate and ETA, on a terminal only (logs and CI stay clean)."""
    if not out.is_terminal or not total:
        yield
        return
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
        bar.update(
            task,
            completed=progress.sent + progress.failed,
            rate=progress.rate,
            failed=progress.failed,
        )

    campaign.on_progress = update
    with bar:
        yield


def _print_summary(
    result: RunResult, request: SendRequest, backend: object, *, stopped: bool = False
) -> None:
    rate = result.sent / result.elapsed if result.elapsed else 0.0
    idle = not (result.sent or result.failed or result.left_pending or result.stopped)
    if idle and not stopped:
        out.print("Nothing left to send.", markup=False)
    if not (idle and (stopped or result.skipped)):
        # "Sent 0 messages" says nothing the line before or the error after does not.
        verb = "Wrote" if request.dry_run else "Sent"
        out.print(
            f"{verb} {result.sent:,} message{'s' if result.sent != 1 else ''} in "
            f"{result.elapsed:.1f} s ({rate:.1f}/s); failed {result.failed:,}.",
            markup=False,
        )
    if result.skipped:
        parts = ", ".join(f"{n:,} {reason}" for reason, n in sorted(result.skipped.items()))
        out.print(f"Skipped: {parts}.", markup=False)
    if result.left_pending:
        out.print(f"Not sent yet: {result.left_pending:,} (rerun to resume).", markup=False)
    for address, error in result.failures[:20]:
        err.print(f"  failed: {address}: {error}", markup=False)
    if result.failed > 20:
        err.print(f"  ... and {result.failed - 20} more (see `digest status`)", markup=False)
    if request.dry_run:
        directory = getattr(backend, "directory", None)
        out.print(f"Dry run: the messages are in {directory}/ (nothing was sent).", markup=False)
    elif request.test_address and result.sent:
        out.print(f"Proof sent to {request.test_address} (not recorded).", markup=False)
