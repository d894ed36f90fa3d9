"""When zag dies, the agent's whole process tree dies with it: a watchdog process per session.

`PR_SET_PDEATHSIG` (child.py) reaches only zag's direct child. Agent CLIs run as a tree: codex's npm
launcher starts the native binary, gemini relaunches itself in a child node, and their tools start more.
So each session forks a watchdog (`start`) while zag has a single thread (`zag run`: right after the
agent started, so the agent does not wait for it; `zag resume`: before anything). It sits in its own session
(no terminal: Ctrl-C, a hangup or a `kill -9 -<zag's group>` do not reach it), with stdio on /dev/null,
and blocks on a pipe whose only write end zag holds (close-on-exec, so no agent inherits it):

- zag tells it `A<pid>` when it starts a child and `D` when that child has exited and been reaped;
- EOF on the pipe means zag is gone (SIGKILL, crash, OOM): if a child was running, the watchdog ends
  every process whose environment carries this session's `ZAG_SESSION_ID` (every descendant of the
  agent inherits it: /proc/<pid>/environ) and that started no earlier than that child — SIGTERM (and
  SIGCONT, so a stopped one can act on it), then SIGKILL to whatever is left after `GRACE_SECS`,
  rescanning until nothing matches (a process forking meanwhile does not escape). Nothing is killed by
  process group: a headless agent shares zag's group with the shell's pipeline partners;
- a normal end of zag: zag kills the watchdog itself (`stop`, SIGKILL and reap, before zag exits), so it
  never acts. What the agent left running when its child exited (a detached server, a daemon) is the
  user's business, and so are leftovers of earlier children of the session (they started before the
  current child): the start-time bound leaves them alone.

Processes are signalled through pidfds when the kernel has them (no pid-reuse race between the check and
the signal). A process caught inside exec, whose environment reads empty for a moment, is read again
(up to `EXEC_WAIT_SECS`). A process that replaced its environment (`env -i`, an overwritten environ
block) escapes.
Linux only (it needs /proc); elsewhere `start` returns None and PR_SET_PDEATHSIG is all there is.

Forking without exec costs about half a millisecond and no interpreter start-up; the child runs only
functions of modules imported before the fork and leaves with `os._exit`.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import time
from collections.abc import Iterator

GRACE_SECS = 1.0          # between SIGTERM and SIGKILL
POLL_SECS = 0.05          # while the grace lasts: how often to look for survivors and newcomers
KILL_ROUNDS = 50          # SIGKILL scans until one finds nothing (a fork race costs one more round)
KILL_ROUND_SECS = 0.01
EXEC_WAIT_SECS = 0.1      # how long an environment that reads empty is read again (a process inside exec)
EXEC_POLL_SECS = 0.002
_PF_KTHREAD = 0x00200000  # /proc/<pid>/stat flags: a kernel thread (no environment, never ours)
SESSION_VARIABLE = "ZAG_SESSION_ID"


class Watchdog:
    """zag's end of one watchdog: tell it about children, stop it on a normal exit."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self._fd: int | None = fd
        self.armed = False

    def arm(self, child_pid: int) -> None:
        """A child of the session started: from now on zag's death ends its process tree."""
        self.armed = True
        self._send(b"A%d\n" % child_pid)

    def disarm(self) -> None:
        """The child exited and was reaped: what it left behind is no longer the watchdog's business."""
        self.armed = False
        self._send(b"D\n")

    def stop(self) -> None:
        """zag ends normally: the watchdog goes without acting (killed and reaped; idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ChildProcessError, ProcessLookupError, InterruptedError):
            pass
        finally:
            os.close(fd)

    def _send(self, message: bytes) -> None:
        fd = self._fd
        if fd is None:
            return
        try:
            os.write(fd, message)
        except OSError:  # the watchdog is gone (or hung with a full pipe): zag and the agent go on
            pass


def start(session_id: str) -> Watchdog | None:
    """Fork the watchdog of `session_id` (call while zag has a single thread); None where it cannot run."""
    if not sys.platform.startswith("linux") or not os.path.isdir("/proc/self"):
        return None
    needle = f"{SESSION_VARIABLE}={session_id}".encode()
    try:
        read_fd, write_fd = os.pipe()  # close-on-exec: no agent inherits the write end
    except OSError:
        return None
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        return None
    if pid == 0:  # the watchdog
        code = 1
        try:
            os.close(write_fd)
            _detach(read_fd)
            code = serve(read_fd, needle)
        finally:
            os._exit(code)
    os.close(read_fd)
    os.set_blocking(write_fd, False)
    return Watchdog(pid, write_fd)


def _detach(keep_fd: int) -> None:
    """Own session, stdio on /dev/null, no other inherited fd, default signals, no GC of zag's objects."""
    import gc

    gc.disable()
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd != keep_fd:
            try:
                os.close(fd)
            except OSError:
                pass
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    try:
        with open("/proc/self/comm", "w") as comm:  # what ps -o comm, top and pstree show
            comm.write("zag-watchdog")
    except OSError:
        pass


