"""Dismissing a dead session (`zag dismiss`): end it in its log and the index without continuing it.

A session is `dead` when its supervisor went away without writing `session_ended` (killed, crashed,
machine rebooted). Dismissing writes what that supervisor would have written at its end, so the log
alone tells it (`zag reindex` keeps it ended): one `usage_limit_cancelled` note (cause `dismissed`) per
resume still scheduled, then a `session_ended` with `reason: "dismissed"` and no exit code. The index
row becomes `exited` with `end_reason = "dismissed"`, its scheduled resumes `cancelled`.

Only the dismisser may write the log meanwhile: the row is first claimed for this process (its pid as
the supervisor's, a fresh heartbeat) on the condition that the gone supervisor is still the one recorded
(`Index.claim_session`). So a `zag resume` or another `zag dismiss` that read the row before fails its own
claim, and one that reads it during the dismissal sees a live supervisor and refuses. The gone
supervisor's fields are put back once the session is ended (or if writing the log failed).

A log that already ends with `session_ended` (its supervisor wrote it, then died before the index said
so, e.g. while the index was locked) gets nothing more: the row is made to say what the log says, as
`zag reindex` would.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zag import paths, states
from zag.logs import events
from zag.wrapper import liveness

if TYPE_CHECKING:
    from zag.logs.index import Index

# `reason` of the `session_ended` written here, the row's `end_reason`, and the cancel notes' `data.cause`
END_REASON = "dismissed"
# the gone supervisor's registry fields: claimed for the dismissal, put back after it
_SUPERVISOR_FIELDS = ("supervisor_pid", "supervisor_started", "hostname", "last_heartbeat")


class Refused(Exception):
    """The session cannot be dismissed now; the message says why and what to do instead."""


class TakenOver(Refused):
    """Another process (`zag resume`, another `zag dismiss`) took the session over after it was read."""


class LogUnwritable(Exception):
    """The session's log could not be written: nothing was dismissed (the row is as it was)."""


@dataclass
class Dismissed:
    """One dismissed session: its row as it was, the resumes it cancelled, its last seq; `ended_before`: the
    `session_ended` its log already ended with (the index had missed it), nothing written then."""

    row: dict[str, Any]
    cancelled: list[dict[str, Any]] = field(default_factory=list)
    last_seq: int = 0
    ended_before: dict[str, Any] | None = None


def check_dismissible(row: dict[str, Any], now: float | None = None) -> None:
    """Raise `Refused` unless `zag ps` calls the session dead and its supervisor is gone for good."""
    short = row["session_id"][:8]
    state = liveness.effective_state(row, now)
    pid = row.get("supervisor_pid")
    if state in states.LIVE_STATES:
        alive = liveness.supervisor_alive(pid, row.get("supervisor_started"), row.get("hostname"))
        where = f" on {row.get('hostname')}" if alive is None else f" (pid {pid})"
        raise Refused(f"session {short} is still supervised by zag{where}, state {state}; only dead sessions "
                      "can be dismissed (stop it with Ctrl-C in its terminal, or `kill` its zag)")
    if state != states.DEAD:
        how = "dismissed" if row.get("end_reason") == END_REASON else _exited(row)
        raise Refused(f"session {short} has already ended ({how}); nothing to dismiss")
    if liveness.silent_but_running(row):
        # silent, not gone (stopped with Ctrl-Z, or the machine just woke up): it would write on after us
        raise Refused(f"session {short} has not heard from its supervisor (pid {pid}) for a while, but that zag "
                      f"still runs (stopped, or the machine just woke up?); not dismissed: let it go on (`fg`, "
                      f"`kill -CONT {pid}`) or end it (`kill {pid}`) first")


def dismiss(index: Index, row: dict[str, Any]) -> Dismissed:
    """Dismiss the dead session of index row `row`; `Refused` or `LogUnwritable` when it cannot be."""
    check_dismissible(row)
    session_id = row["session_id"]
    log = paths.session_log(session_id)
    if not log.is_file():
        raise LogUnwritable(f"session {session_id[:8]} has no log at {log} to record the dismissal in; "
                            "`zag reindex` drops sessions whose log is gone")
    _claim(index, row)
    try:
        pending = index.list_resumes(open_only=True, session_id=session_id)
        last = last_event(log)
        if last is not None and last.get("type") == events.SESSION_ENDED:
            # its supervisor ended it but was gone before the index said so: say what the log says
            return _index_ended(index, row, pending, last)
        now = time.time()
        last_seq = _write_end(row, pending, now)
    except OSError as exc:
        index.update_session(session_id, **_supervisor_fields(row))
        raise LogUnwritable(f"cannot write the log of session {session_id[:8]} ({log}): "
                            f"{exc.strerror or exc}; nothing was dismissed") from None
    except BaseException:
        index.update_session(session_id, **_supervisor_fields(row))
        raise
    cancelled = [resume for resume in pending if index.update_resume_if(
        resume["incident_id"], states.RESUME_OPEN_STATES, status=states.RESUME_CANCELLED)]
    index.update_session(session_id, state=states.EXITED, exit_code=None, end_reason=END_REASON, ended_at=now,
                         resume_at=None, last_seq=last_seq, updated_at=now, **_supervisor_fields(row))
    return Dismissed(row=row, cancelled=cancelled, last_seq=last_seq)


