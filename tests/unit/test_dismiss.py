"""`zag dismiss`: which sessions it ends, what it writes to the log and the index, and what it refuses.

Sessions are built with the real index and log writer (`tests.readside`); the command runs in-process
(click's runner). Integration tests with a real, killed `zag run` are in tests/integration/test_dismiss.py.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.integration.helpers import read_jsonl
from tests.readside import add_session, gone_pid, live_supervisor, started_body, write_log
from zag import paths, states
from zag.cli import cli
from zag.cli.ps import state_cell
from zag.cli.render import Style, format_event
from zag.logs import events
from zag.logs.index import Index
from zag.logs.reindex import reindex, scan_log
from zag.wrapper import dismiss as dismissing


def _dismiss(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["dismiss", *args])
    return result.exit_code, result.stdout, result.stderr


def _dead(index: Index, **fields: object) -> str:
    """A session whose supervisor is gone (its pid exited), with a log of its start."""
    supervisor = {**live_supervisor(), "supervisor_pid": gone_pid()}
    session_id = add_session(index, **{"state": states.RUNNING, "exit_code": None, "provider_session_id": "prov-1",
                                       **supervisor, **fields})
    write_log(session_id, [started_body(**{k: supervisor[k] for k in ("supervisor_pid", "supervisor_started")})])
    return session_id


def _log(session_id: str) -> list[dict]:
    return read_jsonl(paths.session_log(session_id))


def test_a_dead_session_is_ended_in_its_log_and_the_index() -> None:
    with Index() as index:
        session_id = _dead(index)
    code, out, err = _dismiss(session_id[:6])
    assert code == 0, err
    assert out == f"dismissed session {session_id[:8]} (claude)\n"
    started, ended = _log(session_id)
    assert (ended["seq"], ended["type"], ended["source"]) == (2, "session_ended", "wrapper")
    assert (ended["exit_code"], ended["success"], ended["reason"]) == (None, False, "dismissed")
    assert ended["provider_session_id"] == "prov-1"
    with Index() as index:
        row = index.get_session(session_id)
    assert (row["state"], row["exit_code"], row["end_reason"], row["last_seq"]) == ("exited", None, "dismissed", 2)
    assert row["ended_at"] is not None and row["resume_at"] is None
    # the gone supervisor's fields are put back (the dismisser only held them while it wrote)
    assert (row["supervisor_pid"], row["supervisor_started"]) == (started["supervisor_pid"],
                                                                 started["supervisor_started"])


def test_a_dismissed_session_reads_the_same_after_reindex() -> None:
    with Index() as index:
        session_id = _dead(index)
    assert _dismiss(session_id)[0] == 0
    scanned = scan_log(paths.session_log(session_id))
    assert scanned is not None
    assert (scanned.row["state"], scanned.row["exit_code"], scanned.row["end_reason"]) == ("exited", None,
                                                                                          "dismissed")
    paths.index_db().unlink()
    reindex()
    with Index() as index:
        row = index.get_session(session_id)
    assert (row["state"], row["end_reason"]) == ("exited", "dismissed")


def test_a_pending_resume_is_cancelled_in_the_index_and_the_log() -> None:
    now = time.time()
    with Index() as index:
        session_id = _dead(index, state=states.WAITING, resume_at=now + 600)
        index.add_resume(incident_id="1a2b3c4d-0000-4000-8000-000000000001", session_id=session_id,
                         provider="claude", resume_at=now + 600, status=states.RESUME_PENDING, attempts=1)
    code, out, _ = _dismiss(session_id)
    assert code == 0
    assert out.endswith("; cancelled its scheduled resume 1a2b3c4d\n")
    note, ended = _log(session_id)[1:]
    assert note["type"] == "provider_status" and note["data"] == {
        "kind": "usage_limit_cancelled", "incident_id": "1a2b3c4d-0000-4000-8000-000000000001", "attempts": 1,
        "cause": "dismissed"}
    assert ended["reason"] == "dismissed"
    with Index() as index:
        [resume] = index.list_resumes(open_only=False)
        row = index.get_session(session_id)
    assert resume["status"] == "cancelled"
    assert (row["state"], row["resume_at"]) == ("exited", None)


def test_refusals_leave_log_and_row_alone() -> None:
    with Index() as index:
        live = add_session(index, state=states.RUNNING, exit_code=None, **live_supervisor())
        silent = add_session(index, state=states.RUNNING, exit_code=None,
                             **{**live_supervisor(heartbeat_secs=1.0), "last_heartbeat": time.time() - 60})
        exited = add_session(index, exit_code=3)
        write_log(silent, [started_body()])
    old = time.time() - 60  # a silent zag has not touched its log either (a live one's beat sets its time)
    os.utime(paths.session_log(silent), (old, old))
    before = paths.session_log(silent).read_bytes()
    code, _, err = _dismiss(live)
    assert code == 2 and "still supervised by zag" in err and "only dead sessions" in err
    code, _, err = _dismiss(silent)
    assert code == 2 and "still runs" in err and "kill -CONT" in err
    assert paths.session_log(silent).read_bytes() == before
    code, _, err = _dismiss(exited)
    assert code == 2 and "already ended (exited 3)" in err
    with Index() as index:
        assert index.get_session(silent)["state"] == "running"
        assert index.get_session(live)["end_reason"] is None


def test_already_dismissed_is_refused_as_such() -> None:
    with Index() as index:
        session_id = _dead(index)
    assert _dismiss(session_id)[0] == 0
    code, _, err = _dismiss(session_id)
    assert code == 2 and "already ended (dismissed)" in err
    assert [e["type"] for e in _log(session_id)].count("session_ended") == 1


def test_unknown_ambiguous_and_malformed_ids_exit_2_before_anything_is_dismissed() -> None:
    with Index() as index:
        dead = _dead(index, session_id="abc10000-0000-4000-8000-000000000001")
        _dead(index, session_id="abc20000-0000-4000-8000-000000000002")
    for args, words in ((["abc"], "matches several sessions"), (["0123"], "no session matches"),
                        (["../x"], "is not a session id"), ([dead, "ffff"], "no session matches")):
        code, _, err = _dismiss(*args)
        assert code == 2 and words in err, (args, err)
    assert all(e["type"] != "session_ended" for e in _log(dead))  # the unknown one stopped it all


def test_several_sessions_the_refused_ones_do_not_stop_the_others() -> None:
    with Index() as index:
        live = add_session(index, state=states.RUNNING, exit_code=None, **live_supervisor())
        dead = _dead(index)
    code, out, err = _dismiss(live, dead, dead[:5])
    assert code == 2
    assert out == f"dismissed session {dead[:8]} (claude)\n"  # named twice, dismissed once
    assert "still supervised" in err


def test_dead_flag_dismisses_every_dead_session_but_not_a_silent_one() -> None:
    with Index() as index:
        first, second = _dead(index), _dead(index, state=states.WAITING)
        silent = add_session(index, state=states.RUNNING, exit_code=None,
                             **{**live_supervisor(heartbeat_secs=1.0), "last_heartbeat": time.time() - 60})
        live = add_session(index, state=states.RUNNING, exit_code=None, **live_supervisor())
        add_session(index)
    code, out, err = _dismiss("--dead", "--json")
    assert code == 0, err
    results = {r["session_id"]: r for r in json.loads(out)}
    assert {sid: r["status"] for sid, r in results.items()} == {first: "dismissed", second: "dismissed",
                                                               silent: "skipped"}
    assert "still runs" in err and live not in results
    code, _, err = _dismiss("--dead")
    assert code == 0 and "still runs" in err  # only the silent one is left, and left alone
    with Index() as index:
        assert index.get_session(silent)["state"] == "running"


def test_dead_flag_with_nothing_dead_or_with_sessions_named() -> None:
    code, out, err = _dismiss("--dead")
    assert (code, out) == (0, "") and "no dead sessions" in err
    with Index() as index:
        dead = _dead(index)
    assert _dismiss("--dead", dead)[0] == 2
    assert _dismiss()[0] == 2


def test_a_missing_log_fails_and_changes_nothing() -> None:
    with Index() as index:
        session_id = _dead(index)
    paths.session_log(session_id).unlink()
    code, _, err = _dismiss(session_id)
    assert code == 1 and "no log" in err and "zag reindex" in err
    assert not paths.session_log(session_id).exists()
    with Index() as index:
        assert index.get_session(session_id)["state"] == "running"


def test_a_log_that_cannot_be_written_puts_the_row_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk: the writer holds the line back instead of writing it; nothing is dismissed, the row is
    as it was (still dead: it can be dismissed or resumed later)."""
    from zag.logs.writer import SessionLogWriter

    with Index() as index:
        session_id = _dead(index)
        row = index.get_session(session_id)
    before = paths.session_log(session_id).read_bytes()
    monkeypatch.setattr(SessionLogWriter, "_write_whole", lambda self, data: False)
    code, _, err = _dismiss(session_id)
    assert code == 1 and "nothing was dismissed" in err
    assert paths.session_log(session_id).read_bytes() == before
    with Index() as index:
        after = index.get_session(session_id)
    fields = ("state", "supervisor_pid", "supervisor_started", "hostname", "last_heartbeat", "end_reason")
    assert {k: after[k] for k in fields} == {k: row[k] for k in fields}


