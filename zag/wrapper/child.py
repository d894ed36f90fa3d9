"""Starting the agent as zag's child: in a fresh PTY (interactive) or with piped stdout/stderr (headless).

Either way the child
- dies with zag: Linux `PR_SET_PDEATHSIG` (SIGKILL) is set before exec, and a PTY child also gets the
  kernel's hangup when zag's end of the PTY closes;
- starts with the signal mask zag itself was started with (zag blocks the signals it forwards);
- gets SIGPIPE back at its default, as if started by a shell;
- inherits the descriptors above stderr that zag itself was started with (`3>&1`, the `/dev/fd/63` of a
  process substitution, a jobserver's pipe), as it would from the shell: zag's own are close-on-exec.

PDEATHSIG fires when the *thread* that forked the child ends, so children must be spawned from the main
thread (the supervisor's event loop thread), never from a worker thread.

In a PTY zag's child is the session holder (`holder.py`), which starts the agent in a process group of its
own so that the kernel's job-control stops reach it; `Child.pid` is the agent's pid all the same, and
`Child.popen` the process zag waits for. If the holder cannot start, or does not report within
`HOLDER_REPORT_SECS`, the agent is started directly, after the holder's whole session is killed (a slow
holder may have started an agent already).
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Mapping, Sequence

_PR_SET_PDEATHSIG = 1
HOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "holder.py")
HOLDER_REPORT_SECS = 10.0  # how long zag waits for the holder to report the agent started (a loaded machine)


class ExitStatus:
    """How the child ended: an exit code, or the number of the signal that killed it (immutable; a plain
    class rather than a frozen dataclass, which costs ~1 ms to build at import, before the agent starts)."""

    __slots__ = ("code", "signal")
    code: int | None
    signal: int | None

    def __init__(self, code: int | None, signal: int | None = None) -> None:
        object.__setattr__(self, "code", code)
        object.__setattr__(self, "signal", signal)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"ExitStatus is immutable: cannot set {name}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not ExitStatus:
            return NotImplemented
        return (self.code, self.signal) == (other.code, other.signal)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.code, self.signal))

    def __repr__(self) -> str:
        return f"ExitStatus(code={self.code!r}, signal={self.signal!r})"

    @property
    def exit_code(self) -> int:
        """What zag exits with: the child's code, or 128+N for death by signal N (as shells report)."""
        if self.signal is not None:
            return 128 + self.signal
        return self.code if self.code is not None else 1

    @property
    def signal_name(self) -> str | None:
        if self.signal is None:
            return None
        try:
            return signal.Signals(self.signal).name
        except ValueError:
            return f"SIG{self.signal}"

    @classmethod
    def from_returncode(cls, returncode: int) -> ExitStatus:
        return cls(code=None, signal=-returncode) if returncode < 0 else cls(code=returncode)


class Child:
    """A running agent process and the fds zag reads its output from. `pid` is the agent's; `popen` is zag's
    child, the agent itself or its session holder (`held`), which stops, continues and ends as the agent does."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        argv: list[str],
        *,
        pty_master: int | None = None,
        stdout_fd: int | None = None,
        stderr_fd: int | None = None,
        agent_pid: int | None = None,
    ) -> None:
        self.popen = popen
        self.pid = popen.pid if agent_pid is None else agent_pid
        self.held = agent_pid is not None
        self.argv = argv
        self.pty_master = pty_master
        self.stdout_fd = stdout_fd
        self.stderr_fd = stderr_fd
        self.status: ExitStatus | None = None

    @property
    def interactive(self) -> bool:
        return self.pty_master is not None

    def shares_process_group(self) -> bool:
        """True when the child is in zag's process group (so a terminal signal reached it directly)."""
        try:
            return os.getpgid(self.pid) == os.getpgrp()
        except OSError:
            return False

    def continue_stopped(self) -> None:
        """SIGCONT to zag's child's process group (the agent's; a holder continues the agent's itself)."""
        try:
            os.killpg(self.popen.pid, signal.SIGCONT)
        except OSError:
            pass

    def send_signal(self, signum: int) -> bool:
        """Send `signum` to the child (a holder passes it on to the agent) unless it has already been
        reaped (no pid-reuse race)."""
        if self.status is not None:
            return False
        try:
            self.popen.send_signal(signum)
        except OSError:
            return False
        return self.popen.returncode is None

    def wait(self, on_stop: Callable[[int], None] | None = None) -> ExitStatus:
        """Block until the child exits (call from a worker thread, or after it is known to be gone).
        With `on_stop`, each time the child stops (SIGTSTP, SIGSTOP) `on_stop(signal)` is called first."""
        while on_stop is not None and self.status is None:
            stopped = _wait_for_stop(self.popen.pid)
            if stopped is None:
                break
            on_stop(stopped)
        self.status = ExitStatus.from_returncode(self.popen.wait())
        return self.status

    def reap_if_exited(self) -> ExitStatus | None:
        returncode = self.popen.poll()
        if returncode is None:
            return None
        self.status = ExitStatus.from_returncode(returncode)
        return self.status


