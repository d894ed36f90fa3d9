"""zag's own diagnostics: structlog JSON lines in `$ZAG_HOME/zag.log`, never in session logs.

structlog is imported on first use (it costs ~100 ms), so commands that log nothing start fast.
Logging never raises: a diagnostics failure must not disturb the agent zag supervises. Lines that could
not be written (a full disk) stay buffered and go out with the next line, or at exit.
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import Any

_lock = threading.Lock()
_logger: Any = None


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
                _logger = structlog.wrap_logger(
                    structlog.WriteLogger(handle),
                    processors=[
                        structlog.processors.add_log_level,
                        structlog.processors.TimeStamper(fmt="iso", utc=True),
                        structlog.processors.format_exc_info,
                        _redacted(structlog.processors.JSONRenderer()),
                    ],
                ).bind(pid=os.getpid())
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
        getattr(_get_logger(), level)(event, **fields)
    except Exception:  # noqa: BLE001 - diagnostics must never take zag (or the agent) down
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
