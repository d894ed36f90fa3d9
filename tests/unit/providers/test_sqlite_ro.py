"""sqlite_ro: reading another program's database never writes to it nor leaves side files behind."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from zag.providers import sqlite_ro


def _wal_database(path: Path) -> None:
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("CREATE TABLE t (x TEXT)")
    connection.execute("INSERT INTO t VALUES ('one')")
    connection.commit()
    connection.close()   # the last connection: checkpoints and removes -wal/-shm


def _side_files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(("-wal", "-shm", "-journal")))


def test_a_wal_database_nobody_has_open_is_read_without_side_files(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    _wal_database(path)
    assert _side_files(tmp_path) == []
    connection = sqlite_ro.connect(path)
    assert connection.execute("SELECT x FROM t").fetchall() == [(b"one",)]
    connection.close()
    assert _side_files(tmp_path) == []


def test_a_running_writer_is_followed_and_never_written_to(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    _wal_database(path)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("INSERT INTO t VALUES ('two')")   # the writer keeps its -wal open
    try:
        reader = sqlite_ro.connect(path)
        assert [row[0] for row in reader.execute("SELECT x FROM t")] == [b"one", b"two"]
        writer.execute("INSERT INTO t VALUES ('three')")
        assert [row[0] for row in reader.execute("SELECT x FROM t")] == [b"one", b"two", b"three"]
        with pytest.raises(sqlite3.OperationalError):
            reader.execute("DELETE FROM t")
        reader.close()
    finally:
        writer.close()
    assert _side_files(tmp_path) == []   # the writer closed last: it cleaned up as if zag was never there


def test_a_missing_database_is_an_error_not_a_new_file(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError, match="does not exist"):
        sqlite_ro.connect(tmp_path / "absent.db")
    assert list(tmp_path.iterdir()) == []
