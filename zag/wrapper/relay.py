"""Copying the child's output to the user byte for byte (and, for a PTY, keystrokes to the child).

The relay is one blocking `poll` loop run in a worker thread: writes to the user's terminal or pipe may
block (a paused terminal, a pager that stops reading) and must hold back only the child's output, as they
would without zag, never the supervisor's heartbeat. Output is read until end-of-file (EOF on a pipe,
EIO on a PTY whose other side is closed), so nothing the child wrote just before exiting is lost; if a
grandchild keeps the output open after the child exited, the relay gives up once the output has been idle
for `DRAIN_IDLE_SECS` or after `DRAIN_MAX_SECS`.

Each chunk read is written out at once (a PTY read returns at most 4 KiB: batching reads before writing
would leave the agent blocked on a full PTY while the terminal waits, and the two would take turns instead
of overlapping), and queued for the observers (`observation.py`: the provider's output scanner, the
usage-limit engine's screen) in batches, and so are the user's keystrokes (the engine tells a pasted limit
message from the agent's own). The observers run on their own thread: the relay never waits for them (it
only shares the interpreter lock with them), and the data is never changed.

When the user's terminal hangs up (end-of-file or EIO reading it, EIO writing to it, and its modes no longer
readable: `terminal.hung_up`), the relay hangs up the agent's terminal the way the kernel hung up the user's:
it lets go of the PTY's master, and closing a master hangs up its other side (Linux `pty_close`), so the
agent, the PTY's session leader, gets SIGHUP and SIGCONT, and its reads return end-of-file and its writes
fail with EIO, as they would in the user's terminal without zag. An agent that ignores SIGHUP (`nohup`,
`trap '' HUP`) learns it from end-of-file; without this it would wait for keys forever in a PTY zag kept
open. What the agent wrote just before is still read for the observers.

The user's keystrokes go to the agent's PTY from a thread of their own (`_relay_input`), as the kernel
delivers them without zag whatever the agent's output is doing: a write of output to the user's terminal
blocks the relay's loop while the terminal does not read, and a terminal (or a pexpect script) that does
not read until its keys are taken (a paste into a raw-mode agent that prints meanwhile) would wait on zag
while zag waited on it. Only when the system refuses that thread does the loop read the keyboard itself.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import termios
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from zag.wrapper.child import set_window_size
from zag.wrapper.observation import Observation, Observe, OnInput
from zag.wrapper.terminal import hung_up
from zag.wrapper.threads import start as start_thread

if TYPE_CHECKING:
    from collections.abc import Callable

READ_SIZE = 65536
BATCH_LIMIT = 1 << 20  # bytes read from one output before the others (and the keyboard) get a turn
OBSERVE_BYTES = 64 * 1024
DRAIN_IDLE_SECS = 0.5
DRAIN_MAX_SECS = 5.0
INPUT_JOIN_SECS = 1.0     # how long the end of the relay waits for the keyboard's thread
INPUT_BACKLOG = 65536     # keys taken from the user's terminal and not yet into the agent's PTY, at most
SUSPEND_WATCH_SECS = 3.0  # after Ctrl-Z to a raw-mode agent: how long its leaving raw mode means suspend
SUSPEND_POLL_MS = 10      # and how often its terminal's modes are looked at meanwhile

_IN = select.POLLIN | select.POLLPRI
_GONE = select.POLLHUP | select.POLLERR | select.POLLNVAL


class Output:
    """One of the child's output fds (ours, non-blocking) and where its bytes go (a plain class: see
    `supervisor.RunRequest`)."""

    __slots__ = ("fd", "dest", "stream", "broken")

    def __init__(self, fd: int, dest: int, stream: str, broken: bool = False) -> None:
        self.fd = fd
        self.dest = dest
        self.stream = stream      # "pty" | "stdout" | "stderr"
        self.broken = broken      # the destination went away; bytes are read and dropped


class Relay:
    """Moves bytes between the child and the user until the child's output ends."""

    def __init__(
        self,
        outputs: Sequence[Output],
        *,
        observe: Observe | None = None,
        pty_master: int | None = None,
        stdin_fd: int | None = None,
        on_input: OnInput | None = None,
        observation: Observation | None = None,
        on_hangup: Callable[[], None] | None = None,
        stop_on_suspend: bool = True,
    ) -> None:
        """`observe`/`on_input` start the observers at once; without them, output and keystrokes queue
        in `observation` until `observation.start(...)` (or `disable()`). `on_hangup` is called (in the
        relay's thread, once) when the user's terminal hung up. `stop_on_suspend`: the agent leads its PTY's
        session (no session holder), so its suspend key needs `_on_suspend_key`."""
        self._outputs = {output.fd: output for output in outputs}
        self.observation = observation or Observation()
        if observe is not None or on_input is not None:
            self.observation.start(observe, on_input)
        self._pty_master = pty_master
        self._stop_on_suspend = stop_on_suspend
        self._stdin_fd = stdin_fd
        self._pending_input = bytearray()
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._input_wake_r, self._input_wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._input_thread: threading.Thread | None = None
        self._input_done = False
        self._child_exited = False
        self._stopped = False
        self._suspend_watch_until: float | None = None
        self._cooked_since: float | None = None
        self._lflag_at_key = 0
        self._closed = False
        self._poller = select.poll()
        self._on_hangup = on_hangup
        # "stdout: No space left on device": output that could not be written where it goes (a full disk),
        # which the agent cannot learn as it would without zag once it has written it into zag's pipe
        self.lost_output: str | None = None
        self._hangup_requested = False
        self.hung_up = False  # the agent's terminal was hung up (`hang_up`)
        self._hangup_seen = False

    # -- thread-safe controls ----------------------------------------------------------------------
    def send(self, data: bytes) -> bool:
        """Type `data` into the child's PTY (e.g. a resume message); False without a live PTY."""
        with self._lock:
            if self._pty_master is None or self._closed or self._pty_master not in self._outputs:
                return False
            self._pending_input += data
        self._wake()
        self._wake_input()
        return True

    def resize(self, size: bytes) -> None:
        """Give the child's PTY this window size (the kernel signals SIGWINCH to the agent)."""
        with self._lock:
            if self._pty_master is not None and not self._closed:
                set_window_size(self._pty_master, size)

    def hang_up(self) -> bool:
        """The user's terminal hung up: hang up the agent's too (any thread; the relay's thread does it).
        False when there is no PTY left to hang up (the relay ended: the agent's output is closed)."""
        with self._lock:
            if self.hung_up:
                return True
            if self._closed or self._pty_master is None or self._pty_master not in self._outputs:
                return False
            self._hangup_requested = True
        self._wake()
        return True

    def child_exited(self) -> None:
        """The child is gone: stop reading the user's keyboard, drain what is left, then return."""
        self._child_exited = True
        self._wake()
        self._wake_input()

    def stop(self) -> None:
        """Return from `run` as soon as possible (zag is shutting down)."""
        self._stopped = True
        self._wake()
        self._wake_input()

    def close(self) -> None:
        """Close the child's output fds (after `run` returned) and the wake pipe; the observers get
        what is queued still (`observation.finish` waits for that)."""
        self.observation.stop()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            fds = set(self._outputs) | {self._wake_r, self._wake_w, self._input_wake_r, self._input_wake_w}
            if self._pty_master is not None:
                fds.add(self._pty_master)
            self._outputs.clear()
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass

    # -- the loop ----------------------------------------------------------------------------------
    def run(self) -> None:
        poller = self._poller
        for fd in self._outputs:
            poller.register(fd, _IN)
        poller.register(self._wake_r, _IN)
        reading_stdin = self._stdin_fd is not None and not self._start_input()
        if reading_stdin:
            poller.register(self._stdin_fd, _IN)
        try:
            self._loop(poller, reading_stdin)
        finally:
            self._end_input()

    def _loop(self, poller: select.poll, reading_stdin: bool) -> None:
        exit_seen_at: float | None = None
        last_data = time.monotonic()
        while self._outputs and not self._stopped:
            if self._child_exited and exit_seen_at is None:
                exit_seen_at = last_data = time.monotonic()
                if reading_stdin:
                    poller.unregister(self._stdin_fd)
                    reading_stdin = False
            timeout = _drain_timeout_ms(exit_seen_at, last_data)
            if timeout == 0:
                break
            if self._suspend_watch_until is not None:
                self._watch_raw_suspend()
                timeout = SUSPEND_POLL_MS if timeout < 0 else min(timeout, SUSPEND_POLL_MS)
            self._watch_pty_writable()
            for fd, mask in poller.poll(timeout):
                if fd == self._wake_r:
                    _drain_wake_pipe(fd)
                elif fd == self._stdin_fd and reading_stdin:
                    reading_stdin = self._read_stdin()
                    if not reading_stdin:
                        poller.unregister(fd)
                elif fd in self._outputs:
                    if mask & select.POLLOUT:
                        self._write_input()
                    if mask & (_IN | _GONE) and self._pump(self._outputs[fd]):
                        last_data = time.monotonic()
            if self._hangup_requested:
                self._hang_up_pty()

    # -- the keyboard -----------------------------------------------------------------------------
    def _start_input(self) -> bool:
        """Relay the keyboard from a thread of its own; False when the system refuses it."""
        if self._pty_master is None:
            return False
        thread = threading.Thread(target=self._relay_input, name="zag-input", daemon=True)
        if not start_thread(thread):
            return False
        self._input_thread = thread
        return True

    def _end_input(self) -> None:
        thread = self._input_thread
        if thread is None:
            return
        self._input_done = True
        self._wake_input()
        thread.join(INPUT_JOIN_SECS)

    def _relay_input(self) -> None:
        """The keyboard's thread: the user's keys into the agent's PTY until the child exits, the relay
        ends or the keyboard does; a hang-up or a suspend key seen is handed to the relay's loop."""
        try:
            self._input_loop()
        except Exception:  # noqa: BLE001 - a fault of zag's: said in its diagnostics, never on the terminal
            from zag import diag

            diag.exception("thread_failed", thread="zag-input")
        finally:
            self._wake()  # the loop looks at what the keys asked for (`_hangup_requested`, a suspend watch)

    def _input_loop(self) -> None:
        stdin, master = self._stdin_fd, self._pty_master
        assert stdin is not None and master is not None
        poller = select.poll()
        poller.register(self._input_wake_r, _IN)
        poller.register(stdin, _IN)
        watching_master, taking_keys = False, True
        while not (self._input_done or self._stopped or self._child_exited):
            if (len(self._pending_input) < INPUT_BACKLOG) != taking_keys:
                taking_keys = not taking_keys  # a hang-up is still seen (POLLHUP) while keys wait in the terminal
                poller.modify(stdin, _IN if taking_keys else 0)
            want = bool(self._pending_input) and master in self._outputs
            if want != watching_master:
                if want:
                    poller.register(master, select.POLLOUT)
                else:
                    poller.unregister(master)
                watching_master = want
            for fd, mask in poller.poll():
                if fd == self._input_wake_r:
                    _drain_wake_pipe(fd)
                elif fd == master:
                    self._write_input()
                    if mask & _GONE and not mask & select.POLLOUT:
                        with self._lock:
                            self._pending_input.clear()  # the agent's side is closed: nothing reads them
                elif fd == stdin and not (self._child_exited or self._input_done) and not self._read_stdin():
                    return

    def _wake_input(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                os.write(self._input_wake_w, b"x")
            except OSError:
                pass

    def _pump(self, output: Output) -> bool:
        """Read what is available (until EAGAIN, or `BATCH_LIMIT` bytes), writing each chunk out as it
        comes and handing it to the observers in batches of `OBSERVE_BYTES` (each hand-over may wake
        their thread: fewer of them, fewer switches between the threads); close the output at EOF.
        True if data came."""
        fd, dest, stream = output.fd, output.dest, output.stream
        put = self.observation.put
        read = os.read
        total = 0
        seen: list[bytes] = []
        seen_bytes = 0
        while total < BATCH_LIMIT:
            try:
                data = read(fd, READ_SIZE)
            except BlockingIOError:
                break
            except OSError:  # EIO: the PTY's other side is closed
                self._end_output(output)
                break
            if not data:
                self._end_output(output)
                break
            total += len(data)
            error = None if output.broken else _write_all(dest, data)
            closed = error is not None and self._broken(output, error)
            seen.append(data)
            seen_bytes += len(data)
            if seen_bytes >= OBSERVE_BYTES:
                put(stream, b"".join(seen))
                seen, seen_bytes = [], 0
            if closed:
                break
        if seen:
            put(stream, seen[0] if len(seen) == 1 else b"".join(seen))
        return total > 0

    def _broken(self, output: Output, error: OSError) -> bool:
        """The destination went away, or refused the bytes (`error`); True if the child's output was closed
        because of it."""
        output.broken = True
        if error.errno in _LOST_OUTPUT and self.lost_output is None:
            self.lost_output = f"{output.stream}: {error.strerror}"
        if output.fd == self._pty_master:
            if hung_up(output.dest):
                self._hangup_requested = True  # done once this read is over
            return False
        # the reader of our stdout/stderr is gone: close the child's pipe so it learns the same way it
        # would without zag (EPIPE / SIGPIPE on its next write)
        self._end_output(output)
        return True

    def _end_output(self, output: Output) -> None:
        with self._lock:
            if self._outputs.pop(output.fd, None) is None:
                return
            try:
                self._poller.unregister(output.fd)
            except (KeyError, ValueError):
                pass
            if output.fd == self._pty_master:
                self._pending_input.clear()
                return  # the master stays open until close(): `resize` may still race with us
        try:
            os.close(output.fd)
        except OSError:
            pass

    def _read_stdin(self) -> bool:
        try:
            data = os.read(self._stdin_fd, READ_SIZE)  # type: ignore[arg-type]
        except BlockingIOError:
            return True
        except OSError:
            data = b""
        if not data:
            if hung_up(self._stdin_fd):  # type: ignore[arg-type]
                self._hangup_requested = True
            return False
        master = self._pty_master if self._stop_on_suspend else None
        modes = _terminal_modes(master) if master is not None else None  # as the keys will find them
        with self._lock:
            self._pending_input += data
        self._write_input()
        if modes is not None:
            self._on_suspend_key(master, modes, data)  # type: ignore[arg-type]
            if self._suspend_watch_until is not None:
                self._wake()  # the relay's loop watches the agent's modes (from the keyboard's thread)
        self.observation.put_input(data)
        return True

    def _hang_up_pty(self) -> None:
        """Hang up the agent's terminal (see the module docstring), then tell `on_hangup` (once)."""
        self._hangup_requested = False
        master = self._pty_master
        output = self._outputs.get(master) if master is not None else None
        if output is not None:
            output.broken = True  # the user's terminal is gone: what the agent wrote last is only observed
            self._pump(output)
        with self._lock:
            if master is not None and master in self._outputs and _let_go(master):
                del self._outputs[master]
                try:
                    self._poller.unregister(master)
                except (KeyError, ValueError):
                    pass
                self._pending_input.clear()
                self.hung_up = True
        if not self._hangup_seen:
            self._hangup_seen = True
            if self._on_hangup is not None:
                self._on_hangup()

    def _write_input(self) -> None:
        with self._lock:
            master = self._pty_master
            if master is None or not self._pending_input or master not in self._outputs:
                return
            try:
                written = os.write(master, self._pending_input)
            except BlockingIOError:
                return
            except OSError:
                self._pending_input.clear()
                return
            del self._pending_input[:written]

    def _watch_pty_writable(self) -> None:
        master = self._pty_master
        if master is None or master not in self._outputs:
            return
        mask = _IN | select.POLLOUT if self._pending_input else _IN
        try:
            self._poller.modify(master, mask)
        except (KeyError, ValueError, OSError):
            pass

    def _on_suspend_key(self, master: int, attrs: list, data: bytes) -> None:
        """If `data` holds the suspend key (Ctrl-Z) and the agent's terminal (modes `attrs`) turns it into
        SIGTSTP (ISIG), stop the agent now; if the agent reads keys raw, watch whether it leaves raw mode
        (`_watch_raw_suspend`)."""
        key = attrs[6][termios.VSUSP]
        if key in (b"\0", 0) or key not in data:
            return
        if attrs[3] & termios.ISIG:
            _stop_foreground(master)
        else:
            self._suspend_watch_until = time.monotonic() + SUSPEND_WATCH_SECS
            self._lflag_at_key = attrs[3]

    def _watch_raw_suspend(self) -> None:
        """A raw-mode agent got Ctrl-Z: one that suspends itself gives its terminal its cooked modes back,
        then signals its group with SIGTSTP, which the kernel drops (`_stop_foreground`); stop it then."""
        master, until, now = self._pty_master, self._suspend_watch_until, time.monotonic()
        try:
            turned_on = master is not None and termios.tcgetattr(master)[3] & ~self._lflag_at_key
            left_raw = bool(turned_on & (termios.ICANON | termios.ISIG))
        except termios.error:
            left_raw = False
        if not left_raw:
            self._cooked_since = None
            if master is None or until is None or now > until:
                self._suspend_watch_until = None
        elif self._cooked_since is None:
            self._cooked_since = now  # stopped at the next look: by then it has armed its SIGCONT handler
        else:
            self._suspend_watch_until = self._cooked_since = None
            _stop_foreground(master)  # type: ignore[arg-type]

    def _wake(self) -> None:
        with self._lock:  # never write to the fd number once closed: it may belong to another file
            if self._closed:
                return
            try:
                os.write(self._wake_w, b"x")
            except OSError:  # full: a wake-up is pending anyway
                pass


def _let_go(master: int) -> bool:
    """Drop zag's reference to a PTY master, the last one: the kernel hangs up the PTY. The fd number is kept
    (on /dev/null) until `Relay.close`, so that a late `resize` or a look at the agent's terminal modes never
    reaches a file that took the number over."""
    try:
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        os.dup2(null, master, inheritable=False)
    except OSError:
        return False
    finally:
        os.close(null)
    return True


def _terminal_modes(fd: int) -> list | None:
    try:
        return termios.tcgetattr(fd)
    except termios.error:
        return None


def _stop_foreground(master: int) -> None:
    """Stop the agent's terminal's foreground process group with SIGSTOP, as SIGTSTP would stop it without
    zag. Only for an agent started without the session holder (`holder.py`, which it could not start): the
    kernel drops a SIGTSTP whose default action is to stop when it reaches an orphaned process group, and
    such an agent's is one (it leads its own session, zag is outside): the Ctrl-Z of a line-reading agent,
    and the `kill(0, SIGTSTP)` of a TUI suspending itself (claude 2.1's Ink does that), would do nothing.
    An agent that catches or ignores SIGTSTP is left alone."""
    try:
        group = os.tcgetpgrp(master)
        if os.getsid(group) == group and _stops_on(group, signal.SIGTSTP):
            os.killpg(group, signal.SIGSTOP)
    except OSError:
        pass


def _stops_on(pid: int, signum: int) -> bool:
    """True when process `pid` neither catches nor ignores `signum` (Linux: /proc; False elsewhere)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            masks = {key: int(value, 16) for key, _, value in
                     (line.partition(b":") for line in status) if key in (b"SigIgn", b"SigCgt")}
    except (OSError, ValueError):
        return False
    bit = 1 << (signum - 1)
    return len(masks) == 2 and not (masks[b"SigIgn"] | masks[b"SigCgt"]) & bit


_LOST_OUTPUT = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # the bytes had somewhere to go, and did not fit


def _drain_timeout_ms(exit_seen_at: float | None, last_data: float) -> int:
    """-1 (wait forever) while the child runs; afterwards the time left before giving up on the output."""
    if exit_seen_at is None:
        return -1
    now = time.monotonic()
    left = min(last_data + DRAIN_IDLE_SECS, exit_seen_at + DRAIN_MAX_SECS) - now
    return max(0, int(left * 1000) + 1) if left > 0 else 0


def _drain_wake_pipe(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except OSError:
        pass


def _write_all(fd: int, data: bytes) -> OSError | None:
    """Write everything (waiting if `fd` happens to be non-blocking); the error if it cannot be (EPIPE: the
    reader is gone, EIO: the terminal hung up, EBADF: fd closed by someone else, ENOSPC: a full disk ...)."""
    written, size = 0, len(data)
    while written < size:
        try:
            written += os.write(fd, memoryview(data)[written:] if written else data)  # no view per chunk
        except BlockingIOError:
            select.select([], [fd], [])
        except InterruptedError:
            continue
        except OSError as exc:
            return exc
    return None
