"""``digest build EDITION [--out DIR]``: write the email as a sample subscriber gets it."""

from __future__ import annotations

from pathlib import Path

import click

from digest.checks import Subject, run_checks, warnings_of
from digest.cli import cli
from digest.cli.output import err, out
from digest.edition.load import load_edition
from digest.errors import DigestError
from digest.files import PUBLIC_FILE, write_file_atomically
from digest.newsletter import find_newsletter
from digest.render.email import render_edition
from digest.render.sample import sample_values
from digest.settings import load_settings


@cli.command()
@click.argument("edition_path", metavar="EDITION", type=click.Path())
@click.option(
    "--out",
    "out_dir",
    metavar="DIR",
    default="dist",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder to write into; the files go to DIR/<slug>/.",
)
def build(edition_path: str, out_dir: str) -> int:
    """Render EDITION into DIR/<slug>/email.html and DIR/<slug>/email.txt.

    The files are what a sample subscriber (reader@example.org) would receive: the unsubscribe
    link is built from DIGEST_UNSUBSCRIBE_URL and DIGEST_SECRET (a real signed token), else
    DIGEST_UNSUBSCRIBE_MAILTO, else an https placeholder; "View in browser" links to
    DIGEST_ARCHIVE_URL when set, else to the edition's page under site_url in digest.toml.
    Prints both paths with their sizes, and any warning (an HTML over 90 KB risks Gmail's
    clipping at ~102 KB).

    \b
    Example:
      digest build content/2026-03.yaml            # -> dist/2026-03/email.html, email.txt
    """
    settings = load_settings()
    edition = load_edition(edition_path)
    newsletter = find_newsletter(edition_path)
    rendered = render_edition(edition, newsletter=newsletter, archive_url=settings.archive_url)
    values = sample_values(settings, edition.slug)

    folder = Path(out_dir) / edition.slug
    html, text = rendered.html.fill(values), rendered.text.fill(values)
    written = [_write(folder / "email.html", html), _write(folder / "email.txt", text)]
    width = max(len(str(path)) for path, _ in written)
    for path, size in written:
        out.print(f"{path!s:<{width}}  {size / 1024:6.1f} KB", markup=False)
    # The one set of checks (digest.checks) that validate, send and the preview run too.
    for finding in warnings_of(run_checks(Subject(edition, html, text))):
        err.print(f"warning: {finding}", markup=False)
    return 0


def _write(path: Path, content: str) -> tuple[Path, int]:
    """Write atomically (a watching browser or preview never sees half a file)."""
    data = content.encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_file_atomically(path, data, mode=PUBLIC_FILE)  # build output is for publishing
    except OSError as exc:
        raise DigestError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path, len(data)
