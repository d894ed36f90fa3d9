"""Turning what an agent says about its usage-limit reset into an epoch time.

Forms understood (case-insensitive):
- an epoch in seconds or milliseconds: `1755615600`;
- a relative delay: `in 2 hours 13 minutes`, `after 8h44m7s`, `41.2s`, `51820.638305887s`, `5 minutes`;
- a clock time, with or without an IANA zone in parentheses: `3pm`, `3:28pm (UTC)`, `3:39 AM`,
  `15:32`, `5pm (Europe/Warsaw)` — the next occurrence, except that the CLIs round to the minute, so a
  time up to `ROUNDING_GRACE_SECS` in the past means "now", not tomorrow;
- a date and time in local time (or the given zone): `Mar 10th, 2026 3:39 AM`, `Feb 16, 11am`,
  `Sep 17 at 10pm (Europe/Lisbon)` — without a year, the next such date, unless this year's is at most
  `RECENT_DATE_SECS` past (then it is that past reset).

An epoch or a delay is exact. A delay is also relative (`read_reset` says so): the agent counted it from
when it spoke, so zag times it on the elapsed clock, which a wall-clock step does not move; an epoch, a
clock time or a date is an instant on the wall clock. A clock time or a date names a minute, and the
CLIs floor the reset to the minute they show (claude says `resets 1:14am` for a reset at 1:14:50): such
a phrase stands for the END of its minute (`MINUTE_SECS` later), so a resume at that time never comes
before the real reset.

Local time is the process's zone as libc reads `TZ` (else /etc/localtime), which is also the agent's: it
inherits zag's environment and renders its reset times in it (codex through chrono's `Local`, which
reads `TZ` as libc does: a POSIX rule such as `UTC+5`, a path to a zone file; see `local_zone`).
"""

from __future__ import annotations

import calendar
import os
import re
import time
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ROUNDING_GRACE_SECS = 10 * 60
# A date without a year up to this long past is that past date (a reset already gone: resume soon), not
# the same date next year: the CLIs name resets at most a week ahead, so zag seeing one late (a stale
# screen, a suspended machine) must not read it as a year away.
RECENT_DATE_SECS = 8 * 86400
LOCALTIME = "/etc/localtime"
SYSTEM_ZONEINFO = "/usr/share/zoneinfo"  # where libc finds the zone `TZ` names, unless TZDIR says
MINUTE_SECS = 60.0  # the precision of a clock time or a date: the reset lies within that minute

_MONTHS = {name: index for index, name in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)}

_ZONE = r"(?:\s*\((?P<zone>[A-Za-z_+\-/0-9]+)\))?"
_CLOCK = r"(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?\s*(?P<ampm>[ap]\.?m\.?)?"
_CLOCK_RE = re.compile(rf"^(?:at\s+)?{_CLOCK}{_ZONE}\s*\.?$", re.IGNORECASE)
_DATE_RE = re.compile(
    rf"^(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,?\s+)?(?P<month>[a-z]{{3}})[a-z]*\.?\s+(?P<day>\d{{1,2}})"
    rf"(?:st|nd|rd|th)?,?(?:\s+(?P<year>\d{{4}}),?)?\s+(?:at\s+)?{_CLOCK}{_ZONE}\s*\.?$",
    re.IGNORECASE,
)
_EPOCH_RE = re.compile(r"^\d{10}(?:\d{3})?$")
_DURATION_PART = re.compile(
    r"(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>d(?:ays?)?|h(?:ours?|rs?)?|m(?:in(?:ute)?s?)?|s(?:ec(?:ond)?s?)?)(?![a-z])",
    re.IGNORECASE,
)
_UNIT_SECS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def local_zone() -> tzinfo:
    """The process's time zone as libc (hence zag's own clock times, and codex's chrono `Local`) reads it:
    an IANA zone when `TZ` (`:` prefix allowed) or /etc/localtime names one or is a zone file, so DST is
    right; anything else `TZ` may hold (a POSIX rule like `UTC+5` or `CET-1CEST,M3.5.0,M10.5.0/3`, an
    unknown name, which libc reads as UTC) is the zone libc made of it (`LibcZone`), not /etc/localtime.
    A name is looked up where libc looks (`TZDIR`, else /usr/share/zoneinfo), not in the tzdata package:
    on a system without the zone's file (a slim container) libc and codex show UTC times for it."""
    raw = os.environ.get("TZ")
    if raw is None:
        return _zone_file(LOCALTIME) or LibcZone()
    name = raw[1:] if raw.startswith(":") else raw
    if name.startswith("/"):
        return _zone_file(name) or LibcZone()
    if not name or ".." in name.split("/"):
        return LibcZone()
    return _zone_file(os.path.join(os.environ.get("TZDIR") or SYSTEM_ZONEINFO, name)) or LibcZone()


