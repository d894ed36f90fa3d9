"""The backfill runner, in-process, over a small JSONL test provider (see test_backfill_provider.py)."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from zag import paths, states
from zag.logs import backfill, backfill_worker, events
from zag.logs.backfill import BackfillBusy, run_backfill
from zag.logs.index import Index
from zag.logs.reader import read_events
from zag.logs.writer import SessionLogWriter
from zag.wrapper.liveness import hostname, process_start_time

from test_backfill_provider import JsonlTestProvider, JsonlTestReader, conversation, write_lines

PROVIDER = JsonlTestProvider()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "agent-home"
    folder.mkdir()
    return folder


def run(root: Path, **kwargs: Any) -> backfill.ProviderSummary:
    kwargs.setdefault("jobs", 1)
    [summary] = run_backfill([kwargs.pop("provider", PROVIDER)], env={"TESTPROV_ROOT": str(root)}, **kwargs)
    return summary


def session_for(index: Index, key: str) -> dict[str, Any]:
    session_id = index.find_by_provider_session("testprov", key)
    assert session_id, f"no session for {key}"
    row = index.get_session(session_id)
    assert row is not None
    return row


def log_of(session_id: str) -> list[dict[str, Any]]:
    return list(read_events(paths.session_log(session_id)))


def assert_seq_continuous(log: list[dict[str, Any]]) -> None:
    assert [event["seq"] for event in log] == list(range(1, len(log) + 1))


# --- first import, idempotence, growth ---------------------------------------------------------------
def test_first_import_creates_backfilled_sessions(root: Path) -> None:
    write_lines(root / "alpha.jsonl", conversation(4))
    write_lines(root / "beta.jsonl", conversation(2, start_minute=30, model="other-model"))

    summary = run(root)

    assert (summary.sessions_seen, summary.imported, summary.updated, summary.unchanged) == (2, 2, 0, 0)
    assert summary.events == 4 + 1 + 2 + 1   # transcript events plus one session_started each
    assert summary.warnings == 0
    assert summary.bytes == (root / "alpha.jsonl").stat().st_size + (root / "beta.jsonl").stat().st_size
    with Index() as index:
        row = session_for(index, "alpha")
        assert row["state"] == states.EXITED
        assert row["backfilled"] is True
        assert row["cwd"] == "/work/alpha"
        assert row["model"] == "test-model-1"
        assert row["started_at"] == events.parse_ts("2026-01-01T10:00:00.000Z")
        assert row["ended_at"] == events.parse_ts("2026-01-01T10:03:00.000Z")
        assert row["last_seq"] == 5
        assert session_for(index, "beta")["model"] == "other-model"
    log = log_of(row["session_id"])
    assert_seq_continuous(log)
    started = log[0]
    assert started["type"] == events.SESSION_STARTED
    assert started["backfilled"] is True and started["resumed"] is False
    assert started["provider_session_id"] == "alpha"
    assert started["cwd"] == "/work/alpha" and started["model"] == "test-model-1"
    assert started["ts"] == "2026-01-01T10:00:00.000Z"
    assert [e["type"] for e in log[1:]] == ["user_message", "assistant_message"] * 2
    assert all(e["source"] == events.SOURCE_BACKFILL for e in log)
    assert [e["ts"] for e in log[1:]] == [r["ts"] for r in conversation(4)]
    assert log[2]["text"] == "answer 1"
    assert all(e["provider"] == "testprov" and e["provider_session_id"] == "alpha" for e in log)


def test_second_run_imports_nothing(root: Path) -> None:
    write_lines(root / "alpha.jsonl", conversation(4))
    write_lines(root / "beta.jsonl", conversation(3))
    run(root)
    logs_before = {p.name: p.read_bytes() for p in paths.sessions_dir().iterdir()}

    opened: list[str] = []

    class Spy(JsonlTestProvider):
        def open_reader(self, source: Any, cursor: Any) -> JsonlTestReader:
            opened.append(source.source_key)
            return super().open_reader(source, cursor)

    summary = run(root, provider=Spy())

    assert (summary.sessions_seen, summary.imported, summary.updated, summary.unchanged) == (2, 0, 0, 2)
    assert summary.events == 0
    assert opened == []  # unchanged fingerprints: not even opened
    assert {p.name: p.read_bytes() for p in paths.sessions_dir().iterdir()} == logs_before


def test_grown_session_gets_only_new_events(root: Path) -> None:
    records = conversation(10)
    write_lines(root / "alpha.jsonl", records[:6])
    run(root)

    write_lines(root / "alpha.jsonl", records[6:], append=True)
    summary = run(root)

    assert (summary.imported, summary.updated, summary.unchanged, summary.events) == (0, 1, 0, 4)
    with Index() as index:
        row = session_for(index, "alpha")
        assert row["last_seq"] == 11
        assert row["ended_at"] == events.parse_ts(records[-1]["ts"])
        assert row["started_at"] == events.parse_ts(records[0]["ts"])
    log = log_of(row["session_id"])
    assert_seq_continuous(log)
    assert [e["text"] for e in log[1:]] == [r["text"] for r in records]  # each record once, in order
    assert sum(e["type"] == events.SESSION_STARTED for e in log) == 1
    assert run(root).events == 0


def test_session_model_is_the_latest_one_whether_imported_at_once_or_as_it_grew(root: Path) -> None:
    # a model switch mid-session (/model, a fallback): the row shows the model answering last, as
    # `zag reindex` and the live supervisor give it; it showed the first one (and a grown import kept it)
    records = conversation(4) + conversation(4, start_minute=10, model="test-model-2")
    write_lines(root / "whole.jsonl", records)
    write_lines(root / "grown.jsonl", records[:4])
    run(root)
    write_lines(root / "grown.jsonl", records[4:], append=True)
    run(root)

    with Index() as index:
        assert session_for(index, "whole")["model"] == "test-model-2"
        assert session_for(index, "grown")["model"] == "test-model-2"
        from zag.logs.reindex import rebuild
        rebuild(index)
        assert session_for(index, "whole")["model"] == "test-model-2"
        assert session_for(index, "grown")["model"] == "test-model-2"


def test_touched_but_unchanged_file_counts_as_unchanged(root: Path) -> None:
    write_lines(root / "alpha.jsonl", conversation(2))
    run(root)
    os.utime(root / "alpha.jsonl", ns=(1, 1))
    summary = run(root)
    assert (summary.imported, summary.updated, summary.unchanged, summary.events) == (0, 0, 1, 0)


def test_empty_source_is_imported_once_it_has_records(root: Path) -> None:
    (root / "alpha.jsonl").write_bytes(b"")
    summary = run(root)
    assert (summary.imported, summary.unchanged, summary.events) == (0, 1, 0)
    assert not paths.sessions_dir().exists() or not list(paths.sessions_dir().iterdir())

    write_lines(root / "alpha.jsonl", conversation(2), append=True)
    summary = run(root)
    assert (summary.imported, summary.events) == (1, 3)
    with Index() as index:
        log = log_of(session_for(index, "alpha")["session_id"])
    assert log[0]["type"] == events.SESSION_STARTED and len(log) == 3


# --- records the runner maps -------------------------------------------------------------------------
def test_limit_signals_are_logged_never_scheduled_and_hints_ignored(root: Path) -> None:
    write_lines(root / "alpha.jsonl", [
        {"limit": {"raw": "You've hit your limit · resets 3pm", "scope": "session",
                   "reset_at": 1767283200.0, "at": 1767265260.0}},
        {"type": "user_message", "ts": "2026-01-01T10:00:00.000Z", "text": "hi"},
        {"hint": "someone-else"},
        {"limit": {"raw": "limit without a time", "at": 1767265999.0}},
    ])
    summary = run(root)
    assert summary.events == 4
    with Index() as index:
        row = session_for(index, "alpha")
        assert index.list_resumes(open_only=False) == []
    hits = [e for e in log_of(row["session_id"]) if e["type"] == events.USAGE_LIMIT_HIT]
    assert len(hits) == 2
    first, second = hits
    assert first["scope"] == "session"
    assert first["reset_at"] == events.format_ts(1767283200.0)
    assert first["ts"] == events.format_ts(1767265260.0)   # no record before it: the signal's time
    assert first["scheduled_resume_at"] is None and first["fallback_used"] is False
    assert first["raw"] == "You've hit your limit · resets 3pm"
    assert second["scope"] == "unknown" and second["reset_at"] is None
    assert second["ts"] == "2026-01-01T10:00:00.000Z"  # in history: the time of the records around it
    assert first["incident_id"] != second["incident_id"]
    assert all(e["source"] == events.SOURCE_BACKFILL for e in hits)


def test_session_started_takes_cwd_from_reader_info_and_undated_head_records_take_the_first_time(
        root: Path) -> None:
    class NoCwd(JsonlTestProvider):
        def discover(self, env: Any) -> Any:
            for source in super().discover(env):
                yield backfill.HistorySource(source.source_key, source.provider_session_id, source.paths,
                                             source.fingerprint)

    write_lines(root / "alpha.jsonl", [
        {"type": "provider_status", "message": "title", "data": {}},
        {"info": {"cwd": "/from/records"}},
        *conversation(3),
    ])
    run(root, provider=NoCwd())
    with Index() as index:
        row = session_for(index, "alpha")
    assert row["cwd"] == "/from/records"
    log = log_of(row["session_id"])
    assert log[0]["type"] == events.SESSION_STARTED and log[0]["cwd"] == "/from/records"
    assert log[1]["type"] == events.PROVIDER_STATUS
    assert log[1]["ts"] == log[0]["ts"] == "2026-01-01T10:00:00.000Z"


def test_source_without_dated_records_is_listed_from_the_sources_start_not_the_import_time(root: Path) -> None:
    # e.g. a codex .jsonl.zst rollout without a zstd decoder: one undated parse_warning; the log's
    # session_started took the rollout's start, the index row took the time of the import
    start = events.parse_ts("2026-01-05T03:04:05.000Z")

    class Dated(JsonlTestProvider):
        def discover(self, env: Any) -> Any:
            for source in super().discover(env):
                yield backfill.HistorySource(source.source_key, source.provider_session_id, source.paths,
                                             source.fingerprint, started_at=start)

    write_lines(root / "alpha.jsonl", ["not json"])
    run(root, provider=Dated())
    with Index() as index:
        row = session_for(index, "alpha")
    assert row["started_at"] == start
    assert log_of(row["session_id"])[0]["ts"] == "2026-01-05T03:04:05.000Z"


def test_malformed_lines_are_parse_warnings_counted_as_warnings(root: Path) -> None:
    write_lines(root / "alpha.jsonl", [*conversation(2), "{not json", "[1, 2]"])
    summary = run(root)
    assert summary.warnings == 2
    assert summary.imported == 1
    assert any("not JSON" in message for message in summary.warning_messages)
    with Index() as index:
        log = log_of(session_for(index, "alpha")["session_id"])
    warnings = [e for e in log if e["type"] == events.PARSE_WARNING]
    assert [w["raw"] for w in warnings] == ["{not json", "[1, 2]"]


# --- failures stay with their source -----------------------------------------------------------------
def test_reader_exception_is_a_warning_and_the_other_sources_continue(root: Path) -> None:
    write_lines(root / "alpha.jsonl", conversation(4))
    write_lines(root / "broken.jsonl", [*conversation(600), {"explode": True}])
    write_lines(root / "gamma.jsonl", conversation(2))

    summary = run(root)

    assert summary.imported == 2
    assert summary.warnings == 1
    assert "broken" in summary.warning_messages[0] and "ReaderExploded" in summary.warning_messages[0]
    with Index() as index:
        assert index.find_by_provider_session("testprov", "broken") is None
        assert index.backfill_cursor("testprov", "broken") is None
    # the half-imported session left nothing behind
    assert len(list(paths.sessions_dir().iterdir())) == 2

    # fixed: imported whole, once
    write_lines(root / "broken.jsonl", conversation(600))
    summary = run(root)
    assert (summary.imported, summary.warnings) == (1, 0)
    with Index() as index:
        log = log_of(session_for(index, "broken")["session_id"])
    assert len(log) == 601
    assert_seq_continuous(log)


def test_failed_update_rolls_the_log_back_and_keeps_the_cursor(root: Path) -> None:
    records = conversation(8)
    write_lines(root / "alpha.jsonl", records[:4])
    run(root)
    with Index() as index:
        session_id = session_for(index, "alpha")["session_id"]
        cursor_before = index.backfill_cursor("testprov", "alpha")
    log_before = paths.session_log(session_id).read_bytes()

    write_lines(root / "alpha.jsonl", [*records[4:6], {"explode": True}], append=True)
    summary = run(root)
    assert (summary.updated, summary.warnings) == (0, 1)
    assert paths.session_log(session_id).read_bytes() == log_before
    with Index() as index:
        assert index.backfill_cursor("testprov", "alpha") == cursor_before


def test_vanished_and_unreadable_files_are_warnings(root: Path) -> None:
    write_lines(root / "alpha.jsonl", conversation(2))
    (root / "dir.jsonl").mkdir()   # listed, but cannot be read as a file (tests run as root: no chmod)

    class WithGhost(JsonlTestProvider):
        def discover(self, env: Any) -> Any:
            yield from super().discover(env)
            ghost = root / "ghost.jsonl"
            yield backfill.HistorySource("ghost", "ghost", (ghost,), "-")

    summary = run(root, provider=WithGhost())

    assert summary.sessions_seen == 3
    assert summary.imported == 1
    assert summary.warnings == 2
    text = " ".join(summary.warning_messages)
    assert "vanished" in text and "dir.jsonl: cannot read" in text
    with Index() as index:
        assert index.backfill_cursor("testprov", "ghost") is None
        assert index.backfill_cursor("testprov", "dir") is None


def test_failing_discover_is_a_warning(root: Path) -> None:
    class Broken(JsonlTestProvider):
        def discover(self, env: Any) -> Any:
            raise NotImplementedError("testprov provider: discover is not implemented yet")

    summary = run(root, provider=Broken())
    assert summary.sessions_seen == 0
    assert summary.warning_messages == ["cannot list testprov sessions: testprov provider: discover is not implemented yet"]


# --- sessions zag supervised live --------------------------------------------------------------------
def _live_session(records: list[dict[str, Any]], key: str, root: Path, *,
                  state: str = states.EXITED) -> tuple[str, Any]:
    """What the supervisor leaves behind: a session row, its log (provider_file events) and its cursor."""
    session_id = "11111111-2222-4333-8444-555555555555"
    me = os.getpid()
    with Index() as index:
        index.add_session(session_id=session_id, provider="testprov", provider_session_id=key, state=state,
                          started_at=events.parse_ts(records[0]["ts"]), ended_at=time.time(), cwd="/live",
                          supervisor_pid=me, supervisor_started=process_start_time(me), hostname=hostname(),
                          last_heartbeat=time.time(), heartbeat_secs=10, last_seq=0)
    with SessionLogWriter(session_id, "testprov", provider_session_id=key) as writer:
        writer.write(events.body(events.SESSION_STARTED, argv=["testprov"], cwd="/live", model=None,
                                 resumed=False, backfilled=False))
        reader = PROVIDER.open_reader(next(PROVIDER.discover({"TESTPROV_ROOT": str(root)})), None)
        for item in reader.read():
            writer.write(item, events.SOURCE_PROVIDER_FILE)
    return session_id, reader.cursor()


def test_live_cursor_hands_off_to_the_live_session(root: Path) -> None:
    records = conversation(8)
    write_lines(root / "alpha.jsonl", records[:5])
    session_id, cursor = _live_session(records, "alpha", root)
    with Index() as index:
        index.save_backfill_cursor("testprov", "alpha", session_id, cursor, None)
    write_lines(root / "alpha.jsonl", records[5:], append=True)

    summary = run(root)

    assert (summary.imported, summary.updated, summary.events) == (0, 1, 3)
    log = log_of(session_id)
    assert_seq_continuous(log)
    assert [e["text"] for e in log if "text" in e] == [r["text"] for r in records]
    assert [e["source"] for e in log[-3:]] == [events.SOURCE_BACKFILL] * 3
    with Index() as index:
        assert index.find_by_provider_session("testprov", "alpha") == session_id
        row = index.get_session(session_id)
        assert len(index.list_sessions()) == 1
    assert row["state"] == states.EXITED and row["backfilled"] is False and row["cwd"] == "/live"
    assert row["last_seq"] == len(log)
    assert run(root).events == 0


def test_running_session_is_left_to_its_supervisor(root: Path) -> None:
    records = conversation(6)
    write_lines(root / "alpha.jsonl", records[:3])
    session_id, cursor = _live_session(records, "alpha", root, state=states.RUNNING)
    with Index() as index:
        index.save_backfill_cursor("testprov", "alpha", session_id, cursor, None)
    write_lines(root / "alpha.jsonl", records[3:], append=True)
    log_before = paths.session_log(session_id).read_bytes()

    summary = run(root)

    assert (summary.live, summary.imported, summary.updated, summary.events) == (1, 0, 0, 0)
    assert paths.session_log(session_id).read_bytes() == log_before


def test_supervised_session_without_cursor_is_continued_after_its_last_record(root: Path) -> None:
    records = conversation(9)
    write_lines(root / "alpha.jsonl", records[:4])
    session_id, _ = _live_session(records, "alpha", root)   # no cursor saved (supervisor killed)
    write_lines(root / "alpha.jsonl", records[4:], append=True)

    summary = run(root)

    assert (summary.imported, summary.updated, summary.events) == (0, 1, 5)
    log = log_of(session_id)
    assert_seq_continuous(log)
    assert [e["text"] for e in log if "text" in e] == [r["text"] for r in records]
    with Index() as index:
        assert index.backfill_cursor("testprov", "alpha")[0] == session_id
        assert len(index.list_sessions()) == 1
    assert run(root).events == 0


def test_a_new_source_sharing_a_provider_session_id_with_an_imported_one_gets_its_own_session(
        root: Path) -> None:
    """Only a session no source feeds is adopted (a supervised one without cursor), never a sibling's."""
    class SameId(JsonlTestProvider):
        def discover(self, env: Any) -> Any:
            for source in super().discover(env):
                yield backfill.HistorySource(source.source_key, "shared-id", source.paths, source.fingerprint)

    write_lines(root / "alpha.jsonl", conversation(4))
    run(root, provider=SameId())
    write_lines(root / "beta.jsonl", conversation(2))   # e.g. a copy of the session in another folder
    summary = run(root, provider=SameId())

    assert (summary.imported, summary.updated) == (1, 0)
    with Index() as index:
        rows = index.list_sessions()
    assert len(rows) == 2 and {row["provider_session_id"] for row in rows} == {"shared-id"}
    assert sorted(row["last_seq"] for row in rows) == [3, 5]


