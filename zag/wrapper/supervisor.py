"""The supervisor of one `zag run` session.

A session is one unified log, one index row and one heartbeat; within it the agent runs as a child,
once today, and again later when the usage-limit engine resumes it (`run_child` is that reusable step:
launch one child and relay until it has exited and its output and session files are drained).

Concurrency is plain threads, each a blocking loop with one job, all started and joined here:
- main thread: spawns each child (PR_SET_PDEATHSIG follows the forking thread) and waits for it;
- relay (per child): the poll loop of `relay.py` (a write blocked by a paused terminal holds back only
  the agent's output, as without zag);
- live follower (per child): polls the provider's `LiveSession` with an adaptive interval, then drains it;
- heartbeat: beats every `heartbeat_secs`;
- signals (`signals.py`: `sigwaitinfo`, to tell a terminal's Ctrl-C from a `kill`);
- registry (`registry.py`: a locked index never holds up the agent).
One process besides: the session's watchdog (`watchdog.py`), forked right after the first child while
zag still has a single thread (the signal thread starts next; signals wait blocked meanwhile), which ends
the agent's whole process tree should zag die while a child runs (told of each child start and exit).
DESIGN.md suggests anyio for these tasks; it was measured and left out: `import anyio` plus `anyio.run`
with one worker thread cost +162 ms per start on the 2-core VM (+3 ms for `threading`), more than the
whole 150 ms start-up budget, while every task above is a blocking loop that needs its own thread anyway
(so an event loop would only schedule threads). Cancellation is an `Event` per child plus
`stop_requested` for the session.

The first child is spawned before the session log, the index and diagnostics are even imported, so zag
adds little to the agent's start.
"""

from __future__ import annotations

import errno
import os
import signal
import termios
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from zag import states
from zag.logs import events
from zag.providers.base import LaunchContext, LaunchPlan, LimitSignal, SessionIdHint
from zag.wrapper import threads, watchdog
from zag.wrapper.child import (Child, ExitStatus, get_window_size, process_group_orphaned, spawn_in_pty,
                               spawn_with_pipes, wait_for_foreground)
from zag.wrapper.guard import ProviderGuard
from zag.wrapper.signals import SignalListener

if TYPE_CHECKING:
    from zag.config import Config
    from zag.providers.base import Item, OutputScanner, Provider
    from zag.wrapper.limits import LimitHandler
    from zag.wrapper.live import LiveFollower
    from zag.wrapper.registry import Registry
    from zag.wrapper.relay import Relay
    from zag.wrapper.terminal import RawMode

STDIN, STDOUT, STDERR = 0, 1, 2  # the fds themselves: `sys.stdout` may be None when fd 1 was closed
SCANNER_FAULT_LIMIT = 100
THREAD_JOIN_SECS = 10.0  # a provider call that hangs must not keep zag from exiting
CONTINUE_WAIT_SECS = 1.0  # zag stopped itself (job control): the SIGCONT reaches the signal thread by then
_STREAM_SOURCE = {"stdout": events.SOURCE_STDOUT, "stderr": events.SOURCE_STDERR, "pty": events.SOURCE_STDOUT}
_TERMINATING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


class LaunchFailed(Exception):
    """The agent could not be started at all; `exit_code` follows the shell (126/127)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# The small record classes of this module (and of child.py, relay.py) are plain classes, not dataclasses:
# building a dataclass costs ~1 ms at import (it compiles its methods), on the path to the agent's start.


class RunRequest:
    """What the user asked for: `zag run PROVIDER ARGS...`."""

    __slots__ = ("provider_name", "user_args", "executable", "interactive", "verbose", "env", "cwd")

    def __init__(self, provider_name: str, user_args: list[str], executable: str, interactive: bool,
                 verbose: bool = False, env: dict[str, str] | None = None, cwd: str | None = None) -> None:
        self.provider_name = provider_name
        self.user_args = user_args
        self.executable = executable
        self.interactive = interactive
        self.verbose = verbose
        self.env = dict(os.environ) if env is None else env
        self.cwd = cwd  # where the agent runs (default: zag's own cwd; `zag resume`: the session's)

    def __repr__(self) -> str:
        return (f"RunRequest({self.provider_name!r}, {self.user_args!r}, {self.executable!r}, "
                f"interactive={self.interactive!r}, verbose={self.verbose!r}, cwd={self.cwd!r})")


class TakeoverRefused(Exception):
    """`zag resume` lost the race for a session: another supervisor took it over meanwhile."""


class _Running:
    __slots__ = ("child", "relay", "raw")

    def __init__(self, child: Child, relay: Relay | None = None, raw: RawMode | None = None) -> None:
        self.child = child
        self.relay = relay
        self.raw = raw


class _Relaying:
    """A child's relay, its thread and the raw mode of the user's terminal while it runs."""

    __slots__ = ("relay", "thread", "raw")

    def __init__(self, relay: Relay, thread: threading.Thread | None, raw: RawMode | None) -> None:
        self.relay = relay
        self.thread = thread  # None: the system refused the thread; the main thread relays (`_supervise`)
        self.raw = raw

    def end(self) -> None:
        """After the child's output ended (or on the way out): stop relaying, give the terminal back,
        let the observers see the last output (bounded), close the child's fds."""
        if self.thread is not None and self.thread.is_alive():
            self.relay.stop()
            self.thread.join(THREAD_JOIN_SECS)
        if self.raw is not None:
            self.raw.restore()
        self.relay.observation.finish(THREAD_JOIN_SECS)
        self.relay.close()

    def abandon(self) -> None:
        """The session could not be set up: stop relaying and give the terminal back (nothing observed)."""
        self.relay.observation.disable()
        self.end()


