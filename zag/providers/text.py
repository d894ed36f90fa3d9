"""Text helpers for scanning agent output: ANSI stripping, line assembly, a rolling screen tail."""

from __future__ import annotations

import re

# CSI sequences (incl. private modes), OSC strings (BEL or ST terminated), other 2-char escapes.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"          # CSI … final
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC … BEL/ST
    r"|\x1b[PX^_][^\x1b]*\x1b\\"        # DCS/SOS/PM/APC … ST
    r"|\x1b[@-Z\\-_]"                   # 2-char escapes
    r"|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"  # other control chars (keep \t \n \r)
)
_CURSOR_FORWARD = re.compile(r"\x1b\[(\d*)C")
_CURSOR_TO_LINE = re.compile(r"\x1b\[\d*(?:;\d*)?[Hf]|\x1b\[\d*[ABEF]")
# Cursor to an absolute column on the same line: TUIs (claude 2.1.x) use it instead of spaces between
# words, so it stands for at least one blank (the exact column is not tracked).
_CURSOR_TO_COLUMN = re.compile(r"\x1b\[\d*G")


def strip_ansi(text: str) -> str:
    """Plain text from terminal output: cursor-forward becomes spaces, cursor moves to other lines
    become newlines (so words of different screen lines are not glued), everything else goes."""
    if "\x1b" not in text and not any(ch < " " and ch not in "\t\n\r" for ch in text[:4096]):
        return text
    text = _CURSOR_FORWARD.sub(lambda m: " " * int(m.group(1) or 1), text)
    text = _CURSOR_TO_COLUMN.sub(" ", text)
    text = _CURSOR_TO_LINE.sub("\n", text)
    return _ANSI.sub("", text)


class LineAssembler:
    """Turns chunks of bytes into complete decoded lines (\\n or \\r ends a line)."""

    def __init__(self, max_line: int = 64 * 1024) -> None:
        self._buffer = b""
        self._max_line = max_line

    def feed(self, data: bytes) -> list[str]:
        self._buffer += data
        if b"\n" not in self._buffer and b"\r" not in self._buffer:
            if len(self._buffer) > self._max_line:
                line, self._buffer = self._buffer, b""
                return [line.decode("utf-8", errors="replace")]
            return []
        parts = re.split(rb"\r\n|\n|\r", self._buffer)
        self._buffer = parts.pop()
        return [part.decode("utf-8", errors="replace") for part in parts]

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer, b""
        return [rest.decode("utf-8", errors="replace")] if rest else []


class ScreenTail:
    """The last few KB of a terminal's output as plain text (what was recently on screen)."""

    def __init__(self, keep: int = 16 * 1024) -> None:
        self._keep = keep
        self._raw = b""
        self.text = ""

    def feed(self, data: bytes) -> str:
        """Add output; returns the plain text of just this chunk (with a little preceding context)."""
        self._raw = (self._raw + data)[-self._keep:]
        self.text = strip_ansi(self._raw.decode("utf-8", errors="replace"))
        return self.text

    def clear(self) -> None:
        self._raw = b""
        self.text = ""
