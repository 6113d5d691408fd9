"""``digest templates export DIR``: the packaged templates copied out for a curator to edit.

A folder ``email_templates/`` in the working folder wins over the packaged templates
(:func:`digest.render.email.default_templates_dir`), so exporting into it and editing there is
how a newsletter gets its own look. Nothing is ever overwritten: if any file to write is already
there, nothing is written at all.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from digest.errors import ConfigError
from digest.render.email import packaged_templates_dir


def export_templates(target: Path) -> list[Path]:
    """Copy every packaged template into ``target`` (created if needed); return the files
    written. ConfigError, with nothing written, when one of them exists already."""
    sources = sorted(p for p in packaged_templates_dir().iterdir() if p.is_file())
    destinations = [target / source.name for source in sources]
    existing = [str(d) for d in destinations if d.exists() or d.is_symlink()]
    if existing:
        raise ConfigError(
            f"not overwriting {', '.join(existing)}",
            hint="export into a new folder, or move your edited templates away first",
        )
    try:
        target.mkdir(parents=True, exist_ok=True)
        for source, destination in zip(sources, destinations, strict=True):
            _write_new(destination, source.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot write to {target}: {exc.strerror or exc}") from exc
    return destinations


def _write_new(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then link it into place, which fails
    rather than replace a file that appeared meanwhile: never a half-written or lost file."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.link(temporary, path)
    finally:
        os.unlink(temporary)
