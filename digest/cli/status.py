"""``digest status EDITION``: what the send ledger knows of one edition."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from digest.cli import cli
from digest.cli.output import err, out
from digest.edition.model import SLUG_PATTERN
from digest.errors import DigestError
from digest.send.campaign import SKIP_SUPPRESSED
from digest.settings import load_settings

# How Campaign records the recipients it left out as suppressed in a run's counts.
_SUPPRESSED_KEY = f"skipped: {SKIP_SUPPRESSED}"
_SLUG = re.compile(SLUG_PATTERN)


@cli.command()
@click.argument("edition", metavar="EDITION")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def status(edition: str, as_json: bool) -> int:
    """Counts of sent, failed and pending for EDITION, when, each failed address with its last
    error, and every run.

    EDITION is the edition's file (content/2026-03.yaml) or its slug (2026-03).

    \b
    Examples:
      digest status content/2026-03.yaml
      digest status 2026-03 --json
    """
    from digest.audience.suppressions import SuppressionStore
    from digest.ledger import Ledger
    from digest.state import has_database

    settings = load_settings()
    slug = _slug_of(edition)
    unsubscribed = 0
    origins: dict[tuple[str, str], int] = {}
    if not has_database(settings.state_dir):
        summary = None
    else:
        with Ledger(settings.state_dir) as ledger:
            summary = ledger.summary(slug)
        with SuppressionStore(settings.state_dir) as store:
            unsubscribed = store.count_for_edition(slug)
            origins = store.edition_origins(slug)
    missed = _missed(edition, settings.state_dir)
    # The list's suppressed addresses, as the latest run left them out.
    suppressed = summary.runs[-1].counts.get(_SUPPRESSED_KEY, 0) if summary and summary.runs else 0
    if as_json:
        data = {
            "slug": slug,
            "total": 0,
            "sent": 0,
            "failed": 0,
            "pending": 0,
            "suppressed": suppressed,
            "unsubscribed_from_edition": unsubscribed,
            "missed": missed,
        }
        if summary is not None:
            data = {
                "slug": slug,
                "total": summary.total,
                "sent": summary.sent,
                "failed": summary.failed,
                "pending": summary.pending,
                "suppressed": suppressed,
                "unsubscribed_from_edition": unsubscribed,
                "missed": missed,
                # Where this edition's suppressions came from (links, send-time refusals, DSNs).
                "suppressions": [
                    {"reason": reason, "source": source, "count": n}
                    for (reason, source), n in origins.items()
                ],
                "first_sent_at": summary.first_sent_at,
                "last_sent_at": summary.last_sent_at,
                "failures": [
                    {"address": a, "attempts": n, "error": e} for a, n, e in summary.failures
                ],
                "runs": [
                    {
                        "started_at": r.started_at,
                        "finished_at": r.finished_at,
                        "outcome": r.outcome,
                        "counts": dict(r.counts),
                    }
                    for r in summary.runs
                ],
            }
        out.print_json(json.dumps(data))
        return 0
    if summary is None or (summary.total == 0 and not summary.runs):
        out.print(f"{slug}: nothing sent yet.", markup=False)
        if missed:
            out.print(f"missed: {missed}", markup=False)
        known = _known_slugs(settings.state_dir) if summary is not None else []
        if known and slug not in known:
            # A slug typed by hand may be a slip: say which editions the ledger knows.
            err.print(f"The ledger knows: {', '.join(known)}.", markup=False)
        return 0
    out.print(
        f"{slug}: {summary.sent:,} sent, {summary.failed:,} failed, {summary.pending:,} pending "
        f"(of {summary.total:,})",
        markup=False,
    )
    if missed:
        out.print(f"missed: {missed}", markup=False)
    if suppressed or unsubscribed:
        out.print(
            f"suppressed: {suppressed:,} of the list left out at the last run; "
            f"{unsubscribed:,} unsubscribed through this edition's links",
            markup=False,
        )
    if origins:
        parts = ", ".join(f"{n:,} {reason} ({source})" for (reason, source), n in origins.items())
        out.print(f"suppressed through this edition: {parts}", markup=False)
    if summary.first_sent_at:
        out.print(
            f"first sent {summary.first_sent_at}, last sent {summary.last_sent_at}", markup=False
        )
    if summary.failures:
        out.print("failed:", markup=False)
        for address, attempts, error in summary.failures:
            tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
            out.print(f"  {address}: {error or 'refused'} ({tries})", markup=False)
    if summary.runs:
        out.print("runs:", markup=False)
        for run in summary.runs:
            counts = ", ".join(f"{v:,} {k}" for k, v in run.counts.items() if v)
            out.print(
                f"  {run.started_at} .. {run.finished_at}  {run.outcome}"
                + (f"  ({counts})" if counts else ""),
                markup=False,
            )
    if summary.pending:
        out.print(
            "Rerun the same `digest send` command (same list) to send to the pending ones.",
            markup=False,
        )
    if summary.failures:
        out.print(
            "To try the failed ones again: digest send "
            f"{edition if _is_file_name(edition) else 'EDITION'} --subscribers CSV --retry-failed",
            markup=False,
        )
    return 0


def _missed(edition: str, state_dir: Path) -> str | None:
    """Why ``digest send --due`` leaves this edition to a human (more than --max-late past its
    send_at and never finished), or None. Only an edition file tells its send_at."""
    if not (_is_file_name(edition) and Path(edition).is_file()):
        return None
    from digest.cli.clock import current_time
    from digest.ledger import Ledger
    from digest.schedule import decide
    from digest.state import has_database

    if has_database(state_dir):
        with Ledger(state_dir) as ledger:
            decision = decide(Path(edition), now=current_time(), ledger=ledger)
    else:
        decision = decide(Path(edition), now=current_time(), ledger=_NothingFinished())
    return decision.reason if decision.state == "too-late" else None


class _NothingFinished:
    """The ledger's answer before any send: no edition is finished."""

    def is_finished(self, slug: str) -> bool:
        return False


def _slug_of(edition: str) -> str:
    """A YAML file's slug (its `slug:` key, else its stem); anything else is taken as a slug."""
    path = Path(edition)
    if _is_file_name(edition) or path.is_dir():
        from digest.edition.load import load_edition

        return load_edition(edition).slug  # a folder or a missing file: its clear error
    if not _SLUG.fullmatch(edition):
        raise DigestError(
            f"{edition!r} is neither an edition file (content/2026-03.yaml) nor a slug (2026-03)"
        )
    return edition


def _is_file_name(edition: str) -> bool:
    return Path(edition).suffix.lower() in (".yaml", ".yml")


def _known_slugs(state_dir: Path) -> list[str]:
    from digest.ledger import Ledger

    with Ledger(state_dir) as ledger:
        return ledger.slugs()
