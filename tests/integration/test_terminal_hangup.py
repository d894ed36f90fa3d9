"""The user's terminal goes away (ssh dropped, window closed) while `zag run` relays an interactive agent.

Without zag, a program in a terminal that hangs up reads end-of-file, fails its writes with EIO, and (as
the session leader, or through its shell) gets SIGHUP and SIGCONT. Under zag the agent's terminal is a PTY
zag holds: zag must hang it up in turn, or an agent that ignores SIGHUP (zag started under `nohup`, `trap ''
HUP`, a shell that leaves it ignored) waits for keys forever. The tests own the user's terminal (a PTY whose
master they close, as sshd or a terminal emulator does) and run zag as its session leader, or as a job of an
interactive bash in it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shlex
import shutil
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.integration.helpers import kill_quietly, process_gone, wait_until
from tests.integration.limits_rig import (CLAUDE_DIALOG, MESSAGE, Rig, claude_assistant, claude_limit_record,
                                          claude_limit_text, claude_transcript, claude_user, of_type)

HANGUP_SECS = 10.0  # the agent sees its terminal hang up within this (it is immediate: bounded for a loaded machine)
EXIT_SECS = 20.0
ARMED = "awaiting the hang-up"  # the stand-in's await_hangup, its SIGHUP handled as asked from then on


class Terminal:
    """The user's terminal: a PTY whose slave is zag's stdin, stdout and stderr (and controlling terminal, zag
    leading its session); what zag writes is drained by a thread into `output`. `stdin_elsewhere`: zag's
    stdin is another terminal, which stays."""

    def __init__(self, rig: Rig, *, sighup_ignored: bool, stdin_elsewhere: bool = False) -> None:
        self.master, slave = os.openpty()
        self.other_master, other_slave = os.openpty() if stdin_elsewhere else (None, slave)
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        hangup = signal.SIG_IGN if sighup_ignored else signal.SIG_DFL

        def setup() -> None:
            signal.signal(signal.SIGHUP, hangup)
            fcntl.ioctl(1, termios.TIOCSCTTY, 0)

        try:
            self.zag = subprocess.Popen(rig.agent.command("run", "claude"), stdin=other_slave, stdout=slave,
                                        stderr=slave, env=rig.env(), cwd=rig.cwd, start_new_session=True,
                                        preexec_fn=setup)
        finally:
            os.close(slave)
            if stdin_elsewhere:
                os.close(other_slave)
        self.output = bytearray()
        self._open = True
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while self._open:  # never blocked in a read at `hang_up`: that read would keep the master open
            ready, _, _ = select.select([self.master], [], [], 0.05)
            try:
                data = os.read(self.master, 65536) if ready else b"-"
            except OSError:
                return
            if not data:
                return
            if ready:
                self.output += data

    def expect(self, text: str, timeout: float = 20.0) -> None:
        wait_until(lambda: text.encode() in self.output, timeout, message=f"{text!r} on the terminal")

    def hang_up(self) -> None:
        """Close the terminal's master, as sshd does when the connection drops: the kernel hangs it up."""
        self._open = False
        self._reader.join(5)
        os.close(self.master)

    def close(self) -> None:
        if self._open:
            self.hang_up()
        self._reader.join(5)
        if self.other_master is not None:
            os.close(self.other_master)


def _children(pid: int) -> list[int]:
    """Every child of `pid` (all its threads'), e.g. zag's agent and its watchdog."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


@contextlib.contextmanager
def _zag_in_a_terminal(rig: Rig, *, sighup_ignored: bool = True, stdin_elsewhere: bool = False
                       ) -> Iterator[Terminal]:
    """`zag run claude` in a terminal of the test's; whatever happens, on the way out every process the test
    saw (zag, the agents, the watchdog) is SIGKILLed and the terminal closed."""
    terminal = Terminal(rig, sighup_ignored=sighup_ignored, stdin_elsewhere=stdin_elsewhere)
    try:
        yield terminal
    finally:
        for invocation in rig.invocations():
            kill_quietly(invocation["pid"])
        with contextlib.suppress(OSError):
            for pid in _children(terminal.zag.pid):
                kill_quietly(pid)
        if terminal.zag.poll() is None:
            terminal.zag.kill()
        terminal.zag.wait(10)
        terminal.close()


def _seen(path: Path) -> dict[str, Any]:
    """What the stand-in's `await_hangup` saw, once it recorded it (bounded)."""
    wait_until(path.exists, HANGUP_SECS, message="the agent seeing its terminal hang up")
    return json.loads(wait_until(path.read_text, 2, message="the record written"))


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    return int(stat[stat.rfind(b")") + 2:].split()[1])


