"""Performing a resume in the agent's terminal (interactive runs), as one thread per operation.

An operation serves one child:
- in-place (the agent is still on screen after its limit hit): wait until the engine's active incident
  is due, clear what the CLI put in the way (`Provider.unblock_keys` on the recent screen, again after
  each answer, a bounded number of times), type `Provider.resume_keys(message)` (a `KeySequence` is
  written chunk by chunk with its pause), then wait for the engine to see a new assistant message
  (`verify_secs`); without one the attempt failed and the next one waits `retry_secs`;
- after a relaunch (`zag` started the agent again with its resume flag): wait for the new child and for
  its TUI to settle, type the message unless the plan already carried it, and verify the same way.
The operation stops as soon as its child is gone (the main thread then takes over) or it is told to.
"""

from __future__ import annotations

import termios
import threading
import time
from typing import TYPE_CHECKING, Any

from zag import states
from zag.providers.base import KeySequence
from zag.wrapper import threads

if TYPE_CHECKING:
    from zag.wrapper.child import Child
    from zag.wrapper.limits import Attempt, LimitHandler

READY_QUIET_SECS = 1.0     # a relaunched TUI counts as ready once its output paused this long
READY_MAX_SECS = 30.0
NEW_CHILD_MAX_SECS = 30.0
UNBLOCK_STEPS = 5
UNBLOCK_REACTION_SECS = 3.0  # how long a dialog may take to redraw after an answer
SCREEN_QUIET_SECS = 0.3
AGENT_BACK_SECS = 30.0     # how long typing waits for a suspended agent to be back in its raw mode
AGENT_POLL_SECS = 0.02