def serve(fd: int, needle: bytes) -> int:
    """Follow zag's messages until EOF; then, if a child was running, end its process tree."""
    since: int | None = None   # start time (clock ticks) of the running child; None: no child runs
    pending = b""
    while True:
        try:
            data = os.read(fd, 4096)
        except InterruptedError:
            continue
        except OSError:
            data = b""
        if not data:
            break
        pending += data
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.startswith(b"A"):
                since = start_ticks(int(line[1:])) or 0  # already gone: every marked process
            elif line == b"D":
                since = None
    if since is None:
        return 0
    ended = terminate(needle, since)
    _note(needle, ended)
    return 0


def terminate(needle: bytes, since: int, *, grace: float = GRACE_SECS) -> list[int]:
    """SIGTERM every process carrying `needle` that started at or after `since` (clock ticks), then
    SIGKILL what is left after `grace`. Returns the pids signalled."""
    signalled: dict[int, int | None] = {}   # pid -> pidfd (None: plain kill)
    own = os.getpid()

    def term_new() -> None:
        for pid, pidfd in marked(needle, since, exclude=own):
            if pid in signalled:
                _close(pidfd)
                continue
            _signal(pid, pidfd, signal.SIGTERM)
            _signal(pid, pidfd, signal.SIGCONT)
            signalled[pid] = pidfd

    try:
        term_new()
        deadline = time.monotonic() + grace
        while signalled and time.monotonic() < deadline:
            if not any(_alive(pid, pidfd) for pid, pidfd in signalled.items()):
                break
            time.sleep(POLL_SECS)
            term_new()
        for _ in range(KILL_ROUNDS):
            found = list(marked(needle, since, exclude=own))
            if not found:
                break
            for pid, pidfd in found:
                _signal(pid, pidfd, signal.SIGKILL)
                _close(pidfd)
                signalled.setdefault(pid, None)
            time.sleep(KILL_ROUND_SECS)
    finally:
        for pidfd in signalled.values():
            _close(pidfd)
    return sorted(signalled)


def marked(needle: bytes, since: int, *, exclude: int = -1) -> Iterator[tuple[int, int | None]]:
    """(pid, pidfd or None) of live processes whose environment holds the entry `needle` and whose start
    time is at least `since`. The pidfd is opened before the checks, so a signal sent through it cannot
    reach a process that reused the pid."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return
    for name in entries:
        if not name.isdigit():
            continue
        pid = int(name)
        if pid == exclude:
            continue
        pidfd = _pidfd(pid)
        if pidfd == -1:
            continue  # gone already
        if _matches(pid, needle, since) and (pidfd is None or not _exited(pidfd)):
            yield pid, pidfd
        else:
            _close(pidfd)


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22); None if gone."""
    stat = _stat(pid)
    return stat[1] if stat is not None else None


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state letter, start ticks, flags) of a process, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read()
        fields = raw[raw.rfind(b")") + 2:].split()  # the command name may hold spaces and parens
        return fields[0].decode(), int(fields[19]), int(fields[6])
    except (OSError, IndexError, ValueError):
        return None


def _matches(pid: int, needle: bytes, since: int) -> bool:
    stat = _stat(pid)
    if stat is None or stat[0] in ("Z", "X") or stat[1] < since or stat[2] & _PF_KTHREAD:
        return False
    environ = _environ(pid)
    # A process inside exec has its new memory but not yet its environment: it reads empty for a moment.
    deadline = time.monotonic() + EXEC_WAIT_SECS
    while environ == b"" and time.monotonic() < deadline:
        time.sleep(EXEC_POLL_SECS)
        environ = _environ(pid)
    return environ is not None and needle in environ.split(b"\0")


def _environ(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return handle.read()
    except OSError:
        return None


_pidfd_open = getattr(os, "pidfd_open", None)
_pidfd_send = getattr(signal, "pidfd_send_signal", None)


def _pidfd(pid: int) -> int | None:
    """A pidfd for `pid`; -1 when there is no such process; None when pidfds are unavailable."""
    if _pidfd_open is None or _pidfd_send is None:
        return None
    try:
        return _pidfd_open(pid)
    except ProcessLookupError:
        return -1
    except OSError as exc:
        return -1 if exc.errno == errno.ESRCH else None


def _exited(pidfd: int) -> bool:
    import select

    try:
        readable, _, _ = select.select([pidfd], [], [], 0)
    except (OSError, ValueError):
        return False
    return bool(readable)


def _alive(pid: int, pidfd: int | None) -> bool:
    if pidfd is not None:
        return not _exited(pidfd)
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def _signal(pid: int, pidfd: int | None, signum: int) -> None:
    try:
        if pidfd is not None and _pidfd_send is not None:
            _pidfd_send(pidfd, signum)
        else:
            os.kill(pid, signum)
    except OSError:
        pass


def _close(pidfd: int | None) -> None:
    if pidfd is not None and pidfd >= 0:
        try:
            os.close(pidfd)
        except OSError:
            pass


def _note(needle: bytes, pids: list[int]) -> None:
    """One line in zag's diagnostics: zag died and these processes of its session were ended."""
    if not pids:
        return
    try:
        import json

        from zag import paths

        line = json.dumps({"event": "watchdog_ended_agent", "level": "warning", "pid": os.getpid(),
                           "session_id": needle.split(b"=", 1)[1].decode(), "pids": pids,
                           "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | paths.NOFOLLOW
        fd = os.open(paths.diagnostics_log(), flags, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
    except Exception:  # noqa: BLE001 - the note is a courtesy; the work is done
        pass
