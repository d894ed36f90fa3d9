"""Telling a live supervisor from a dead one: pid plus the pid's start time, and the heartbeat.

A pid alone is not enough (pids are reused), so the supervisor records its own process start time
(`/proc/<pid>/stat` field 22 plus the boot id on Linux, `ps -o lstart=` elsewhere) and readers compare.

The heartbeat is in the index, which a full disk can stop taking: each beat also sets the session log's
modification time (which needs no free space), and a live supervisor whose log was touched within the
heartbeat window is not dead but beating with its index row stale (`index_stale`).
"""

from __future__ import annotations

import os
import time
from typing import Any

from zag import states

_BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"


def process_start_time(pid: int) -> str | None:
    """An opaque token that is equal only for the same process incarnation; None if no such pid, or
    if it has exited and only its zombie waits for its parent to reap it (a supervisor SIGKILLed under a
    parent that has not waited for it yet is gone, not silent)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except FileNotFoundError:
        return None
    except OSError:
        return _ps_start_time(pid)
    # the command name (field 2) may contain spaces or parens: split after its last ')'
    fields = stat[stat.rfind(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return f"{_boot_id()}:{int(fields[19])}"


def _ps_start_time(pid: int) -> str | None:
    import subprocess  # imported here: only non-Linux systems need it, and `zag ps` start-up counts

    try:
        out = subprocess.run(["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


_boot_id_cache: str | None = None


def _boot_id() -> str:
    global _boot_id_cache
    if _boot_id_cache is None:
        try:
            with open(_BOOT_ID_PATH) as handle:
                _boot_id_cache = handle.read().strip()
        except OSError:
            _boot_id_cache = "noboot"
    return _boot_id_cache


def hostname() -> str:
    """This machine's name (what `socket.gethostname()` returns, without importing socket: ~6 ms)."""
    try:
        return os.uname().nodename
    except AttributeError:  # no os.uname (Windows)
        import socket

        return socket.gethostname()


def supervisor_alive(pid: int | None, started: str | None, host: str | None) -> bool | None:
    """True/False when it can be told from this machine; None for a supervisor on another host."""
    if host and host != hostname():
        return None
    if not pid:
        return False
    return started is not None and process_start_time(pid) == started


def silent_but_running(row: dict[str, Any]) -> bool:
    """For a session `zag ps` calls dead: its supervisor stopped beating, but its process still runs on this
    machine (stopped with Ctrl-Z / SIGSTOP, or the machine just woke up). Not to be taken over or given up."""
    return bool(row.get("supervisor_pid")) and supervisor_alive(
        row.get("supervisor_pid"), row.get("supervisor_started"), row.get("hostname")) is True


def silent_kind(row: dict[str, Any]) -> str | None:
    """For a session `zag ps` calls dead whose supervisor still runs (`silent_but_running`): `stopped` when
    its process is stopped (Ctrl-Z, SIGSTOP: `fg` or `kill -CONT` continues it), else `unresponsive`
    (hung, or the machine just woke up); None when the supervisor is gone."""
    if not silent_but_running(row):
        return None
    return "stopped" if _process_stopped(int(row["supervisor_pid"])) else "unresponsive"


def _process_stopped(pid: int) -> bool:
    """True when `pid` is stopped by a signal or a tracer (Linux /proc; False elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] in (b"T", b"t")


def effective_state(row: dict[str, Any], now: float | None = None) -> str:
    """The state `zag ps` shows: the stored state, or `dead` when a live-claiming supervisor is gone
    (pid missing or reused) or silent for more than `DEAD_AFTER_HEARTBEATS` heartbeats."""
    stored = row.get("state")
    if stored not in states.LIVE_STATES:
        return stored or states.EXITED
    alive = supervisor_alive(row.get("supervisor_pid"), row.get("supervisor_started"), row.get("hostname"))
    if alive is False:
        return states.DEAD
    now = time.time() if now is None else now
    if _beat_missed(row, row.get("last_heartbeat") or row.get("started_at") or 0.0, now):
        return states.DEAD if not alive or _beat_missed(row, _log_touched(row), now) else stored
    return stored


def index_stale(row: dict[str, Any], now: float | None = None) -> bool:
    """For a session shown live: True when its index row missed its heartbeats while its supervisor beat
    on in its log's modification time (the index could not be written: a full disk)."""
    now = time.time() if now is None else now
    return _beat_missed(row, row.get("last_heartbeat") or row.get("started_at") or 0.0, now)


def _beat_missed(row: dict[str, Any], last: float, now: float) -> bool:
    interval = row.get("heartbeat_secs") or 10.0
    return now - last > interval * states.DEAD_AFTER_HEARTBEATS + 1.0


def _log_touched(row: dict[str, Any]) -> float:
    """When the session's log was last written or touched by its supervisor's beat; 0 if unknown."""
    from zag import paths

    try:
        path = paths.session_log(str(row.get("session_id") or ""))
    except ValueError:  # a damaged row's id: never a path
        return 0.0
    for candidate in (path, row.get("log_path")):
        try:
            return os.stat(candidate).st_mtime if candidate else 0.0
        except OSError:
            continue
    return 0.0
