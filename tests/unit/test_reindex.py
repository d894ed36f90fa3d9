"""`zag reindex`: the index rebuilt from the unified logs alone equals the index the runs kept."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.readside import started_body, write_log
from zag import paths, states
from zag.cli import cli
from zag.logs import events
from zag.logs.index import Index
from zag.logs.reindex import rebuild, scan_log

T0 = 1_800_000_000.0  # all timestamps are fixed, so expectations are exact


def ts(offset: float) -> str:
    return events.format_ts(T0 + offset)


def sid(n: int) -> str:
    return f"{n:08d}-0000-4000-8000-000000000000"


def _hit(incident: str, at: float, resume_in: float | None = 3600.0, **extra: Any) -> dict[str, Any]:
    return events.body(
        events.USAGE_LIMIT_HIT, ts=ts(at), incident_id=incident, scope="session",
        reset_at=ts(at + 3000), scheduled_resume_at=ts(at + resume_in) if resume_in is not None else None,
        fallback_used=False, raw="You've hit your limit · resets 5pm", **extra,
    )


def _started(at: float, **fields: Any) -> dict[str, Any]:
    body = started_body(**fields)
    body["ts"] = ts(at)
    return body


def _msg(at: float, text: str, provider_session_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": events.ASSISTANT_MESSAGE, "ts": ts(at), "content": text,
                            "source": events.SOURCE_PROVIDER_FILE}
    if provider_session_id:
        body["provider_session_id"] = provider_session_id
    return body


def _beat(at: float) -> dict[str, Any]:
    return events.body(events.HEARTBEAT, ts=ts(at), interval_secs=10)


def _ended(at: float, code: int = 0, **extra: Any) -> dict[str, Any]:
    return events.body(events.SESSION_ENDED, ts=ts(at), exit_code=code, success=code == 0, error=None, **extra)


def _base(n: int, provider: str = "claude", **fields: Any) -> dict[str, Any]:
    """The row the wrapper registers for a session started at T0 + n (see `started_body`)."""
    row: dict[str, Any] = {
        "session_id": sid(n), "provider": provider, "provider_session_id": None, "state": states.RUNNING,
        "cwd": "/tmp/project", "argv": ["claude", "-p", "fix the test"], "model": "opus",
        "started_at": T0 + n, "ended_at": None, "exit_code": None, "end_reason": None,
        "hostname": "elsewhere", "supervisor_pid": 4242, "supervisor_started": "boot:1", "child_pid": 4243,
        "last_heartbeat": None, "heartbeat_secs": 10.0, "resume_at": None, "interactive": False,
        "resumed": False, "backfilled": False, "last_seq": 0, "log_path": str(paths.session_log(sid(n))),
    }
    row.update(fields)
    return row


def _world() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Write seven sessions' logs; return the session rows and resume rows the runs would have kept."""
    rows, resumes = [], []

    def resume(n: int, incident: str, at: float, status: str, attempts: int = 0, updated: float | None = None,
               provider_session_id: str | None = None) -> dict[str, Any]:
        return {"incident_id": incident, "session_id": sid(n), "provider": "claude",
                "provider_session_id": provider_session_id, "scope": "session", "reset_at": T0 + at + 3000,
                "resume_at": T0 + at + 3600, "fallback_used": 0, "status": status, "attempts": attempts,
                "raw": "You've hit your limit · resets 5pm", "created_at": T0 + at,
                "updated_at": T0 + (updated if updated is not None else at)}

    # 1: an ordinary run that ended with exit code 2
    write_log(sid(1), [_started(1), _msg(2, "hi", "prov-1"), _beat(11), _msg(12, "bye"), _ended(13, 2)])
    rows.append(_base(1, provider_session_id="prov-1", state=states.EXITED, ended_at=T0 + 13, exit_code=2,
                      last_heartbeat=T0 + 11, last_seq=5))
    # 2: still running (or its supervisor died): no end
    write_log(sid(2), [_started(2, interactive=True), _beat(12), _beat(22)], provider="codex")
    rows.append(_base(2, provider="codex", interactive=True, last_heartbeat=T0 + 22, last_seq=3))
    # 3: waiting for a usage-limit reset
    write_log(sid(3), [_started(3), _msg(4, "working", "prov-3"), _hit("inc-3", 5), _beat(15)])
    rows.append(_base(3, provider_session_id="prov-3", state=states.WAITING, resume_at=T0 + 5 + 3600,
                      last_heartbeat=T0 + 15, last_seq=4))
    resumes.append(resume(3, "inc-3", 5, states.RESUME_PENDING, provider_session_id="prov-3"))
    # 4: hit, resumed, went on, ended; then resumed again by `zag resume` (a second start) and ended
    write_log(sid(4), [
        _started(4), _hit("inc-4", 5),
        events.body(events.USAGE_LIMIT_RESUMED, ts=ts(3700), incident_id="inc-4", attempt=1, resume_message="Continue"),
        _msg(3701, "continuing", "prov-4"), _ended(3702, 0),
        _started(4000, resumed=True, supervisor_pid=5555), _ended(4001, 0),
    ])
    rows.append(_base(4, provider_session_id="prov-4", state=states.EXITED, ended_at=T0 + 4001, exit_code=0,
                      resumed=True, supervisor_pid=5555, last_seq=7))
    resumes.append(resume(4, "inc-4", 5, states.RESUME_DONE, attempts=1, updated=3700))
    # 5: the wait was cancelled
    write_log(sid(5), [_started(5), _hit("inc-5", 6), _ended(7, 0, cancelled=True)])
    rows.append(_base(5, state=states.EXITED, ended_at=T0 + 7, exit_code=0, end_reason="cancelled", last_seq=3))
    resumes.append(resume(5, "inc-5", 6, states.RESUME_CANCELLED, updated=7))
    # 6: backfilled history (no supervisor, no end; a limit hit in history schedules nothing)
    write_log(sid(6), [
        events.body(events.SESSION_STARTED, ts=ts(6), provider_session_id="hist-6", argv=None, cwd="/old",
                    model="gpt-5", resumed=False, backfilled=True),
        {**_msg(7, "old answer"), "source": events.SOURCE_BACKFILL}, _hit("inc-6", 8, resume_in=None),
        {**_msg(9, "last"), "source": events.SOURCE_BACKFILL},
    ], provider="gemini")
    rows.append(_base(6, provider="gemini", provider_session_id="hist-6", state=states.EXITED, cwd="/old",
                      argv=None, model="gpt-5", ended_at=T0 + 9, hostname=None, supervisor_pid=None,
                      supervisor_started=None, child_pid=None, heartbeat_secs=None, backfilled=True, last_seq=4))
    # 7: a resume attempt failed; another is due
    write_log(sid(7), [
        _started(7), _hit("inc-7", 8),
        events.body(events.USAGE_LIMIT_RESUME_FAILED, ts=ts(3610), incident_id="inc-7", attempt=1, error="spawn failed"),
    ])
    rows.append(_base(7, state=states.WAITING, resume_at=T0 + 8 + 3600, last_seq=3))
    resumes.append(resume(7, "inc-7", 8, states.RESUME_PENDING, attempts=1, updated=3610))
    return rows, resumes


