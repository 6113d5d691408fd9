"""Every file `digest` writes goes through here: atomic, never through a planted link, private.

* :func:`write_file_atomically` / :func:`atomic_writer`: a new temporary file is created in the
  target's own folder with ``mkstemp`` (``O_CREAT | O_EXCL``, a random name: a file or symbolic
  link planted under any name is never opened, let alone followed), written, given its mode, then
  renamed over the target. ``rename`` replaces a link at the target itself, never what it points
  to. A reader sees the old file or the new one, never half of one.
* Modes are set explicitly (``fchmod``), so the umask does not matter: :data:`PRIVATE_FILE`
  (0600) for anything holding addresses, tokens or send results, :data:`PUBLIC_FILE` (0644)
  for build output meant to be published.
* :func:`private_folder` creates a folder 0700 (the state folder, the outbox);
  :func:`private_file` creates or tightens a file to 0600 before a library (SQLite) opens it.
  SQLite creates its ``-wal`` and ``-shm`` files with the database file's mode.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

PRIVATE_FILE = 0o600
PUBLIC_FILE = 0o644
PRIVATE_FOLDER = 0o700


def write_file_atomically(path: Path, data: bytes, *, mode: int = PRIVATE_FILE) -> None:
    """Replace ``path`` with ``data`` in one step (see the module's note). Raises OSError."""
    with _temporary_beside(Path(path), mode) as fd, os.fdopen(fd, "wb", closefd=False) as stream:
        stream.write(data)


@contextmanager
def atomic_writer(path: Path, *, mode: int = PRIVATE_FILE) -> Iterator[TextIO]:
    """A UTF-8 text stream (no newline translation, as the csv module wants) whose content
    replaces ``path`` when the block ends; on an exception ``path`` is left as it was."""
    with (
        _temporary_beside(Path(path), mode) as fd,
        os.fdopen(fd, "w", encoding="utf-8", newline="", closefd=False) as stream,
    ):
        yield stream


@contextmanager
def _temporary_beside(path: Path, mode: int) -> Iterator[int]:
    """A new file's descriptor in ``path``'s folder, renamed to ``path`` after the block."""
    folder = path.parent if str(path.parent) else Path(".")
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        try:
            os.fchmod(fd, mode)
            yield fd
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def private_folder(path: Path) -> Path:
    """Create ``path`` (and its parents) with the leaf folder 0700; an existing folder is left
    as it is (the curator may have shared it on purpose). Raises OSError."""
    path = Path(path)
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER)
        os.chmod(path, PRIVATE_FOLDER)  # mkdir's mode is masked by the umask
    return path


def private_file(path: Path) -> Path:
    """Make sure ``path`` exists as a regular file with mode 0600 (never following a link), so
    the library that opens it next creates nothing readable by others. Raises OSError."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
    return path
