"""QA of usage-limit reset times: time zones as the agents render them.

Local clock times (codex's `try again at 2:47 PM`, chrono `Local`) are in the zone libc makes of `TZ`,
which is not always an IANA name: the real codex 0.169 with `TZ=UTC+5` (POSIX: five hours *west*) said
`try again at 2:47 PM` for a reset at 19:47 UTC; with `TZ=CET-1CEST,M3.5.0,M10.5.0/3` `8:47 PM`; with
`TZ=/usr/share/zoneinfo/Asia/Kolkata` `Dec 8th, 2026 1:17 AM` (measured against the e2e fake API)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from zag.providers import reset_time
from zag.providers.codex import limits as codex
from zag.providers.gemini import limits as gemini
from zag.providers.goose import limits as goose

RESET = 1796672820.0    # 2026-12-07 19:47:00 UTC, the reset of the codex measurements above
NOW = 1796660520.0      # 16:22 UTC the same day, when codex said so


@pytest.fixture
def tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Set `TZ` with `tz.setenv("TZ", …)` (libc follows: `time.tzset`); the process's zone is back after."""
    yield monkeypatch
    monkeypatch.undo()
    time.tzset()


def _set_tz(tz: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        tz.delenv("TZ", raising=False)
    else:
        tz.setenv("TZ", value)
    time.tzset()


def _zone_file(tmp_path: Path, name: str) -> Path:
    """A copy of a zone file (from the tzdata package zag depends on), outside any `zoneinfo` tree."""
    import tzdata

    source = Path(tzdata.__file__).parent / "zoneinfo" / name
    copy = tmp_path / name.replace("/", "_")
    shutil.copyfile(source, copy)
    return copy


def _codex_reset(when: str, now: float = NOW) -> float | None:
    reading = codex.read_message(f"You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), "
                                 f"visit https://chatgpt.com/settings/usage to purchase more credits or try again "
                                 f"at {when}.", now)
    assert reading is not None
    return reading.reset_at


@pytest.mark.parametrize(("value", "shown"), [
    ("UTC+5", "2:47 PM"),                             # POSIX offset: UTC-5, not /etc/localtime
    ("CET-1CEST,M3.5.0,M10.5.0/3", "8:47 PM"),        # POSIX rule with DST
    ("<+0530>-5:30", "Dec 8th, 2026 1:17 AM"),        # quoted POSIX name
])
def test_codex_local_time_under_a_posix_tz_is_read_as_codex_renders_it(tz: pytest.MonkeyPatch, value: str,
                                                                        shown: str) -> None:
    _set_tz(tz, value)
    assert _codex_reset(shown) == RESET + 60  # the end of the minute shown


def test_a_tz_given_as_a_path_to_a_zone_file(tz: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _set_tz(tz, str(_zone_file(tmp_path, "Asia/Kolkata")))
    assert _codex_reset("Dec 8th, 2026 1:17 AM") == RESET + 60
    _set_tz(tz, ":" + str(_zone_file(tmp_path, "Asia/Kolkata")))
    assert _codex_reset("Dec 8th, 2026 1:17 AM") == RESET + 60


def test_a_posix_rule_keeps_its_dst_change(tz: pytest.MonkeyPatch) -> None:
    """Seen on Oct 30 (EDT, UTC-4), a reset on Nov 2 at 9:00 AM is EST (UTC-5): 14:00 UTC, not 13:00."""
    _set_tz(tz, "EST5EDT,M3.2.0,M11.1.0")
    oct_30_noon = 1793361600.0  # 2026-10-30 12:00 UTC
    nov_2_9am_est = 1793628000.0  # 2026-11-02 14:00 UTC
    assert _codex_reset("Nov 2nd, 2026 9:00 AM", oct_30_noon) == nov_2_9am_est + 60


def test_a_copied_etc_localtime_keeps_its_dst_change(tz: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """TZ unset and /etc/localtime a copy of a zone file (container images): its DST rules still apply,
    not the offset of the moment the hit was seen."""
    _set_tz(tz, None)
    tz.setattr(reset_time, "LOCALTIME", str(_zone_file(tmp_path, "America/New_York")))
    oct_30_noon = 1793361600.0
    assert _codex_reset("Nov 2nd, 2026 9:00 AM", oct_30_noon) == 1793628000.0 + 60


def test_an_unknown_tz_is_utc_as_libc_and_codex_read_it(tz: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """codex 0.169 with `TZ=Mars/Phobos` said `7:47 PM` for 19:47 UTC, whatever /etc/localtime says."""
    _set_tz(tz, "Mars/Phobos")
    tz.setattr(reset_time, "LOCALTIME", str(_zone_file(tmp_path, "Europe/Berlin")))
    assert _codex_reset("7:47 PM") == RESET + 60


@pytest.mark.parametrize("value", ["UTC+5", "CET-1CEST,M3.5.0,M10.5.0/3", "EST5EDT,M3.2.0,M11.1.0", "Mars/Phobos"])
def test_the_libc_zone_agrees_with_libc_every_quarter_hour_of_a_year(tz: pytest.MonkeyPatch, value: str) -> None:
    from datetime import datetime

    _set_tz(tz, value)
    zone = reset_time.local_zone()
    for moment in range(1790000000, 1790000000 + 366 * 86400, 900):
        local = datetime.fromtimestamp(moment, zone)
        assert local.timetuple()[:6] == time.localtime(moment)[:6]
        assert local.timestamp() == moment  # the fold of a repeated hour is kept
