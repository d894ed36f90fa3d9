"""Reading another program's SQLite database without writing to it, WAL-safe (shared by providers).

- The database is opened through a `mode=ro` URI: nothing can be written through the connection.
- A database in WAL mode (header byte 18 = 2) with no `-wal` file (no process has it open right now)
  is also opened `immutable=1`, so SQLite creates no `-wal`/`-shm` side files in the program's folder
  (a plain read-only connection to a WAL database leaves both behind). When a `-wal` exists the program
  is running (or crashed): the normal read-only mode shares its WAL index and sees committed writes.
  A rollback-journal database is read with plain `mode=ro` (that creates no files, and honours locks).
- Busy/locked answers come back quickly (`timeout`); callers treat them as "try again later".
- TEXT columns come back as bytes (`text_factory=bytes`), so invalid UTF-8 written by the program
  never aborts a query, and JSON can be decoded straight from bytes.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

DEFAULT_TIMEOUT = 0.25


def connect(path: Path | str, *, timeout: float = DEFAULT_TIMEOUT) -> sqlite3.Connection:
    """A read-only connection (autocommit; bytes for TEXT). Raises sqlite3.Error when it cannot."""
    path = Path(path).absolute()
    if not path.is_file():
        raise sqlite3.OperationalError(f"unable to open database file: {path} does not exist")
    query = "mode=ro&immutable=1" if _wal_mode(path) and not os.path.exists(f"{path}-wal") else "mode=ro"
    connection = sqlite3.connect(f"{path.as_uri()}?{query}", uri=True, timeout=timeout,
                                 isolation_level=None, check_same_thread=False)
    connection.text_factory = bytes
    return connection


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
