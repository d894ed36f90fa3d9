"""A backfill interrupted between a worker's log rename and the parent's index commit (SIGKILL, a full
disk under the index): the next run plus `zag reindex` give one session per provider session."""

from __future__ import annotations

import os
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from zag import paths
from zag.logs import backfill
from zag.logs.backfill_worker import TEMP_SUFFIX, backfill_session_id
from zag.logs.index import Index
from zag.logs.reindex import rebuild

from test_backfill import log_of, run
from test_backfill_provider import conversation, write_lines

NAMES = ("alpha", "beta", "gamma", "delta", "omega")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "agent-home"
    folder.mkdir()
    for name in NAMES:
        write_lines(folder / f"{name}.jsonl", conversation(3))
    return folder


def _sessions_by_provider_session() -> Counter[str]:
    with Index() as index:
        return Counter(row["provider_session_id"] for row in index.list_sessions())


def _assert_one_clean_session_each() -> None:
    assert _sessions_by_provider_session() == Counter(NAMES)
    logs = sorted(p.name for p in paths.sessions_dir().iterdir())
    assert logs == sorted(f"{backfill_session_id('testprov', name)}.jsonl" for name in NAMES)
    for name in NAMES:
        log = log_of(backfill_session_id("testprov", name))
        assert len(log) == 4  # session_started + 3 events, each once
        assert [event["seq"] for event in log] == [1, 2, 3, 4]


@pytest.mark.parametrize("jobs", [1, 2])
def test_logs_written_but_never_indexed_are_replaced_not_duplicated(
    root: Path, jobs: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(self: Index, *args: Any) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    with monkeypatch.context() as patch:   # (not monkeypatch.undo(): it would undo the ZAG_HOME fixture too)
        patch.setattr(Index, "commit_backfill", disk_full)
        with pytest.raises(sqlite3.OperationalError):
            run(root, jobs=jobs)
    assert len(list(paths.sessions_dir().iterdir())) == len(NAMES)   # the window: logs, no index rows
    assert _sessions_by_provider_session() == Counter()

    again = run(root, jobs=jobs)
    # an index that holds nothing while logs exist is rebuilt from them first (a lost index): the logs
    # are indexed and their sources adopted, nothing imported again
    assert (again.imported, again.events, again.warnings, again.unchanged) == (0, 0, 0, len(NAMES))
    _assert_one_clean_session_each()
    with Index() as index:
        rebuild(index)
    _assert_one_clean_session_each()
    assert run(root, jobs=jobs).unchanged == len(NAMES)


def test_a_kill_right_after_the_rename_leaves_nothing_duplicated(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Killed(BaseException):
        """Stands for SIGKILL: nothing after the rename runs (no roll-back, no commit)."""

    real_replace = os.replace

    def replace_then_die(src: Any, dst: Any) -> None:
        real_replace(src, dst)
        if str(dst).endswith(f"{backfill_session_id('testprov', 'gamma')}.jsonl"):
            raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", replace_then_die)
        patch.setattr(backfill._Committer, "flush", lambda self: None)   # killed: nothing committed
        with pytest.raises(Killed):
            run(root, jobs=1)
    half = paths.session_log(backfill_session_id("testprov", "delta"))
    half.with_name(half.name + TEMP_SUFFIX).write_text('{"seq": 1}\n{"seq": 2, "tor')  # killed mid-write
    assert _sessions_by_provider_session() == Counter()

    run(root, jobs=1)
    _assert_one_clean_session_each()
    with Index() as index:
        rebuild(index)
    _assert_one_clean_session_each()


def test_an_indexed_session_without_its_cursor_is_adopted_not_rewritten(root: Path) -> None:
    run(root)
    gamma = backfill_session_id("testprov", "gamma")
    with Index() as index, index.transaction() as conn:
        conn.execute("DELETE FROM backfill_sources")   # the cursor table lost; the sessions kept
    before = paths.session_log(gamma).read_bytes()
    again = run(root)
    assert again.imported == 0 and again.events == 0
    assert paths.session_log(gamma).read_bytes() == before
    _assert_one_clean_session_each()
