"""`zag backfill` over odd things in the agents' folders: FIFOs named like session files, directory
symlinks (to the folder itself or to another project), and a transcript that shrank or was replaced
between two backfills."""

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
from tests.integration.test_backfill_cli import (AGENT_HOME_VARS, CORPUS, claude_record, codex_home, gemini_home,
                                                 read_log, sessions_json)

SID = "5e5e5e5e-2222-4222-8222-000000000001"
FIFO_SID = "5e5e5e5e-2222-4222-8222-0000000000ff"
CONTENT_TYPES = {"user_message", "assistant_message", "tool_call", "tool_result", "reasoning"}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


def backfill(home: Path, *args: str) -> dict[str, dict[str, Any]]:
    env = {key: value for key, value in os.environ.items() if key not in AGENT_HOME_VARS}
    env["HOME"] = str(home)
    done = subprocess.run([sys.executable, "-m", "zag", "backfill", "--json", *args], env=env,
                          capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    return {summary["provider"]: summary for summary in json.loads(done.stdout)["providers"]}


def write_records(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record) + "\n" for record in records))


def conversation(session_id: str, seconds: range) -> list[dict[str, Any]]:
    return [claude_record(session_id, kind, f"{kind} {second}", second)
            for second in seconds for kind in ("user", "assistant")]


def content_keys(log: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(event["type"], event.get("content") or event.get("text") or json.dumps(event, sort_keys=True))
            for event in log if event["type"] in CONTENT_TYPES]


# --- 1. FIFOs named like session files are no sources and block nothing -----------------------------------
def test_a_fifo_named_like_a_session_file_is_skipped_by_every_provider(home: Path) -> None:
    claude = home / ".claude" / "projects" / "-w"
    write_records(claude / f"{SID}.jsonl", conversation(SID, range(1, 3)))
    os.mkfifo(claude / f"{FIFO_SID}.jsonl")
    (claude / FIFO_SID / "subagents").mkdir(parents=True)
    os.mkfifo(claude / FIFO_SID / "subagents" / "agent-fifo.jsonl")
    (claude / "nested").mkdir()
    os.mkfifo(claude / "nested" / "deep.jsonl")
    codex = codex_home(home)
    os.mkfifo(next(iter(codex.values())).parent / "rollout-2026-01-02T03-04-59-99999999-0000-4000-8000-999999999999.jsonl")
    chats = gemini_home(home)
    os.mkfifo(chats / "session-2026-01-01T00-00-deadbeef.jsonl")
    (chats / "deadbeef-0000-4000-8000-000000000000").mkdir()
    os.mkfifo(chats / "deadbeef-0000-4000-8000-000000000000" / "sub.jsonl")
    goose = home / ".local" / "share" / "goose" / "sessions"
    goose.mkdir(parents=True)
    shutil.copy(gl.LEGACY_FILE, goose / gl.LEGACY_FILE.name)
    os.mkfifo(goose / "20250101_000000.jsonl")

    summaries = backfill(home)   # bounded: a blocked open would hit the timeout

    listed = {row["provider_session_id"] for row in sessions_json(home)}
    assert SID in listed and FIFO_SID not in listed and "deep" not in listed
    assert "20250101_000000" not in listed and "99999999-0000-4000-8000-999999999999" not in listed
    assert summaries["codex"]["sessions_seen"] == len(codex)
    assert summaries["goose"]["sessions_seen"] == 1


# --- 2. a directory symlink does not make a second source of the same files --------------------------------
def test_directory_symlinks_in_claude_projects_import_each_session_once(home: Path) -> None:
    projects = home / ".claude" / "projects"
    write_records(projects / "-w" / f"{SID}.jsonl", conversation(SID, range(1, 3)))
    layout = CORPUS / "claude" / "agent-sessions_subagent_layout"
    shutil.copytree(layout, projects / "-other")
    (projects / "-w" / "selfdir").symlink_to(".")
    (projects / "-w" / "otherdir").symlink_to(projects / "-other")
    (projects / "-w" / "loop").symlink_to(projects / "-w" / "loop")
    (projects / "-linked").symlink_to(projects / "-w")

    summary = backfill(home, "--provider", "claude")["claude"]

    rows = sessions_json(home)
    assert sorted(row["provider_session_id"] for row in rows) == sorted([SID, "0a1b2c3d-4e5f-4061-8071-2a3b4c5d6e7f"])
    assert summary["sessions_seen"] == 2


