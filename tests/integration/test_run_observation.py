"""`zag run` watches the agent's output on a thread of its own while the relay writes it out: every byte
still reaches the user, a usage-limit message at the very end of a large output (the agent exits right
after it) is still seen, and however zag's run ends (exit code, death by signal) it writes
`session_ended` and the final index row before it leaves (it leaves with `os._exit`)."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import struct
import subprocess
import termios
import time
from typing import Any

import pytest

from tests.integration import limits_rig as L
from tests.integration.helpers import Agent, assert_valid_log, write_config

FILLER = 61 * 65536  # whole chunks: the filler ends with a newline, the message starts a line
HIT_ONLY = "[usage_limits]\nenabled = false\n"  # the hit is recorded, nothing is resumed


def _filler_then(text: str, *, stream: str = "out", code: int = 1) -> list[dict[str, Any]]:
    return [{"out_bytes": FILLER, "chunk": 65536}, {stream: text}, {"exit": code}]


def _limit_text() -> str:
    return L.claude_limit_text(time.time() + 3600)


def _the_hit(agent: Agent) -> dict[str, Any]:
    events = agent.only_session()
    assert_valid_log(events)
    [hit] = [e for e in events if e["type"] == "usage_limit_hit"]
    return hit


@pytest.mark.parametrize("stream", ["out", "err"])
def test_a_limit_message_right_before_exit_after_megabytes_of_output_is_detected(agent: Agent, zag_home: Any,
                                                                                  stream: str) -> None:
    write_config(zag_home, HIT_ONLY)
    text = _limit_text()  # no newline: the scanner's last, unfinished line
    agent.script(_filler_then(text, stream=stream))
    result = agent.run("run", "claude")
    assert result.returncode == 1
    if stream == "out":  # every byte, the message last
        assert len(result.stdout) == FILLER + len(text.encode()) and result.stdout.endswith(text.encode())
    else:  # zag's own notice of the hit follows it
        assert result.stderr.startswith(text.encode()) and b"zag: claude hit its usage limit" in result.stderr
    assert "session limit" in _the_hit(agent)["raw"]


def test_in_a_terminal_too(agent: Agent, zag_home: Any) -> None:
    write_config(zag_home, HIT_ONLY)
    text = _limit_text()
    agent.script(_filler_then(text + "\n"))
    received, code = _run_in_pty(agent, "run", "claude")
    assert code == 1
    # every byte (the agent's terminal turns its newlines into \r\n), the message last, then zag's notice
    assert len(received) >= FILLER and received.count(b"\r\n") >= FILLER // 65536
    assert received.index(text.encode()) >= FILLER and b"zag: claude hit its usage limit" in received
    hit = _the_hit(agent)
    assert "session limit" in hit["raw"]
    assert agent.only_session()[0]["interactive"] is True


def test_a_limit_message_in_the_middle_of_50_megabytes_in_a_terminal_is_detected(agent: Agent, zag_home: Any) -> None:
    """The observers get the output in large, late batches (gathered, not chunk by chunk): a message amid
    them is still found, and every byte still reaches the terminal."""
    write_config(zag_home, HIT_ONLY)
    text = _limit_text()
    half = 400 * 65536  # whole chunks: the message starts a line
    agent.script([{"out_bytes": half, "chunk": 65536}, {"out": text + "\n"}, {"out_bytes": half, "chunk": 65536},
                  {"exit": 1}])
    received, code = _run_in_pty(agent, "run", "claude", timeout=120.0)
    assert code == 1
    assert received.count(b"0123456789abcdef") == 2 * half // 16 - 2 * 400  # each chunk's last 16: "...\n"
    at = received.index(text.encode())
    assert half <= at <= half + 2 * 400 and received.count(b"\r\n") >= 2 * 400 + 1
    assert "session limit" in _the_hit(agent)["raw"]


@pytest.mark.parametrize("ending, code", [({"exit": 0}, 0), ({"exit": 3}, 3), ({"signal": "SIGTERM"}, 143)])
def test_every_ending_writes_session_ended_and_the_index_row(agent: Agent, ending: dict[str, Any],
                                                             code: int) -> None:
    agent.script([{"out": "working\n"}, ending])
    result = agent.run("run", "claude")
    assert result.returncode == code
    events = agent.only_session()
    assert_valid_log(events)
    assert events[-1]["exit_code"] == code
    [row] = agent.index_rows()  # a fresh connection reads what zag committed before leaving
    assert (row["state"], row["exit_code"], row["last_seq"]) == ("exited", code, events[-1]["seq"])
    listed = json.loads(agent.run("ps", "--all", "--json").stdout)
    assert [(entry["session_id"], entry["state"]) for entry in listed] == [(events[0]["session_id"], "exited")]


def _run_in_pty(agent: Agent, *args: str, timeout: float = 60.0) -> tuple[bytes, int]:
    """Run zag with a fresh PTY as its terminal; read everything until the PTY reports end of output."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(agent.command(*args), stdin=slave, stdout=slave, stderr=slave, env=agent.env(),
                            cwd=agent.root, start_new_session=True)
    os.close(slave)
    received = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: zag and the agent closed the terminal
                break
            if not data:
                break
            received += data
        return bytes(received), proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        os.close(master)
