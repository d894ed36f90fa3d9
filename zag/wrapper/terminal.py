"""The user's terminal in raw mode while an interactive agent runs, and restored on every way out.

`RawMode.restore()` is idempotent and also registered with `atexit`, so the terminal comes back even when
zag leaves through an error path the supervisor did not anticipate (SIGKILL alone cannot be handled).

`hung_up` tells a terminal that went away (ssh dropped, window closed): the kernel hangs up every open file
of it, and from then on its reads return end-of-file, its writes and every ioctl EIO (Linux, the BSDs).
"""

from __future__ import annotations

import atexit
import errno
import termios
import threading
import tty


class RawMode:
    """Puts a terminal in raw mode (no echo, no line editing, no signal keys) and restores it once."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._saved: list | None = None
        self._lock = threading.Lock()

    def enter(self) -> bool:
        """Switch to raw mode; False if `fd` is not a terminal (nothing to restore then)."""
        try:
            self._saved = termios.tcgetattr(self.fd)
            atexit.register(self.restore)
            tty.setraw(self.fd, termios.TCSANOW)
        except termios.error:
            self._saved = None
            return False
        return True

    def reassert(self) -> None:
        """Raw mode again if it is on by our account (after zag was stopped, the shell gave the terminal its
        own modes); the modes to restore stay those saved by `enter`."""
        if self._saved is None:
            return
        try:
            tty.setraw(self.fd, termios.TCSANOW)
        except termios.error:
            pass

    def restore(self) -> None:
        with self._lock:
            saved, self._saved = self._saved, None
        if saved is None:
            return
        try:
            termios.tcsetattr(self.fd, termios.TCSANOW, saved)
        except termios.error:
            pass
        try:
            atexit.unregister(self.restore)
        except Exception:  # noqa: BLE001 - restoring must never raise
            pass

    def __enter__(self) -> RawMode:
        self.enter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()


def hung_up(fd: int) -> bool:
    """True when `fd` is a terminal that hung up. A terminal's modes can be read by any process, in the
    foreground or not, so only a hang-up makes that fail with EIO (not a terminal at all: ENOTTY)."""
    try:
        termios.tcgetattr(fd)
    except termios.error as exc:
        return bool(exc.args) and exc.args[0] == errno.EIO
    return False