class _Suspension:
    """Job control for an agent in its PTY: when it stops (Ctrl-Z, SIGSTOP), zag gives the terminal back and
    stops its process group, as the terminal's Ctrl-Z would, so the shell shows the job stopped and its
    prompt. Continued in the foreground (`fg`), zag puts the terminal back in raw mode and continues the
    agent; continued in the background (`bg`), it stops again (SIGTTOU) until `fg`; continued with a
    terminating signal (`kill %1`, the shell's exit), it continues the agent at once, which then gets it."""

    __slots__ = ("child", "relaying", "supervisor")

    def __init__(self, child: Child, relaying: _Relaying, supervisor: Supervisor) -> None:
        self.child = child
        self.relaying = relaying
        self.supervisor = supervisor

    def __call__(self, _signum: int) -> None:
        self.supervisor.suspended.set()
        try:
            self._suspend()
        finally:
            self.supervisor.suspended.clear()

    def _suspend(self) -> None:
        if process_group_orphaned():  # zag cannot stop: the agent runs on, as its stop would be dropped without zag
            self.child.continue_stopped()
            return
        raw = self.relaying.raw
        if raw is not None:
            raw.restore()
        self._stop_zag(signal.SIGTSTP)
        while not self.supervisor.interrupted.is_set() and not _in_foreground(STDIN):
            if not self._stop_zag(signal.SIGTTOU):
                break
        if raw is not None and not self.supervisor.interrupted.is_set():
            raw.enter()
            size = get_window_size(STDOUT) or get_window_size(STDIN)
            if size is not None:
                self.relaying.relay.resize(size)  # the window may have changed while we were stopped
        self.child.continue_stopped()

    def _stop_zag(self, signum: int) -> bool:
        """Stop zag's process group with `signum`; return once the signal thread saw the SIGCONT (after
        any terminating signal sent with it: they have lower numbers and are taken first), or False
        after `CONTINUE_WAIT_SECS` (the kernel drops the stop in an orphaned group: nobody could continue it)."""
        continued = self.supervisor.continued
        continued.clear()
        try:
            os.killpg(0, signum)
        except OSError:
            return False
        if signal.SIGCONT in signal.sigpending():  # stopped and continued: the signal thread takes it soon
            return continued.wait(THREAD_JOIN_SECS)
        return continued.wait(CONTINUE_WAIT_SECS)


def _terminal_hung_up() -> bool:
    """The user's terminal (zag's stdin, or its stdout when that is another one) hung up."""
    from zag.wrapper.terminal import hung_up

    return hung_up(STDIN) or hung_up(STDOUT)


def _let_go_of_stdin() -> None:
    """Headless, once the agent has zag's stdin: a pipe, FIFO, socket or file is the agent's alone (zag
    never reads it), so that its writer learns when the agent closes it (EPIPE, SIGPIPE), as without zag,
    not when zag exits. An agent zag starts again (a usage-limit resume) reads end-of-file: the input was
    the first one's. A terminal stays (the user's keyboard), and so does the placeholder of a closed stdin
    (`<&-`: not inherited, `cli.ensure_standard_fds`)."""
    try:
        if os.isatty(STDIN) or not os.get_inheritable(STDIN):
            return
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.dup2(null, STDIN)  # inheritable, as the stdin it replaces
    except OSError:
        pass
    finally:
        os.close(null)


def _drop_typeahead() -> None:
    """Before an agent starts again in the user's terminal (after a usage-limit wait, `zag resume`): drop
    the keys typed while none ran, which would run into the resume message zag types (a TUI that keeps
    typeahead, as node's setRawMode does, would read "xyzContinue"). Not in the background: the keys
    are the shell's then."""
    if not _in_foreground(STDIN):
        return
    try:
        termios.tcflush(STDIN, termios.TCIFLUSH)
    except (termios.error, OSError):  # not a terminal, or hung up
        pass


def _in_foreground(fd: int) -> bool:
    """True unless terminal `fd` has a foreground process group other than zag's."""
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return True


