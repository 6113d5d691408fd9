"""Writing edition files safely: a temporary file in the target folder, renamed into place, so
a crash or a refused edit never leaves a half-written edition behind (replacing goes through
:mod:`digest.files`; creating adds the one thing it lacks: never overwrite)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from digest.files import write_file_atomically


def _temporary_beside(path: Path, text: str, mode: int) -> str:
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return temporary


def replace_file(path: Path, text: str) -> None:
    """Replace ``path``'s content with ``text`` at once, keeping its permissions."""
    write_file_atomically(path, text.encode("utf-8"), mode=path.stat().st_mode & 0o777)


def create_file(path: Path, text: str) -> None:
    """Write a new file at ``path``; raise :class:`FileExistsError` rather than overwrite one,
    even one that appeared a moment ago (a hard link is created only where nothing is)."""
    umask = os.umask(0)
    os.umask(umask)
    temporary = _temporary_beside(path, text, 0o666 & ~umask)
    try:
        os.link(temporary, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


__all__ = ["create_file", "replace_file"]
