"""The index's files on disk: index.sqlite and the -wal and -shm SQLite makes beside it are all 0600."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.readside import add_session
from zag import paths
from zag.logs.index import Index


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def _modes(db: Path) -> dict[str, int]:
    return {name: stat.S_IMODE(Path(f"{db}{name}").stat().st_mode) for name in ("", "-wal", "-shm")}


def test_a_new_index_and_its_wal_and_shm_are_private() -> None:
    with _umask(0o022), Index() as index:  # the usual umask: SQLite alone would create 0644 files
        add_session(index)
        assert index.list_sessions()
        assert _modes(paths.index_db()) == {"": 0o600, "-wal": 0o600, "-shm": 0o600}


def test_an_index_left_0644_by_an_older_zag_is_tightened_with_its_wal_and_shm() -> None:
    paths.ensure_private_dir(paths.home())
    db = paths.index_db()
    with _umask(0o022):
        keeper = Index()  # holds the -wal and -shm open, as a running supervisor would
        add_session(keeper)
        for name in ("", "-wal", "-shm"):
            Path(f"{db}{name}").chmod(0o644)
        with Index() as index:
            assert len(index.list_sessions()) == 1
            assert _modes(db) == {"": 0o600, "-wal": 0o600, "-shm": 0o600}
        keeper.close()


def test_a_read_only_home_stays_read_only() -> None:
    home = paths.ensure_private_dir(paths.home())
    home.chmod(0o555)
    try:
        paths.ensure_private_dir(home)
        assert stat.S_IMODE(home.stat().st_mode) == 0o500  # group/other bits gone, owner's write not granted
    finally:
        home.chmod(0o700)


def test_a_new_index_opened_while_another_process_writes_it_waits_for_the_switch_to_wal(tmp_path: Path) -> None:
    """The first `zag run`s of a batch on a new home open the index together: the one whose switch to WAL
    met another's write lock was told "database is locked" at once (SQLite does not wait there), and zag
    failed to start its index (a CI run saw it with `zag ps` beside one `zag run`). It now tries again."""
    import sqlite3
    import threading

    path = tmp_path / "index.sqlite"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE early (x)")  # a database in rollback-journal mode, as a new file starts
    other.execute("BEGIN IMMEDIATE")          # another process is writing it
    release = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    release.start()
    try:
        with Index(path, timeout=10) as index:
            assert index._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        release.join()
        other.close()
