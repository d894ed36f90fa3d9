"""A resume found due long after its time is put off by a fresh jitter, once.

Sessions of a batch waiting for one reset are spread over `jitter_secs`. A machine that slept through
the reset (or zags stopped through it, or `zag resume` of sessions overdue after a reboot) finds them all
due at the same moment: measured, 6 headless zags stopped past their jittered resumes and continued
together all resumed within 0.04 s. Each such wait now gets a fresh jitter, so they do not call the API
in the same second; a wait on time, and the put-off wait itself, are not put off again.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace

import pytest

from tests.unit import test_limits_engine_log as T
from tests.unit.test_limits_engine_log import _hit
from tests.unit.test_limits_wall_clock import _waiting

JITTER_SECS = 4.0
DRAW = 0.5  # every random draw: a fresh jitter of 2 s


@pytest.fixture(autouse=True)
def _jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(T, "SETTINGS", replace(T.SETTINGS, jitter_secs=JITTER_SECS))
    monkeypatch.setattr(random, "random", lambda: DRAW)


def test_a_wait_woken_long_after_its_resume_time_gets_a_fresh_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    with _waiting(monkeypatch) as wait:
        _hit(wait.engine, wait.supervisor, wait.real_time() + 3 * 3600)
        wait.start()
        time.sleep(0.3)
        wait.offset = 3 * 3600 + 600  # the machine slept through the reset and its jitter
        woke = wait.real_time() + wait.offset
        time.sleep(1.2)  # the wait sees the new time within a second
        assert not wait.outcome, "resumed at once on waking, with every other session waking with it"
        incident = wait.engine.active_incident()
        assert incident is not None and incident.resume_at == pytest.approx(woke + JITTER_SECS * DRAW, abs=1.2)
        assert wait.supervisor.registry["resume_at"] == incident.resume_at  # `zag ps` shows the new time
        wait.join(5)
        assert wait.outcome == ["due"]


def test_the_fresh_jitter_is_given_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Asleep again through the put-off resume: due as it wakes, not put off once more."""
    with _waiting(monkeypatch) as wait:
        _hit(wait.engine, wait.supervisor, wait.real_time() + 3600)
        wait.start()
        time.sleep(0.3)
        wait.offset = 3600 + 600
        deadline = time.monotonic() + 3
        while wait.engine.active_incident().spread_to is None:  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "not put off"
            time.sleep(0.02)
        assert not wait.outcome
        woke = time.monotonic()
        wait.offset += 3600
        wait.join(5)
        assert wait.outcome == ["due"] and time.monotonic() - woke < 1.5


def test_a_wait_on_time_is_not_put_off(monkeypatch: pytest.MonkeyPatch) -> None:
    with _waiting(monkeypatch) as wait:
        reset = wait.real_time() + 1.0
        _hit(wait.engine, wait.supervisor, reset)
        wait.start()
        wait.join(6)
        assert wait.outcome == ["due"]
        incident = wait.engine.active_incident()
        assert incident is not None and incident.resume_at == pytest.approx(reset + JITTER_SECS * DRAW)
