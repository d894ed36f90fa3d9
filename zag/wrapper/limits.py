"""The usage-limit engine of one session: detection → incident → wait → resume → verify.

The supervisor feeds it (any thread): `observe` every `LimitSignal` (output scanner, live session),
`on_event` every transcript event it logs, `on_output` the PTY's output, `on_input` the user's
keystrokes; and asks it (main thread): `next_launch(status)` after each child exit (a plan runs the agent
again in the same session, None ends it), `first_launch(previous)` when `zag resume` continues a session,
`heartbeat_fields()` for each beat and `end_fields()` for `session_ended`.

- Incidents (`incidents.py`): structured signals are trusted at once, text ones confirmed by the exit
  code (headless) or a grace period without explanation (interactive); reports of one hit merge. A
  timer thread confirms and announces: `usage_limit_hit` in the log, a row in `resumes`, the session
  `waiting` with its `resume_at`, one line on stderr. With `enabled = false` only the hit is recorded.
- Waiting (`wait_due`): until the incident's `resume_at` (`schedule.py`), polling the index about once a
  second so `zag usage cancel` stops it; Ctrl-C / SIGTERM while no child runs cancel it too, and so does
  the user's terminal hanging up in an interactive session (`terminal_gone`: there is no TUI to type into
  any more, nor a terminal to show a relaunched one; zag hangs up the agent's, which then ends). A cancel is
  logged as it happens (a wrapper `provider_status`, `data.kind = "usage_limit_cancelled"`): an
  interactive agent may stay on screen and the session go on, so `session_ended` cannot tell it.
- Resuming: headless, `Provider.plan_resume` is returned to the supervisor, which runs it in the same
  session; interactive with the agent still on screen, a `PtyResume` operation types into the PTY; an
  interactive agent that exited meanwhile is relaunched with its resume flag and the message is typed
  once its TUI settled (`resume.py`).
- Each attempt's start is logged (`usage_limit_resume_started`), then the incident is `resuming`. The
  agent's exit while the session waits on is logged too (a wrapper note, `data.kind = "agent_exited"`, as
  the supervisor logs each relaunched agent's pid, `agent_started`): `zag resume` ends with that code if
  the wait is cancelled, also after `zag reindex` rebuilt the index from the log.
- Verifying: an attempt succeeded when a new assistant message of the same provider session arrives
  (`usage_limit_resumed`); headless attempts are judged when their child exits, interactive ones within
  `verify_secs`. A failed attempt (`usage_limit_resume_failed`) is retried `retry_secs` later, up to
  `max_attempts` consecutive failures; a new hit after an attempt began (during it, or while the incident
  waits for its retry) is a new incident and ends the old one as failed: the new `usage_limit_hit` names
  it in `supersedes` (and an attempt in flight is logged failed, with `next_incident_id`).
  A new hit with no progress since an unverified resume (no reset, one already past, or none later than
  the last one: `IncidentBook.repeated`) is a repeat: it counts toward `max_attempts` (its attempts go on
  from the last incident's); it, and any other hit after a resume that ended without progress (one that
  names a later reset: a relative `retry in 1s` is later each time), waits at least `schedule.backoff`
  (retry_secs, doubling per consecutive failure), so such a CLI is not relaunched every second, and its
  attempts are numbered on from those failures (the one zag gives up after is `max_attempts`); and any new hit
  once `max_attempts` consecutive resumes ended without progress schedules nothing (zag gives up), even
  one naming a later reset (a relative `retry in 2s` is later each time), so whatever a CLI reports, zag
  never resumes in a loop.
- Recovering alone: a headless agent that exits 0 after a new assistant message of the session later
  than the hit has continued by itself: the incident is closed (`done`) without a resume, and the log
  says so in a wrapper `provider_status` (`data.kind = "usage_limit_recovered"`). Interactive, the same
  as soon as such a message arrives during the wait (the user went on, say on another model): zag must
  not type into a session in use.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from zag import states
from zag.config import LIMIT_DEFAULTS, LimitSettings
from zag.logs import events
from zag.providers.base import LaunchPlan
from zag.wrapper import threads
from zag.wrapper.incidents import CONFIRMED, Incident, IncidentBook  # `schedule`: imported where a hit is scheduled
from zag.wrapper.resumes import ResumeStore
from zag.wrapper.screen import Screen

if TYPE_CHECKING:
    from zag.providers.base import LimitSignal
    from zag.wrapper.child import ExitStatus
    from zag.logs.index import Index
    from zag.wrapper.resume import PtyResume
    from zag.wrapper.supervisor import Supervisor

INDEX_POLL_SECS = 1.0
OP_JOIN_SECS = 10.0
VERIFY_SLICE_SECS = 0.5
STALL_SECS = 1.0  # a sleep that overran by this much: zag stood still (a stopped job, a machine asleep)
LATE_SECS = 10.0  # a resume found due this much after its time: zag stood still through it (see _spread_late)
RESUMED, FAILED = "resumed", "failed"
# why a wait was cancelled (`data.cause` of the `usage_limit_cancelled` note), and how zag says it
CAUSE_USAGE_CANCEL, CAUSE_INTERRUPTED, CAUSE_HANGUP = "usage_cancel", "interrupted", "terminal_hangup"
CAUSE_NOTHING_TO_RESUME = "nothing_to_resume"
_CANCEL_WHY = {CAUSE_USAGE_CANCEL: "cancelled with `zag usage cancel`",
               CAUSE_INTERRUPTED: "cancelled (zag was interrupted)",
               CAUSE_HANGUP: "cancelled (the terminal hung up)",
               CAUSE_NOTHING_TO_RESUME: "not possible: the agent kept nothing to continue and zag found no prompt "
                                        "to send again; it starts as a new chat and nothing is typed into it"}


def cancelled_note(incident_id: str, attempts: int, cause: str, tail: str = "") -> dict[str, Any]:
    """The wrapper note saying a wait was cancelled (`data.kind = "usage_limit_cancelled"`); reindex
    closes the incident it names as cancelled."""
    return events.provider_status(
        f"usage-limit incident {incident_id[:8]}: resume {_CANCEL_WHY[cause]}{tail}",
        {"kind": events.NOTE_USAGE_LIMIT_CANCELLED, "incident_id": incident_id, "attempts": attempts,
         "cause": cause})


def exited_note(provider: str, status: ExitStatus, incident_id: str) -> dict[str, Any]:
    """The wrapper note saying the agent exited while the session goes on waiting for the resume of
    `incident_id` (`data.kind = "agent_exited"`): reindex takes the session's exit code from it."""
    data: dict[str, Any] = {"kind": events.NOTE_AGENT_EXITED, "exit_code": status.exit_code,
                            "incident_id": incident_id}
    how = f"exited with code {status.exit_code}"
    if status.signal is not None:
        data["signal"] = status.signal_name
        how = f"was killed by {status.signal_name}"
    return events.provider_status(f"{provider} {how}; the session waits for its usage-limit resume "
                                  f"({incident_id[:8]})", data)