def test_two_sources_feeding_one_session_are_written_one_after_the_other(root: Path) -> None:
    """After `/clear` the live session holds two provider sessions, each with its own cursor."""
    write_lines(root / "alpha.jsonl", conversation(4))
    write_lines(root / "beta.jsonl", conversation(4, start_minute=10))
    session_id = "11111111-2222-4333-8444-555555555555"
    with SessionLogWriter(session_id, "testprov") as writer:
        writer.write(events.body(events.SESSION_STARTED, argv=[], cwd="/live", model=None, resumed=False,
                                 backfilled=False))
    with Index() as index:
        index.add_session(session_id=session_id, provider="testprov", provider_session_id="beta",
                          state=states.EXITED, started_at=1.0, last_seq=1)
        index.save_backfill_cursor("testprov", "alpha", session_id, None, None)
        index.save_backfill_cursor("testprov", "beta", session_id, None, None)
    write_lines(root / "gamma.jsonl", conversation(3))

    summary = run(root, jobs=2)

    assert (summary.imported, summary.updated, summary.events) == (1, 2, 4 + 4 + 4)
    log = log_of(session_id)
    assert_seq_continuous(log)
    assert len(log) == 9
    assert [e["provider_session_id"] for e in log[1:]] == ["alpha"] * 4 + ["beta"] * 4


