"""Shared helpers for integration tests: run `zag` as a subprocess against the stand-in agent.

Typical use (the `agent` fixture in conftest.py builds an `Agent` for the test):

    agent.script([{"out": "hi\\n"}, {"exit": 3}])
    result = agent.run("run", "claude", "-p", "x")
    assert result.returncode == 3 and result.stdout == b"hi\\n"
    [log] = agent.session_logs()

Every wait is bounded (`wait_until`), nothing sleeps for a fixed time.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[2]
STANDIN = REPO / "tests" / "agents" / "standin.py"
ZAG = (sys.executable, "-m", "zag")
PROVIDERS = ("claude", "codex", "gemini", "goose")
DEFAULT_TIMEOUT = 60.0
PYCACHE_PREFIX = os.path.join(tempfile.gettempdir(), f"zag-test-pycache-{os.getuid()}")

T = TypeVar("T")


# --- waiting -----------------------------------------------------------------------------------
def wait_until(
    predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02, message: str = "condition"
) -> T:
    """Poll `predicate` until it returns something truthy (returned); AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {message}")
        time.sleep(interval)


def process_gone(pid: int) -> bool:
    """True when `pid` no longer runs (missing, or a zombie nobody reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except FileNotFoundError:
        return True
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return stat[stat.rfind(b")") + 2:].split()[0] in (b"Z", b"X")


def kill_quietly(pid: int, signum: int = signal.SIGKILL) -> None:
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


@contextlib.contextmanager
def reaped(proc: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """`proc` for the block; should the block leave it running (a wait that failed), it is killed and
    reaped on the way out, so that no zag outlives its test."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


@contextlib.contextmanager
def stopped(proc: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """`proc` stopped (SIGSTOP, as Ctrl-Z or a suspend would) for the block, and continued after it
    whatever happened."""
    proc.send_signal(signal.SIGSTOP)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)


def kill_zag(proc: subprocess.Popen[bytes], agent_pid: int, timeout: float = 10.0) -> None:
    """SIGKILL zag (`proc`) and wait until its agent (`agent_pid`) is gone too, as zag's watchdog sees to;
    the agent is killed on the way out whatever happened, so that a failed wait leaves nothing behind."""
    try:
        proc.kill()
        proc.wait(timeout=10)
        wait_until(lambda: process_gone(agent_pid), timeout, message="agent gone after zag was killed")
    finally:
        kill_quietly(agent_pid)


# --- the stand-in agent ------------------------------------------------------------------------
def standin_executable(directory: Path, name: str = "agent") -> Path:
    """A copy of the stand-in whose shebang is this interpreter (no PATH lookup, no shim: fast)."""
    target = directory / name
    if not target.exists():
        source = STANDIN.read_text(encoding="utf-8").split("\n", 1)[1]
        target.write_text(f"#!{sys.executable}\n{source}", encoding="utf-8")
        target.chmod(0o755)
    return target


def write_script(path: Path, *runs: Sequence[Mapping[str, Any]]) -> Path:
    """A stand-in script: invocation k plays runs[k] (the last run repeats)."""
    path.write_text(json.dumps({"runs": [list(run) for run in runs]}), encoding="utf-8")
    return path


