"""The engine's events as the read side sees them: `zag reindex` (retry times, given-up and superseded
incidents, several runs in one log), `zag listen`'s rendering (countdown heartbeats, failed attempts),
and `zag usage list` rows."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.readside import add_session, gone_pid, live_supervisor, started_body, write_log
from zag import states
from zag.cli import render
from zag.cli.usage import describe, resumes_table, supervisor_state
from zag.logs import events
from zag.logs.index import Index
from zag.logs.reindex import scan_log

T0 = 1_800_000_000.0
SID = "00000001-0000-4000-8000-000000000000"


def ts(offset: float) -> str:
    return events.format_ts(T0 + offset)


def hit(incident: str, at: float, resume_in: float = 60.0) -> dict[str, Any]:
    return events.body(events.USAGE_LIMIT_HIT, ts=ts(at), incident_id=incident, scope="session",
                       reset_at=ts(at + resume_in), scheduled_resume_at=ts(at + resume_in), fallback_used=False,
                       raw="You've hit your session limit · resets 5pm")


def failed(incident: str, at: float, attempt: int, next_in: float | None) -> dict[str, Any]:
    return events.body(events.USAGE_LIMIT_RESUME_FAILED, ts=ts(at), incident_id=incident, attempt=attempt,
                       error="claude exited with code 1 before continuing the session",
                       next_resume_at=ts(at + next_in) if next_in is not None else None)


def started(at: float, **fields: Any) -> dict[str, Any]:
    body = started_body(**fields)
    body["ts"] = ts(at)
    return body


def test_a_failed_attempt_moves_the_pending_resume_to_its_retry_time() -> None:
    path = write_log(SID, [started(0), hit("i-1", 10), failed("i-1", 80, 1, 30)])
    scan = scan_log(path)
    assert scan is not None and scan.row["state"] == states.WAITING
    [incident] = scan.incidents
    assert (incident.status, incident.resume_at, incident.attempts) == (states.RESUME_PENDING, T0 + 110, 1)
    assert scan.row["resume_at"] == T0 + 110


def test_given_up_and_superseded_incidents_are_closed() -> None:
    path = write_log(SID, [started(0), hit("i-1", 10), failed("i-1", 80, 1, None), hit("i-2", 81),
                           failed("i-2", 150, 1, 5)])
    scan = scan_log(path)
    assert scan is not None
    statuses = {i.incident_id: (i.status, i.resume_at) for i in scan.incidents}
    assert statuses == {"i-1": (states.RESUME_FAILED, T0 + 70), "i-2": (states.RESUME_PENDING, T0 + 155)}
    assert scan.row["state"] == states.WAITING and scan.row["resume_at"] == T0 + 155


def test_a_failure_whose_next_attempt_is_a_new_incidents_closes_the_old_one() -> None:
    """The limit hit again during an attempt: the failure names the new incident's resume time, which is
    not the old incident's retry."""
    superseded = {**failed("i-1", 80, 1, 60), "next_incident_id": "i-2"}
    path = write_log(SID, [started(0), hit("i-1", 10), superseded, hit("i-2", 80, resume_in=60)])
    scan = scan_log(path)
    assert scan is not None
    statuses = {i.incident_id: (i.status, i.resume_at) for i in scan.incidents}
    assert statuses == {"i-1": (states.RESUME_FAILED, T0 + 70), "i-2": (states.RESUME_PENDING, T0 + 140)}
    assert scan.row["state"] == states.WAITING and scan.row["resume_at"] == T0 + 140


def test_a_hit_that_supersedes_a_waiting_incident_closes_it_as_it_happens() -> None:
    """Hit again while the first incident waits for its retry (no attempt running): the new hit names it in
    `supersedes`; it is failed from then on, not pending until the session ends (nor cancelled then), and
    the repeat's attempts go on from it."""
    again = {**hit("i-2", 90, resume_in=40), "supersedes": ["i-1"], "repeat_of": "i-1"}
    path = write_log(SID, [started(0), hit("i-1", 10), failed("i-1", 80, 1, 30), again])
    scan = scan_log(path)
    assert scan is not None
    statuses = {i.incident_id: (i.status, i.resume_at, i.attempts) for i in scan.incidents}
    assert statuses == {"i-1": (states.RESUME_FAILED, T0 + 110, 1), "i-2": (states.RESUME_PENDING, T0 + 130, 1)}
    assert scan.row["state"] == states.WAITING and scan.row["resume_at"] == T0 + 130
    ended = events.body(events.SESSION_ENDED, ts=ts(200), exit_code=0, success=True, cancelled=True)
    scan = scan_log(write_log(SID, [ended]))
    assert scan is not None
    statuses = {i.incident_id: i.status for i in scan.incidents}
    assert statuses == {"i-1": states.RESUME_FAILED, "i-2": states.RESUME_CANCELLED}