def record_cancel_without_supervisor(index: Index, session: dict[str, Any], resume: dict[str, Any]) -> bool:
    """`zag usage cancel` of a session whose supervisor is gone (its pid ended or was reused on this
    host): no one else writes its log now, so say the cancel there as the supervisor would have, and
    take the due resume off the session row (as the log now reads). False when the supervisor may still
    be there (stuck, or on another host): it logs the cancel itself once it sees the index."""
    from zag.logs.writer import SessionLogWriter
    from zag.wrapper import liveness

    gone = {name: session.get(name) for name in ("supervisor_pid", "supervisor_started", "hostname",
                                                  "last_heartbeat")}
    if liveness.supervisor_alive(gone["supervisor_pid"], gone["supervisor_started"], gone["hostname"]) is not False:
        return False
    session_id = session["session_id"]
    # the log's only writer meanwhile, as `zag dismiss` is: claimed only while the gone supervisor is still
    # the one recorded, so a `zag resume` that took the session over since it was read keeps it (and logs
    # the cancel itself once it sees the index), and one starting meanwhile sees a live supervisor and refuses
    me, now = os.getpid(), time.time()
    if not index.claim_session(session_id, gone["supervisor_pid"], gone["supervisor_started"], supervisor_pid=me,
                               supervisor_started=liveness.process_start_time(me), hostname=liveness.hostname(),
                               last_heartbeat=now, updated_at=now):
        return False
    last_seq = None
    try:
        with SessionLogWriter(session_id, session["provider"],
                              provider_session_id=session.get("provider_session_id")) as writer:
            writer.write(cancelled_note(resume["incident_id"], resume.get("attempts") or 0, CAUSE_USAGE_CANCEL,
                                        "; its supervisor is gone"))
            last_seq = writer.last_seq
    except OSError:  # the log cannot be opened: the cancel in the index stands, the log does not say it
        pass
    finally:
        fields = {"state": states.RUNNING, "resume_at": None, "last_seq": last_seq} if last_seq is not None else {}
        index.update_session(session_id, **fields, **gone, updated_at=time.time())
    return last_seq is not None


@dataclass
class Attempt:
    """One try at continuing the agent's session."""

    incident: Incident | None   # None: `zag resume` of a session that ended without a pending resume
    number: int
    started_at: float
    expected_session: str | None  # the provider session that must advance (None: any, e.g. a re-run)
    message: str
    outcome: str | None = None


@dataclass
class Announcement:
    """An incident due to be told, and the older incidents it ended (each with its attempt in flight)."""

    incident: Incident
    ended: list[tuple[Incident, Attempt | None]]


def default_settings() -> LimitSettings:
    values = dict(LIMIT_DEFAULTS)
    return LimitSettings(
        enabled=bool(values["enabled"]), resume_message=str(values["resume_message"]),
        fallback_secs=float(values["fallback_secs"]), jitter_secs=float(values["jitter_secs"]),
        max_wait_secs=float(values["max_wait_secs"]), max_attempts=int(values["max_attempts"]),
        extra_patterns=(), retry_secs=float(values["retry_secs"]), verify_secs=float(values["verify_secs"]),
    )


