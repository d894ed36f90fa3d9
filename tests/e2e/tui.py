"""Drive a real TUI on a pseudo-terminal: pexpect for the pty, pyte to render what is on screen.

The CLIs' TUIs draw with cursor addressing (claude's Ink writes words at absolute columns), so the
raw byte stream rarely holds a phrase contiguously; `pyte` turns it into the screen a user would see.
The screen also answers the terminal queries a TUI sends at start-up (cursor position, device
attributes), as a real terminal or tmux would. Every wait has a deadline; `close()` kills the
process group. Never uses pexpect's `interact()` (it drops output: PERF_ANCHORS.md).
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Callable, Pattern

import pexpect
import pyte

KEYS = {
    "enter": "\r", "esc": "\x1b", "tab": "\t", "backspace": "\x7f", "ctrl-c": "\x03", "ctrl-d": "\x04",
    "up": "\x1b[A", "down": "\x1b[B", "right": "\x1b[C", "left": "\x1b[D",
}


class _AnsweringScreen(pyte.Screen):
    """A pyte screen that sends the terminal's replies (DSR, DA) back to the program."""

    def __init__(self, columns: int, lines: int, reply: Callable[[str], None]) -> None:
        super().__init__(columns, lines)
        self._reply = reply

    def write_process_input(self, data: str) -> None:
        self._reply(data)

    def select_graphic_rendition(self, *attrs: int, private: bool = False) -> None:
        if not private:  # `CSI > … m` (xterm modifyOtherKeys, sent by gemini) is not a colour change
            super().select_graphic_rendition(*attrs)


class Tui:
    """One TUI program on a pty (see the module docstring)."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], rows: int = 50, cols: int = 160) -> None:
        self.argv = argv
        self.raw = bytearray()
        self.screen = _AnsweringScreen(cols, rows, self._answer)
        self._stream = pyte.ByteStream(self.screen)
        self.child = pexpect.spawn(argv[0], argv[1:], cwd=str(cwd), env=env, dimensions=(rows, cols),
                                   encoding=None, echo=False)
        self.pid = self.child.pid
        self.exitstatus: int | None = None

    # ------------------------------------------------------------------ reading

    def pump(self, seconds: float = 0.1) -> bool:
        """Read whatever the program writes for up to `seconds`; False once it reached end of output."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            try:
                data = self.child.read_nonblocking(65536, timeout=max(0.0, min(left, 0.05)))
            except pexpect.TIMEOUT:
                data = b""
            except pexpect.EOF:
                return False
            if data:
                self.raw += data
                self._stream.feed(data)
            if left <= 0:
                return True

    def text(self) -> str:
        """The screen as plain text, one line per row, trailing blanks trimmed."""
        return "\n".join(line.rstrip() for line in self.screen.display).rstrip("\n")

    def wait_for(self, pattern: str | Pattern[str], timeout: float = 30.0) -> str:
        """Wait until `pattern` (a substring or compiled regex) is on screen; return the screen text."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.text()
            if _matches(pattern, screen):
                return screen
            if time.monotonic() > deadline:
                raise TimeoutError(f"{_show(pattern)} not on screen within {timeout}s:\n{screen}")
            if not self.pump(0.1):
                screen = self.text()
                if _matches(pattern, screen):
                    return screen
                raise TimeoutError(f"program ended before {_show(pattern)} appeared:\n{screen}")

    def wait_gone(self, pattern: str | Pattern[str], timeout: float = 30.0) -> str:
        """Wait until `pattern` is no longer on screen."""
        deadline = time.monotonic() + timeout
        while _matches(pattern, self.text()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{_show(pattern)} still on screen after {timeout}s:\n{self.text()}")
            if not self.pump(0.1):
                break
        return self.text()

    # ------------------------------------------------------------------ typing

    def send(self, text: str) -> None:
        self.child.send(text.encode())

    def press(self, key: str) -> None:
        self.send(KEYS[key])

    def type_line(self, text: str, timeout: float = 15.0) -> None:
        """Type `text`, wait until it shows in the input, then press Enter (a single write would be
        taken for a paste by some TUIs)."""
        self.send(text)
        self.wait_for(text, timeout)
        self.press("enter")

    # ------------------------------------------------------------------ ending

    def wait_exit(self, timeout: float = 30.0) -> int:
        """Wait for the program to exit (reading its output to the end); return its exit status."""
        deadline = time.monotonic() + timeout
        while self.pump(0.1):
            if time.monotonic() > deadline:
                raise TimeoutError(f"TUI did not exit within {timeout}s:\n{self.text()}")
        while self.child.isalive():
            if time.monotonic() > deadline:
                raise TimeoutError(f"TUI closed its output but did not exit within {timeout}s")
            time.sleep(0.02)
        self.child.close()
        status = self.child.exitstatus
        self.exitstatus = status if status is not None else 128 + (self.child.signalstatus or 0)
        return self.exitstatus

    def close(self) -> None:
        """Kill the program's process group (if still running) and release the pty."""
        if self.child.isalive():
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.child.close(force=True)
        except pexpect.ExceptionPexpect:
            pass

    def _answer(self, data: str) -> None:
        if self.child.isalive():
            try:
                self.child.send(data.encode())
            except OSError:
                pass


def _matches(pattern: str | Pattern[str], screen: str) -> bool:
    if isinstance(pattern, str):
        return pattern in screen or pattern in re.sub(r"\s+", " ", screen)
    return pattern.search(screen) is not None


def _show(pattern: str | Pattern[str]) -> str:
    return repr(pattern if isinstance(pattern, str) else pattern.pattern)
