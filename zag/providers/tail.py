"""Incremental, cursor-based reading of append-only JSONL files (the shared core of every JSONL reader).

Only complete lines are returned; a partial last line waits for its newline. The cursor records the
byte offset, the inode and the file's size, so a file that shrank or was replaced is noticed and read
again from the start (`restarted` tells the caller, which dedupes by record id where it can).

A torn last line (the writer was killed mid-write: half a record, no newline) would wait forever. A
tail given `settle_secs` (backfill's readers; live ones wait) hands it out once the file has not been
modified for that long: as it is when it is a whole record, else as a `TornLine` (the caller reports it
as a parse_warning). The cursor remembers how many bytes before its offset were handed out that way
(`partial`): if the line gets its end after all, the whole line is handed out when it is a record (the
torn head was only a warning), else only what follows the head (e.g. a record a resumed writer appended
right after the torn bytes); a head that was a whole record is never handed out twice.

A live reader (no `settle_secs`) never hands a torn line out, but remembers where the unterminated
line it last saw ended (`torn_seen`): when the writer's append failed half way (a full disk) and its next
record lands on the same line, that line is no record, what follows the head is (`glued_record`), and
the two are handed out apart: the head as a `TornLine`, the record as a line of its own.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from zag.logs import events

CHUNK_BYTES = 1024 * 1024
MAX_LINE_BYTES = 32 * 1024 * 1024   # longer lines are cut (and then fail to parse → one parse_warning)
KEEP_OF_OVERSIZED = 64 * 1024
# a file whose last line has had no newline for this long lost its writer mid-record (a record is one
# write: a live writer finishes it within milliseconds); backfill then reports the torn line
TORN_SETTLE_SECS = 120.0


class TornLine(bytes):
    """An unterminated last line handed out because its file settled, that is not a whole record
    (`glued`: the head of a line whose writer appended its next record after it, see `glued_record`)."""

    glued = False


def torn_warning(what: str, path: Path, raw: bytes) -> dict[str, Any]:
    """The parse_warning for a `TornLine` of `path` (`what`: e.g. "claude transcript")."""
    if getattr(raw, "glued", False):
        return events.parse_warning(
            f"{what}: torn line in {path.name} (its writer stopped mid-record, e.g. on a full disk, and "
            "wrote its next record on the same line: that record is read on its own)", raw)
    return events.parse_warning(
        f"{what}: torn last line in {path.name} (no newline and the file unchanged for "
        f"{TORN_SETTLE_SECS:.0f} s: its writer stopped mid-record)", raw)


def glued_record(line: bytes, head_length: int) -> tuple[TornLine, bytes] | None:
    """(torn head, record) when `line`, whose first `head_length` bytes were seen unterminated before, is
    no record as a whole but what follows the head is; else None."""
    if not 0 < head_length < len(line) or whole_record(line):
        return None
    head, rest = line[:head_length], line[head_length:]
    if whole_record(head) or not whole_record(rest):
        return None
    torn = TornLine(head)
    torn.glued = True
    return torn, rest


def whole_record(data: bytes) -> bool:
    """True when an unterminated last line is nevertheless one whole JSON object (not a torn write)."""
    text = data.strip()
    if not (text.startswith(b"{") and text.endswith(b"}")):
        return False
    try:
        msgspec.json.decode(text)
    except (msgspec.DecodeError, RecursionError):
        return False
    return True


def after_zeros(line: bytes | memoryview) -> tuple[bytes, bytes] | None:
    """(damaged head, record) for a line that is no record but ends in one after NUL bytes, else None.

    JSON text holds no raw NUL byte. A crash (power loss) can leave zeros at the end of a file: space
    the file system had given it that the data never reached. The agent, started again, appends its
    next record right after them, on the same line: that record is read, the zeros (and whatever the
    crash cut before them) are the head, for one parse_warning."""
    line = bytes(line)
    last = line.rfind(b"\0")
    if last < 0:
        return None
    rest = line[last + 1:]
    return (line[:last + 1], rest) if whole_record(rest) else None


def zeros_warning(what: str, head: bytes) -> dict[str, Any]:
    """The parse_warning for the head `after_zeros` split off (`what`: e.g. "claude transcript"); its raw
    is what came before the zeros (they are counted, not copied)."""
    kept = head.rstrip(b"\0")
    return events.parse_warning(f"{what}: {len(head) - len(kept)} NUL bytes before a record (the file was not "
                                "fully written before a crash; what was there is lost): the record after them "
                                "is read", kept)


def completed_line(head: bytes, rest: bytes) -> bytes | None:
    """What to hand out when a last line handed out unterminated (`head`) got its end (`rest`): the
    whole line when it is a record and the head alone was not, else what follows the head (None if
    blank)."""
    if not whole_record(head):
        whole = head + rest
        if whole_record(whole):
            return whole
    return rest if rest.strip() else None


def settled(st: os.stat_result, settle_secs: float | None) -> bool:
    """The file has not been modified for `settle_secs` (None: never settled, a live reader)."""
    return settle_secs is not None and time.time() - st.st_mtime >= settle_secs


def naming(exc: OSError, path: Path | str) -> OSError:
    """`exc`, naming `path` when it names no file (a read's I/O error names none: a failing disk, a
    network or cloud-synced folder), so the warning it becomes says which file."""
    if exc.filename is None:
        exc.filename = os.fspath(path)
    return exc


def open_regular(path: Path | str) -> int | None:
    """A read-only fd of `path` when it is a regular file, else None (never blocks: a FIFO, socket or
    device named like a session file is opened non-blocking and refused; a missing file gives None)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def open_regular_file(path: Path | str, buffering: int = -1) -> Any:
    """`open(path, "rb")` for regular files only (see `open_regular`); None for anything else."""
    fd = open_regular(path)
    return None if fd is None else os.fdopen(fd, "rb", buffering=buffering)


