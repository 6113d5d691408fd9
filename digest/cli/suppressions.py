"""``digest suppressions list|add|remove|export|sync``: the addresses never to be mailed again."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from digest.audience.suppressions import REASONS, Suppression, SuppressionStore
from digest.cli import cli
from digest.cli.output import err, out, print_already_suppressed
from digest.files import atomic_writer
from digest.settings import load_settings


def _store() -> SuppressionStore:
    return SuppressionStore(load_settings().state_dir)


def _describe(item: Suppression) -> str:
    extra = [f"edition {item.slug}"] if item.slug else []
    extra += [item.note] if item.note else []
    tail = f"  ({'; '.join(extra)})" if extra else ""
    return f"{item.created_at}  {item.reason:<12}  {item.source:<10}  {item.address}{tail}"


@cli.group()
def suppressions() -> None:
    """The addresses never to be mailed again, and why.

    Every send and `digest validate --subscribers` leave these addresses out, whatever the
    subscribers CSV says. They are kept in DIGEST_STATE_DIR (default .digest).

    \b
    Examples:
      digest suppressions list --reason bounced
      digest suppressions add ada@example.org --note "asked by email"
      digest suppressions export --out suppressed.csv
    """


@suppressions.command("list")
@click.option("--reason", type=click.Choice(REASONS), help="Only the addresses of this reason.")
def list_command(reason: str | None) -> int:
    """Print each suppressed address: when, reason, source, address."""
    with _store() as store:
        shown = 0
        for item in store.iter(reason):
            out.print(_describe(item), markup=False)
            shown += 1
        counts = {r: n for r, n in store.count_by_reason().items() if n}
    detail = ", ".join(f"{n} {r}" for r, n in counts.items())
    noun = "address" if shown == 1 else "addresses"
    err.print(f"{shown} suppressed {noun}" + (f" ({detail} in all)" if detail else "") + ".")
    return 0


@suppressions.command("add")
@click.argument("address")
@click.option(
    "--reason", type=click.Choice(REASONS), default="manual", show_default=True, help="Why."
)
@click.option("--note", help="A word for your future self (kept, shown by `list`).")
def add_command(address: str, reason: str, note: str | None) -> int:
    """Never mail ADDRESS again."""
    if note is not None and any(ord(ch) < 32 for ch in note):
        raise click.BadParameter("must be one line of text", param_hint="--note")
    with _store() as store:
        if store.add(address, reason, "cli", note=note):
            out.print(f"Suppressed {address.strip()} ({reason}).", markup=False)
        else:
            print_already_suppressed(store, address)
    return 0


@suppressions.command("remove")
@click.argument("address")
def remove_command(address: str) -> int:
    """Take ADDRESS off the list: it may be mailed again (if the subscribers CSV says so)."""
    with _store() as store:
        removed = store.remove(address)
    if not removed:
        err.print(f"{address.strip()} is not suppressed; nothing removed.", markup=False)
        return 1
    out.print(f"Removed {address.strip()} from the suppressions.", markup=False)
    return 0


@suppressions.command("export")
@click.option(
    "--out",
    "out_path",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the CSV here (default: standard output).",
)
@click.option("--reason", type=click.Choice(REASONS), help="Only the addresses of this reason.")
def export_command(out_path: Path | None, reason: str | None) -> int:
    """Write the list as CSV: email,status,reason,source,created_at.

    `status` uses the subscribers CSV's words (unsubscribed, bounced, complained), so the rows can
    be merged back into a subscribers file.
    """
    with _store() as store:
        if out_path is None:
            store.export_csv(sys.stdout, reason)
            sys.stdout.flush()
            return 0
        rows = _export_to_file(store, out_path, reason)
    err.print(f"Wrote {rows} suppressed address{'es' if rows != 1 else ''} to {out_path}.")
    return 0


def _export_to_file(store: SuppressionStore, path: Path, reason: str | None) -> int:
    """Write next to ``path`` then rename, so a reader never sees half a file; 0600, as the
    addresses are personal data."""
    with atomic_writer(path) as stream:
        return store.export_csv(stream, reason)


@suppressions.command("sync")
def sync_command() -> int:
    """Pull Mailgun's unsubscribes, bounces and complaints for MAILGUN_DOMAIN into the list."""
    # Imported here: only this command needs the Mailgun backend and httpx.
    from digest.backends.mailgun import MAILGUN_DOMAIN
    from digest.send.suppression_sync import sync_from_mailgun

    settings = load_settings()
    settings.require("MAILGUN_API_KEY", "MAILGUN_DOMAIN")
    with SuppressionStore(settings.state_dir) as store:
        report = sync_from_mailgun(store, settings)
        total = store.count()
    detail = ", ".join(f"{n} {reason}" for reason, n in report.by_reason.items())
    out.print(
        f"Mailgun ({settings[MAILGUN_DOMAIN]}): {report.seen} listed ({detail}); "
        f"{report.added} new to the suppressions, {total} suppressed in all.",
        markup=False,
    )
    if report.skipped:
        err.print(f"{report.skipped} Mailgun entries skipped (no usable address).")
    return 0
