"""``digest links EDITION [--timeout S] [--concurrency N]``: check every link of an edition."""

from __future__ import annotations

import click

from digest.cli import cli
from digest.cli.output import err, out


@cli.command()
@click.argument("edition_path", metavar="EDITION", type=click.Path(dir_okay=False))
@click.option(
    "--timeout",
    metavar="S",
    type=click.FloatRange(min=0.1, max=120),
    default=10.0,
    show_default=True,
    help="Seconds allowed for each link.",
)
@click.option(
    "--concurrency",
    metavar="N",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Links checked at once (never more than 2 on one host).",
)
def links(edition_path: str, timeout: float, concurrency: int) -> int:
    """Check every link of EDITION and print each broken one at PATH:LINE:COL.

    HEAD first, GET when HEAD is refused; answers are kept an hour in the state folder, and
    the preview's checks panel shows the last results. A redirect to another host is a note.
    Exits 1 when a link is broken.

    \b
    Example:
      digest links content/2026-04.yaml --timeout 5
    """
    from pathlib import Path

    from digest.curate.fetching import FetchLimits
    from digest.curate.links import check_links
    from digest.edition.load import load_edition
    from digest.settings import load_settings

    edition = load_edition(edition_path)  # an invalid edition: its problems, exit 1
    text = Path(edition_path).read_text(encoding="utf-8-sig")
    settings = load_settings()
    report = check_links(
        edition_path,
        text,
        edition.slug,
        settings.state_dir,
        limits=FetchLimits(timeout=timeout),
        concurrency=concurrency,
    )
    for place, result in report.broken():
        err.print(
            f"{edition_path}:{place.line}:{place.col}: {place.field}: {result.status}: "
            f"{result.url}",
            markup=False,
        )
    for place, result in report.notes():
        out.print(
            f"{edition_path}:{place.line}:{place.col}: {place.field}: note: {result.note}",
            markup=False,
        )
    broken = len({result.url for _, result in report.broken()})
    total = len(report.results)
    cached = f" ({report.from_cache} from the last hour's answers)" if report.from_cache else ""
    summary = f"Checked {total} link{'s' if total != 1 else ''}{cached}: "
    summary += f"{broken} broken." if broken else "all reachable."
    (err if broken else out).print(summary, markup=False)
    return 1 if broken else 0
