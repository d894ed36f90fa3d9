"""The session holder: the small process `zag run` starts in the agent's PTY, which then starts the agent.

Without it the agent would lead the PTY's session itself, and its process group would be orphaned (the
group's only outside parent, zag, is in another session). The kernel drops a SIGTSTP, SIGTTIN or SIGTTOU
whose action is to stop when it reaches an orphaned group: the Ctrl-Z of a line-reading agent, and the
`raise(SIGTSTP)` of one that suspends itself (rustyline, readline, Ink), would do nothing. The holder leads
the session instead, as a login shell does: the agent runs in a process group of its own, the terminal's
foreground group, whose parent (the holder) is in the same session. The group is not orphaned, and the
kernel stops the agent exactly as it would without zag.

    python -I -S holder.py <report fd> <agent argv...>

- The agent is forked into its own process group, given the terminal (tcsetpgrp) and exec'd with the
  holder's environment, folder, descriptors and signal mask (zag started the holder with the agent's),
  SIGPIPE and SIGXFSZ at their defaults, and PR_SET_PDEATHSIG SIGKILL: it dies with the holder, which dies
  with zag.
- The holder reports on `<report fd>`: `<pid>\\n` once the agent's exec succeeded, `E<errno>\\n` if it
  failed (zag raises that error as if it had started the agent itself). Nothing (EOF, or no report in
  10 s), or `E0\\n` (the child failed otherwise): zag kills the holder's session (the agent it may have
  started late, and that agent's children) and starts the agent directly instead.
- When the agent stops, the holder stops itself with SIGSTOP (never dropped), so that zag sees its child
  stop; continued (zag's SIGCONT on `fg`), it gives the terminal back to the agent's group and continues it.
- SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are passed on to the agent (zag forwards them);
  so are the SIGHUP and SIGCONT the kernel sends the session leader when the PTY hangs up (zag closed its
  master), whatever the holder's own dispositions: the agent gets them as when it led the session.
- The holder exits with the agent's exit code, or dies of the signal that killed it (no core dump).

It must stay cheap, being one more process per interactive run: no site (`-S`), no user paths (`-I`), and
only built-in modules (`posix`, `_signal`, `_ctypes` for prctl; `signal` and `os` would cost ~6 ms of
imports): ~10 ms to start, ~8 MiB resident.
"""

import _signal
import posix
import sys

SIGCHLD, SIGCONT, SIGKILL, SIGSTOP = _signal.SIGCHLD, _signal.SIGCONT, _signal.SIGKILL, _signal.SIGSTOP
FORWARDED = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT, _signal.SIGUSR1, _signal.SIGUSR2)
WAITED = (SIGCHLD, SIGCONT, *FORWARDED)  # blocked (queued even if ignored); a blocked SIGCONT still continues
BLOCKED = (*WAITED, _signal.SIGTTOU, _signal.SIGTTIN)  # tcsetpgrp from a background group needs SIGTTOU so
SI_KERNEL = 0x80  # si_code of a signal the kernel sent itself (the PTY's hangup), not zag
RESTORED = (_signal.SIGPIPE, _signal.SIGXFSZ)  # ignored by Python at start-up; default for the agent (subprocess's)
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
TERMINAL = 0  # the PTY, also the holder's controlling terminal
DEFAULT_PATH = "/bin:/usr/bin"


def main(argv: list) -> None:
    """Start the agent `argv[2:]`, report to fd `argv[1]`, then hold its session until it ends."""
    report = int(argv[1])
    posix.set_inheritable(report, False)
    _name("zag-holder")
    mask = _signal.pthread_sigmask(_signal.SIG_BLOCK, BLOCKED)
    # an ignored SIGCHLD (inherited across exec) would reap the agent unseen: no SIGCHLD, ECHILD, a hang
    chld = _signal.signal(SIGCHLD, _signal.SIG_DFL)
    prctl = _load_prctl()
    holder = posix.getpid()
    ready_r, ready_w = posix.pipe()  # close-on-exec: EOF once the agent's exec succeeded
    agent = posix.fork()
    if agent == 0:
        posix.close(ready_r)
        _become_agent(argv[2:], mask, chld, prctl, holder, ready_w)
    posix.close(ready_w)
    failure = _read_all(ready_r)
    posix.close(ready_r)
    if failure:
        _report(report, b"E" + failure + b"\n")
        posix.waitpid(agent, 0)
        posix._exit(127)
    _report(report, b"%d\n" % agent)
    _hold(agent, prctl)


def _become_agent(argv: list, mask: set, chld: object, prctl: object, holder: int, ready_w: int) -> None:
    """In the forked child: own process group, the terminal's foreground, then exec (never returns)."""
    code = b"0"
    try:
        posix.setpgid(0, 0)
        try:
            posix.tcsetpgrp(TERMINAL, posix.getpid())
        except OSError:
            pass
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)
            if posix.getppid() != holder:  # the holder died between fork and prctl
                posix.kill(posix.getpid(), SIGKILL)
        for signum in RESTORED:
            _signal.signal(signum, _signal.SIG_DFL)
        if chld == _signal.SIG_IGN:  # as the agent would have inherited it without zag
            _signal.signal(SIGCHLD, _signal.SIG_IGN)
        _signal.pthread_sigmask(_signal.SIG_SETMASK, mask)
        _exec(argv)
    except OSError as exc:
        code = b"%d" % (exc.errno or 0)
    except BaseException:  # noqa: BLE001 - must reach _exit whatever happened
        pass
    try:
        posix.write(ready_w, code)
    finally:
        posix._exit(127)