def _sessions(index: Index) -> dict[str, dict[str, Any]]:
    return {row["session_id"]: {k: v for k, v in row.items() if k != "updated_at"}
            for row in index.list_sessions()}


def _resumes(index: Index) -> dict[str, dict[str, Any]]:
    return {row["incident_id"]: row for row in index.list_resumes(open_only=False)}


def test_round_trip_equals_what_the_runs_registered() -> None:
    rows, resumes = _world()
    with Index() as index:
        for row in rows:
            index.add_session(**row)
        for resume in resumes:
            index.add_resume(**resume)
        before_sessions, before_resumes = _sessions(index), _resumes(index)
    for suffix in ("", "-wal", "-shm"):
        Path(str(paths.index_db()) + suffix).unlink(missing_ok=True)

    result = CliRunner().invoke(cli, ["reindex"])
    assert result.exit_code == 0, result.stderr
    assert "reindexed 7 session(s), 4 usage-limit incident(s)" in result.stdout

    with Index() as index:
        after_sessions, after_resumes = _sessions(index), _resumes(index)
    assert after_sessions.keys() == before_sessions.keys()
    for session_id, expected in before_sessions.items():
        assert after_sessions[session_id] == expected, session_id
    assert after_resumes == before_resumes
    # and the listing commands see the rebuilt index
    listed = json.loads(CliRunner().invoke(cli, ["sessions", "--json"]).stdout)
    assert [doc["session_id"] for doc in listed] == [sid(n) for n in range(7, 0, -1)]