def _wait_for_stop(pid: int) -> int | None:
    """Block until child `pid` stops (the stopping signal; the stop is consumed) or exits (None; the exit is
    left for `Popen.wait` to reap). Without `os.waitid` (macOS) stops go unnoticed: None at once."""
    if not hasattr(os, "waitid"):
        return None
    while True:
        try:
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WSTOPPED | os.WNOWAIT)
            if info is None or info.si_code != os.CLD_STOPPED:
                return None
            if os.waitid(os.P_PID, pid, os.WSTOPPED | os.WNOHANG) is not None:
                return info.si_status
        except InterruptedError:
            continue
        except ChildProcessError:  # reaped meanwhile (Popen.poll in another thread)
            return None


def wait_for_foreground(fd: int) -> None:
    """Return once zag's process group may use the terminal `fd`. In the background (`zag run claude &`)
    the kernel stops zag with SIGTTOU until the shell's `fg`, as it stops a TUI that sets terminal modes;
    at once when `fd` is not a terminal or nobody could bring zag to the foreground (orphaned group)."""
    try:
        termios.tcdrain(fd)  # TCSBRK: refused to a background process group, as tcsetattr is
    except termios.error:
        pass


def process_group_orphaned() -> bool:
    """True when zag's process group is orphaned (no process of it has a parent in another group of its
    session: zag runs as a terminal's own command, `script -c`, a tmux pane's, `ssh -t host zag run …`). The
    kernel drops a SIGTSTP to such a group: nobody could continue it. False where /proc cannot tell."""
    group, session = os.getpgrp(), os.getsid(0)
    parent = _process_ids(os.getppid())
    if parent is not None and parent[1] != group and parent[2] == session:
        return False  # the common case: zag is a job of an interactive shell
    try:
        names = os.listdir("/proc")
    except OSError:
        return False
    for name in names:
        member = _process_ids(int(name)) if name.isdigit() else None
        if member is None or member[1] != group:
            continue
        parent = _process_ids(member[0])
        if parent is not None and parent[1] != group and parent[2] == session:
            return False
    return True