class PtyResume:
    """One operation (see the module docstring); `start()` runs it in a daemon thread."""

    def __init__(self, engine: LimitHandler, *, child: Child | None, relaunch: Attempt | None = None,
                 previous_child: Child | None = None, message: str | None = None) -> None:
        self.engine = engine
        self.child = child
        self.relaunch = relaunch
        self.previous_child = previous_child
        self.message = message          # typed after a relaunch (None: the plan carried it, or a re-run)
        self._seen_raw = False          # the agent's terminal was seen in raw mode (a TUI: `_await_agent`)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._guarded, name="zag-resume", daemon=True)

    def start(self) -> bool:
        """Start typing the resume on a thread of its own; False when the system refused the thread (said
        once by `threads.start`): nothing is typed, the agent stays the user's."""
        return threads.start(self._thread)

    def stop(self) -> None:
        self._stop.set()
        self.engine.wake()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stopped(self) -> bool:
        if self._stop.is_set() or self.engine.closed:
            return True
        return self.child is not None and self.engine.supervisor.current_child is not self.child

    # -- the thread ---------------------------------------------------------------------------------
    def _guarded(self) -> None:
        try:
            self._run()
        except Exception:  # noqa: BLE001 - a bug here must not touch the agent
            from zag import diag

            diag.exception("pty_resume_failed", session_id=self.engine.session_id)

    def _run(self) -> None:
        if self.child is None:
            if not self._await_new_child():
                return
            self.engine.screen.wait_settled(quiet=READY_QUIET_SECS, timeout=READY_MAX_SECS, stopped=self.stopped)
            if self.stopped():
                return
            self._seen_raw = _canonical(self.child) is False  # its TUI's own mode, before any Ctrl-Z
            if self.message is not None:
                self._unblock()
                if not self._type(self.message):
                    return
            if self.relaunch is not None:
                self._verify(self.relaunch)
        else:
            self._seen_raw = _canonical(self.child) is False
        while not self.stopped():
            outcome, incident = self.engine.wait_due(self.stopped)
            if outcome != "due" or incident is None:
                return
            self._unblock()
            if self.stopped() or incident.status != states.RESUME_PENDING:
                return  # closed meanwhile: cancelled, or the session went on without zag
            attempt = self.engine.begin_attempt(incident, expected=self.engine.supervisor.provider_session_id)
            if not self._type(attempt.message):
                if not self.stopped():
                    self.engine.fail_attempt(attempt, "could not type into the agent's terminal")
                return
            self._verify(attempt)

    def _await_new_child(self) -> bool:
        deadline = time.monotonic() + NEW_CHILD_MAX_SECS
        supervisor = self.engine.supervisor
        while not self._stop.is_set() and not self.engine.closed:
            current = supervisor.current_child
            if current is not None and current is not self.previous_child:
                self.child = current
                return True
            if time.monotonic() >= deadline:
                return False
            self._stop.wait(0.02)
        return False

    def _verify(self, attempt: Attempt) -> None:
        outcome = self.engine.wait_outcome(attempt, self.engine.settings.verify_secs, self.stopped)
        if outcome is None and not self.stopped():
            self.engine.fail_attempt(
                attempt, f"no new assistant message within {self.engine.settings.verify_secs:g}s of the resume")

    # -- keys ---------------------------------------------------------------------------------------
    def _unblock(self) -> None:
        """Answer what the CLI opened after the limit hit, until it opens nothing more (bounded)."""
        screen = self.engine.screen
        screen.wait_settled(quiet=SCREEN_QUIET_SECS, timeout=UNBLOCK_REACTION_SECS, after=None, stopped=self.stopped)
        for _ in range(UNBLOCK_STEPS):
            if self.stopped():
                return
            keys = self.engine.guard.method("unblock_keys", self.engine.provider, "unblock_keys", screen.text(),
                                            default=None)
            if not keys or not isinstance(keys, (bytes, bytearray)):
                return
            mark = screen.mark()
            if not self._send(keys):
                return
            screen.wait_settled(quiet=SCREEN_QUIET_SECS, timeout=UNBLOCK_REACTION_SECS, after=mark,
                                stopped=self.stopped)

    def _type(self, message: str) -> bool:
        keys = self.engine.guard.method("resume_keys", self.engine.provider, "resume_keys", message, default=None)
        if not keys or not isinstance(keys, (bytes, bytearray)):
            keys = message.encode("utf-8") + b"\r"
        return self._send(keys)

    def _send(self, keys: Any) -> bool:
        chunks = keys.chunks if isinstance(keys, KeySequence) else (bytes(keys),)
        pause = keys.pause if isinstance(keys, KeySequence) else 0.0
        for position, chunk in enumerate(chunks):
            if position and pause > 0 and self._stop.wait(pause):
                return False
            if not self._await_agent() or not self.engine.supervisor.send_to_agent(chunk):
                return False
        return True

    def _await_agent(self) -> bool:
        """Before each key: wait while the job is suspended (Ctrl-Z), or while the agent, a TUI seen in raw
        mode, is out of it: suspending itself (cooked modes back, then stopped) or continued but not yet
        raw again (its SIGCONT handler). Keys typed then go through the cooked line discipline (Enter
        becomes a newline) and a TUI flushes them as it goes raw again. Bounded by `AGENT_BACK_SECS` of
        zag's running time (then the keys go as before); False when the operation stops."""
        waited = 0.0
        while not self.stopped():
            canonical = _canonical(self.child)
            if canonical is False:
                self._seen_raw = True
            suspended = self.engine.supervisor.suspended.is_set()
            if waited >= AGENT_BACK_SECS or not (suspended or (self._seen_raw and canonical)):
                return True
            self._stop.wait(AGENT_POLL_SECS)
            waited += AGENT_POLL_SECS  # counted, not timed: a stopped job does not use it up
        return False


def _canonical(child: Child | None) -> bool | None:
    """Whether the agent's terminal is in canonical (cooked) mode; None when it cannot be told."""
    fd = child.pty_master if child is not None else None
    if fd is None:
        return None
    try:
        return bool(termios.tcgetattr(fd)[3] & termios.ICANON)
    except (OSError, termios.error):
        return None
