"""What the user types or pastes reaching an interactive agent through `zag run`, against the same agent
run without zag: a paste into an agent that prints meanwhile, keys an agent never reads.

The "terminal" here is a pexpect PTY driven as some terminals and scripts drive one: a blocking write of
the whole paste before reading any output.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pexpect
import pytest

from tests.integration.helpers import Agent

# reads `size` bytes in raw mode (into a file) while a thread of its own prints 4 MB, as a TUI that
# renders while it takes a paste
PRINTING_READER = """
import os, sys, threading, tty
tty.setraw(0)
def noise():
    try:
        for _ in range(512):
            os.write(1, b"x" * 8191 + b"\\n")
    except OSError:
        pass
threading.Thread(target=noise, daemon=True).start()
os.write(1, b"ready\\r\\n")
size, got = int(sys.argv[-1]), bytearray()
while len(got) < size:
    data = os.read(0, 65536)
    if not data:
        break
    got += data
open(os.environ["RECEIVED"], "wb").write(got)
os.write(1, b"done\\r\\n")
"""

# never reads its terminal: prints a tick every 0.1 s for 2 s, then exits
NEVER_READS = """
import os, time
os.write(1, b"ready\\n")
for _ in range(20):
    os.write(1, b"tick\\n")
    time.sleep(0.1)
os.write(1, b"bye\\n")
"""


def _agent_program(agent: Agent, name: str, source: str) -> Path:
    path = agent.root / name
    path.write_text(f"#!{sys.executable}\n{source}", encoding="utf-8")
    path.chmod(0o755)
    return path


def _terminal(agent: Agent, program: Path, *args: str, through_zag: bool, **env: str) -> pexpect.spawn:
    command = agent.command("run", "claude", *args) if through_zag else [str(program), *args]
    return pexpect.spawn(command[0], command[1:], env=agent.env(ZAG_CLAUDE_BIN=str(program), **env),
                         cwd=str(agent.root), dimensions=(24, 80), timeout=30)


def _read_to_eof(fd: int, timeout: float) -> bytes:
    """Everything the terminal shows until the program ends (EIO), within `timeout`."""
    seen = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        seen += data
    return bytes(seen)


@pytest.mark.parametrize("through_zag", [False, True], ids=["without-zag", "zag"])
def test_a_paste_written_before_reading_output_does_not_deadlock(agent: Agent, tmp_path: Path,
                                                                  through_zag: bool) -> None:
    """zag used to read the keyboard in the loop that writes the agent's output: blocked writing output to
    a terminal that was itself blocked writing the paste into zag, nothing moved again."""
    payload = bytes(range(256)).replace(b"\x1b", b"") * 4000
    paste = b"\x1b[200~" + payload + b"\x1b[201~"
    received = tmp_path / "received.bin"
    program = _agent_program(agent, "printing-reader", PRINTING_READER)
    term = _terminal(agent, program, str(len(paste)), through_zag=through_zag, RECEIVED=str(received))
    try:
        term.expect_exact("ready")
        fd = term.child_fd

        def type_the_paste() -> None:
            view = memoryview(paste)
            while view:
                try:
                    view = view[os.write(fd, view[:65536]):]
                except OSError:
                    return

        typist = threading.Thread(target=type_the_paste, daemon=True)
        typist.start()
        typist.join(15)  # nothing is read from the terminal meanwhile
        assert not typist.is_alive(), "the paste could not be written: the agent's output and its keys wait on each other"
        assert b"done" in _read_to_eof(fd, 30)
    finally:
        term.close(force=True)
    assert received.read_bytes() == paste


def test_keys_an_agent_never_reads_are_not_hoarded(agent: Agent) -> None:
    """zag took every key the terminal sent while the agent read none (over 100 MB in 2 s from a writer
    that never stops), in memory, and lost them all when the agent exited; now it takes a bounded amount,
    the rest waits in the user's terminal as without zag (for the shell, once zag has exited)."""
    program = _agent_program(agent, "never-reads", NEVER_READS)
    term = _terminal(agent, program, through_zag=True)
    taken = [0]
    stop = threading.Event()
    try:
        term.expect_exact("ready")
        fd = term.child_fd

        def keep_typing() -> None:
            line = b"typing ahead\n" * 300
            while not stop.is_set():
                try:
                    taken[0] += os.write(fd, line)
                except OSError:
                    return

        threading.Thread(target=keep_typing, daemon=True).start()
        started = time.monotonic()
        shown = term.buffer + _read_to_eof(fd, 20)  # with what pexpect read past "ready"
        took = time.monotonic() - started
    finally:
        stop.set()
        term.close(force=True)
    assert shown.count(b"tick") == 20 and b"bye" in shown  # its output is relayed all along
    assert took < 10  # zag exits with the agent, keys left undelivered or not
    assert taken[0] < 1 << 20, f"{taken[0]} bytes taken from the terminal for an agent that reads none"


