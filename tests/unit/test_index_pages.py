"""The session listings read the index a page at a time (no read transaction held while the caller writes
its output): every row once, in list_sessions' order, across pages whose boundary falls inside a run of
sessions started at the same time, with limits and filters."""

from __future__ import annotations

from pathlib import Path

import pytest

from zag.logs import index as index_module
from zag.logs.index import Index


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Index:
    monkeypatch.setattr(index_module, "_PAGE_ROWS", 3)
    opened = Index(tmp_path / "index.sqlite")
    for n in range(11):  # started_at ties in runs of 4, so page boundaries fall inside them
        opened.add_session(session_id=f"s{(n * 7) % 11:02d}", provider="claude" if n % 3 else "codex",
                           state="running" if n % 2 else "exited", started_at=100.0 + n // 4, updated_at=1.0)
    yield opened
    opened.close()


def test_every_session_once_in_list_order(index: Index) -> None:
    import json

    expected = [row["session_id"] for row in index.list_sessions()]
    assert [row["session_id"] for row in index.iter_sessions()] == expected
    assert [json.loads(doc)["session_id"] for _, doc in index.iter_session_json()] == expected


@pytest.mark.parametrize("limit", [0, 1, 3, 4, 7, 11, 20])
def test_limits_across_pages(index: Index, limit: int) -> None:
    expected = [row["session_id"] for row in index.list_sessions(limit=limit)]
    assert [row["session_id"] for row in index.iter_sessions(limit=limit)] == expected
    assert len(list(index.iter_session_json(limit=limit))) == len(expected)


def test_filters_across_pages(index: Index) -> None:
    import json

    expected = [row["session_id"] for row in index.list_sessions(provider="claude", states_in=["running"])]
    got = [json.loads(doc)["session_id"] for _, doc in index.iter_session_json(provider="claude",
                                                                              states_in=["running"])]
    assert got == expected and expected
    assert [row["session_id"] for row in index.iter_sessions(prefix="s0")] == [
        row["session_id"] for row in index.list_sessions() if row["session_id"].startswith("s0")]
