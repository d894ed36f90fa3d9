"""When to resume after a usage-limit hit: reset time → resume time (pure functions, clocks passed in).

- reset known and ahead: `reset_at` + uniform jitter in [0, `jitter_secs`] (many sessions resuming at
  the same reset should not all call the API in the same second);
- reset known but already past (the CLI rounds to the minute, or zag saw it late): a short settle delay;
- reset unknown: now + `fallback_secs` + the same jitter, and the incident says `fallback_used`;
- always capped at now + `max_wait_secs`.
A reset instant is waited for on the wall clock (an NTP step back corrects a clock that ran ahead: the
reset is still that instant); a delay zag chose (fallback, settle, cap, retry, back-off), and a reset the
agent gave as a delay (`retry in 41.2s`, `resets_in_seconds`: `LimitSignal.reset_relative`), on
`elapsed()`, which a step does not move, so the clock set back an hour adds no hour to it.
After a failed attempt the next one comes `retry_secs` later (also capped). A hit after a resume that did
not continue the session (a repeat, see `incidents.IncidentBook.repeated`, or one naming a later reset,
as a relative `retry in 1s` does) waits at least `backoff`: `retry_secs`, doubled for each consecutive
failure, capped at `max_wait_secs`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zag.config import LimitSettings

SETTLE_SECS = 3.0


@dataclass(frozen=True)
class Schedule:
    resume_at: float
    fallback_used: bool
    delay: bool = field(default=False, compare=False)  # a wait zag chose (fallback, settle, cap), not a reset


def elapsed() -> float:
    """Seconds on a clock that a wall-clock step (NTP, `date -s`) does not move and that keeps counting
    through a suspend (CLOCK_BOOTTIME; `time.monotonic` where there is none): a wait of a duration is
    timed on it, a wait for a reset instant on the wall clock."""
    return time.clock_gettime(_BOOTTIME) if _BOOTTIME is not None else time.monotonic()


_BOOTTIME = getattr(time, "CLOCK_BOOTTIME", None)


def resume_time(
    reset_at: float | None,
    now: float,
    settings: LimitSettings,
    uniform: Callable[[], float] | None = None,
) -> Schedule:
    """The resume time for a hit observed at `now` (`uniform` returns a float in [0, 1); default
    `random.random`)."""
    cap = now + max(0.0, settings.max_wait_secs)
    if reset_at is not None and reset_at <= now:
        return Schedule(min(now + SETTLE_SECS, cap), False, delay=True)
    if uniform is None:
        import random  # only when a hit is scheduled: zag run does not pay for it otherwise

        uniform = random.random
    jitter = max(0.0, settings.jitter_secs) * uniform()
    if reset_at is None:
        # jittered too: a batch that hit one limit together (an API-key 429 says no reset) would otherwise
        # call the API again in the same second, `fallback_secs` later, and hit it again together
        return Schedule(min(now + max(0.0, settings.fallback_secs) + jitter, cap), True, delay=True)
    return Schedule(min(reset_at + jitter, cap), False, delay=reset_at + jitter > cap)


def retry_time(now: float, settings: LimitSettings) -> float:
    """When to try again after a resume attempt that did not continue the session."""
    return now + min(max(0.0, settings.retry_secs), max(0.0, settings.max_wait_secs))


def backoff(failures: int, settings: LimitSettings) -> float:
    """The least wait after `failures` (>= 1) consecutive resumes that did not continue the session."""
    doublings = min(max(0, failures - 1), 32)
    return min(max(0.0, settings.retry_secs) * 2 ** doublings, max(0.0, settings.max_wait_secs))


def repeat_time(resume_at: float, now: float, failures: int, settings: LimitSettings) -> float:
    """The resume time of a repeated hit: its own schedule, but no sooner than the back-off allows."""
    return min(max(resume_at, now + backoff(failures, settings)), now + max(0.0, settings.max_wait_secs))


def describe(resume_at: float, now: float) -> str:
    """`15:32 CET (in 2h03m)`: the local clock time and what is left, for one line on stderr."""
    stamp = time.localtime(resume_at)
    clock = time.strftime("%H:%M:%S" if resume_at - now < 600 else "%H:%M", stamp)
    if time.localtime(now)[:3] != stamp[:3]:
        clock = time.strftime("%a %b %d ", stamp) + clock
    zone = time.strftime("%Z", stamp)
    return f"{clock}{' ' + zone if zone else ''} (in {remaining(resume_at - now)})"


def remaining(seconds: float) -> str:
    """`45s`, `3m05s`, `2h03m`, `1d04h`."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"
