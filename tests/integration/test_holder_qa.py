"""QA of the session holder (zag/wrapper/holder.py) against what a user's agent does, compared with the
same agent run without zag in the same terminal."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from tests.integration.helpers import Agent, kill_quietly
from tests.integration.test_run_session_holder import RUSTYLINE_AGENT
from tests.integration.test_run_terminal_qa import _ctrl_z, _interactive, _job_ended_with, _python_program, _state, _zag


def _starter(tmp_path: Path, setup: str) -> list[str]:
    """`zag` (as `agent.command` runs it) with `setup` run first, in the same interpreter."""
    starter = tmp_path / "zag-starter"
    starter.write_text(f"import sys\n{setup}\nfrom zag.cli import main\nmain(sys.argv[1:])\n", encoding="utf-8")
    return [sys.executable, str(starter)]


def test_ctrl_z_in_an_orphaned_process_group_does_not_freeze_the_agent(agent: Agent, tmp_path: Path) -> None:
    """`zag run` as the command of a terminal's session (`script -c`, a tmux pane's command, `ssh -t host
    zag run …`): zag's process group is orphaned, and without zag the kernel drops the SIGTSTP of an agent
    that suspends itself: its Ctrl-Z does nothing. Through the holder the agent does stop; zag cannot stop
    (its own SIGTSTP is dropped), so it continues the agent at once rather than after waiting for a `fg`
    that nobody can type (here that wait is made long: the test fails on it rather than on a timing)."""
    editor = _python_program(tmp_path / "rustyline", RUSTYLINE_AGENT)
    zag = _starter(tmp_path, "from zag.wrapper import supervisor\nsupervisor.CONTINUE_WAIT_SECS = 60.0")
    command = " ".join(shlex.quote(part) for part in [*zag, "run", "claude"])
    term = pexpect.spawn("script", ["-qec", command, "/dev/null"], env=agent.env(ZAG_CLAUDE_BIN=str(editor)),
                         cwd=str(agent.root), dimensions=(24, 80), timeout=20)
    try:
        term.expect(r"editor ready (\d+)")
        agent_pid = int(term.match.group(1))
        term.sendcontrol("z")
        term.expect_exact("back", timeout=10)
        term.send("k")
        term.expect_exact("key k", timeout=10)
        term.send("q")
        term.expect(pexpect.EOF)
    finally:
        term.close(force=True)
        if "agent_pid" in locals():
            kill_quietly(agent_pid)
    assert term.exitstatus == 3


@pytest.mark.parametrize("name", ["SIGKILL", "SIGTERM", "SIGSEGV"])
def test_an_agent_killed_by_a_signal_is_logged_as_killed_by_it(agent: Agent, name: str) -> None:
    """The holder dies of the signal that killed the agent, SIGKILL included (which cannot be given a
    disposition): the session ends `killed by SIG…` with its `signal`, as when zag ran the agent itself."""
    agent.script([{"out": "ready\n"}, {"wait_signal": 30}])
    command = agent.command("run", "claude")
    term = pexpect.spawn(command[0], command[1:], env=agent.env(), cwd=str(agent.root), dimensions=(24, 80),
                         timeout=30)
    try:
        term.expect_exact("ready")
        agent_pid = int(agent.wait_for_invocation()["pid"])
        os.kill(agent_pid, getattr(signal, name))
        term.expect(pexpect.EOF)
    finally:
        term.close(force=True)
    ended = agent.only_session()[-1]
    assert ended["type"] == "session_ended"
    assert (ended.get("signal"), ended["error"]) == (name, f"killed by {name}")
    assert term.signalstatus is None and term.exitstatus == 128 + getattr(signal, name)


def test_zag_run_inside_zag_run_stops_and_continues_both_on_ctrl_z(agent: Agent, tmp_path: Path) -> None:
    """An agent that runs `zag run` (two holders, two PTYs): the innermost editor's Ctrl-Z stops the
    whole job in the user's shell, `fg` brings the editor back, and its exit code comes through."""
    editor = _python_program(tmp_path / "rustyline", RUSTYLINE_AGENT)
    inner = " ".join(shlex.quote(part) for part in agent.command("run", "claude"))
    outer = tmp_path / "outer-agent"
    outer.write_text(f"#!/bin/sh\nZAG_CLAUDE_BIN={shlex.quote(str(editor))} {inner}\nexit $(($? + 10))\n",
                     encoding="utf-8")
    outer.chmod(0o755)
    with _interactive(agent, ZAG_CLAUDE_BIN=str(outer)) as shell:
        shell.sendline(_zag(agent))
        shell.expect(r"editor ready (\d+)")
        editor_pid = int(shell.match.group(1))
        try:
            _ctrl_z(shell)
            assert _state(editor_pid) == "T"
            shell.sendline("fg")
            shell.expect_exact("back")
            shell.send("k")
            shell.expect_exact("key k")
            shell.send("q")
            _job_ended_with(shell, 13)
        finally:
            kill_quietly(editor_pid)


def test_zag_started_with_sigchld_ignored_does_not_hang_when_the_agent_exits(agent: Agent, tmp_path: Path) -> None:
    """A parent that ignores SIGCHLD passes that on across exec (to zag, to the holder). The holder must
    still see its agent end (an ignored SIGCHLD reaps it unseen: no signal, ECHILD), and the agent inherits
    the ignored SIGCHLD as it would without zag."""
    program = _python_program(tmp_path / "chld", "import signal, sys\n"
                              "print('agent sigchld', int(signal.getsignal(signal.SIGCHLD)), flush=True)\n"
                              "sys.exit(5)\n")
    zag = _starter(tmp_path, "import signal\nsignal.signal(signal.SIGCHLD, signal.SIG_IGN)")
    term = pexpect.spawn(zag[0], [*zag[1:], "run", "claude"], env=agent.env(ZAG_CLAUDE_BIN=str(program)),
                         cwd=str(agent.root), dimensions=(24, 80), timeout=20)
    try:
        term.expect_exact(f"agent sigchld {int(signal.SIG_IGN)}")
        term.expect(pexpect.EOF)
        term.close()
        assert term.exitstatus == 5  # zag saw the agent's exit code (an ignored SIGCHLD loses it to the kernel)
    finally:
        term.close(force=True)
        for process in Path("/proc").iterdir():  # a holder left waiting for an agent it will never see
            try:
                if process.name.isdigit() and str(program) in (process / "cmdline").read_text(errors="replace"):
                    kill_quietly(int(process.name))
            except OSError:
                pass


def test_a_headless_run_started_with_sigchld_ignored_keeps_the_agents_exit_code(agent: Agent, tmp_path: Path) -> None:
    program = _python_program(tmp_path / "chld", "import signal, sys\n"
                              "print('agent sigchld', int(signal.getsignal(signal.SIGCHLD)), flush=True)\n"
                              "sys.exit(5)\n")
    zag = _starter(tmp_path, "import signal\nsignal.signal(signal.SIGCHLD, signal.SIG_IGN)")
    done = subprocess.run([*zag, "run", "claude", "-p", "hi"], env=agent.env(ZAG_CLAUDE_BIN=str(program)),
                          cwd=str(agent.root), capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    assert done.stdout == b"agent sigchld %d\n" % int(signal.SIG_IGN)
    assert done.returncode == 5, done.stderr