def _exec(argv: list) -> None:
    """execve `argv`, searching the PATH of the environment for a bare name (as `os.execvpe` does)."""
    env = posix.environ
    file = argv[0]
    if "/" in file:
        posix.execve(file, argv, env)
    path = env.get(b"PATH")
    folders = path.decode("utf-8", "surrogateescape") if path is not None else DEFAULT_PATH
    saved = last = None
    for folder in folders.split(":"):
        try:
            posix.execve((folder or ".") + "/" + file, argv, env)
        except (FileNotFoundError, NotADirectoryError) as exc:
            last = exc
        except OSError as exc:
            last = exc
            saved = saved or exc
    raise saved or last or FileNotFoundError(2, "No such file or directory", file)


def _hold(agent: int, prctl: object) -> None:
    """Pass signals on to the agent and follow its stops until it ends; end the same way (never returns)."""
    while True:
        info = _signal.sigwaitinfo(WAITED)
        signum = info.si_signo
        if signum == SIGCONT:
            if info.si_code == SI_KERNEL:  # with the PTY's hangup; zag's own SIGCONT only continued us
                _forward(agent, signum)
            continue
        if signum != SIGCHLD:
            _forward(agent, signum)
            continue
        while True:
            try:
                pid, status = posix.waitpid(agent, posix.WNOHANG | posix.WUNTRACED)
            except ChildProcessError:
                posix._exit(1)
            if pid == 0:
                break
            if posix.WIFSTOPPED(status):
                _stop_with(agent)
            else:
                _end_like(status, prctl)


def _stop_with(agent: int) -> None:
    """The agent stopped: stop the holder too (zag sees its child stop); once continued, continue the agent
    in the foreground, after the signals that came meanwhile (`kill %1` sends SIGTERM with its SIGCONT)."""
    posix.kill(posix.getpid(), SIGSTOP)  # delivered before kill returns: from here on we were continued
    while True:  # and the SIGCONTs that continued us: the agent gets its own below
        info = _signal.sigtimedwait((SIGCONT, *FORWARDED), 0)
        if info is None:
            break
        if info.si_signo != SIGCONT:
            _forward(agent, info.si_signo)
    try:
        if posix.tcgetpgrp(TERMINAL) != agent:
            posix.tcsetpgrp(TERMINAL, agent)
    except OSError:  # the terminal hung up
        pass
    try:
        posix.killpg(agent, SIGCONT)
    except OSError:
        pass


def _forward(agent: int, signum: int) -> None:
    try:
        posix.kill(agent, signum)
    except OSError:
        pass


def _end_like(status: int, prctl: object) -> None:
    """Exit with the agent's code, or die of the signal that killed it (never returns)."""
    if not posix.WIFSIGNALED(status):
        posix._exit(posix.waitstatus_to_exitcode(status))
    signum = posix.WTERMSIG(status)
    try:
        if prctl is not None:
            prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # a SIGSEGV or SIGQUIT dumps no core of the holder
        if signum != SIGKILL:  # whose disposition cannot be set (EINVAL): it kills as it is
            _signal.signal(signum, _signal.SIG_DFL)
            _signal.pthread_sigmask(_signal.SIG_UNBLOCK, (signum,))
        posix.kill(posix.getpid(), signum)
    except (OSError, ValueError):
        pass
    posix._exit(128 + signum)


def _report(fd: int, message: bytes) -> None:
    try:
        posix.write(fd, message)
    except OSError:
        pass
    posix.close(fd)


def _read_all(fd: int) -> bytes:
    data = b""
    while True:
        try:
            chunk = posix.read(fd, 64)
        except InterruptedError:
            continue
        if not chunk:
            return data
        data += chunk


def _name(comm: str) -> None:
    """What ps -o comm, top and pstree show for the holder."""
    try:
        fd = posix.open("/proc/self/comm", posix.O_WRONLY)
    except OSError:
        return
    try:
        posix.write(fd, comm.encode())
    except OSError:
        pass
    finally:
        posix.close(fd)


def _load_prctl() -> object:
    """libc's prctl through `_ctypes` alone (the `ctypes` package costs ~4 ms of imports); None without."""
    try:
        import _ctypes

        class Int(_ctypes._SimpleCData):
            _type_ = "i"

        class Function(_ctypes.CFuncPtr):
            _flags_ = _ctypes.FUNCFLAG_CDECL
            _restype_ = Int

        class Libc:
            _handle = _ctypes.dlopen(None, 0)

        return Function(("prctl", Libc))
    except Exception:  # noqa: BLE001 - no prctl: the agent then dies with the PTY's hangup only
        return None


if __name__ == "__main__":
    main(sys.argv)
