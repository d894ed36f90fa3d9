"""Test data for the read-side commands (ps, sessions, events, listen, reindex, completions).

Sessions are built with the real `Index` and `SessionLogWriter`, never through `zag run`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from zag import paths, states
from zag.logs import events
from zag.logs.ids import new_session_id
from zag.logs.index import Index
from zag.logs.writer import SessionLogWriter
from zag.wrapper import liveness

ZAG_BIN = Path(sys.executable).parent / "zag"


def live_supervisor(heartbeat_secs: float = 10.0) -> dict[str, Any]:
    """Registry fields of a supervisor that is alive: this test process, beating now."""
    pid = os.getpid()
    return {
        "supervisor_pid": pid,
        "supervisor_started": liveness.process_start_time(pid),
        "hostname": liveness.hostname(),
        "last_heartbeat": time.time(),
        "heartbeat_secs": heartbeat_secs,
    }


def gone_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    return child.pid


def add_session(index: Index, **fields: Any) -> str:
    """Insert a session row (sensible defaults: an exited claude run) and return its id."""
    session_id = fields.pop("session_id", None) or new_session_id()
    row: dict[str, Any] = {
        "session_id": session_id,
        "provider": "claude",
        "state": states.EXITED,
        "cwd": "/tmp/project",
        "argv": ["claude", "-p", "fix the test"],
        "model": "opus",
        "started_at": time.time() - 60,
        "exit_code": 0,
        "log_path": str(paths.session_log(session_id)),
    }
    row.update(fields)
    index.add_session(**row)
    return session_id


def started_body(**fields: Any) -> dict[str, Any]:
    """A `session_started` body as the wrapper writes it."""
    body: dict[str, Any] = {
        "argv": ["claude", "-p", "fix the test"],
        "final_argv": ["claude", "-p", "fix the test", "--session-id", "x"],
        "cwd": "/tmp/project",
        "model": "opus",
        "resumed": False,
        "backfilled": False,
        "interactive": False,
        "supervisor_pid": 4242,
        "supervisor_started": "boot:1",
        "hostname": "elsewhere",
        "heartbeat_secs": 10,
        "child_pid": 4243,
    }
    body.update(fields)
    return events.body(events.SESSION_STARTED, **body)


def write_log(session_id: str, bodies: list[dict[str, Any]], provider: str = "claude") -> Path:
    """Append events (bodies; `source` may be given per body) to a session's log; return its path."""
    with SessionLogWriter(session_id, provider) as writer:
        for body in bodies:
            body = dict(body)
            source = body.pop("source", events.SOURCE_WRAPPER)
            writer.write(body, source)
        return writer.path


def transcript() -> list[dict[str, Any]]:
    """A short conversation, one event of each transcript kind."""
    src = events.SOURCE_PROVIDER_FILE
    return [
        {"type": events.USER_MESSAGE, "content": "fix the test", "provider_session_id": "prov-1", "source": src},
        {"type": events.ASSISTANT_MESSAGE, "content": [{"type": "text", "text": "Looking.\nOne moment."}], "source": src},
        {"type": events.TOOL_CALL, "tool_name": "Bash", "tool_kind": "shell", "tool_id": "t1",
         "input": {"command": "pytest -q"}, "source": src},
        {"type": events.TOOL_RESULT, "tool_id": "t1", "success": False, "output": "", "error": "1 failed", "source": src},
        {"type": events.USAGE, "input_tokens": 1200, "output_tokens": 34, "cache_read_tokens": 1000,
         "cost_usd": 0.0123, "source": src},
    ]


def piped_stdout(command: list[str], **colour_env: str) -> str:
    """stdout of a real `zag COMMAND` writing to a pipe (not a terminal), with only the given colour
    variables (NO_COLOR, FORCE_COLOR, CLICOLOR_FORCE) set."""
    environ = {key: value for key, value in os.environ.items()
               if key not in ("NO_COLOR", "FORCE_COLOR", "CLICOLOR_FORCE")}
    done = subprocess.run([str(ZAG_BIN), *command], env={**environ, **colour_env}, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def run_read_only(home: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    """Run `zag ARGS` as a process that can read `home` but not write it or its index; None when this
    machine cannot arrange that (root whose capabilities cannot be dropped).

    `home` and its index are made read-only for the call (owner included) and restored after. Root
    ignores file modes, so as root the child drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from its
    bounding set before exec (the capabilities root gets at exec are that set)."""
    index = home / "index.sqlite"
    modes = {path: path.stat().st_mode & 0o7777 for path in (home, index) if path.exists()}
    env = {key: value for key, value in os.environ.items() if key not in ("FORCE_COLOR", "CLICOLOR_FORCE")}
    env["ZAG_HOME"] = str(home)
    probe = home / ".write-probe"
    try:
        for path in modes:
            path.chmod(0o555 if path == home else 0o444)
        denied = subprocess.run([sys.executable, "-c", f"open({str(probe)!r}, 'w')"], env=env,
                                preexec_fn=_drop_root_file_powers, capture_output=True, timeout=60)
        if denied.returncode == 0:
            probe.unlink()
            return None
        return subprocess.run([str(ZAG_BIN), *args], env=env, preexec_fn=_drop_root_file_powers,
                              capture_output=True, text=True, timeout=60)
    finally:
        for path, mode in modes.items():
            path.chmod(mode)


def _drop_root_file_powers() -> None:
    """In the child, before exec: as root, give up overriding file permissions (no-op otherwise)."""
    if os.geteuid() != 0:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop, cap_dac_override, cap_dac_read_search = 24, 1, 2
    for capability in (cap_dac_override, cap_dac_read_search):
        libc.prctl(pr_capbset_drop, capability, 0, 0, 0)
