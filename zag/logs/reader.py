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

