"""``digest templates export DIR``: copy the packaged templates out, to edit them."""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli import cli
from digest.cli.output import out
from digest.render.export import export_templates


@cli.group()
def templates() -> None:
    """The email templates: the packaged defaults, and your own in ./email_templates/."""


@templates.command("export")
@click.argument(
    "directory",
    metavar="DIR",
    required=False,
    default="email_templates",
    type=click.Path(file_okay=False, path_type=Path),
)
def export_command(directory: Path) -> int:
    """Copy the packaged templates into DIR (default: email_templates, which `build`, `preview`
    and `send` then use instead of the packaged ones). Never overwrites a file."""
    written = export_templates(directory)
    for path in written:
        out.print(f"wrote {path}", markup=False)
    if directory.resolve() != (Path.cwd() / "email_templates").resolve():
        out.print(
            "Edit them, then put them in ./email_templates/ (or export there) to use them.",
            markup=False,
        )
    return 0
