"""The live follower's backfill cursor: stored while the session log holds every event, forgotten while it
misses some (a full disk), so `zag backfill` fills the gap instead of taking the records for imported."""

from __future__ import annotations

import time
from typing import Any

from zag.logs.index import Index
from zag.providers.base import LaunchContext, LaunchPlan
from zag.wrapper.guard import ProviderGuard
from zag.wrapper.live import LiveFollower
from zag.wrapper.registry import Registry

SESSION = "11111111-2222-4333-8444-555555555555"


class OneRecordAtATime:
    """A live session that yields one record per poll; its cursor counts them."""

    provider_session_id = "prov-1"
    source_key = "alpha"

    def __init__(self) -> None:
        self.read = 0

    def poll(self) -> list[Any]:
        self.read += 1
        return [{"type": "user_message", "content": f"record {self.read}"}]

    def hint(self, signal: Any) -> None:
        pass

    def cursor(self) -> Any:
        return {"records": self.read}

    def close(self) -> None:
        pass


class Provider:
    name = "testprov"

    def __init__(self) -> None:
        self.live = OneRecordAtATime()

    def open_live(self, plan: LaunchPlan, ctx: LaunchContext) -> OneRecordAtATime:
        return self.live


def _cursor() -> Any:
    with Index() as index:
        found = index.backfill_cursor("testprov", "alpha")
    return found


def _follow(log_complete: list[bool]) -> None:
    registry = Registry(SESSION, {"provider": "testprov", "state": "running", "started_at": time.time(),
                                  "argv": "[]", "cwd": "/"})
    follower = LiveFollower(Provider(), ProviderGuard("testprov", SESSION), registry,  # type: ignore[arg-type]
                            lambda item, source: None, lambda provider_session_id: None,
                            log_complete=lambda: log_complete[0])
    ctx = LaunchContext(cwd="/", env={}, interactive=False, started_at=time.time(), zag_session_id=SESSION)
    assert follower.open(LaunchPlan(args=[]), ctx)
    follower.poll_once()
    follower.poll_once()
    follower.finish()
    assert registry.close()


def test_the_cursor_is_stored_while_the_log_is_whole() -> None:
    _follow([True])
    assert _cursor() == (SESSION, {"records": 2})


def test_the_cursor_is_forgotten_while_the_log_misses_events() -> None:
    with Index() as index:  # a cursor stored earlier, when the log was still whole
        index.save_backfill_cursor("testprov", "alpha", SESSION, {"records": 1}, None)
    _follow([False])
    assert _cursor() is None


def test_another_sessions_cursor_is_not_forgotten() -> None:
    with Index() as index:
        index.save_backfill_cursor("testprov", "alpha", "other-session", {"records": 7}, None)
        index.forget_backfill_cursor("testprov", "alpha", SESSION)
    assert _cursor() == ("other-session", {"records": 7})