def test_directory_symlinks_in_codex_gemini_goose_folders_import_each_session_once(home: Path) -> None:
    codex = codex_home(home)
    day = next(iter(codex.values())).parent
    (day / "again").symlink_to(day)
    (home / ".codex" / "sessions" / "2026" / "02").symlink_to(day.parent)
    chats = gemini_home(home)
    (chats / "selfdir").symlink_to(".")
    (home / ".gemini" / "tmp" / "proj2").symlink_to(chats.parent)
    goose = home / ".local" / "share" / "goose" / "sessions"
    goose.mkdir(parents=True)
    shutil.copy(gl.LEGACY_FILE, goose / gl.LEGACY_FILE.name)
    (goose / "again.jsonl").symlink_to(goose / gl.LEGACY_FILE.name)

    before = {name: len({row["provider_session_id"] for row in sessions_json(home)}) for name in ("x",)}
    summaries = backfill(home)

    rows = sessions_json(home)
    keys = [(row["provider"], row["provider_session_id"]) for row in rows]
    assert len(keys) == len(set(keys)), keys
    assert summaries["codex"]["sessions_seen"] == len(codex)
    assert summaries["goose"]["sessions_seen"] == 1
    assert before == {"x": 0}


# --- 3. a transcript that shrank or was replaced: nothing already imported is written again ----------------
def claude_session(home: Path, records: list[dict[str, Any]]) -> Path:
    path = home / ".claude" / "projects" / "-w" / f"{SID}.jsonl"
    write_records(path, records)
    return path


def only_log(home: Path) -> list[dict[str, Any]]:
    [row] = sessions_json(home)
    return read_log(row)


def assert_each_once(log: list[dict[str, Any]], expected: set[tuple[str, str]]) -> None:
    keys = content_keys(log)
    assert len(keys) == len(set(keys)), [key for key in keys if keys.count(key) > 1]
    assert set(keys) == expected


def expected_of(records: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {("user_message" if record["type"] == "user" else "assistant_message",
             f"{record['type']} {int(record['timestamp'][17:19])}") for record in records}


def test_a_truncated_claude_transcript_is_not_imported_twice(home: Path) -> None:
    records = conversation(SID, range(1, 7))
    path = claude_session(home, records)
    backfill(home, "--provider", "claude")

    path.write_text("".join(json.dumps(record) + "\n" for record in records[:6]))
    backfill(home, "--provider", "claude")

    log = only_log(home)
    assert any("shrank or was replaced" in str(event.get("message", "")) for event in log)
    assert_each_once(log, expected_of(records))


def test_a_replaced_claude_transcript_keeps_old_records_once_and_imports_new_ones(home: Path) -> None:
    records = conversation(SID, range(1, 7))
    path = claude_session(home, records)
    backfill(home, "--provider", "claude")

    newer = conversation(SID, range(7, 9))
    replacement = path.with_name("replacement")
    write_records(replacement, records[2:8] + newer)   # some old records kept, new ones after them
    os.replace(replacement, path)
    backfill(home, "--provider", "claude")

    assert_each_once(only_log(home), expected_of(records + newer))


def test_a_claude_transcript_replaced_twice_with_same_second_records(home: Path) -> None:
    """Records sharing the last imported timestamp: the ones already imported are skipped by uuid."""
    records = conversation(SID, range(1, 4))
    twin = claude_record(SID, "user", "twin", 3)
    twin["uuid"] = "twin-uuid"
    path = claude_session(home, records)
    backfill(home, "--provider", "claude")

    write_records(path.with_name("replacement"), records[3:] + [twin])
    os.replace(path.with_name("replacement"), path)
    backfill(home, "--provider", "claude")

    keys = content_keys(only_log(home))
    assert len(keys) == len(set(keys))
    assert ("user_message", "twin") in keys