def write_config(zag_home: Path, text: str) -> Path:
    zag_home.mkdir(parents=True, exist_ok=True)
    path = zag_home / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every complete line of a JSONL file, decoded (a torn last line is ignored)."""
    data = path.read_bytes()
    lines = data.split(b"\n")[:-1]  # whatever follows the last newline is incomplete
    return [json.loads(line) for line in lines if line.strip()]


def assert_valid_log(events: list[dict[str, Any]], *, ended: bool = True) -> None:
    """seq 1..n without gaps, one session id, `session_started` first and `session_ended` last."""
    assert events, "empty session log"
    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
    assert len({event["session_id"] for event in events}) == 1
    assert events[0]["type"] == "session_started"
    if ended:
        assert events[-1]["type"] == "session_ended"
        assert sum(event["type"] == "session_ended" for event in events) == 1


# --- running zag -------------------------------------------------------------------------------
class Agent:
    """One test's stand-in agent, its script, and zag's environment (ZAG_HOME, ZAG_<NAME>_BIN)."""

    def __init__(self, root: Path, zag_home: Path, provider: str = "claude") -> None:
        self.root = root
        self.zag_home = zag_home
        self.provider = provider
        root.mkdir(parents=True, exist_ok=True)
        self.executable = standin_executable(root)
        self.script_path = root / "script.json"
        self.invocations_path = root / "invocations.jsonl"
        write_script(self.script_path, [])

    def script(self, *runs: Sequence[Mapping[str, Any]]) -> Path:
        """Give the stand-in its script: one list of actions per invocation."""
        return write_script(self.script_path, *runs)

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "ZAG_HOME": str(self.zag_home),
            "STANDIN_SCRIPT": str(self.script_path),
            "STANDIN_LOG": str(self.invocations_path),
        })
        # compiled modules cached outside the checkout: each zag process would otherwise compile
        # zag from source (~0.15 s of CPU) when the caller's environment disables bytecode writing
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.setdefault("PYTHONPYCACHEPREFIX", PYCACHE_PREFIX)
        for name in PROVIDERS:
            env[f"ZAG_{name.upper()}_BIN"] = str(self.executable)
        env.update(extra)
        return env

    def command(self, *args: str) -> list[str]:
        return [*ZAG, *args]

    def run(
        self,
        *args: str,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        stdin: Any = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run `zag ARGS...` to completion with captured stdout/stderr (bytes)."""
        return subprocess.run(
            self.command(*args),
            input=input,
            stdin=stdin if input is None else None,
            capture_output=True,
            env=dict(env) if env is not None else self.env(),
            cwd=self.root,
            timeout=timeout,
        )

    def start(self, *args: str, env: Mapping[str, str] | None = None, **popen: Any) -> subprocess.Popen[bytes]:
        """Start `zag ARGS...` without waiting (stdout/stderr piped unless given)."""
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        popen.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.Popen(self.command(*args), env=dict(env) if env is not None else self.env(),
                                cwd=self.root, **popen)

    def invocations(self) -> list[dict[str, Any]]:
        """What the stand-in recorded about each start: argv, cwd, pid, ZAG_* environment."""
        return read_jsonl(self.invocations_path) if self.invocations_path.exists() else []

    def wait_for_invocation(self, count: int = 1, timeout: float = 15.0) -> dict[str, Any]:
        return wait_until(lambda: len(self.invocations()) >= count and self.invocations()[count - 1],
                          timeout, message=f"stand-in invocation {count}")

    def session_log_paths(self) -> list[Path]:
        folder = self.zag_home / "sessions"
        return sorted(folder.glob("*.jsonl")) if folder.is_dir() else []

    def session_logs(self) -> list[list[dict[str, Any]]]:
        return [read_jsonl(path) for path in self.session_log_paths()]

    def only_session(self) -> list[dict[str, Any]]:
        logs = self.session_logs()
        assert len(logs) == 1, f"expected one session log, found {len(logs)}"
        return logs[0]

    def index_rows(self) -> list[dict[str, Any]]:
        from zag.logs.index import Index

        with Index(self.zag_home / "index.sqlite") as index:
            return index.list_sessions()

    def index_row(self, session_id: str) -> dict[str, Any] | None:
        from zag.logs.index import Index

        with Index(self.zag_home / "index.sqlite") as index:
            return index.get_session(session_id)


class PolledLive:
    """A provider `LiveSession` (`live`) polled while the stand-in agent (`proc`) runs; `items` holds what
    the polls returned, in order."""

    items: list[Any]
    live: Any
    proc: subprocess.Popen[bytes] | None

    def poll_until(self, predicate: Any, timeout: float = 15.0) -> list[Any]:
        def step() -> Any:
            self.items += self.live.poll()
            return predicate(self.items)
        wait_until(step, timeout, interval=0.01, message="events")
        return self.items

    def finish(self) -> list[Any]:
        assert self.proc is not None
        assert self.proc.wait(timeout=30) == 0, self.proc.stderr.read() if self.proc.stderr else b""
        for _ in range(3):
            self.items += self.live.poll()
        return self.items


def types(events: Iterable[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]