def _process_ids(pid: int) -> tuple[int, int, int] | None:
    """(parent pid, process group, session) of `pid` from /proc, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
        fields = stat[stat.rfind(b")") + 2:].split()
        return int(fields[1]), int(fields[2]), int(fields[3])
    except (OSError, ValueError, IndexError):
        return None


def spawn_in_pty(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: str | None,
    *,
    terminal_fd: int | None,
    original_sigmask: set[int] | None = None,
    stderr_fd: int | None = None,
) -> Child:
    """Start `argv` as a session leader whose controlling terminal is a new PTY.

    The PTY starts with the user's terminal modes and window size (from `terminal_fd`), so the agent sees
    the same terminal it would see without zag. `stderr_fd`: the agent's stderr instead of the PTY (zag's
    own stderr when that is not the terminal: `zag run claude 2>err.log`).
    """
    if terminal_fd is not None:
        wait_for_foreground(terminal_fd)  # in the background the modes are the shell's line editor's
    held = _spawn_held(argv, env, cwd, terminal_fd, original_sigmask, stderr_fd)
    if held is not None:
        return held
    master, slave = _open_pty(terminal_fd)
    try:
        popen = _popen_in_pty(list(argv), slave, env, cwd, original_sigmask, stderr_fd)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    os.set_blocking(master, False)
    return Child(popen, list(argv), pty_master=master)


def _open_pty(terminal_fd: int | None) -> tuple[int, int]:
    master, slave = os.openpty()
    if terminal_fd is not None:
        _copy_terminal(terminal_fd, slave)
    return master, slave


def _popen_in_pty(argv: list[str], slave: int, env: Mapping[str, str], cwd: str | None,
                  sigmask: set[int] | None, stderr_fd: int | None,
                  pass_fds: Sequence[int] = ()) -> subprocess.Popen[bytes]:
    """`argv` as the leader of a new session whose controlling terminal is the PTY `slave`."""
    return subprocess.Popen(
        argv,
        stdin=slave,
        stdout=slave,
        stderr=slave if stderr_fd is None else stderr_fd,
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
        pass_fds=(*inherited_fds(), *pass_fds),
        preexec_fn=_child_setup(os.getpid(), controlling_tty=True, sigmask=sigmask),
    )


def _spawn_held(argv: Sequence[str], env: Mapping[str, str], cwd: str | None, terminal_fd: int | None,
                sigmask: set[int] | None, stderr_fd: int | None) -> Child | None:
    """`argv` started by a session holder in a new PTY; None when the holder could not start it (the
    caller starts the agent directly); OSError when the agent's exec failed, as `Popen` would raise it."""
    if (not sys.executable or getattr(sys, "frozen", False)  # a bundled zag: its executable is not Python
            or not sys.platform.startswith("linux") or not hasattr(os, "waitid")):
        return None
    report_r, report_w = os.pipe()
    master, slave = _open_pty(terminal_fd)
    try:
        holder_argv = [sys.executable, "-I", "-S", HOLDER, str(report_w), *argv]
        popen = _popen_in_pty(holder_argv, slave, env, cwd, sigmask, stderr_fd, pass_fds=(report_w,))
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        _holder_failed(f"cannot start: {exc}")
        for fd in (master, report_r):
            os.close(fd)
        return None
    finally:
        os.close(slave)
        os.close(report_w)
    try:
        report = _read_report(report_r, HOLDER_REPORT_SECS)
    finally:
        os.close(report_r)
    if report.isdigit():
        os.set_blocking(master, False)
        return Child(popen, list(argv), pty_master=master, agent_pid=int(report))
    _end_holder(popen)
    os.close(master)
    code = int(report[1:]) if report[:1] == b"E" and report[1:].isdigit() else 0
    if code:
        raise OSError(code, os.strerror(code), argv[0])
    _holder_failed(f"no report ({report[:100]!r}; exit status {popen.returncode})")
    return None


def _read_report(fd: int, timeout: float) -> bytes:
    """The holder's one-line report (without its newline); b"" at EOF or after `timeout` seconds."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(int(left * 1000) + 1):
            return b""
        try:
            chunk = os.read(fd, 64)
        except InterruptedError:
            continue
        if not chunk:
            return b""
        data += chunk
    return data.strip()


def _end_holder(popen: subprocess.Popen[bytes]) -> None:
    """A holder that failed, and all it started, killed and the holder reaped. A holder merely slow to
    report may have started the agent, and the agent its own children (an npm shim, codex's native binary):
    PDEATHSIG takes only the agent itself, so zag kills the holder's whole session before it starts the
    agent directly: one agent, never two, against the user's terminal and files."""
    try:
        popen.kill()
    except OSError:
        pass
    try:  # dead but not reaped: its pid, the session's id, cannot name another session meanwhile
        os.waitid(os.P_PID, popen.pid, os.WEXITED | os.WNOWAIT)
    except ChildProcessError:
        pass
    _kill_session(popen.pid)
    popen.wait()


def _kill_session(sid: int, timeout: float = 5.0) -> None:
    """SIGKILL every process of session `sid` (but its leader) until none is left, or `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        members = [pid for pid in _session_members(sid) if pid != sid]
        if not members or time.monotonic() > deadline:
            if members:
                _holder_failed(f"processes of its session still run after SIGKILL: {members[:10]}")
            return
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.01)


def _session_members(sid: int) -> list[int]:
    """The pids of the living (not zombie) processes whose session is `sid`, from /proc."""
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 3 and fields[0] != b"Z" and fields[3] == b"%d" % sid:
            members.append(int(name))
    return members


def _holder_failed(why: str) -> None:
    from zag import diag

    diag.warning("session_holder_failed", reason=why)


def spawn_with_pipes(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: str | None,
    *,
    original_sigmask: set[int] | None = None,
) -> Child:
    """Start `argv` in zag's process group with stdout/stderr on pipes zag relays; stdin is inherited."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        popen = subprocess.Popen(
            list(argv),
            stdout=out_w,
            stderr=err_w,
            env=dict(env),
            cwd=cwd,
            pass_fds=inherited_fds(),
            preexec_fn=_child_setup(os.getpid(), controlling_tty=False, sigmask=original_sigmask),
        )
    except BaseException:
        os.close(out_r)
        os.close(err_r)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
    os.set_blocking(out_r, False)
    os.set_blocking(err_r, False)
    return Child(popen, list(argv), stdout_fd=out_r, stderr_fd=err_r)