class Supervisor:
    """Runs one session: see the module docstring."""

    def __init__(self, provider: Provider, request: RunRequest, config: Config,
                 session_id: str | None = None) -> None:
        self.provider = provider
        self.request = request
        self.config = config
        self.session_id = session_id or new_session_id()
        self.heartbeat_secs = float(config.heartbeat_secs)
        self.guard = ProviderGuard(request.provider_name, self.session_id)
        self.writer: Any = None
        self.registry: Registry | None = None
        self.limits: LimitHandler | None = None
        self.provider_session_id: str | None = None
        self.model: str | None = None
        self.started_at = time.time()
        self.stop_requested = threading.Event()  # a terminating signal arrived while no child ran
        self.interrupted = threading.Event()  # a terminating signal arrived at all (no more relaunches)
        self.continued = threading.Event()  # SIGCONT arrived (`_Suspension` waits for it)
        self.suspended = threading.Event()  # `_Suspension` has stopped zag with its agent
        self.hung_up = threading.Event()  # the user's terminal hung up (interactive): `terminal_gone`
        self._running: _Running | None = None
        self._follower: LiveFollower | None = None
        self._output_lost = False  # some of the agent's output could not be written (a full disk)
        self._signal_lock = threading.Lock()
        self._pending_signals: list[int] = []
        self._children_started = 0
        self._signals = SignalListener(self._on_signal)
        self._watchdog: watchdog.Watchdog | None = None
        self._last_child: Child | None = None
        self._ctx: LaunchContext | None = None
        self._state_lock = threading.Lock()
        self._claimed: set[str] = set()  # owner keys of provider sessions claimed for this session (`_claim`)
        self._owner: tuple[str, str] | None = None  # (provider session id, its owner key) where they differ
        self._owner_recorded: tuple[str, str] | None = None  # the one in the log and the index (`_record_owner`)

    # -- the whole session ------------------------------------------------------------------------
    def run(self) -> int:
        """Run the session to its end and return zag's exit code. Raises `LaunchFailed` if the agent
        could not be started (no session is recorded then)."""
        if self.request.interactive:
            wait_for_foreground(STDIN)  # `zag run claude &`: stopped until `fg`; `kill %1` ends zag meanwhile
        self._signals.block()  # the listener thread starts once the agent and the watchdog run
        try:
            ctx = self._context()
            plan = self._plan_launch(ctx)
            ctx = replace(ctx, env={**ctx.env, **plan.env, "ZAG_SESSION_ID": self.session_id})
            child = self._spawn(plan, ctx)
            self._watchdog = watchdog.start(self.session_id)  # forked while zag has a single thread
            if self._watchdog is not None:
                self._watchdog.arm(child.pid)
            self._signals.start()
            self._ctx = replace(ctx, child_pid=child.pid)
            self._open_log(plan, child)  # what zag says about it precedes the agent's output and raw mode
            relaying = self._start_relay(child)  # then the agent's output reaches the user
            try:
                self._open_session(plan, child)
            except BaseException:
                relaying.abandon()
                raise
            diagnostics = None
            if self.guard.holding_diagnostics:  # writing them imports structlog: off the main path
                diagnostics = _start_thread("zag-diag", self.guard.release)
            heartbeat_stop = threading.Event()
            heartbeat = _start_thread("zag-heartbeat", self._heartbeat_loop, heartbeat_stop)
            try:
                status = self._supervise_safely(child, plan, relaying)
            finally:
                heartbeat_stop.set()
                if heartbeat is not None:
                    heartbeat.join(THREAD_JOIN_SECS)
                if diagnostics is not None:
                    diagnostics.join(THREAD_JOIN_SECS)
            self._end_session(status)
            return self._exit_code(status)
        finally:
            self._signals.stop()
            self._stop_watchdog()
            self.guard.release()

    # -- `zag resume`: the same session under a new supervisor --------------------------------------
    def continue_session(self, previous: dict[str, Any]) -> int:
        """Continue the session of index row `previous` (its supervisor is gone): same log (seq goes
        on, a `session_started` with `resumed: true` is appended), same index row (taken over), then
        whatever the usage-limit engine plans (`LimitHandler.first_launch`). Returns zag's exit code;
        raises `TakeoverRefused` if another supervisor took the session over first."""
        self._children_started = 1  # the session's agent ran before: signals now fall between children
        self._watchdog = watchdog.start(self.session_id)
        self._signals.start()
        try:
            self._ctx = self._context()
            self._open_continued_session(previous)
            heartbeat_stop = threading.Event()
            heartbeat = _start_thread("zag-heartbeat", self._heartbeat_loop, heartbeat_stop)
            last_code = previous.get("exit_code")
            # unknown (a log from before `agent_exited` notes, reindexed): not a success (exit_code 1)
            last = ExitStatus(code=last_code if isinstance(last_code, int) else None)
            try:
                status = self._continue_safely(previous, last)
            finally:
                heartbeat_stop.set()
                if heartbeat is not None:
                    heartbeat.join(THREAD_JOIN_SECS)
            self._end_session(status)
            return self._exit_code(status)
        finally:
            self._signals.stop()
            self._stop_watchdog()
            self.guard.release()

    def _continue_safely(self, previous: dict[str, Any], last: ExitStatus) -> ExitStatus:
        assert self.limits is not None
        try:
            plan = self.limits.first_launch(previous)
            if plan is None:
                return last
            try:
                status = self.run_child(plan)
            except LaunchFailed as exc:
                _warn(f"zag: {exc}")
                self.limits.launch_failed(str(exc))
                status = last
            return self._relaunch_loop(status)
        except Exception as exc:  # noqa: BLE001 - as in _supervise_safely
            from zag import diag

            diag.exception("supervisor_failed", session_id=self.session_id)
            _warn(f"zag: internal error while supervising {self.request.provider_name}: {exc} "
                  f"(details in {_diag_path()})")
            running = self._running
            if running is None:
                return last
            status = running.child.reap_if_exited()
            if status is None:
                running.child.send_signal(signal.SIGTERM)
                status = running.child.wait()
            return status

    def _open_continued_session(self, previous: dict[str, Any]) -> None:
        from zag import paths
        from zag.logs.index import Index
        from zag.wrapper import liveness
        from zag.wrapper.limits import LimitHandler
        from zag.wrapper.registry import Registry

        request = self.request
        supervisor_pid = os.getpid()
        supervisor_started = liveness.process_start_time(supervisor_pid)
        host = liveness.hostname()
        now = time.time()
        taken = {
            "state": states.RUNNING, "hostname": host, "supervisor_pid": supervisor_pid,
            "supervisor_started": supervisor_started, "child_pid": None, "last_heartbeat": now,
            "heartbeat_secs": self.heartbeat_secs, "interactive": int(request.interactive), "resumed": 1,
            "ended_at": None, "end_reason": None, "resume_at": None, "updated_at": now,
        }
        with Index() as index:
            if not index.claim_session(self.session_id, previous.get("supervisor_pid"),
                                       previous.get("supervisor_started"), **taken):
                raise TakeoverRefused(f"session {self.session_id[:8]} was taken over by another supervisor")
        self.provider_session_id = previous.get("provider_session_id")
        if self.provider_session_id and previous.get("provider_owner_key"):   # logged and indexed already
            self._owner_recorded = (self.provider_session_id, previous["provider_owner_key"])
        self.model = previous.get("model")
        self.writer = self._open_writer()
        user_argv = [request.provider_name, *request.user_args]
        self._log(events.body(
            events.SESSION_STARTED, ts=now, argv=user_argv, final_argv=None, executable=request.executable,
            cwd=self._ctx.cwd if self._ctx else None, model=self.model, resumed=True, backfilled=False,
            interactive=request.interactive, child_pid=None, supervisor_pid=supervisor_pid,
            supervisor_started=supervisor_started, hostname=host, heartbeat_secs=self.heartbeat_secs,
        ))
        self.guard.attach_log(self._log)
        row = {key: value for key, value in previous.items() if key != "session_id"}
        row.update(taken, provider=request.provider_name, last_seq=self.writer.last_seq,
                   log_path=previous.get("log_path") or str(paths.session_log(self.session_id)))
        self.registry = Registry(self.session_id, row)
        try:
            settings = self.config.limits_for(request.provider_name)
        except Exception:  # noqa: BLE001
            settings = None
        self.limits = LimitHandler(self, settings)
        if request.verbose:
            _warn(f"zag: continuing session {self.session_id} ({request.provider_name}); "
                  f"log {paths.session_log(self.session_id)}")

    def _supervise_safely(self, child: Child, plan: LaunchPlan, relaying: _Relaying) -> ExitStatus:
        """The first child, then any relaunch the usage-limit engine plans; a bug in zag ends the session
        cleanly (terminal restored, agent ended, exit recorded) instead of leaving a mess."""
        try:
            return self._relaunch_loop(self._supervise(child, plan, relaying))
        except Exception as exc:  # noqa: BLE001
            from zag import diag

            diag.exception("supervisor_failed", session_id=self.session_id)
            _warn(f"zag: internal error while supervising {self.request.provider_name}: {exc} "
                  f"(details in {_diag_path()})")
            running = self._running
            last = running.child if running is not None else child
            status = last.reap_if_exited()
            if status is None:
                last.send_signal(signal.SIGTERM)
                status = last.wait()
            return status

    def _relaunch_loop(self, status: ExitStatus) -> ExitStatus:
        """Ask the usage-limit engine after each child exit whether to run the agent again."""
        while self.limits is not None:
            next_plan = self.limits.next_launch(status)
            if next_plan is None:
                break
            try:
                status = self.run_child(next_plan)
            except LaunchFailed as exc:
                _warn(f"zag: {exc}")
                self.limits.launch_failed(str(exc))
        return status

    # -- what the usage-limit engine uses ---------------------------------------------------------
    def log_event(self, body: dict[str, Any]) -> None:
        """Append a wrapper event to the session log (any thread)."""
        self._log(body)

    def update_registry(self, **fields: Any) -> None:
        """Set columns of this session's index row (written in the background)."""
        self._update_registry(**fields)

    def launch_context(self) -> LaunchContext | None:
        """The context of the current (or last) child: cwd, environment, interactive."""
        return self._ctx

    @property
    def current_child(self) -> Child | None:
        """The running agent process, if any."""
        running = self._running
        return running.child if running is not None else None

    def terminal_gone(self) -> bool:
        """True once the user's terminal hung up (interactive runs). While an agent runs, its relay sees
        that; between children (a usage-limit wait) the terminal is looked at here."""
        if not self.hung_up.is_set() and self.request.interactive and self._running is None \
                and _terminal_hung_up():
            self.hung_up.set()
        return self.hung_up.is_set()

    def send_to_agent(self, data: bytes) -> bool:
        """Type `data` into the running agent's PTY (any thread); False if there is none."""
        running = self._running
        if running is None or running.relay is None:
            return False
        return running.relay.send(data)

    # -- one child --------------------------------------------------------------------------------
    def run_child(self, plan: LaunchPlan) -> ExitStatus:
        """Launch the agent again in this session (same log, same index row) and supervise it.
        Call from the main thread only (see the module docstring)."""
        assert self._ctx is not None
        ctx = replace(self._ctx, env={**self._ctx.env, **plan.env}, started_at=time.time(), child_pid=None)
        if ctx.interactive:
            _drop_typeahead()
        child = self._spawn(plan, ctx)
        self._ctx = replace(ctx, child_pid=child.pid)
        # in the log too (a wrapper note), so that an index rebuilt from it names this child, not the first
        self._log(events.provider_status(
            f"{self.request.provider_name} runs again in this session (pid {child.pid})",
            {"kind": events.NOTE_AGENT_STARTED, "child_pid": child.pid, "final_argv": list(child.argv)}))
        self._update_registry(state=states.RUNNING, child_pid=child.pid)
        return self._supervise(child, plan)

    def _supervise(self, child: Child, plan: LaunchPlan, relaying: _Relaying | None = None) -> ExitStatus:
        """Relay until `child` exited and its output ended (and was observed); follow its session files
        meanwhile. `relaying`: the relay `_start_relay` started right after the spawn, if it did."""
        from zag.wrapper.live import LiveFollower, file_size

        assert self._ctx is not None
        ctx = self._ctx
        if relaying is None:
            relaying = self._start_relay(child)
        relay = relaying.relay
        follower = LiveFollower(self.provider, self.guard, self.registry, self._route,
                                self._set_provider_session_id, stop=self.stop_requested,
                                log_complete=lambda: self.writer.complete,
                                log_size=lambda: file_size(self.writer.path), log_room=self.writer.has_room)
        self._follower = follower
        child_done = threading.Event()
        scanner = live_thread = None
        try:
            scanner = self.guard.method("output_scanner", self.provider, "output_scanner", ctx, default=None)
            self._start_observers(child, relay, scanner)  # what the agent printed so far is scanned first
            live_thread = _start_thread("zag-live", follower.run, plan, ctx, child_done)
            if relaying.thread is None:
                _relay_here(relay)
            child.wait(_Suspension(child, relaying, self) if child.interactive else None)
            if self._watchdog is not None:
                self._watchdog.disarm()  # what the agent left running is the user's business now
            self._set_running(None)
            relay.child_exited()
            if relaying.thread is not None:
                relaying.thread.join()  # ends at EOF, or after the bounded drain (relay.DRAIN_*_SECS)
        finally:
            child_done.set()
            self._set_running(None)
            relaying.end()
            self._note_lost_output(relay)
        if scanner is not None:
            for item in self.guard.method("OutputScanner.finish", scanner, "finish", default=None) or []:
                self._route(item, events.SOURCE_STDOUT)
        if live_thread is not None:
            live_thread.join(THREAD_JOIN_SECS)  # the follower drains the session files, then stops
        return child.status or child.wait()

    def _note_lost_output(self, relay: Relay) -> None:
        if relay.lost_output is not None:
            self._output_lost = True
            _warn(f"zag: could not write all of {self.request.provider_name}'s output ({relay.lost_output}); "
                  "what it wrote after that is lost")

    def _exit_code(self, status: ExitStatus) -> int:
        """The agent's exit code; 1 instead of 0 when some of its output could not be written, as the
        agent would have failed to write it without zag (the session log keeps the agent's own code)."""
        code = status.exit_code
        return 1 if code == 0 and self._output_lost else code

    def _start_relay(self, child: Child) -> _Relaying:
        """Put the user's terminal in raw mode (interactive) and relay the child's output from now on;
        the observers come later (`_start_observers`): output and keystrokes queue for them meanwhile."""
        from zag.wrapper.relay import Output, Relay
        from zag.wrapper.terminal import RawMode

        if child.pty_master is not None:
            relay = Relay([Output(child.pty_master, STDOUT, "pty")], pty_master=child.pty_master, stdin_fd=STDIN,
                          on_hangup=self._terminal_hung_up, stop_on_suspend=not child.held)
        else:
            assert child.stdout_fd is not None and child.stderr_fd is not None
            relay = Relay([Output(child.stdout_fd, STDOUT, "stdout"), Output(child.stderr_fd, STDERR, "stderr")])
        raw = RawMode(STDIN) if child.interactive else None
        if raw is not None:
            raw.enter()
        self._attach_relay(child, relay, raw)
        thread = _start_thread("zag-relay", relay.run, on_error=relay.close)
        return _Relaying(relay, thread, raw)

    def _terminal_hung_up(self) -> None:
        """The relay saw the user's terminal hang up (and hung up the agent's): no resume can be typed or
        shown any more (relay thread)."""
        self.hung_up.set()
        from zag import diag

        diag.info("terminal_hung_up", session_id=self.session_id)
        if self.limits is not None:
            self.limits.terminal_gone()

    def _start_observers(self, child: Child, relay: Relay, scanner: OutputScanner | None) -> None:
        """Hand the output to the scanner and the usage-limit engine (and, in a PTY, the keystrokes)."""
        limits = self.limits
        if child.interactive:
            observe = self._observer(scanner, limits)
            on_input = limits.on_input if limits is not None else None
        else:
            observe = self._observer(scanner, None) if scanner is not None else None
            on_input = None
        relay.observation.start(observe, on_input)

    def _observer(self, scanner: OutputScanner | None, limits: LimitHandler | None) -> Any:
        guard = self.guard

        def observe(stream: str, data: bytes) -> None:
            if limits is not None:
                limits.on_output(stream, data)  # the screen the engine answers dialogs from
            if scanner is None or guard.faults.get("OutputScanner.feed", 0) >= SCANNER_FAULT_LIMIT:
                return
            for item in guard.method("OutputScanner.feed", scanner, "feed", stream, data, default=None) or []:
                self._route(item, _STREAM_SOURCE.get(stream, events.SOURCE_STDOUT))

        return observe

    # -- launching --------------------------------------------------------------------------------
    def _context(self) -> LaunchContext:
        cwd = self.request.cwd
        if not cwd:
            try:
                cwd = os.getcwd()
            except OSError:
                cwd = self.request.env.get("PWD", "")
        try:
            patterns = self.config.limits_for(self.request.provider_name).extra_patterns
        except Exception:  # noqa: BLE001
            patterns = ()
        return LaunchContext(
            cwd=cwd,
            env={**self.request.env, "ZAG_SESSION_ID": self.session_id},
            interactive=self.request.interactive,
            started_at=self.started_at,
            zag_session_id=self.session_id,
            extra_limit_patterns=tuple(patterns),
        )

    def _plan_launch(self, ctx: LaunchContext) -> LaunchPlan:
        user_args = list(self.request.user_args)
        plan = self.guard.method("plan_launch", self.provider, "plan_launch", list(user_args), ctx, default=None)
        if not isinstance(plan, LaunchPlan) or not _all_str(plan.args) or not _str_dict(plan.env):
            if plan is not None:
                self.guard.fault("plan_launch", TypeError(f"not a valid LaunchPlan: {plan!r}"[:500]))
            plan = LaunchPlan(args=user_args)
        return plan

    def _start(self, argv: list[str], ctx: LaunchContext) -> Child:
        cwd = self._launch_folder(ctx)
        if self.request.interactive:
            stderr = None if os.isatty(STDERR) else STDERR  # `2>file`: the agent's stderr goes there, as without zag
            return spawn_in_pty(argv, ctx.env, cwd, terminal_fd=STDIN, original_sigmask=self._signals.original_mask,
                                stderr_fd=stderr)
        child = spawn_with_pipes(argv, ctx.env, cwd, original_sigmask=self._signals.original_mask)
        _let_go_of_stdin()
        return child

    def _launch_folder(self, ctx: LaunchContext) -> str | None:
        """Where the agent starts: the context's folder; None (zag's own) when zag's own folder was deleted
        under it, where a shell would start the agent all the same."""
        if not ctx.cwd or os.path.isdir(ctx.cwd):
            return ctx.cwd or None
        if self.request.cwd:  # `zag resume`: the agent's session belongs to that folder
            raise LaunchFailed(f"{self.request.provider_name}: the session's folder {ctx.cwd} no longer exists",
                               1)
        return None

    def _spawn(self, plan: LaunchPlan, ctx: LaunchContext) -> Child:
        argv = [self.request.executable, *plan.args]
        if plan.provider_session_id:
            self._claim(plan.provider_session_id, ctx.env)  # before the agent writes its first record
        try:
            try:
                child = self._start(argv, ctx)
            except OSError as exc:
                if exc.errno != errno.ENOEXEC:
                    raise
                child = self._start(["/bin/sh", *argv], ctx)  # a script without `#!`: as a shell runs it
        except FileNotFoundError as exc:
            from zag.wrapper.executable import not_found_reason

            raise LaunchFailed(f"{self.request.provider_name}: cannot run {argv[0]}: "
                               f"{not_found_reason(argv[0], exc.strerror)}; "
                               f"install it with: {self.provider.install_hint}", 127) from exc
        except OSError as exc:
            raise LaunchFailed(f"{self.request.provider_name}: cannot run {argv[0]}: {exc.strerror or exc}",
                               126) from exc
        self._last_child = child
        if self._watchdog is not None:
            self._watchdog.arm(child.pid)
        self._set_running(_Running(child))
        self._record_owner()   # (a first launch: once its log is open, `_open_session`)
        return child

    def _stop_watchdog(self) -> None:
        """zag ends: the watchdog goes quietly, unless a child still runs (zag is failing: it must act)."""
        child = self._last_child
        if self._watchdog is not None and (child is None or child.status is not None
                                           or child.reap_if_exited() is not None):
            self._watchdog.stop()

    # -- the session log and the index ------------------------------------------------------------
    def _open_log(self, plan: LaunchPlan, child: Child) -> None:
        """Open the session log (a warning if it cannot be written; `--verbose`: where it is)."""
        self.provider_session_id = plan.provider_session_id
        self.model = plan.model
        self.writer = self._open_writer()
        if self.request.verbose:
            from zag import paths

            _warn(f"zag: session {self.session_id} ({self.request.provider_name}, pid {child.pid}); "
                  f"log {paths.session_log(self.session_id)}")

    def _open_session(self, plan: LaunchPlan, child: Child) -> None:
        """The session's first event, its index row (registry) and usage-limit engine (after `_open_log`)."""
        from zag import paths
        from zag.wrapper import liveness
        from zag.wrapper.limits import LimitHandler
        from zag.wrapper.registry import Registry

        supervisor_pid = os.getpid()
        supervisor_started = liveness.process_start_time(supervisor_pid)
        host = liveness.hostname()
        request = self.request
        user_argv = [request.provider_name, *request.user_args]
        self._log(events.body(
            events.SESSION_STARTED,
            ts=self.started_at,
            argv=user_argv,
            final_argv=list(child.argv),
            executable=request.executable,
            cwd=self._ctx.cwd if self._ctx else None,
            model=plan.model,
            resumed=False,
            backfilled=False,
            interactive=request.interactive,
            child_pid=child.pid,
            supervisor_pid=supervisor_pid,
            supervisor_started=supervisor_started,
            hostname=host,
            heartbeat_secs=self.heartbeat_secs,
        ))
        self.guard.attach_log(self._log)
        self.registry = Registry(self.session_id, {
            "provider": request.provider_name,
            "provider_session_id": plan.provider_session_id,
            "state": states.RUNNING,
            "cwd": self._ctx.cwd if self._ctx else None,
            "argv": user_argv,
            "model": plan.model,
            "started_at": self.started_at,
            "hostname": host,
            "supervisor_pid": supervisor_pid,
            "supervisor_started": supervisor_started,
            "child_pid": child.pid,
            "last_heartbeat": self.started_at,
            "heartbeat_secs": self.heartbeat_secs,
            "interactive": int(request.interactive),
            "resumed": 0,
            "backfilled": 0,
            "last_seq": self.writer.last_seq,
            "log_path": str(paths.session_log(self.session_id)),
        })
        self._record_owner()
        try:
            settings = self.config.limits_for(request.provider_name)
        except Exception:  # noqa: BLE001
            settings = None
        self.limits = LimitHandler(self, settings)

    def _open_writer(self) -> Any:
        from zag.logs.writer import SessionLogWriter

        try:
            return SessionLogWriter(self.session_id, self.request.provider_name,
                                    provider_session_id=self.provider_session_id,
                                    redactor=_redactor(self.config), tell=self._tell)
        except Exception as exc:  # noqa: BLE001 - an unwritable log must not stop the agent
            from zag import diag

            diag.exception("session_log_open_failed", session_id=self.session_id)
            _warn(f"zag: cannot write the session log ({exc}); {self.request.provider_name} runs unlogged")
            return _UnwrittenLog(self.session_id, self.request.provider_name, self.provider_session_id)

    def _end_session(self, status: ExitStatus, error: str | None = None) -> None:
        if error is None and status.signal is not None:
            error = f"killed by {status.signal_name}"
        limit_fields: dict[str, Any] = {}
        if self.limits is not None:
            self.limits.close()
            limit_fields = self.limits.end_fields()
        if error is None:
            error = limit_fields.pop("error", None)
        ended_at = time.time()
        fields: dict[str, Any] = {"exit_code": status.exit_code, "success": status.exit_code == 0,
                                  "error": error, **limit_fields}
        if status.signal is not None:
            fields["signal"] = status.signal_name
        self._log(events.body(events.SESSION_ENDED, ts=ended_at, **fields))
        self._release_claims()
        self._update_registry(state=states.EXITED, exit_code=status.exit_code, ended_at=ended_at,
                              last_seq=self.writer.last_seq, updated_at=ended_at, resume_at=None,
                              end_reason="cancelled" if fields.get("cancelled") else None)
        log_whole = self.writer.close()  # says so if events are lost (a full disk)
        if not log_whole and not isinstance(self.writer, _UnwrittenLog):
            _warn(f"zag: once there is space, `zag backfill` adds what is missing at the log's end from "
                  f"{self.request.provider_name}'s own session files")
        if self.registry is not None and not self.registry.close():
            _warn(f"zag: could not update the index ({self.registry.last_error or 'busy'}); "
                  + ("`zag reindex` rebuilds it from the logs" if log_whole
                     else "the session log is incomplete too (see above)"))
        if self.request.verbose:
            _warn(f"zag: session {self.session_id} ended, exit code {status.exit_code}")

    def _tell(self, message: str) -> None:
        """One line for the user at any moment of the run: in a terminal that the agent's screen may have
        in raw mode, it starts at column 0 and ends with CR LF (a bare LF would leave the next line
        indented where this one ended)."""
        _warn(message, raw_terminal=self.request.interactive)

    def _log(self, body: dict[str, Any], source: str = events.SOURCE_WRAPPER) -> None:
        try:
            self.writer.write(body, source)
        except Exception:  # noqa: BLE001 - the writer holds failed lines itself; this is a bug guard
            from zag import diag

            diag.exception("session_log_write_failed", session_id=self.session_id, type=body.get("type"))

    def _update_registry(self, **fields: Any) -> None:
        if self.registry is not None:
            self.registry.update(**fields)

    def _heartbeat_loop(self, stop: threading.Event) -> None:
        interval = self.heartbeat_secs
        next_beat = time.monotonic() + interval
        while not stop.wait(max(0.0, next_beat - time.monotonic())):
            try:
                self._beat()
            except Exception:  # noqa: BLE001 - a failed beat must not end the heartbeat
                from zag import diag

                diag.exception("heartbeat_failed", session_id=self.session_id)
            next_beat += interval
            now = time.monotonic()
            if next_beat <= now:  # fell behind (suspended machine): no burst of beats
                next_beat = now + interval

    def _beat(self) -> None:
        at = time.time()
        extra = self.limits.heartbeat_fields() if self.limits is not None else {}
        self._log(events.body(events.HEARTBEAT, ts=at, interval_secs=self.heartbeat_secs, **extra))
        if self.registry is not None:
            self.registry.heartbeat(self.writer.last_seq, at)
        if self.writer.path is None:  # no log to touch (it could not be opened)
            return
        try:  # a beat that needs no free space: `zag ps` reads it when the index could not take the heartbeat
            os.utime(self.writer.path, follow_symlinks=False)
        except OSError:
            pass

    # -- what the provider tells us ---------------------------------------------------------------
    def _route(self, item: Item, source: str) -> None:
        """Send one item from the output scanner or the live session where it belongs."""
        if isinstance(item, dict):
            self._record(item, source)
        elif isinstance(item, SessionIdHint):
            follower = self._follower
            if follower is not None:
                follower.hint(item)  # queued until the live session is open, then handed over
            if follower is None or not follower.active:
                self._set_provider_session_id(item.provider_session_id)
        elif isinstance(item, LimitSignal):
            if self.limits is not None:
                self.limits.observe(item)
        else:
            self.guard.fault("item", TypeError(f"unexpected item from the provider: {type(item).__name__}"))

    def _record(self, body: dict[str, Any], source: str) -> None:
        if not isinstance(body.get("type"), str) or not body["type"]:
            body = events.parse_warning("provider event without a type", repr(body)[:65536])
        self._log(body, source)
        if self.limits is not None:
            self.limits.on_event(body, source)
        if body["type"] == events.SESSION_CLEARED:  # what follows belongs to the agent's new session
            new_id = body.get("new_session_id") or body.get("provider_session_id")
            if isinstance(new_id, str):
                self._set_provider_session_id(new_id)
        model = body.get("model")
        if isinstance(model, str) and model and model != self.model:
            self.model = model
            self._update_registry(model=model)

    def _set_provider_session_id(self, value: str) -> None:
        with self._state_lock:
            if not value or value == self.provider_session_id:
                return
            self.provider_session_id = value
            if self.writer is not None:
                self.writer.provider_session_id = value
        self._claim(value, self._ctx.env if self._ctx is not None else self.request.env)
        self._update_registry(provider_session_id=value)
        self._record_owner()

    def _claim(self, provider_session_id: str, env: Mapping[str, str]) -> None:
        """Mark the agent's session as supervised here at once (a file, no index): a `zag backfill` running
        before this session's index row is written leaves it alone (`claims`). Released at the end. The
        key is the provider's `owner_key` (e.g. goose's id with its database: ids repeat across homes)."""
        from zag.providers import claims
        from zag.providers.base import owner_key

        try:
            key = owner_key(self.provider, provider_session_id, env)
        except Exception as exc:  # noqa: BLE001 - a provider bug must not stop the run
            self.guard.fault("owner_key", exc)
            key = provider_session_id
        with self._state_lock:
            if key != provider_session_id:
                self._owner = (provider_session_id, key)
            if key in self._claimed:
                return
            self._claimed.add(key)
        claims.claim(self.provider.name, key, self.session_id)

    def _record_owner(self) -> None:
        """The owner key of the agent's session, where it is not its id (goose: ids repeat across homes):
        in the log (a note, so an index rebuilt from the logs keeps it) and the index row. Backfill gives a
        session without cursor (a full disk, killed before its first save, a lost index) exactly its own
        agent session, not another home's with the same id that ran in the same folder."""
        with self._state_lock:
            owner, recorded = self._owner, self._owner_recorded
            if (owner is None or owner == recorded or owner[0] != self.provider_session_id or self.writer is None
                    or self.registry is None):   # (after `session_started`)
                return
            self._owner_recorded = owner
        provider_session_id, key = owner
        self._log(events.provider_status(
            f"{self.request.provider_name} session {provider_session_id} (owner key {key})",
            {"kind": events.NOTE_PROVIDER_OWNER, "provider_session_id": provider_session_id, "owner_key": key}))
        self._update_registry(provider_owner_key=key)

    def _release_claims(self) -> None:
        from zag.providers import claims

        with self._state_lock:
            claimed, self._claimed = self._claimed, set()
        for key in claimed:
            claims.release(self.provider.name, key, self.session_id)

    # -- signals ----------------------------------------------------------------------------------
    def _set_running(self, running: _Running | None) -> None:
        with self._signal_lock:
            if running is not None:
                self._children_started += 1
            self._running = running
            pending, self._pending_signals = self._pending_signals, []
        if running is not None:
            for signum in pending:  # arrived before the child existed: it never saw them
                running.child.send_signal(signum)

    def _attach_relay(self, child: Child, relay: Relay, raw: RawMode | None) -> None:
        with self._signal_lock:
            if self._running is not None and self._running.child is child:
                self._running.relay = relay
                self._running.raw = raw

    def _continued_by_surprise(self) -> None:
        """zag was stopped without its agent (`kill -STOP`/`-TSTP` to zag, a read of the terminal from the
        background) and is continued: the shell gave the terminal its own modes meanwhile; raw mode again
        (once in the foreground: a background zag would stop on it) and the window's size."""
        running = self._running
        if running is None or running.raw is None or running.relay is None or not _in_foreground(STDIN):
            return
        running.raw.reassert()
        size = get_window_size(STDOUT) or get_window_size(STDIN)
        if size is not None:
            running.relay.resize(size)

    def _on_signal(self, signum: int, from_terminal: bool) -> None:
        """Called in the signal thread for every signal sent to zag."""
        if signum == signal.SIGCONT:
            self.continued.set()
            if not self.suspended.is_set():
                self._continued_by_surprise()
            return
        if signum in _TERMINATING:
            self.interrupted.set()
            if self.limits is not None:
                self.limits.wake()  # a wait for a usage-limit reset ends now
        with self._signal_lock:
            running = self._running
            if running is None and signum != signal.SIGWINCH:
                if signum in _TERMINATING and self._children_started:
                    self.stop_requested.set()  # between children or while draining: wrap up
                elif not self._children_started:
                    self._pending_signals.append(signum)  # the first child is starting: it gets it
                # else between children (a usage-limit wait): it was for an agent that is gone, and
                # the next one may start hours later (SIGUSR2 would kill it, SIGUSR1 open node's inspector)
                return
        if running is None:
            return
        if signum == signal.SIGWINCH:
            if running.child.interactive and running.relay is not None:
                size = get_window_size(STDOUT) or get_window_size(STDIN)
                if size is not None:
                    running.relay.resize(size)
            return
        if from_terminal and running.child.shares_process_group():
            return  # the terminal delivered it to the agent's process group already
        if signum == signal.SIGHUP and running.relay is not None and self._hang_up_agent(running.relay):
            return
        running.child.send_signal(signum)

    def _hang_up_agent(self, relay: Relay) -> bool:
        """A SIGHUP because the user's terminal hung up (the shell's, or the kernel's to a session leader):
        the agent gets the kernel's SIGHUP when zag hangs up its terminal (`Relay.hang_up`), and only that
        one, as in the user's terminal the shell's would have been its only one. False when the terminal is
        there still (a `kill -HUP`) or the agent's PTY is gone already."""
        return self.request.interactive and _terminal_hung_up() and relay.hang_up()


