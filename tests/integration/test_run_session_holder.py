"""`zag run` in a terminal starts the agent through a session holder (zag/wrapper/holder.py): the agent's
process group is the PTY's foreground group and not orphaned, so the kernel stops it on SIGTSTP as it would
without zag, however the agent suspends itself. The holder passes signals on, ends as the agent ended, and
dies with zag (and the agent with it); what zag records and shows is the agent's pid.
"""

from __future__ import annotations

import json
import shlex
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from tests.integration.helpers import Agent, kill_quietly, process_gone, wait_until
from tests.integration.test_run_terminal_qa import (
    _ctrl_z,
    _interactive,
    _job_ended_with,
    _python_program,
    _shell_modes,
    _state,
    _zag,
)

# rustyline (Goose's prompt) on Ctrl-Z: cooked modes back, SIGTSTP to its own group, raw again at once
RUSTYLINE_AGENT = """\
import os, signal, sys, termios, tty
cooked = termios.tcgetattr(0)
tty.setraw(0)
raw = termios.tcgetattr(0)
os.write(1, b"editor ready %d\\r\\n" % os.getpid())
while True:
    key = os.read(0, 1)
    if key == b"\\x1a":
        termios.tcsetattr(0, termios.TCSADRAIN, cooked)
        os.kill(0, signal.SIGTSTP)
        termios.tcsetattr(0, termios.TCSADRAIN, raw)
        os.write(1, b"back\\r\\n")
    elif key == b"q":
        termios.tcsetattr(0, termios.TCSADRAIN, cooked)
        sys.exit(3)
    else:
        os.write(1, b"key " + key + b"\\r\\n")
"""

# GNU readline: no ICANON and no ECHO but ISIG, so the terminal sends SIGTSTP; its handler gives the
# terminal back, sends itself SIGTSTP again with the default action, and takes the terminal once continued
READLINE_AGENT = """\
import os, signal, sys, termios
cooked = termios.tcgetattr(0)
editing = termios.tcgetattr(0)
editing[3] &= ~(termios.ICANON | termios.ECHO)
editing[6][termios.VMIN], editing[6][termios.VTIME] = 1, 0
def suspend(signum, frame):
    termios.tcsetattr(0, termios.TCSADRAIN, cooked)
    signal.signal(signal.SIGTSTP, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTSTP)
    signal.signal(signal.SIGTSTP, suspend)
    termios.tcsetattr(0, termios.TCSADRAIN, editing)
    os.write(1, b"back\\r\\n")
signal.signal(signal.SIGTSTP, suspend)
termios.tcsetattr(0, termios.TCSADRAIN, editing)
os.write(1, b"editor ready %d\\r\\n" % os.getpid())
line = b""
while True:
    key = os.read(0, 1)
    if key in (b"\\r", b"\\n"):
        os.write(1, b"\\r\\nline " + line + b"\\r\\n")
        if line == b"quit":
            termios.tcsetattr(0, termios.TCSADRAIN, cooked)
            sys.exit(4)
        line = b""
    else:
        line += key
"""

# what the agent sees of its session, and the name of its parent
IDS_AGENT = """\
import os, sys
parent = os.getppid()
with open(f"/proc/{parent}/comm") as comm:
    name = comm.read().strip()
print(f"ids pid={os.getpid()} sid={os.getsid(0)} pgid={os.getpgrp()} fg={os.tcgetpgrp(0)} "
      f"parent={parent} name={name}", flush=True)
sys.stdin.readline()
"""


def _editor_started(shell: pexpect.spawn, agent: Agent) -> int:
    shell.sendline(_zag(agent))
    shell.expect(r"editor ready (\d+)")
    return int(shell.match.group(1))


def _suspended_and_fg(shell: pexpect.spawn, agent_pid: int) -> None:
    """Ctrl-Z: the job stops (the agent too), the shell has its cooked terminal; `fg`: the agent is back."""
    _ctrl_z(shell)
    assert _state(agent_pid) == "T"
    assert _shell_modes(shell) == (b"icanon", b"echo")
    shell.sendline("fg")
    shell.expect_exact("back")
    wait_until(lambda: _state(agent_pid) != "T", 5, message="the agent continued")