def inherited_fds() -> tuple[int, ...]:
    """The inheritable descriptors above stderr: those zag was started with, since every descriptor zag
    opens itself is close-on-exec (PEP 446; SQLite's too). Without them the agent would lose what the shell
    gave it (`zag run claude --mcp-config <(…)` names /dev/fd/63)."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        fds = []
        for name in names:
            fd = int(name) if name.isdigit() else -1
            try:
                if fd > 2 and os.get_inheritable(fd):
                    fds.append(fd)
            except OSError:  # the listing's own descriptor, closed by now
                pass
        return tuple(sorted(fds))
    return ()


def _copy_terminal(terminal_fd: int, pty_fd: int) -> None:
    try:
        termios.tcsetattr(pty_fd, termios.TCSANOW, termios.tcgetattr(terminal_fd))
    except termios.error:
        pass
    size = get_window_size(terminal_fd)
    if size is not None:
        set_window_size(pty_fd, size)


def get_window_size(fd: int) -> bytes | None:
    """The packed `struct winsize` of a terminal, or None if `fd` is not one."""
    try:
        return fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None


def set_window_size(fd: int, size: bytes) -> None:
    """Set a PTY's window size; the kernel then sends SIGWINCH to its foreground process group."""
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def _child_setup(parent_pid: int, *, controlling_tty: bool, sigmask: set[int] | None) -> Callable[[], None]:
    """The function run in the forked child before exec. It must not import or take locks."""
    prctl = _load_prctl()
    mask = set(sigmask or ())
    set_mask = signal.pthread_sigmask
    setmask_how = signal.SIG_SETMASK
    ioctl = fcntl.ioctl
    sctty = termios.TIOCSCTTY
    getppid = os.getppid
    kill = os.kill
    getpid = os.getpid
    sigchld_ignored = _take_sigchld()
    set_handler = signal.signal

    def setup() -> None:
        set_mask(setmask_how, mask)
        if sigchld_ignored:  # as the child would have inherited it without zag
            set_handler(signal.SIGCHLD, signal.SIG_IGN)
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if getppid() != parent_pid:  # zag died between fork and prctl
                kill(getpid(), signal.SIGKILL)
        if controlling_tty:
            ioctl(0, sctty, 0)

    return setup


_sigchld_ignored: list[bool] = []


def _take_sigchld() -> bool:
    """True when zag was started with SIGCHLD ignored (a parent that ignores it passes that on across exec),
    which zag then sets to its default, once: ignored, the kernel reaps zag's children unseen and their exit
    status is lost (`Popen.wait` says 0). The children get it back ignored (`_child_setup`)."""
    if not _sigchld_ignored:
        ignored = False
        try:
            ignored = signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN
            if ignored:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        except (ValueError, OSError):  # not the main thread: as before
            ignored = False
        _sigchld_ignored.append(ignored)
    return _sigchld_ignored[0]


_prctl_cache: list[Callable[..., int] | None] = []


def _load_prctl() -> Callable[..., int] | None:
    if not _prctl_cache:
        function = None
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                function = ctypes.CDLL(None, use_errno=True).prctl
            except (OSError, AttributeError):
                function = None
        _prctl_cache.append(function)
    return _prctl_cache[0]