def test_reindex_is_idempotent_and_keeps_what_only_the_index_knows() -> None:
    rows, resumes = _world()
    with Index() as index:
        rebuild(index)
        first = _sessions(index)
        # a live supervisor wrote after its log was read; the user cancelled a wait of a dead supervisor
        index.update_session(sid(2), last_heartbeat=T0 + 999, child_pid=777)
        index.update_resume("inc-3", status=states.RESUME_CANCELLED)
        # a session whose log is gone, and a backfill cursor
        index.add_session(session_id=sid(99), provider="claude", state=states.EXITED)
        index.save_backfill_cursor("claude", "key-1", sid(6), {"offset": 10}, "fp")
        report = rebuild(index)
        assert report.dropped == 1 and report.sessions == 7
        second = _sessions(index)
        assert second[sid(2)]["last_heartbeat"] == T0 + 999 and second[sid(2)]["child_pid"] == 4243
        assert index.get_resume("inc-3")["status"] == states.RESUME_CANCELLED
        assert sid(99) not in second
        assert index.backfill_cursor("claude", "key-1") == (sid(6), {"offset": 10})
        second[sid(2)]["last_heartbeat"] = first[sid(2)]["last_heartbeat"]
        assert second == first


def test_torn_last_line_and_garbage_are_ignored() -> None:
    path = write_log(sid(1), [_started(1), _msg(2, "hi", "prov-1")])
    with open(path, "ab") as handle:
        handle.write(b"\x00\xffnot json at all\n")
        handle.write(b"[1, 2, 3]\n")
        handle.write(b'{"seq": "three", "type": 5}\n')
    write_log(sid(1), [_ended(3, 0)])  # the writer continues after the damage
    with open(path, "ab") as handle:
        handle.write(b'{"seq": 9, "ts": "2027-01-01T00:00:00.000Z", "type": "session_started", "argv": ["x')
    scanned = scan_log(path)
    assert scanned is not None
    assert scanned.bad_lines == 3 and scanned.torn_tail
    row = scanned.row
    assert (row["state"], row["exit_code"], row["last_seq"], row["provider_session_id"]) == (
        states.EXITED, 0, 3, "prov-1")
    assert row["argv"] == ["claude", "-p", "fix the test"]
    with Index() as index:
        report = rebuild(index)
    assert (report.sessions, report.bad_lines, report.torn_tails) == (1, 3, 1)


def test_the_model_is_the_last_one_an_event_named() -> None:
    """The supervisor keeps the row's model current from the transcript (`session_started` rarely knows
    it: the user seldom passes --model); reindex reads it the same way."""
    unnamed = write_log(sid(1), [_started(1, model=None), _msg(2, "hi"), _ended(3)])
    first = {**_msg(2, "hi"), "model": "claude-sonnet-4-5"}
    switched = {**_msg(3, "again"), "model": "claude-opus-4-1"}
    usage = events.body(events.USAGE, ts=ts(3), input_tokens=1, output_tokens=1, model="claude-opus-4-1")
    named = write_log(sid(2), [_started(1, model=None), first, switched, usage, _ended(4)])
    chosen = write_log(sid(3), [_started(1, model="opus"), _ended(2)])
    assert [scan_log(path).row["model"] for path in (unnamed, named, chosen)] == [  # type: ignore[union-attr]
        None, "claude-opus-4-1", "opus"]


def test_files_that_are_not_session_logs() -> None:
    folder = paths.sessions_dir()
    paths.ensure_private_dir(folder)
    (folder / "notes.txt").write_text("hello")
    (folder / "not-an-id.jsonl").write_text('{"seq":1,"type":"session_started"}\n')
    (folder / f"{sid(5)}.jsonl").write_bytes(b"")
    (folder / f"{sid(6)}.jsonl").write_bytes(b"garbage only\n")
    write_log(sid(7), [_started(7)])
    result = CliRunner().invoke(cli, ["reindex", "--json"])
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["sessions"] == 1
    assert sorted(item["file"] for item in report["skipped"]) == [f"{sid(5)}.jsonl", f"{sid(6)}.jsonl"]
    with Index() as index:
        assert [row["session_id"] for row in index.list_sessions()] == [sid(7)]


def test_reindex_with_no_sessions_folder() -> None:
    result = CliRunner().invoke(cli, ["reindex"])
    assert result.exit_code == 0 and "reindexed 0 session(s)" in result.stdout


