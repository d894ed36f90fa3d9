"""Following a growing session log: complete lines only, by byte offset, until the session ends.

`LogFollower` hands out each complete line once, however the writes were split (a line is released
only when its newline has arrived, so a torn or half-written last line waits). It tolerates the log not
existing yet, a torn tail being cut off by the writer's repair, and the file being replaced.

`EventFollower` builds the policy `zag listen` needs on top: decode, skip what was already seen (by
`seq`), stop after `session_ended`, or once the session is no longer live (its supervisor died, or it
ended without a `session_ended` line) and everything written has been read. A log may hold several
runs of one session (`zag resume` appends a `session_started` after an earlier `session_ended`): a
`session_ended` ends the following only when no `session_started` comes after it and, while following,
no new supervisor has taken the session over (`taken_over`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zag.logs import codec
from zag.logs.reader import complete_lines, seek_after_seq

_READ_CHUNK = 1024 * 1024

# Why an `EventFollower` stopped.
STOP_ENDED = "ended"          # `session_ended` was read
STOP_END_OF_LOG = "eof"       # not following: everything present was read
STOP_NOT_LIVE = "not_live"    # the session is no longer live (see `EventFollower.not_live`)
STOP_ASKED = "asked"          # `EventFollower.stopped` said so (e.g. Ctrl-C)


class LogFollower:
    """Complete lines appended to one file, from a byte offset on, across repeated `read_lines` calls."""

    def __init__(self, path: Path, offset: int = 0, *, after_seq: int = 0) -> None:
        """`after_seq`: only lines after that seq are wanted; the first read starts where they may
        (`seek_after_seq`), not at `offset` 0, so `zag listen --since` on a huge log reads its end."""
        self.path = path
        self.offset = offset  # where the next unread complete line starts
        self._after_seq = after_seq if offset == 0 else 0
        self._handle: Any = None
        self._inode: tuple[int, int] | None = None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def exists(self) -> bool:
        return self._handle is not None or self.path.exists()

    def read_lines(self) -> Iterator[bytes]:
        """Yield every complete line available now (newline included).

        An incomplete last line is read again on the next call rather than kept: the writer may cut
        a torn line off and append new lines in its place between two calls.
        """
        if not self._open():
            return
        self._check_replaced_or_cut()
        handle = self._handle
        if handle is None:  # replaced by nothing (removed) between the checks
            return
        if self._after_seq > 0:
            self.offset = seek_after_seq(handle, self._after_seq, os.fstat(handle.fileno()).st_size)
            self._after_seq = 0
        handle.seek(self.offset)
        for line in complete_lines(handle):
            self.offset += len(line)
            yield line

    def _open(self) -> bool:
        if self._handle is not None:
            return True
        try:
            self._handle = open(self.path, "rb", buffering=_READ_CHUNK)
        except FileNotFoundError:
            return False
        stat = os.fstat(self._handle.fileno())
        self._inode = (stat.st_dev, stat.st_ino)
        return True

    def _check_replaced_or_cut(self) -> None:
        """Start over on a replaced file, or on one cut below what was already read."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return  # removed: keep reading the open handle
        if (stat.st_dev, stat.st_ino) != self._inode:
            self.close()
            self.offset = 0
            self._open()
        elif stat.st_size < self.offset:
            self.offset = 0  # re-read; `EventFollower` skips what it has seen by seq


@dataclass
class Line:
    """One complete log line and its decoded event."""

    raw: bytes
    event: dict[str, Any]


