"""The read side on the files a real `zag run` leaves: a copied ZAG_HOME reads its own logs, and the
index's files are private."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

from tests.integration.helpers import Agent, wait_until


def test_a_copied_home_reads_its_own_logs(agent: Agent, tmp_path: Path) -> None:
    agent.script([{"out": "hi\n"}, {"exit": 0}])
    assert agent.run("run", "claude", "-p", "x").returncode == 0
    [log] = agent.session_log_paths()
    session_id = log.stem
    copy = tmp_path / "elsewhere"
    shutil.copytree(agent.zag_home, copy)
    with open(log, "ab") as handle:  # the old home's log moves on; the copy must not show it
        handle.write(json.dumps({"seq": 999, "type": "user_message", "content": "old home only"}).encode() + b"\n")
    copied_log = (copy / "sessions" / log.name).read_bytes()
    env = agent.env(ZAG_HOME=str(copy))
    for command in (["events", session_id, "--json"], ["listen", session_id, "--json"]):
        done = agent.run(*command, env=env)
        assert done.returncode == 0, done.stderr
        assert done.stdout == copied_log, command
    shown = agent.run("events", session_id[:8], env=env)
    assert shown.returncode == 0 and b"old home only" not in shown.stdout


def test_index_files_are_private_while_a_session_runs(agent: Agent) -> None:
    release = agent.root / "release"
    agent.script([{"out": "ready\n"}, {"wait_file": str(release), "timeout": 30}, {"exit": 0}])
    proc = agent.start("run", "claude")
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        files = {name: agent.zag_home / f"index.sqlite{name}" for name in ("", "-wal", "-shm")}
        # the supervisor holds the index open while the agent runs (it registers in the background)
        wait_until(lambda: all(path.exists() for path in files.values()), 15, message="index, -wal and -shm")
        assert {name: stat.S_IMODE(path.stat().st_mode) for name, path in files.items()} == {
            "": 0o600, "-wal": 0o600, "-shm": 0o600}
    finally:
        release.touch()
        proc.wait(timeout=60)
    assert proc.returncode == 0
