"""Token usage of a goose session: one `usage` event per change of its counters.

goose keeps usage on the session, not on messages: `accumulated_{input,output,total}_tokens` (whole
session), `{input,output,total}_tokens` (the last turn), `accumulated_cost` (v13), and in newer builds
cache counters. A `usage` event carries the growth of the accumulated counters since the previous
event, so summing a session's usage events gives its total; the counters themselves are kept in
`cumulative`. Without accumulated counters (older rows) the last-turn counters are reported as they
change. `total_cost_usd` is the session's accumulated cost so far, when goose records one.
"""

from __future__ import annotations

from typing import Any

from zag.logs import events

FIELDS = (
    "accumulated_input_tokens", "accumulated_output_tokens", "accumulated_total_tokens",
    "input_tokens", "output_tokens", "total_tokens",
    "accumulated_cache_read_tokens", "accumulated_cache_write_tokens",
    "cache_read_tokens", "cache_write_tokens", "accumulated_cost",
)


def snapshot(row: dict[str, Any]) -> list[Any]:
    """The usage counters of a session row / legacy metadata line (numbers or None)."""
    return [_number(row.get(name)) for name in FIELDS]


def usage_event(previous: list[Any] | None, current: list[Any], *, ts: Any, model: str | None,
                session_id: str | None) -> dict[str, Any] | None:
    """The `usage` body for a change from `previous` to `current`, or None when nothing grew."""
    if previous == current or not any(value is not None for value in current):
        return None
    now = dict(zip(FIELDS, current))
    before = dict(zip(FIELDS, previous or [None] * len(FIELDS)))
    if now["accumulated_input_tokens"] is not None or now["accumulated_output_tokens"] is not None:
        grown = [_growth(before, now, name) for name in (
            "accumulated_input_tokens", "accumulated_output_tokens",
            "accumulated_cache_read_tokens", "accumulated_cache_write_tokens")]
        if now["accumulated_cache_read_tokens"] is None and now["cache_read_tokens"] is not None:
            grown[2] = _growth(before, now, "cache_read_tokens")
        if now["accumulated_cache_write_tokens"] is None and now["cache_write_tokens"] is not None:
            grown[3] = _growth(before, now, "cache_write_tokens")
    else:
        grown = [now["input_tokens"] or 0, now["output_tokens"] or 0,
                 now["cache_read_tokens"] or 0, now["cache_write_tokens"] or 0]
    cost_changed = now["accumulated_cost"] != before["accumulated_cost"]
    if not any(grown) and not cost_changed:
        return None
    body = events.body(
        events.USAGE, input_tokens=int(grown[0]), output_tokens=int(grown[1]),
        cache_read_tokens=int(grown[2]), cache_creation_tokens=int(grown[3]),
        cumulative={
            "input_tokens": now["accumulated_input_tokens"],
            "output_tokens": now["accumulated_output_tokens"],
            "total_tokens": now["accumulated_total_tokens"],
            "last_turn": {"input_tokens": now["input_tokens"], "output_tokens": now["output_tokens"],
                          "total_tokens": now["total_tokens"]},
        },
        ts=ts,
    )
    if now["accumulated_cost"] is not None:
        body["total_cost_usd"] = now["accumulated_cost"]
    if model:
        body["model"] = model
    if session_id:
        body["provider_session_id"] = session_id
    return body


def _growth(before: dict[str, Any], now: dict[str, Any], name: str) -> float:
    current, previous = now[name], before[name]
    if current is None:
        return 0
    if previous is None or current < previous:   # first sight, or the counters were reset (/clear)
        return current
    return current - previous


def _number(value: Any) -> Any:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, (bytes, str)):
        try:
            number = float(value)
        except ValueError:
            return None
        return int(number) if number.is_integer() else number
    return None
