"""The seq of a session log's last complete line, read backwards from the end of the file, bounded.

`zag ps` and `zag sessions` use it for sessions they show dead (the index's `last_seq` is as of the last
heartbeat): only the standard library is imported, since listings must start fast (msgspec, which
`zag.logs.codec` loads, costs ~20 ms), and a read usually takes the first 4 KiB from the end.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

BUDGET = 1024 * 1024
_FIRST_CHUNK = 4 * 1024
_MAX_CHUNK = 256 * 1024


def last_complete_seq(path: Path, budget: int = BUDGET) -> int | None:
    """The seq of the last complete line that is an event (a torn last line, or a damaged one, is passed
    over), reading at most the last `budget` bytes. None when the log is missing or unreadable, or no such
    line ends within them."""
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
    buffered = b""   # the file's bytes from `start` to `size`
    start = size
    end = -1         # in `buffered`: the newline that ends the next line to look at (-1: not found yet)
    chunk = _FIRST_CHUNK
    while start > 0 and size - start < budget:
        step = min(chunk, start, budget - (size - start))
        chunk = min(chunk * 2, _MAX_CHUNK)
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
        event = json.loads(line)
    except ValueError:  # not JSON, or not UTF-8
        return None
    if isinstance(event, dict) and "type" in event and type(event.get("seq")) is int:
        return int(event["seq"])
    return None