class EventFollower:
    """Events of one session log, in order, each once; optionally following until the session ends.

    `not_live` is asked every `liveness_secs` while following: it returns None while the session may
    still write, or a short reason (e.g. "dead") once it cannot. The log is then read to its end and
    the follower stops with `STOP_NOT_LIVE` (unless `session_ended` turns up in that last read).
    `stopped` is asked before each pause: True stops the follower (`STOP_ASKED`); `caught_up` is called
    before each pause. Without `whole`, a `Line`'s event holds only its `seq` and `type` (a reader that
    passes the raw lines on needs no more), which saves decoding every event whole.
    """

    def __init__(
        self,
        path: Path,
        *,
        since_seq: int = 0,
        follow: bool = True,
        not_live: Callable[[], str | None] | None = None,
        taken_over: Callable[[dict[str, Any] | None], bool] | None = None,
        poll_secs: float = 0.1,
        liveness_secs: float = 1.0,
        stopped: Callable[[], bool] | None = None,
        caught_up: Callable[[], None] | None = None,
        whole: bool = True,
    ) -> None:
        self.log = LogFollower(path, after_seq=since_seq)
        self.whole = whole
        self.stopped = stopped
        self.caught_up = caught_up
        self.last_seq = since_seq
        self.follow = follow
        self.not_live = not_live
        self.taken_over = taken_over  # (last `session_started`) → a new supervisor continues the session
        self.last_started: dict[str, Any] | None = None
        self.poll_secs = poll_secs
        self.liveness_secs = liveness_secs
        self.stop_reason: str | None = None
        self.not_live_reason: str | None = None
        self.bad_lines = 0

    def __iter__(self) -> Iterator[Line]:
        try:
            yield from self._run()
        finally:
            self.log.close()

    def _run(self) -> Iterator[Line]:
        next_check = time.monotonic()  # the first idle moment checks at once (an ended session stops fast)
        ended = False  # a `session_ended` was read and no `session_started` came after it (yet)
        next_takeover_check = 0.0
        while True:
            for line in self._drain():
                # what follows an end is shown too: `zag backfill` appends what the agent did later without
                # zag (`claude --resume`) to the session's log, after its `session_ended`
                yield line
                ended = self._ended_after(line, ended)
            if ended:
                now = time.monotonic()
                if not self.follow or self.taken_over is None:
                    self.stop_reason = STOP_ENDED
                    return
                if now >= next_takeover_check:
                    next_takeover_check = now + self.liveness_secs
                    if not self.taken_over(self.last_started):
                        self.stop_reason = STOP_ENDED
                        return
                if not self._pause():
                    return
                continue
            if not self.follow:
                self.stop_reason = STOP_END_OF_LOG
                return
            if self.not_live is not None and time.monotonic() >= next_check:
                reason = self.not_live()
                next_check = time.monotonic() + self.liveness_secs
                if reason is not None:
                    # the writer is gone: whatever it wrote is there now, so one last read is complete
                    for line in self._drain():
                        yield line
                        ended = self._ended_after(line, ended)
                    if ended:
                        self.stop_reason = STOP_ENDED
                    else:
                        self.stop_reason, self.not_live_reason = STOP_NOT_LIVE, reason
                    return
            if not self._pause():
                return

    def _ended_after(self, line: Line, ended: bool) -> bool:
        """Whether the session has ended once `line` is read: a `session_ended` ends it, the
        `session_started` of a resumed run begins it again."""
        kind = line.event.get("type")
        if kind == "session_started":
            self.last_started = line.event
            return False
        return ended or kind == "session_ended"

    def _pause(self) -> bool:
        """Wait `poll_secs`; False when `stopped` says to stop (before or after the wait). `caught_up` is
        called first: everything written so far has been handed out (a reader flushes its output then)."""
        if self.caught_up is not None:
            self.caught_up()
        if self._asked_to_stop():
            return False
        time.sleep(self.poll_secs)
        return not self._asked_to_stop()

    def _asked_to_stop(self) -> bool:
        if self.stopped is not None and self.stopped():
            self.stop_reason = STOP_ASKED
            return True
        return False

    def _drain(self) -> Iterator[Line]:
        for raw in self.log.read_lines():
            try:
                if self.whole:
                    event = codec.loads(raw)
                else:  # a `session_started` is kept whole (see `taken_over`)
                    event = codec.loads_head(raw)
                    if event["type"] == "session_started":
                        event = codec.loads(raw)
            except codec.DecodeError:
                self.bad_lines += 1
                continue
            if not isinstance(event, dict):
                self.bad_lines += 1
                continue
            seq = event.get("seq")
            if isinstance(seq, int) and not isinstance(seq, bool):
                if seq <= self.last_seq:
                    continue
                self.last_seq = seq
            yield Line(raw, event)
