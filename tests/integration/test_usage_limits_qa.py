"""QA of the usage-limit commands as an overnight batch uses them: `zag usage list` over an index whose
resume rows are damaged, and the like."""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from pathlib import Path

import pytest

from tests.integration.helpers import Agent
from zag.logs.index import Index

def _resume(index: Index, **fields: object) -> str:
    incident_id = str(uuid.uuid4())
    now = time.time()  # not at import: a whole suite runs longer than the 10 min this resume is ahead
    row = {"incident_id": incident_id, "session_id": str(uuid.uuid4()), "provider": "claude", "scope": "session",
           "reset_at": now + 600, "resume_at": now + 610, "status": "pending", "raw": "limit"}
    index.add_resume(**{**row, **fields})
    return incident_id


@pytest.mark.parametrize(("column", "value"), [
    ("resume_at", "soon"), ("resume_at", 1e300), ("resume_at", -1e20),
    ("reset_at", "x"), ("reset_at", 1e300), ("created_at", "yesterday"), ("updated_at", 1e300),
    ("raw", b"\xff\xfe"), ("provider", b"codex"), ("attempts", "many"),
])
def test_a_damaged_resume_row_does_not_stop_the_listing(agent: Agent, zag_home: Path, column: str,
                                                         value: object) -> None:
    """A resume row holding what no zag writes there (a hand edit, another version, a damaged file) used to
    end every `zag usage list` with a Python traceback (`timestamp out of range`, `'str' object cannot be
    interpreted as an integer`, ...): now the row is listed with what cannot be read shown as unknown, and
    the good rows as always."""
    with Index(zag_home / "index.sqlite") as index:
        good = _resume(index)
        bad = _resume(index, provider="codex")
    with sqlite3.connect(zag_home / "index.sqlite") as conn:
        conn.execute(f"UPDATE resumes SET {column} = ? WHERE incident_id = ?", (value, bad))
    for args in ([], ["--all"]):
        result = agent.run("usage", "list", *args)
        assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr.decode()
        assert good[:8].encode() in result.stdout
        assert bad[:8].encode() in result.stdout
    result = agent.run("usage", "list", "--all", "--json")
    assert result.returncode == 0, result.stderr.decode()
    rows = {row["incident_id"]: row for row in json.loads(result.stdout)}
    assert rows[good]["resume_at"] is not None and rows[good]["resume_in_secs"] > 0
    assert set(rows) == {good, bad}
    if column in ("resume_at", "reset_at", "created_at", "updated_at"):
        assert rows[bad][column] is None
        if column == "resume_at":
            assert rows[bad]["resume_in_secs"] is None
    elif column == "attempts":
        assert rows[bad]["attempts"] == 0
    else:  # a blob where text belongs
        assert isinstance(rows[bad][column], str)


def test_a_cancel_of_a_dead_wait_does_not_write_into_a_session_zag_resume_took_over(tmp_path: Path,
                                                                                     zag_home: Path) -> None:
    """`zag usage cancel` of a session whose supervisor died writes the cancel note into its log itself. It
    read the session row first: a `zag resume` that took the session over meanwhile (its claim won) writes
    that log now, and the cancel wrote in as well (a second writer: the two count seq alike, so one seq
    came twice) and set the row `running` under the new supervisor's feet. Now the cancel claims the row as
    `zag dismiss` does, and leaves a session taken over to its new supervisor (which sees the cancel in the
    index and logs it itself)."""
    from tests.integration import limits_rig as L
    from zag.wrapper.limits import record_cancel_without_supervisor
    from zag.wrapper.liveness import process_start_time

    rig = L.Rig(tmp_path, zag_home, "claude")
    rig.script(L.claude_headless_hit(rig, time.time() + 600))
    waiting = rig.killed_while_waiting()
    with Index(zag_home / "index.sqlite") as index:
        stale = index.get_session(waiting["session_id"])  # what `zag usage cancel` read
        [resume] = index.list_resumes(session_id=waiting["session_id"])
        me = os.getpid()
        assert index.claim_session(stale["session_id"], stale["supervisor_pid"], stale["supervisor_started"],
                                   supervisor_pid=me, supervisor_started=process_start_time(me),
                                   state="waiting", last_heartbeat=time.time())  # `zag resume` took it over
        before = rig.agent.session_log_paths()[0].read_bytes()
        assert index.update_resume_if(resume["incident_id"], ("pending",), status="cancelled")

        assert record_cancel_without_supervisor(index, stale, resume) is False

        row = index.get_session(stale["session_id"])
    assert rig.agent.session_log_paths()[0].read_bytes() == before
    assert (row["supervisor_pid"], row["state"]) == (me, "waiting")


def test_zag_resume_of_a_dead_wait_resumes_it_with_automatic_resumes_turned_off(tmp_path: Path,
                                                                              zag_home: Path) -> None:
    """The user turned automatic resumes off (`enabled = false`) after a zag died waiting, then asked for
    this one with `zag resume`. zag said "claude resumes at …", then ended the session at once with exit 1
    and resumed nothing (the pending resume cancelled in the index only, no note in the log). The resume
    the user asked for is waited for and made; `enabled = false` concerns new hits."""
    from tests.integration import limits_rig as L

    rig = L.Rig(tmp_path, zag_home, "claude")
    rig.script(L.claude_headless_hit(rig, time.time() + 6), L.claude_headless_resumed(rig))
    waiting = rig.killed_while_waiting()
    (zag_home / "config.toml").write_text(L.CONFIG + "enabled = false\n", encoding="utf-8")

    result = rig.run("resume", waiting["session_id"][:8])

    assert result.returncode == 0, result.stderr.decode()
    assert [call["argv"][:3] for call in rig.invocations()][1] == ["-p", "--resume", waiting["provider_session_id"]]
    events = rig.log()
    [hit] = L.of_type(events, "usage_limit_hit")
    [resumed] = L.of_type(events, "usage_limit_resumed")
    assert resumed["incident_id"] == hit["incident_id"] and events[-1]["exit_code"] == 0
    assert [row["status"] for row in rig.resume_rows()] == ["done"]
