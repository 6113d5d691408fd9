"""``digest add EDITION URL... [--section TITLE] [--group TITLE] [--again]``: collect links."""

from __future__ import annotations

import click

from digest.cli import cli
from digest.cli.output import err, out


@cli.command()
@click.argument("edition_path", metavar="EDITION", type=click.Path(dir_okay=False))
@click.argument("urls", metavar="URL...", nargs=-1, required=True)
@click.option("--section", metavar="TITLE", help="The section to add to (default: the last one).")
@click.option(
    "--group",
    metavar="TITLE",
    help="The group of that section to add to (default: the section's own items, or its last "
    "group when it has only groups).",
)
@click.option("--again", is_flag=True, help="Add links even when an edition featured them before.")
@click.option(
    "--timeout",
    metavar="S",
    type=click.FloatRange(min=0.1, max=60),
    default=10.0,
    show_default=True,
    help="Seconds allowed for each page.",
)
def add(
    edition_path: str,
    urls: tuple[str, ...],
    section: str | None,
    group: str | None,
    again: bool,
    timeout: float,
) -> int:
    """Fetch each URL and add it to EDITION as an item with title, source and summary.

    Pages give their Open Graph, Twitter card, description and <title>; arXiv pages, PDF links
    and bare ids (2601.07372) come from arXiv's API with title, authors and abstract. A link
    that this or an earlier edition of the folder featured is skipped. The file keeps its
    comments and formatting. Exits 3 when some page could not be fetched.

    \b
    Examples:
      digest add content/2026-04.yaml https://example.org/post 2601.07372
      digest add content/2026-04.yaml https://example.org/tool --section Tools
    """
    from digest.curate.add import add_links
    from digest.curate.fetching import FetchLimits

    report = add_links(
        edition_path,
        urls,
        section=section,
        group=group,
        again=again,
        limits=FetchLimits(timeout=timeout),
    )
    for outcome in report.outcomes:
        if outcome.status == "added":
            out.print(f"added: {outcome.message} ({outcome.given})", markup=False)
        elif outcome.status == "skipped":
            err.print(f"skipped: {outcome.given}: {outcome.message}", markup=False)
        else:
            err.print(f"failed: {outcome.given}: {outcome.message}", markup=False)
    added, skipped, failed = (report.count(s) for s in ("added", "skipped", "failed"))
    noun = "item" if added == 1 else "items"
    where = f" to {report.place} in {edition_path}" if added else f"; {edition_path} is unchanged"
    tail = "".join(f", {n} {what}" for n, what in ((skipped, "skipped"), (failed, "failed")) if n)
    out.print(f"Added {added} {noun}{where}{tail}.", markup=False)
    return 3 if failed else 0
