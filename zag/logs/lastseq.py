"""A session log's last complete event, read backwards from the end of the file, bounded.

`zag ps` and `zag sessions` read it for each session they show dead (has it ended after all? its
`last_seq`, which the index has as of the last heartbeat): only the standard library is imported, since
listings must start fast (msgspec, which `zag.logs.codec` loads, costs ~10 ms, `zag.wrapper` more), and a
read usually takes the first 4 KiB from the end.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

BUDGET = 1024 * 1024
_FIRST_CHUNK = 4 * 1024
_MAX_CHUNK = 256 * 1024


def last_complete_seq(path: Path, budget: int = BUDGET) -> int | None:
    """The seq of `last_complete_event`, or None."""
    event = last_complete_event(path, budget)
    return None if event is None else int(event["seq"])


def last_complete_event(path: Path, budget: int = BUDGET, *, passing_over: str | None = None) -> dict[str, Any] | None:
    """The last complete line that is an event (a torn last line, or a damaged one, is passed over),
    reading at most the last `budget` bytes. None when the log is missing or unreadable, or no such line
    ends within them. `passing_over`: a `source` whose events are passed over too (`backfill`: what
    `zag backfill` appended after the session's end, the agent having gone on without zag)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return _last_event_within(fd, os.fstat(fd).st_size, budget, passing_over)
    except OSError:
        return None
    finally:
        os.close(fd)


def _last_event_within(fd: int, size: int, budget: int, passing_over: str | None) -> dict[str, Any] | None:
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
            event = _event_of(buffered[begin:end])
            if event is not None and (passing_over is None or event.get("source") != passing_over):
                return event
            end = begin - 1
    return None


def _event_of(line: bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(line)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deeply
        return None
    if isinstance(event, dict) and isinstance(event.get("type"), str) and type(event.get("seq")) is int:
        return event
    return None
