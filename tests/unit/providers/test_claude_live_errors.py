"""The claude live session when reading fails at every poll (a config folder zag may not read: `sudo -u`
keeping HOME=/root): one warning, not one per poll."""

from __future__ import annotations

import errno
import time
from pathlib import Path

import pytest

from zag.providers.base import LaunchContext, LaunchPlan
from zag.providers.claude import homes
from zag.providers.claude.live import ClaudeLiveSession


def _unreadable(*args: object, **kwargs: object) -> None:
    raise PermissionError(errno.EACCES, "Permission denied", "/root/.claude/projects/-work")


def test_an_error_at_every_poll_is_one_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(homes, "find_transcript", _unreadable)
    ctx = LaunchContext(cwd=str(tmp_path), env={"HOME": str(tmp_path)}, interactive=False,
                        started_at=time.time(), zag_session_id="z1")
    live = ClaudeLiveSession(LaunchPlan(args=[], provider_session_id="0f3c2a56-1b7e-4f00-9a1e-000000000001"), ctx)
    polls = [live.poll() for _ in range(50)]
    assert [len(items) for items in polls] == [1] + [0] * 49  # the follower's drain stops at an empty poll
    [warning] = polls[0]
    assert warning["type"] == "parse_warning" and "Permission denied" in warning["message"]