def test_a_rustyline_agent_that_suspends_itself_stops_with_zag(agent: Agent, tmp_path: Path) -> None:
    """A raw-mode line editor that on Ctrl-Z leaves raw mode only for the instant of its `raise(SIGTSTP)`
    (Goose's prompt): the job stops as without zag, twice, and after each `fg` the editor reads keys again."""
    editor = _python_program(tmp_path / "rustyline", RUSTYLINE_AGENT)
    with _interactive(agent, ZAG_CLAUDE_BIN=str(editor)) as shell:
        agent_pid = _editor_started(shell, agent)
        for key in ("a", "b"):
            _suspended_and_fg(shell, agent_pid)
            shell.send(key)
            shell.expect_exact(f"key {key}")
        shell.send("q")
        _job_ended_with(shell, 3)


def test_a_readline_agent_whose_sigtstp_handler_suspends_it_stops_with_zag(agent: Agent, tmp_path: Path) -> None:
    """A line-reading agent with ISIG (GNU readline's modes) that catches SIGTSTP, gives the terminal back
    and sends itself SIGTSTP again with the default action: the job stops, `fg` brings the editor back."""
    editor = _python_program(tmp_path / "readline", READLINE_AGENT)
    with _interactive(agent, ZAG_CLAUDE_BIN=str(editor)) as shell:
        agent_pid = _editor_started(shell, agent)
        _suspended_and_fg(shell, agent_pid)
        shell.send("hello\r")
        shell.expect_exact("line hello")
        _suspended_and_fg(shell, agent_pid)
        shell.send("quit\r")
        shell.expect_exact("line quit")
        _job_ended_with(shell, 4)


def _spawn(agent: Agent, **env: str) -> pexpect.spawn:
    command = agent.command("run", "claude")
    return pexpect.spawn(command[0], command[1:], env=agent.env(**env), cwd=str(agent.root),
                         dimensions=(24, 80), timeout=30)


def _comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm", encoding="utf-8") as comm:
        return comm.read().strip()


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as handle:
        stat = handle.read()
    return int(stat[stat.rfind(b")") + 2:].split()[1])


def _held_agent(term: pexpect.spawn, agent: Agent) -> int:
    """The stand-in's pid once it runs, checked to be the child of zag's session holder."""
    agent_pid = int(agent.wait_for_invocation()["pid"])
    holder = _parent(agent_pid)
    assert _comm(holder) == "zag-holder" and _parent(holder) == term.pid
    return agent_pid


def test_the_agent_leads_its_own_foreground_group_under_the_holder_and_zag_shows_its_pid(
        agent: Agent, tmp_path: Path) -> None:
    """The holder leads the PTY's session; the agent is in a process group of its own, the terminal's
    foreground group. The session log, the index and `zag ps` give the agent's pid, not the holder's."""
    program = _python_program(tmp_path / "ids", IDS_AGENT)
    term = _spawn(agent, ZAG_CLAUDE_BIN=str(program))
    try:
        term.expect(r"ids pid=(\d+) sid=(\d+) pgid=(\d+) fg=(\d+) parent=(\d+) name=(\S+)")
        pid, sid, pgid, fg, parent = (int(term.match.group(n)) for n in range(1, 6))
        assert term.match.group(6) == b"zag-holder"
        assert pgid == fg == pid and sid == parent != pid
        assert _parent(parent) == term.pid
        wait_until(agent.index_rows, 15, message="the session's index row")
        listed = subprocess.run(agent.command("ps", "--json"), env=agent.env(), capture_output=True, timeout=60)
        assert listed.returncode == 0, listed.stderr
        [shown] = json.loads(listed.stdout)
        assert shown["child_pid"] == pid
        table = subprocess.run(agent.command("ps"), env=agent.env(), capture_output=True, timeout=60)
        assert re.search(rb"\b%d\b" % pid, table.stdout) and not re.search(rb"\b%d\b" % parent, table.stdout)
        term.sendline("")
        term.expect(pexpect.EOF)
    finally:
        term.close(force=True)
    assert term.exitstatus == 0
    assert agent.only_session()[0]["child_pid"] == pid


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1"])
def test_a_signal_sent_to_zag_reaches_the_held_agent_once(agent: Agent, name: str) -> None:
    from tests.integration.test_run_signals import COUNTING_AGENT

    counting = agent.root / "counting-agent"
    counting.write_text(COUNTING_AGENT)
    counting.chmod(0o755)
    command = agent.command("run", "claude", name)
    term = pexpect.spawn(command[0], command[1:], env=agent.env(ZAG_CLAUDE_BIN=str(counting)),
                         cwd=str(agent.root), dimensions=(24, 80), timeout=30)
    try:
        term.expect_exact("ready")
        children = [int(child) for child in Path(f"/proc/{term.pid}/task/{term.pid}/children").read_text().split()]
        assert "zag-holder" in [_comm(pid) for pid in children]
        os.kill(term.pid, getattr(signal, name))
        term.expect_exact(f"counts {name}=1")
        term.expect(pexpect.EOF)
    finally:
        term.close(force=True)
    assert term.exitstatus == 0


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP", "SIGKILL", "SIGSEGV"])
def test_an_agent_killed_by_a_signal_gives_128_plus_n_through_the_holder(agent: Agent, name: str) -> None:
    """The holder dies of the signal that killed the agent (no core file of its own), so zag exits 128+N."""
    agent.script([{"out": "ready\n"}, {"wait_signal": 30}])
    term = _spawn(agent)
    try:
        term.expect_exact("ready")
        agent_pid = _held_agent(term, agent)
        os.kill(agent_pid, getattr(signal, name))
        term.expect(pexpect.EOF)
    finally:
        term.close(force=True)
    number = getattr(signal, name)
    assert term.exitstatus == 128 + number
    assert agent.only_session()[-1]["exit_code"] == 128 + number
    assert not list(agent.root.glob("core*"))