# --- parallel, batching, progress, lock ----------------------------------------------------------------
def test_a_worker_interrupted_midway_keeps_its_finished_jobs_and_nothing_is_imported_twice(root: Path) -> None:
    class Interrupted(JsonlTestProvider):
        def open_reader(self, source: Any, cursor: Any) -> Any:
            if source.source_key == "gamma" and (root / "stop.flag").exists():
                raise KeyboardInterrupt  # as Ctrl-C reaches a worker in the middle of its task
            return super().open_reader(source, cursor)

    names = ("alpha", "beta", "gamma", "delta", "omega")
    for name in names:
        write_lines(root / f"{name}.jsonl", conversation(3))
    (root / "stop.flag").write_text("")
    summary = run(root, provider=Interrupted(), jobs=2)   # the other worker goes on with the rest
    lost = [message.split(":")[0] for message in summary.warning_messages if "worker process" in message]
    assert "gamma" in lost and summary.imported + len(lost) == len(names)
    (root / "stop.flag").unlink()
    again = run(root, provider=Interrupted(), jobs=2)
    assert again.imported == len(lost) and again.warnings == 0
    assert len(list(paths.sessions_dir().iterdir())) == len(names)  # no log written twice
    with Index() as index:
        for name in names:
            assert len(log_of(session_for(index, name)["session_id"])) == 4


