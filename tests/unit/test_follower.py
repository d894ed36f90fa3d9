"""Following a growing log: complete lines only, each once, and the rules for when to stop."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from tests.readside import write_log
from zag.logs import codec, events
from zag.logs.follower import STOP_ASKED, STOP_END_OF_LOG, STOP_ENDED, STOP_NOT_LIVE, EventFollower, LogFollower

SID = "11111111-2222-4333-8444-555555555555"


def _line(seq: int, event_type: str = "user_message", **fields: object) -> bytes:
    return codec.dumps_line({"seq": seq, "ts": "2026-01-01T00:00:00.000Z", "session_id": SID,
                             "provider": "claude", "provider_session_id": None, "source": "wrapper",
                             "type": event_type, **fields})


def test_lines_are_released_only_when_complete(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    follower = LogFollower(path)
    assert list(follower.read_lines()) == []  # no file yet
    first, second = _line(1, content="a" * 5000), _line(2, content="b")
    with open(path, "ab", buffering=0) as handle:
        handle.write(first + second[:10])
        assert list(follower.read_lines()) == [first]
        assert list(follower.read_lines()) == []
        handle.write(second[10:-1])
        assert list(follower.read_lines()) == []  # still no newline
        handle.write(second[-1:])
        assert list(follower.read_lines()) == [second]
    assert follower.offset == len(first) + len(second)


def test_a_torn_tail_cut_by_the_writer_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    first, second = _line(1), _line(2)
    path.write_bytes(first + b'{"seq": 2, "torn')
    follower = LogFollower(path)
    assert list(follower.read_lines()) == [first]
    os.truncate(path, len(first))  # what SessionLogWriter's repair does
    with open(path, "ab") as handle:
        handle.write(second)
    assert list(follower.read_lines()) == [second]


def test_a_replaced_file_is_read_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(_line(1))
    follower = LogFollower(path)
    assert len(list(follower.read_lines())) == 1
    replacement = tmp_path / "new.jsonl"
    replacement.write_bytes(_line(1) + _line(2))
    replacement.replace(path)
    assert list(follower.read_lines()) == [_line(1), _line(2)]


def test_stopping_mid_read_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"".join(_line(n) for n in range(1, 6)))
    follower = LogFollower(path)
    lines = follower.read_lines()
    assert next(lines) == _line(1)
    lines.close()
    assert list(follower.read_lines()) == [_line(n) for n in range(2, 6)]


def test_events_stop_after_session_ended(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(_line(1) + b"not json\n" + _line(2, "session_ended", exit_code=0) + _line(3))
    follower = EventFollower(path, not_live=lambda: None, poll_secs=0.01)
    seen = [line.event["seq"] for line in follower]
    assert seen == [1, 2, 3]  # what follows the end is the log's too (`zag backfill` appends there)
    assert follower.stop_reason == STOP_ENDED and follower.bad_lines == 1


def test_no_follow_reads_what_is_there(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(_line(1) + _line(2) + _line(3)[:-5])
    follower = EventFollower(path, follow=False)
    assert [line.raw for line in follower] == [_line(1), _line(2)]
    assert follower.stop_reason == STOP_END_OF_LOG


def test_since_and_duplicates_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(_line(1) + _line(2) + _line(2) + _line(3))
    follower = EventFollower(path, since_seq=1, follow=False)
    assert [line.event["seq"] for line in follower] == [2, 3]


def test_a_dead_session_stops_after_a_final_read(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(_line(1))
    calls = []

    def not_live() -> str | None:
        calls.append(1)
        if len(calls) == 1:
            return None
        with open(path, "ab") as handle:  # written just before the supervisor died
            handle.write(_line(2))
        return "dead"

    follower = EventFollower(path, not_live=not_live, poll_secs=0.01, liveness_secs=0.01)
    assert [line.event["seq"] for line in follower] == [1, 2]
    assert (follower.stop_reason, follower.not_live_reason) == (STOP_NOT_LIVE, "dead")


def test_waits_for_a_log_that_does_not_exist_yet(tmp_path: Path) -> None:
    path = tmp_path / "later.jsonl"
    follower = EventFollower(path, not_live=lambda: "exited", poll_secs=0.01, liveness_secs=0.01)
    assert list(follower) == [] and follower.stop_reason == STOP_NOT_LIVE


def test_follows_a_live_writer_until_it_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZAG_HOME", str(tmp_path))
    path = tmp_path / "sessions" / f"{SID}.jsonl"
    stop = threading.Event()

    def writer() -> None:
        for n in range(5):
            if stop.wait(0.05):
                return
            write_log(SID, [events.body(events.USER_MESSAGE, content=f"m{n}")])
        write_log(SID, [events.body(events.SESSION_ENDED, exit_code=0, success=True, error=None)])

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        follower = EventFollower(path, not_live=lambda: None if time.monotonic() < deadline else "timeout",
                                 poll_secs=0.01)
        seen = [line.event for line in follower]
    finally:
        stop.set()
        thread.join(timeout=30)
    assert follower.stop_reason == STOP_ENDED
    assert [event["type"] for event in seen] == ["user_message"] * 5 + ["session_ended"]
    assert [event["content"] for event in seen[:5]] == [f"m{n}" for n in range(5)]
    assert [event["seq"] for event in seen] == [1, 2, 3, 4, 5, 6]


def test_a_stop_request_ends_an_idle_follow(tmp_path: Path) -> None:
    """`zag listen`'s Ctrl-C: the follower of a live, quiet session stops at its next pause."""
    path = tmp_path / "log.jsonl"
    path.write_bytes(_line(1, "session_started"))
    asked = threading.Event()
    follower = EventFollower(path, not_live=lambda: None, poll_secs=0.01, stopped=asked.is_set)
    seen = []
    for line in follower:
        seen.append(line.event["seq"])
        asked.set()
    assert seen == [1] and follower.stop_reason == STOP_ASKED
