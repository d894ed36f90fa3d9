"""How Codex says "usage limit": the structured codes and the wordings, and what they tell about the reset.

Structured: `codex_error_info: "usage_limit_exceeded"` on rollout `error` events and `task_complete.error`;
the raw 429 body `{"error":{"type":"usage_limit_reached",…,"resets_at":…,"resets_in_seconds":…}}`; the
latest `token_count.rate_limits.{primary,secondary}` snapshot says which window is used up (`used_percent`
≥ 100; a 300-minute window is the 5-hour *session* limit, 10080 minutes the *weekly* one) and when it
resets (`resets_at`, older `resets_in_seconds`).

Text (`UsageLimitReachedError` wordings, every plan, straight or curly apostrophe):
`You've hit your usage limit. … try again at 3:39 AM.` / `… at Mar 10th, 2026 3:39 AM.` / `… try again in
2 hours 13 minutes.` / `You've hit your usage limit for <limit>. Switch to another model now, or try again
at <T>.` / `… Try again later.` (no reset: the configured fallback applies).

Not usage limits (no reset would help, or it is transient and Codex retries by itself):
`usage_not_included` ("To use Codex with your ChatGPT plan, upgrade to Plus"), workspace credits / spend
caps, `exceeded retry limit, last status: 429 Too Many Requests`, `Reconnecting... n/5`,
`Selected model is at capacity`. Resuming after a wait cannot fix the first two, so zag does not schedule
a resume for them (they stay visible as `provider_status` / the agent's own error output).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from zag.logs import events
from zag.providers.reset_time import Reset, after, from_epoch, read_reset

USAGE_LIMIT_CODE = "usage_limit_exceeded"
RAW_BODY_TYPE = "usage_limit_reached"

_APOS = "['’\u2019`]"
# The message itself, anchored at its start by the callers (`search_anchored`) or by `^` here.
_CORE = (
    rf"You{_APOS}ve\s+hit\s+your\s+usage\s+limit(?:\s+for\s+(?P<limit_name>[^\n]+?))?\.\s"
    r"(?P<body>.{0,600}?)"
    r"(?:try\s+again\s+(?P<reset>(?:at|in)\s+.+?)(?:\.(?=\s|$)|$)|try\s+again\s+later\b|limits\s+reset\s+every\b)"
)
MESSAGE_RE = re.compile(rf"^\s*(?:[\w ]{{0,60}}:\s+)?{_CORE}", re.IGNORECASE | re.DOTALL)

# Plain-text lines: optional TUI glyphs / `ERROR:` / `Error running …:` prefixes, then the message.
_GLYPHS = "■⎿●✕✗×▪▌│┃"
TEXT_RE = re.compile(
    rf"(?:^|\n)[ \t]*(?:[{_GLYPHS}][ \t]*)*(?:ERROR:?[ \t]+)?(?:Error[\w ]{{0,60}}:[ \t]+)?{_CORE}",
    re.IGNORECASE | re.DOTALL,
)
RAW_BODY_RE = re.compile(r'"type"\s*:\s*"usage_limit_reached"')
_RESETS_AT_RE = re.compile(r'"resets_at"\s*:\s*(\d{9,13})')
_RESETS_IN_RE = re.compile(r'"resets_in_seconds"\s*:\s*(\d+(?:\.\d+)?)')


@dataclass(frozen=True)
class Reading:
    """What a limit message says: its exact text, the reset (epoch) and the scope when known."""

    raw: str
    reset_at: float | None
    scope: str = events.SCOPE_UNKNOWN
    reset_relative: bool = False  # a delay (`try again in 2 hours`, `resets_in_seconds`), not an instant

    @classmethod
    def of(cls, raw: str, reset: Reset | None) -> Reading:
        return cls(raw=raw, reset_at=reset.at if reset else None, reset_relative=bool(reset and reset.relative))

    @property
    def reset(self) -> Reset | None:
        return Reset(self.reset_at, self.reset_relative) if self.reset_at is not None else None


def is_limit_code(info: Any) -> bool:
    """`codex_error_info` naming the usage limit (a string, or an object keyed by the variant)."""
    if isinstance(info, str):
        return info == USAGE_LIMIT_CODE
    if isinstance(info, dict):
        return USAGE_LIMIT_CODE in info
    return False


def read_message(text: str, now: float, zone: tzinfo | None = None) -> Reading | None:
    """A Codex error message that is (starts with) the usage-limit wording → its reading."""
    if not isinstance(text, str) or "limit" not in text.lower():
        return None
    match = MESSAGE_RE.match(text)
    if not match:
        return None
    return Reading.of(text.strip(), _reset_of(match, now, zone))


def search_text(text: str, now: float, zone: tzinfo | None = None) -> Reading | None:
    """The usage-limit wording at the start of a line of plain output (glyph/`ERROR:` prefixes allowed)."""
    match = TEXT_RE.search(text)
    if not match:
        return None
    raw = text[match.start():match.end()].strip()
    return Reading.of(raw, _reset_of(match, now, zone))


def search_raw_body(text: str, now: float) -> Reading | None:
    """The raw 429 body Codex logs (`"type":"usage_limit_reached"`) → reset from `resets_at`."""
    if not RAW_BODY_RE.search(text):
        return None
    reset = None
    at = _RESETS_AT_RE.search(text)
    if at:
        epoch = from_epoch(at.group(1))
        reset = Reset(epoch) if epoch is not None else None
    if reset is None:
        seconds = _RESETS_IN_RE.search(text)
        if seconds:
            reset = after(now, float(seconds.group(1)))
    return Reading.of(text.strip(), reset)


def _reset_of(match: re.Match[str], now: float, zone: tzinfo | None) -> Reset | None:
    phrase = match["reset"]
    if not phrase:
        return None
    phrase = " ".join(phrase.split())
    if phrase.lower().startswith("at "):
        phrase = phrase[3:]
    return read_reset(phrase, now, zone)


# --- rate-limit snapshots (token_count.rate_limits) -------------------------------------------
def window_scope(minutes: Any) -> str:
    """A window length → scope: the 5-hour window is the session limit, 7 days the weekly one."""
    if not isinstance(minutes, (int, float)) or isinstance(minutes, bool) or minutes <= 0:
        return events.SCOPE_UNKNOWN
    if minutes < 1440:
        return events.SCOPE_SESSION
    if minutes < 10080:
        return events.SCOPE_DAILY
    return events.SCOPE_WEEKLY


def window_reset(window: dict[str, Any], snapshot_at: float) -> float | None:
    reset = window_reset_of(window, snapshot_at)
    return reset.at if reset is not None else None


def window_reset_of(window: dict[str, Any], snapshot_at: float) -> Reset | None:
    """A window's reset: `resets_at` (an instant), else `resets_in_seconds` from the snapshot (a delay)."""
    reset = window.get("resets_at")
    if isinstance(reset, (int, float)) and not isinstance(reset, bool):
        epoch = from_epoch(reset)
        return Reset(epoch) if epoch is not None else None
    seconds = window.get("resets_in_seconds")
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
        return after(snapshot_at, float(seconds))
    return None