def test_a_worker_process_that_dies_fails_only_its_jobs_and_they_are_imported_next_time(root: Path) -> None:
    class Dying(JsonlTestProvider):
        def open_reader(self, source: Any, cursor: Any) -> Any:
            if source.source_key == "crash" and (root / "crash.flag").exists():
                os._exit(3)  # in the worker process: no exception, no roll-back, the pipe just closes
            return super().open_reader(source, cursor)

    for name in ("alpha", "beta", "crash", "delta"):
        write_lines(root / f"{name}.jsonl", conversation(3))
    (root / "crash.flag").write_text("")
    summary = run(root, provider=Dying(), jobs=2)  # small sessions travel together: the task is lost
    lost = [message for message in summary.warning_messages if "worker process" in message]
    assert any(message.startswith("crash:") for message in lost)
    assert summary.imported + len(lost) == 4
    with Index() as index:
        assert index.find_by_provider_session("testprov", "crash") is None
    (root / "crash.flag").unlink()
    again = run(root, provider=Dying(), jobs=2)
    # (logs the lost task wrote before the crash are indexed first, as a lost index is: then adopted)
    assert again.imported + again.unchanged + summary.imported == 4 and again.warnings == 0
    with Index() as index:
        for name in ("alpha", "beta", "crash", "delta"):
            assert len(log_of(session_for(index, name)["session_id"])) == 4


