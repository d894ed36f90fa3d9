"""Upgrading zag: the current zag on a ZAG_HOME that an older zag wrote (its index schema, its logs, without
the events and fields added since). The old formats are made by hand from what today's zag writes, so
these tests need no old checkout."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.integration import limits_rig as L
from tests.integration.helpers import kill_quietly, process_gone, wait_until


def _killed_while_waiting(rig: L.Rig) -> dict[str, Any]:
    """`zag run claude` SIGKILLed once `zag ps` shows its session waiting on a usage limit."""
    proc = rig.start("run", "claude", *L.CLAUDE_HEADLESS_ARGS)
    try:
        waiting = rig.waiting_row(proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        kill_quietly(proc.pid)
        proc.communicate(timeout=30)
    wait_until(lambda: process_gone(proc.pid), 10, message="zag gone")
    return waiting


def _as_before_agent_notes(log: Path) -> None:
    """The log as a zag from before the `agent_exited`/`agent_started` notes (0a409af) wrote it."""
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    log.write_text("".join(line for line in lines if '"agent_exited"' not in line and '"agent_started"' not in line),
                   encoding="utf-8")


def _reindexed(rig: L.Rig) -> None:
    for path in rig.agent.zag_home.glob("index.sqlite*"):
        path.unlink()
    result = rig.run("reindex")
    assert result.returncode == 0, result.stderr.decode()


def test_a_cancelled_wait_of_a_log_from_before_agent_exited_notes_is_no_success(tmp_path: Path, zag_home: Path) -> None:
    """An older zag's session waiting on a usage limit, its supervisor gone, the index rebuilt from a log
    that has no exit code for the agent: `zag resume` cancelled with `zag usage cancel` ended 0 with
    `success: true`, as if the agent had done its work. Its code is unknown: it ends as one does (1)."""
    rig = L.Rig(tmp_path, zag_home, "claude")
    rig.script(L.claude_headless_hit(rig, time.time() + 600))
    waiting = _killed_while_waiting(rig)
    [log] = rig.agent.session_log_paths()
    _as_before_agent_notes(log)
    _reindexed(rig)
    [row] = rig.zag_json("ps", "--json")
    assert (row["state"], row["exit_code"]) == ("dead", None)
    proc = rig.start("resume", waiting["session_id"][:8])
    try:
        rig.waiting_row(proc)
        [pending] = rig.zag_json("usage", "list", "--json")
        assert rig.run("usage", "cancel", pending["incident_id"][:8]).returncode == 0
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        kill_quietly(proc.pid)
        raise
    assert proc.returncode == 1, err.decode()
    ended = L.of_type(rig.log(), "session_ended")
    assert [(e["exit_code"], e["success"], e["cancelled"]) for e in ended] == [(1, False, True)]
    assert len(rig.invocations()) == 1