def test_supersedes_closes_only_pending_incidents_it_names() -> None:
    done = events.body(events.USAGE_LIMIT_RESUMED, ts=ts(70), incident_id="i-1", attempt=1, resume_message="Go")
    odd = {**hit("i-3", 100), "supersedes": ["i-1", "nope", 7, None]}   # done stays done; unknown ids ignored
    not_a_list = {**hit("i-4", 110), "supersedes": "i-2", "repeat_of": "nope"}
    path = write_log(SID, [started(0), hit("i-1", 10), done, hit("i-2", 80), odd, not_a_list])
    scan = scan_log(path)
    assert scan is not None
    statuses = {i.incident_id: (i.status, i.attempts) for i in scan.incidents}
    assert statuses == {"i-1": (states.RESUME_DONE, 1), "i-2": (states.RESUME_PENDING, 0),
                        "i-3": (states.RESUME_PENDING, 0), "i-4": (states.RESUME_PENDING, 0)}


def test_an_incident_the_agent_got_over_by_itself_is_done() -> None:
    note = events.provider_status("usage-limit incident i-1 closed", {
        "kind": events.NOTE_USAGE_LIMIT_RECOVERED, "incident_id": "i-1", "attempts": 0})
    same_from_the_agent = {**events.provider_status("x", {"kind": events.NOTE_USAGE_LIMIT_RECOVERED,
                                                          "incident_id": "i-2"}), "source": events.SOURCE_PROVIDER_FILE}
    ended = events.body(events.SESSION_ENDED, exit_code=0, success=True, error=None)
    path = write_log(SID, [started(0), hit("i-1", 10), hit("i-2", 11), {**note, "ts": ts(12)}, same_from_the_agent,
                           {**ended, "ts": ts(13)}])
    scan = scan_log(path)
    assert scan is not None and scan.row["state"] == states.EXITED
    assert {i.incident_id: i.status for i in scan.incidents} == {"i-1": states.RESUME_DONE,
                                                                 "i-2": states.RESUME_CANCELLED}


def cancelled_note(incident: str, at: float, cause: str = "usage_cancel", **more: Any) -> dict[str, Any]:
    note = events.provider_status(f"usage-limit incident {incident}: resume cancelled", {
        "kind": events.NOTE_USAGE_LIMIT_CANCELLED, "incident_id": incident, "attempts": 1, "cause": cause, **more})
    return {**note, "ts": ts(at)}


def test_a_cancelled_wait_is_cancelled_from_its_note_on() -> None:
    """`zag usage cancel` with the agent on screen: the session goes on running (not waiting), and its
    end later (not `cancelled`; the incident had a failed attempt) does not make the cancel a failure."""
    path = write_log(SID, [started(0, interactive=True), hit("i-1", 10), failed("i-1", 80, 1, 30),
                           cancelled_note("i-1", 90)])
    scan = scan_log(path)
    assert scan is not None and (scan.row["state"], scan.row["resume_at"]) == (states.RUNNING, None)
    [incident] = scan.incidents
    assert (incident.status, incident.resume_at, incident.attempts, incident.updated_at) == (
        states.RESUME_CANCELLED, T0 + 110, 1, T0 + 90)
    ended = events.body(events.SESSION_ENDED, ts=ts(200), exit_code=0, success=True, error=None)
    scan = scan_log(write_log(SID, [ended]))
    assert scan is not None and scan.row["state"] == states.EXITED and scan.row["end_reason"] is None
    assert [i.status for i in scan.incidents] == [states.RESUME_CANCELLED]


