"""`zag listen` as a real process: follows a log written by another process, stops at the right time.

The "writer" is this test, using `SessionLogWriter` and a registered live session whose supervisor
pid is a helper process we control (so killing it makes the session dead).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time

import pexpect
import pytest

from tests.readside import ZAG_BIN, add_session, started_body
from zag import paths, states
from zag.logs import events
from zag.logs.index import Index
from zag.logs.writer import SessionLogWriter
from zag.wrapper import liveness


class Output:
    """Reads a child's stdout without blocking, line by line, with deadlines."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.buffer = b""
        self.lines: list[bytes] = []

    def _pump(self, timeout: float) -> None:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if ready:
            data = os.read(self.proc.stdout.fileno(), 65536)
            self.buffer += data
            *complete, self.buffer = self.buffer.split(b"\n")
            self.lines.extend(complete)

    def wait_lines(self, count: int, timeout: float = 20.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while len(self.lines) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {count} lines, got {self.lines!r}")
            self._pump(min(remaining, 0.05))
        return self.lines

    def finish(self, timeout: float = 30.0) -> tuple[int, bytes]:
        """Wait for the process to exit; collect the rest of its output; return (exit code, stderr)."""
        try:
            rest, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate(timeout=30)
            raise
        self.buffer += rest
        *complete, self.buffer = self.buffer.split(b"\n")
        self.lines.extend(complete)
        return self.proc.returncode, err

    def settle(self, seconds: float) -> None:
        """Collect whatever arrives within `seconds` (used to show nothing more arrives)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._pump(0.05)


@pytest.fixture
def supervisor():
    """A stand-in supervisor process: alive until killed."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=30)


def _register(pid: int, **fields: object) -> str:
    with Index() as index:
        return add_session(index, state=states.RUNNING, exit_code=None, supervisor_pid=pid,
                           supervisor_started=liveness.process_start_time(pid), hostname=liveness.hostname(),
                           last_heartbeat=time.time(), heartbeat_secs=60.0, **fields)


def _listen(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([str(ZAG_BIN), "listen", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})})


def test_follows_new_lines_and_stops_after_session_ended(supervisor: subprocess.Popen) -> None:
    session_id = _register(supervisor.pid)
    writer = SessionLogWriter(session_id, "claude")
    writer.write(started_body())
    proc = _listen(session_id[:8], "--json")
    out = Output(proc)
    try:
        out.wait_lines(1)
        latencies = []
        for n in range(3):
            written_at = time.monotonic()
            writer.write(events.body(events.USER_MESSAGE, content=f"message {n}"), events.SOURCE_PROVIDER_FILE)
            out.wait_lines(2 + n)
            latencies.append(time.monotonic() - written_at)
        # a torn line is not printed until it is complete
        line = json.dumps({"seq": 5, "ts": events.now_rfc3339(), "session_id": session_id, "provider": "claude",
                           "provider_session_id": None, "source": "wrapper", "type": "reasoning",
                           "content": "half and half"}).encode() + b"\n"
        with open(writer.path, "ab", buffering=0) as handle:
            handle.write(line[:20])
            out.settle(0.4)
            assert len(out.lines) == 4 and out.buffer == b""
            handle.write(line[20:])
        out.wait_lines(5)
        assert out.lines[4] + b"\n" == line
        writer.last_seq = 5
        writer.write(events.body(events.SESSION_ENDED, exit_code=0, success=True, error=None))
        code, err = out.finish()
    finally:
        writer.close()
        if proc.poll() is None:
            proc.kill()
    assert code == 0, err
    assert [json.loads(item)["seq"] for item in out.lines] == [1, 2, 3, 4, 5, 6]
    assert writer.path.read_bytes() == b"".join(item + b"\n" for item in out.lines)  # raw lines, unchanged
    print(f"listen latency per new line (s): {[round(x, 3) for x in latencies]}")


def test_stops_with_a_note_when_the_supervisor_dies(supervisor: subprocess.Popen) -> None:
    session_id = _register(supervisor.pid)
    with SessionLogWriter(session_id, "claude") as writer:
        writer.write(started_body())
    proc = _listen(session_id)
    out = Output(proc)
    out.wait_lines(1)
    supervisor.kill()
    supervisor.wait(timeout=30)
    code, err = out.finish()
    assert code == 1
    assert b"supervisor is gone (dead)" in err and b"Traceback" not in err
    assert b"started" in out.lines[0]


def test_waits_for_the_log_of_a_starting_session(supervisor: subprocess.Popen) -> None:
    session_id = _register(supervisor.pid)
    proc = _listen("--latest", "--json")
    out = Output(proc)
    out.settle(0.3)
    assert proc.poll() is None and out.lines == []
    with SessionLogWriter(session_id, "claude") as writer:
        writer.write(started_body())
        writer.write(events.body(events.SESSION_ENDED, exit_code=0, success=True, error=None))
    code, err = out.finish()
    assert code == 0, err
    assert [json.loads(line)["type"] for line in out.lines] == ["session_started", "session_ended"]


def test_an_exited_session_without_end_line_stops() -> None:
    with Index() as index:
        session_id = add_session(index, backfilled=True)
    with SessionLogWriter(session_id, "gemini") as writer:
        writer.write(events.body(events.SESSION_STARTED, argv=None, backfilled=True), events.SOURCE_BACKFILL)
        writer.write(events.body(events.USER_MESSAGE, content="old"), events.SOURCE_BACKFILL)
    done = subprocess.run([str(ZAG_BIN), "listen", session_id], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 2


def test_colour_on_a_terminal_and_not_with_no_color() -> None:
    with Index() as index:
        session_id = add_session(index)
    with SessionLogWriter(session_id, "claude") as writer:
        writer.write(started_body())
        writer.write(events.body(events.USAGE_LIMIT_HIT, incident_id="i", scope="session",
                                 reset_at=events.now_rfc3339(), scheduled_resume_at=None, fallback_used=False))
        writer.write(events.body(events.SESSION_ENDED, exit_code=0, success=True, error=None))
    env = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
    env["TERM"] = "xterm"
    coloured = pexpect.spawn(str(ZAG_BIN), ["listen", session_id], env=env, timeout=30)
    coloured.expect(pexpect.EOF)
    coloured.close()
    assert coloured.exitstatus == 0
    assert b"\x1b[1;31mLIMIT HIT" in coloured.before
    plain = pexpect.spawn(str(ZAG_BIN), ["listen", session_id], env={**env, "NO_COLOR": "1"}, timeout=30)
    plain.expect(pexpect.EOF)
    plain.close()
    assert b"LIMIT HIT" in plain.before and b"\x1b[" not in plain.before
    piped = subprocess.run([str(ZAG_BIN), "listen", session_id], capture_output=True, timeout=60, env=env)
    assert b"LIMIT HIT" in piped.stdout and b"\x1b[" not in piped.stdout


def test_ctrl_c_ends_quietly(supervisor: subprocess.Popen) -> None:
    session_id = _register(supervisor.pid)
    with SessionLogWriter(session_id, "claude") as writer:
        writer.write(started_body())
    proc = _listen(session_id)
    out = Output(proc)
    out.wait_lines(1)
    proc.send_signal(signal.SIGINT)
    code, err = out.finish()
    assert code == 130 and b"Traceback" not in err


def test_no_follow_on_a_missing_log_is_an_error() -> None:
    with Index() as index:
        session_id = add_session(index)
    assert not paths.session_log(session_id).exists()
    done = subprocess.run([str(ZAG_BIN), "listen", session_id, "--no-follow"], capture_output=True, timeout=60)
    assert done.returncode == 1 and b"has no log" in done.stderr
