"""``digest publish [CONTENT_DIR] [--out DIR] [--drafts]``: the static site (contract §7)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from digest.cli import cli
from digest.cli.output import out


@cli.command()
@click.argument(
    "content_dir", metavar="[CONTENT_DIR]", default="content", type=click.Path(file_okay=False)
)
@click.option(
    "--out",
    "out_dir",
    metavar="DIR",
    default="site",
    show_default=True,
    type=click.Path(),
    help="The site's folder; replaced whole by each publish.",
)
@click.option(
    "--drafts",
    is_flag=True,
    help="Also the editions not yet published, marked as drafts and noindex (for a staging site).",
)
def publish(content_dir: str, out_dir: str, drafts: bool) -> int:
    """Write the web archive of CONTENT_DIR (default content/) into DIR (default site/).

    DIR gets index.html (every published edition, newest first), <slug>/index.html (the web
    edition: the email without any personal data), latest/, feed.xml (Atom) and sitemap.xml.
    Any static host serves DIR as it is. An edition is published once its send_at has passed or
    the ledger (DIGEST_STATE_DIR) holds a finished send of it. Needs site_url in digest.toml.
    An invalid edition stops the publication and the previous site stays as it was.

    \b
    Examples:
      digest publish                     # content/ -> site/
      digest publish content --out public --drafts
    """
    # Imported here: other commands need none of the site's modules.
    from digest.settings import load_settings
    from digest.site.publish import INDEX_FILE, publish_site

    settings = load_settings()
    site = publish_site(
        Path(content_dir),
        Path(out_dir),
        now=datetime.now(UTC),
        state_dir=settings.state_dir,
        drafts=drafts,
    )
    published, draft_slugs = site.published, site.drafts
    line = f"{out_dir}: {len(published)} edition{'s' if len(published) != 1 else ''} published"
    if draft_slugs:
        line += f", {len(draft_slugs)} draft{'s' if len(draft_slugs) != 1 else ''}"
    line += f" ({site.files} files, {site.size / 1024:.0f} KB)"
    out.print(line, markup=False)
    for item in site.editions:
        mark = "draft" if item.draft else f"{item.date:%Y-%m-%d}" if item.date else ""
        out.print(f"  {item.slug:<20} {mark:<10} {item.edition.subject}", markup=False)
    out.print(f"Open {Path(out_dir) / INDEX_FILE} in a browser.", markup=False)
    return 0
