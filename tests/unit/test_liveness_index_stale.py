"""`zag ps` judging a session whose index row missed its heartbeats (the index could not be written: a full
disk): its supervisor runs (pid and start time match) and beats on in its log's modification time, so it
is shown live with its index stale, not dead; a supervisor gone, or a log untouched too, is dead."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from zag import paths
from zag.cli.ps import state_cell
from zag.wrapper import liveness

SESSION = "0123456789abcdef0123456789abcdef"


def _row(pid: int, started: str | None, **fields: Any) -> dict[str, Any]:
    now = time.time()
    return {"session_id": SESSION, "state": "running", "supervisor_pid": pid, "supervisor_started": started,
            "hostname": liveness.hostname(), "heartbeat_secs": 0.2, "started_at": now - 60,
            "last_heartbeat": now - 30, **fields}


@pytest.fixture
def log(zag_home: Path) -> Path:
    path = paths.session_log(SESSION)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}\n")
    return path


def test_a_live_supervisor_whose_log_was_touched_is_running_with_its_index_stale(log: Path) -> None:
    row = _row(os.getpid(), liveness.process_start_time(os.getpid()))
    assert liveness.effective_state(row) == "running"
    assert liveness.index_stale(row)
    assert state_cell({**row, "index_stale": True}, time.time())[0] == "running (index stale)"


def test_a_live_supervisor_whose_log_is_old_too_is_dead(log: Path) -> None:
    old = time.time() - 30
    os.utime(log, (old, old))
    assert liveness.effective_state(_row(os.getpid(), liveness.process_start_time(os.getpid()))) == "dead"


def test_a_gone_supervisor_is_dead_whatever_its_log_says(log: Path) -> None:
    assert liveness.effective_state(_row(os.getpid(), "another incarnation")) == "dead"
