"""`zag backfill` over years of messy real history (QA): file and folder names that are not UTF-8,
folders zag may not read, a goose database that cannot be read next to legacy session files. Each run
is a real `zag backfill` process over agents' folders laid out where the agents keep them."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
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


# --- 2. folders zag may not read -----------------------------------------------------------------------
def codex_rollout(folder: Path, number: int) -> Path:
    thread = f"{number:08d}-0000-4000-8000-{number:012d}"
    target = folder / f"rollout-2026-01-02T03-04-{number:02d}-{thread}.jsonl"
    records = [
        {"timestamp": f"2026-01-02T03:04:{number:02d}.000Z", "type": "session_meta",
         "payload": {"id": thread, "timestamp": f"2026-01-02T03:04:{number:02d}.000Z", "cwd": "/w",
                     "originator": "codex_cli_rs", "cli_version": "0.169.0"}},
        {"timestamp": f"2026-01-02T03:04:{number:02d}.500Z", "type": "response_item",
         "payload": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": f"codex {number}"}]}},
    ]
    write_records(target, records)
    return target


def gemini_chat(chats: Path, session_id: str, text: str) -> None:
    write_records(chats / f"session-2026-01-02T03-04-{session_id[:8]}.jsonl", [
        {"sessionId": session_id, "projectHash": "0" * 64, "startTime": "2026-01-02T03:04:00.000Z",
         "lastUpdated": "2026-01-02T03:04:01.000Z", "kind": "main"},
        {"id": "m1", "timestamp": "2026-01-02T03:04:01.000Z", "type": "user", "content": [{"text": text}]},
    ])


@pytest.fixture
def locked_folders(home: Path) -> list[Path]:
    """A readable and an unreadable (mode 000) folder of sessions for every provider."""
    projects = home / ".claude" / "projects"
    write_records(projects / "-w" / f"{SID}.jsonl", conversation(SID, range(1, 2)))
    other = SID[:-1] + "2"
    write_records(projects / "-locked" / f"{other}.jsonl", conversation(other, range(1, 2), "locked "))
    codex_rollout(home / ".codex" / "sessions" / "2026" / "01" / "02", 1)
    codex_rollout(home / ".codex" / "archived_sessions", 2)
    gemini_chat(home / ".gemini" / "tmp" / "open" / "chats", "aaaaaaaa-1111-4111-8111-000000000001", "open")
    gemini_chat(home / ".gemini" / "tmp" / "locked" / "chats", "bbbbbbbb-1111-4111-8111-000000000001", "locked")
    # the prompt log of the locked project names its session: it must wait for the chat, not be imported alone
    (home / ".gemini" / "tmp" / "locked" / "logs.json").write_text(json.dumps([
        {"sessionId": "bbbbbbbb-1111-4111-8111-000000000001", "messageId": 0, "type": "user",
         "message": "locked", "timestamp": "2026-01-02T03:04:01.000Z"}]))
    goose = home / ".local" / "share" / "goose" / "sessions"
    db = gl.GooseDb.create(goose / "sessions.db")
    db.create_session("20261207_1", working_dir="/w")
    db.add_message("20261207_1", "user", [gl.text("goose")], created=1765000000)
    locked = [projects / "-locked", home / ".codex" / "archived_sessions", home / ".gemini" / "tmp" / "locked" / "chats",
              goose]
    for folder in locked:
        folder.chmod(0)
    yield locked
    for folder in locked:
        folder.chmod(0o755)


def test_folders_that_cannot_be_read_are_named_and_exit_1_then_imported_once_readable(
        home: Path, locked_folders: list[Path]) -> None:
    """Before: a project folder, codex's archived_sessions, a gemini chats folder, goose's sessions folder
    of mode 000 (a `sudo claude` once, a restored backup) were skipped without a word, exit 0: their
    sessions were silently never imported."""
    done = run_zag(home, "backfill", "--json", drop_root=True)

    assert done.returncode == 1, done.stderr
    summaries = {summary["provider"]: summary for summary in json.loads(done.stdout)["providers"]}
    for provider, folder in zip(("claude", "codex", "gemini", "goose"), locked_folders):
        summary = summaries[provider]
        assert summary["unlisted"] >= 1, summary
        assert any(str(folder) in message and "Permission denied" in message
                   for message in summary["warning_messages"]), summary
    assert (summaries["claude"]["imported"], summaries["codex"]["imported"], summaries["gemini"]["imported"],
            summaries["goose"]["imported"]) == (1, 1, 1, 0)
    assert "4 folders or databases could not be read" in done.stderr
    assert "Traceback" not in done.stderr

    for folder in locked_folders:
        folder.chmod(0o755)
    second = backfill(home, drop_root=True)
    assert {name: (summary["imported"], summary["warnings"]) for name, summary in second.items()} == {
        "claude": (1, 0), "codex": (1, 0), "gemini": (1, 0), "goose": (1, 0)}
    rows = sessions(home)
    assert len(rows) == 7
    locked_gemini = next(row for row in rows if row["provider_session_id"].startswith("bbbbbbbb"))
    assert texts(locked_gemini) == ["locked"]


def test_goose_legacy_files_wait_for_a_database_that_cannot_be_read(home: Path) -> None:
    """goose copied its legacy `<id>.jsonl` sessions into sessions.db and left the files. Before: with the
    database unreadable for one run (damaged, not yet readable after a restore), the legacy file was
    imported as a session of its own, and the next run imported the database's copy: the same
    conversation twice."""
    folder = home / ".local" / "share" / "goose" / "sessions"
    db = gl.GooseDb.create(folder / "sessions.db")
    db.create_session("20250325_200615", working_dir="/home/u/old-proj")
    db.add_message("20250325_200615", "user", [gl.text("Why does CI fail?")], created=1742932000)
    db.add_message("20250325_200615", "assistant", [gl.text("Let me check the workflow.")], created=1742932004)
    shutil.copy(gl.LEGACY_FILE, folder / "20250325_200615.jsonl")
    with sqlite3.connect(db.path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    good = db.path.read_bytes()
    db.path.write_bytes(b"SQLite format 3\x00" + b"\xde\xad" * 2048)

    first = backfill(home, "--provider", "goose", code=1)["goose"]

    assert first["imported"] == 0 and first["unlisted"] == 1, first
    assert any("legacy goose session files" in message for message in first["warning_messages"])
    db.path.write_bytes(good)
    second = backfill(home, "--provider", "goose")["goose"]
    assert (second["imported"], second["warnings"]) == (1, 0), second
    [row] = sessions(home)
    assert row["provider_session_id"] == "20250325_200615"


# --- 3. zeros a crash left in a file -------------------------------------------------------------------
def glue_zeros(path: Path, after_lines: int, zeros: int = 4096) -> None:
    """Zeros in place of what followed the first `after_lines` lines, the rest appended after them (a
    power loss, then the agent resumed the session and appended to the same file)."""
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:after_lines]) + b"\0" * zeros + b"".join(lines[after_lines:]))


def test_the_record_a_resumed_agent_appended_after_a_crashs_zeros_is_imported(home: Path) -> None:
    """Before: the first record after a run of NUL bytes shared their line and was lost (one 'malformed
    JSON' warning), in claude, codex and gemini files alike."""
    transcript = home / ".claude" / "projects" / "-w" / f"{SID}.jsonl"
    write_records(transcript, conversation(SID, range(1, 4)))
    glue_zeros(transcript, 2)
    rollout = codex_rollout(home / ".codex" / "sessions" / "2026" / "01" / "02", 1)
    glue_zeros(rollout, 1)
    chats = home / ".gemini" / "tmp" / "p" / "chats"
    gemini_chat(chats, "aaaaaaaa-1111-4111-8111-000000000001", "gemini")
    [chat] = chats.iterdir()
    glue_zeros(chat, 1)

    summaries = backfill(home)

    rows = {row["provider"]: row for row in sessions(home)}
    assert texts(rows["claude"]) == ["user 1", "assistant 1", "user 2", "assistant 2", "user 3", "assistant 3"]
    assert texts(rows["codex"]) == ["codex 1"]
    assert texts(rows["gemini"]) == ["gemini"]
    for provider in ("claude", "codex", "gemini"):
        assert summaries[provider]["warnings"] == 1, summaries[provider]
        [warning] = [event for event in read_log(rows[provider]) if event["type"] == "parse_warning"]
        assert "4096 NUL bytes before a record" in warning["message"] and "\0" not in warning["raw"]


# --- 4. a transcript deleted between listing and reading -----------------------------------------------
VANISHING = """
import os, sys
from zag.logs import backfill
real = backfill._discover
def discover(provider, env, summary):
    sources = real(provider, env, summary)
    for source in sources:
        if source.provider_session_id == sys.argv[1]:
            os.unlink(source.paths[0])   # claude's cleanup of old transcripts, right then
    return sources
backfill._discover = discover
from zag.cli import main
main(["backfill", "--json", "--provider", "claude"])
"""


def test_a_transcript_deleted_after_listing_is_said_and_is_no_failure(home: Path) -> None:
    gone = SID[:-1] + "9"
    write_records(home / ".claude" / "projects" / "-w" / f"{SID}.jsonl", conversation(SID, range(1, 2)))
    write_records(home / ".claude" / "projects" / "-w" / f"{gone}.jsonl", conversation(gone, range(1, 2)))
    environ = {key: value for key, value in os.environ.items() if key not in AGENT_HOME_VARS}
    environ["HOME"] = str(home)

    done = subprocess.run([sys.executable, "-c", VANISHING, gone], env=environ, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)

    assert done.returncode == 0, done.stderr   # nothing is left to import: no failure for cron to report
    [summary] = json.loads(done.stdout)["providers"]
    assert (summary["imported"], summary["failed"], summary["warnings"]) == (1, 0, 1), summary
    assert f"{gone}.jsonl: file vanished before it could be read" in summary["warning_messages"][0]


def test_a_transcript_it_may_not_read_is_named_and_exits_1(home: Path) -> None:
    locked = home / ".claude" / "projects" / "-w" / f"{SID}.jsonl"
    write_records(locked, conversation(SID, range(1, 2)))
    locked.chmod(0)
    try:
        done = run_zag(home, "backfill", "--json", "--provider", "claude", drop_root=True)
    finally:
        locked.chmod(0o644)
    assert done.returncode == 1
    [summary] = json.loads(done.stdout)["providers"]
    assert (summary["imported"], summary["failed"]) == (0, 1), summary
    assert f"{locked}: cannot read: Permission denied" in summary["warning_messages"][0]
    assert "1 sessions could not be imported" in done.stderr
    assert backfill(home, "--provider", "claude")["claude"]["imported"] == 1


# --- 5. a transcript with no dated record --------------------------------------------------------------
def test_a_transcript_without_a_dated_record_is_dated_by_its_file_not_by_the_import(home: Path) -> None:
    """A claude transcript of `summary` lines only (they carry no timestamp), last written in 2025. Before:
    the session started at the time of the import, listed as today's first in `zag sessions`."""
    transcript = home / ".claude" / "projects" / "-w" / f"{SID}.jsonl"
    write_records(transcript, [{"type": "summary", "summary": "Fix the flaky test", "leafUuid": "u1"}])
    os.utime(transcript, (1750000000, 1750000000))   # 2025-06-15

    assert backfill(home, "--provider", "claude")["claude"]["imported"] == 1

    [row] = sessions(home)
    assert row["started_at"] == 1750000000
    assert [event["ts"] for event in read_log(row)] == ["2025-06-15T15:06:40.000Z"] * len(read_log(row))


# --- 6. a read that fails mid-file ---------------------------------------------------------------------
FAILING_READS = """
import errno, os, sys
real_pread = os.pread
def pread(fd, size, offset):   # a failing disk, an sshfs or cloud-synced folder: EIO on read, not on open
    if os.readlink(f"/proc/self/fd/{fd}").endswith(sys.argv[1]):
        raise OSError(errno.EIO, "Input/output error")
    return real_pread(fd, size, offset)
os.pread = pread
from zag.logs import backfill
backfill.default_jobs = lambda: 1
from zag.cli import main
main(["backfill", "--json", "--provider", "claude"])
"""


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to tell a descriptor's file")
def test_a_read_error_names_the_file_it_failed_on(home: Path) -> None:
    """Before: 'SID: OSError: [Errno 5] Input/output error', which of the session's files unsaid."""
    project = home / ".claude" / "projects" / "-w"
    write_records(project / f"{SID}.jsonl", conversation(SID, range(1, 2)))
    bad = project / SID / "subagents" / "agent-a1.jsonl"
    write_records(bad, [subagent_record(SID, "sub 1", 3)])
    environ = {key: value for key, value in os.environ.items() if key not in AGENT_HOME_VARS}
    environ["HOME"] = str(home)

    done = subprocess.run([sys.executable, "-c", FAILING_READS, bad.name], env=environ, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)

    assert done.returncode == 1, done.stderr
    [summary] = json.loads(done.stdout)["providers"]
    assert summary["failed"] == 1
    assert f"Input/output error: '{bad}'" in summary["warning_messages"][0]


# --- 7. FIFOs where gemini keeps its small files -------------------------------------------------------
def test_fifos_named_like_geminis_registry_and_markers_block_nothing(home: Path) -> None:
    """Before: a FIFO at ~/.gemini/projects.json or a project's .project_root hung `zag backfill` for ever
    (read_bytes on a FIFO with no writer), a nightly run holding its lock."""
    gemini_chat(home / ".gemini" / "tmp" / "p" / "chats", "aaaaaaaa-1111-4111-8111-000000000001", "gemini")
    os.mkfifo(home / ".gemini" / "projects.json")
    os.mkfifo(home / ".gemini" / "tmp" / "p" / ".project_root")

    assert backfill(home, "--provider", "gemini")["gemini"]["imported"] == 1


def test_a_fifo_named_like_a_subagents_meta_file_blocks_nothing(home: Path) -> None:
    """Before: claude's `agent-*.meta.json` beside a subagent transcript was read with read_bytes: a FIFO
    of that name hung the import of its session (and the whole backfill) for ever."""
    project = home / ".claude" / "projects" / "-w"
    write_records(project / f"{SID}.jsonl", conversation(SID, range(1, 2)))
    write_records(project / SID / "subagents" / "agent-a1.jsonl", [subagent_record(SID, "sub 1", 3)])
    os.mkfifo(project / SID / "subagents" / "agent-a1.meta.json")

    assert backfill(home, "--provider", "claude")["claude"]["imported"] == 1
    assert texts(sessions(home)[0]) == ["user 1", "assistant 1", "sub 1"]


# --- 8. an index lost (deleted) before a nightly backfill ----------------------------------------------
def test_a_lost_index_is_rebuilt_before_importing_so_a_supervised_session_is_not_imported_twice(
        tmp_path: Path, home: Path) -> None:
    """`rm index.sqlite*` (a broken index; the README's answer), and cron's `zag backfill` runs before
    `zag reindex`. Before: the new index knew no session, so the transcript of every session zag had
    supervised was imported again as a new backfilled session: the conversation twice in `zag sessions`."""
    from tests.integration.helpers import Agent

    zag_home = Path(os.environ["ZAG_HOME"])
    agent = Agent(tmp_path / "agent", zag_home)
    agent.script([
        {"mkdir": "{env:CLAUDE_CONFIG_DIR}/projects/-w"},
        {"append": "{env:CLAUDE_CONFIG_DIR}/projects/-w/{session_id}.jsonl", "lines": [
            claude_record("{session_id}", "user", "say hi", 1), claude_record("{session_id}", "assistant", "hi", 2)]},
        {"sleep": 1.0},
        {"exit": 0},
    ])
    env = agent.env(HOME=str(home), CLAUDE_CONFIG_DIR=str(home / ".claude"))
    done = subprocess.run(agent.command("run", "claude", "-p", "say hi"), env=env, capture_output=True,
                          timeout=60, stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [live] = sessions(home)
    for lost in zag_home.glob("index.sqlite*"):
        lost.unlink()

    done = run_zag(home, "backfill", "--json", "--provider", "claude")

    assert done.returncode == 0, done.stderr
    assert "it was rebuilt from them first" in done.stderr
    assert json.loads(done.stdout)["providers"][0]["imported"] == 0
    [row] = sessions(home)
    assert row["session_id"] == live["session_id"] and texts(row) == ["say hi", "hi"]


def test_files_where_agents_keep_folders_are_no_unreadable_folders(home: Path) -> None:
    """A file named like a folder of sessions holds none: nothing to say, exit 0."""
    (home / ".codex").mkdir()
    (home / ".codex" / "sessions").write_text("not a folder")
    (home / ".claude").mkdir()
    (home / ".claude" / "projects").write_text("not a folder")
    assert all(summary["warnings"] == 0 for summary in backfill(home).values())


def test_a_gemini_chat_file_it_may_not_read_keeps_its_prompt_log_waiting(home: Path) -> None:
    """Before: the session of an unreadable chat file (mode 000 after a `sudo gemini`) was unknown, so its
    prompts in logs.json were imported alone; once the file could be read, its conversation was imported
    into the same session again: every prompt twice."""
    session_id = "0508d65f-1111-4111-8111-000000000001"
    chats = home / ".gemini" / "tmp" / "p" / "chats"
    chats.mkdir(parents=True)
    chat = chats / "session-2025-06-01T10-00-0508d65f.json"
    chat.write_text(json.dumps({"sessionId": session_id, "projectHash": "ab" * 32,
                                "startTime": "2025-06-01T10:00:00.000Z", "messages": [
                                    {"id": "u1", "timestamp": "2025-06-01T10:00:01.000Z", "type": "user",
                                     "content": "one"},
                                    {"id": "g1", "timestamp": "2025-06-01T10:00:02.000Z", "type": "gemini",
                                     "content": "reply one"}]}))
    (chats.parent / "logs.json").write_text(json.dumps([{"sessionId": session_id, "messageId": 0, "type": "user",
                                                         "message": "one", "timestamp": "2025-06-01T10:00:01.000Z"}]))
    chat.chmod(0)
    try:
        first = backfill(home, "--provider", "gemini", drop_root=True, code=1)["gemini"]
    finally:
        chat.chmod(0o644)
    assert (first["imported"], first["failed"]) == (0, 1), first

    assert backfill(home, "--provider", "gemini", drop_root=True)["gemini"]["imported"] == 1
    [row] = sessions(home)
    assert texts(row) == ["one", "reply one"]
