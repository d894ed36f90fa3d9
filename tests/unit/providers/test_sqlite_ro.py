"""sqlite_ro: reading another program's database never writes to it nor leaves side files behind."""

from __future__ import annotations

import os
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


def _crashed_writer(path: Path, *, keep_shm: bool) -> None:
    """A WAL database whose writer was killed with commits still in its -wal (and, unless `keep_shm`, its
    -shm removed since, as a copy or backup without it leaves it)."""
    import subprocess
    import sys

    _wal_database(path)
    code = ("import os, signal, sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
            "c.execute('PRAGMA wal_autocheckpoint = 0'); c.execute(\"INSERT INTO t VALUES ('in the wal')\"); "
            "c.commit(); os.kill(os.getpid(), signal.SIGKILL)")
    subprocess.run([sys.executable, "-c", code, str(path)], timeout=30)
    assert _side_files(path.parent) == ["app.db-shm", "app.db-wal"]
    if not keep_shm:
        Path(f"{path}-shm").unlink()


def _zag_snapshots() -> list[str]:
    import tempfile

    return sorted(name for name in os.listdir(tempfile.gettempdir()) if name.startswith("zag-sqlite-"))


def test_a_wal_without_its_shm_is_read_whole_without_creating_one(tmp_path: Path) -> None:
    """A -wal whose -shm is gone: SQLite would create the -shm in the program's folder (it did), and
    `immutable` would miss the commits in the -wal. zag reads a private copy, removed after."""
    path = tmp_path / "app.db"
    _crashed_writer(path, keep_shm=False)
    before = _zag_snapshots()
    connection = sqlite_ro.connect(path)
    assert [row[0] for row in connection.execute("SELECT x FROM t")] == [b"one", b"in the wal"]
    connection.close()
    again = sqlite_ro.connect(path)   # the same copy while the files do not change
    assert again.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 2
    again.close()
    assert _side_files(tmp_path) == ["app.db-wal"]
    assert len(_zag_snapshots()) == len(before) + 1
    sqlite_ro.remove_snapshots()
    assert _zag_snapshots() == before


def test_a_wal_database_on_a_read_only_mount_is_read_whole(tmp_path: Path) -> None:
    """goose's folder mounted read-only (a backup, another machine's home) with a crashed writer's -wal,
    with and without its -shm: read in full, nothing written there. (Without the -shm, SQLite could not
    open it at all: 'unable to open database file'.)"""
    import shutil
    import subprocess
    import sys

    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("no mount namespace for a read-only bind mount here")
    for keep_shm in (True, False):
        folder = tmp_path / f"data-{keep_shm}"
        folder.mkdir()
        _crashed_writer(folder / "app.db", keep_shm=keep_shm)
        files = sorted(path.name for path in folder.iterdir())
        mount = tmp_path / f"ro-{keep_shm}"
        mount.mkdir()
        read = ("import sys; from zag.providers import sqlite_ro; c = sqlite_ro.connect(sys.argv[1]); "
                "print([r[0].decode() for r in c.execute('SELECT x FROM t')])")
        done = subprocess.run(
            [unshare, "-rm", "sh", "-c", f'mount --bind -o ro "$1" "$2" && touch "$2/x" 2>/dev/null; '
                                         f'exec "$3" -c "$4" "$2/app.db"',
             "sh", str(folder), str(mount), sys.executable, read], capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr.decode()
        assert done.stdout.decode().strip() == "['one', 'in the wal']"
        assert sorted(path.name for path in folder.iterdir()) == files   # (the touch was refused: read-only)
