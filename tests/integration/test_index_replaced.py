"""The index replaced under running supervisors (`zag reindex` moving a damaged index aside, a user
deleting it, then `zag reindex`): what the user does through the new index reaches them."""

from __future__ import annotations

import time
from pathlib import Path

from tests.integration import limits_rig as L

LONG_WAIT = L.CONFIG.replace("jitter_secs = 0.5", "jitter_secs = 0")


def test_usage_cancel_through_a_rebuilt_index_stops_the_wait(tmp_path: Path, zag_home: Path) -> None:
    """The supervisor reads the resume's status from the index while it waits: after the index was
    rebuilt, `zag usage cancel` writes `cancelled` into the new one, and the wait stops (it went on
    reading the old file and waited for the reset, an hour here)."""
    rig = L.Rig(tmp_path, zag_home, "claude", config=LONG_WAIT)
    rig.script(L.claude_headless_hit(rig, time.time() + 3600), L.claude_headless_resumed(rig))
    proc = rig.start("run", "claude", *L.CLAUDE_HEADLESS_ARGS)
    try:
        rig.waiting_row(proc)
        for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm"):
            if (zag_home / name).exists():
                (zag_home / name).rename(tmp_path / name)
        rebuilt = rig.run("reindex")
        assert rebuilt.returncode == 0, rebuilt.stderr.decode()
        [listed] = rig.zag_json("usage", "list", "--json")
        cancel = rig.run("usage", "cancel", listed["incident_id"])
        assert cancel.returncode == 0, cancel.stderr.decode()
        proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 1  # the agent's last exit code, as after any cancel
    assert rig.log()[-1]["cancelled"] is True
    [row] = rig.zag_json("ps", "--all", "--json")
    assert row["state"] == "exited"
