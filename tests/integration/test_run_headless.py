"""Headless `zag run` (pipes, files): byte-for-byte output, stdin, exit codes and signal deaths."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.helpers import Agent, assert_valid_log, kill_quietly

# An agent that writes exact bytes (the stand-in writes text only): stdout gets every byte value and
# invalid UTF-8, stderr a different pattern, interleaved in many small writes and one large one.
BINARY_AGENT = f"""#!{sys.executable}
import os
def put(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
everything = bytes(range(256))
for i in range(64):
    put(1, everything[i:] + b"\\xff\\xfe\\xc3(" + everything[:i])
    put(2, b"err\\x00\\x80\\xc0\\xaf" * (i + 1))
put(1, b"\\xe2\\x82" * 300000)
raise SystemExit(7)
"""


def _expected_binary_output() -> tuple[bytes, bytes]:
    everything = bytes(range(256))
    out = b"".join(everything[i:] + b"\xff\xfe\xc3(" + everything[:i] for i in range(64)) + b"\xe2\x82" * 300000
    err = b"".join(b"err\x00\x80\xc0\xaf" * (i + 1) for i in range(64))
    return out, err


def test_stdout_and_stderr_pass_through_byte_for_byte(agent: Agent) -> None:
    binary = agent.root / "binary-agent"
    binary.write_text(BINARY_AGENT)
    binary.chmod(0o755)
    result = agent.run("run", "claude", env=agent.env(ZAG_CLAUDE_BIN=str(binary)))
    out, err = _expected_binary_output()
    assert result.returncode == 7
    assert result.stdout == out
    assert result.stderr == err


def test_large_output_is_complete(agent: Agent) -> None:
    size = 24 * 1024 * 1024 + 17
    agent.script([{"out_bytes": size, "chunk": 65536}, {"err": "done\n"}])
    result = agent.run("run", "claude")
    assert result.returncode == 0
    block = (b"0123456789abcdef" * (65536 // 16 + 1))[:65535] + b"\n"
    expected = (block * (size // len(block) + 1))[:size]
    assert len(result.stdout) == size
    assert hashlib.sha256(result.stdout).digest() == hashlib.sha256(expected).digest()
    assert result.stderr == b"done\n"


def test_output_written_just_before_exit_is_not_lost(agent: Agent) -> None:
    agent.script([{"out_bytes": 300000, "chunk": 1000}, {"out": "last words\n"}, {"signal": "SIGKILL"}])
    result = agent.run("run", "claude")
    assert result.returncode == 128 + signal.SIGKILL
    assert len(result.stdout) == 300000 + len("last words\n")
    assert result.stdout.endswith(b"last words\n")


def test_stdin_is_forwarded(agent: Agent) -> None:
    agent.script([{"echo_stdin": True}])
    data = bytes(range(256)) * 4096 + "ünïcode\n".encode()
    result = agent.run("run", "claude", input=data)
    assert result.returncode == 0
    assert result.stdout == data


def test_stdin_line_reading(agent: Agent) -> None:
    agent.script([{"read_line": True, "prefix": "got: "}, {"read_line": True, "prefix": "then: "}])
    result = agent.run("run", "claude", input=b"first line\nsecond line\n")
    assert result.stdout == b"got: first line\nthen: second line\n"


def test_headless_child_sees_no_terminal(agent: Agent) -> None:
    agent.script([{"tty_check": True}])
    result = agent.run("run", "claude", stdin=subprocess.DEVNULL)
    assert result.stdout == b"tty in=0 out=0 err=0\n"
    events = agent.only_session()
    assert events[0]["interactive"] is False


@pytest.mark.parametrize("code", [0, 1, 2, 3, 42, 126, 255])
def test_exit_code_is_the_agents(agent: Agent, code: int) -> None:
    agent.script([{"exit": code}])
    result = agent.run("run", "claude")
    assert result.returncode == code
    ended = agent.only_session()[-1]
    assert ended["type"] == "session_ended"
    assert ended["exit_code"] == code and ended["success"] is (code == 0)
    assert "signal" not in ended


@pytest.mark.parametrize("name", ["SIGKILL", "SIGTERM", "SIGSEGV", "SIGABRT", "SIGINT"])
def test_death_by_signal_is_128_plus_n(agent: Agent, name: str) -> None:
    number = getattr(signal, name)
    agent.script([{"out": "before\n"}, {"signal": name}])
    result = agent.run("run", "claude")
    assert result.returncode == 128 + number
    assert result.stdout == b"before\n"
    ended = agent.only_session()[-1]
    assert ended["exit_code"] == 128 + number
    assert ended["signal"] == name and ended["success"] is False


def test_closed_stdout_reaches_the_agent_as_a_broken_pipe(agent: Agent) -> None:
    """`zag run claude ... | head -c 10`: the agent learns its reader is gone as it would without zag
    (here a Python agent: EPIPE, a BrokenPipeError traceback on its stderr, exit 1)."""
    agent.script([{"out_bytes": 50 * 1024 * 1024, "chunk": 4096}, {"exit": 0}])

    def read_ten_then_close(argv: list[str]) -> tuple[int, bytes]:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=agent.env(), cwd=agent.root)
        assert proc.stdout is not None and proc.stderr is not None
        assert len(proc.stdout.read(10)) == 10
        proc.stdout.close()
        err = proc.stderr.read()
        return proc.wait(timeout=60), err

    direct_code, direct_err = read_ten_then_close([str(agent.executable)])
    zag_code, zag_err = read_ten_then_close(agent.command("run", "claude"))
    assert zag_code == direct_code != 0
    assert b"BrokenPipeError" in direct_err and b"BrokenPipeError" in zag_err
    ended = agent.only_session()[-1]
    assert ended["exit_code"] == direct_code


@pytest.mark.parametrize("closed", [(1,), (0, 1, 2)])
def test_closed_standard_fds_never_land_in_zags_files(agent: Agent, closed: tuple[int, ...]) -> None:
    """`zag run claude >&-` (or `<&- >&- 2>&-`): the agent's output goes nowhere, as it would without zag,
    instead of into the session log that took fd 1's number."""
    agent.script([{"out": "to a closed stdout\n"}, {"err": "to stderr\n"}, {"exit": 5}])
    redirect = " ".join(f"{fd}>&-" if fd else "<&-" for fd in closed)
    shell = f'exec "$@" {redirect}'
    proc = subprocess.run(["sh", "-c", shell, "sh", *agent.command("run", "claude")], env=agent.env(),
                          cwd=agent.root, capture_output=True, timeout=60)
    assert proc.returncode == 5
    events = agent.only_session()
    assert_valid_log(events)
    assert events[-1]["exit_code"] == 5
    written = [*agent.session_log_paths(), *agent.zag_home.glob("zag.log")]
    assert not [path for path in written if b"to a closed stdout" in path.read_bytes()]


def test_cwd_is_kept(agent: Agent, tmp_path: Path) -> None:
    workdir = tmp_path / "work dir ü"
    workdir.mkdir()
    proc = subprocess.run([*agent.command("run", "claude")], cwd=workdir, env=agent.env(), capture_output=True,
                          timeout=60)
    assert proc.returncode == 0
    [invocation] = agent.invocations()
    assert invocation["cwd"] == str(workdir)
    assert agent.only_session()[0]["cwd"] == str(workdir)


def test_a_deleted_working_folder_still_runs_the_agent(agent: Agent, tmp_path: Path) -> None:
    """`cd d; rmdir ../d; zag run …`: the agent starts there anyway, as from the shell (it used to be a
    misleading 'cannot run …: No such file or directory; install it', exit 127)."""
    gone = tmp_path / "gone"
    gone.mkdir()
    sh_agent = tmp_path / "sh-agent"  # the stand-in itself asks for its cwd, which fails here
    sh_agent.write_text("#!/bin/sh\necho ran\nexit 9\n")
    sh_agent.chmod(0o755)
    shell = 'cd "$1" && rmdir "$1" && shift && exec "$@"'
    proc = subprocess.run(["sh", "-c", shell, "sh", str(gone), *agent.command("run", "claude")],
                          env=agent.env(ZAG_CLAUDE_BIN=str(sh_agent)), capture_output=True, timeout=60)
    assert proc.returncode == 9, proc.stderr
    assert proc.stdout == b"ran\n"


def test_agent_grandchild_holding_stdout_does_not_hang_zag(agent: Agent) -> None:
    """A background process the agent left behind keeps the pipe open; zag still ends (bounded drain)."""
    pidfile = agent.root / "sleeper.pid"
    agent.script([{"spawn_sleeper": 30, "pidfile": str(pidfile)}, {"out": "bye\n"}, {"exit": 0}])
    proc = agent.start("run", "claude")
    try:
        out, _ = proc.communicate(timeout=30)
    finally:
        if pidfile.exists():
            kill_quietly(int(pidfile.read_text()))
    assert proc.returncode == 0
    assert out == b"bye\n"

