"""This session's scheduled resumes in the index (`resumes` table), as the usage-limit engine writes them.

One connection of its own (the registry thread owns the session row), opened on first use, with a short
busy timeout: a locked or broken index is reported in zag's diagnostics and never raises into the
engine, so waiting and resuming go on from memory (`zag reindex` rebuilds the table from the log).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from zag import states

if TYPE_CHECKING:
    from zag.logs.index import Index
    from zag.wrapper.incidents import Incident

BUSY_TIMEOUT_SECS = 2.0


class ResumeStore:
    def __init__(self, session_id: str, provider: str) -> None:
        self.session_id = session_id
        self.provider = provider
        self._index: Index | None = None
        self._lock = threading.Lock()
        self.last_error: str | None = None

    def add(self, incident: Incident) -> None:
        assert incident.resume_at is not None
        self._call("add_resume", incident_id=incident.incident_id, session_id=self.session_id,
                   provider=self.provider, provider_session_id=incident.provider_session_id,
                   scope=incident.scope, reset_at=incident.reset_at, resume_at=incident.resume_at,
                   fallback_used=int(incident.fallback_used), status=states.RESUME_PENDING,
                   attempts=incident.attempts, raw=incident.raw[:4000])

    def update(self, incident_id: str, *, only_from: Iterable[str] = states.RESUME_OPEN_STATES,
               **fields: Any) -> bool | None:
        """Set columns while the resume is open; False when it is not (cancelled meanwhile), None when
        the index could not be reached."""
        return self._call("update_resume_if", incident_id, tuple(only_from), **fields)

    def status(self, incident_id: str) -> str | None:
        """The stored status, or None (no row, or the index could not be read)."""
        row = self._call("get_resume", incident_id)
        return row.get("status") if isinstance(row, dict) else None

    def open_rows(self) -> list[dict[str, Any]]:
        """This session's open (pending or resuming) resumes."""
        rows = self._call("list_resumes", open_only=True, session_id=self.session_id)
        return rows if isinstance(rows, list) else []

    def close(self) -> None:
        with self._lock:
            self._drop_index()

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            try:
                if self._index is not None and self._index.replaced():  # `zag reindex` made a new one
                    self._drop_index()
                if self._index is None:
                    from zag.logs.index import Index

                    self._index = Index(timeout=BUSY_TIMEOUT_SECS)
                return getattr(self._index, method)(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - sqlite3.Error, OSError: the engine carries on from memory
                message = f"{type(exc).__name__}: {exc}"
                if message != self.last_error:
                    from zag import diag

                    diag.warning("resume_index_failed", session_id=self.session_id, call=method, error=message)
                self.last_error = message
                self._drop_index()
                return None

    def _drop_index(self) -> None:
        """Close the connection (the next call opens a new one); the caller holds the lock."""
        if self._index is not None:
            try:
                self._index.close()
            except Exception:  # noqa: BLE001
                pass
            self._index = None
