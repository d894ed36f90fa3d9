"""QA of usage-limit reset times: time zones as the agents render them, and resets no clock can show.

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


def test_a_zone_libc_cannot_find_is_utc_as_libc_and_codex_show_it(tz: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A slim container: TZ names a zone, but there is no zone file where libc looks (TZDIR, else
    /usr/share/zoneinfo): libc and codex's chrono show UTC times; the tzdata package must not make zag
    read them as New York times (5 h late)."""
    (tmp_path / "zoneinfo").mkdir()
    tz.setenv("TZDIR", str(tmp_path / "zoneinfo"))
    _set_tz(tz, "America/New_York")
    assert time.localtime(RESET).tm_gmtoff == 0  # what libc (and codex) make of it
    assert _codex_reset("7:47 PM") == RESET + 60


def test_gemini_us_zone_abbreviations_are_exact_whatever_libc_knows(tz: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    """gemini's Node formats with ICU's own zone data (`11:47 AM PST`) even where libc has no zone files."""
    (tmp_path / "zoneinfo").mkdir()
    tz.setenv("TZDIR", str(tmp_path / "zoneinfo"))
    _set_tz(tz, "America/Los_Angeles")
    for said in ("11:47 AM PST", "2:47 PM EST", "12:47 PM MST", "10:47 AM AKST", "9:47 AM HST"):
        quota = gemini.classify(f"Usage limit reached for gemini-2.5-pro.\nAccess resets at {said}.", NOW)
        assert quota is not None and quota.reset_at == RESET + 60, said


# --- resets no clock can show -----------------------------------------------------------------
@pytest.mark.parametrize("phrase", ["in 99999999999 days", "in " + "9" * 400 + " hours", "9" * 30 + "s"])
def test_an_absurd_delay_is_no_reset(phrase: str) -> None:
    assert reset_time.read_reset(phrase, NOW) is None


def test_a_long_but_possible_delay_is_still_read() -> None:
    assert reset_time.read_reset("in 100 days", NOW) == reset_time.Reset(NOW + 100 * 86400, relative=True)


def test_absurd_delays_in_the_providers_are_no_reset() -> None:
    huge = "9" * 400
    quota = gemini.classify(f"You exceeded your current quota. Please retry in {huge}s.", NOW)
    assert quota is not None and quota.reset_at is None
    quota = gemini.classify(f'RESOURCE_EXHAUSTED "retryDelay": "{huge}s"', NOW)
    assert quota is not None and quota.reset_at is None
    body = codex.search_raw_body('{"type":"usage_limit_reached","resets_in_seconds":99999999999999999999}', NOW)
    assert body is not None and body.reset_at is None
    assert codex.window_reset_of({"resets_in_seconds": float("inf")}, NOW) is None
    assert codex.window_reset_of({"resets_in_seconds": float("nan")}, NOW) is None
    assert goose.reset_of("Rate limit exceeded: retry-after: 99999999999999999999", NOW) is None


def test_a_hit_naming_a_reset_no_clock_can_show_is_announced_with_the_fallback(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A signal whose reset is centuries away (a provider's arithmetic on a huge delay) is still logged
    and waited for: it was announced without a log event, index row or `waiting` state (formatting the
    reset raised), and headless the error ended the session instead of resuming."""
    from tests.unit.test_limits_engine_log import SETTINGS, SID, _engine, _hit
    from zag import states
    from zag.logs.writer import SessionLogWriter
    from zag.wrapper import incidents

    monkeypatch.setattr(incidents, "ANNOUNCE_AFTER_SECS", 0.0)
    with SessionLogWriter(SID, "claude", provider_session_id="prov-1") as writer:
        supervisor, engine = _engine(writer)
        try:
            hit = _hit(engine, supervisor, time.time() + 1e20)
            assert hit["reset_at"] is None and hit["fallback_used"] is True
            assert supervisor.registry["state"] == states.WAITING
            incident = engine.active_incident()
            assert incident is not None and incident.resume_at is not None
            assert incident.resume_at - time.time() <= SETTINGS.fallback_secs + 1
        finally:
            engine.close()


@pytest.mark.parametrize("value", ["inf", "nan", "1e300", "31622401"])
def test_a_wait_setting_no_clock_can_end_is_refused(tmp_path: Path, value: str) -> None:
    """TOML has `inf` (and `nan`): `max_wait_secs = inf` with `fallback_secs = inf` scheduled a hit without
    a reset at `inf`: nothing logged, the session never `waiting`, and a wait that never ended;
    `heartbeat_secs = inf` raised OverflowError in the heartbeat thread. Each is refused (a year at most)
    and its default used."""
    from zag.config import LIMIT_DEFAULTS, load

    path = tmp_path / "config.toml"
    path.write_text(f"heartbeat_secs = {value}\n[usage_limits]\nmax_wait_secs = {value}\nfallback_secs = {value}\n"
                    f"jitter_secs = {value}\n[usage_limits.providers.claude]\nretry_secs = {value}\n")
    config = load(path)
    assert config.heartbeat_secs == 10.0
    assert "max_wait_secs" not in config.usage_limits and "fallback_secs" not in config.usage_limits
    assert "jitter_secs" not in config.usage_limits and config.usage_limits["providers"].get("claude", {}) == {}
    assert len(config.problems) == 5 and LIMIT_DEFAULTS["max_wait_secs"] == 86400


@pytest.mark.parametrize("first, second", [("Access resets at 3:45", "PM PST."), ("Access resets at", "3:45 PM PST.")])
def test_gemini_reset_wrapped_by_a_narrow_dialog_keeps_its_am_pm(first: str, second: str) -> None:
    """gemini's quota dialog in a ~28-column pane wraps `Access resets at 3:45 PM PST.`: the first screen
    line alone read `3:45` as 03:45, 12 hours early (or no reset at all)."""
    from tests.unit.providers.test_gemini_limits import minute_end, scan, signals

    screen = (f"│ Usage limit reached for gemini-2.5-pro. │\r\n│ {first} │\r\n│ {second} │\r\n"
              "│ /stats model for usage details │\r\n")
    [signal] = signals(scan("pty", screen))
    assert signal.reset_at == minute_end(2026, 1, 15, 15, 45)
    assert "Access resets at 3:45 PM PST." in signal.raw
