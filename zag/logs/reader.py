"""Reads unified session logs: complete lines only, a torn last line ignored, bad lines counted."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from zag.logs import codec

_READ_CHUNK = 1024 * 1024
# `seek_after_seq`: below this many bytes between its bounds, reading on is cheaper than probing again
_LINEAR_BYTES = 64 * 1024
_PROBE_BYTES = 64 * 1024
_SEQ_PREFIX = re.compile(rb'\{"seq":(\d+)[,}]')  # how the writer starts every line (`seq` first)


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
    with open(path, "rb", buffering=_READ_CHUNK) as handle:
        handle.seek(offset)
        position = offset
        for line in complete_lines(handle):
            position += len(line)
            yield position, line


def complete_lines(handle: BinaryIO) -> Iterator[bytes]:
    """Every newline-terminated line from the binary file's position on (newline included); a last line
    without its newline is not yielded. The buffered file's own line reader: a line megabytes long is
    gathered in linear work (joining a growing buffer with each chunk was quadratic in its length)."""
    for line in handle:
        if line[-1:] != b"\n":
            return
        yield line


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



def seek_after_seq(handle: BinaryIO, seq: int, size: int) -> int:
    """A line start in the file open as `handle` (`size` bytes) before which no line has a seq above `seq`:
    where a reader of the events after `seq` (`zag listen --since`) can start instead of at 0.

    The writer writes seqs in increasing order, one line each: a bisection on byte offsets finds it with
    O(log n) small reads (`pread`: the handle's buffer and position are left alone), whatever the log's
    size. A probed line whose seq cannot be read from its start (damaged, or not written by zag) only
    makes the answer earlier: 0 is always a correct answer.
    """
    fd = handle.fileno()
    low, high = 0, size  # every line that starts before `low` has a seq <= `seq`
    while high - low > _LINEAR_BYTES:
        middle = (low + high) // 2
        start = _next_line_start(fd, middle, high)
        if start is None:  # no line starts in [middle, high)
            high = middle
            continue
        found = _seq_at(fd, start)
        if found is not None and found <= seq:
            low = start
        else:
            high = middle
    return low


def _next_line_start(fd: int, position: int, limit: int) -> int | None:
    """The first line start at or after `position` and before `limit`, or None."""
    if position == 0:
        return 0
    cursor = position - 1  # a line starts at `position` when the byte before it ends a line
    while cursor < limit:
        chunk = os.pread(fd, min(_PROBE_BYTES, limit - cursor), cursor)
        if not chunk:
            return None
        cut = chunk.find(b"\n")
        if cut >= 0:
            start = cursor + cut + 1
            return start if start < limit else None
        cursor += len(chunk)
    return None


def _seq_at(fd: int, start: int) -> int | None:
    match = _SEQ_PREFIX.match(os.pread(fd, 32, start))
    return int(match.group(1)) if match else None