def test_zag_killed_takes_the_holder_and_the_agent(agent: Agent) -> None:
    agent.script([{"out": "ready\n"}, {"wait_signal": 60}])
    term = _spawn(agent)
    try:
        term.expect_exact("ready")
        agent_pid = _held_agent(term, agent)
        holder = _parent(agent_pid)
        os.kill(term.pid, signal.SIGKILL)
        wait_until(lambda: process_gone(agent_pid) and process_gone(holder), 10, message="holder and agent gone")
    finally:
        term.close(force=True)
        for invocation in agent.invocations():
            kill_quietly(invocation["pid"])


def test_the_holder_killed_takes_the_agent_and_zag_reports_it(agent: Agent) -> None:
    agent.script([{"out": "ready\n"}, {"wait_signal": 60}])
    term = _spawn(agent)
    try:
        term.expect_exact("ready")
        agent_pid = _held_agent(term, agent)
        os.kill(_parent(agent_pid), signal.SIGKILL)
        wait_until(lambda: process_gone(agent_pid), 10, message="the agent gone with its holder")
        term.expect(pexpect.EOF)
    finally:
        term.close(force=True)
        for invocation in agent.invocations():
            kill_quietly(invocation["pid"])
    assert term.exitstatus == 128 + signal.SIGKILL


def test_an_agent_that_cannot_be_run_fails_as_before(agent: Agent, tmp_path: Path) -> None:
    """The agent's exec fails inside the holder: zag says why and exits 127, as when it ran the agent
    itself; a script without `#!` still runs (through /bin/sh)."""
    unrunnable = tmp_path / "no-interpreter"
    unrunnable.write_text("#!/no/such/interpreter\n", encoding="utf-8")
    unrunnable.chmod(0o755)
    plain = tmp_path / "plain-script"
    plain.write_text("echo plain script ran; exit 6\n", encoding="utf-8")
    plain.chmod(0o755)
    no_interpreter = rb"cannot run .*its interpreter /no/such/interpreter .*is not found"
    for program, status, said in ((unrunnable, 127, no_interpreter), (plain, 6, rb"plain script ran")):
        term = _spawn(agent, ZAG_CLAUDE_BIN=str(program))
        try:
            term.expect(pexpect.EOF)
            output = term.before
        finally:
            term.close(force=True)
        assert re.search(said, output), output
        assert term.exitstatus == status, (program, output)


def test_an_unstartable_holder_falls_back_to_running_the_agent_directly(agent: Agent, tmp_path: Path) -> None:
    """zag cannot start its holder (here: it is missing): the agent runs all the same, as the session leader
    (no holder), and the run ends normally."""
    program = _python_program(tmp_path / "ids", IDS_AGENT)
    starter = tmp_path / "zag-without-holder"
    starter.write_text(
        "import sys\nfrom zag.wrapper import child\nchild.HOLDER = sys.argv.pop(1)\n"
        "from zag.cli import main\nmain(sys.argv[1:])\n", encoding="utf-8")
    command = [sys.executable, str(starter), str(tmp_path / "no-such-holder.py"), "run", "claude"]
    term = pexpect.spawn(command[0], command[1:], env=agent.env(ZAG_CLAUDE_BIN=str(program)),
                         cwd=str(agent.root), dimensions=(24, 80), timeout=30)
    try:
        term.expect(r"ids pid=(\d+) sid=(\d+) ")
        assert term.match.group(1) == term.match.group(2)  # the agent leads its session itself
        term.sendline("")
        term.expect(pexpect.EOF)
    finally:
        term.close(force=True)
    assert term.exitstatus == 0


