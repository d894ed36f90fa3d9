"""This session's row in the index (the live registry), written by a background thread.

A busy, locked or broken index must never hold up the agent, so the supervisor only records what the row
should say (`update`, `save_cursor`) and returns at once; the thread writes it, coalescing updates that pile
up while the index is unavailable and retrying with back-off. Each write sets only the columns that changed
(the index's rule against lost updates); the first one inserts the whole row, and so does a later one if
the row vanished (e.g. `zag reindex` ran meanwhile). An index file replaced or removed at its path
(`zag reindex` moving a damaged one aside) is noticed before each write, and the new one written.

Once everything is written the connection is left open, not closed: closing the last connection to the
index checkpoints its WAL (two fsyncs) and deletes it, and the next writer then creates it again (two
more). Every write is committed already, so nothing waits on that: `zag run` leaves with `os._exit` right
after, and whoever closes the index last (or the next automatic checkpoint) folds the WAL in.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from zag.wrapper import threads

INDEX_BUSY_TIMEOUT_SECS = 1.0
RETRY_MAX_SECS = 2.0
CLOSE_TIMEOUT_SECS = 3.0
FORGET: Any = object()  # a cursor value: drop the recorded cursor (`forget_cursor`)


class Registry:
    """Owner of one session's index row and of the backfill cursor of its live provider session."""

    def __init__(self, session_id: str, row: dict[str, Any]) -> None:
        self.session_id = session_id
        self._row = {"session_id": session_id, **row}
        self._pending: dict[str, Any] = dict(self._row)
        self._cursors: dict[tuple[str, str], Any] = {}
        self._inserted = False
        self._closing = False
        self._in_flight = False
        self.last_error: str | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="zag-registry", daemon=True)
        self._started = threads.start(self._thread)  # else the row stays as it was (`zag reindex` mends it)
        if not self._started:
            self.last_error = "the system refused zag a thread to write it"

    def update(self, **fields: Any) -> None:
        """Set these columns of the row (soon, in the background)."""
        fields.setdefault("updated_at", time.time())
        with self._cond:
            self._row.update(fields)
            self._pending.update(fields)
            self._cond.notify()

    def heartbeat(self, last_seq: int, at: float | None = None) -> None:
        at = at or time.time()
        self.update(last_heartbeat=at, last_seq=last_seq, updated_at=at)

    def save_cursor(self, provider: str, source_key: str, cursor: Any, *, log_size: int | None = None) -> None:
        """Record where the live reader of a provider session stopped, so backfill skips what zag has;
        `log_size`: the session log's size once it held every record up to that cursor."""
        self._set_cursor(provider, source_key, (cursor, log_size))

    def forget_cursor(self, provider: str, source_key: str) -> None:
        """Drop the recorded cursor of a provider session (backfill then goes by the log's last record)."""
        self._set_cursor(provider, source_key, FORGET)

    def _set_cursor(self, provider: str, source_key: str, value: Any) -> None:
        with self._cond:
            self._cursors[(provider, source_key)] = value
            self._cond.notify()

    def close(self, timeout: float = CLOSE_TIMEOUT_SECS) -> bool:
        """Write what is pending (waiting at most `timeout`); True when everything reached the index."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._started:
            self._thread.join(timeout)
        with self._cond:
            return not (self._pending or self._cursors or self._in_flight)

    # -- the writer thread -------------------------------------------------------------------------
    def _loop(self) -> None:
        index = None
        failures = 0
        while True:
            with self._cond:
                while not (self._pending or self._cursors or self._closing):
                    self._cond.wait()
                if not (self._pending or self._cursors):
                    break
                fields, self._pending = self._pending, {}
                cursors, self._cursors = self._cursors, {}
                row = dict(self._row)
                self._in_flight = True
            try:
                if index is not None and index.replaced():
                    _close_quietly(index)
                    index = None
                if index is None:
                    from zag.logs.index import Index

                    index = Index(timeout=INDEX_BUSY_TIMEOUT_SECS)
                self._write(index, fields, row, cursors)
                failures = 0
            except Exception as exc:  # noqa: BLE001 - sqlite3.Error, OSError, a corrupt file: retry later
                failures += 1
                self._restore(fields, cursors)
                self._report(exc, failures)
                if index is not None:
                    _close_quietly(index)
                    index = None
                with self._cond:
                    self._in_flight = False
                    self._cond.wait(min(0.1 * 2 ** failures, RETRY_MAX_SECS))
                continue
            with self._cond:
                self._in_flight = False
        if index is not None:
            _LEFT_OPEN.append(index)  # see the module docstring

    def _write(self, index: Any, fields: dict[str, Any], row: dict[str, Any],
               cursors: dict[tuple[str, str], Any]) -> None:
        if not self._inserted:
            index.add_session(**row)
            self._inserted = True
        elif fields and not index.update_session(self.session_id, **fields):
            index.add_session(**row)
        for (provider, source_key), value in cursors.items():
            if value is FORGET:
                index.forget_backfill_cursor(provider, source_key, self.session_id)
            else:
                cursor, log_size = value
                index.save_backfill_cursor(provider, source_key, self.session_id, cursor, None,
                                           log_size=log_size)

    def _restore(self, fields: dict[str, Any], cursors: dict[tuple[str, str], Any]) -> None:
        with self._cond:
            self._pending = {**fields, **self._pending}
            self._cursors = {**cursors, **self._cursors}

    def _report(self, exc: Exception, failures: int) -> None:
        message = f"{type(exc).__name__}: {exc}"
        if failures == 1 or message != self.last_error or failures % 20 == 0:
            from zag import diag

            diag.warning("index_write_failed", session_id=self.session_id, error=message, attempt=failures)
        self.last_error = message


_LEFT_OPEN: list[Any] = []  # finished registries' connections, closed when the process ends


def _close_quietly(index: Any) -> None:
    try:
        index.close()
    except Exception:  # noqa: BLE001
        pass