def test_a_damaged_index_is_moved_aside_and_rebuilt() -> None:
    write_log(sid(1), [_started(1), _ended(2, 0)])
    db = paths.index_db()
    db.write_bytes(b"this is not an sqlite database" * 100)
    assert CliRunner().invoke(cli, ["ps"]).exit_code == 1  # the read side reports it...
    result = CliRunner().invoke(cli, ["reindex", "--json"])  # ...and reindex repairs it
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["sessions"] == 1 and report["damaged_index_moved_to"]
    assert Path(report["damaged_index_moved_to"]).read_bytes().startswith(b"this is not")
    assert "moved to" in result.stderr
    with Index() as index:
        assert [row["session_id"] for row in index.list_sessions()] == [sid(1)]


def test_an_index_that_opens_but_has_corrupt_pages_is_moved_aside_and_rebuilt() -> None:
    """Damage only the rebuild runs into (the header is sound, the pages after it are not)."""
    import sqlite3

    for number in range(1, 41):
        write_log(sid(number), [_started(number), _ended(number + 1, 0)])
    assert CliRunner().invoke(cli, ["reindex"]).exit_code == 0
    db = paths.index_db()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with open(db, "r+b") as file:
        file.seek(8192)
        file.write(b"\xff" * 3000)

    result = CliRunner().invoke(cli, ["reindex", "--json"])

    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["sessions"] == 40 and report["damaged_index_moved_to"]
    with Index() as index:
        assert len(index.list_sessions(limit=100)) == 40


def test_an_attempt_in_flight_is_resuming_until_a_later_run_takes_the_incident_over() -> None:
    """`usage_limit_resume_started` makes the incident `resuming` (the session running); its supervisor
    killed during the attempt, a `zag resume` run (a later `session_started`) waits for it again: pending."""
    started = events.body(events.USAGE_LIMIT_RESUME_STARTED, ts=ts(3610), incident_id="inc-1", attempt=1)
    path = write_log(sid(1), [_started(1), _hit("inc-1", 2), started])
    scanned = scan_log(path)
    assert scanned is not None
    assert [(i.status, i.attempts) for i in scanned.incidents] == [(states.RESUME_RESUMING, 1)]
    assert (scanned.row["state"], scanned.row["resume_at"]) == (states.RUNNING, None)
    write_log(sid(1), [_started(4000, resumed=True)])
    scanned = scan_log(path)
    assert scanned is not None
    assert [(i.status, i.attempts) for i in scanned.incidents] == [(states.RESUME_PENDING, 1)]
    assert (scanned.row["state"], scanned.row["resume_at"]) == (states.WAITING, T0 + 2 + 3600)
    write_log(sid(1), [_ended(4100, 1)])
    assert [i.status for i in scan_log(path).incidents] == [states.RESUME_CANCELLED]  # type: ignore[union-attr]


def _note(kind: str, at: float, **data: Any) -> dict[str, Any]:
    body = events.provider_status(f"zag: {kind}", {"kind": kind, **data})
    body["ts"] = ts(at)
    return body


def test_the_agents_exit_and_relaunched_pid_during_a_wait_come_from_zags_notes() -> None:
    """The live index keeps the agent's exit code while the session waits (for `zag resume` to end with)
    and the pid of each relaunched agent; rebuilt from the log, both come from zag's notes (the code was
    lost: a `zag resume` cancelled then ended 0; the pid was the first agent's)."""
    path = write_log(sid(1), [_started(1), _hit("inc-1", 2),
                              _note(events.NOTE_AGENT_EXITED, 3, exit_code=1, incident_id="inc-1")])
    scanned = scan_log(path)
    assert scanned is not None
    assert (scanned.row["state"], scanned.row["exit_code"], scanned.row["child_pid"]) == (states.WAITING, 1, 4243)
    resume_started = events.body(events.USAGE_LIMIT_RESUME_STARTED, ts=ts(3610), incident_id="inc-1", attempt=1)
    write_log(sid(1), [resume_started, _note(events.NOTE_AGENT_STARTED, 3611, child_pid=5000, final_argv=["claude"])])
    scanned = scan_log(path)
    assert scanned is not None
    assert (scanned.row["state"], scanned.row["exit_code"], scanned.row["child_pid"]) == (states.RUNNING, 1, 5000)
    write_log(sid(1), [_hit("inc-2", 3700, supersedes=["inc-1"]),
                       _note(events.NOTE_AGENT_EXITED, 3701, exit_code=3, incident_id="inc-2")])
    scanned = scan_log(path)
    assert scanned is not None
    assert (scanned.row["state"], scanned.row["exit_code"], scanned.row["child_pid"]) == (states.WAITING, 3, 5000)
    # `zag resume` takes it over (no agent yet), and is killed while it waits: the code stays, the pid is gone
    write_log(sid(1), [_started(4000, resumed=True, child_pid=None)])
    scanned = scan_log(path)
    assert scanned is not None
    assert (scanned.row["state"], scanned.row["exit_code"], scanned.row["child_pid"]) == (states.WAITING, 3, None)
    write_log(sid(1), [_ended(4100, 3, cancelled=True)])
    scanned = scan_log(path)
    assert scanned is not None
    assert (scanned.row["state"], scanned.row["exit_code"]) == (states.EXITED, 3)


