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


def _wait_in_thread(engine: object) -> tuple[threading.Thread, list[str]]:
    outcome: list[str] = []
    waiter = threading.Thread(target=lambda: outcome.append(engine.wait_due(lambda: False)[0]))  # type: ignore[attr-defined]
    waiter.start()
    return waiter, outcome


def test_a_wall_clock_set_back_does_not_stretch_a_wait_zag_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    """No reset given: zag waits `fallback_secs`, a duration: the clock set back an hour (an NTP step)
    during it must not add that hour (the wait measures elapsed time, which a step does not move)."""
    from dataclasses import replace

    from tests.unit import test_limits_engine_log as T

    monkeypatch.setattr(incidents, "ANNOUNCE_AFTER_SECS", 0.0)
    monkeypatch.setattr(T, "SETTINGS", replace(T.SETTINGS, fallback_secs=1.5))
    real_time = time.time
    jump = [0.0]
    with SessionLogWriter(SID, "claude", provider_session_id="prov-1") as writer:
        supervisor, engine = _engine(writer)
        try:
            _hit(engine, supervisor, None)
            started = time.monotonic()
            monkeypatch.setattr(time, "time", lambda: real_time() + jump[0])
            waiter, outcome = _wait_in_thread(engine)
            time.sleep(0.3)
            jump[0] = -3600.0
            waiter.join(6)
            assert outcome == ["due"] and 1.0 <= time.monotonic() - started < 3.0
        finally:
            monkeypatch.setattr(time, "time", real_time)
            engine.close()
            waiter.join(5)


def test_a_cancel_is_seen_within_a_poll_after_the_clock_went_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """The index is polled every second of elapsed time: a clock set back an hour must not put the next
    poll (and `zag usage cancel`) an hour away."""
    from tests.unit.test_limits_engine_log import _cancel_in_index

    monkeypatch.setattr(incidents, "ANNOUNCE_AFTER_SECS", 0.0)
    real_time = time.time
    jump = [0.0]
    with SessionLogWriter(SID, "claude", provider_session_id="prov-1") as writer:
        supervisor, engine = _engine(writer)
        try:
            hit = _hit(engine, supervisor, real_time() + 600)
            monkeypatch.setattr(time, "time", lambda: real_time() + jump[0])
            waiter, outcome = _wait_in_thread(engine)
            time.sleep(0.3)
            jump[0] = -3600.0
            time.sleep(0.1)
            _cancel_in_index(hit["incident_id"])
            asked = time.monotonic()
            waiter.join(6)
            assert outcome == ["cancelled"] and time.monotonic() - asked < 2.5
        finally:
            monkeypatch.setattr(time, "time", real_time)
            engine.close()
            waiter.join(5)


def test_a_reset_instant_stays_on_the_wall_clock_when_it_is_set_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reset the agent named as an instant (an epoch, `resets 3pm`) is kept on the wall clock: an NTP
    step back corrects a clock that ran ahead, and the elapsed time measured from that wrong clock would
    resume before the reset."""
    monkeypatch.setattr(incidents, "ANNOUNCE_AFTER_SECS", 0.0)
    real_time = time.time
    jump = [0.0]
    with SessionLogWriter(SID, "claude", provider_session_id="prov-1") as writer:
        supervisor, engine = _engine(writer)
        try:
            _hit(engine, supervisor, real_time() + 1.0)
            monkeypatch.setattr(time, "time", lambda: real_time() + jump[0])
            waiter, outcome = _wait_in_thread(engine)
            time.sleep(0.3)
            jump[0] = -3600.0
            time.sleep(2.0)
            assert not outcome  # by the wall clock the reset is an hour ahead again
            jump[0] = 0.0
            waiter.join(3)
            assert outcome == ["due"]
        finally:
            monkeypatch.setattr(time, "time", real_time)
            engine.close()
            waiter.join(5)


def _relative_hit(engine: object, supervisor: object, delay: float) -> None:
    """A structured report of a hit whose reset the agent gave as a delay (`retry in 1.5s`), announced."""
    from tests.unit.test_limits_engine_log import _hits
    from zag.providers.base import LimitSignal

    before = len(_hits(supervisor.writer))  # type: ignore[attr-defined]
    signal = LimitSignal("claude", "provider_file", '{"error":"rate_limit"}', structured=True, scope="session",
                         reset_at=time.time() + delay, provider_session_id="prov-1", reset_relative=True)
    engine.observe(signal)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while len(_hits(supervisor.writer)) == before or engine.active_incident() is None:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the hit was not announced"
        time.sleep(0.01)


def test_a_reset_given_as_a_delay_is_not_stretched_by_a_clock_set_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """`retry in 1.5s`, `resets_in_seconds`: the agent counted the delay, not a wall-clock instant, so the
    clock set back an hour during the wait must not resume an hour late (it is timed on elapsed time)."""
    monkeypatch.setattr(incidents, "ANNOUNCE_AFTER_SECS", 0.0)
    real_time = time.time
    jump = [0.0]
    with SessionLogWriter(SID, "claude", provider_session_id="prov-1") as writer:
        supervisor, engine = _engine(writer)
        try:
            started = time.monotonic()
            _relative_hit(engine, supervisor, 1.5)
            monkeypatch.setattr(time, "time", lambda: real_time() + jump[0])
            waiter, outcome = _wait_in_thread(engine)
            time.sleep(0.3)
            jump[0] = -3600.0
            waiter.join(6)
            assert outcome == ["due"] and 1.0 <= time.monotonic() - started < 3.0
        finally:
            monkeypatch.setattr(time, "time", real_time)
            engine.close()
            waiter.join(5)
