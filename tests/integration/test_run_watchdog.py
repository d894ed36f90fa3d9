"""When zag dies, nothing of the agent lives on — its grandchildren included (npm launchers, relaunched
node processes, daemons that left the process group) — headless and in a PTY; the shell's pipeline
partners in zag's process group are left alone; and on a normal end, or when zag dies while no child
runs (waiting for a usage-limit reset), what the agent left behind is not touched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest

from tests.integration import limits_rig as L
from tests.integration.helpers import Agent, kill_quietly, process_gone, wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the watchdog needs /proc")


def _pid(path: Path) -> int:
    return int(wait_until(lambda: path.exists() and path.read_text().strip(), 15, message=f"{path.name}"))


def _watchdogs(zag_home: Path) -> list[int]:
    """Live zag-watchdog processes of this test (they carry its ZAG_HOME, as zag does)."""
    needle = f"ZAG_HOME={zag_home}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or process_gone(int(name)):
            continue
        try:
            comm = Path(f"/proc/{name}/comm").read_text().strip()
            environ = Path(f"/proc/{name}/environ").read_bytes()
        except OSError:
            continue
        if comm == "zag-watchdog" and needle in environ.split(b"\0"):
            found.append(int(name))
    return found


def _grandchildren(agent: Agent) -> list[dict[str, object]]:
    return [{"spawn_sleeper": 60, "pidfile": str(agent.root / "sleeper.pid")},
            {"spawn_sleeper": 60, "pidfile": str(agent.root / "daemon.pid"), "setsid": True}]


def test_killed_headless_zag_takes_the_agents_tree_but_not_its_pipeline_partner(agent: Agent) -> None:
    agent.script([*_grandchildren(agent), {"out": "ready\n"}, {"wait_signal": 60}])
    partner_file = agent.root / "partner.pid"
    # like `sleep 60 & zag run claude` in a script: the partner shares zag's process group
    proc = subprocess.Popen(["sh", "-c", f'sleep 60 & echo $! > "{partner_file}"; exec "$@"', "sh",
                             *agent.command("run", "claude")], env=agent.env(), cwd=agent.root,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    pids = []
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        partner = _pid(partner_file)
        pids = [agent.wait_for_invocation()["pid"], _pid(agent.root / "sleeper.pid"), _pid(agent.root / "daemon.pid")]
        assert os.getpgid(partner) == os.getpgid(proc.pid) == os.getpgid(pids[0])
        proc.kill()
        proc.wait(timeout=10)
        for pid in pids:
            wait_until(lambda pid=pid: process_gone(pid), 10, message=f"agent process {pid} gone with zag")
        wait_until(lambda: not _watchdogs(agent.zag_home), 10, message="the watchdog done")
        assert not process_gone(partner)
    finally:
        for pid in pids:
            kill_quietly(pid)
        if partner_file.exists():
            kill_quietly(int(partner_file.read_text()))


def test_killed_interactive_zag_takes_a_daemonised_grandchild(agent: Agent) -> None:
    agent.script([*_grandchildren(agent), {"out": "ready\n"}, {"wait_signal": 60}])
    command = agent.command("run", "claude")
    term = pexpect.spawn(command[0], command[1:], env=agent.env(), cwd=str(agent.root), timeout=30)
    pids = []
    try:
        term.expect("ready")
        pids = [agent.wait_for_invocation()["pid"], _pid(agent.root / "sleeper.pid"), _pid(agent.root / "daemon.pid")]
        os.kill(term.pid, signal.SIGKILL)
        for pid in pids:
            wait_until(lambda pid=pid: process_gone(pid), 10, message=f"agent process {pid} gone with zag")
    finally:
        term.close(force=True)
        for pid in pids:
            kill_quietly(pid)


def test_a_normal_end_leaves_what_the_agent_detached(agent: Agent) -> None:
    agent.script([*_grandchildren(agent)[1:], {"out": "bye\n"}, {"exit": 0}])
    daemon = 0
    try:
        result = agent.run("run", "claude")
        assert result.returncode == 0 and result.stdout == b"bye\n", result.stderr
        daemon = _pid(agent.root / "daemon.pid")
        assert _watchdogs(agent.zag_home) == []  # zag reaped its watchdog before it exited
        assert not process_gone(daemon)
    finally:
        if daemon:
            kill_quietly(daemon)


def test_zag_killed_while_waiting_for_a_reset_leaves_the_exited_agents_leftovers(
        tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "claude")
    pidfile = rig.cwd / "daemon.pid"
    rig.script([{"spawn_sleeper": 60, "pidfile": str(pidfile), "setsid": True},
                *L.claude_headless_hit(rig, time.time() + 300)])
    proc = rig.start("run", "claude", *L.CLAUDE_HEADLESS_ARGS)
    daemon = 0
    try:
        rig.waiting_row(proc)
        daemon = _pid(pidfile)
        [dog] = _watchdogs(zag_home)
        proc.kill()
        proc.wait(timeout=10)
        wait_until(lambda: process_gone(dog), 10, message="the watchdog done")
        assert not process_gone(daemon)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if daemon:
            kill_quietly(daemon)
