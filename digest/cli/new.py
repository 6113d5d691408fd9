"""``digest new [CONTENT_DIR] [--slug S] [--send-at T]``: start the next edition."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from digest.cli import cli
from digest.cli.output import out


def _aware_time(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise click.BadParameter(
            f"must be a date and time with a timezone, e.g. 2026-04-30T09:00:00Z, not {value!r}"
        )
    return moment


@cli.command()
@click.argument(
    "content_dir",
    metavar="[CONTENT_DIR]",
    required=False,
    default="content",
    type=click.Path(path_type=Path),
)
@click.option("--slug", metavar="S", help="The new edition's slug (default: the month after).")
@click.option(
    "--send-at",
    "send_at",
    metavar="T",
    callback=_aware_time,
    help="When to send it, e.g. 2026-04-30T09:00:00Z (default: a month after the latest).",
)
def new(content_dir: Path, slug: str | None, send_at: datetime | None) -> int:
    """Start the next edition in CONTENT_DIR (default: content/) from the latest one.

    The new file keeps the latest edition's sections and groups, without items; its slug is
    the month after the latest's (2026-03 -> 2026-04) and its send_at a month later. An
    existing file is never overwritten.

    \b
    Examples:
      digest new
      digest new content/ --slug 2026-04-special --send-at 2026-04-15T09:00:00Z
    """
    from digest.curate.new import start_next_edition
    from digest.times import format_time

    made = start_next_edition(content_dir, slug=slug, send_at=send_at)
    when = f", to be sent {format_time(made.send_at)}" if made.send_at else ""
    out.print(f"Wrote {made.path}: {made.label}{when} (from {made.based_on}).", markup=False)
    if made.to_fill:
        out.print("Sections to fill: " + "; ".join(made.to_fill) + ".", markup=False)
    out.print(
        f"Next: digest add {made.path} URL...  then  digest preview {made.path}", markup=False
    )
    return 0