def _all_gone(pids: list[int]) -> None:
    for pid in pids:
        wait_until(lambda: process_gone(pid), 10, message=f"process {pid} gone")


def _running(rig: Rig, terminal: Terminal, ready: str = ARMED) -> list[int]:
    """Once the agent is on screen (`ready` seen): zag's pid, its children's (the agent's session holder,
    the watchdog) and the agent's."""
    terminal.expect(ready)
    agent_pid = int(rig.agent.wait_for_invocation()["pid"])
    pids = wait_until(lambda: len(_children(terminal.zag.pid)) >= 2 and _children(terminal.zag.pid), 10,
                      message="the agent and the watchdog started")
    assert _parent(agent_pid) in pids
    return [terminal.zag.pid, *pids, agent_pid]


def test_an_agent_that_ignores_sighup_reads_end_of_file_and_the_session_ends(tmp_path: Path,
                                                                            zag_home: Path) -> None:
    """zag and the agent ignore SIGHUP (`nohup`-like): the agent must read end-of-file and fail its writes
    with EIO, as in a hung-up terminal; what it writes to its transcript afterwards is still logged, and
    the session ends with its exit code; no process is left."""
    rig = Rig(tmp_path, zag_home, "claude")
    seen_path = tmp_path / "seen.json"
    transcript = claude_transcript(rig)
    rig.script([{"append": transcript, "lines": [claude_user(rig, "hello")]},
                {"await_hangup": str(seen_path), "timeout": 60},
                {"append": transcript, "lines": [claude_assistant(rig, "saved my work after the hang-up")]},
                {"exit": 3}])
    with _zag_in_a_terminal(rig, sighup_ignored=True) as terminal:
        pids = _running(rig, terminal)
        terminal.hang_up()
        seen = _seen(seen_path)
        assert seen == {"read": "eof", "write": "EIO", "signals": ["SIGCONT"]}
        assert terminal.zag.wait(EXIT_SECS) == 3
        _all_gone(pids)
    events = rig.log()
    assert events[-1]["type"] == "session_ended" and events[-1]["exit_code"] == 3
    answers = [event for event in of_type(events, "assistant_message")
               if "saved my work after the hang-up" in json.dumps(event)]
    assert len(answers) == 1


def test_an_agent_with_the_default_sighup_dies_of_the_hangup(tmp_path: Path, zag_home: Path) -> None:
    """zag ignores SIGHUP but the agent restored its default action: the hang-up of its terminal kills it
    (128+SIGHUP), as the hang-up of the user's would have without zag."""
    rig = Rig(tmp_path, zag_home, "claude")
    seen_path = tmp_path / "seen.json"
    rig.script([{"await_hangup": str(seen_path), "timeout": 60, "sighup": "default"},
                {"exit": 3}])
    with _zag_in_a_terminal(rig, sighup_ignored=True) as terminal:
        pids = _running(rig, terminal)
        terminal.hang_up()
        assert terminal.zag.wait(HANGUP_SECS) == 128 + signal.SIGHUP
        _all_gone(pids)
    assert not seen_path.exists()
    ended = rig.log()[-1]
    assert ended["type"] == "session_ended" and ended["exit_code"] == 128 + signal.SIGHUP
    assert ended["signal"] == "SIGHUP"


def test_an_agent_that_handles_sighup_gets_it_once_and_its_terminal_hung_up(tmp_path: Path,
                                                                            zag_home: Path) -> None:
    """zag with the default SIGHUP, leading the terminal's session (`ssh -t host zag run claude`): the kernel
    signals zag; the agent must get one SIGHUP (then SIGCONT), not zag's forwarded one and the kernel's,
    and find its terminal hung up (a forwarded SIGHUP alone leaves it waiting for keys)."""
    rig = Rig(tmp_path, zag_home, "claude")
    seen_path = tmp_path / "seen.json"
    rig.script([{"await_hangup": str(seen_path), "timeout": 60, "sighup": "record"},
                {"exit": 4}])
    with _zag_in_a_terminal(rig, sighup_ignored=False) as terminal:
        pids = _running(rig, terminal)
        terminal.hang_up()
        seen = _seen(seen_path)
        assert seen == {"read": "eof", "write": "EIO", "signals": ["SIGHUP", "SIGCONT"]}
        assert terminal.zag.wait(EXIT_SECS) == 4
        _all_gone(pids)
    assert rig.log()[-1]["exit_code"] == 4


