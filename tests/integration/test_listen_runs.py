"""`zag listen` and `zag ps` on real `zag run` sessions of the stand-in agent, in the situations an
unattended fleet of agents meets: a supervisor stopped (SIGSTOP, Ctrl-Z, a suspended machine) or killed
and not reaped yet, the index rebuilt under running sessions, a terminal resized while listening.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from tests.integration.helpers import Agent, kill_quietly, wait_until, write_config


def _sessions(agent: Agent) -> list[dict[str, Any]]:
    done = agent.run("ps", "--all", "--json", timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _settle(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    """Whether `proc` is still running after `seconds`."""
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return True
    return False


def test_listen_keeps_following_a_stopped_supervisor(agent: Agent, tmp_path: Path) -> None:
    """A supervisor stopped with SIGSTOP misses its heartbeats (`zag ps` shows it dead) but still runs:
    `zag listen` does not give up on it (nor tell the user to `zag resume`, which refuses it); once it
    continues, listen shows the rest and ends with the session."""
    write_config(agent.zag_home, "heartbeat_secs = 0.2\n")
    gate = tmp_path / "gate"
    agent.script([{"out": "working\n"}, {"wait_file": str(gate), "timeout": 60}, {"exit": 0}])
    run = agent.start("run", "claude", "-p", "x")
    listen = None
    supervisor = None
    try:
        [row] = wait_until(lambda: [r for r in _sessions(agent) if r["state"] == "running"], 30,
                           message="a running session")
        supervisor = row["supervisor_pid"]
        os.kill(supervisor, signal.SIGSTOP)
        wait_until(lambda: _sessions(agent)[0]["state"] == "dead", 30, message="zag ps showing it dead")
        listen = agent.start("listen", row["session_id"], "--json")
        assert _settle(listen, 2.5), listen.communicate()  # LIVENESS_SECS is 1 s: it was asked twice
        os.kill(supervisor, signal.SIGCONT)
        gate.touch()
        out, err = listen.communicate(timeout=30)
        assert listen.returncode == 0, err
        assert b"Traceback" not in err and b"zag resume" not in err
        assert err.count(b"still runs (stopped") == 1  # said once, while it was silent
        kinds = [json.loads(line)["type"] for line in out.splitlines()]
        assert kinds[0] == "session_started" and kinds[-1] == "session_ended"
        assert run.wait(timeout=30) == 0
    finally:
        if supervisor is not None:
            kill_quietly(supervisor, signal.SIGCONT)
        for proc in (listen, run):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)


def test_a_killed_supervisor_not_yet_reaped_is_dead_at_once(agent: Agent, tmp_path: Path) -> None:
    """A supervisor SIGKILLed under a parent that has not reaped it yet (a script, a stopped shell) is a
    zombie: gone, not silent. `zag ps` shows it dead at once and `zag listen` stops with exit 1, without
    waiting for three missed heartbeats (10 s each here) — nor forever, as for a silent supervisor."""
    gate = tmp_path / "gate"
    agent.script([{"out": "working\n"}, {"wait_file": str(gate), "timeout": 60}, {"exit": 0}])
    run = agent.start("run", "claude", "-p", "x")
    listen = None
    try:
        [row] = wait_until(lambda: [r for r in _sessions(agent) if r["state"] == "running"], 30,
                           message="a running session")
        assert row["supervisor_pid"] == run.pid
        listen = agent.start("listen", row["session_id"])
        wait_until(lambda: listen.stdout.readline(), 30, message="listen's first line")
        os.kill(run.pid, signal.SIGKILL)  # and not reaped (no wait) until the end of the test
        wait_until(lambda: _sessions(agent)[0]["state"] == "dead", 5, message="zag ps showing it dead")
        out, err = listen.communicate(timeout=8)
        assert listen.returncode == 1, err
        assert b"supervisor is gone (dead)" in err and b"Traceback" not in err
    finally:
        gate.touch()
        for proc in (listen, run):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)


def test_a_running_session_writes_to_the_index_that_replaced_its_own(agent: Agent, tmp_path: Path) -> None:
    """The index is lost while agents run (moved aside as `zag reindex` does with a damaged one, or
    deleted) and `zag reindex` rebuilds it: the running supervisor goes on beating into the new index, so
    `zag ps` keeps showing it running and finally exited (it kept writing to the old file: dead forever)."""
    write_config(agent.zag_home, "heartbeat_secs = 0.2\n")
    gate = tmp_path / "gate"
    agent.script([{"out": "working\n"}, {"wait_file": str(gate), "timeout": 60}, {"exit": 0}])
    run = agent.start("run", "claude", "-p", "x")
    try:
        wait_until(lambda: [r for r in _sessions(agent) if r["state"] == "running"], 30, message="a running session")
        index = agent.zag_home / "index.sqlite"
        for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm"):
            if (agent.zag_home / name).exists():
                (agent.zag_home / name).rename(tmp_path / name)
        done = agent.run("reindex", timeout=60)
        assert done.returncode == 0, done.stderr
        rebuilt = index.stat().st_ino
        assert _settle(run, 2.0)  # > 3 heartbeats + 1 s: dead if none arrived
        [row] = _sessions(agent)
        assert row["state"] == "running" and index.stat().st_ino == rebuilt
        gate.touch()
        assert run.wait(timeout=30) == 0
        [row] = _sessions(agent)
        assert (row["state"], row["exit_code"]) == ("exited", 0)
    finally:
        gate.touch()
        if run.poll() is None:
            run.kill()
            run.wait(timeout=30)


def test_lines_fit_the_terminal_after_a_resize(tmp_path: Path, zag_home: Path) -> None:
    """`zag listen` in a terminal that is made narrower while it follows (a tmux pane split): the lines
    after the resize fit the new width (they kept the width listen started with, and wrapped)."""
    import re

    import pexpect

    from tests.integration import limits_rig as L

    rig = L.Rig(tmp_path, zag_home, "claude")
    gate = tmp_path / "gate"
    rig.script([{"append": L.claude_transcript(rig), "lines": [L.claude_user(rig, "first " + "a" * 300)]},
                {"wait_file": str(gate), "timeout": 60},
                {"append": L.claude_transcript(rig), "lines": [L.claude_user(rig, "second " + "b" * 300)]},
                {"exit": 0}])
    run = rig.start("run", "claude", "-p", "x")
    term = None
    try:
        row = wait_until(lambda: rig.zag_json("sessions", "--json"), 30, message="the session")[0]
        command = rig.agent.command("listen", row["session_id"])
        term = pexpect.spawn(command[0], command[1:], env={**rig.env(), "NO_COLOR": "1"}, dimensions=(40, 200),
                             timeout=30)
        term.expect("first a+")
        term.setwinsize(40, 60)
        gate.touch()
        term.expect(pexpect.EOF)
        term.close()
        assert term.exitstatus == 0
        lines = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", term.before).decode().splitlines()
        [second] = [line for line in lines if "second" in line]
        assert len(second) <= 60 and second.endswith("…"), second
    finally:
        gate.touch()
        if term is not None and term.isalive():
            term.terminate(force=True)
        if run.poll() is None:
            run.kill()
        run.wait(timeout=30)
