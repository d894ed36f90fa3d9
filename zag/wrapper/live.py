"""Following the agent's own session files while it runs (the provider's `LiveSession`).

`run` is the follower's thread. It polls with an adaptive interval: `POLL_FAST_SECS` while records keep
coming, backing off to `POLL_IDLE_SECS` when idle (so a new record reaches the unified log within half a
second, at a few stat calls per second). After the child exits the session is drained (polled
until a poll finds nothing, at most `DRAIN_MAX_SECS`). The reader's cursor is stored in the index's backfill table at
most once a second after polls that consumed data, and at the end, so `zag backfill` never imports a
supervised session a second time (and forgotten while the session log is missing events, so that it
fills the gap). With the cursor goes the log's size once it held every record up to it: should the
cursor no longer be updated (a full disk under the index too), backfill tells the records this session
logged after it from those it still has to import.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zag.logs import events

if TYPE_CHECKING:
    from zag.providers.base import LaunchContext, LaunchPlan, LiveSession, Provider, SessionIdHint
    from zag.wrapper.guard import ProviderGuard
    from zag.wrapper.registry import Registry

POLL_FAST_SECS = 0.05
POLL_IDLE_SECS = 0.25
CURSOR_SAVE_INTERVAL_SECS = 1.0
DRAIN_MAX_SECS = 2.0

Route = Callable[["Item", str], None]


class LiveFollower:
    """One provider `LiveSession`, polled for the lifetime of one child."""

    def __init__(
        self,
        provider: Provider,
        guard: ProviderGuard,
        registry: Registry | None,
        route: Route,
        on_provider_session_id: Callable[[str], None],
        *,
        stop: threading.Event | None = None,
        log_complete: Callable[[], bool] = lambda: True,
        log_size: Callable[[], int | None] = lambda: None,
        log_room: Callable[[], bool] = lambda: True,
    ) -> None:
        self._provider = provider
        self._log_room = log_room  # False: the session log holds all it can in memory; read nothing more
        self._log_complete = log_complete
        self._log_size = log_size  # the session log's size now (None: unknown)
        self._guard = guard
        self._registry = registry
        self._route = route
        self._on_provider_session_id = on_provider_session_id
        self._live: LiveSession | None = None
        self._hints: deque[SessionIdHint] = deque()
        self._lock = threading.Lock()  # one poll at a time, whoever calls
        self._source_key: str | None = None
        self._cursor: Any = None
        self._cursor_unsaved = False
        self._cursor_saved_at = 0.0
        self._provider_session_id: str | None = None
        self._stop = stop or threading.Event()  # zag is wrapping up: cut the drain short

    @property
    def active(self) -> bool:
        return self._live is not None

    # -- steps (blocking; called from the follower's thread) --------------------------------------
    def open(self, plan: LaunchPlan, ctx: LaunchContext) -> bool:
        self._live = self._guard.method("open_live", self._provider, "open_live", plan, ctx, default=None)
        return self._live is not None

    def poll_once(self) -> int:
        """Hand pending hints to the live session, read what is new, route it. Returns the item count.
        Nothing is read while the session log has no room (a full disk): the agent's files keep the records,
        read once it has (or by `zag backfill`, the cursor staying before them)."""
        with self._lock:
            live = self._live
            if live is None or not self._log_room():
                return 0
            while self._hints:
                self._guard.method("LiveSession.hint", live, "hint", self._hints.popleft(), default=None)
            items = self._guard.method("LiveSession.poll", live, "poll", default=None) or []
            for item in items:
                self._route(item, events.SOURCE_PROVIDER_FILE)
            self._note_provider_session_id(live)
            self._note_cursor(live, consumed=bool(items))
            return len(items)

    def finish(self) -> None:
        """Store the final cursor and close the live session."""
        with self._lock:
            live, self._live = self._live, None
            if live is None:
                return
            self._note_provider_session_id(live)
            self._note_cursor(live, consumed=True, force=True)
            self._guard.method("LiveSession.close", live, "close", default=None)

    # -- from other threads -----------------------------------------------------------------------
    def hint(self, signal: SessionIdHint) -> None:
        """The agent printed its session id; passed on at the next poll."""
        self._hints.append(signal)

    # -- the follower's thread ------------------------------------------------------------------
    def run(self, plan: LaunchPlan, ctx: LaunchContext, child_done: threading.Event) -> None:
        """Open the live session, poll it until the child is done, drain it, store the cursor."""
        if not self.open(plan, ctx):
            return
        try:
            interval = POLL_FAST_SECS
            while not child_done.is_set():
                found = self.poll_once()
                interval = POLL_FAST_SECS if found else min(interval * 2, POLL_IDLE_SECS)
                child_done.wait(interval)
            self.drain()
        finally:
            self.finish()

    def drain(self) -> None:
        """After the child exited: poll until a poll finds nothing (the agent is gone, so what it wrote
        is all there), at most `DRAIN_MAX_SECS`."""
        deadline = time.monotonic() + DRAIN_MAX_SECS
        while self.poll_once() and time.monotonic() < deadline and not self._stop.is_set():
            pass

    # -- internals --------------------------------------------------------------------------------
    def _note_provider_session_id(self, live: LiveSession) -> None:
        value = self._guard.attribute("LiveSession.provider_session_id", live, "provider_session_id")
        if isinstance(value, str) and value and value != self._provider_session_id:
            self._provider_session_id = value
            self._on_provider_session_id(value)

    def _note_cursor(self, live: LiveSession, *, consumed: bool, force: bool = False) -> None:
        if self._registry is None:
            return
        if consumed:
            key = self._guard.attribute("LiveSession.source_key", live, "source_key")
            cursor = self._guard.method("LiveSession.cursor", live, "cursor", default=None)
            if not isinstance(key, str) or not key or not self._serialisable(cursor):
                return
            if self._source_key is not None and key != self._source_key and self._cursor_unsaved:
                self._save()  # the agent switched sessions: keep where the old one stopped
            self._source_key, self._cursor, self._cursor_unsaved = key, cursor, True
        if self._cursor_unsaved and (force or time.monotonic() - self._cursor_saved_at >= CURSOR_SAVE_INTERVAL_SECS):
            self._save()

    def _save(self) -> None:
        """Store the cursor; while the session log is missing events (a full disk), forget it instead: a
        cursor past what the log holds would tell backfill those records were imported. Without one,
        backfill continues the session after the last record its log holds. The log's size is taken
        after the records up to the cursor were routed (written at once), before any later one."""
        assert self._registry is not None and self._source_key is not None
        if self._log_complete():
            self._registry.save_cursor(self._provider.name, self._source_key, self._cursor,
                                       log_size=self._log_size())
        else:
            self._registry.forget_cursor(self._provider.name, self._source_key)
        self._cursor_unsaved = False
        self._cursor_saved_at = time.monotonic()

    def _serialisable(self, cursor: Any) -> bool:
        try:
            json.dumps(cursor)
        except (TypeError, ValueError) as exc:
            self._guard.fault("LiveSession.cursor", exc)
            return False
        return True


def file_size(path: Path) -> int | None:
    """A log's size in bytes, for `log_size` (None when it cannot be told)."""
    try:
        return os.stat(path).st_size
    except OSError:
        return None