def test_keys_typed_while_waiting_without_an_agent_do_not_run_into_the_resume_message(tmp_path: Path,
                                                                                      zag_home: Path) -> None:
    """claude quit during its usage-limit wait; what the user typed meanwhile (echoed by the terminal,
    cooked again) reached the relaunched TUI in front of the message zag types: it read "xyzContinue\\r"
    (node's setRawMode keeps typeahead). Those keys are dropped at the relaunch (README, Usage limits)."""
    from tests.integration import limits_rig as L

    rig = L.Rig(tmp_path, zag_home, "claude")
    read = tmp_path / "read.bin"
    relaunched = [
        {"raw_tty": True, "when": "drain"},
        {"out": "╭─ Claude Code ─╮\r\n"},
        {"sleep": 0.3},
        {"out": "\r\n❯ \r\n  ? for shortcuts\r\n"},
        {"expect": f"{L.MESSAGE}\r", "timeout": 60, "record": str(read)},
        *L.claude_tui_resumed(rig)[1:],
    ]
    rig.script([*L.claude_tui_hit(rig, time.time()), {"out": "\r\nResume this session with:\r\nclaude --resume "
                                                              "{session_id}\r\n"}, {"exit": 0}], relaunched)
    term = rig.spawn("run", "claude")
    try:
        term.expect_exact("hit its usage limit")
        rig.waiting_row(term)
        term.send("xyz")  # no agent runs: the terminal is cooked, and echoes it
        assert L.finish(term) == 0
    finally:
        if term.isalive():
            term.terminate(force=True)
    assert len(rig.invocations()) == 2
    assert read.read_bytes() == f"{L.MESSAGE}\r".encode()


# reads a little of its stdin, closes it, and goes on working
CLOSES_STDIN_EARLY = """
import os, time
os.read(0, 10)
os.close(0)
time.sleep(3)
print("bye")
"""


def test_a_writer_learns_when_a_headless_agent_closes_its_stdin(agent: Agent) -> None:
    """zag kept its own copy of the stdin it gave the agent: `yes | zag run claude` left `yes` blocked on
    a full pipe until zag exited, instead of ending (SIGPIPE) as soon as the agent closed its stdin."""
    import subprocess

    program = _agent_program(agent, "closes-stdin", CLOSES_STDIN_EARLY)
    writer = subprocess.Popen(["yes"], stdout=subprocess.PIPE)
    try:
        started = time.monotonic()
        zag = agent.start("run", "claude", env=agent.env(ZAG_CLAUDE_BIN=str(program)), stdin=writer.stdout)
        assert writer.stdout is not None
        writer.stdout.close()
        try:
            writer.wait(timeout=10)
            writer_ended = time.monotonic() - started
            output, _ = zag.communicate(timeout=20)
        finally:
            zag.kill()
            zag.wait()
    finally:
        writer.kill()
        writer.wait()
    assert output == b"bye\n" and zag.returncode == 0
    assert writer.returncode == -13  # SIGPIPE
    assert writer_ended < 2.5, f"the writer ended {writer_ended:.1f} s in, with zag: the agent closed its stdin at once"


# prints without end in cooked mode; on SIGINT writes a file and exits 130
PRINTS_UNTIL_INTERRUPTED = """
import os, signal, sys
def interrupted(signum, frame):
    open(os.environ["INTERRUPTED"], "w").close()
    os._exit(130)
signal.signal(signal.SIGINT, interrupted)
os.write(1, b"ready\\n")
while True:
    os.write(1, b"y" * 4095 + b"\\n")
"""


@pytest.mark.parametrize("through_zag", [False, True], ids=["without-zag", "zag"])
def test_ctrl_c_reaches_an_agent_whose_output_the_terminal_is_not_reading(agent: Agent, tmp_path: Path,
                                                                          through_zag: bool) -> None:
    """A terminal busy elsewhere (not reading for a while): the agent is blocked writing, and Ctrl-C still
    interrupts it, as the kernel delivers it without zag. zag's loop, blocked writing that output, did
    not read the key until the terminal read again."""
    interrupted = tmp_path / "interrupted"
    program = _agent_program(agent, "prints-until-interrupted", PRINTS_UNTIL_INTERRUPTED)
    term = _terminal(agent, program, through_zag=through_zag, INTERRUPTED=str(interrupted))
    try:
        term.expect_exact("ready")
        time.sleep(0.5)  # the agent's output fills every buffer on the way: nothing reads it
        os.write(term.child_fd, b"\x03")
        deadline = time.monotonic() + 10
        while not interrupted.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert interrupted.exists(), "Ctrl-C did not reach the agent while its output was not read"
    finally:
        term.close(force=True)