def test_descriptors_given_to_zag_reach_the_held_agent_and_the_holders_do_not(agent: Agent, tmp_path: Path) -> None:
    """`zag run claude 7<file` in a terminal: the agent has fd 7 through the holder, and nothing of the
    holder's own (its report pipe) or of zag's."""
    given = tmp_path / "given"
    given.write_text("from fd 7\n", encoding="utf-8")
    script = tmp_path / "fd-agent"
    listing = tmp_path / "fds"
    script.write_text(f"#!/bin/sh\nls /proc/$$/fd > {listing}\ncat <&7\n", encoding="utf-8")
    script.chmod(0o755)
    line = " ".join(shlex.quote(part) for part in agent.command("run", "claude"))
    term = pexpect.spawn("/bin/sh", ["-c", f"exec {line} 7<{shlex.quote(str(given))}"],
                         env=agent.env(ZAG_CLAUDE_BIN=str(script)), cwd=str(agent.root), timeout=30)
    try:
        term.expect_exact("from fd 7")
        term.expect(pexpect.EOF)
    finally:
        term.close(force=True)
    assert term.exitstatus == 0
    fds = {int(fd) for fd in listing.read_text(encoding="utf-8").split()}
    assert {fd for fd in fds if fd < 10} == {0, 1, 2, 7}, fds  # the shell keeps its script at 10 or above


# the agent's launcher (an npm shim, codex's node wrapper of its native binary): it starts the agent proper
# as its own child, which records every start and goes on working when its terminal hangs up (an agent
# running the task it was started with)
SHIM_AGENT = """\
import subprocess, sys
PROPER = '''
import os, signal, sys, time
signal.signal(signal.SIGHUP, signal.SIG_IGN)
with open(sys.argv[1], "a") as record:
    record.write(f"{os.getpid()} ")
print("agent up", os.getpid(), flush=True)
try:
    if sys.stdin.readline():
        sys.exit(0)
except OSError:
    pass
time.sleep(30)
'''
sys.exit(subprocess.call([sys.executable, "-c", PROPER, sys.argv[0] + ".starts"]))
"""

# the real holder, slow to report: it starts the agent at once but reports `delay` seconds later (a loaded
# machine, a holder stopped or swapped out between its agent's exec and its report)
SLOW_HOLDER = """\
import sys, time
sys.path.insert(0, {folder!r})
import holder
report = holder._report
holder._report = lambda fd, message: (time.sleep({delay}), report(fd, message))
holder.main(sys.argv)
"""


def test_a_holder_too_slow_to_report_leaves_no_agent_behind_when_zag_starts_it_directly(
        agent: Agent, tmp_path: Path) -> None:
    """The holder starts the agent but reports after zag gave up waiting: zag starts the agent directly,
    and the one the holder started (with whatever it started: its whole session) is gone first; one
    agent runs against the terminal, not two."""
    from zag.wrapper import child as child_module

    program = _python_program(tmp_path / "shim", SHIM_AGENT)
    slow = tmp_path / "slow_holder.py"
    slow.write_text(SLOW_HOLDER.format(folder=os.path.dirname(child_module.HOLDER), delay=4), encoding="utf-8")
    starter = tmp_path / "zag-slow-holder"
    starter.write_text(
        "import sys\nfrom zag.wrapper import child\nchild.HOLDER = sys.argv.pop(1)\n"
        "child.HOLDER_REPORT_SECS = 2.0\nfrom zag.cli import main\nmain(sys.argv[1:])\n", encoding="utf-8")
    command = [sys.executable, str(starter), str(slow), "run", "claude"]
    term = pexpect.spawn(command[0], command[1:], env=agent.env(ZAG_CLAUDE_BIN=str(program)),
                         cwd=str(agent.root), dimensions=(24, 80), timeout=30)
    starts = Path(str(program) + ".starts")
    try:
        term.expect(r"agent up (\d+)")
        direct = int(term.match.group(1))
        # the held agent started too (before zag gave up on its holder): it must be gone by now
        lines = wait_until(lambda: len(starts.read_text().split()) == 2 and starts.read_text().split(), 5)
        assert str(direct) in lines
        living = [int(pid) for pid in lines if not process_gone(int(pid))]
        assert living == [direct], (lines, living)
        term.sendline("")
        term.expect(pexpect.EOF)
    finally:
        term.close(force=True)
        for pid in starts.read_text().split() if starts.exists() else ():
            kill_quietly(int(pid))
    assert term.exitstatus == 0
