"""zag's diagnostics (`zag.log`): a fault that repeats for hours must not fill the disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from zag import diag, paths


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> Path:
    """zag's diagnostics written to this test's ZAG_HOME, on a clock the test moves."""
    monkeypatch.setattr(diag, "_logger", None)
    monkeypatch.setattr(diag, "_repeats", {}, raising=False)
    return paths.diagnostics_log()


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _heartbeat_fault() -> None:
    try:
        raise OSError(28, "No space left on device")
    except OSError:
        diag.exception("heartbeat_failed", session_id="s1")


def test_a_fault_at_every_heartbeat_for_ten_hours_writes_a_few_lines(log: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(diag, "_clock", lambda: now[0], raising=False)
    beats = 3600  # ten hours at the default 10 s heartbeat
    for _ in range(beats):
        _heartbeat_fault()
        now[0] += 10.0
    lines = _lines(log)
    assert 3 + 9 <= len(lines) <= 3 + 10, len(lines)   # three at once, then one an hour
    assert log.stat().st_size < 64 * 1024
    assert all(line["event"] == "heartbeat_failed" and "No space left" in line["exception"] for line in lines)
    assert [line.get("repeated") for line in lines[:3]] == [None, 2, 3] and "throttled" in lines[2]
    diag._count_left_out()   # what zag does at exit
    lines = _lines(log)
    assert lines[-1]["event"] == "diagnostic_repeats_left_out"
    assert lines[-1]["repeated_event"] == "heartbeat_failed" and lines[-1]["repeated"] == beats
    written = sum(line["event"] == "heartbeat_failed" for line in lines)
    assert written + sum(line.get("left_out", 0) for line in lines) == beats


def test_different_diagnostics_are_all_written_and_counters_do_not_make_them_different(log: Path) -> None:
    for number in range(20):
        diag.warning("backfill_warning", provider="claude", message=f"torn last line in source {number}")
    for attempt in range(1, 21):
        diag.warning("index_write_failed", session_id="s1", error="database is locked", attempt=attempt)
    events = [line["event"] for line in _lines(log)]
    assert events.count("backfill_warning") == 20
    assert events.count("index_write_failed") == 3


def test_the_same_event_with_another_exception_is_another_diagnostic(log: Path) -> None:
    for error in (ValueError, KeyError, TypeError, RuntimeError) * 5:
        try:
            raise error("bad")
        except Exception:  # noqa: BLE001
            diag.exception("claude_live_poll_failed")
    assert len(_lines(log)) == 4 * 3


def test_a_repeating_fault_is_throttled_after_many_different_diagnostics(log: Path) -> None:
    for number in range(3000):   # a backfill's warnings, one per source
        diag.warning("backfill_warning", provider="claude", message=f"torn last line in source {number}")
    for _ in range(100):
        diag.warning("index_write_failed", session_id="s1", error="database is locked")
    events = [line["event"] for line in _lines(log)]
    assert events.count("backfill_warning") == 3000 and events.count("index_write_failed") == 3