def _zone_file(path: str) -> tzinfo | None:
    """The zone of a zone file: by its IANA name when it is a link into a zoneinfo tree, else its data
    (an /etc/localtime copied, not linked, as in many container images)."""
    try:
        target = os.path.realpath(path)
        if not os.path.isfile(target):
            return None
        marker = "/zoneinfo/"
        if marker in target:
            try:
                return ZoneInfo(target.split(marker, 1)[1])
            except (ZoneInfoNotFoundError, ValueError):
                pass
        with open(target, "rb") as data:
            return ZoneInfo.from_file(data, key=path)
    except (OSError, ValueError):
        return None


class LibcZone(tzinfo):
    """The local time of libc (`time.localtime`), DST rules included, as a `tzinfo`: for a `TZ` that is
    not an IANA zone. A wall time in a DST fold has two instants (`fold` picks), one in a gap none (it
    maps forward, as zoneinfo does)."""

    def utcoffset(self, dt: datetime | None) -> timedelta:
        if dt is None:
            return timedelta(seconds=time.localtime().tm_gmtoff)
        return timedelta(seconds=self._offset(dt))

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        moment = time.time() if dt is None else self._epoch(dt)
        return time.localtime(moment).tm_zone

    def fromutc(self, dt: datetime) -> datetime:
        moment = calendar.timegm(dt.replace(tzinfo=None).timetuple())  # `dt` holds UTC fields
        naive = datetime(*time.localtime(moment)[:6], dt.microsecond)
        epochs = self._epochs(naive)
        return naive.replace(tzinfo=self, fold=int(len(epochs) == 2 and epochs[1] == moment))

    def _offset(self, dt: datetime) -> int:
        naive = dt.replace(tzinfo=None, microsecond=0)
        epochs = self._epochs(naive)
        if epochs:
            moment = epochs[-1] if dt.fold and len(epochs) == 2 else epochs[0]
            return calendar.timegm(naive.timetuple()) - moment
        # a gap: the offset before the change (fold 0) maps the time forward, as zoneinfo does
        before, after = self._around(naive)
        return before if not dt.fold else after

    def _epoch(self, dt: datetime) -> float:
        return calendar.timegm(dt.replace(tzinfo=None).timetuple()) - self._offset(dt)

    def _epochs(self, naive: datetime) -> list[int]:
        """The instants whose local time is `naive` (to the second): two in a fold, none in a gap."""
        wall = calendar.timegm(naive.timetuple())
        found = set()
        for offset in self._around(naive):
            moment = wall - offset
            if time.localtime(moment).tm_gmtoff == offset:
                found.add(moment)
        return sorted(found)

    @staticmethod
    def _around(naive: datetime) -> tuple[int, int]:
        """The UTC offsets a day before and a day after `naive` (a DST change lies between at most)."""
        wall = calendar.timegm(naive.timetuple())
        return time.localtime(wall - 86400).tm_gmtoff, time.localtime(wall + 86400).tm_gmtoff

    def __repr__(self) -> str:
        return f"LibcZone({os.environ.get('TZ')!r})"


def zone_named(name: str | None, default: tzinfo) -> tzinfo:
    """`ZoneInfo(name)`, `UTC` for UTC/GMT/Z, or `default` when the name is missing or unknown."""
    if not name:
        return default
    if name.upper() in ("UTC", "GMT", "Z"):
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return default


