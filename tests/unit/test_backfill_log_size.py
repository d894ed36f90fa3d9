"""A cursor's recorded log size: what a session log holds beyond it (a worker SIGKILLed mid-append, the last
second of a live session whose cursor could no longer be updated) is not imported a second time."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from zag import paths, states
from zag.logs import backfill, backfill_worker, events
from zag.logs.backfill import run_backfill
from zag.logs.index import Index
from zag.logs.reader import read_events
from zag.logs.writer import SessionLogWriter

from test_backfill_provider import JsonlTestProvider, JsonlTestReader, conversation, write_lines

PROVIDER = JsonlTestProvider()
TEST_PID = os.getpid()
LIVE_SESSION = "11111111-2222-4333-8444-555555555555"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "agent-home"
    folder.mkdir()
    return folder


def run(root: Path, provider: Any = PROVIDER, jobs: int = 1) -> backfill.ProviderSummary:
    [summary] = run_backfill([provider], env={"TESTPROV_ROOT": str(root)}, jobs=jobs)
    return summary


def session_of(key: str) -> str:
    with Index() as index:
        session_id = index.find_by_provider_session("testprov", key)
    assert session_id
    return session_id


def texts(session_id: str) -> list[str]:
    log = list(read_events(paths.session_log(session_id)))
    assert [event["seq"] for event in log] == list(range(1, len(log) + 1))
    return [event["text"] for event in log if "text" in event]


def recorded(key: str) -> tuple[str, Any, int | None]:
    with Index() as index:
        return index.backfill_cursors("testprov", [key])[key]


# --- gap 1: an import killed while appending --------------------------------------------------------
class KilledMidJob(JsonlTestProvider):
    """In a worker process, alpha's reader hands over one batch (written at once: BATCH_EVENTS) and then
    its process is SIGKILLed, as by the OOM killer: nothing is rolled back, no result is sent."""

    def open_reader(self, source: Any, cursor: Any) -> Any:
        reader = super().open_reader(source, cursor)
        return _Killer(reader) if source.source_key == "alpha" else reader


class _Killer:
    def __init__(self, reader: JsonlTestReader) -> None:
        self.reader = reader

    def read_batches(self) -> Any:
        items = list(self.reader.read())
        yield items[:backfill_worker.BATCH_EVENTS + 10]
        if os.getpid() == TEST_PID:
            raise AssertionError("this reader must run in a worker process")
        os.kill(os.getpid(), signal.SIGKILL)

    def cursor(self) -> Any:
        return self.reader.cursor()

    def close(self) -> None:
        pass


def test_events_a_sigkilled_worker_appended_are_not_imported_again(root: Path) -> None:
    records = conversation(900)
    write_lines(root / "alpha.jsonl", records[:300])
    run(root)
    session_id = session_of("alpha")
    assert recorded("alpha")[2] == paths.session_log(session_id).stat().st_size
    write_lines(root / "alpha.jsonl", records[300:], append=True)
    write_lines(root / "beta.jsonl", conversation(3))   # a second group: the jobs go to worker processes

    killed = run(root, provider=KilledMidJob(), jobs=2)
    assert any(message.startswith("alpha:") and "worker process" in message
               for message in killed.warning_messages)
    assert len(texts(session_id)) == 300 + backfill_worker.BATCH_EVENTS   # appended, no cursor for it

    again = run(root, jobs=2)

    assert again.warnings == 0
    assert texts(session_id) == [r["text"] for r in records]   # nothing twice, nothing missing
    assert texts(session_of("beta")) == [r["text"] for r in conversation(3)]
    assert run(root).events == 0


def test_a_continued_import_skips_what_an_unaccounted_tail_holds(root: Path) -> None:
    """The same without processes: a continued import appended records 6-8, its cursor never stored."""
    records = conversation(12)
    write_lines(root / "alpha.jsonl", records[:3])
    run(root)
    write_lines(root / "alpha.jsonl", records[3:6], append=True)
    run(root)   # a continued import: its cursor and the log's size are stored
    session_id = session_of("alpha")
    with SessionLogWriter(session_id, "testprov", provider_session_id="alpha") as writer:
        writer.write_many([dict(r) for r in records[6:9]], events.SOURCE_BACKFILL)
    write_lines(root / "alpha.jsonl", records[6:], append=True)

    summary = run(root)

    assert (summary.updated, summary.events, summary.warnings) == (1, 3, 0)
    assert texts(session_id) == [r["text"] for r in records]


def test_an_unchanged_log_is_not_read(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records = conversation(8)
    write_lines(root / "alpha.jsonl", records[:4])
    run(root)
    write_lines(root / "alpha.jsonl", records[4:], append=True)

    def no_reading(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the log's size equals the recorded one: nothing to read")

    monkeypatch.setattr(backfill_worker, "_watermark", no_reading)
    summary = run(root)

    assert (summary.updated, summary.events, summary.warnings) == (1, 4, 0)
    assert texts(session_of("alpha")) == [r["text"] for r in records]


def test_a_log_cut_below_the_recorded_size_is_reported_and_continued_from_the_cursor(root: Path) -> None:
    records = conversation(8)
    write_lines(root / "alpha.jsonl", records[:4])
    run(root)
    session_id = session_of("alpha")
    log = paths.session_log(session_id)
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:-1]))   # the last record removed by hand
    write_lines(root / "alpha.jsonl", records[4:], append=True)

    summary = run(root)

    assert summary.events == 4 and summary.warnings == 1
    assert "smaller" in summary.warning_messages[0]
    assert texts(session_id) == [r["text"] for r in records[:3] + records[4:]]
    assert recorded("alpha")[2] == log.stat().st_size


# --- gap 2: a live session's cursor that could not be updated at the end ----------------------------
def _live_log(records: list[dict[str, Any]]) -> SessionLogWriter:
    with Index() as index:
        index.add_session(session_id=LIVE_SESSION, provider="testprov", provider_session_id="alpha",
                          state=states.EXITED, started_at=events.parse_ts(records[0]["ts"]), cwd="/live",
                          last_seq=0)
    writer = SessionLogWriter(LIVE_SESSION, "testprov", provider_session_id="alpha")
    writer.write(events.body(events.SESSION_STARTED, argv=["testprov"], cwd="/live", model=None,
                             resumed=False, backfilled=False))
    return writer


def test_what_a_live_session_logged_after_its_last_stored_cursor_is_not_imported_again(root: Path) -> None:
    records = conversation(10)
    write_lines(root / "alpha.jsonl", records[:5])
    writer = _live_log(records)
    reader = PROVIDER.open_reader(next(PROVIDER.discover({"TESTPROV_ROOT": str(root)})), None)
    for item in reader.read():
        writer.write(item, events.SOURCE_PROVIDER_FILE)
    with Index() as index:   # saved a second before the disk filled: the later `forget` never got written
        index.save_backfill_cursor("testprov", "alpha", LIVE_SESSION, reader.cursor(), None,
                                   log_size=paths.session_log(LIVE_SESSION).stat().st_size)
    write_lines(root / "alpha.jsonl", records[5:7], append=True)
    for item in reader.read():   # the live session logged these, its cursor was not stored any more
        writer.write(item, events.SOURCE_PROVIDER_FILE)
    writer.write(events.body(events.SESSION_ENDED, exit_code=0, signal=None, duration_secs=1.0))
    writer.close()
    write_lines(root / "alpha.jsonl", records[7:], append=True)   # and these it missed (the full disk)

    summary = run(root)

    assert (summary.updated, summary.events, summary.warnings) == (1, 3, 0)
    assert texts(LIVE_SESSION) == [r["text"] for r in records]


def test_the_live_follower_stores_the_logs_size_with_its_cursor() -> None:
    from zag.providers.base import LaunchContext, LaunchPlan
    from zag.wrapper.guard import ProviderGuard
    from zag.wrapper.live import LiveFollower
    from zag.wrapper.registry import Registry

    from test_live_cursor import Provider

    sizes = iter([1234, 5678])
    registry = Registry(LIVE_SESSION, {"provider": "testprov", "state": "running", "started_at": time.time(),
                                       "argv": "[]", "cwd": "/"})
    follower = LiveFollower(Provider(), ProviderGuard("testprov", LIVE_SESSION), registry,  # type: ignore[arg-type]
                            lambda item, source: None, lambda provider_session_id: None,
                            log_size=lambda: next(sizes))
    ctx = LaunchContext(cwd="/", env={}, interactive=False, started_at=time.time(), zag_session_id=LIVE_SESSION)
    assert follower.open(LaunchPlan(args=[]), ctx)
    follower.poll_once()
    follower.poll_once()
    follower.finish()
    assert registry.close()
    assert recorded("alpha")[1:] == ({"records": 2}, 5678)


# --- the index -------------------------------------------------------------------------------------
_OLD_SOURCES = """
CREATE TABLE backfill_sources (
    provider TEXT NOT NULL, source_key TEXT NOT NULL, session_id TEXT NOT NULL, fingerprint TEXT,
    cursor TEXT, updated_at REAL NOT NULL, PRIMARY KEY (provider, source_key)
);
INSERT INTO backfill_sources VALUES ('testprov', 'alpha', 'sid-1', 'fp', '{"offset": 10}', 1.0);
PRAGMA user_version = 3;
"""


def test_an_index_from_before_the_log_size_keeps_its_cursors() -> None:
    path = paths.index_db()
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.executescript(_OLD_SOURCES)

    with Index() as index:
        assert index.backfill_cursors("testprov", ["alpha"]) == {"alpha": ("sid-1", {"offset": 10}, None)}
        index.save_backfill_cursor("testprov", "beta", "sid-2", None, None, log_size=42)
        assert index.backfill_cursors("testprov", ["beta"])["beta"][2] == 42
    with Index() as index:   # migrated once
        assert index.backfill_cursor("testprov", "alpha") == ("sid-1", {"offset": 10})


def test_a_cursor_from_before_the_log_size_continues_as_before(root: Path) -> None:
    records = conversation(8)
    write_lines(root / "alpha.jsonl", records[:4])
    run(root)
    with Index() as index:
        session_id, cursor, _ = index.backfill_cursors("testprov", ["alpha"])["alpha"]
        index.save_backfill_cursor("testprov", "alpha", session_id, cursor, "old", log_size=None)
    write_lines(root / "alpha.jsonl", records[4:], append=True)

    summary = run(root)

    assert (summary.updated, summary.events, summary.warnings) == (1, 4, 0)
    assert texts(session_id) == [r["text"] for r in records]
    assert recorded("alpha")[2] == paths.session_log(session_id).stat().st_size