def test_a_row_taken_over_meanwhile_is_not_dismissed() -> None:
    """`zag resume` (or another dismiss) claimed the row after this one read it: its claim names the gone
    supervisor, which is no longer the one recorded, so it fails and nothing is written."""
    with Index() as index:
        session_id = _dead(index)
        stale = index.get_session(session_id)
        assert index.claim_session(session_id, stale["supervisor_pid"], stale["supervisor_started"],
                                   supervisor_pid=gone_pid(), supervisor_started="other:1")
        before = paths.session_log(session_id).read_bytes()
        try:
            dismissing.dismiss(index, stale)
        except dismissing.Refused as exc:
            assert "taken over meanwhile" in str(exc)
        else:
            raise AssertionError("dismissed a session another process had taken over")
    assert paths.session_log(session_id).read_bytes() == before


def test_while_dismissing_the_session_reads_as_supervised() -> None:
    """Between its claim and the end of the log write, the row names the dismisser as a live supervisor:
    a `zag resume` reading it then refuses instead of writing the log too."""
    seen: dict[str, str] = {}

    from zag.logs import writer as writer_module

    real = writer_module.SessionLogWriter.write

    def spying(self: object, body: dict, source: str = events.SOURCE_WRAPPER) -> dict:
        with Index() as other:
            row = other.get_session(self.session_id)  # type: ignore[attr-defined]
        try:
            dismissing.check_dismissible(row)
        except dismissing.Refused as exc:
            seen["refused"] = str(exc)
        return real(self, body, source)  # type: ignore[arg-type]

    with Index() as index:
        session_id = _dead(index)
        writer_module.SessionLogWriter.write = spying  # type: ignore[method-assign]
        try:
            dismissing.dismiss(index, index.get_session(session_id))
        finally:
            writer_module.SessionLogWriter.write = real  # type: ignore[method-assign]
    assert "still supervised by zag" in seen["refused"]