def from_epoch(value: float | int | str) -> float | None:
    """Epoch seconds from seconds or milliseconds; None when it is not a plausible time."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if number > 1e11:
        number /= 1000.0
    return number if plausible(number) else None


def plausible(epoch: float | None) -> bool:
    """Whether `epoch` can be a reset time (2001 to 2286): NaN, infinities and times `datetime` cannot
    even represent are not, whatever a CLI printed (`retry in 99999999999 days`)."""
    return epoch is not None and 1e9 < epoch < 1e10


def after(now: float, seconds: float) -> Reset | None:
    """The reset `seconds` after `now`, a delay (relative); None for a negative or absurd delay."""
    at = now + seconds
    return Reset(at, relative=True) if seconds >= 0 and plausible(at) else None


def duration_secs(text: str) -> float | None:
    """Seconds in `2 hours 13 minutes`, `8h44m7s`, `41.2s`, `51820.6s`; None if there is none."""
    cleaned = text.strip().lower()
    for prefix in ("in ", "after "):
        if cleaned.startswith(prefix):
            cleaned = cleaned[len(prefix):]
    parts = list(_DURATION_PART.finditer(cleaned))
    if not parts:
        return None
    leftover = _DURATION_PART.sub("", cleaned)
    if re.sub(r"[\s,and.]", "", leftover):
        return None
    return sum(float(part["value"]) * _UNIT_SECS[part["unit"][0].lower()] for part in parts)


class Reset(NamedTuple):
    """A reset read from what an agent said: its instant, and whether it was given as a delay from now."""

    at: float
    relative: bool = False  # `in 2 hours`, `41.2s`: timed on the elapsed clock, not the wall clock


def parse_reset(phrase: str, now: float, zone: tzinfo | None = None) -> float | None:
    """The reset instant (epoch seconds) described by `phrase`, or None if it is not understood; for a
    clock time or a date, the end of the minute it names (see the module docstring)."""
    reset = read_reset(phrase, now, zone)
    return reset.at if reset is not None else None


def read_reset(phrase: str, now: float, zone: tzinfo | None = None) -> Reset | None:
    """`parse_reset`, saying also whether the phrase is a delay (relative) rather than an instant."""
    text = phrase.strip().rstrip(".").strip()
    if not text:
        return None
    if _EPOCH_RE.match(text):
        epoch = from_epoch(text)
        return Reset(epoch) if epoch is not None else None
    delay = duration_secs(text)
    if delay is not None:
        return after(now, delay)
    at = _instant(text, now, zone or local_zone())
    return Reset(at) if at is not None else None


def _instant(text: str, now: float, zone: tzinfo) -> float | None:
    """A clock time or a date: the end of the minute it names."""
    match = _CLOCK_RE.match(text)
    if match:
        hour_minute = _hour_minute(match)
        if hour_minute is None:
            return None
        return clock_reset(*hour_minute, now=now, zone=zone_named(match["zone"], zone))
    match = _DATE_RE.match(text)
    if match:
        start = _date_time(match, now, zone)
        return start + MINUTE_SECS if start is not None else None
    return None


def clock_reset(hour: int, minute: int, *, now: float, zone: tzinfo) -> float:
    """The reset a clock time shown to the minute stands for: the end of the next such minute (see
    `next_clock_time`), since the CLIs floor the reset to the minute they show."""
    return next_clock_time(hour, minute, now=now, zone=zone) + MINUTE_SECS


def next_clock_time(hour: int, minute: int, *, now: float, zone: tzinfo) -> float:
    """The next `hour:minute` in `zone` at or after `now - ROUNDING_GRACE_SECS` (DST-aware)."""
    today = datetime.fromtimestamp(now, zone).date()
    candidates = []
    for offset in range(0, 3):
        day = today + timedelta(days=offset)
        candidates.extend(_instants(day, hour, minute, zone))
    future = [moment for moment in candidates if moment >= now - ROUNDING_GRACE_SECS]
    return min(future)


def _instants(day: date, hour: int, minute: int, zone: tzinfo) -> list[float]:
    """Epochs of a wall-clock time on a day: two in a DST fold, one otherwise (a gap maps forward)."""
    moments = set()
    for fold in (0, 1):
        local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone, fold=fold)
        moment = local.timestamp()
        back = datetime.fromtimestamp(moment, zone)
        if (back.hour, back.minute) == (hour, minute):
            moments.add(moment)
    if not moments:  # the time does not exist that day (DST gap): clocks jumped past it
        moments.add(datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).timestamp())
    return sorted(moments)


def _hour_minute(match: re.Match[str]) -> tuple[int, int] | None:
    hour = int(match["hour"])
    minute = int(match["minute"] or 0)
    ampm = (match["ampm"] or "").replace(".", "").lower()
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    elif match["minute"] is None:
        return None  # a bare number is not a clock time
    if hour > 23 or minute > 59:
        return None
    return hour, minute


def _date_time(match: re.Match[str], now: float, zone: tzinfo) -> float | None:
    month = _MONTHS.get(match["month"][:3].lower())
    hour_minute = _hour_minute(match)
    if month is None or hour_minute is None:
        return None
    zone = zone_named(match["zone"], zone)
    day = int(match["day"])
    hour, minute = hour_minute
    if match["year"]:
        years = [int(match["year"])]
    else:
        this_year = datetime.fromtimestamp(now, zone).year
        years = [this_year - 1, this_year, this_year + 1]  # last year's: a recent date across New Year
    for year in years:
        try:
            moments = _instants(date(year, month, day), hour, minute, zone)
        except ValueError:
            continue
        future = [moment for moment in moments if moment >= now - ROUNDING_GRACE_SECS]
        if future or match["year"] or moments[-1] >= now - RECENT_DATE_SECS:
            return min(future) if future else moments[0]
    return None
