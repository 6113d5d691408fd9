"""``digest bounces import MBOX|MAILDIR``: learn hard and soft bounces from DSN reports."""

from __future__ import annotations

from pathlib import Path

import click

from digest.audience.bounces import import_bounces
from digest.audience.provenance import SentMailCheck
from digest.audience.suppressions import SuppressionStore
from digest.cli import cli
from digest.cli.output import err, out
from digest.errors import ConfigError
from digest.ledger import Ledger
from digest.settings import load_settings


@cli.group()
def bounces() -> None:
    """Bounces of SMTP sends, read from the mailbox that receives them."""


@bounces.command("import")
@click.argument("mailbox_path", metavar="MBOX|MAILDIR", type=click.Path(path_type=Path))
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="List each address newly suppressed and each report that was not ours.",
)
def import_command(mailbox_path: Path, verbose: bool) -> int:
    """Read the delivery reports (RFC 3464) in an mbox file or a Maildir folder.

    A report counts only for a recipient it proves we sent to: its VERP token or the original
    Message-ID it quotes was made for that recipient, and the ledger holds the edition as sent
    to them. Anything else is listed as "not ours" and changes nothing.

    A permanent failure (status 5.x.x) suppresses the address (reason: bounced); a temporary
    one (4.x.x, or delayed) is counted. Other messages are skipped. Importing the same mailbox
    twice counts nothing twice. A message too large, with too many parts or nested too deep
    (limits far above any real report) is skipped with a note naming it; the rest is imported.

    \b
    Example:
      digest bounces import ~/Maildir/.Bounces
    """
    settings = load_settings()
    if settings.secret is None:
        raise ConfigError(
            "bounces import needs DIGEST_SECRET: it tells the reports about our messages "
            "from forgeries",
            hint="run it with the settings the edition was sent with",
        )
    with Ledger(settings.state_dir) as ledger, SuppressionStore(settings.state_dir) as store:
        check = SentMailCheck(settings.secret.get_secret_value(), ledger)
        report = import_bounces(mailbox_path, store, check)
    if verbose:
        for address in report.hard_addresses:
            out.print(f"bounced  {address}", markup=False)
        for line in report.not_ours_reports:
            out.print(f"not ours  {line}", markup=False)
    out.print(
        f"{mailbox_path}: {report.messages} messages, {report.reports} delivery reports "
        f"({report.already_imported} already imported), "
        f"{report.not_reports} other messages skipped.",
        markup=False,
    )
    out.print(
        f"Hard bounces: {report.hard} ({report.new_suppressions} newly suppressed). "
        f"Soft bounces counted: {report.soft}.",
        markup=False,
    )
    if report.not_ours or report.not_ours_recipients:
        out.print(
            f"Not ours: {report.not_ours} reports, {report.not_ours_recipients} recipient "
            "entries about no message this digest sent; they changed nothing"
            + ("" if verbose else " (-v lists them)")
            + ".",
            markup=False,
        )
    for note in report.refused:
        err.print(f"{mailbox_path}: {note}", markup=False)
    if report.unusable:
        err.print(f"{report.unusable} recipient entries without a usable address were ignored.")
    return 0
