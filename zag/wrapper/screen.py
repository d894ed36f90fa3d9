"""What an interactive agent recently put on its terminal, and when: for answering its dialogs and for
knowing when its TUI has settled (ready for keystrokes).

`feed` runs in the relay thread for every PTY chunk, so it only appends bytes to a bounded buffer;
plain text (ANSI stripped) is made only when asked for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

KEEP_BYTES = 16 * 1024
TICK_SECS = 0.05


class Screen:
    def __init__(self, keep: int = KEEP_BYTES) -> None:
        self._keep = keep
        self._raw = bytearray()
        self._count = 0                     # bytes seen since the last reset
        self._last_output: float | None = None  # monotonic time of the last chunk
        self._cond = threading.Condition()

    def feed(self, data: bytes) -> None:
        with self._cond:
            if len(data) >= self._keep:  # a big chunk: only its end is kept (no copy of the rest)
                self._raw[:] = memoryview(data)[-self._keep:]
            else:
                self._raw += data
                if len(self._raw) > 2 * self._keep:
                    del self._raw[:-self._keep]
            self._count += len(data)
            self._last_output = time.monotonic()
            self._cond.notify_all()

    def reset(self) -> None:
        """Forget what was shown (a new child is about to start)."""
        with self._cond:
            self._raw.clear()
            self._count = 0
            self._last_output = None

    def text(self) -> str:
        from zag.providers.text import strip_ansi

        with self._cond:
            raw = bytes(self._raw[-self._keep:])
        return strip_ansi(raw.decode("utf-8", errors="replace"))

    def mark(self) -> int:
        """A position to wait for output after (see `wait_settled`)."""
        with self._cond:
            return self._count

    def wait_settled(self, *, quiet: float, timeout: float, after: int | None = None,
                     stopped: Callable[[], bool] = lambda: False) -> bool:
        """Wait until output came (past `after`, or at all when `after` is None and nothing came yet) and
        then paused for `quiet` seconds. False on timeout or when `stopped()`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if stopped():
                    return False
                now = time.monotonic()
                came = self._count > after if after is not None else self._count > 0
                if came and self._last_output is not None and now - self._last_output >= quiet:
                    return True
                if now >= deadline:
                    return False
                wait = TICK_SECS if not came else min(quiet - (now - (self._last_output or now)), TICK_SECS * 4)
                self._cond.wait(max(0.005, min(wait, deadline - now)))