def _normalised_logs() -> dict[str, list[dict[str, Any]]]:
    result = {}
    with Index() as index:
        for row in index.list_sessions():
            log = log_of(row["session_id"])
            for event in log:
                event.pop("session_id")
                event.pop("incident_id", None)
            result[row["provider_session_id"]] = [
                {k: row[k] for k in ("model", "cwd", "started_at", "ended_at", "last_seq", "state")}, *log
            ]
    return result


def test_parallel_and_serial_runs_give_the_same_logs(root: Path, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    for n in range(12):
        write_lines(root / f"s{n:02d}.jsonl", [*conversation(5 + 7 * n, start_minute=n), "{bad",
                                               {"limit": {"raw": f"limit {n}"}}])
    outcomes = []
    for jobs in (1, 2):
        monkeypatch.setenv("ZAG_HOME", str(tmp_path / f"home-{jobs}"))
        summary = run(root, jobs=jobs)
        outcomes.append((summary.imported, summary.events, summary.warnings, summary.bytes, _normalised_logs()))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == 12


def test_events_are_written_in_bounded_batches(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_lines(root / "alpha.jsonl", conversation(1000))
    sizes: list[int] = []
    original = SessionLogWriter.write_many

    def spy(self: SessionLogWriter, bodies: list[dict[str, Any]], source: str) -> Any:
        sizes.append(len(bodies))
        return original(self, bodies, source)

    monkeypatch.setattr(SessionLogWriter, "write_many", spy)
    monkeypatch.setattr(backfill_worker, "BATCH_EVENTS", 100)
    summary = run(root)
    assert summary.events == 1001
    assert sum(sizes) == 1001
    assert max(sizes) <= backfill_worker.BATCH_EVENTS + 1
    assert len(sizes) >= 9


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal(root: Path) -> None:
    from zag.cli.backfill import progress_for

    assert progress_for(io.StringIO()) is None
    terminal = FakeTerminal()
    bar = progress_for(terminal)
    assert bar is not None
    write_lines(root / "alpha.jsonl", conversation(2))
    write_lines(root / "beta.jsonl", conversation(2))
    run(root, progress=bar)
    drawn = terminal.getvalue()
    assert "testprov" in drawn and "2/2 sessions" in drawn and "100%" in drawn


def test_a_second_concurrent_backfill_is_refused(root: Path) -> None:
    with backfill._exclusive():
        with pytest.raises(BackfillBusy):
            run(root)
    run(root)  # released


def test_temp_logs_of_a_killed_run_are_removed(root: Path) -> None:
    stale = paths.ensure_private_dir(paths.sessions_dir()) / ("x.jsonl" + backfill_worker.TEMP_SUFFIX)
    stale.write_text("{}\n")
    run(root)
    assert not stale.exists()


# --- redaction on the batched write path -------------------------------------------------------------
SECRETS = [
    "sk-ant-api03-" + "A" * 40, "sk-proj-" + "b" * 30, "AIza" + "C" * 35, "ghp_" + "d" * 36,
    "AKIA" + "E" * 16, "Bearer " + "f" * 30, "xoxb-" + "1" * 20,
    "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
]


def test_secrets_in_backfilled_transcripts_are_redacted(root: Path) -> None:
    records = conversation(len(SECRETS) * 2)
    for record, secret in zip(records[::2], SECRETS):
        record["text"] = f"here: {secret} done"
    write_lines(root / "alpha.jsonl", records)
    run(root)
    with Index() as index:
        log_path = paths.session_log(session_for(index, "alpha")["session_id"])
    text = log_path.read_text()
    for secret in SECRETS:
        assert secret.split("\n")[0][-12:] not in text
    assert text.count("[REDACTED:") == len(SECRETS)
    assert all(json.loads(line) for line in text.splitlines())


def test_block_redaction_equals_line_by_line() -> None:
    from zag.logs import codec
    from zag.logs.redact import Redactor

    lines = [codec.dumps_line({"seq": i, "text": f"x {s} y", "n": i}) for i, s in enumerate(SECRETS * 3)]
    lines += [codec.dumps_line({"plain": "nothing here", "i": i}) for i in range(20)]
    lines.append(codec.dumps_line({"a": "-----BEGIN PRIVATE KEY----- open", "b": "tail\\"}))
    lines.append(codec.dumps_line({"c": "-----END PRIVATE KEY-----"}))
    for redactor in (Redactor(), Redactor([r"secret-word-\d+", r"nothing"])):
        assert redactor.redact_lines(b"".join(lines)) == b"".join(redactor.redact(line) for line in lines)


def test_every_marker_triggers_its_pattern_even_inside_another_marker() -> None:
    from zag.logs import redact

    redactor = redact.Redactor()
    secret = b"ASIAIzaSyA" + b"B" * 32   # "AIza…" (a 39-character google key) overlapping the "ASIA" marker
    assert b"[REDACTED:google_api_key]" in redactor.redact(b'{"t":"' + secret + b'"}\n')
    for slot, (name, markers, _) in enumerate(redact._BUILTIN):
        for marker in markers:
            assert slot in redactor.slots_to_run(b"..." + marker + b"..."), name


def test_marker_pre_check_never_misses_a_marker_hidden_by_another() -> None:
    """The non-overlapping search finds every slot a marker-by-marker scan finds, whatever the overlap."""
    import random

    from zag.logs import redact

    redactor = redact.Redactor()
    markers = [(slot, marker) for slot, (_, found, _) in enumerate(redact._BUILTIN) for marker in found]
    pieces = [marker for _, marker in markers] + [marker[:cut] for _, marker in markers
                                                  for cut in range(1, len(marker))]
    pieces += [marker[cut:] for _, marker in markers for cut in range(1, len(marker))] + [b"x", b" ", b"-"]
    rng = random.Random(7)
    for _ in range(20000):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 6)))
        expected = {slot for slot, marker in markers if marker in data}
        assert expected <= redactor.slots_to_run(data), data


