"""Waiting for a reset by the wall clock: a machine suspended for hours (the wall clock jumps past the
reset while zag sleeps; sleeps measure monotonic time, which stands still in a suspend) resumes within
about a second of waking, not after the rest of the wait in monotonic time."""

from __future__ import annotations

import threading
import time

import pytest

from tests.unit.test_limits_engine_log import SID, _engine, _hit
from zag.logs.writer import SessionLogWriter
from zag.wrapper import incidents


def test_a_wall_clock_jump_past_the_reset_makes_the_wait_due_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(incidents, "ANNOUNCE_AFTER_SECS", 0.0)
    real_time = time.time
    jump = [0.0]
    with SessionLogWriter(SID, "claude", provider_session_id="prov-1") as writer:
        supervisor, engine = _engine(writer)
        try:
            _hit(engine, supervisor, real_time() + 3 * 3600)
            monkeypatch.setattr(time, "time", lambda: real_time() + jump[0])
            outcome: list[str] = []
            waiter = threading.Thread(target=lambda: outcome.append(engine.wait_due(lambda: False)[0]))
            waiter.start()
            time.sleep(0.3)
            assert not outcome  # still waiting: the reset is hours ahead
            woke = time.monotonic()
            jump[0] = 3 * 3600 + 60  # the machine slept through the reset
            waiter.join(10)
            assert outcome == ["due"] and time.monotonic() - woke < 2.0
        finally:
            monkeypatch.setattr(time, "time", real_time)
            engine.close()
