"""Upgrading zag: the current zag on a ZAG_HOME that an older zag wrote (its index schema, its logs, without
the events and fields added since). The old formats are made by hand from what today's zag writes, so
these tests need no old checkout."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.fixtures.goose import gooselib as gl
from tests.integration import limits_rig as L
from tests.integration.helpers import kill_quietly, process_gone, wait_until


def _killed_while_waiting(rig: L.Rig) -> dict[str, Any]:
    """`zag run claude` SIGKILLed once `zag ps` shows its session waiting on a usage limit."""
    proc = rig.start("run", "claude", *L.CLAUDE_HEADLESS_ARGS)
    try:
        waiting = rig.waiting_row(proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        kill_quietly(proc.pid)
        proc.communicate(timeout=30)
    wait_until(lambda: process_gone(proc.pid), 10, message="zag gone")
    return waiting


def _as_before_agent_notes(log: Path) -> None:
    """The log as a zag from before the `agent_exited`/`agent_started` notes (0a409af) wrote it."""
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    log.write_text("".join(line for line in lines if '"agent_exited"' not in line and '"agent_started"' not in line),
                   encoding="utf-8")


def _reindexed(rig: L.Rig) -> None:
    for path in rig.agent.zag_home.glob("index.sqlite*"):
        path.unlink()
    result = rig.run("reindex")
    assert result.returncode == 0, result.stderr.decode()


def test_a_cancelled_wait_of_a_log_from_before_agent_exited_notes_is_no_success(tmp_path: Path, zag_home: Path) -> None:
    """An older zag's session waiting on a usage limit, its supervisor gone, the index rebuilt from a log
    that has no exit code for the agent: `zag resume` cancelled with `zag usage cancel` ended 0 with
    `success: true`, as if the agent had done its work. Its code is unknown: it ends as one does (1)."""
    rig = L.Rig(tmp_path, zag_home, "claude")
    rig.script(L.claude_headless_hit(rig, time.time() + 600))
    waiting = _killed_while_waiting(rig)
    [log] = rig.agent.session_log_paths()
    _as_before_agent_notes(log)
    _reindexed(rig)
    [row] = rig.zag_json("ps", "--json")
    assert (row["state"], row["exit_code"]) == ("dead", None)
    proc = rig.start("resume", waiting["session_id"][:8])
    try:
        rig.waiting_row(proc)
        [pending] = rig.zag_json("usage", "list", "--json")
        assert rig.run("usage", "cancel", pending["incident_id"][:8]).returncode == 0
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        kill_quietly(proc.pid)
        raise
    assert proc.returncode == 1, err.decode()
    ended = L.of_type(rig.log(), "session_ended")
    assert [(e["exit_code"], e["success"], e["cancelled"]) for e in ended] == [(1, False, True)]
    assert len(rig.invocations()) == 1


# The columns of `sessions` in the released zag (5c21ddb, schema 5). Its `zag resume` adopts a session's row as
# `SELECT *` read it and writes it back naming each column, refusing any other (`unknown sessions columns`):
# a column added to that table breaks the released zag on an index the current one has opened.
RELEASED_SESSION_COLUMNS = frozenset((
    "session_id", "provider", "provider_session_id", "state", "cwd", "argv", "model", "started_at",
    "ended_at", "updated_at", "exit_code", "end_reason", "hostname", "supervisor_pid",
    "supervisor_started", "child_pid", "last_heartbeat", "heartbeat_secs", "resume_at",
    "interactive", "resumed", "backfilled", "last_seq", "log_path",
))


def _goose_session(rig: L.Rig) -> str:
    """A goose session the current zag ran to its end (goose's ids repeat across its homes: zag records the
    session's owner key); its zag session id."""
    stamp = gl.sql_time(time.time())
    session = [L.GOOSE_SID, "zag-{env:ZAG_SESSION_ID}", 1, str(rig.cwd), stamp, stamp, "anthropic",
               json.dumps({"model_name": "claude-sonnet-4-5", "context_limit": 200000})]
    rig.script([{"sqlite": L.goose_db(rig), "sql": gl.SCHEMAS["v13"].read_text()},
                {"sqlite": L.goose_db(rig), "sql": gl.INSERT_SESSION_SQL, "params": session},
                *L.goose_resumed_actions(rig, "done"), {"out": "done\n"}, {"exit": 0}])
    result = rig.run("run", "goose", "run", "-t", "hello")
    assert result.returncode == 0, result.stderr.decode()
    [log] = rig.agent.session_log_paths()
    return log.stem


def _released_adoption(index_db: Path, session_id: str) -> set[str]:
    """What the released zag's `zag resume` would refuse of the row it adopts: its unknown columns."""
    with sqlite3.connect(index_db) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM sessions WHERE session_id = ?", (session_id,)).fetchone()
    conn.close()
    return set(row.keys()) - RELEASED_SESSION_COLUMNS


def test_an_index_the_current_zag_wrote_stays_usable_by_the_released_zag(tmp_path: Path, zag_home: Path) -> None:
    """Schema 6 added `sessions.provider_owner_key`; the released zag's `zag resume` on such an index (one
    installed beside the new, or gone back to) could no longer write the session's row: `could not update
    the index (ValueError: unknown sessions columns: ['provider_owner_key'])`, its state and child left
    stale. The key lives in a table of its own; the current zag still has it, also after `zag reindex`."""
    from zag.logs.index import Index
    from zag.providers import get

    rig = L.Rig(tmp_path, zag_home, "goose")
    session_id = _goose_session(rig)
    key = get("goose").owner_key(L.GOOSE_SID, rig.env())
    for rebuilt in (False, True):
        if rebuilt:
            _reindexed(rig)
        assert _released_adoption(zag_home / "index.sqlite", session_id) == set()
        with Index(zag_home / "index.sqlite") as index:
            assert index.get_session(session_id)["provider_owner_key"] == key
            assert index.provider_session_holders("goose", L.GOOSE_SID) == [(session_id, str(rig.cwd), key)]


def test_an_index_of_schema_6_moves_its_owner_keys_out_of_the_sessions_table(tmp_path: Path, zag_home: Path) -> None:
    """An index a zag of schema 6 wrote (the key a column of `sessions`): opened, the column goes and the
    keys are kept; listings and backfill see them as before."""
    from zag.logs.index import SCHEMA_VERSION, Index

    rig = L.Rig(tmp_path, zag_home, "goose")
    session_id = _goose_session(rig)
    index_db = zag_home / "index.sqlite"
    with sqlite3.connect(index_db) as conn:   # as schema 6 had it
        [(key,)] = conn.execute("SELECT owner_key FROM session_owner_keys").fetchall()
        conn.execute("DROP TABLE session_owner_keys")
        conn.execute("ALTER TABLE sessions ADD COLUMN provider_owner_key TEXT")
        conn.execute("UPDATE sessions SET provider_owner_key = ?", (key,))
        conn.execute("PRAGMA user_version = 6")
    conn.close()
    [row] = rig.zag_json("sessions", "--json")
    assert "provider_owner_key" not in row
    assert _released_adoption(index_db, session_id) == set()
    with Index(index_db) as index:
        assert index.get_session(session_id)["provider_owner_key"] == key
    with sqlite3.connect(index_db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