def snapshot_windows(rate_limits: Any) -> list[dict[str, Any]]:
    """The `primary` / `secondary` windows of a snapshot (absent or null ones left out)."""
    if not isinstance(rate_limits, dict):
        return []
    return [w for w in (rate_limits.get("primary"), rate_limits.get("secondary")) if isinstance(w, dict)]


def scope_and_reset(
    rate_limits: Any, snapshot_at: float, text_reset: float | None
) -> tuple[str, float | None]:
    """`scope_and_reset_of` with the reset as an epoch only."""
    scope, reset = scope_and_reset_of(rate_limits, snapshot_at,
                                      Reset(text_reset) if text_reset is not None else None)
    return scope, reset.at if reset is not None else None


def scope_and_reset_of(rate_limits: Any, snapshot_at: float, text_reset: Reset | None) -> tuple[str, Reset | None]:
    """Scope and reset of a hit from the latest snapshot: the used-up window(s) (the one that frees last
    when both are); else the window whose reset matches the one the text gave; else unknown + text."""
    windows = snapshot_windows(rate_limits)
    used_up = [w for w in windows if _used_percent(w) >= 100.0]
    if used_up:
        best = max(used_up, key=lambda w: window_reset(w, snapshot_at) or 0.0)
        reset = window_reset_of(best, snapshot_at)
        return window_scope(best.get("window_minutes")), reset if reset is not None else text_reset
    if text_reset is not None:
        for window in windows:
            at = window_reset(window, snapshot_at)
            if at is not None and abs(at - text_reset.at) <= 120:
                return window_scope(window.get("window_minutes")), text_reset
    return events.SCOPE_UNKNOWN, text_reset


def _used_percent(window: dict[str, Any]) -> float:
    value = window.get("used_percent")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return 0.0