def test_a_cancelled_note_closes_only_the_pending_incident_it_names() -> None:
    done = events.body(events.USAGE_LIMIT_RESUMED, ts=ts(70), incident_id="i-1", attempt=1, resume_message="Go")
    from_the_agent = {**cancelled_note("i-2", 90), "source": events.SOURCE_PROVIDER_FILE}
    odd_kind = {**cancelled_note("i-2", 91), "data": {"kind": ["usage_limit_cancelled"], "incident_id": "i-2"}}
    path = write_log(SID, [started(0), hit("i-1", 10), done, hit("i-2", 80), cancelled_note("i-1", 85),
                           cancelled_note("nope", 86), from_the_agent, odd_kind,
                           {**cancelled_note("i-2", 92), "data": "usage_limit_cancelled"}])
    scan = scan_log(path)
    assert scan is not None and scan.row["state"] == states.WAITING
    assert {i.incident_id: i.status for i in scan.incidents} == {"i-1": states.RESUME_DONE,
                                                                 "i-2": states.RESUME_PENDING}


def test_resumed_means_zag_continued_the_session() -> None:
    resumed = events.body(events.USAGE_LIMIT_RESUMED, ts=ts(80), incident_id="i-1", attempt=1,
                          resume_message="Continue")
    ended = events.body(events.SESSION_ENDED, ts=ts(90), exit_code=0, success=True, error=None)
    after_a_limit = scan_log(write_log(SID, [started(0), hit("i-1", 10), resumed, ended]))
    assert after_a_limit is not None and after_a_limit.row["resumed"] is True
    other = "00000002-0000-4000-8000-000000000000"
    waited_only = scan_log(write_log(other, [started(0), hit("i-1", 10), failed("i-1", 80, 1, None), ended]))
    assert waited_only is not None and waited_only.row["resumed"] is False


def test_several_runs_in_one_log_the_last_decides() -> None:
    ended = events.body(events.SESSION_ENDED, exit_code=1, success=False, error=None)
    resumed_end = events.body(events.SESSION_ENDED, exit_code=0, success=True, error=None)
    path = write_log(SID, [started(0, supervisor_pid=11), hit("i-1", 10), {**ended, "ts": ts(20), "cancelled": True},
                           started(100, resumed=True, supervisor_pid=22), {**resumed_end, "ts": ts(200)}])
    scan = scan_log(path)
    assert scan is not None
    row = scan.row
    assert (row["state"], row["exit_code"], row["resumed"], row["supervisor_pid"]) == (states.EXITED, 0, True, 22)
    assert row["ended_at"] == T0 + 200 and row["end_reason"] is None
    [incident] = scan.incidents
    assert incident.status == states.RESUME_CANCELLED


def test_a_resumed_run_continues_a_dead_wait() -> None:
    path = write_log(SID, [started(0, supervisor_pid=11), hit("i-1", 10, resume_in=500),
                           started(100, resumed=True, supervisor_pid=22)])
    scan = scan_log(path)
    assert scan is not None and scan.row["state"] == states.WAITING and scan.row["supervisor_pid"] == 22
    assert [i.status for i in scan.incidents] == [states.RESUME_PENDING]


def test_rendering_of_the_engine_events() -> None:
    style = render.Style(False)
    beat = {"type": "heartbeat", "ts": ts(0), "provider": "claude", "interval_secs": 10, "state": "waiting",
            "resume_at": ts(125), "remaining_secs": 125, "incident_id": "i-1"}
    assert "waiting for the usage-limit reset" in render.format_event(beat, style)
    assert "(in 2m)" in render.format_event(beat, style)
    plain_beat = {"type": "heartbeat", "ts": ts(0), "provider": "claude", "interval_secs": 10}
    assert render.format_event(plain_beat, style).endswith("every 10s")
    retry = {**failed("i-1", 0, 2, 30), "provider": "claude"}
    assert "resume attempt 2 failed" in render.format_event(retry, style)
    assert "next attempt at" in render.format_event(retry, style)
    final = {**failed("i-1", 0, 3, None), "provider": "claude"}
    assert render.format_event(final, style).endswith("no further attempt")
    superseding = {**hit("i-2", 0), "provider": "claude", "supersedes": ["0a1b2c3d-0000-4000-8000-000000000000"]}
    assert render.format_event(superseding, style).endswith("; supersedes incident 0a1b2c3d (failed)")
    assert "supersedes" not in render.format_event({**hit("i-3", 0), "provider": "claude"}, style)
    note = {**cancelled_note("0a1b2c3d", 0), "provider": "claude", "source": events.SOURCE_WRAPPER}
    line = render.format_event(note, style)
    assert "cancelled " in line and line.endswith("usage-limit incident 0a1b2c3d: resume cancelled")
    assert "status" not in line
    from_the_agent = {**note, "source": events.SOURCE_PROVIDER_FILE}
    assert " status " in render.format_event(from_the_agent, style)  # only zag's own notes are labelled so