def test_a_session_claimed_by_a_live_supervisor_is_left_alone_until_it_ends(root: Path) -> None:
    """A supervisor claims its agent's session id before the agent starts; its index row may come later
    (written in the background). A backfill in that window must not import the session a second time."""
    import subprocess
    import sys

    from zag.providers import claims

    write_lines(root / "alpha.jsonl", conversation(4))
    supervisor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.MonkeyPatch.context() as patch:  # the claim records the claiming process's pid
            patch.setattr(os, "getpid", lambda: supervisor.pid)
            assert claims.claim("testprov", "alpha", "11111111-2222-4333-8444-555555555555")
        summary = run(root)
        assert (summary.live, summary.imported, summary.events) == (1, 0, 0)
    finally:
        supervisor.kill()
        supervisor.wait(timeout=10)
    summary = run(root)   # its supervisor is gone: a stale claim holds nothing
    assert (summary.live, summary.imported) == (0, 1)


def test_the_plan_lists_the_claims_once_instead_of_reading_a_claim_per_session(
        root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of sessions, hardly any claimed: only a key with a claim file is looked into."""
    from zag.providers import claims

    for name in ("alpha", "beta", "gamma"):
        write_lines(root / f"{name}.jsonl", conversation(2))
    assert claims.claim("testprov", "beta", "11111111-2222-4333-8444-555555555555")   # this process: live
    asked: list[str] = []
    live_owner = claims.live_owner
    monkeypatch.setattr(claims, "live_owner", lambda provider, key: asked.append(key) or live_owner(provider, key))
    summary = run(root)
    assert asked == ["beta"]
    assert (summary.live, summary.imported) == (1, 2)


def test_the_plan_asks_the_index_about_new_sessions_in_one_go(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether a new source's session id is indexed already (a lost cursor table: adopted, not rewritten)
    is asked for all sources at once, not with a query per source."""
    for name in ("alpha", "beta"):
        write_lines(root / f"{name}.jsonl", conversation(2))
    asked: list[str] = []
    get_session = Index.get_session
    monkeypatch.setattr(Index, "get_session", lambda self, sid: asked.append(sid) or get_session(self, sid))
    assert run(root).imported == 2
    assert asked == []


def test_existing_session_ids_answers_for_many_ids_at_once() -> None:
    with Index() as index:
        for number in range(3):
            index.add_session(session_id=f"s{number}", provider="testprov", state=states.EXITED, started_at=1.0)
        wanted = [f"s{number}" for number in range(1200)]   # more than one query's parameters
        assert index.existing_session_ids(wanted) == {"s0", "s1", "s2"}
        assert index.existing_session_ids([]) == set()


def test_a_stale_claim_whose_pid_was_reused_holds_nothing_once_its_session_is_indexed(root: Path) -> None:
    """A supervisor SIGKILLed before releasing its claim; its pid now belongs to another process. The
    owner's index row (supervisor pid and start time) tells it is gone."""
    from zag.providers import claims

    write_lines(root / "alpha.jsonl", conversation(4))
    owner = "11111111-2222-4333-8444-555555555555"
    assert claims.claim("testprov", "alpha", owner)  # held by this (live) process's pid
    assert run(root).live == 1   # no row for the owner yet: the window before a supervisor's row exists
    with Index() as index:
        index.add_session(session_id=owner, provider="testprov", provider_session_id="other", state=states.RUNNING,
                          started_at=time.time(), supervisor_pid=os.getpid(), supervisor_started="not this one",
                          hostname=hostname(), last_heartbeat=time.time(), heartbeat_secs=10)
    summary = run(root)
    assert (summary.live, summary.imported) == (0, 1)