def dead_sessions(index: Index, now: float | None = None) -> list[dict[str, Any]]:
    """The rows `zag ps` shows dead, newest first (a silent but running supervisor's included)."""
    now = time.time() if now is None else now
    rows = index.list_sessions(states_in=states.LIVE_STATES)
    return [row for row in rows if liveness.effective_state(row, now) == states.DEAD]


def last_event(path: Path, chunk: int = 64 * 1024) -> dict[str, Any] | None:
    """The last valid event zag wrote to a log, read from its end. As for every reader, what follows the last
    newline (a torn line) is not an event; bad lines after it are passed over, and `zag backfill`'s."""
    from zag.logs import codec

    with open(path, "rb") as handle:
        pos = handle.seek(0, os.SEEK_END)
        buffer, found_end = b"", False
        while pos > 0:
            step = min(chunk, pos)
            chunk *= 2  # a long line (an agent's big tool output) is read in O(its length)
            pos -= step
            handle.seek(pos)
            buffer = handle.read(step) + buffer
            if not found_end:
                cut = buffer.rfind(b"\n")
                if cut < 0:
                    continue
                buffer, found_end = buffer[:cut], True
            lines = buffer.split(b"\n")
            buffer = lines.pop(0) if pos > 0 else b""  # may be the end of a line that starts further back
            for line in reversed(lines):
                try:
                    event = codec.loads(line) if line.strip() else None
                except codec.DecodeError:
                    continue
                if isinstance(event, dict) and isinstance(event.get("type"), str) and event.get("source") != "backfill":
                    return event  # what `zag backfill` appended after an end (the agent went on without zag) is passed over
    return None


def _index_ended(index: Index, row: dict[str, Any], pending: list[dict[str, Any]],
                 ended: dict[str, Any]) -> Dismissed:
    """The row as a reindex would make it from a log that already ends with `ended`: nothing is written."""
    cancelled = [resume for resume in pending if index.update_resume_if(
        resume["incident_id"], states.RESUME_OPEN_STATES, status=states.RESUME_CANCELLED)]
    code = ended.get("exit_code")
    reason = ended.get("reason") if isinstance(ended.get("reason"), str) else None
    try:
        ended_at = events.parse_ts(ended["ts"])
    except (KeyError, TypeError, ValueError):
        ended_at = time.time()
    seq = ended.get("seq")
    if isinstance(seq, int) and isinstance(row.get("last_seq"), int):
        seq = max(seq, row["last_seq"])  # `zag backfill` may have appended after the end
    index.update_session(row["session_id"], state=states.EXITED, ended_at=ended_at, resume_at=None,
                         exit_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
                         end_reason=reason or ("cancelled" if ended.get("cancelled") else None),
                         last_seq=seq if isinstance(seq, int) else row.get("last_seq") or 0,
                         **_supervisor_fields(row))
    return Dismissed(row=row, cancelled=cancelled, last_seq=seq if isinstance(seq, int) else 0, ended_before=ended)


def _claim(index: Index, row: dict[str, Any]) -> None:
    """Take the row over for this process while the gone supervisor is still the one recorded."""
    pid = os.getpid()
    now = time.time()
    if not index.claim_session(row["session_id"], row.get("supervisor_pid"), row.get("supervisor_started"),
                               supervisor_pid=pid, supervisor_started=liveness.process_start_time(pid),
                               hostname=liveness.hostname(), last_heartbeat=now, updated_at=now):
        raise TakenOver(f"session {row['session_id'][:8]} was taken over meanwhile (by `zag resume` or another "
                      "`zag dismiss`); not dismissed")


def _write_end(row: dict[str, Any], pending: list[dict[str, Any]], now: float) -> int:
    """Append the cancel notes and the `session_ended` (a torn last line is repaired first); the last seq."""
    from zag.logs.writer import SessionLogWriter

    with SessionLogWriter(row["session_id"], row["provider"],
                          provider_session_id=row.get("provider_session_id")) as writer:
        for resume in pending:
            writer.write(cancelled_note(resume))
        writer.write(events.body(
            events.SESSION_ENDED, ts=now, exit_code=None, success=False, reason=END_REASON,
            error="its supervisor went away without ending the session"))
        if not writer.flush_pending():  # the writer holds a failed line back (and says so) instead of raising
            raise OSError("the write failed")
        return writer.last_seq


def cancelled_note(resume: dict[str, Any]) -> dict[str, Any]:
    """The note a supervisor writes when a wait is cancelled (`zag.wrapper.limits.cancelled_note`), with
    `cause: "dismissed"`: reindex closes the incident it names as cancelled."""
    incident_id = resume["incident_id"]
    return events.provider_status(
        f"usage-limit incident {incident_id[:8]}: resume cancelled: the dead session was dismissed (`zag dismiss`)",
        {"kind": events.NOTE_USAGE_LIMIT_CANCELLED, "incident_id": incident_id,
         "attempts": resume.get("attempts") or 0, "cause": END_REASON})


def _supervisor_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row.get(name) for name in _SUPERVISOR_FIELDS}


def _exited(row: dict[str, Any]) -> str:
    code = row.get("exit_code")
    return "exited" if code is None else f"exited {code}"