def test_usage_rows_and_supervisor_states(tmp_path: Path) -> None:
    with Index() as index:
        live = add_session(index, state=states.WAITING, exit_code=None, **live_supervisor(600))
        dead = add_session(index, state=states.WAITING, exit_code=None,
                           **{**live_supervisor(), "supervisor_pid": gone_pid()})
        ended = add_session(index)
        index.add_resume(incident_id="abcdef01-0000-4000-8000-000000000000", session_id=live, provider="claude",
                         scope="session", reset_at=T0 + 50, resume_at=T0 + 60, attempts=1, raw="x")
        [row] = index.list_resumes()
        assert supervisor_state(index.get_session(live)) == "alive"
        assert supervisor_state(index.get_session(dead)) == "dead"
        assert supervisor_state(index.get_session(ended)) == "ended"
        assert supervisor_state(None) == "unknown"
        shown = describe(row, index.get_session(live), T0)
    assert shown["resume_at"] == ts(60) and shown["reset_at"] == ts(50) and shown["resume_in_secs"] == 60
    assert (shown["status"], shown["attempts"], shown["supervisor"], shown["fallback_used"]) == (
        "pending", 1, "alive", False)
    assert "(in 1m)" in resumes_table([shown], render.Style(False), now=T0)


def test_a_closed_resume_has_no_countdown() -> None:
    with Index() as index:
        session = add_session(index)
        for n, status in enumerate((states.RESUME_DONE, states.RESUME_CANCELLED, states.RESUME_FAILED)):
            incident = f"abcdef0{n}-0000-4000-8000-000000000000"
            index.add_resume(incident_id=incident, session_id=session, provider="claude", scope="session",
                             reset_at=T0 + 50, resume_at=T0 + 600, attempts=1, raw="x")
            index.update_resume(incident, status=status)
        rows = [describe(row, index.get_session(session), T0) for row in index.list_resumes(open_only=False)]
    assert sorted(row["status"] for row in rows) == ["cancelled", "done", "failed"]
    assert all(row["resume_in_secs"] is None and row["resume_at"] == ts(600) for row in rows)
    table = resumes_table(rows, render.Style(False), now=T0)
    assert "(in " not in table and "due" not in table


def test_follower_goes_on_when_a_new_supervisor_took_the_ended_session_over() -> None:
    import threading

    from zag.logs.follower import STOP_ENDED, EventFollower

    ended = events.body(events.SESSION_ENDED, exit_code=0, success=True, error=None)
    path = write_log(SID, [started(0, supervisor_pid=11), ended])
    asked: list[Any] = []

    def taken_over(last_started: dict[str, Any] | None) -> bool:
        pid = (last_started or {}).get("supervisor_pid")
        asked.append(pid)
        return pid == 11  # supervisor 22 (`zag resume`) holds the row now; its `session_started` is on the way

    def resume() -> None:
        time.sleep(0.2)
        write_log(SID, [started(100, resumed=True, supervisor_pid=22),
                        {"type": events.ASSISTANT_MESSAGE, "content": "more", "source": events.SOURCE_PROVIDER_FILE},
                        ended])

    writer = threading.Thread(target=resume)
    writer.start()
    try:
        follower = EventFollower(path, taken_over=taken_over, poll_secs=0.01, liveness_secs=0.05)
        seen = [line.event["type"] for line in follower]
    finally:
        writer.join(10)
    assert seen == ["session_started", "session_ended", "session_started", "assistant_message", "session_ended"]
    assert follower.stop_reason == STOP_ENDED and asked[0] == 11
    # nobody took it over: the first end is the end
    alone = EventFollower(path, taken_over=lambda started: False, poll_secs=0.01)
    assert [line.event["seq"] for line in alone][-1] == 5
    first_only = write_log("00000002-0000-4000-8000-000000000000", [started(0), ended])
    assert [line.event["type"] for line in EventFollower(first_only, taken_over=lambda s: False, poll_secs=0.01)] == [
        "session_started", "session_ended"]
