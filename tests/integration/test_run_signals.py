"""Signals: what is sent to zag reaches the agent exactly once; when zag dies, the agent dies too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from tests.integration.helpers import Agent, kill_zag, process_gone, read_jsonl, wait_until, write_config

# Counts the signals named in argv (SIG... words); one second after the first one it prints the counts and exits 0.
COUNTING_AGENT = f"""#!{sys.executable}
import signal, sys, time
counts, first = {{}}, []
def handler(signum, frame):
    name = signal.Signals(signum).name
    counts[name] = counts.get(name, 0) + 1
    first.append(time.monotonic())
for name in [arg for arg in sys.argv[1:] if arg.startswith("SIG")]:  # a provider may add flags
    signal.signal(getattr(signal, name), handler)
print("ready", flush=True)
deadline = time.monotonic() + 30
while time.monotonic() < deadline and not (first and time.monotonic() - first[0] > 1.0):
    time.sleep(0.01)
print("counts " + " ".join(f"{{k}}={{v}}" for k, v in sorted(counts.items())), flush=True)
"""


@pytest.fixture
def counting(agent: Agent) -> dict[str, str]:
    path = agent.root / "counting-agent"
    path.write_text(COUNTING_AGENT)
    path.chmod(0o755)
    return agent.env(ZAG_CLAUDE_BIN=str(path))


def _start_in_own_session(agent: Agent, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    # a session of its own: no terminal, so nothing but the test signals it
    return agent.start("run", "claude", *args, env=env, start_new_session=True)


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1"])
def test_signal_sent_to_zag_reaches_the_agent_once(agent: Agent, counting: dict[str, str], name: str) -> None:
    proc = _start_in_own_session(agent, counting, name)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    os.kill(proc.pid, getattr(signal, name))
    out, _ = proc.communicate(timeout=30)
    assert out == f"counts {name}=1\n".encode()
    assert proc.returncode == 0


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_agent_killed_through_zag_gives_128_plus_n(agent: Agent, name: str) -> None:
    agent.script([{"trap": [name]}, {"out": "ready\n"}, {"wait_signal": 30}])
    proc = _start_in_own_session(agent, agent.env())
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    os.kill(proc.pid, getattr(signal, name))
    out, _ = proc.communicate(timeout=30)
    number = getattr(signal, name)
    assert out == f"got {name}\n".encode()
    assert proc.returncode == 128 + number
    assert agent.only_session()[-1]["exit_code"] == 128 + number


def test_default_sigterm_kills_agent_and_zag_reports_it(agent: Agent) -> None:
    agent.script([{"out": "ready\n"}, {"wait_signal": 30}])
    proc = _start_in_own_session(agent, agent.env())
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    ended = agent.only_session()[-1]
    assert ended["type"] == "session_ended" and ended["signal"] == "SIGTERM"


def test_agent_that_ignores_sigterm_keeps_running(agent: Agent) -> None:
    release = agent.root / "release"
    agent.script([{"ignore": ["SIGTERM"]}, {"out": "ready\n"}, {"wait_file": str(release), "timeout": 30},
                  {"out": "finished\n"}, {"exit": 5}])
    proc = _start_in_own_session(agent, agent.env())
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    pid = agent.wait_for_invocation()["pid"]
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGTERM)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=0.5)  # the agent ignores it, so zag keeps supervising
    assert not process_gone(pid)
    release.touch()
    out, _ = proc.communicate(timeout=30)
    assert out == b"finished\n"
    assert proc.returncode == 5


def test_terminal_ctrl_c_reaches_a_headless_agent_once(agent: Agent, counting: dict[str, str]) -> None:
    """stdin on a terminal, stdout to a file: Ctrl-C signals the foreground group (zag and the agent);
    zag must not forward a second SIGINT."""
    out = agent.root / "out.txt"
    command = f"exec {' '.join(agent.command('run', 'claude', 'SIGINT'))} > {out}"
    term = pexpect.spawn("/bin/sh", ["-c", command], env=counting, cwd=str(agent.root), timeout=30)
    try:
        wait_until(lambda: out.exists() and b"ready" in out.read_bytes(), 20, message="agent ready")
        term.sendintr()
        term.expect(pexpect.EOF)
    finally:
        term.close(force=True)
    assert out.read_bytes() == b"ready\ncounts SIGINT=1\n"
    assert term.exitstatus == 0


def test_zag_killed_leaves_no_agent_behind_and_reads_as_dead(agent: Agent, zag_home: Path) -> None:
    write_config(zag_home, "heartbeat_secs = 0.2\n")
    agent.script([{"out": "ready\n"}, {"wait_signal": 60}])
    proc = _start_in_own_session(agent, agent.env())
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    child_pid = agent.wait_for_invocation()["pid"]
    [log_path] = wait_until(agent.session_log_paths, 10, message="session log")
    session_id = log_path.stem
    wait_until(lambda: (agent.index_row(session_id) or {}).get("last_heartbeat", 0) > 0, 10, message="index row")
    wait_until(lambda: any(e["type"] == "heartbeat" for e in read_jsonl(log_path)), 10, message="a heartbeat")
    kill_zag(proc, child_pid, timeout=5)

    events = read_jsonl(log_path)  # parses: every complete line is valid JSON
    assert events[0]["type"] == "session_started"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert all(e["type"] != "session_ended" for e in events)

    from zag.wrapper.liveness import effective_state

    row = agent.index_row(session_id)
    assert row is not None and row["state"] == "running"
    assert effective_state(row) == "dead"

    if (Path(__file__).resolve().parents[2] / "zag" / "cli" / "ps.py").exists():
        listed = subprocess.run(agent.command("ps", "--all", "--json"), env=agent.env(), capture_output=True,
                                timeout=60)
        assert listed.returncode == 0, listed.stderr
        [shown] = [s for s in json.loads(listed.stdout) if s["session_id"] == session_id]
        assert shown["state"] == "dead"