@pytest.mark.parametrize("zag_sighup", ["ignored", "default"])
def test_an_output_terminal_that_hangs_up_is_seen_on_writing(tmp_path: Path, zag_home: Path, zag_sighup: str) -> None:
    """zag's stdin is another terminal, which stays; its stdout's (zag's controlling terminal) goes away: zag
    sees that when writing the agent's output fails with EIO, and hangs up the agent's terminal as well. The
    kernel's SIGHUP to zag is not forwarded on top (the agent writes every 0.1 s: the two would come apart)."""
    rig = Rig(tmp_path, zag_home, "claude")
    seen_path = tmp_path / "seen.json"
    sighup = {"sighup": "record"} if zag_sighup == "default" else {}
    rig.script([{"await_hangup": str(seen_path), "timeout": 60, "tick": 0.1, **sighup}, {"exit": 2}])
    with _zag_in_a_terminal(rig, sighup_ignored=zag_sighup == "ignored", stdin_elsewhere=True) as terminal:
        pids = _running(rig, terminal)
        terminal.hang_up()
        seen = _seen(seen_path)
        # one of each, in either order: the holder passes the kernel's pair on with two kill()s, and under load
        # the agent was seen taking the SIGCONT first (2 runs in 20); without zag its order means nothing either
        seen["signals"] = sorted(seen["signals"])
        signals = ["SIGCONT"] if zag_sighup == "ignored" else ["SIGCONT", "SIGHUP"]
        assert seen == {"read": "eof", "write": "EIO", "signals": signals}
        assert terminal.zag.wait(EXIT_SECS) == 2
        _all_gone(pids)
    assert rig.log()[-1]["exit_code"] == 2


PROMPT = "PROMPT$ "


@pytest.mark.parametrize("zag_sighup", ["ignored", "default"])
def test_a_stopped_job_whose_terminal_goes_away_ends(tmp_path: Path, zag_home: Path, zag_sighup: str) -> None:
    """Ctrl-Z'd `zag run` in an interactive bash; the terminal goes away: bash dies of the hang-up and sends
    its jobs SIGHUP and SIGCONT. zag, continued, must hang up the agent's terminal: an agent that ignores
    SIGHUP (inherited from zag) reads end-of-file rather than wait for keys; one that handles it gets it once
    (the kernel's, not zag's forwarded one besides). The agent ignores SIGTERM: bash, should it read the
    end-of-file of its terminal before its SIGHUP, exits as on `exit` twice, with SIGTERM and SIGCONT to
    its stopped jobs (a plain stopped program dies of that too, with or without zag)."""
    rig = Rig(tmp_path, zag_home, "claude")
    seen_path = tmp_path / "seen.json"
    sighup = {} if zag_sighup == "ignored" else {"sighup": "record"}
    rig.script([{"ignore": ["SIGTERM"]}, {"await_hangup": str(seen_path), "timeout": 60, **sighup}, {"exit": 6}])
    command = " ".join(rig.agent.command("run", "claude"))
    hangup = signal.SIG_IGN if zag_sighup == "ignored" else signal.SIG_DFL  # bash's, which zag inherits
    shell = pexpect.spawn("/bin/bash", ["--norc", "--noprofile", "-i"],
                          env=rig.env(PS1=PROMPT, TERM="xterm", HISTFILE="/dev/null"), cwd=str(rig.cwd),
                          dimensions=(24, 80), timeout=20, preexec_fn=lambda: signal.signal(signal.SIGHUP, hangup))
    try:
        shell.expect_exact(PROMPT)
        shell.sendline(command)
        shell.expect_exact(ARMED)
        agent_pid = int(rig.agent.wait_for_invocation()["pid"])
        zag_pid = _parent(_parent(agent_pid))  # the agent's parent is zag's session holder
        pids = [zag_pid, *_children(zag_pid)]
        shell.sendcontrol("z")
        shell.expect_exact("Stopped")
        shell.expect_exact(PROMPT)
        shell.ptyproc.fileobj.close()  # the terminal goes away (pexpect's close would signal bash itself)
        shell.ptyproc.closed = shell.closed = True
        seen = _seen(seen_path)
        assert seen["read"] == "eof" and seen["write"] == "EIO"
        assert seen["signals"].count("SIGHUP") == (0 if zag_sighup == "ignored" else 1)
        _all_gone([agent_pid, *pids])
    finally:
        for invocation in rig.invocations():
            kill_quietly(invocation["pid"])
        kill_quietly(shell.pid)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(shell.pid, 0)
    ended = rig.log()[-1]
    assert ended["type"] == "session_ended" and ended["exit_code"] == 6


