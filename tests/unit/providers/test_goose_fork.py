"""goose forks (`goose session --resume --fork`, `goose run --resume --fork`): goose's copy_session makes a new
session row whose conversation is a copy of the parent's (same message_id, role, content, created_timestamp)
and whose token counters start empty. Backfill logs the copies once, in the parent's session: the fork's
log has one `copied_history` note for them, then its own turns, and its usage is only its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.goose import gooselib as gl
from zag.providers.goose import PROVIDER, homes

T0 = 1765100000   # 2025-12-07


def _world(tmp_path: Path, schema: str) -> tuple[dict[str, str], gl.GooseDb]:
    """`v13-no-ids`: the parent's rows have no message_id (written before goose kept them): the copies get
    new ones (`msg_<fork>_…`) and are matched by content."""
    env = {"HOME": str(tmp_path / "home")}
    ids = schema != "v13-no-ids"
    schema = schema.replace("-no-ids", "")
    db = gl.GooseDb.create(homes.goose_home(env).db_path, schema=schema)
    db.create_session("20251207_1", working_dir="/work/a", created_at=T0)
    db.add_message("20251207_1", "user", [gl.text("parent question")], created=T0 + 1, message_id="m1" if ids else None)
    db.add_message("20251207_1", "assistant", [gl.tool_request("t1", "developer__shell", {"command": "ls"})],
                   created=T0 + 2, message_id="m2" if ids else None)
    db.add_message("20251207_1", "user", [gl.tool_response("t1", "a.txt")], created=T0 + 3,
                   message_id="m3" if ids else None)
    db.add_message("20251207_1", "assistant", [gl.text("parent answer")], created=T0 + 4,
                   message_id="m4" if ids else None)
    db.set_tokens("20251207_1", accumulated_input_tokens=100, accumulated_output_tokens=10,
                  accumulated_total_tokens=110)
    db.copy_session("20251207_1", "20251207_2", created_at=T0 + 600)
    db.add_message("20251207_2", "user", [gl.text("fork question")], created=T0 + 601, message_id="f1")
    db.add_message("20251207_2", "assistant", [gl.text("fork answer")], created=T0 + 602, message_id="f2")
    db.set_tokens("20251207_2", accumulated_input_tokens=40, accumulated_output_tokens=4, accumulated_total_tokens=44)
    return env, db


def _logs() -> dict[str, list[dict[str, Any]]]:
    from zag import paths
    from zag.logs.index import Index
    from zag.logs.reader import read_events

    with Index() as index:
        rows = index.list_sessions()
    return {row["provider_session_id"]: list(read_events(paths.session_log(row["session_id"]))) for row in rows}


def _turns(log: list[dict[str, Any]]) -> list[Any]:
    return [(e["type"], e.get("content")) for e in log if e["type"] in ("user_message", "assistant_message")]


@pytest.mark.parametrize("schema", ["v13", "v13-no-ids", "v6"])   # v6: no message_id column (matched by content)
def test_backfill_logs_a_forks_copied_history_once_and_counts_only_its_own_usage(tmp_path: Path,
                                                                                  schema: str) -> None:
    from zag.logs.backfill import run_backfill

    env, db = _world(tmp_path, schema)
    [summary] = run_backfill([PROVIDER], env=env, jobs=1)
    assert summary.imported == 2
    logs = _logs()
    assert _turns(logs["20251207_1"]) == [("user_message", "parent question"), ("assistant_message", "parent answer")]
    fork = logs["20251207_2"]
    assert _turns(fork) == [("user_message", "fork question"), ("assistant_message", "fork answer")]
    assert not [e for e in fork if e["type"] in ("tool_call", "tool_result")]
    [note] = [e for e in fork if (e.get("data") or {}).get("kind") == "copied_history"]
    assert note["type"] == "provider_status"
    assert note["data"]["forked_from"] == "20251207_1" and note["data"]["messages"] == 4
    assert [(u["input_tokens"], u["output_tokens"]) for u in fork if u["type"] == "usage"] == [(40, 4)]
    [again] = run_backfill([PROVIDER], env=env, jobs=1)
    assert (again.imported, again.updated, again.events) == (0, 0, 0)
    db.add_message("20251207_2", "user", [gl.text("fork again")], created=T0 + 700, message_id="f3")
    [grown] = run_backfill([PROVIDER], env=env, jobs=1)
    assert (grown.imported, grown.updated) == (0, 1)
    assert _turns(_logs()["20251207_2"])[-1] == ("user_message", "fork again")


def test_a_session_with_older_messages_no_other_session_holds_is_logged_whole(tmp_path: Path) -> None:
    """`goose session import` / a legacy import: messages older than the row, but no copies of another."""
    from zag.logs.backfill import run_backfill

    env = {"HOME": str(tmp_path / "home")}
    db = gl.GooseDb.create(homes.goose_home(env).db_path)
    db.create_session("20251207_1", working_dir="/work/a", created_at=T0 + 600)
    db.add_message("20251207_1", "user", [gl.text("imported question")], created=T0 + 1, message_id="i1")
    db.add_message("20251207_1", "assistant", [gl.text("imported answer")], created=T0 + 2, message_id="i2")
    [summary] = run_backfill([PROVIDER], env=env, jobs=1)
    assert summary.imported == 1
    log = _logs()["20251207_1"]
    assert _turns(log) == [("user_message", "imported question"), ("assistant_message", "imported answer")]
    assert not [e for e in log if (e.get("data") or {}).get("kind") == "copied_history"]


def test_a_fork_whose_copies_a_later_turn_rewrote_keeps_its_own_turns(tmp_path: Path) -> None:
    """Only the leading run of copies is left out: a message equal to the parent's further on is the
    fork's own (it comes after the fork's first own message)."""
    from zag.logs.backfill import run_backfill

    env, db = _world(tmp_path, "v13")
    db.add_message("20251207_2", "user", [gl.text("parent question")], created=T0 + 1, message_id="m1")
    run_backfill([PROVIDER], env=env, jobs=1)
    assert _turns(_logs()["20251207_2"]) == [("user_message", "fork question"), ("assistant_message", "fork answer"),
                                             ("user_message", "parent question")]
