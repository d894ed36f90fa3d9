"""Handing the child's output (and the user's keystrokes) to zag's observers on a thread of their own.

The observers (the provider's output scanner, the usage-limit engine's screen and keystroke book) must see
everything the agent writes, but the relay must never wait for them: a slow or stuck observer would hold
back the agent's output on the user's terminal. So the relay only `put`s what it has already written to
the terminal into a bounded queue and goes on; the observer thread delivers the items in order,
coalescing consecutive chunks of one stream into one call (of about `COALESCE_BYTES`: the observers' cost is
largely per call, and they read chunks of any size: reads split the output anywhere anyway). The two
threads still share the interpreter lock: each time the observer thread wakes it takes the lock from the
relay's, which then sleeps until it gets it back. Hence batches (the relay hands over 64 KiB at a time),
and while output streams the observer thread gathers it (`GATHER_SECS`, or until `COALESCE_BYTES` wait)
before observing it: a few wake-ups a second instead of one per hand-over. Output after a pause is
observed at once. (The observers' heavy passes over the bytes let go of the lock: `prescan.py`.)

Items queue until the observers are attached (`start`: zag starts the relay before the scanner exists, so
the agent's first output reaches the user at once) or dropped for good when there are none (`disable`).
If more than `max_bytes` wait — the observers lag far behind or hang — the oldest items are dropped *for
observation only* (the terminal has them already) and the loss is counted (`dropped_bytes`,
`dropped_items`) and written to zag's diagnostics, from the observer thread or `finish`, never from the
relay's thread (diagnostics import structlog, ~0.1 s). `finish` waits, bounded, until everything queued
was delivered, so what the agent wrote last (a limit message just before it exits) is observed before
the scanner's `finish`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from zag.wrapper import threads

MAX_PENDING_BYTES = 16 * 1024 * 1024
COALESCE_BYTES = 1024 * 1024
GATHER_SECS = 0.05  # how long queued output may wait for more before it is observed
INPUT = "input"  # the stream name of keystrokes in the queue

Observe = Callable[[str, bytes], None]
OnInput = Callable[[bytes], None]

_WAITING, _OBSERVING, _CLOSED = "waiting", "observing", "closed"


class Observation:
    """The queue between the relay (producer) and the observers' thread (consumer)."""

    def __init__(self, max_bytes: int = MAX_PENDING_BYTES, coalesce_bytes: int = COALESCE_BYTES,
                 gather_secs: float = GATHER_SECS) -> None:
        self._max_bytes = max_bytes
        self._coalesce_bytes = coalesce_bytes
        self._items: deque[tuple[str, bytes]] = deque()
        self._pending_bytes = 0
        self._state = _WAITING      # -> _OBSERVING (start) -> _CLOSED (finish), or _WAITING -> _CLOSED
        self._wake_at: int | None = None  # the observer thread waits: a put that brings this many bytes wakes it
        self._gather_secs = gather_secs
        self._delivered_at = float("-inf")  # when the observers last returned (monotonic)
        self._output_observed = True  # False once started without an output observer (keystrokes only)
        self._cond = threading.Condition(threading.Lock())
        self._observe: Observe | None = None
        self._on_input: OnInput | None = None
        self._thread: threading.Thread | None = None
        self._told = False          # the drops were reported while running
        self.dropped_bytes = 0
        self.dropped_items = 0

    # -- the relay's side (never blocks beyond a short lock) -----------------------------------------
    def put(self, stream: str, data: bytes) -> None:
        """Queue a chunk of output that was written to the user (stream: "pty", "stdout", "stderr")."""
        with self._cond:
            if self._state is _CLOSED or not (self._output_observed or stream == INPUT):
                return
            self._items.append((stream, data))
            self._pending_bytes += len(data)
            if self._pending_bytes > self._max_bytes:
                self._drop_oldest()
            wake_at = self._wake_at
            if wake_at is not None and (self._pending_bytes >= wake_at or stream == INPUT):
                self._wake_at = None
                self._cond.notify()

    def put_input(self, data: bytes) -> None:
        """Queue keystrokes the user typed (they reach the observers in order with the output)."""
        self.put(INPUT, data)

    def _drop_oldest(self) -> None:
        """Under the lock: forget the oldest items until what waits fits (the newest item always stays)."""
        items = self._items
        while self._pending_bytes > self._max_bytes and len(items) > 1:
            _, data = items.popleft()
            self._pending_bytes -= len(data)
            self.dropped_bytes += len(data)
            self.dropped_items += 1

    # -- zag's side ----------------------------------------------------------------------------------
    def start(self, observe: Observe | None, on_input: OnInput | None = None) -> None:
        """Attach the observers and deliver to them from now on, what was queued first; with neither,
        nothing is observed (`disable`)."""
        if observe is None and on_input is None:
            self.disable()
            return
        with self._cond:
            if self._state is not _WAITING:
                return
            self._observe, self._on_input = observe, on_input
            if observe is None:  # keystrokes only
                self._output_observed = False
                self._items = deque(item for item in self._items if item[0] == INPUT)
                self._pending_bytes = sum(len(data) for _, data in self._items)
            self._state = _OBSERVING
            thread = threading.Thread(target=self._run, name="zag-observe", daemon=True)
            if threads.start(thread):
                self._thread = thread
            else:  # not observed (no usage-limit detection), as with no observers
                self._state = _CLOSED
                self._items.clear()
                self._pending_bytes = 0

    def disable(self) -> None:
        """No observers: drop what is queued and ignore what comes."""
        with self._cond:
            if self._state is _WAITING:
                self._state = _CLOSED
                self._items.clear()
                self._pending_bytes = 0

    def stop(self) -> threading.Thread | None:
        """Take no more items; the observer thread (returned) ends once it delivered what is queued."""
        with self._cond:
            if self._state is _WAITING:
                self._items.clear()
                self._pending_bytes = 0
            self._state = _CLOSED
            self._cond.notify_all()
            return self._thread

    def finish(self, timeout: float) -> bool:
        """`stop`, and wait (at most `timeout`) until the observers have seen everything queued.
        True when they have (or there are none); False if they are still busy (left to it)."""
        thread = self.stop()
        done = True
        if thread is not None:
            thread.join(timeout)
            done = not thread.is_alive()
        self._report(final=True, unfinished=not done)
        return done

    # -- the observer thread -------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items and self._state is not _CLOSED:
                    self._wake_at = 0
                    self._cond.wait()
                self._gather()
                self._wake_at = None
                if not self._items:  # finished, and everything was delivered
                    return
                batch, self._items = self._items, deque()
                self._pending_bytes = 0
            self._deliver(batch)
            self._delivered_at = time.monotonic()
            if self.dropped_bytes and not self._told:
                self._report(final=False)

    def _gather(self) -> None:
        """Under the lock, output waiting: while output streams (the last delivery ended less than
        `gather_secs` ago), let more come (up to `coalesce_bytes`, for at most `gather_secs`) before observing
        it. Each wake-up of this thread takes the interpreter lock from the relay's, which then sleeps until
        it gets it back: a few large batches cost the relay far less than one per chunk handed over. Output
        after a pause (a TUI's redraw, a limit message) is observed at once."""
        now = time.monotonic()
        if now - self._delivered_at >= self._gather_secs:
            return
        deadline = now + self._gather_secs
        while self._state is not _CLOSED and self._pending_bytes < self._coalesce_bytes:
            if self._items[-1][0] == INPUT:
                return  # keystrokes: observed at once
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._wake_at = self._coalesce_bytes
            self._cond.wait(left)

    def _deliver(self, batch: deque[tuple[str, bytes]]) -> None:
        run_stream = ""
        run: list[bytes] = []
        size = 0
        for stream, data in batch:
            if run and (stream != run_stream or size >= self._coalesce_bytes):  # (a batch overshoots a little)
                self._call(run_stream, run)
                run, size = [], 0
            if stream == INPUT:
                self._call(INPUT, [data])
                continue
            run_stream = stream
            run.append(data)
            size += len(data)
        if run:
            self._call(run_stream, run)

    def _call(self, stream: str, chunks: list[bytes]) -> None:
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        try:
            if stream == INPUT:
                if self._on_input is not None:
                    self._on_input(data)
            elif self._observe is not None:
                self._observe(stream, data)
        except Exception:  # noqa: BLE001 - one failed observation must not end the observing
            from zag import diag

            diag.exception("output_observer_failed", stream=stream)

    def _report(self, *, final: bool, unfinished: bool = False) -> None:
        """Diagnostics about output the observers did not see: the first drop while running, the total
        at the end (and whether they were still busy then)."""
        with self._cond:
            dropped, items = self.dropped_bytes, self.dropped_items
            if final and not (dropped or unfinished):
                return
            if not final and (not dropped or self._told):
                return
            self._told = True
        from zag import diag

        diag.warning("output_observation_incomplete", dropped_bytes=dropped, dropped_items=items,
                     final=final, observers_unfinished=unfinished,
                     note="the observers lagged: output that reached the terminal was not all scanned")
