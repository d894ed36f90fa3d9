"""zag's own diagnostics: structlog JSON lines in `$ZAG_HOME/zag.log`, never in session logs.

structlog is imported on first use (it costs ~100 ms), so commands that log nothing start fast.
Logging never raises: a diagnostics failure must not disturb the agent zag supervises. Lines that could
not be written (a full disk) stay buffered and go out with the next line, or at exit.

Normal use writes nothing here (a `zag run`, headless or on a terminal, and a `zag backfill` add 0 bytes):
lines come from faults. A fault that repeats (every heartbeat, every poll) for hours must not fill the
disk, so identical diagnostics (same level, event, text fields and exception; counters aside) are written
the first `_REPEATS_AT_ONCE` times, then at most once per `_REPEAT_EVERY_SECS` with how many were left
out; what is still left out when the process ends is counted in one last line.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from typing import Any

_REPEATS_AT_ONCE = 3
_REPEAT_EVERY_SECS = 3600.0
_MAX_TRACKED = 1024  # distinct diagnostics counted per process

_lock = threading.Lock()
_logger: Any = None
_clock = time.monotonic
_repeats: dict[tuple[Any, ...], list[Any]] = {}  # key -> [count, last written (clock), left out, event]


def _get_logger() -> Any:
    global _logger
    if _logger is None:
        with _lock:
            if _logger is None:
                import structlog

                from zag import paths

                log_path = paths.ensure_home() / paths.diagnostics_log().name
                flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | paths.NOFOLLOW
                fd = os.open(log_path, flags, 0o600)
                handle = os.fdopen(fd, "a", buffering=1, encoding="utf-8")
                atexit.register(_flush, handle)  # `zag run` leaves with os._exit after the atexit calls
                _repeats.clear()
                _logger = structlog.wrap_logger(
                    structlog.WriteLogger(handle),
                    processors=[
                        structlog.processors.add_log_level,
                        structlog.processors.TimeStamper(fmt="iso", utc=True),
                        structlog.processors.format_exc_info,
                        _redacted(structlog.processors.JSONRenderer()),
                    ],
                ).bind(pid=os.getpid())
                atexit.register(_count_left_out)  # runs before `_flush` (atexit calls are last in, first out)
    return _logger


def _flush(handle: Any) -> None:
    try:
        handle.flush()
    except Exception:  # noqa: BLE001 - still no space: nothing more to do
        pass


def _redacted(render: Any) -> Any:
    """`render`, its line redacted as a session log line is: an exception's message or a provider's
    error can quote what the agent wrote. Built-in patterns only: the user's come from the config,
    whose loading may itself log here."""
    from zag.logs.redact import Redactor

    redactor = Redactor()

    def render_redacted(logger: Any, name: str, event_dict: Any) -> str:
        line: str = render(logger, name, event_dict)
        return redactor.redact(line.encode("utf-8", "backslashreplace")).decode("utf-8")

    return render_redacted


def _log(level: str, event: str, **fields: Any) -> None:
    try:
        logger = _get_logger()
        extra = _throttled(level, event, fields)
        if extra is not None:
            getattr(logger, level)(event, **fields, **extra)
    except Exception:  # noqa: BLE001 - diagnostics must never take zag (or the agent) down
        pass


def _throttled(level: str, event: str, fields: dict[str, Any]) -> dict[str, Any] | None:
    """Fields to add to this line (how often it repeated), or None to leave it out: see the docstring."""
    key = _key(level, event, fields)
    now = _clock()
    with _lock:
        seen = _repeats.get(key)
        if seen is None:
            if len(_repeats) >= _MAX_TRACKED:  # forget those seen once: a repeating one is still caught
                for once in [known for known, counts in _repeats.items() if counts[0] == 1]:
                    del _repeats[once]
            if len(_repeats) < _MAX_TRACKED:
                _repeats[key] = [1, now, 0, event]
            return {}
        seen[0] += 1
        count, written_at, left_out = seen[0], seen[1], seen[2]
        if count > _REPEATS_AT_ONCE and now - written_at < _REPEAT_EVERY_SECS:
            seen[2] += 1
            return None
        seen[1], seen[2] = now, 0
    extra: dict[str, Any] = {"repeated": count}
    if left_out:
        extra["left_out"] = left_out
    if count == _REPEATS_AT_ONCE:
        extra["throttled"] = f"the same line from now on at most once every {_REPEAT_EVERY_SECS:g} s"
    return extra


def _key(level: str, event: str, fields: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two diagnostics the same: numbers (attempts, counts, sizes) aside, everything."""
    parts = [(name, repr(value)) for name, value in sorted(fields.items())
             if name != "exc_info" and not isinstance(value, (int, float))]
    exc = fields.get("exc_info")
    if exc is True:
        exc = sys.exc_info()[1]
    if isinstance(exc, BaseException):
        parts.append(("exception", f"{type(exc).__name__}: {exc}"))
    return (level, event, *parts)


def _count_left_out() -> None:
    """At exit: one line per diagnostic whose last repeats were left out, so that none goes uncounted."""
    with _lock:
        pending = [(seen[3], seen[0], seen[2]) for seen in _repeats.values() if seen[2]]
        _repeats.clear()
    for event, count, left_out in pending:
        try:
            _logger.warning("diagnostic_repeats_left_out", repeated_event=event, repeated=count,
                            left_out=left_out)
        except Exception:  # noqa: BLE001
            pass


def info(event: str, **fields: Any) -> None:
    _log("info", event, **fields)


def warning(event: str, **fields: Any) -> None:
    _log("warning", event, **fields)


def error(event: str, **fields: Any) -> None:
    _log("error", event, **fields)


def exception(event: str, **fields: Any) -> None:
    """Log an error with the current exception's traceback."""
    _log("error", event, exc_info=True, **fields)
