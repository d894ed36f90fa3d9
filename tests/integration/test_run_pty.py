"""Interactive `zag run` driven through a real terminal (pexpect): the agent gets a PTY of its own.

Keystrokes, Ctrl-C and window resizes must reach the agent as without zag, output must arrive whole,
and the user's terminal mode must come back however the run ends.
"""

from __future__ import annotations

import re
import shlex
import signal
import sys
import termios

import pexpect
import pytest

from tests.integration.helpers import Agent, wait_until

STTY_STATE = re.compile(rb"^[0-9a-f]+(?::[0-9a-f]+){10,}\r?$", re.MULTILINE)


def _spawn(agent: Agent, *args: str, env: dict[str, str] | None = None, rows: int = 24,
           cols: int = 80) -> pexpect.spawn:
    command = agent.command("run", "claude", *args)
    return pexpect.spawn(command[0], command[1:], env=env or agent.env(), cwd=str(agent.root),
                         dimensions=(rows, cols), timeout=30)


def _finish(term: pexpect.spawn) -> int:
    term.expect(pexpect.EOF)
    term.close()
    assert term.signalstatus is None
    return term.exitstatus


def test_agent_runs_in_a_terminal_of_the_users_size(agent: Agent) -> None:
    agent.script([{"tty_check": True}, {"print_winsize": True}, {"exit": 3}])
    term = _spawn(agent, rows=33, cols=111)
    term.expect_exact("tty in=1 out=1 err=1")
    term.expect_exact("winsize 33 111")
    assert _finish(term) == 3
    events = agent.only_session()
    assert events[0]["interactive"] is True and events[-1]["exit_code"] == 3


def test_typed_input_is_echoed_and_read(agent: Agent) -> None:
    agent.script([{"out": "prompt> "}, {"read_line": True, "prefix": "got: "},
                  {"read_line": True, "prefix": "then: "}])
    term = _spawn(agent)
    term.expect_exact("prompt> ")
    term.sendline("hello world")
    term.expect_exact("hello world")  # the echo, by the agent's own terminal
    term.expect_exact("got: hello world")
    term.sendline("grüße 日本".encode())
    term.expect_exact("then: grüße 日本".encode())
    assert _finish(term) == 0


def test_keystrokes_reach_a_raw_mode_agent_unchanged(agent: Agent) -> None:
    agent.script([{"raw_tty": True}, {"out": "ready\n"}, {"expect": "\x1b[A\x03\x04q", "timeout": 20},
                  {"out": "all keys seen\n"}])
    term = _spawn(agent)
    term.expect_exact("ready")
    term.send("\x1b[A\x03\x04q")  # arrow up, Ctrl-C, Ctrl-D as bytes: the agent's terminal is raw
    term.expect_exact("all keys seen")
    assert _finish(term) == 0


def test_ctrl_c_reaches_the_agent_once(agent: Agent) -> None:
    agent.script([{"trap": ["SIGINT"]}, {"out": "ready\n"}, {"wait_signal": 30}])
    term = _spawn(agent)
    term.expect_exact("ready")
    term.send("\x03")
    term.expect_exact("got SIGINT")
    assert _finish(term) == 128 + signal.SIGINT


def test_ctrl_c_is_counted_once(agent: Agent) -> None:
    from tests.integration.test_run_signals import COUNTING_AGENT

    path = agent.root / "counting-agent"
    path.write_text(COUNTING_AGENT)
    path.chmod(0o755)
    term = _spawn(agent, "SIGINT", env=agent.env(ZAG_CLAUDE_BIN=str(path)))
    term.expect_exact("ready")
    term.send("\x03")
    term.expect_exact("counts SIGINT=1\r\n")
    assert _finish(term) == 0


def test_window_resize_reaches_the_agent(agent: Agent) -> None:
    agent.script([{"on_winch": True}, {"out": "ready\n"}, {"wait_signal": 30}])
    term = _spawn(agent, rows=24, cols=80)
    term.expect_exact("ready")
    term.setwinsize(50, 132)
    term.expect_exact("winsize 50 132")
    term.setwinsize(10, 40)
    term.expect_exact("winsize 10 40")
    term.kill(signal.SIGTERM)
    assert _finish(term) == 128 + signal.SIGTERM


def test_output_just_before_exit_is_complete(agent: Agent) -> None:
    size = 2 * 1024 * 1024
    agent.script([{"out_bytes": size, "chunk": 4096}, {"out": "THE END"}, {"exit": 0}])
    term = _spawn(agent)
    term.expect(pexpect.EOF)
    received = term.before
    term.close()
    assert term.exitstatus == 0
    assert received.endswith(b"THE END")
    # the agent's terminal turns each "\n" into "\r\n" (as the user's would without zag)
    assert len(received) == size + size // 4096 + len("THE END")


def _in_shell(agent: Agent, zag_args: str, env: dict[str, str] | None = None) -> pexpect.spawn:
    zag = " ".join(shlex.quote(part) for part in agent.command("run", "claude"))
    script = f"stty -g; {zag} {zag_args}; echo status=$?; stty -g"
    return pexpect.spawn("/bin/sh", ["-c", script], env=env or agent.env(), cwd=str(agent.root), timeout=30)


def _stty_states(output: bytes) -> list[bytes]:
    return [line.strip() for line in STTY_STATE.findall(output)]


@pytest.mark.parametrize("ending", ["exit", "signal-to-zag", "agent-killed", "agent-raw-mode"])
def test_terminal_mode_is_restored(agent: Agent, ending: str) -> None:
    actions = {
        "exit": [{"out": "ready\n"}, {"read_line": True}, {"exit": 9}],
        "signal-to-zag": [{"out": "ready\n"}, {"wait_signal": 30}],
        "agent-killed": [{"out": "ready\n"}, {"read_line": True}, {"signal": "SIGKILL"}],
        "agent-raw-mode": [{"raw_tty": True}, {"out": "ready\n"}, {"expect": "x"}, {"exit": 0}],
    }[ending]
    agent.script(actions)
    term = _in_shell(agent, "")
    term.expect_exact("ready")
    attrs = termios.tcgetattr(term.child_fd)
    assert not attrs[3] & (termios.ECHO | termios.ICANON | termios.ISIG), "zag's terminal is not raw"
    if ending == "signal-to-zag":
        supervisor = wait_until(lambda: _supervisor_pid(agent), 10, message="supervisor pid")
        import os

        os.kill(supervisor, signal.SIGTERM)
    elif ending == "agent-raw-mode":
        term.send("x")
    else:
        term.sendline("")
    term.expect(pexpect.EOF)
    output = term.before
    term.close()
    before, after = _stty_states(output)[:1], _stty_states(output)[-1:]
    assert before and after and before == after, output
    expected = {"exit": 9, "signal-to-zag": 128 + signal.SIGTERM, "agent-killed": 128 + signal.SIGKILL,
                "agent-raw-mode": 0}[ending]
    assert f"status={expected}".encode() in output


def _supervisor_pid(agent: Agent) -> int | None:
    logs = agent.session_logs()
    return logs[0][0]["supervisor_pid"] if logs and logs[0] else None


def test_pty_session_is_logged_as_interactive(agent: Agent) -> None:
    agent.script([{"out": "hi\n"}])
    term = _spawn(agent)
    assert _finish(term) == 0
    [row] = agent.index_rows()
    assert row["interactive"] is True and row["state"] == "exited" and row["exit_code"] == 0


if sys.platform != "linux":  # pragma: no cover
    pytestmark = pytest.mark.skip("PTY tests are written for Linux")