def test_an_ended_session_continued_by_zag_resume_keeps_its_exit_code_until_it_ends_again() -> None:
    """As the live row: `zag resume` of an ended session takes its row over, exit code included."""
    path = write_log(sid(1), [_started(1), _ended(2, 5), _started(10, resumed=True, child_pid=None)])
    scanned = scan_log(path)
    assert scanned is not None
    assert (scanned.row["state"], scanned.row["exit_code"]) == (states.RUNNING, 5)


def test_what_supervisors_log_while_the_logs_are_read_is_not_undone(monkeypatch: pytest.MonkeyPatch) -> None:
    """`zag reindex` while supervisors write: the logs were read first and the rows swapped in after, so what
    a supervisor logged and registered in between was undone: a session that ended came back `running`
    (then `dead`, its supervisor gone), a limit hit lost its `waiting` and its scheduled resume, and a
    session started meanwhile lost its row."""
    import zag.logs.reindex as reindex_module

    write_log(sid(1), [_started(0), _msg(1, "working")])
    write_log(sid(2), [_started(0), _msg(1, "working")])
    with Index() as index:
        for n in (1, 2):
            index.add_session(**_base(n, last_seq=2))

    def meanwhile() -> None:
        """What the supervisors do once the logs were read: log first, then the index row."""
        write_log(sid(1), [_ended(5, code=3)])
        write_log(sid(2), [_hit("inc-2", 5)])
        write_log(sid(3), [_started(6)])
        with Index() as index:
            index.update_session(sid(1), state=states.EXITED, exit_code=3, ended_at=T0 + 5, last_seq=3)
            index.update_session(sid(2), state=states.WAITING, resume_at=T0 + 3605, last_seq=3)
            index.add_resume(incident_id="inc-2", session_id=sid(2), provider="claude", status=states.RESUME_PENDING,
                             resume_at=T0 + 3605, created_at=T0 + 5, updated_at=T0 + 5)
            index.add_session(**_base(3, started_at=T0 + 6, last_seq=1))

    listings = []
    real_iter_logs = reindex_module.iter_logs

    def iter_logs_then_write(folder: Path) -> Iterator[Path]:
        listings.append(folder)
        yield from real_iter_logs(folder)
        if len(listings) == 1:  # the first listing's logs are read: now the supervisors write
            meanwhile()
    monkeypatch.setattr(reindex_module, "iter_logs", iter_logs_then_write)
    with Index() as index:
        rebuild(index)
        rows, resumes = _sessions(index), _resumes(index)
    assert (rows[sid(1)]["state"], rows[sid(1)]["exit_code"]) == (states.EXITED, 3)
    assert (rows[sid(2)]["state"], rows[sid(2)]["resume_at"]) == (states.WAITING, T0 + 3605)
    assert resumes["inc-2"]["status"] == states.RESUME_PENDING
    assert rows[sid(3)]["state"] == states.RUNNING


def test_a_session_claimed_by_a_live_process_keeps_its_claim() -> None:
    """`zag resume` (or `zag dismiss`) claims a dead session's row, then writes its log. A reindex in between
    gave the row back to the gone supervisor the log still names: a second `zag resume` (or dismiss) then
    claimed it too, and two processes wrote one session. A live claimant the log does not name yet keeps
    the row's supervisor fields."""
    import os

    from zag.wrapper import liveness

    write_log(sid(1), [_started(0), _msg(1, "working")])  # its supervisor (pid 4242 on elsewhere) is gone
    me, started = os.getpid(), liveness.process_start_time(os.getpid())
    with Index() as index:
        index.add_session(**_base(1, last_seq=2))
        assert index.claim_session(sid(1), 4242, "boot:1", state=states.RUNNING, supervisor_pid=me,
                                   supervisor_started=started, hostname=liveness.hostname(), child_pid=None,
                                   last_heartbeat=T0 + 5, resumed=1)
        rebuild(index)
        row = index.get_session(sid(1))
    assert (row["supervisor_pid"], row["supervisor_started"], row["hostname"]) == (me, started, liveness.hostname())
    assert row["state"] == states.RUNNING
