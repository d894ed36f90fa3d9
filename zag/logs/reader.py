"""Reads unified session logs: complete lines only, a torn last line ignored, bad lines counted."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zag.logs import codec

_READ_CHUNK = 1024 * 1024


@dataclass
class ReadStats:
    """What a read skipped: lines that were not valid events, and whether the last line was torn."""

    bad_lines: int = 0
    torn_tail: bool = False


def iter_complete_lines(path: Path, offset: int = 0) -> Iterator[tuple[int, bytes]]:
    """Yield `(end_offset, line)` for every newline-terminated line from `offset` on.

    `end_offset` is where the next line starts, so a follower can resume from it. Bytes after the last
    newline (a line still being written, or torn) are not yielded.
    """
    with open(path, "rb") as handle:
        handle.seek(offset)
        buffered = b""
        position = offset
        while True:
            chunk = handle.read(_READ_CHUNK)
            if not chunk:
                return
            buffered += chunk
            start = 0
            while True:
                cut = buffered.find(b"\n", start)
                if cut < 0:
                    break
                position += cut + 1 - start
                yield position, buffered[start:cut + 1]
                start = cut + 1
            buffered = buffered[start:]


def read_events(path: Path, stats: ReadStats | None = None, offset: int = 0) -> Iterator[dict[str, Any]]:
    """Every valid event in the log (from `offset`), in file order."""
    stats = stats if stats is not None else ReadStats()
    end = offset
    for end, line in iter_complete_lines(path, offset):
        try:
            event = codec.loads(line)
        except codec.DecodeError:
            stats.bad_lines += 1
            continue
        if isinstance(event, dict) and "type" in event:
            yield event
        else:
            stats.bad_lines += 1
    try:
        stats.torn_tail = path.stat().st_size > end
    except OSError:
        pass


_TAIL_CHUNK = 64 * 1024
TAIL_BUDGET = 1024 * 1024


def last_complete_seq(path: Path, budget: int = TAIL_BUDGET) -> int | None:
    """The seq of the last complete line that is an event (a torn last line, or a damaged one, is passed
    over), read backwards from the end of the log: at most `budget` bytes. None when the log is missing or
    unreadable, or no such line ends within the last `budget` bytes."""
    import os

    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return _last_seq_within(fd, os.fstat(fd).st_size, budget)
    except OSError:
        return None
    finally:
        os.close(fd)


def _last_seq_within(fd: int, size: int, budget: int) -> int | None:
    import os

    buffered = b""   # the file's bytes from `start` to `size`
    start = size
    end = -1         # in `buffered`: the newline that ends the next line to look at (-1: not found yet)
    while start > 0 and size - start < budget:
        step = min(_TAIL_CHUNK, start, budget - (size - start))
        start -= step
        buffered = os.pread(fd, step, start) + buffered
        end = buffered.rfind(b"\n") if end < 0 else end + step
        while end >= 0:
            begin = buffered.rfind(b"\n", 0, end) + 1
            if begin == 0 and start > 0:
                break   # this line starts before what was read
            seq = _seq_of(buffered[begin:end])
            if seq is not None:
                return seq
            end = begin - 1
    return None


def _seq_of(line: bytes) -> int | None:
    try:
        event = codec.loads(line)
    except codec.DecodeError:
        return None
    if isinstance(event, dict) and "type" in event and type(event.get("seq")) is int:
        return int(event["seq"])
    return None