def _cancel_notes(rig: Rig) -> list[dict[str, Any]]:
    return [event for event in of_type(rig.log(), "provider_status")
            if event["data"].get("kind") == "usage_limit_cancelled"]


def _tui_at_its_limit(rig: Rig) -> list[dict[str, Any]]:
    """claude's TUI at its limit (notice, synthetic record, dialog), the reset an hour away."""
    text = claude_limit_text(time.time() + 3600)
    return [{"out": "ready\n"}, {"raw_tty": True}, {"out": "╭─ Claude Code ─╮\r\n❯ fix the bug\r\n"},
            {"append": claude_transcript(rig), "lines": [claude_user(rig, "fix the bug"),
                                                         claude_limit_record(rig, text)]},
            {"out": f"  ⎿  {text}\r\n"}, {"out": CLAUDE_DIALOG}]


def test_a_usage_limit_wait_in_the_tui_is_cancelled_when_the_terminal_goes_away(tmp_path: Path,
                                                                              zag_home: Path) -> None:
    """An interactive session waits for a reset an hour away, its TUI on screen, when the terminal goes away:
    nothing can be typed into the agent any more, so the wait is cancelled (cause terminal_hangup) at once,
    the agent's terminal hangs up, and the session ends with its exit code, nothing typed or relaunched."""
    rig = Rig(tmp_path, zag_home, "claude")
    seen_path = tmp_path / "seen.json"
    release = tmp_path / "release"
    rig.script([*_tui_at_its_limit(rig), {"await_hangup": str(seen_path), "timeout": 60},
                {"wait_file": str(release), "timeout": 60}, {"exit": 5}])
    with _zag_in_a_terminal(rig, sighup_ignored=True) as terminal:
        pids = _running(rig, terminal)
        rig.waiting_row(timeout=30)
        terminal.hang_up()
        assert _seen(seen_path)["read"] == "eof"
        [cancelled] = wait_until(lambda: _cancel_notes(rig), HANGUP_SECS, message="the wait cancelled")
        assert not terminal.zag.poll() and not process_gone(pids[1])  # at once, the agent on its way out still
        release.touch()
        assert terminal.zag.wait(EXIT_SECS) == 5
        _all_gone(pids)
    events = rig.log()
    assert cancelled["data"]["cause"] == "terminal_hangup"
    assert events[-1]["type"] == "session_ended" and events[-1]["exit_code"] == 5 and events[-1]["cancelled"]
    assert len(rig.invocations()) == 1
    assert [row["status"] for row in rig.resume_rows()] == ["cancelled"]