class _UnwrittenLog:
    """Stands in for the session log when it cannot be opened: events are stamped, counted and dropped."""

    def __init__(self, session_id: str, provider: str, provider_session_id: str | None) -> None:
        self.session_id = session_id
        self.provider = provider
        self.provider_session_id = provider_session_id
        self.path = None
        self.last_seq = 0
        self.complete = False
        self._lock = threading.Lock()

    def write(self, body: dict[str, Any], source: str = events.SOURCE_WRAPPER) -> dict[str, Any]:
        with self._lock:
            self.last_seq += 1
            return {"seq": self.last_seq, "source": source, **body}

    def has_room(self) -> bool:
        return True  # nothing is held: the live follower reads on, its events are dropped like the rest

    def close(self) -> bool:
        return False  # every event was dropped (said when the log could not be opened)


def _redactor(config: Config) -> Any:
    from zag.logs.redact import Redactor

    return Redactor(extra_patterns=config.redaction_patterns)


def _start_thread(name: str, target: Callable[..., Any], *args: Any,
                  on_error: Callable[[], Any] | None = None) -> threading.Thread | None:
    """`target(*args)` in a daemon thread; None when the system refused the thread (`threads.start`)."""
    def guarded() -> None:
        try:
            target(*args)
        except Exception:  # noqa: BLE001 - a thread's failure is a zag fault, never the agent's
            from zag import diag

            diag.exception("thread_failed", thread=name)
            if on_error is not None:
                on_error()  # e.g. a dead relay closes the child's output, so the child cannot hang on it

    thread = threading.Thread(target=guarded, name=name, daemon=True)
    return thread if threads.start(thread) else None


def _relay_here(relay: Relay) -> None:
    """Relay in the calling thread until the child's output ends: the system refused the relay its thread,
    and an output nobody reads would block the agent (no job control meanwhile)."""
    try:
        relay.run()
    except Exception:  # noqa: BLE001 - as in a relay thread
        from zag import diag

        diag.exception("thread_failed", thread="zag-relay")
        relay.close()


def new_session_id() -> str:
    """A random (version 4) UUID as `str(uuid.uuid4())` writes it, without importing `uuid` (which loads
    `platform`: ~3 ms before the agent's spawn, for the providers that do not import it anyway)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _all_str(values: Any) -> bool:
    return isinstance(values, list) and all(isinstance(value, str) for value in values)


def _str_dict(values: Any) -> bool:
    return isinstance(values, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in values.items())


def _diag_path() -> str:
    try:
        from zag import paths

        return str(paths.diagnostics_log())
    except Exception:  # noqa: BLE001
        return "zag.log"


def _warn(message: str, *, raw_terminal: bool = False) -> None:
    line = f"\r{message}\r\n" if raw_terminal else message + "\n"
    try:
        os.write(2, line.encode("utf-8", "replace"))
    except OSError:
        pass
