"""`zag run` as a citizen of an interactive shell: job control (Ctrl-Z, `fg`, `bg`, `&`), driven through a
real `bash -i` on a pexpect terminal, as a user would.

The agent runs in a PTY session of its own, led by zag's session holder (test_run_session_holder.py), so
that the kernel's job-control stops reach it. These tests check that the shell sees the job stop and
continue as it would without zag.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.integration.helpers import Agent, kill_quietly, process_gone, wait_until

PROMPT = "PROMPT$ "


def _bash(agent: Agent, *, hangup_ignored: bool = False, **extra: str) -> pexpect.spawn:
    """An interactive bash whose SIGHUP is the default, whatever the test run inherited (a CI runner under
    `nohup` ignores it, and every process started from there inherits that), or ignored if asked."""
    env = agent.env(PS1=PROMPT, TERM="xterm", HISTFILE="/dev/null", **extra)
    hangup = signal.SIG_IGN if hangup_ignored else signal.SIG_DFL
    shell = pexpect.spawn("/bin/bash", ["--norc", "--noprofile", "-i"], env=env, cwd=str(agent.root),
                          dimensions=(24, 80), timeout=10,
                          preexec_fn=lambda: signal.signal(signal.SIGHUP, hangup))
    shell.expect_exact(PROMPT)
    return shell


def _zag(agent: Agent) -> str:
    return " ".join(shlex.quote(part) for part in agent.command("run", "claude"))


def _shell_modes(shell: pexpect.spawn) -> tuple[bytes, bytes]:
    """(icanon or -icanon, echo or -echo) of the terminal as the shell runs a command."""
    shell.sendline("stty -a | tr ' ' '\\n' | grep -x -- '-\\?icanon\\|-\\?echo' | tr '\\n' ' '; echo :modes")
    shell.expect_exact(":modes")  # the echo of the command line
    shell.expect(rb"(-?icanon) (-?echo) :modes")
    modes = (shell.match.group(1), shell.match.group(2))
    shell.expect_exact(PROMPT)
    return modes


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", "rb") as handle:
        stat = handle.read()
    return stat[stat.rfind(b")") + 2:].split()[0].decode()


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children", "rb") as handle:
        return [int(child) for child in handle.read().split()]


def _kill_and_wait(shell: pexpect.spawn, name: str) -> int:
    """`kill -SIG %1` on the stopped job, then its status as `wait %1` reports it. Bash's own race is waited
    out: kill sends the signal and a SIGCONT but leaves the job marked stopped until the continued process
    runs and bash gets its SIGCHLD (CLD_CONTINUED); a `wait` before that returns 128+SIGTSTP at once
    ("wait_for_job: job 1 is stopped"), as for a plain `sleep` on a loaded machine. A job that stays
    stopped (zag stopped again) still reads 148 after the bounded retries."""
    stopped = 128 + signal.SIGTSTP
    shell.sendline(f"kill -{name[3:]} %1; for _ in $(seq 100); do wait %1; s=$?; [ $s != {stopped} ] && break; "
                   f"sleep 0.05; done; echo status=$s")
    shell.expect(r"status=(\d+)", timeout=15)
    return int(shell.match.group(1))


@contextlib.contextmanager
def _interactive(agent: Agent, **bash: Any) -> Iterator[pexpect.spawn]:
    """`_bash(agent, **bash)` for the block; on the way out, whatever happened, the agents zag started
    (the stand-in's recorded pids) are SIGKILLed and the shell closed, so that nothing outlives the test."""
    shell = _bash(agent, **bash)
    try:
        yield shell
    finally:
        for invocation in agent.invocations():
            kill_quietly(invocation["pid"], signal.SIGKILL)
        shell.close(force=True)


def _zag_started(shell: pexpect.spawn, agent: Agent) -> int:
    """`zag run claude` typed into the shell, the stand-in's "ready" on screen; returns the agent's pid."""
    shell.sendline(_zag(agent))
    shell.expect_exact("ready")
    return int(agent.wait_for_invocation()["pid"])


def _job_stopped(shell: pexpect.spawn) -> None:
    """The shell's 'Stopped' line for its foreground job, then its prompt."""
    shell.expect_exact("Stopped", timeout=5)
    shell.expect_exact(PROMPT)


def _ctrl_z(shell: pexpect.spawn) -> None:
    """Ctrl-Z to the foreground job, and the shell's report that it stopped."""
    shell.sendcontrol("z")
    _job_stopped(shell)


def _fg(shell: pexpect.spawn) -> None:
    """`fg`, and the shell's echo of the job it continues."""
    shell.sendline("fg")
    shell.expect_exact("zag run claude")


def _stopped_from_outside_then_fg(shell: pexpect.spawn, pid: int, signum: int, what: str) -> None:
    """`signum` to `pid` (`what`: the agent, or zag): the shell reports the job stopped and has its terminal
    in cooked mode with echo; `fg` continues `pid`."""
    os.kill(pid, signum)
    _job_stopped(shell)
    assert _shell_modes(shell) == (b"icanon", b"echo")
    _fg(shell)
    wait_until(lambda: _state(pid) != "T", 5, message=f"{what} continued")


def _job_ended_with(shell: pexpect.spawn, status: int) -> None:
    """The prompt back (the foreground job ended), and `$?` is `status`."""
    shell.expect_exact(PROMPT)
    shell.sendline("echo status=$?")
    shell.expect_exact(f"status={status}")


def _python_program(path: Path, source: str) -> Path:
    """`source` as an executable file at `path` run by this interpreter."""
    path.write_text(f"#!{sys.executable}\n{source}", encoding="utf-8")
    path.chmod(0o755)
    return path


def test_ctrl_z_stops_the_agent_with_zag_and_fg_continues_both(agent: Agent) -> None:
    """A line-reading agent (ISIG on in its terminal): Ctrl-Z must stop it, give the shell its prompt in
    cooked mode, and `fg` continue it in raw mode; `bg` leaves the job stopped (zag waits for the
    terminal), a second `fg` continues it again."""
    agent.script([{"out": "ready\n"}, {"read_line": True, "prefix": "got: "},
                  {"read_line": True, "prefix": "then: "}, {"exit": 7}])
    with _interactive(agent) as shell:
        agent_pid = _zag_started(shell, agent)
        _ctrl_z(shell)
        assert _state(agent_pid) == "T"
        assert _shell_modes(shell) == (b"icanon", b"echo")
        _fg(shell)
        wait_until(lambda: _state(agent_pid) != "T", 5, message="the agent continued")
        shell.sendline("hello")
        shell.expect_exact("got: hello")
        _ctrl_z(shell)
        shell.sendline("bg")
        shell.expect_exact(PROMPT)
        shell.sendline("jobs")
        shell.expect_exact("Stopped")  # zag waits for the terminal before it continues the agent
        shell.expect_exact(PROMPT)
        assert _state(agent_pid) == "T"
        _fg(shell)
        shell.sendline("again")
        shell.expect_exact("then: again")
        _job_ended_with(shell, 7)
        assert _shell_modes(shell) == (b"icanon", b"echo")


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_kill_of_the_stopped_job_ends_zag_and_the_agent(agent: Agent, name: str) -> None:
    """`kill %1` (or SIGHUP, as when the shell exits) on the Ctrl-Z'd job: the shell sends it with a SIGCONT;
    zag must not stop again waiting for the terminal, but let the agent have the signal and end with it."""
    agent.script([{"out": "ready\n"}, {"read_line": True}, {"exit": 0}])
    with _interactive(agent) as shell:
        agent_pid = _zag_started(shell, agent)
        _ctrl_z(shell)
        assert _kill_and_wait(shell, name) == 128 + getattr(signal, name)
        wait_until(lambda: process_gone(agent_pid), 5, message="the agent gone")
        assert agent.only_session()[-1]["exit_code"] == 128 + getattr(signal, name)


def test_an_ignored_sighup_does_not_end_the_stopped_job(agent: Agent) -> None:
    """A shell whose SIGHUP zag inherits ignored (`nohup`, a runner that ignores it): the agent inherits it
    ignored too and lives on, so `kill -HUP %1` must not end zag's supervision: zag ignores it as well, takes
    the SIGCONT sent with it for a `bg` (stops again until `fg`), and `fg` goes on with the agent in raw mode."""
    agent.script([{"out": "ready\n"}, {"read_line": True, "prefix": "got: "}, {"exit": 5}])
    with _interactive(agent, hangup_ignored=True) as shell:
        agent_pid = _zag_started(shell, agent)
        _ctrl_z(shell)
        assert _kill_and_wait(shell, "SIGHUP") == 128 + signal.SIGTTOU
        assert _state(agent_pid) == "T"
        _fg(shell)
        shell.send("hello\r")
        shell.expect_exact("got: hello")
        _job_ended_with(shell, 5)


SLOW_SIGNAL_THREAD = """\
import sys, time
from zag.wrapper import supervisor
on_signal = supervisor.Supervisor._on_signal
def slow(self, signum, from_terminal):
    if signum == 15:
        time.sleep(1.5)  # a loaded machine: the signal thread gets to SIGTERM late
    on_signal(self, signum, from_terminal)
supervisor.Supervisor._on_signal = slow
from zag.cli import main
main(sys.argv[1:])
"""


def test_kill_of_the_stopped_job_waits_for_a_slow_signal_thread(agent: Agent) -> None:
    """`kill %1` on the Ctrl-Z'd job while zag's signal thread is slow to take the SIGTERM: zag must not
    take the SIGCONT for a plain `fg`/`bg` and stop again waiting for the terminal."""
    agent.script([{"out": "ready\n"}, {"read_line": True}, {"exit": 0}])
    with _interactive(agent, PYTHONPATH=str(Path(__file__).resolve().parents[2])) as shell:
        command = [sys.executable, "-c", SLOW_SIGNAL_THREAD, "run", "claude"]
        shell.sendline(" ".join(shlex.quote(part) for part in command))
        shell.expect_exact("ready")
        agent_pid = agent.wait_for_invocation()["pid"]
        _ctrl_z(shell)
        assert _kill_and_wait(shell, "SIGTERM") == 128 + signal.SIGTERM
        wait_until(lambda: process_gone(agent_pid), 5, message="the agent gone")


def test_kill_of_zag_stopped_in_the_background_before_the_agent_started(agent: Agent) -> None:
    """`zag run claude &` waits stopped for `fg`; `kill %1` meanwhile ends it (no agent was started)."""
    agent.script([{"out": "ready\n"}, {"read_line": True}, {"exit": 0}])
    with _interactive(agent) as shell:
        shell.sendline(_zag(agent) + " &")
        shell.expect_exact(PROMPT)
        [zag] = wait_until(lambda: [pid for pid in _children(shell.pid) if _state(pid) == "T"], 10,
                           message="zag stopped in the background")
        shell.sendline("kill %1")  # SIGCONT with it: zag must not stop again, holding SIGTERM back
        wait_until(lambda: process_gone(zag), 5, message="zag gone")
        assert agent.invocations() == []


def test_a_window_resized_while_the_job_is_stopped_reaches_the_agent_on_fg(agent: Agent) -> None:
    """While the job is stopped the shell has the terminal (and its SIGWINCH): after `fg` the agent's
    terminal must have the window's new size."""
    agent.script([{"out": "ready\n"}, {"read_line": True}, {"print_winsize": True}, {"exit": 0}])
    with _interactive(agent) as shell:
        shell.sendline(_zag(agent))
        shell.expect_exact("ready")
        _ctrl_z(shell)
        shell.setwinsize(33, 101)
        _fg(shell)
        shell.sendline("")
        shell.expect_exact("winsize 33 101")
        shell.expect_exact(PROMPT)


def test_an_agent_stopped_by_sigstop_stops_zag_and_fg_gives_it_raw_mode_again(agent: Agent) -> None:
    """A raw-mode agent stopped from outside (`kill -STOP`): the shell gets its prompt in cooked mode, and
    after `fg` zag's terminal is raw again, so a single key reaches the agent without Enter."""
    agent.script([{"raw_tty": True}, {"out": "ready\n"}, {"expect": "x"}, {"out": "got x\n"}, {"exit": 0}])
    with _interactive(agent) as shell:
        agent_pid = _zag_started(shell, agent)
        _stopped_from_outside_then_fg(shell, agent_pid, signal.SIGSTOP, "the agent")
        shell.send("x")
        shell.expect_exact("got x")
        _job_ended_with(shell, 0)


SUSPENDING_TUI = """\
import os, signal, sys, termios, tty
cooked = termios.tcgetattr(0)
tty.setraw(0)
def resumed(*_):
    tty.setraw(0)
    os.write(1, b"resumed\\r\\n")
os.write(1, b"tui ready\\r\\n")
while True:
    key = os.read(0, 1)
    if key == b"\\x1a":  # what Ink (claude, gemini) does on Ctrl-Z
        termios.tcsetattr(0, termios.TCSANOW, cooked)
        signal.signal(signal.SIGCONT, resumed)
        os.killpg(0, signal.SIGTSTP)
    elif key == b"q":
        termios.tcsetattr(0, termios.TCSANOW, cooked)
        sys.exit(3)
    else:
        os.write(1, b"key " + key + b"\\r\\n")
"""


def test_a_tui_that_suspends_itself_on_ctrl_z_stops_with_zag(agent: Agent, tmp_path: Path) -> None:
    """A raw-mode TUI handles Ctrl-Z itself: cooked modes back, then SIGTSTP to its own process group,
    which the kernel drops in the agent's orphaned group. zag sees it leave raw mode after the key and
    stops it: the shell shows the job stopped; after `fg` the TUI's SIGCONT handler runs (raw again)."""
    tui = _python_program(tmp_path / "tui", SUSPENDING_TUI)
    with _interactive(agent, ZAG_CLAUDE_BIN=str(tui)) as shell:
        shell.sendline(_zag(agent))
        shell.expect_exact("tui ready")
        _ctrl_z(shell)
        assert _shell_modes(shell) == (b"icanon", b"echo")
        shell.sendline("fg")
        shell.expect_exact("resumed")
        shell.send("a")
        shell.expect_exact("key a")
        shell.send("q")
        _job_ended_with(shell, 3)


def test_ctrl_z_to_a_raw_agent_that_does_not_suspend_only_types_it(agent: Agent) -> None:
    """A raw-mode agent for which Ctrl-Z is just a key (it stays raw): it gets the byte and keeps running."""
    agent.script([{"raw_tty": True}, {"out": "ready\n"}, {"expect": "\u001a"}, {"out": "got ctrl-z\n"},
                  {"expect": "x"}, {"out": "got x\n"}, {"exit": 4}])
    with _interactive(agent) as shell:
        shell.sendline(_zag(agent))
        shell.expect_exact("ready")
        shell.sendcontrol("z")
        shell.expect_exact("got ctrl-z")
        shell.send("x")
        shell.expect_exact("got x")
        _job_ended_with(shell, 4)


@pytest.mark.parametrize("name", ["SIGSTOP", "SIGTSTP"])
def test_zag_stopped_alone_puts_the_terminal_back_in_raw_mode_on_fg(agent: Agent, name: str) -> None:
    """`kill -STOP <zag>` (the agent runs on): the shell takes the terminal back with its own modes; after
    `fg` zag's terminal must be raw again, so a single key reaches the agent without Enter."""
    agent.script([{"raw_tty": True}, {"out": "ready\n"}, {"expect": "x"}, {"out": "got x\n"}, {"exit": 0}])
    with _interactive(agent) as shell:
        shell.sendline(_zag(agent))
        shell.expect_exact("ready")
        [zag] = _children(shell.pid)
        _stopped_from_outside_then_fg(shell, zag, getattr(signal, name), "zag")
        shell.send("x")
        shell.expect_exact("got x")
        shell.expect_exact(PROMPT)
        assert _shell_modes(shell) == (b"icanon", b"echo")


def test_started_in_the_background_the_agent_gets_the_shells_modes_on_fg(agent: Agent, tmp_path: Path) -> None:
    """`zag run claude &`: zag stops (as a TUI would, SIGTTOU) before taking the terminal; after `fg` the
    agent's terminal has the modes a foreground command gets (canonical, echo), not those of the shell's
    line editor, which owns the terminal while zag is in the background."""
    script = tmp_path / "modes-agent"
    script.write_text("#!/bin/sh\nstty -a | tr ' ' '\\n' | grep -x -- '-\\?icanon\\|-\\?echo' | tr '\\n' ' '\n"
                      "echo :agent-modes\nread line\necho \"got: $line\"\n", encoding="utf-8")
    script.chmod(0o755)
    with _interactive(agent, ZAG_CLAUDE_BIN=str(script)) as shell:
        shell.sendline(_zag(agent) + " &")
        shell.expect_exact(PROMPT)  # the shell's line editor has the terminal now (not canonical, no echo)
        wait_until(lambda: [pid for pid in _children(shell.pid) if _state(pid) == "T"], 10,
                   message="zag stopped in the background")
        shell.sendline("jobs")
        shell.expect_exact("Stopped")
        shell.expect_exact(PROMPT)
        shell.sendline("fg")
        shell.expect(rb"(-?icanon) (-?echo) :agent-modes")
        assert (shell.match.group(1), shell.match.group(2)) == (b"icanon", b"echo")
        shell.sendline("typed")
        shell.expect_exact("got: typed")
        shell.expect_exact(PROMPT)
        assert _shell_modes(shell) == (b"icanon", b"echo")


WRITE_ALL = """\
def write_all(data):
    while data:
        try:
            data = data[os.write(1, data):]
        except InterruptedError:
            pass
"""

STORM_AGENT = """\
import fcntl, os, select, signal, struct, termios
""" + WRITE_ALL + """\
signal.signal(signal.SIGWINCH, lambda *_: None)
os.write(1, b"storm ready\\n")
for n in range(1, 100001):
    write_all(b"line %08d\\n" % n)
os.write(1, b"all written\\n")
while b"q" not in os.read(0, 100):
    pass
rows, cols = struct.unpack("hhhh", fcntl.ioctl(1, termios.TIOCGWINSZ, bytes(8)))[:2]
os.write(1, b"final size %dx%d\\n" % (rows, cols))
"""


def _cpu_secs(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as handle:
        fields = handle.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_resize_storm_while_output_flows_loses_nothing_and_ends_at_the_last_size(agent: Agent,
                                                                                    tmp_path: Path) -> None:
    """1000+ window resizes within a second while the agent writes 100k lines: every line arrives once
    and in order, the agent ends up with the last size, and zag is idle (no busy loop) afterwards."""
    storm = _python_program(tmp_path / "storm", STORM_AGENT)
    command = agent.command("run", "claude")
    term = pexpect.spawn(command[0], command[1:], env=agent.env(ZAG_CLAUDE_BIN=str(storm)), cwd=str(agent.root),
                         dimensions=(24, 80), timeout=15, maxread=1 << 20)
    try:
        term.expect_exact("storm ready")
        received = bytearray(term.buffer)
        resizes, started = 0, time.monotonic()
        while resizes < 1000 or time.monotonic() - started < 1.0:
            resizes += 1
            term.setwinsize(20 + resizes % 40, 60 + resizes % 90)
            try:
                received += term.read_nonblocking(1 << 20, timeout=0)
            except pexpect.TIMEOUT:
                pass
        term.setwinsize(41, 133)
        while b"all written" not in received[-64:]:
            received += term.read_nonblocking(1 << 20, timeout=10)
        idle_from = _cpu_secs(term.pid)
        time.sleep(1.0)
        assert _cpu_secs(term.pid) - idle_from < 0.2, "zag is busy while nothing happens"
        term.sendline("q")
        term.expect_exact("final size 41x133")
        lines = re.findall(rb"line (\d{8})", bytes(received))
        assert [int(number) for number in lines] == list(range(1, 100001))
        term.expect(pexpect.EOF)
    finally:
        term.close(force=True)


def test_stderr_redirected_away_from_the_terminal_goes_there_not_to_the_screen(agent: Agent,
                                                                                tmp_path: Path) -> None:
    """`zag run claude 2>err.log` in a terminal: the agent gets the PTY for stdin/stdout, and its stderr
    goes to err.log (not a terminal), as without zag, instead of onto the screen."""
    agent.script([{"out": "to stdout\n"}, {"err": "to stderr\n"}, {"tty_check": True}, {"exit": 0}])
    errors = tmp_path / "err.log"
    term = pexpect.spawn("/bin/sh", ["-c", f"{_zag(agent)} 2>{shlex.quote(str(errors))}"], env=agent.env(),
                         cwd=str(agent.root), timeout=15)
    try:
        term.expect(pexpect.EOF)
        screen = term.before
    finally:
        term.close(force=True)
    assert b"to stdout" in screen and b"tty in=1 out=1 err=0" in screen and b"to stderr" not in screen
    assert errors.read_bytes() == b"to stderr\n"


FLOOD_AGENT = """\
import os, sys, time
""" + WRITE_ALL + """\
os.write(1, b"flood ready\\n")
for n in range(1, 200001):
    write_all(b"line %08d\\n" % n)
    if n % 1000 == 0:
        time.sleep(0.001)
os.write(1, b"all written\\n")
sys.stdin.readline()
"""


def test_ctrl_z_and_fg_again_and_again_while_output_flows_keep_it_in_order(agent: Agent, tmp_path: Path) -> None:
    """Ctrl-Z then `fg`, repeatedly, while the agent floods its terminal: lines arrive in order, none twice,
    up to the last, and the run ends normally. (Some may be lost: the terminal's Ctrl-Z flushes output not
    yet read, as it does without zag, where ~1000 of 200k lines went per run, fewer with zag.)"""
    flood = _python_program(tmp_path / "flood", FLOOD_AGENT)
    with _interactive(agent, ZAG_CLAUDE_BIN=str(flood)) as shell:
        shell.maxread = 1 << 20
        shell.sendline(_zag(agent))
        shell.expect_exact("flood ready")
        received = bytearray(shell.buffer)
        cycles = 0
        while b"all written" not in received and cycles < 30:
            shell.sendcontrol("z")
            while not re.search(rb"Stopped[^\n]*\n.*PROMPT\$ $", bytes(received[-400:]), re.DOTALL):
                received += shell.read_nonblocking(1 << 20, timeout=10)
            cycles += 1
            shell.sendline("fg")
            resumed = time.monotonic()
            while time.monotonic() - resumed < 0.15:
                try:
                    received += shell.read_nonblocking(1 << 20, timeout=0.05)
                except pexpect.TIMEOUT:
                    pass
        while b"all written" not in received:
            received += shell.read_nonblocking(1 << 20, timeout=10)
        assert cycles >= 2
        numbers = [int(number) for number in re.findall(rb"line (\d{8})", bytes(received))]
        assert all(a < b for a, b in zip(numbers, numbers[1:])) and numbers[-1] == 200000
        assert len(numbers) > 190000
        shell.sendline("")
        _job_ended_with(shell, 0)
