"""The state folder (``DIGEST_STATE_DIR``, default ``.digest``): one SQLite set-up and the
per-edition send lock.

One database file, ``digest.sqlite3``, holds the send ledger (``digest.ledger``) and the
suppression store (``digest.audience.suppressions``) in tables of their own. Both open it with
:func:`open_database`, so they agree on everything that concerns the file: its path, WAL
journal, the busy timeout (a writer waits up to 30 s for the other one, e.g. the unsubscribe
endpoint adding a row while a send records its batches), autocommit mode (each store opens its
own ``BEGIN IMMEDIATE`` transactions) and how a schema is created or brought up to date.

The folder is created 0700 and the database file 0600 before SQLite opens it (SQLite gives its
``-wal`` and ``-shm`` files the database's mode), whatever the umask: the file holds addresses
and servers' replies. The lock folder is 0700, the lock and owner files 0600, the owner file
written atomically (a link planted at its name is replaced, never followed).

Durability is the one thing that differs, on purpose, and it is decided here:

* ``durable=True`` (suppressions): ``synchronous=FULL``, every commit reaches the disk: an
  unsubscribe must survive a power cut;
* ``durable=False`` (the ledger): ``synchronous=NORMAL``: durable against the death of the
  process (the OS keeps the WAL's writes); a power cut may roll back the last commits, which
  means at most a re-send of the last batches, while a disk flush per batch would halve the
  send rate.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from digest.errors import ConfigError, LockedError
from digest.files import PRIVATE_FILE, private_file, private_folder, write_file_atomically

DB_NAME = "digest.sqlite3"
BUSY_TIMEOUT_MS = 30_000
_LOCK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # a plain file name, nothing more


def database_path(state_dir: Path) -> Path:
    """Where the state database is (it may not exist yet)."""
    return Path(state_dir) / DB_NAME


def has_database(state_dir: Path) -> bool:
    """Whether a state database exists: read-only commands never create one."""
    return database_path(state_dir).is_file()


def open_database(
    state_dir: Path, schema: str, *, durable: bool, threads: bool = False
) -> sqlite3.Connection:
    """A connection to the state database, the folder created if needed and ``schema`` (``CREATE
    ... IF NOT EXISTS`` statements, then any migrations, all idempotent) applied in one
    transaction. ``threads``: the connection may be used from other threads (its owner
    serialises the calls). Raises OSError or sqlite3.Error; callers turn them into their own
    errors."""
    path = database_path(state_dir)
    private_folder(path.parent)
    private_file(path)
    db = sqlite3.connect(
        path,
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,  # autocommit: every transaction is opened explicitly
        check_same_thread=not threads,
    )
    try:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        # Deferred: when the schema is already there nothing is written, so opening does not
        # wait for another writer (a send recording its batches).
        db.execute("BEGIN")
        try:
            for statement in schema.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    except BaseException:
        db.close()
        raise
    return db


# -- the send lock -----------------------------------------------------------------------------


def lock_path(state_dir: Path, slug: str) -> Path:
    return Path(state_dir) / "locks" / f"{slug}.lock"


def _owner_path(state_dir: Path, slug: str) -> Path:
    return Path(state_dir) / "locks" / f"{slug}.owner"


def _describe_owner(owner_file: Path) -> str:
    try:
        owner = json.loads(owner_file.read_text(encoding="utf-8"))
        return f" (pid {owner['pid']} on {owner['host']}, started {owner['started']})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


@contextmanager
def edition_lock(state_dir: Path, slug: str) -> Iterator[Path]:
    """Hold ``<state_dir>/locks/<slug>.lock`` exclusively for the block, or raise LockedError.

    It is an flock, which the OS drops when the holder exits in any way (even SIGKILL), so a
    crashed run can never leave the edition locked. Who holds it (pid, host, start time) is
    written next to it, in ``<slug>.owner``, for the message the next run prints.
    """
    if not _LOCK_NAME.fullmatch(slug):
        raise ValueError(f"not a valid slug for a lock file: {slug!r}")
    path = lock_path(state_dir, slug)
    owner_file = _owner_path(state_dir, slug)
    try:
        private_folder(Path(state_dir))
        private_folder(path.parent)
    except OSError as exc:
        raise ConfigError(f"cannot create the lock folder {path.parent}: {exc.strerror}") from exc
    # No soft (existence-file) fallback: a soft lock is exactly what a killed run leaves stuck.
    lock = FileLock(path, timeout=0, mode=PRIVATE_FILE, blocking=False, fallback_to_soft=False)
    try:
        lock.acquire()
    except Timeout:
        raise LockedError(
            f"another run is sending {slug}{_describe_owner(owner_file)}",
            hint="it will finish or resume on a later run; the lock goes away when that run ends",
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot lock {path}: {exc.strerror or exc}",
            hint="DIGEST_STATE_DIR must be on a local filesystem that supports flock",
        ) from exc
    try:
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        write_file_atomically(owner_file, (json.dumps(owner) + "\n").encode("utf-8"))
        yield path
    finally:
        # Removed while still held, so it never erases the next holder's record.
        owner_file.unlink(missing_ok=True)
        lock.release()
