"""What a Claude Code usage-limit hit looks like: record shapes, stream-json events and text wordings.

Structured evidence (trusted at once): a transcript/stream assistant record that is an API error
(`isApiErrorMessage` or an `error` code) with `error: "rate_limit"` / `apiErrorStatus: 429` / a limit
wording; stream-json `rate_limit_event` with status `rejected`; stream-json `result` with
`api_error_status: 429`. Not a hit: `system/api_retry` (claude retries by itself), `rate_limit_event`
`allowed` / `allowed_warning`, `terminal_reason: "blocking_limit"` (prompt too long), overloaded / 529.

Text patterns are anchored at the start of a line (after TUI glyphs such as ⎿ ● ■ ✕ and blanks, but not
the prompt marker ❯, so a user's typed/pasted text is not a hit) and cover every wording seen so far:
- `Claude AI usage limit reached|<epoch>` (1.0.x machine line; the whole line must be exactly that),
- `Claude usage limit reached. Your limit will reset at 5pm (Europe/Warsaw).`,
- `5-hour limit reached ∙ resets 5am`, `Weekly limit reached ∙ resets …`,
- `You've hit your [session|weekly|…] limit · resets 3pm (Europe/Berlin)` (dates: `Feb 16, 11am`,
  `Apr 23 at 4pm`), `You've hit your individual spend limit`, `You've reached your Opus limit…`,
- `You're out of extra usage · resets 11:59pm (UTC)`,
- API-key 429s: `API Error: Request rejected (429) · …`, `API Error: 429 {… "rate_limit_error" …}`
  (no reset given: `reset_at` stays None and the supervisor uses the configured fallback).

About `Claude AI usage limit reached|<epoch>` in 2.1.x: the real 2.1.197 CLI treats an HTTP-200 answer
with that text as an ordinary assistant message (real model, no error field, exit 0). So it is a
structured signal only on an API-error/synthetic record (how 1.0.x wrote its limit records), never on
an ordinary assistant message; on plain output it is an unconfirmed text signal (whole line only), which
the supervisor confirms from the exit code and the transcript — for 2.1.x it will not be confirmed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from zag.logs import events
from zag.providers.base import LimitSignal

if TYPE_CHECKING:
    from zag.providers.reset_time import Reset

PROVIDER = "claude"

# Glyphs claude's TUI puts before a status/assistant line; not ❯ or > (the user's prompt).
_LEAD = r"^[\s\u00a0⎿●■✕✗✘⏺⚠•*·∙\-]*"
_DOT = r"\s*[·∙•]\s*"
_APOS = r"[’'`]"
# A reset phrase: a clock time or a date, optionally `at`, optionally an IANA zone in parentheses.
_RESET = r"(?P<reset>[A-Za-z0-9:,. ]+?(?:\s*\([A-Za-z_+\-/0-9]+\))?)"
_END = r"\s*(?:[.!]\s*)?(?:$|[·∙•]|/\w|\s{2,})"

_SCOPE_WORDS = {
    "session": events.SCOPE_SESSION, "5-hour": events.SCOPE_SESSION, "five-hour": events.SCOPE_SESSION,
    "5 hour": events.SCOPE_SESSION, "weekly": events.SCOPE_WEEKLY, "7-day": events.SCOPE_WEEKLY,
    "seven-day": events.SCOPE_WEEKLY, "daily": events.SCOPE_DAILY,
}
_RATE_LIMIT_TYPES = {
    "five_hour": events.SCOPE_SESSION, "seven_day": events.SCOPE_WEEKLY,
    "seven_day_opus": events.SCOPE_WEEKLY, "seven_day_sonnet": events.SCOPE_WEEKLY,
    "seven_day_oauth_apps": events.SCOPE_WEEKLY, "daily": events.SCOPE_DAILY,
}


@dataclass(frozen=True)
class TextHit:
    raw: str                 # the matched text (whole line as printed, glyphs stripped)
    scope: str
    reset_phrase: str | None
    reset_at: float | None
    reset_relative: bool = False  # the phrase is a delay (`in 2 hours`), not an instant


def _compile(body: str) -> re.Pattern[str]:
    return re.compile(_LEAD + body, re.IGNORECASE)


@cache
def _patterns() -> tuple[re.Pattern[str], ...]:
    """The wording patterns, compiled on first use (~30 ms: `zag run` starts without them, and the
    output scanner's pre-check rarely lets a line this far)."""
    return (
        _compile(r"(?P<msg>Claude AI usage limit reached\|(?P<epoch>\d{10}(?:\d{3})?))\s*$"),
        _compile(r"(?P<msg>Claude usage limit reached\.\s*Your limit will reset at\s+" + _RESET + r")" + _END),
        _compile(r"(?P<msg>(?P<scope>5-hour|five-hour|weekly|daily|session|opus|sonnet|[\w ]{1,30}?)\s+limit reached"
                 r"(?:" + _DOT + r"resets\s+" + _RESET + r")?)" + _END),
        _compile(r"(?P<msg>You" + _APOS + r"ve hit your\s+(?:(?P<scope>session|weekly|daily|5-hour|individual spend|"
                 r"org(?:anization)? spend|[\w-]{1,20})\s+)?limit(?:" + _DOT + r"resets\s+" + _RESET + r")?)" + _END),
        _compile(r"(?P<msg>You" + _APOS + r"ve reached your\s+[\w .-]{1,40}?\s+limit)\b"),
        _compile(r"(?P<msg>You" + _APOS + r"re out of extra usage(?:" + _DOT + r"resets\s+" + _RESET + r")?)" + _END),
        _compile(r"(?P<msg>API Error:\s*Request rejected \(429\)" + _DOT + r".*?)\s*$"),
        _compile(r"(?P<msg>API Error:\s*429\b.*rate_limit_error.*?)\s*$"),
    )


@cache
def _prose_scope() -> re.Pattern[str]:
    return re.compile(r"\b(session|5-hour|five-hour|weekly|7-day|daily)\b", re.IGNORECASE)


def scope_from_words(text: str | None) -> str:
    if not text:
        return events.SCOPE_UNKNOWN
    match = _prose_scope().search(text)
    if not match:
        return events.SCOPE_UNKNOWN
    return _SCOPE_WORDS.get(match.group(1).lower(), events.SCOPE_UNKNOWN)


def scope_from_rate_limit_type(value: Any) -> str:
    if isinstance(value, str):
        return _RATE_LIMIT_TYPES.get(value, events.SCOPE_WEEKLY if value.startswith("seven_day")
                                     else events.SCOPE_UNKNOWN)
    return events.SCOPE_UNKNOWN


def match_text(line: str, now: float | None = None) -> TextHit | None:
    """A limit wording at the start of `line` (ANSI already stripped), or None."""
    if not line or len(line) > 4000:
        return None
    lowered = line.lower()
    if "limit" not in lowered and "429" not in line and "usage" not in lowered:
        return None  # every wording has one of these: spares the patterns on ordinary output
    for pattern in _patterns():
        match = pattern.match(line)
        if match is None:
            continue
        groups = match.groupdict()
        when = time.time() if now is None else now
        reset_phrase = groups.get("reset") or groups.get("epoch")
        reset = _read_reset(reset_phrase, when) if reset_phrase else None
        scope = _SCOPE_WORDS.get((groups.get("scope") or "").lower().strip(), events.SCOPE_UNKNOWN)
        return TextHit(raw=match.group("msg").strip(), scope=scope, reset_phrase=reset_phrase,
                       reset_at=reset.at if reset else None, reset_relative=bool(reset and reset.relative))
    return None


def _read_reset(phrase: str, now: float) -> Reset | None:
    from zag.providers.reset_time import read_reset  # zoneinfo and its patterns: only once a hit is seen

    return read_reset(phrase, now)


def match_extra(line: str, patterns: Iterable[Any], now: float | None = None) -> TextHit | None:
    """The user's `extra_patterns` (searched anywhere in the line; a `reset` group may give the reset)."""
    for pattern in patterns:
        match = pattern.search(line)
        if match is None:
            continue
        reset_phrase = match.groupdict().get("reset")
        when = time.time() if now is None else now
        reset = _read_reset(reset_phrase, when) if reset_phrase else None
        return TextHit(raw=match.group(0), scope=scope_from_words(match.group(0)), reset_phrase=reset_phrase,
                       reset_at=reset.at if reset else None, reset_relative=bool(reset and reset.relative))
    return None


def compile_extra(patterns: Iterable[str]) -> list[Any]:
    from zag.user_patterns import compile_all  # a time budget per search: see there

    return compile_all(patterns)


def is_api_error_record(is_api_error_message: Any, error: Any) -> bool:
    """The record is claude's own error pseudo-message (not something the model wrote)."""
    return is_api_error_message is True or (isinstance(error, str) and bool(error))


def limit_from_error_record(
    *,
    error: Any,
    status: Any,
    text: str,
    quota: tuple[str | None, Any, Any] | None,
    now: float,
    source: str,
    provider_session_id: str | None,
) -> LimitSignal | None:
    """The signal for an API-error assistant record, if it is a usage/rate limit.

    `quota` is (status, resetsAt, rateLimitType) from `quotaLimits` when the record has one.
    """
    hit = match_text(text.strip(), now) if text else None
    is_limit = error == "rate_limit" or status == 429 or (quota is not None and quota[0] == "rejected") \
        or hit is not None
    if not is_limit:
        return None
    scope = events.SCOPE_UNKNOWN
    reset_at = None
    relative = False
    if quota is not None:
        scope = scope_from_rate_limit_type(quota[2])
        reset_at = _epoch(quota[1])
    if hit is not None:
        if scope == events.SCOPE_UNKNOWN:
            scope = hit.scope if hit.scope != events.SCOPE_UNKNOWN else scope_from_words(hit.raw)
        if reset_at is None:
            reset_at, relative = hit.reset_at, hit.reset_relative
    return LimitSignal(
        provider=PROVIDER, source=source, raw=text or f"error={error} status={status}", structured=True,
        scope=scope, reset_at=reset_at, observed_at=time.time(), provider_session_id=provider_session_id,
        reset_relative=relative,
    )


def _epoch(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float, str)):
        from zag.providers.reset_time import from_epoch

        return from_epoch(value)
    return None


def epoch(value: Any) -> float | None:
    """An epoch (s or ms) from a JSON value, or None."""
    return _epoch(value)