def test_ps_and_events_show_it_dismissed() -> None:
    now = time.time()
    assert state_cell({"state": "exited", "end_reason": "dismissed", "exit_code": None}, now) == ("dismissed", "dim")
    assert state_cell({"state": "exited", "end_reason": None, "exit_code": None}, now)[0] == "exited"
    line = format_event({"type": "session_ended", "ts": "2026-12-07T03:14:00.000Z", "provider": "claude",
                         "exit_code": None, "success": False, "reason": "dismissed"}, Style(False))
    assert "ended         dismissed with `zag dismiss`" in line


def test_a_log_that_already_ended_gets_nothing_more_and_the_index_says_what_it_says() -> None:
    """The supervisor wrote `session_ended`, then died before its index row said so (a locked index, a
    reboot): `zag ps` shows it dead. Dismissing it writes no second end; the row takes the log's."""
    with Index() as index:
        session_id = _dead(index, state=states.WAITING, resume_at=time.time() + 600)
        index.add_resume(incident_id="1a2b3c4d-0000-4000-8000-000000000002", session_id=session_id,
                         provider="claude", resume_at=time.time() + 600, status=states.RESUME_PENDING)
    write_log(session_id, [events.body(events.SESSION_ENDED, exit_code=3, success=False, error=None)])
    before = paths.session_log(session_id).read_bytes()
    code, out, err = _dismiss(session_id)
    assert code == 0, err
    assert "had ended in its log (exit 3)" in out and "nothing was written" in out
    assert paths.session_log(session_id).read_bytes() == before
    with Index() as index:
        row = index.get_session(session_id)
        [resume] = index.list_resumes(open_only=False)
    assert (row["state"], row["exit_code"], row["end_reason"], row["resume_at"], row["last_seq"]) == (
        "exited", 3, None, None, 2)
    assert resume["status"] == "cancelled"


def test_last_event_reads_from_the_end_past_torn_and_bad_lines(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    long_line = json.dumps({"seq": 1, "type": "assistant_message", "content": "x" * 200_000}).encode()
    log.write_bytes(long_line + b"\n" + b"not json\n" + b'{"seq": 3, "type": "sess')
    assert dismissing.last_event(log, chunk=1000)["seq"] == 1
    log.write_bytes(long_line + b"\n" + b'{"seq": 2, "type": "session_ended"}\n')
    assert dismissing.last_event(log, chunk=7)["type"] == "session_ended"
    log.write_bytes(b"")
    assert dismissing.last_event(log) is None
    log.write_bytes(b'{"seq": 1, "type": "session_started"}')  # no newline: torn, as every reader takes it
    assert dismissing.last_event(log) is None
    log.write_bytes(b'{"seq": 1, "type": "session_started"}\n{"seq": 2, "type": "session_ended"}')
    assert dismissing.last_event(log, chunk=5)["seq"] == 1


def test_dead_flag_skips_a_session_taken_over_after_the_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    """`zag dismiss --dead` beside `zag resume` of a dead session (a batch's morning clean-up): the resume
    claimed the row after the listing. That session is no longer dead, so --dead leaves it alone (said on
    stderr) and exits 0 as for a silent one; it exited 2 as for a refusal. Named, it is still refused."""
    with Index() as index:
        taken, other = _dead(index), _dead(index)
    real_dead_sessions = dismissing.dead_sessions

    def listed_then_resumed(index: Index) -> list[dict]:
        rows = real_dead_sessions(index)
        stale = index.get_session(taken)
        assert index.claim_session(taken, stale["supervisor_pid"], stale["supervisor_started"],
                                   supervisor_pid=gone_pid(), supervisor_started="resume:1")
        return rows
    monkeypatch.setattr(dismissing, "dead_sessions", listed_then_resumed)
    code, out, err = _dismiss("--dead", "--json")
    assert code == 0, err
    assert {r["session_id"]: r["status"] for r in json.loads(out)} == {taken: "skipped", other: "dismissed"}
    assert "taken over meanwhile" in err
    assert _log(taken)[-1]["type"] == "session_started"
