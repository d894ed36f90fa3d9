"""Reading another program's SQLite database without writing to it, WAL-safe (shared by providers).

- The database is opened through a `mode=ro` URI: nothing can be written through the connection.
- A database in WAL mode (header byte 18 = 2) with no `-wal` file (no process has it open right now)
  is also opened `immutable=1`, so SQLite creates no `-wal`/`-shm` side files in the program's folder
  (a plain read-only connection to a WAL database leaves both behind). When a `-wal` exists the program
  is running (or crashed): the normal read-only mode shares its WAL index and sees committed writes.
  A rollback-journal database is read with plain `mode=ro` (that creates no files, and honours locks).
- A WAL database with a `-wal` but no `-shm` (a writer that crashed, then its `-shm` removed; a copy or
  backup without it; on a read-only mount) is not opened in place: SQLite would create the `-shm` in the
  program's folder or, where it cannot (a read-only mount), refuse to open it at all; and `immutable`
  would not see the commits in the `-wal`. zag reads a private copy of the two files instead (a temporary
  folder, made once per process and change of the files, removed at exit). No writer runs in this state:
  a running one keeps its `-shm`. (An empty `-wal` without `-shm` holds no commit: read `immutable`.)
- Busy/locked answers come back quickly (`timeout`); callers treat them as "try again later".
- TEXT columns come back as bytes (`text_factory=bytes`), so invalid UTF-8 written by the program
  never aborts a query, and JSON can be decoded straight from bytes.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import threading
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT = 0.25


def connect(path: Path | str, *, timeout: float = DEFAULT_TIMEOUT) -> sqlite3.Connection:
    """A read-only connection (autocommit; bytes for TEXT). Raises sqlite3.Error when it cannot."""
    path = Path(path).absolute()
    if not path.is_file():
        raise sqlite3.OperationalError(f"unable to open database file: {path} does not exist")
    query = "mode=ro"
    if _wal_mode(path):
        wal_size, shm_size = _size(f"{path}-wal"), _size(f"{path}-shm")
        if wal_size is None or (wal_size == 0 and shm_size is None):
            query = "mode=ro&immutable=1"   # nobody has it open, and no commit waits in a -wal
        elif shm_size is None:
            path = _snapshot(path)
    connection = sqlite3.connect(f"{path.as_uri()}?{query}", uri=True, timeout=timeout,
                                 isolation_level=None, check_same_thread=False)
    connection.text_factory = bytes
    return connection


def _size(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


_SNAPSHOTS: dict[str, tuple[Any, Path, int]] = {}   # real path → (its signature, the copy, the pid that made it)
_SNAPSHOTS_LOCK = threading.Lock()
_CLEANUP_PID = 0   # the process that registered its clean-up (a forked worker registers its own)


def _snapshot(path: Path) -> Path:
    """A private copy of a WAL database and its `-wal` (see the module docstring), kept while they do not
    change. Raises sqlite3.OperationalError when it cannot be made (no space for it)."""
    global _CLEANUP_PID
    key = os.path.realpath(path)
    stamp = signature(path)
    with _SNAPSHOTS_LOCK:
        known = _SNAPSHOTS.get(key)
        if known is not None and known[0] == stamp and known[1].is_file():
            return known[1]   # (a forked worker uses its parent's: only the maker removes it)
        if known is not None and known[2] == os.getpid():
            shutil.rmtree(known[1].parent, ignore_errors=True)
        if _CLEANUP_PID != os.getpid():
            from multiprocessing import util   # its finalizers run at exit, in a forked worker too

            util.Finalize(None, remove_snapshots, exitpriority=0)
            _CLEANUP_PID = os.getpid()
        folder = Path(tempfile.mkdtemp(prefix="zag-sqlite-"))
        copy = folder / path.name
        try:
            shutil.copyfile(path, copy)
            shutil.copyfile(f"{path}-wal", f"{copy}-wal")
        except OSError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            _SNAPSHOTS.pop(key, None)
            raise sqlite3.OperationalError(f"unable to read {path} with its -wal: {exc.strerror or exc}") from exc
        _SNAPSHOTS[key] = (stamp, copy, os.getpid())
        return copy


def remove_snapshots() -> None:
    """Remove the copies this process made (at exit; a process that leaves with `os._exit` calls it)."""
    with _SNAPSHOTS_LOCK:
        for key, (_, copy, pid) in list(_SNAPSHOTS.items()):
            if pid == os.getpid():
                shutil.rmtree(copy.parent, ignore_errors=True)
                del _SNAPSHOTS[key]


def _wal_mode(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            header = handle.read(20)
    except OSError:
        return False
    return len(header) == 20 and header.startswith(b"SQLite format 3\x00") and header[18] == 2


def signature(path: Path | str) -> tuple[tuple[int, int, int], ...]:
    """A cheap change signature (two stats): size, mtime and inode of the database and its `-wal`."""
    parts = []
    for candidate in (str(path), f"{path}-wal"):
        try:
            st = os.stat(candidate)
            parts.append((st.st_size, st.st_mtime_ns, st.st_ino))
        except OSError:
            parts.append((-1, 0, 0))
    return tuple(parts)


def columns(connection: sqlite3.Connection, table: str) -> set[str]:
    """The column names of `table` (empty when the table does not exist)."""
    rows = connection.execute(f"PRAGMA table_info({table})").fetchall()
    return {_text(row[1]) for row in rows}


def is_transient(exc: BaseException) -> bool:
    """Busy, locked, or a half-created database: worth trying again at the next poll."""
    if not isinstance(exc, sqlite3.Error):
        return False
    text = str(exc).lower()
    return any(word in text for word in ("locked", "busy", "no such table", "unable to open",
                                          "disk i/o", "malformed", "not a database"))


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
