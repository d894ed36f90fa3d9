"""Resume times with fixed clocks: reset + jitter (bounds), the max_wait cap, the fallback when no reset is
known, a short settle delay when the reset already passed, retries; and the one-line wording."""

from __future__ import annotations

import random

import pytest

from zag.config import Config
from zag.wrapper import schedule

NOW = 1_800_000_000.0


def settings(**limits: object) -> object:
    return Config(usage_limits=dict(limits)).limits_for("claude")


@pytest.mark.parametrize("draw", [0.0, 0.25, 0.999999])
def test_reset_ahead_gets_jitter_within_bounds(draw: float) -> None:
    plan = schedule.resume_time(NOW + 600, NOW, settings(jitter_secs=30), uniform=lambda: draw)
    assert plan == schedule.Schedule(NOW + 600 + 30 * draw, False)


def test_jitter_spreads_within_zero_and_jitter_secs() -> None:
    rng = random.Random(7)
    times = [schedule.resume_time(NOW + 60, NOW, settings(jitter_secs=10), uniform=rng.random).resume_at
             for _ in range(500)]
    assert NOW + 60 <= min(times) and max(times) < NOW + 70
    assert max(times) - min(times) > 8  # really spread, not a constant


def test_no_jitter_configured() -> None:
    assert schedule.resume_time(NOW + 60, NOW, settings(jitter_secs=0)).resume_at == NOW + 60


def test_cap_at_max_wait() -> None:
    plan = schedule.resume_time(NOW + 7 * 86400, NOW, settings(max_wait_secs=3600), uniform=lambda: 0.5)
    assert plan == schedule.Schedule(NOW + 3600, False)


def test_unknown_reset_uses_the_fallback() -> None:
    assert schedule.resume_time(None, NOW, settings(fallback_secs=900, jitter_secs=0)) == \
        schedule.Schedule(NOW + 900, True)
    assert schedule.resume_time(None, NOW, settings(fallback_secs=900, max_wait_secs=60), uniform=lambda: 0.9) == \
        schedule.Schedule(NOW + 60, True)


def test_the_fallback_is_jittered_as_a_reset_is() -> None:
    """Sessions of a batch that hit one limit in the same second with no reset given (claude's API-key 429,
    codex's `Try again later.`) used to be resumed in the same second too, `fallback_secs` later, and hit
    the limit again together: the fallback gets the jitter a known reset gets."""
    assert schedule.resume_time(None, NOW, settings(fallback_secs=900, jitter_secs=30), uniform=lambda: 0.5) == \
        schedule.Schedule(NOW + 915, True)
    rng = random.Random(7)
    times = [schedule.resume_time(None, NOW, settings(fallback_secs=900, jitter_secs=10), uniform=rng.random).resume_at
             for _ in range(500)]
    assert NOW + 900 <= min(times) and max(times) < NOW + 910 and max(times) - min(times) > 8


@pytest.mark.parametrize("reset", [NOW, NOW - 1, NOW - 3600])
def test_past_reset_settles_briefly(reset: float) -> None:
    plan = schedule.resume_time(reset, NOW, settings(jitter_secs=300), uniform=lambda: 0.9)
    assert plan == schedule.Schedule(NOW + schedule.SETTLE_SECS, False)


def test_retry_after_a_failed_attempt() -> None:
    assert schedule.retry_time(NOW, settings(retry_secs=45)) == NOW + 45
    assert schedule.retry_time(NOW, settings(retry_secs=4000, max_wait_secs=100)) == NOW + 100


def test_defaults_follow_design() -> None:
    limits = Config().limits_for("codex")
    assert (limits.enabled, limits.resume_message, limits.fallback_secs, limits.jitter_secs, limits.max_wait_secs,
            limits.max_attempts) == (True, "Continue", 3600, 30, 86400, 12)
    assert (limits.retry_secs, limits.verify_secs) == (300, 120)


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (45.4, "45s"), (185, "3m05s"), (7380, "2h03m"),
                                               (100000, "1d03h")])
def test_remaining(seconds: float, text: str) -> None:
    assert schedule.remaining(seconds) == text


def test_describe_is_local_clock_and_what_is_left(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        noon = 1_800_000_000.0 - (1_800_000_000 % 86400) + 11 * 3600  # 12:00 or 13:00 Berlin
        text = schedule.describe(noon + 2 * 3600 + 180, noon)
        assert text.endswith("(in 2h03m)") and ("CET" in text or "CEST" in text)
        assert "(in 30s)" in schedule.describe(noon + 30, noon) and ":" in schedule.describe(noon + 30, noon)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


@pytest.mark.parametrize("failures, wait", [(1, 20), (2, 40), (3, 80), (4, 160), (9, 1000), (500, 1000)])
def test_backoff_doubles_from_retry_secs_up_to_max_wait(failures: int, wait: float) -> None:
    assert schedule.backoff(failures, settings(retry_secs=20, max_wait_secs=1000)) == wait


def test_a_repeated_hit_waits_for_the_later_of_its_schedule_and_the_backoff() -> None:
    limits = settings(retry_secs=20, max_wait_secs=1000)
    assert schedule.repeat_time(NOW + 3, NOW, 2, limits) == NOW + 40          # a past reset's settle: backed off
    assert schedule.repeat_time(NOW + 600, NOW, 2, limits) == NOW + 600       # a reset further ahead: kept
    assert schedule.repeat_time(NOW + 600, NOW, 9, limits) == NOW + 1000      # capped
    assert schedule.repeat_time(NOW + 5000, NOW, 1, limits) == NOW + 1000


def test_only_a_reset_instant_is_not_a_delay() -> None:
    """What is timed on the elapsed clock (a delay zag chose) and what on the wall clock (the reset)."""
    assert schedule.resume_time(None, NOW, settings()).delay                                 # fallback
    assert schedule.resume_time(NOW - 5, NOW, settings()).delay                              # settle
    assert schedule.resume_time(NOW + 7 * 86400, NOW, settings(max_wait_secs=3600)).delay    # the cap
    assert not schedule.resume_time(NOW + 600, NOW, settings(), uniform=lambda: 0.5).delay   # the reset