class LimitHandler:
    """The engine for one supervised session (thread-safe)."""

    def __init__(self, supervisor: Supervisor, settings: LimitSettings | None) -> None:
        self.supervisor = supervisor
        self.session_id = supervisor.session_id
        self.provider_name = supervisor.request.provider_name
        self.provider = supervisor.provider
        self.guard = supervisor.guard
        self.settings = settings or default_settings()
        self.interactive = supervisor.request.interactive
        self.book = IncidentBook(self.provider_name, interactive=self.interactive)
        self.screen = Screen()
        self.store = ResumeStore(self.session_id, self.provider_name)
        self.closed = False
        self._lock = threading.RLock()
        self._cond = threading.Condition()
        self._generation = 0
        self._attempt: Attempt | None = None
        self._failures = 0
        self._cancelled = False
        self._gave_up: str | None = None
        self._timer: threading.Thread | None = None
        self._op: PtyResume | None = None
        self._adopted: Incident | None = None  # `zag resume`: the pending resume it took over

    # -- what the supervisor reports (any thread) -------------------------------------------------
    def observe(self, signal: LimitSignal) -> None:
        now = time.time()
        with self._lock:
            if self.closed:
                return
            incident = self.book.add(signal, now)
        from zag import diag

        diag.info("usage_limit_signal", session_id=self.session_id, incident_id=incident.incident_id,
                  provider=signal.provider, source=signal.source, structured=signal.structured,
                  scope=signal.scope, reset_at=signal.reset_at, reset_relative=signal.reset_relative,
                  raw=str(signal.raw)[:2000])
        self._ensure_timer()
        self.wake()

    def on_event(self, body: dict[str, Any], source: str) -> None:
        """A transcript event was logged: messages may explain text matches; assistant ones show progress."""
        kind = body.get("type")
        if source != events.SOURCE_PROVIDER_FILE or kind not in (events.ASSISTANT_MESSAGE, events.USER_MESSAGE):
            return
        if body.get("api_error") or body.get("synthetic"):
            return  # the CLI's own error pseudo-message (e.g. the limit notice itself), not the model
        now = time.time()
        session = body.get("provider_session_id") or self.supervisor.provider_session_id
        resumed = None
        advanced = False
        with self._lock:
            if self.interactive:
                self.book.recent.message(_text_of(body.get("content")), now)
            if kind != events.ASSISTANT_MESSAGE:
                return
            attempt = self._attempt
            if attempt is not None and attempt.outcome is None and (
                    attempt.expected_session is None or session == attempt.expected_session):
                attempt.outcome = RESUMED
                resumed = attempt
            elif self.book.progress(_event_time(body, now), session):
                self._failures = 0  # the session advanced: earlier failures are no longer consecutive
                advanced = True
        if resumed is not None:
            self._resumed(resumed)
        elif advanced and self.interactive:
            self._close_recovered("answered again", before_due=True)

    def on_output(self, stream: str, data: bytes) -> None:
        if stream == "pty":
            self.screen.feed(data)

    def on_input(self, data: bytes) -> None:
        """Keystrokes the user typed (or pasted) into the agent's terminal."""
        text = data.decode("utf-8", errors="replace")
        with self._lock:
            self.book.recent.typed(text, time.time())

    def terminal_gone(self) -> None:
        """The user's terminal hung up (interactive; any thread): the wait for a reset is cancelled, as no
        resume can be typed into the agent now (its terminal is hung up too) nor a relaunched one shown."""
        with self._lock:
            op = self._op
            incident = self.book.active()
        if op is not None:
            op.stop()
        if incident is not None:
            self._cancel(incident, CAUSE_HANGUP)
            self._cancelled = True
        self.wake()

    def wake(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    # -- what the supervisor asks (main thread) ---------------------------------------------------
    def next_launch(self, status: ExitStatus) -> LaunchPlan | None:
        """After a child exited: the plan to run the agent again in this session, or None to end it."""
        self._stop_op()
        now = time.time()
        with self._lock:
            if self.interactive:
                self.book.expire(now, force=True)
            else:
                self.book.child_exited(status.exit_code, now)
            due = self._take_announcements(now, at_once=True)
        for announcement in due:
            self._announce(announcement, child_running=False)
        self._finish_attempt(f"{self.provider_name} exited with code {status.exit_code} "
                             "before continuing the session")
        if not self.interactive and status.exit_code == 0:
            self._close_recovered()
        incident = self.active_incident() if self._resumes() else None
        if incident is not None:
            # the agent's last exit code, for `zag resume` should this supervisor die while waiting: in the
            # log too, so that an index rebuilt from it (`zag reindex`) keeps it
            self.supervisor.log_event(exited_note(self.provider_name, status, incident.incident_id))
            self.supervisor.update_registry(exit_code=status.exit_code)
        return self._plan_next()

    def first_launch(self, previous: dict[str, Any]) -> LaunchPlan | None:
        """`zag resume`: continue a session whose supervisor is gone, waiting first if a resume is pending."""
        from zag.wrapper import schedule

        pending = self._adopt_pending()
        if pending is not None:
            self._tell(f"zag: continuing session {self.session_id[:8]}: {self.provider_name} resumes at "
                       f"{schedule.describe(pending.resume_at or time.time(), time.time())}. Ctrl-C or "
                       f"\"zag usage cancel {pending.incident_id[:8]}\" to stop waiting.")
            return self._plan_next()
        plan = self._resume_plan(None)
        if plan is None:
            return None
        if self.interactive:
            self._start_relaunch_op(None, plan)
        return plan

    def launch_failed(self, message: str) -> None:
        """The planned relaunch could not even start (e.g. the executable is gone)."""
        self._stop_op()
        self._finish_attempt(message)

    def heartbeat_fields(self) -> dict[str, Any]:
        incident = self.active_incident()
        if incident is None or incident.resume_at is None or incident.status != states.RESUME_PENDING:
            return {}
        return {"state": states.WAITING, "incident_id": incident.incident_id,
                "resume_at": events.format_ts(incident.resume_at),
                "remaining_secs": max(0, int(round(_time_left(incident))))}

    def end_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if self._cancelled:
            fields["cancelled"] = True
        if self._gave_up:
            fields["error"] = self._gave_up
        return fields

    def close(self) -> None:
        """The session ends: stop the threads; what is still scheduled will not run."""
        self._stop_op()
        with self._lock:
            self.closed = True
            still_open = [i for i in self.book.incidents if i.announced and i.is_open and i.resume_at is not None]
            for incident in still_open:
                incident.status = states.RESUME_CANCELLED
        for incident in still_open:
            self.store.update(incident.incident_id, status=states.RESUME_CANCELLED)
        self.wake()
        timer = self._timer
        if timer is not None and timer is not threading.current_thread():
            timer.join(OP_JOIN_SECS)
        self.store.close()

    # -- incidents --------------------------------------------------------------------------------
    def active_incident(self) -> Incident | None:
        with self._lock:
            return self.book.active()

    def _take_announcements(self, now: float, *, at_once: bool) -> list[Announcement]:
        """Under the lock: the incidents to announce now, each scheduled, with the older ones it ends."""
        due = self.book.due_announcements(now, at_once=at_once)
        taken = []
        for incident in due:
            incident.announced = True
            if incident.provider_session_id is None:
                incident.provider_session_id = self.supervisor.provider_session_id
            ended = self._end_older(incident)
            if self.settings.enabled:
                self._schedule(incident, now)
            taken.append(Announcement(incident, ended))
        return taken

    def _end_older(self, incident: Incident) -> list[tuple[Incident, Attempt | None]]:
        """Under the lock: a new hit ends the older incidents still waiting or resuming; an attempt in
        flight has failed (a consecutive failure). Returns them, with that attempt, for `_announce`."""
        ended = []
        for old in self.book.incidents:
            if old is incident or not (old.announced and old.is_open and old.resume_at is not None):
                continue
            attempt = self._attempt
            in_flight = attempt is not None and attempt.incident is old and attempt.outcome is None
            if in_flight:
                attempt.outcome = FAILED  # type: ignore[union-attr]
                self._failures += 1
            old.status = states.RESUME_FAILED
            ended.append((old, attempt if in_flight else None))
        return ended

    def _schedule(self, incident: Incident, now: float) -> None:
        """Under the lock: when to resume `incident`; a hit after resumes that did not continue the session
        (a repeat, or one naming a later reset) backs off, or gives up once `max_attempts` consecutive
        resumes failed."""
        from zag.wrapper import schedule

        plan = schedule.resume_time(incident.reset_at, now, self.settings)
        incident.resume_at, incident.fallback_used = plan.resume_at, plan.fallback_used
        # a reset the agent gave as a delay (`retry in 41.2s`) is a duration too, counted from its report
        delay = plan.delay or incident.reset_relative
        previous = self.book.repeated(incident, now)
        if previous is not None:
            incident.repeat_of = previous.incident_id
            incident.attempts = max(incident.attempts, previous.attempts)
        # its attempts are numbered on from the resumes before it that ended without progress, so the one
        # zag gives up after is attempt `max_attempts`, whatever incidents the run of hits spans
        incident.attempts = max(incident.attempts, self._failures)
        # whatever reset it names (a relative one, `retry in 2s`, is later each time): `_failures` counts
        # the resumes this hit and the ones before it ended with no progress in between
        if self._failures >= max(1, self.settings.max_attempts):
            incident.resume_at = None
            incident.status = states.RESUME_FAILED
            self._gave_up = (f"usage-limit resume gave up after {_attempts(self._failures)} "
                             "(the limit was hit again each time)")
            return
        if previous is not None or self._failures:
            # also a hit naming a reset later than the last one's (a relative `retry in 1s` is): after a
            # resume that did not continue the session, no sooner than the back-off allows
            incident.resume_at = schedule.repeat_time(plan.resume_at, now, max(1, self._failures), self.settings)
            incident.backed_off = incident.resume_at > plan.resume_at
            delay = delay or incident.backed_off
        if delay:
            incident.due_elapsed = schedule.elapsed() + (incident.resume_at - now)

    def _announce(self, announcement: Announcement, *, child_running: bool) -> None:
        """Log the hit (first any attempt in flight it ended), then bring the index in line with the log."""
        incident = announcement.incident
        for old, attempt in announcement.ended:
            if attempt is not None:
                self._attempt_superseded(old, attempt, incident)
        superseded = [old.incident_id for old, _ in announcement.ended]
        self.supervisor.log_event(events.body(
            events.USAGE_LIMIT_HIT,
            incident_id=incident.incident_id,
            scope=incident.scope,
            reset_at=events.format_ts(incident.reset_at) if incident.reset_at is not None else None,
            scheduled_resume_at=events.format_ts(incident.resume_at) if incident.resume_at is not None else None,
            fallback_used=incident.fallback_used,
            raw=incident.raw,
            source=incident.source,
            structured=incident.structured,
            reports=incident.reports,
            **({"repeat_of": incident.repeat_of} if incident.repeat_of else {}),
            **({"attempts": incident.attempts} if incident.attempts else {}),
            **({"supersedes": superseded} if superseded else {}),
            **({"error": self._gave_up} if incident.status == states.RESUME_FAILED and self._gave_up else {}),
        ))
        for old_id in superseded:
            self.store.update(old_id, status=states.RESUME_FAILED)
        self._tell(self._hit_line(incident))
        if incident.resume_at is None:
            return
        self.store.add(incident)
        self.supervisor.update_registry(state=states.WAITING, resume_at=incident.resume_at)
        if child_running and self.interactive:
            self._ensure_op()

    def _hit_line(self, incident: Incident) -> str:
        from zag.wrapper import schedule

        now = time.time()
        what = f"zag: {self.provider_name} hit its usage limit"
        if incident.repeat_of:
            what += " again, with no progress since the last resume"
        elif incident.backed_off:
            what += " again after a resume that did not continue the session"
        scope = incident.scope if incident.scope != events.SCOPE_UNKNOWN else None
        if incident.status == states.RESUME_FAILED:
            return f"{what}; {self._gave_up or 'giving up'}."
        if incident.resume_at is None:
            resets = (f"resets {schedule.describe(incident.reset_at, now)}" if incident.reset_at is not None
                      else "reset time not given")
            return (f"{what} ({scope + '; ' if scope else ''}{resets}). Automatic resume is off "
                    "(usage_limits.enabled = false).")
        detail = scope or ("reset time not given" if incident.reset_at is None else "")
        when = schedule.describe(incident.resume_at, now)
        fallback = ", the configured fallback" if incident.fallback_used else ""
        return (f"{what}{' (' + detail + ')' if detail else ''}; resuming at {when}{fallback}. "
                f"Ctrl-C or \"zag usage cancel {incident.incident_id[:8]}\" to stop waiting.")

    def _attempt_superseded(self, old: Incident, attempt: Attempt, new: Incident) -> None:
        """A new hit ended an older incident (`_end_older`) during its attempt: log the attempt as failed.
        The next attempt, if any, is the new incident's (already scheduled): `next_resume_at` is null only
        when zag gave up (or does not resume at all), and `next_incident_id` names the incident that goes
        on. (An older incident ended while it only waited has no attempt to log: the new hit's
        `supersedes` names it.)"""
        next_at = new.resume_at
        self.supervisor.log_event(events.body(
            events.USAGE_LIMIT_RESUME_FAILED, incident_id=old.incident_id, attempt=attempt.number,
            error="the usage limit was hit again",
            next_resume_at=events.format_ts(next_at) if next_at is not None else None,
            **({"next_incident_id": new.incident_id} if next_at is not None else {})))

    def _close_recovered(self, how: str = "exited 0", *, before_due: bool = False) -> None:
        """Headless, the child exited 0 (or interactive, a new answer arrived: the user continued it, say
        on another model): an incident still waiting whose session advanced after the hit (a new
        assistant message) needs no resume: it is closed as done. `before_due`: only while the wait is
        ahead; from its due time on zag is answering the CLI's dialog, and an answer then (a CLI may retry
        its prompt once its limit dialog is closed) is zag's doing: the resume goes on."""
        with self._lock:
            incident = self.book.active()
            if incident is None or incident.status != states.RESUME_PENDING or incident.progressed_at is None:
                return
            if before_due and incident.resume_at is not None and time.time() >= incident.resume_at:
                return
            incident.status = states.RESUME_DONE
        self.wake()  # an interactive wait ends: nothing is typed into the agent
        self.supervisor.log_event(events.provider_status(
            f"usage-limit incident {incident.incident_id[:8]} closed: {self.provider_name} continued by itself "
            f"after the hit and {how}; no resume needed",
            {"kind": events.NOTE_USAGE_LIMIT_RECOVERED, "incident_id": incident.incident_id,
             "attempts": incident.attempts}))
        self.store.update(incident.incident_id, status=states.RESUME_DONE, attempts=incident.attempts)
        self.supervisor.update_registry(state=states.RUNNING, resume_at=None)
        self._tell(f"zag: {self.provider_name} continued by itself after its usage limit; no resume needed.")

    def _ensure_timer(self) -> None:
        with self._lock:
            if self._timer is not None or self.closed:
                return
            timer = threading.Thread(target=self._timer_loop, name="zag-limits", daemon=True)
            if threads.start(timer):  # refused: no text match is confirmed nor announced by time (said once)
                self._timer = timer

    def _timer_loop(self) -> None:
        """Confirms pending text matches and announces incidents when their time comes."""
        while not self.closed:
            generation = self._generation
            now = time.time()
            with self._lock:
                if self.interactive:
                    self.book.expire(now)
                due = self._take_announcements(now, at_once=False)
                deadline = self.book.next_deadline()
            for announcement in due:
                try:
                    self._announce(announcement, child_running=self.supervisor.current_child is not None)
                except Exception:  # noqa: BLE001 - the timer must survive a failed announcement
                    from zag import diag

                    diag.exception("usage_limit_announce_failed", session_id=self.session_id)
            if due:
                continue
            timeout = None if deadline is None else max(0.01, deadline - time.time())
            self._sleep(generation, timeout)

    def _sleep(self, generation: int, timeout: float | None) -> None:
        with self._cond:
            if self._generation == generation and not self.closed:
                self._cond.wait(timeout)

    # -- waiting ----------------------------------------------------------------------------------
    def wait_due(self, stopped: Any) -> tuple[str, Incident | None]:
        """Wait until the active incident's resume is due: ("due", incident), ("cancelled", incident) when
        the user cancelled it in the index, ("stopped", incident) when `stopped()`, ("none", None).
        Polls and sleeps on the elapsed clock, at most `INDEX_POLL_SECS` at a time, so a wall-clock step
        neither stops the polling nor goes unseen."""
        from zag.wrapper import schedule

        next_poll = 0.0
        while True:
            generation = self._generation
            incident = self.active_incident()
            if stopped() or self.closed:
                return "stopped", incident
            if incident is None or incident.resume_at is None:
                return "none", None
            if schedule.elapsed() >= next_poll:
                if self.store.status(incident.incident_id) == states.RESUME_CANCELLED:
                    self._cancel(incident, CAUSE_USAGE_CANCEL)
                    return "cancelled", incident
                next_poll = schedule.elapsed() + INDEX_POLL_SECS
            left = _time_left(incident)
            if left <= 0 and not self._spread_late(incident):
                return "due", incident
            self._sleep(generation, min(max(0.0, left), next_poll - schedule.elapsed()))

    def _spread_late(self, incident: Incident) -> bool:
        """A resume found due long after its time (the machine slept through it, zag was stopped, `zag
        resume` took an overdue one over) is put off by a fresh jitter, once per schedule: the sessions that
        wake together (a batch on a laptop opened in the morning, or taken over after a reboot) would
        otherwise all call the API in the same second, their own jitter long past. True when put off."""
        from zag.wrapper import schedule

        jitter = max(0.0, self.settings.jitter_secs)
        if jitter <= 0 or incident.resume_at is None or incident.resume_at == incident.spread_to \
                or -_time_left(incident) < LATE_SECS:
            return False
        import random

        delay = jitter * random.random()
        now = time.time()
        with self._lock:
            incident.resume_at = incident.spread_to = now + delay
            incident.due_elapsed = schedule.elapsed() + delay
        self.store.update(incident.incident_id, resume_at=incident.resume_at)
        self.supervisor.update_registry(resume_at=incident.resume_at)
        return True

    def _cancel(self, incident: Incident, cause: str) -> None:
        """Stop waiting for `incident` (`cause`: `zag usage cancel`, or zag interrupted): say so in the log
        (a wrapper note, `data.kind = "usage_limit_cancelled"`: the agent may stay on screen and the
        session go on, so `session_ended` cannot say it), then bring the index in line with the log."""
        with self._lock:
            if incident.status == states.RESUME_CANCELLED:
                return
            incident.status = states.RESUME_CANCELLED
        running = self.supervisor.current_child is not None and cause != CAUSE_HANGUP
        why = _CANCEL_WHY[cause]
        tail = f"; {self.provider_name} keeps running" if running else ""
        self.supervisor.log_event(cancelled_note(incident.incident_id, incident.attempts, cause, tail))
        self.store.update(incident.incident_id, only_from=(*states.RESUME_OPEN_STATES, states.RESUME_CANCELLED),
                          status=states.RESUME_CANCELLED)
        self.supervisor.update_registry(state=states.RUNNING, resume_at=None)
        self._tell(f"zag: resume of {self.provider_name} {why}{tail}.")

    def _stopping(self) -> bool:
        supervisor = self.supervisor
        return (supervisor.stop_requested.is_set() or supervisor.interrupted.is_set() or self.closed
                or (self.interactive and supervisor.terminal_gone()))

    # -- resuming ---------------------------------------------------------------------------------
    def _plan_next(self) -> LaunchPlan | None:
        """Main thread, no child running: wait for the active incident and plan its resume."""
        while True:
            if not self._resumes():
                return None
            outcome, incident = self.wait_due(self._stopping)
            if outcome == "stopped":
                if incident is not None:
                    hung_up = self.interactive and self.supervisor.terminal_gone()
                    self._cancel(incident, CAUSE_HANGUP if hung_up else CAUSE_INTERRUPTED)
                    self._cancelled = True
                return None
            if outcome == "cancelled":
                self._cancelled = True
                return None
            if outcome != "due" or incident is None:
                return None
            plan = self._resume_plan(incident)
            expected = plan.provider_session_id if plan is not None and not _reruns(plan) else None
            attempt = self.begin_attempt(incident, expected=expected)
            if plan is None:
                self.fail_attempt(attempt, "the provider could not plan a resume")
                continue
            if self.interactive:
                if _reruns(plan) and attempt.message == self.settings.resume_message and \
                        isinstance(plan.notes, dict) and plan.notes.get("new_chat"):
                    self._nothing_to_resume(attempt)   # the resume message would open an empty new chat
                    self._start_relaunch_op(None, plan)
                else:
                    self._start_relaunch_op(attempt, plan)
            return plan

    def _resumes(self) -> bool:
        """Whether the active incident is to be resumed: automatic resumes are on, or it is the resume the
        user asked `zag resume` to take over (`enabled = false` stops resumes after new hits, not that)."""
        if self.settings.enabled:
            return True
        with self._lock:
            return self._adopted is not None and self.book.active() is self._adopted

    def _resume_plan(self, incident: Incident | None) -> LaunchPlan | None:
        supervisor = self.supervisor
        ctx = supervisor.launch_context()
        if ctx is None:
            return None
        session = (incident.provider_session_id if incident is not None else None) or supervisor.provider_session_id
        plan = self.guard.method("plan_resume", self.provider, "plan_resume", list(supervisor.request.user_args),
                                 session, self.settings.resume_message, ctx, default=None)
        if not isinstance(plan, LaunchPlan) or not isinstance(plan.args, list) or \
                not all(isinstance(arg, str) for arg in plan.args):
            if plan is not None:
                self.guard.fault("plan_resume", TypeError(f"not a valid LaunchPlan: {plan!r}"[:500]))
            return None
        if not isinstance(plan.env, dict):
            plan = replace(plan, env={})
        return plan

    def begin_attempt(self, incident: Incident, *, expected: str | None) -> Attempt:
        """An attempt at resuming `incident`; interactive, its message is the prompt the agent dropped with
        its failed only turn (`_dropped_prompt`) when there is one, else the resume message."""
        dropped = self._dropped_prompt(incident) if self.interactive else None
        if dropped is not None:
            self._tell(f"zag: {self.provider_name} kept nothing of the turn that hit the limit; "
                       f"sending its prompt again instead of {self.settings.resume_message!r}.")
        now = time.time()
        with self._lock:
            incident.attempts += 1
            incident.resume_started = True
            incident.status = states.RESUME_RESUMING
            attempt = Attempt(incident=incident, number=incident.attempts, started_at=now,
                              expected_session=expected, message=dropped or self.settings.resume_message)
            self._attempt = attempt
        # logged, so that `zag reindex` shows the incident `resuming` (and the session running) as live
        self.supervisor.log_event(events.body(
            events.USAGE_LIMIT_RESUME_STARTED, incident_id=incident.incident_id, attempt=attempt.number))
        self.store.update(incident.incident_id, status=states.RESUME_RESUMING, attempts=incident.attempts)
        self.supervisor.update_registry(state=states.RUNNING, resume_at=None)
        return attempt

    def wait_outcome(self, attempt: Attempt, timeout: float, stopped: Any) -> str | None:
        """Wait (bounded) until the attempt is judged; its outcome, or None. Only the time zag ran counts
        toward `timeout`: a job stopped with its agent (Ctrl-Z, then `fg` minutes later) or a machine
        asleep does not use up the agent's time to answer (it could not run either)."""
        from zag.wrapper import schedule

        left = timeout
        while True:
            generation = self._generation
            if attempt.outcome is not None:
                return attempt.outcome
            if stopped() or left <= 0:
                return None
            planned = min(left, VERIFY_SLICE_SECS)
            started = schedule.elapsed()
            self._sleep(generation, planned)
            spent = schedule.elapsed() - started
            left -= planned if spent > planned + STALL_SECS else spent

    def _resumed(self, attempt: Attempt) -> None:
        incident = attempt.incident
        with self._lock:
            self._failures = 0
            self._gave_up = None
            if incident is not None:
                incident.status = states.RESUME_DONE
        self.wake()
        if incident is None:
            return
        self.supervisor.log_event(events.body(
            events.USAGE_LIMIT_RESUMED, incident_id=incident.incident_id, attempt=attempt.number,
            resume_message=attempt.message))
        self.store.update(incident.incident_id, status=states.RESUME_DONE, attempts=attempt.number)
        self.supervisor.update_registry(resumed=1)  # the index's R flag: zag continued the session

    def fail_attempt(self, attempt: Attempt, error: str) -> None:
        """An attempt that did not continue the session: schedule the next one, or give up."""
        from zag.wrapper import schedule

        incident = attempt.incident
        now = time.time()
        with self._lock:
            if attempt.outcome is not None:
                return
            attempt.outcome = FAILED
            if incident is None:
                return
            self._failures += 1
            give_up = self._failures >= max(1, self.settings.max_attempts)
            if give_up:
                incident.status = states.RESUME_FAILED
                incident.resume_at = None
                self._gave_up = f"usage-limit resume gave up after {_attempts(self._failures)} (last: {error})"
            else:
                incident.status = states.RESUME_PENDING
                incident.resume_at = schedule.retry_time(now, self.settings)
                incident.due_elapsed = schedule.elapsed() + (incident.resume_at - now)
            next_at, failures = incident.resume_at, self._failures
        self.supervisor.log_event(events.body(
            events.USAGE_LIMIT_RESUME_FAILED, incident_id=incident.incident_id, attempt=attempt.number, error=error,
            next_resume_at=events.format_ts(next_at) if next_at is not None else None))
        if next_at is None:
            self.store.update(incident.incident_id, status=states.RESUME_FAILED, attempts=attempt.number)
            self._tell(f"zag: resume attempt {attempt.number} of {self.provider_name} failed ({error}); "
                       f"giving up after {_attempts(failures)}.")
            return
        self.store.update(incident.incident_id, status=states.RESUME_PENDING, attempts=attempt.number,
                          resume_at=next_at)
        self.supervisor.update_registry(state=states.WAITING, resume_at=next_at)
        self._tell(f"zag: resume attempt {attempt.number} of {self.provider_name} failed ({error}); "
                   f"trying again at {schedule.describe(next_at, time.time())}.")
        self.wake()

    def _finish_attempt(self, error: str) -> None:
        """No child runs any more: an attempt still being judged has failed."""
        with self._lock:
            attempt = self._attempt
            if attempt is None or attempt.outcome is not None:
                return
        self.fail_attempt(attempt, error)

    def _adopt_pending(self) -> Incident | None:
        """`zag resume`: the newest open resume of this session in the index becomes the active incident."""
        rows = self.store.open_rows()
        if not rows:
            return None
        row = max(rows, key=lambda r: r.get("created_at") or 0.0)
        incident = Incident(
            incident_id=row["incident_id"], provider=self.provider_name, first_seen=row.get("created_at") or 0.0,
            last_seen=row.get("created_at") or 0.0, raw=row.get("raw") or "", source="index",
            structured=True, scope=row.get("scope") or events.SCOPE_UNKNOWN, reset_at=row.get("reset_at"),
            provider_session_id=row.get("provider_session_id"), state=CONFIRMED,
            confirmed_at=row.get("created_at"), announced=True, resume_at=float(row["resume_at"]),
            fallback_used=bool(row.get("fallback_used")), status=states.RESUME_PENDING,
            attempts=int(row.get("attempts") or 0), resume_started=bool(row.get("attempts")),
        )
        with self._lock:
            self.book.incidents.append(incident)
            self._failures = incident.attempts
            self._adopted = incident
        self.store.update(incident.incident_id, status=states.RESUME_PENDING)
        self._spread_late(incident)
        self.supervisor.update_registry(state=states.WAITING, resume_at=incident.resume_at)
        return incident

    # -- the interactive operation ----------------------------------------------------------------
    def _ensure_op(self) -> None:
        from zag.wrapper.resume import PtyResume

        with self._lock:
            if self.closed or (self._op is not None and self._op.is_alive()):
                self.wake()
                return
            child = self.supervisor.current_child
            if child is None:
                return
            if not self.supervisor.hung_up.is_set():
                op = PtyResume(self, child=child)
                if op.start():
                    self._op = op
                return
            incident = self.book.active()
        if incident is not None:  # announced after the terminal hung up: nothing to type into
            self._cancel(incident, CAUSE_HANGUP)
            self._cancelled = True

    def _dropped_prompt(self, incident: Incident) -> str | None:
        """The provider's optional `dropped_prompt(session id, ctx)`: the prompt of a session whose only
        turn failed, which the agent discarded (nothing to resume), to be sent again; None otherwise."""
        if self.guard is None or self.guard.attribute("dropped_prompt", self.provider, "dropped_prompt") is None:
            return None
        ctx = self.supervisor.launch_context()
        session = incident.provider_session_id or self.supervisor.provider_session_id
        if ctx is None or not session:
            return None
        text = self.guard.method("dropped_prompt", self.provider, "dropped_prompt", session, ctx, default=None)
        return text if isinstance(text, str) and text.strip() else None

    def _nothing_to_resume(self, attempt: Attempt) -> None:
        """An interactive re-run with nothing to send: the agent starts as a new chat, where the resume
        message means nothing. The resume ends there (cancelled, said in one line): no attempt is judged,
        nothing is typed later."""
        with self._lock:
            attempt.outcome = FAILED
            if self._attempt is attempt:
                self._attempt = None
        if attempt.incident is not None:
            self._cancel(attempt.incident, CAUSE_NOTHING_TO_RESUME)

    def _start_relaunch_op(self, attempt: Attempt | None, plan: LaunchPlan) -> None:
        from zag.wrapper.resume import PtyResume

        message = attempt.message if attempt is not None else self.settings.resume_message
        if _reruns(plan):  # the original command again: only a dropped prompt is typed, never the resume message
            typed = message if message != self.settings.resume_message and message not in plan.args else None
        else:
            typed = None if message in plan.args else message
        self.screen.reset()
        with self._lock:
            op = PtyResume(self, child=None, relaunch=attempt, previous_child=self.supervisor.current_child,
                           message=typed)
            self._op = op if op.start() else None

    def _stop_op(self) -> None:
        with self._lock:
            op, self._op = self._op, None
        if op is not None:
            op.stop()
            op.join(OP_JOIN_SECS)

    # -- telling the user -------------------------------------------------------------------------
    def _tell(self, line: str) -> None:
        ending = "\r\n" if self.interactive else "\n"
        try:
            os.write(2, (("\r" if self.interactive else "") + line + ending).encode("utf-8", "replace"))
        except OSError:
            pass


def _time_left(incident: Incident) -> float:
    """Seconds until `incident` is due: its resume instant on the wall clock; a delay zag chose is also
    due once that much elapsed time has passed (a wall clock set back does not stretch it)."""
    from zag.wrapper import schedule

    assert incident.resume_at is not None
    left = incident.resume_at - time.time()
    if incident.due_elapsed is not None:
        left = min(left, incident.due_elapsed - schedule.elapsed())
    return left


def _attempts(count: int) -> str:
    return f"{count} failed attempt{'' if count == 1 else 's'}"


def _reruns(plan: LaunchPlan) -> bool:
    """The provider could not resume the session and re-runs the original command instead."""
    notes = plan.notes if isinstance(plan.notes, dict) else {}
    return bool(notes.get("rerun_original") or notes.get("resume_fallback"))


def _event_time(body: dict[str, Any], default: float) -> float:
    """When a transcript event happened (its record's time), else `default`."""
    normalized = events.normalize_ts(body.get("ts"))  # an RFC 3339 string or epoch (s/ms), as providers give
    return events.parse_ts(normalized) if normalized is not None else default


def _text_of(value: Any) -> str:
    """The text of a message's content: a string, or the text of its blocks (walked with a stack of its
    own: content nested thousands deep must not raise RecursionError in the supervisor)."""
    if isinstance(value, str):
        return value
    parts: list[str] = []
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            parts.append(item)
        elif isinstance(item, list):
            pending.extend(reversed(item))
        elif isinstance(item, dict):
            pending.append(item.get("text") or item.get("content") or "")
    return " ".join(parts)
