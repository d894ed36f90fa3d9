"""Gemini CLI usage-limit wordings: what says "quota", which scope, and when it resets.

`classify(text, now)` judges text that is already known to be an error (a JSON `error.message`, an
`[API Error: …]`, a `TerminalQuotaError: …` line, an `error` record of a chat file); the scanner
decides where text may be trusted (see `scanner.py`). Sources of the wordings: AGENT_FORMATS.md §3.5,
the captures in corpus/real-cli/gemini and the 0.61.0 bundle (`useQuotaAndFallback`, `ProQuotaDialog`,
`classifyGoogleError`).

Reset time, first that applies: `Access resets at 3:45 PM PST` (a clock time the TUI renders in the
agent's local zone), `reset after 8h44m7s`, `Please retry in 41.2s` / `Suggested retry after 3600s` /
`"retryDelay": "51820.6s"`. A *daily* quota that names no reset (`You have exhausted your daily quota on
this model.`) resets at the next midnight Pacific time, which is when Google's per-day quotas roll over;
anything else without a reset gives `reset_at=None` and the supervisor's fallback applies.

Transient retries (`Attempt 1 failed: … Retrying after 5923ms...`) are never a hit by themselves.
Exit codes of a quota failure: 173 (= 429 & 0xFF, `-o json`/`stream-json`) and 1 (text output); a
`--resume` of a session gemini cannot find or resume exits 42 (plans.py avoids planning one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from zag.logs import events
from zag.providers import reset_time

QUOTA_ERROR_CLASSES = ("TerminalQuotaError", "RetryableQuotaError")
PACIFIC = "America/Los_Angeles"

_FLAGS = re.IGNORECASE
# Each: (pattern, scope). The first match decides the scope; later ones may still upgrade it to daily.
_INDICATORS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"exhausted your daily quota", _FLAGS), events.SCOPE_DAILY),
    (re.compile(r"reached your daily [\w.\- ]*quota limit", _FLAGS), events.SCOPE_DAILY),
    (re.compile(r"exhausted your capacity on this model", _FLAGS), events.SCOPE_UNKNOWN),
    (re.compile(r"You exceeded your current quota", _FLAGS), events.SCOPE_UNKNOWN),
    (re.compile(r"Usage limit reached for (?:all Pro models|[\w.\-]+)", _FLAGS), events.SCOPE_UNKNOWN),
    (re.compile(r"currently experiencing high demand", _FLAGS), events.SCOPE_UNKNOWN),
    (re.compile(r"Quota exceeded for quota metric", _FLAGS), events.SCOPE_UNKNOWN),
    (re.compile(r"Resource (?:has been )?exhausted", _FLAGS), events.SCOPE_UNKNOWN),
    (re.compile(r"RESOURCE_EXHAUSTED"), events.SCOPE_UNKNOWN),
    (re.compile(r"\b(?:TerminalQuotaError|RetryableQuotaError)\b"), events.SCOPE_UNKNOWN),
    (re.compile(r"QUOTA_EXHAUSTED|MODEL_CAPACITY_EXHAUSTED|RATE_LIMIT_EXCEEDED"), events.SCOPE_UNKNOWN),
)
_DAILY_HINT = re.compile(r"PerDay|per day|\bdaily\b|RequestsPerDay", _FLAGS)
_TRANSIENT = re.compile(r"^\s*Attempt \d+ failed\b", _FLAGS)

_ACCESS_RESETS = re.compile(
    r"Access resets at (?P<hour>\d{1,2}):(?P<minute>\d{2})\s*(?P<ampm>[AP]\.?M\.?)?"
    r"(?:\s+(?P<tz>(?:GMT|UTC)(?:[+-]\d{1,2}(?::?\d{2})?)?|[A-Z]{2,5}))?",
    _FLAGS,
)
_RESET_AFTER = re.compile(r"reset after (?P<delay>(?:\d+(?:\.\d+)?[hms])+)", _FLAGS)
_RETRY_IN = re.compile(r"(?:Please retry in|Suggested retry after)\s+(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|h)\b", _FLAGS)
_RETRY_DELAY = re.compile(r'"?retryDelay"?\s*[:=]\s*"?(?P<value>\d+(?:\.\d+)?)s', _FLAGS)
_OFFSET_TZ = re.compile(r"^(?:GMT|UTC)(?P<sign>[+-])(?P<hours>\d{1,2})(?::?(?P<minutes>\d{2}))?$", _FLAGS)
_UNIT_SECS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_US_ZONES = {"EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
             "AKST": -9, "AKDT": -8, "HST": -10, "HDT": -9, "AST": -4, "ADT": -3}


@dataclass(frozen=True)
class Quota:
    scope: str
    reset_at: float | None
    reset_relative: bool = False  # a delay (`Please retry in 41.2s`, `retryDelay`), not a clock time


def is_transient_retry(line: str) -> bool:
    """`Attempt 1 failed: … Retrying after 5923ms...`: the CLI retries by itself; not a hit."""
    return bool(_TRANSIENT.match(line))


def classify(text: str, now: float, *, zone: tzinfo | None = None, force: bool = False) -> Quota | None:
    """Scope and reset of an error text that speaks of a quota; None if it does not.

    `force`: the caller already knows it is a quota error (e.g. `error.type` is TerminalQuotaError or
    the HTTP code is 429), so the text only refines scope and reset."""
    scope = None
    for pattern, pattern_scope in _INDICATORS:
        if pattern.search(text):
            scope = pattern_scope
            break
    if scope is None:
        if not force:
            return None
        scope = events.SCOPE_UNKNOWN
    if scope != events.SCOPE_DAILY and _DAILY_HINT.search(text):
        scope = events.SCOPE_DAILY
    reset = read_reset_in_text(text, now, zone=zone)
    if reset is None and scope == events.SCOPE_DAILY:
        reset = reset_time.Reset(next_pacific_midnight(now))
    return Quota(scope=scope, reset_at=reset.at if reset else None, reset_relative=bool(reset and reset.relative))


def reset_from_text(text: str, now: float, *, zone: tzinfo | None = None) -> float | None:
    """The reset instant named in `text`, or None."""
    reset = read_reset_in_text(text, now, zone=zone)
    return reset.at if reset is not None else None


def read_reset_in_text(text: str, now: float, *, zone: tzinfo | None = None) -> reset_time.Reset | None:
    """The reset named in `text` (a clock time: an instant; `reset after`, `retry in`, `retryDelay`: a
    delay), or None."""
    match = _ACCESS_RESETS.search(text)
    if match:
        value = _clock_reset(match, now, zone)
        if value is not None:
            return reset_time.Reset(value)
    match = _RESET_AFTER.search(text)
    if match:
        delay = reset_time.duration_secs(match["delay"])
        if delay is not None:
            return reset_time.after(now, delay)
    match = _RETRY_IN.search(text)
    if match:
        return reset_time.after(now, float(match["value"]) * _UNIT_SECS[match["unit"].lower()])
    match = _RETRY_DELAY.search(text)
    if match:
        return reset_time.after(now, float(match["value"]))
    return None


def next_pacific_midnight(now: float) -> float:
    """The next 00:00 in America/Los_Angeles after `now` (DST-aware)."""
    zone = ZoneInfo(PACIFIC)
    local = datetime.fromtimestamp(now, zone)
    tomorrow = (local + timedelta(days=1)).date()
    return datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=zone).timestamp()


def _clock_reset(match: re.Match[str], now: float, zone: tzinfo | None) -> float | None:
    hour, minute = int(match["hour"]), int(match["minute"])
    ampm = (match["ampm"] or "").replace(".", "").lower()
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    if hour > 23 or minute > 59:
        return None
    return reset_time.clock_reset(hour, minute, now=now, zone=_zone_of(match["tz"], zone))  # the minute's end


def _zone_of(abbreviation: str | None, zone: tzinfo | None) -> tzinfo:
    """The zone of `Intl.DateTimeFormat("en-US", {timeZoneName: "short"})` output: UTC/GMT, GMT±h and the
    US abbreviations (PST, EDT…, the only names en-US gives) are exact offsets, whatever zone libc (hence
    `local_zone`) makes of `TZ` (Node's ICU has its own zone data); anything else is our local zone."""
    if abbreviation and abbreviation.upper() in _US_ZONES:
        return timezone(timedelta(hours=_US_ZONES[abbreviation.upper()]))
    local = zone or reset_time.local_zone()
    if not abbreviation:
        return local
    upper = abbreviation.upper()
    if upper in ("UTC", "GMT"):
        return timezone.utc
    match = _OFFSET_TZ.match(upper)
    if match:
        minutes = int(match["hours"]) * 60 + int(match["minutes"] or 0)
        return timezone(timedelta(minutes=minutes if match["sign"] == "+" else -minutes))
    return local