def is_regular(path: Path | str) -> bool:
    """A regular file (following symlinks); never a FIFO, socket, device or directory."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def list_folder(folder: Path | str, problems: list[str]) -> list[os.DirEntry[str]]:
    """The entries of `folder`; none when it does not exist (or is a file: no folder of sessions). A
    folder that exists but cannot be read (its mode, an I/O error) gives none too, and a line for
    `problems` naming it and why: its sessions must not go missing without a word."""
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        problems.append(unreadable_folder(folder, exc))
        return []


def unreadable_folder(folder: Path | str, exc: OSError) -> str:
    return f"cannot read folder {os.fspath(folder)}: {exc.strerror or exc}; the sessions in it are not imported"


class SeenFiles:
    """Real files already listed in one discovery pass, by (device, inode): a file reached again
    through a directory symlink or a second link is one source, not two."""

    def __init__(self) -> None:
        self._seen: set[tuple[int, int]] = set()

    def first(self, path: Path | str, st: os.stat_result | None = None) -> bool:
        """True the first time a regular file is met; False for a repeat or anything not regular."""
        try:
            st = st if st is not None else os.stat(path)
        except OSError:
            return False
        if not stat.S_ISREG(st.st_mode):
            return False
        key = (st.st_dev, st.st_ino)
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


class JsonlTail:
    """Reads new complete lines of one file from a cursor `{"offset", "ino"}` (see the module docstring
    for `settle_secs` and torn last lines)."""

    def __init__(self, path: Path, cursor: dict[str, Any] | None = None, *,
                 settle_secs: float | None = None) -> None:
        self.path = Path(path)
        cursor = cursor or {}
        self.offset = int(cursor.get("offset", 0))
        self.settle_secs = settle_secs
        partial = cursor.get("partial")
        # bytes before `offset` handed out as an unterminated last line (see the module docstring)
        self.partial = partial if isinstance(partial, int) and not isinstance(partial, bool) \
            and 0 < partial <= self.offset else 0
        self.unsettled = False      # the last read left an unterminated line that has not settled yet
        self.ino = cursor.get("ino")
        self.mark: Any = cursor.get("mark")  # the reader's own note of what it imported (kept in the cursor)
        self.restarted = False      # set when the file shrank or was replaced since the cursor
        self.oversized_lines = 0
        # the offset is inside an over-long line whose head was handed out: its rest, up to the next
        # newline (perhaps not written yet), is skipped, not read as a line of its own
        self.inside_oversized = bool(cursor.get("inside_oversized"))
        # (offset, length) of the unterminated last line a live read saw (see the module docstring)
        self.torn_seen: tuple[int, int] | None = None

    def cursor(self) -> dict[str, Any]:
        cursor: dict[str, Any] = {"offset": self.offset, "ino": self.ino}
        if self.mark is not None:
            cursor["mark"] = self.mark
        if self.inside_oversized:
            cursor["inside_oversized"] = True
        if self.partial:
            cursor["partial"] = self.partial
        return cursor

    def restart(self) -> None:
        """The file shrank or was replaced: read it again from the start."""
        self.offset = 0
        self.restarted = True
        self.inside_oversized = False
        self.partial = 0
        self.torn_seen = None

    def settled(self, st: os.stat_result) -> bool:
        return settled(st, self.settle_secs)

    def size_changed(self) -> bool:
        """Cheap check (one stat) whether there may be something new to read."""
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        return st.st_size != self.offset or (self.ino is not None and st.st_ino != self.ino)

    def lines(self) -> Iterator[bytes]:
        """New complete lines (without the newline). The offset advances line by line, so stopping
        early leaves the cursor just after the last line handed out."""
        handle = open_regular_file(self.path)
        if handle is None:
            return
        try:
            with handle:
                st = os.fstat(handle.fileno())
                if (self.ino is not None and st.st_ino != self.ino) or st.st_size < self.offset:
                    self.restart()
                self.ino = st.st_ino
                self.unsettled = False
                if st.st_size == self.offset:
                    return
                head = None
                if self.partial:
                    handle.seek(self.offset - self.partial)
                    head = handle.read(self.partial)
                handle.seek(self.offset)
                yield from self._split(handle, head, self.settled(st))
        except OSError as exc:
            raise naming(exc, self.path)

    def _split(self, handle: Any, head: bytes | None, settled: bool) -> Iterator[bytes]:
        carry = b""
        while True:
            chunk = handle.read(CHUNK_BYTES)
            if not chunk:
                if carry and not self.inside_oversized:
                    if settled:
                        self.offset += len(carry)
                        self.partial += len(carry)
                        yield carry if whole_record(carry) else TornLine(carry)
                    else:
                        self.unsettled = True
                        self.torn_seen = (self.offset, len(carry))
                return
            if carry:
                chunk = carry + chunk
                carry = b""
            last_newline = chunk.rfind(b"\n")
            if last_newline < 0:
                if self.inside_oversized:
                    self.offset += len(chunk)
                elif len(chunk) > MAX_LINE_BYTES:
                    self.inside_oversized = True
                    head, self.partial = None, 0   # the torn head's line is the one cut
                    yield self._oversized(chunk)
                else:
                    carry = chunk
                continue
            body, carry = chunk[:last_newline], chunk[last_newline + 1:]
            lines = body.split(b"\n")
            if self.inside_oversized:
                self.offset += len(lines[0]) + 1
                lines = lines[1:]
                self.inside_oversized = False
            if head is not None and lines:
                self.offset += len(lines[0]) + 1
                completed = completed_line(head, lines[0])
                head, self.partial, lines = None, 0, lines[1:]
                if completed is not None:
                    yield completed if len(completed) <= MAX_LINE_BYTES else self._cut(completed)
            if lines and self.torn_seen is not None:
                seen_at, seen_length = self.torn_seen
                self.torn_seen = None
                glued = glued_record(lines[0], seen_length) if seen_at == self.offset else None
                if glued is not None:
                    self.offset += len(lines[0]) + 1
                    lines = lines[1:]
                    yield from glued
            for line in lines:
                self.offset += len(line) + 1
                yield line if len(line) <= MAX_LINE_BYTES else self._cut(line)

    def _oversized(self, partial: bytes) -> bytes:
        """A line longer than MAX_LINE_BYTES with no end in sight: hand out its head, skip the rest."""
        self.oversized_lines += 1
        self.offset += len(partial)
        return partial[:KEEP_OF_OVERSIZED]

    def _cut(self, line: bytes) -> bytes:
        self.oversized_lines += 1
        return line[:KEEP_OF_OVERSIZED]


def fingerprint(paths: list[Path] | tuple[Path, ...]) -> str:
    """A cheap change signature of some files: size and mtime (ns) of each, missing files included."""
    parts = []
    for path in paths:
        try:
            st = os.stat(path)
            parts.append(f"{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append("-")
    return "|".join(parts)
