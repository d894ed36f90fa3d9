"""`zag backfill` over years of messy real history (QA): file and folder names that are not UTF-8,
folders zag may not read, a goose database that cannot be read next to legacy session files. Each run
is a real `zag backfill` process over agents' folders laid out where the agents keep them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.goose import gooselib as gl
from tests.integration.test_backfill_cli import AGENT_HOME_VARS, claude_record

SID = "5e5e5e5e-3333-4333-8333-000000000001"
CONTENT_TYPES = {"user_message", "assistant_message", "tool_call", "tool_result", "reasoning"}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


def run_zag(home: Path, *args: str, env: dict[str, str] | None = None,
            drop_root: bool = False) -> subprocess.CompletedProcess[str]:
    """`zag ARGS` with HOME=home; `drop_root`: without the capabilities that let root read any file
    (so a mode 000 folder is unreadable to it too, as it is to a user)."""
    environ = {key: value for key, value in os.environ.items() if key not in AGENT_HOME_VARS}
    environ["HOME"] = os.fsdecode(home)
    environ.update(env or {})
    command = [sys.executable, "-m", "zag", *args]
    if drop_root and os.geteuid() == 0:
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    return subprocess.run(command, env=environ, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def backfill(home: Path, *args: str, env: dict[str, str] | None = None, drop_root: bool = False,
             code: int = 0) -> dict[str, dict[str, Any]]:
    done = run_zag(home, "backfill", "--json", *args, env=env, drop_root=drop_root)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    return {summary["provider"]: summary for summary in json.loads(done.stdout)["providers"]}


def sessions(home: Path) -> list[dict[str, Any]]:
    done = run_zag(home, "sessions", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def read_log(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(row["log_path"]).read_text().splitlines()]


def texts(row: dict[str, Any]) -> list[str]:
    return [event.get("content") or event.get("text") or "" for event in read_log(row)
            if event["type"] in CONTENT_TYPES]


def write_records(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        handle.write("".join(json.dumps(record) + "\n" for record in records))


def conversation(session_id: str, seconds: range, prefix: str = "") -> list[dict[str, Any]]:
    return [claude_record(session_id, kind, f"{prefix}{kind} {second}", second)
            for second in seconds for kind in ("user", "assistant")]


def subagent_record(session_id: str, text: str, second: int) -> dict[str, Any]:
    record = claude_record(session_id, "user", text, second)
    record.update(isSidechain=True, agentId="a1", uuid=f"sub-{second}")
    return record


# --- 1. names that are not UTF-8 -----------------------------------------------------------------------
def test_file_and_folder_names_that_are_not_utf8_are_imported_once(home: Path, tmp_path: Path) -> None:
    """A transcript, a subagent transcript and a goose data folder whose names are not UTF-8 (a disk
    from another machine, a folder named in latin-1). Before: the transcript's key crashed the whole
    backfill (uuid5 of a lone surrogate: a traceback, no provider imported), the subagent's cursor
    could not be encoded (its session never updated again), the goose folder's claim key could not be
    hashed (no goose session listed)."""
    project = home / ".claude" / "projects" / "-w"
    odd_stem = os.fsdecode(b"notes-caf\xe9")
    write_records(project / f"{odd_stem}.jsonl", conversation(odd_stem, range(1, 3), "odd "))
    write_records(project / f"{SID}.jsonl", conversation(SID, range(1, 3)))
    odd_agent = project / SID / "subagents" / os.fsdecode(b"agent-\xff.jsonl")
    write_records(odd_agent, [subagent_record(SID, "sub 1", 3)])
    goose_root = Path(os.fsdecode(os.fsencode(tmp_path) + b"/goose-\xe9t\xe9"))
    db = gl.GooseDb.create(goose_root / "data" / "sessions" / "sessions.db")
    db.create_session("20261207_1", working_dir="/w")
    db.add_message("20261207_1", "user", [gl.text("hi goose")], created=1765000000)
    env = {"GOOSE_PATH_ROOT": os.fsdecode(goose_root)}

    first = backfill(home, env=env)

    assert (first["claude"]["imported"], first["claude"]["warnings"]) == (2, 0), first["claude"]
    assert (first["goose"]["imported"], first["goose"]["warnings"]) == (1, 0), first["goose"]
    rows = {row["provider_session_id"]: row for row in sessions(home)}
    assert texts(rows["notes-caf\\xe9"]) == ["odd user 1", "odd assistant 1", "odd user 2", "odd assistant 2"]
    assert texts(rows[SID]) == ["user 1", "assistant 1", "user 2", "assistant 2", "sub 1"]

    again = backfill(home, env=env)
    assert all(summary["events"] == 0 and summary["imported"] == 0 for summary in again.values()), again

    write_records(odd_agent, [subagent_record(SID, "sub 2", 4)])
    grown = backfill(home, env=env)["claude"]
    assert (grown["updated"], grown["warnings"]) == (1, 0), grown
    assert texts({row["provider_session_id"]: row for row in sessions(home)}[SID])[-2:] == ["sub 1", "sub 2"]


def test_a_live_cursor_for_a_path_that_is_not_utf8_is_stored_under_backfills_key() -> None:
    """The supervisor of a goose under such a folder saves its cursor under the key backfill gives the
    same source (before: SQLite refused the key, the cursor was lost and backfill re-read the session)."""
    from zag.logs.codec import printable
    from zag.logs.index import Index

    key = os.fsdecode(b"/data/goose-\xe9t\xe9/sessions/sessions.db#20261207_1")
    index = Index()
    try:
        index.save_backfill_cursor("goose", key, "s1", {"after": 3, "file": key}, None, log_size=10)
        assert index.backfill_cursors("goose", [printable(key)]) == {printable(key): ("s1", {"after": 3, "file": key}, 10)}
        index.forget_backfill_cursor("goose", key, "s1")
        assert index.backfill_fingerprints("goose") == {}
    finally:
        index.close()
