"""Calls into a provider adapter that can never hurt the agent: any exception becomes a diagnostic.

Provider modules parse formats zag does not control, so the supervisor treats every exception they raise
(NotImplementedError from an unfinished adapter included) as a provider fault: it is written to zag's
diagnostics, the call's default is used, and the agent keeps running. An unexpected fault is also noted
once per call site as a `provider_status` event, so a reader of the session log knows why the transcript
may have a gap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from zag.logs import events

T = TypeVar("T")
_REPORTS_PER_CALL = 3


class ProviderGuard:
    """Runs provider calls, counting and reporting their faults."""

    def __init__(self, provider_name: str, session_id: str) -> None:
        self.provider_name = provider_name
        self.session_id = session_id
        self.faults: dict[str, int] = {}
        self._log_event: Callable[[dict[str, Any]], None] | None = None
        self._unlogged: list[dict[str, Any]] = []  # status events from before the session log existed
        self._deferred: list[dict[str, Any]] | None = []  # diagnostics held back until `release()`
        self._lock = threading.Lock()

    def attach_log(self, log_event: Callable[[dict[str, Any]], None]) -> None:
        """From now on note faults in the session log (those noted before are written now)."""
        with self._lock:
            self._log_event = log_event
            unlogged, self._unlogged = self._unlogged, []
        for body in unlogged:
            log_event(body)

    @property
    def holding_diagnostics(self) -> bool:
        with self._lock:
            return bool(self._deferred)

    def release(self) -> None:
        """Write the diagnostics held back so far, and from now on write them at once.

        Faults before the agent starts are held back: writing diagnostics imports structlog (~0.1 s),
        which must not delay the agent's start."""
        with self._lock:
            deferred, self._deferred = self._deferred, None
        for record in deferred or ():
            self._write_diag(record)

    def method(self, what: str, target: Any, name: str, *args: Any, default: T) -> T:
        """`target.name(*args)` (looking the method up may fail too), or `default` if anything raises."""
        try:
            return getattr(target, name)(*args)
        except Exception as exc:  # noqa: BLE001 - see module docstring
            self.fault(what, exc)
            return default

    def attribute(self, what: str, target: Any, name: str, *, default: Any = None) -> Any:
        """`target.name`, or `default` if reading it raises."""
        try:
            return getattr(target, name, default)
        except Exception as exc:  # noqa: BLE001
            self.fault(what, exc)
            return default

    def fault(self, what: str, exc: BaseException) -> None:
        count = self.faults.get(what, 0) + 1
        self.faults[what] = count
        if count <= _REPORTS_PER_CALL or count % 1000 == 0:
            record = {"provider": self.provider_name, "session_id": self.session_id, "call": what,
                      "count": count, "error": f"{type(exc).__name__}: {exc}", "exc_info": exc}
            with self._lock:
                if self._deferred is not None:
                    self._deferred.append(record)
                    record = None
            if record is not None:
                self._write_diag(record)
        if count == 1 and not isinstance(exc, NotImplementedError):
            body = events.provider_status(
                f"zag's {self.provider_name} adapter failed in {what}; see zag's diagnostics",
                {"zag_fault": what, "error": f"{type(exc).__name__}: {exc}"},
            )
            with self._lock:
                log_event = self._log_event
                if log_event is None:
                    self._unlogged.append(body)
            if log_event is not None:
                try:
                    log_event(body)
                except Exception:  # noqa: BLE001
                    pass

    @staticmethod
    def _write_diag(record: dict[str, Any]) -> None:
        from zag import diag

        diag.error("provider_fault", **record)
