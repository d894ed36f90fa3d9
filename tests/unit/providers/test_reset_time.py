"""Reset phrases → epochs on fixed clocks: epochs and delays are exact; a clock time or a date names a
minute that the CLIs floor the reset to, so it stands for the END of that minute (a resume at that time
never comes early); a minute just past means now, not tomorrow; zones and DST."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from zag.providers import reset_time

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


def at(*parts: int, zone=UTC) -> float:
    return datetime(*parts, tzinfo=zone).timestamp()


NOW = at(2026, 11, 22, 1, 14, 30)


@pytest.mark.parametrize("phrase, expected", [
    ("1795362628", 1795362628.0),
    ("1795362628000", 1795362628.0),
    ("in 2 hours 13 minutes", NOW + 2 * 3600 + 13 * 60),
    ("41.2s", NOW + 41.2),
    ("after 8h44m7s", NOW + 8 * 3600 + 44 * 60 + 7),
])
def test_epochs_and_delays_are_exact(phrase: str, expected: float) -> None:
    assert reset_time.parse_reset(phrase, NOW, UTC) == pytest.approx(expected, abs=1e-6)


def test_a_clock_minute_stands_for_its_end() -> None:
    """claude said `resets 1:14am (UTC)` at 1:14:30 for a reset at 1:14:50: 1:15:00 is not too early."""
    real_reset = at(2026, 11, 22, 1, 14, 50)
    parsed = reset_time.parse_reset("1:14am (UTC)", NOW)
    assert parsed == at(2026, 11, 22, 1, 15) and parsed >= real_reset


@pytest.mark.parametrize("phrase, expected", [
    ("3pm", at(2026, 11, 22, 15, 1)),
    ("3:28pm (UTC)", at(2026, 11, 22, 15, 29)),
    ("15:32", at(2026, 11, 22, 15, 33)),
    ("5pm (Europe/Berlin)", at(2026, 11, 22, 17, 1, zone=BERLIN)),
    ("Mar 10th, 2027 3:39 AM", at(2027, 3, 10, 3, 40)),
    ("Feb 16, 11am", at(2027, 2, 16, 11, 1)),
    ("Sep 17 at 10pm (Europe/Lisbon)", at(2027, 9, 17, 22, 1, zone=ZoneInfo("Europe/Lisbon"))),
])
def test_clock_times_and_dates_end_with_their_minute(phrase: str, expected: float) -> None:
    assert reset_time.parse_reset(phrase, NOW, UTC) == expected


def test_a_minute_just_past_is_now_and_one_long_past_is_tomorrow() -> None:
    later = at(2026, 11, 22, 1, 20)
    assert reset_time.parse_reset("1:14am", later, UTC) == at(2026, 11, 22, 1, 15)   # past: resume at once
    much_later = at(2026, 11, 22, 1, 14) + reset_time.ROUNDING_GRACE_SECS + 1
    assert reset_time.parse_reset("1:14am", much_later, UTC) == at(2026, 11, 23, 1, 15)


def test_clock_reset_across_dst() -> None:
    before_gap = at(2026, 3, 29, 0, 10)   # Berlin jumps 02:00 → 03:00 CEST that night
    assert reset_time.clock_reset(2, 30, now=before_gap, zone=BERLIN) == at(2026, 3, 29, 1, 31)
    before_fold = at(2026, 10, 24, 23, 0)  # 01:00 CEST; 02:30 happens twice: the first one counts
    assert reset_time.clock_reset(2, 30, now=before_fold, zone=BERLIN) == at(2026, 10, 25, 0, 31)


def test_nonsense_is_none() -> None:
    for phrase in ("", "soon", "25:00", "13pm", "Smarch 3, 4pm"):
        assert reset_time.parse_reset(phrase, NOW, UTC) is None


@pytest.mark.parametrize("phrase, now, expected", [
    ("Nov 22, 1am", NOW, at(2026, 11, 22, 1, 1)),                   # 14 minutes past
    ("Nov 20 at 9pm", NOW, at(2026, 11, 20, 21, 1)),                # days past
    ("Dec 31, 11pm (UTC)", at(2027, 1, 2, 9), at(2026, 12, 31, 23, 1)),  # past, across New Year
    ("Jan 2, 3am", at(2026, 12, 30, 12), at(2027, 1, 2, 3, 1)),     # ahead, across New Year
])
def test_a_date_without_a_year_just_past_is_past_not_next_year(phrase: str, now: float, expected: float) -> None:
    """A CLI names resets at most a week ahead: a yearless date zag sees after it passed (late, a stale
    screen) is a reset already gone (resume after the settle delay), not one a year away (which
    `max_wait_secs` would cap to a day's useless wait)."""
    assert reset_time.parse_reset(phrase, now, UTC) == expected


@pytest.mark.parametrize("phrase, relative", [
    ("in 2 hours 13 minutes", True), ("41.2s", True), ("after 8h44m7s", True), ("5 minutes", True),
    ("1795362628", False), ("3pm", False), ("3:28pm (UTC)", False), ("Mar 10th, 2026 3:39 AM", False),
])
def test_a_delay_is_relative_and_an_instant_is_not(phrase: str, relative: bool) -> None:
    reset = reset_time.read_reset(phrase, NOW, UTC)
    assert reset is not None and reset.relative is relative
    assert reset.at == reset_time.parse_reset(phrase, NOW, UTC)
    assert reset_time.read_reset("nonsense", NOW, UTC) is None