def test_a_usage_limit_wait_without_an_agent_ends_when_the_terminal_goes_away(tmp_path: Path,
                                                                            zag_home: Path) -> None:
    """The agent quit at its limit and zag waits (no agent, no relay) to relaunch it in the terminal an hour
    later; the terminal goes away: zag must not wait on to relaunch a TUI with no terminal, but cancel the
    wait and end (the agent's exit code)."""
    rig = Rig(tmp_path, zag_home, "claude")
    rig.script([*_tui_at_its_limit(rig), {"sleep": 0.5}, {"exit": 0}], [{"out": "relaunched\n"}, {"exit": 9}])
    with _zag_in_a_terminal(rig, sighup_ignored=True) as terminal:
        pids = _running(rig, terminal, "ready")
        rig.waiting_row(timeout=30)
        wait_until(lambda: process_gone(rig.invocations()[0]["pid"]), 10, message="the agent gone")
        terminal.hang_up()
        assert terminal.zag.wait(EXIT_SECS) == 0
        _all_gone(pids)
    events = rig.log()
    [cancelled] = _cancel_notes(rig)
    assert cancelled["data"]["cause"] == "terminal_hangup"
    assert events[-1]["type"] == "session_ended" and events[-1]["cancelled"]
    assert len(rig.invocations()) == 1
    assert MESSAGE not in terminal.output.decode(errors="replace")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_a_tmux_client_going_away_is_no_hangup(tmp_path: Path, zag_home: Path) -> None:
    """`zag run` in a tmux pane; the terminal of the attached client goes away (ssh dropped while attached):
    the client ends, the pane keeps its terminal, so zag must not hang up the agent's: keys sent to the pane
    later still reach it. (A guard: the hang-up must come from zag's own terminal only.)"""
    rig = Rig(tmp_path, zag_home, "claude")
    rig.script([{"out": "ready\n"}, {"expect": "hello", "timeout": 60}, {"exit": 8}])
    socket = str(tmp_path / "tmux.sock")
    tmux = ["tmux", "-S", socket, "-f", "/dev/null"]
    command = " ".join(shlex.quote(part) for part in rig.agent.command("run", "claude"))
    subprocess.run([*tmux, "new-session", "-d", "-s", "t", "-x", "80", "-y", "24", command], env=rig.env(),
                   cwd=rig.cwd, check=True, timeout=20)
    try:
        agent_pid = int(rig.agent.wait_for_invocation()["pid"])
        client = pexpect.spawn(tmux[0], [*tmux[1:], "attach", "-t", "t"], env=rig.env(TERM="xterm"),
                               dimensions=(24, 80), timeout=20)
        client.expect_exact("ready")
        client.ptyproc.fileobj.close()  # the client's terminal goes away
        client.ptyproc.closed = client.closed = True
        wait_until(lambda: process_gone(client.pid), 10, message="the tmux client gone")
        with contextlib.suppress(ChildProcessError):
            os.waitpid(client.pid, 0)
        assert not process_gone(agent_pid)
        subprocess.run([*tmux, "send-keys", "-t", "t", "hello", "Enter"], check=True, timeout=20)
        wait_until(lambda: process_gone(agent_pid), 10, message="the agent gone after its keys")
        ended = wait_until(lambda: rig.log()[-1]["type"] == "session_ended" and rig.log()[-1], 10,
                           message="the session ended")
        assert ended["exit_code"] == 8
    finally:
        for invocation in rig.invocations():
            kill_quietly(invocation["pid"])
        subprocess.run([*tmux, "kill-server"], capture_output=True, timeout=20)


def test_a_usage_limit_seen_after_the_hangup_is_not_waited_for(tmp_path: Path, zag_home: Path) -> None:
    """The agent, its terminal hung up, still records a usage-limit hit in its transcript before it ends: zag
    logs the hit but cancels its wait at once (nothing to type into), rather than wait with the agent on its
    way out."""
    rig = Rig(tmp_path, zag_home, "claude")
    seen_path = tmp_path / "seen.json"
    release = tmp_path / "release"
    text = claude_limit_text(time.time() + 3600)
    rig.script([{"await_hangup": str(seen_path), "timeout": 60},
                {"append": claude_transcript(rig), "lines": [claude_user(rig, "fix the bug"),
                                                             claude_limit_record(rig, text)]},
                {"wait_file": str(release), "timeout": 60}, {"exit": 5}])
    with _zag_in_a_terminal(rig, sighup_ignored=True) as terminal:
        pids = _running(rig, terminal)
        terminal.hang_up()
        assert _seen(seen_path)["read"] == "eof"
        [cancelled] = wait_until(lambda: _cancel_notes(rig), HANGUP_SECS, message="the wait cancelled")
        assert not terminal.zag.poll() and not process_gone(pids[1])
        release.touch()
        assert terminal.zag.wait(EXIT_SECS) == 5
        _all_gone(pids)
    events = rig.log()
    assert len(of_type(events, "usage_limit_hit")) == 1
    assert cancelled["data"]["cause"] == "terminal_hangup"
    assert events[-1]["type"] == "session_ended" and events[-1]["cancelled"]
