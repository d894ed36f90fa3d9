"""Giving up after `max_attempts` consecutive resumes without progress: the attempts of a run of hits are
numbered on from one incident to the next (a CLI saying `retry in 1s` makes each hit a new incident with
a later reset), so the last failure, the stderr line and the session's end name the same count; and the
index (live) and the log reindexed agree on every incident's attempts."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from tests.unit import test_limits_engine_log as T
from zag.logs import events
from zag.logs.writer import SessionLogWriter
from zag.wrapper import incidents


def _failed(writer: SessionLogWriter) -> list[dict[str, object]]:
    return [e for e in T._lines(writer) if e["type"] == events.USAGE_LIMIT_RESUME_FAILED]


def test_attempts_are_numbered_on_across_hits_until_zag_gives_up(monkeypatch: pytest.MonkeyPatch,
                                                                   capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(incidents, "ANNOUNCE_AFTER_SECS", 0.0)
    monkeypatch.setattr(T, "SETTINGS", replace(T.SETTINGS, max_attempts=3, retry_secs=0.01))
    with SessionLogWriter(T.SID, "claude", provider_session_id="prov-1") as writer:
        supervisor, engine = T._engine(writer)
        try:
            first = T._hit(engine, supervisor, time.time() + 1)
            attempt = engine.begin_attempt(engine.active_incident(), expected="prov-1")  # type: ignore[arg-type]
            engine.fail_attempt(attempt, "claude exited with code 3")         # failure 1: waits its retry
            engine.begin_attempt(engine.active_incident(), expected="prov-1")  # type: ignore[arg-type]
            second = T._hit(engine, supervisor, time.time() + 1)               # failure 2: hit again during it
            assert second["attempts"] == 2 and "repeat_of" not in second
            T._agree(supervisor)
            attempt = engine.begin_attempt(engine.active_incident(), expected="prov-1")  # type: ignore[arg-type]
            assert attempt.number == 3
            T._agree(supervisor)
            engine.fail_attempt(attempt, "claude exited with code 3")         # failure 3: zag gives up
            assert T._agree(supervisor) == {first["incident_id"]: "failed", second["incident_id"]: "failed"}
        finally:
            engine.close()
        writer.write(events.body(events.SESSION_ENDED, exit_code=3, success=False, **engine.end_fields()))
    assert [(f["incident_id"], f["attempt"]) for f in _failed(writer)] == [
        (first["incident_id"], 1), (first["incident_id"], 2), (second["incident_id"], 3)]
    assert _failed(writer)[-1]["next_resume_at"] is None
    assert "gave up after 3 failed attempts" in T._lines(writer)[-1]["error"]
    err = capfd.readouterr().err
    assert "resume attempt 3 of claude failed (claude exited with code 3); giving up after 3 failed attempts." in err


def test_a_single_allowed_attempt_reads_in_the_singular(monkeypatch: pytest.MonkeyPatch,
                                                       capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(incidents, "ANNOUNCE_AFTER_SECS", 0.0)
    monkeypatch.setattr(T, "SETTINGS", replace(T.SETTINGS, max_attempts=1))
    with SessionLogWriter(T.SID, "claude", provider_session_id="prov-1") as writer:
        supervisor, engine = T._engine(writer)
        try:
            T._hit(engine, supervisor, time.time() + 1)
            attempt = engine.begin_attempt(engine.active_incident(), expected="prov-1")  # type: ignore[arg-type]
            engine.fail_attempt(attempt, "claude exited with code 3")
        finally:
            engine.close()
    assert "resume attempt 1 of claude failed (claude exited with code 3); giving up after 1 failed attempt." \
        in capfd.readouterr().err
