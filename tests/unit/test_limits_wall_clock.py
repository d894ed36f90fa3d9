"""Waiting for a reset by the wall clock: a machine suspended for hours (the wall clock jumps past the
reset while zag sleeps; sleeps measure monotonic time, which stands still in a suspend) resumes within
about a second of waking, not after the rest of the wait in monotonic time."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.unit.test_limits_engine_log import SID, _engine, _hit
from zag.logs.writer import SessionLogWriter
from zag.wrapper import incidents


class _Wait:
    """The engine under test and its stand-in supervisor; once the wait started, `time.time` is the real
    clock plus `offset`, which the test moves (a suspend, an NTP step)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, writer: SessionLogWriter) -> None:
        self.monkeypatch = monkeypatch
        self.real_time = time.time
        self.offset = 0.0
        self.supervisor, self.engine = _engine(writer)
        self.waiter: threading.Thread | None = None
        self.outcome: list[str] = []

    def start(self) -> None:
        """Take the clock, and run `engine.wait_due` in a thread; what it returns lands in `outcome`."""
        self.monkeypatch.setattr(time, "time", lambda: self.real_time() + self.offset)
        self.waiter = threading.Thread(target=lambda: self.outcome.append(self.engine.wait_due(lambda: False)[0]))
        self.waiter.start()

    def join(self, timeout: float) -> None:
        assert self.waiter is not None
        self.waiter.join(timeout)


@contextlib.contextmanager
def _waiting(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Wait]:
    """An engine over a session log, announcing hits at once; on the way out the real clock is back, the
    engine closed and its waiter joined."""
    monkeypatch.setattr(incidents, "ANNOUNCE_AFTER_SECS", 0.0)
    with SessionLogWriter(SID, "claude", provider_session_id="prov-1") as writer:
        wait = _Wait(monkeypatch, writer)
        try:
            yield wait
        finally:
            monkeypatch.setattr(time, "time", wait.real_time)
            wait.engine.close()
            if wait.waiter is not None:
                wait.waiter.join(5)


def test_a_wall_clock_jump_past_the_reset_makes_the_wait_due_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    with _waiting(monkeypatch) as wait:
        _hit(wait.engine, wait.supervisor, wait.real_time() + 3 * 3600)
        wait.start()
        time.sleep(0.3)
        assert not wait.outcome  # still waiting: the reset is hours ahead
        woke = time.monotonic()
        wait.offset = 3 * 3600 + 60  # the machine slept through the reset
        wait.join(10)
        assert wait.outcome == ["due"] and time.monotonic() - woke < 2.0


def test_a_wall_clock_set_back_does_not_stretch_a_wait_zag_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    """No reset given: zag waits `fallback_secs`, a duration: the clock set back an hour (an NTP step)
    during it must not add that hour (the wait measures elapsed time, which a step does not move)."""
    from dataclasses import replace

    from tests.unit import test_limits_engine_log as T

    monkeypatch.setattr(T, "SETTINGS", replace(T.SETTINGS, fallback_secs=1.5))
    with _waiting(monkeypatch) as wait:
        _hit(wait.engine, wait.supervisor, None)
        started = time.monotonic()
        wait.start()
        time.sleep(0.3)
        wait.offset = -3600.0
        wait.join(6)
        assert wait.outcome == ["due"] and 1.0 <= time.monotonic() - started < 3.0


def test_a_cancel_is_seen_within_a_poll_after_the_clock_went_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """The index is polled every second of elapsed time: a clock set back an hour must not put the next
    poll (and `zag usage cancel`) an hour away."""
    from tests.unit.test_limits_engine_log import _cancel_in_index

    with _waiting(monkeypatch) as wait:
        hit = _hit(wait.engine, wait.supervisor, wait.real_time() + 600)
        wait.start()
        time.sleep(0.3)
        wait.offset = -3600.0
        time.sleep(0.1)
        _cancel_in_index(hit["incident_id"])
        asked = time.monotonic()
        wait.join(6)
        assert wait.outcome == ["cancelled"] and time.monotonic() - asked < 2.5


def test_a_reset_instant_stays_on_the_wall_clock_when_it_is_set_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reset the agent named as an instant (an epoch, `resets 3pm`) is kept on the wall clock: an NTP
    step back corrects a clock that ran ahead, and the elapsed time measured from that wrong clock would
    resume before the reset."""
    with _waiting(monkeypatch) as wait:
        _hit(wait.engine, wait.supervisor, wait.real_time() + 1.0)
        wait.start()
        time.sleep(0.3)
        wait.offset = -3600.0
        time.sleep(2.0)
        assert not wait.outcome  # by the wall clock the reset is an hour ahead again
        wait.offset = 0.0
        wait.join(3)
        assert wait.outcome == ["due"]


def _relative_hit(engine: Any, supervisor: Any, delay: float) -> None:
    """A structured report of a hit whose reset the agent gave as a delay (`retry in 1.5s`), announced."""
    from tests.unit.test_limits_engine_log import _hits
    from zag.providers.base import LimitSignal

    before = len(_hits(supervisor.writer))
    signal = LimitSignal("claude", "provider_file", '{"error":"rate_limit"}', structured=True, scope="session",
                         reset_at=time.time() + delay, provider_session_id="prov-1", reset_relative=True)
    engine.observe(signal)
    deadline = time.monotonic() + 10
    while len(_hits(supervisor.writer)) == before or engine.active_incident() is None:
        assert time.monotonic() < deadline, "the hit was not announced"
        time.sleep(0.01)


def test_a_reset_given_as_a_delay_is_not_stretched_by_a_clock_set_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """`retry in 1.5s`, `resets_in_seconds`: the agent counted the delay, not a wall-clock instant, so the
    clock set back an hour during the wait must not resume an hour late (it is timed on elapsed time)."""
    with _waiting(monkeypatch) as wait:
        started = time.monotonic()
        _relative_hit(wait.engine, wait.supervisor, 1.5)
        wait.start()
        time.sleep(0.3)
        wait.offset = -3600.0
        wait.join(6)
        assert wait.outcome == ["due"] and 1.0 <= time.monotonic() - started < 3.0
