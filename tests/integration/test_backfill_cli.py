"""`zag backfill` as a subprocess over agents' files laid out where the agents keep them (temp HOME)."""

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
from tests.integration.helpers import write_config
REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "fixtures" / "corpus"
AGENT_HOME_VARS = ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "CODEX_SQLITE_HOME", "GEMINI_CLI_HOME", "GOOSE_PATH_ROOT",
                   "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


def zag(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in AGENT_HOME_VARS}
    env["HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "zag", *args], env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def backfill_json(home: Path, *args: str) -> dict[str, dict[str, Any]]:
    done = zag(home, "backfill", "--json", *args)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""   # no progress bar: stderr is not a terminal
    return {summary["provider"]: summary for summary in json.loads(done.stdout)["providers"]}


def sessions_json(home: Path) -> list[dict[str, Any]]:
    done = zag(home, "sessions", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# --- goose: sessions.db and a legacy JSONL file under ~/.local/share/goose/sessions ------------------
def goose_home(home: Path) -> tuple[Any, Any]:
    sessions = home / ".local" / "share" / "goose" / "sessions"
    db = gl.GooseDb.create(sessions / "sessions.db")
    db.create_session("20251108_1", name="fix tests", working_dir="/w/proj", created_at=1762600000)
    db.add_fixture_messages("20251108_1")
    db.create_session("20251108_2", name="other", working_dir="/w/two", created_at=1762700000,
                      model="gpt-5")
    db.add_message("20251108_2", "user", [gl.text("hi")], created=1762700001)
    db.add_message("20251108_2", "assistant", [gl.text("hello")], created=1762700005)
    shutil.copy(gl.LEGACY_FILE, sessions / gl.LEGACY_FILE.name)
    return gl, db


def test_goose_history_is_imported_listed_and_not_imported_again(home: Path) -> None:
    goose_home(home)

    summary = backfill_json(home, "--provider", "goose")["goose"]

    assert (summary["sessions_seen"], summary["imported"], summary["updated"], summary["unchanged"]) == (3, 3, 0, 0)
    assert summary["warnings"] == 0 and summary["events"] > 3
    listed = {row["provider_session_id"]: row for row in sessions_json(home)}
    assert set(listed) == {"20251108_1", "20251108_2", "legacy_20250325_200615"}
    two = listed["20251108_2"]
    assert (two["provider"], two["state"], two["backfilled"]) == ("goose", "exited", True)
    assert two["cwd"] == "/w/two" and two["model"] == "gpt-5"
    assert two["started_at"] == 1762700000.0 and two["ended_at"] == 1762700005.0
    assert listed["20251108_1"]["cwd"] == "/w/proj"
    assert all(row["started_at"] and row["ended_at"] for row in listed.values())

    again = backfill_json(home, "--provider", "goose")["goose"]
    assert (again["imported"], again["updated"], again["unchanged"], again["events"]) == (0, 0, 3, 0)


def test_goose_session_that_grew_gets_only_its_new_messages(home: Path) -> None:
    gl, db = goose_home(home)
    backfill_json(home, "--provider", "goose")
    before = {row["provider_session_id"]: row for row in sessions_json(home)}["20251108_2"]

    db.add_message("20251108_2", "user", [gl.text("and now?")], created=1762700100)
    db.add_message("20251108_2", "assistant", [gl.text("done")], created=1762700160)
    summary = backfill_json(home, "--provider", "goose")["goose"]

    assert (summary["imported"], summary["updated"], summary["unchanged"]) == (0, 1, 2)
    after = {row["provider_session_id"]: row for row in sessions_json(home)}["20251108_2"]
    assert after["session_id"] == before["session_id"]
    assert after["ended_at"] == 1762700160.0
    log = [json.loads(line) for line in Path(after["log_path"]).read_text().splitlines()]
    assert [event["seq"] for event in log] == list(range(1, len(log) + 1))
    texts = [event.get("content") or event.get("text") for event in log if event["type"] == "user_message"]
    assert texts.count("hi") == 1 and texts.count("and now?") == 1


# --- every provider ---------------------------------------------------------------------------------
def test_all_providers_with_no_history(home: Path) -> None:
    summaries = backfill_json(home)
    assert set(summaries) == {"claude", "codex", "gemini", "goose"}
    for summary in summaries.values():
        assert summary["imported"] == 0 and summary["events"] == 0


def test_text_summary_and_bad_provider(home: Path) -> None:
    done = zag(home, "backfill", "--provider", "goose")
    assert done.returncode == 0
    assert done.stdout.startswith("goose: 0 sessions seen, 0 imported")
    bad = zag(home, "backfill", "--provider", "nope")
    assert bad.returncode == 2
    assert "nope" in bad.stderr and "Traceback" not in bad.stderr


# --- codex: rollouts under ~/.codex/sessions/YYYY/MM/DD and ~/.codex/archived_sessions -----------------
def codex_home(home: Path) -> dict[str, Path]:
    """Every codex corpus file as a rollout with its own thread id (the third one archived)."""
    laid_out = {}
    for number, corpus_file in enumerate(sorted((CORPUS / "codex").glob("*.jsonl")), start=1):
        thread_id = f"{number:08d}-0000-4000-8000-{number:012d}"
        folder = home / ".codex" / ("archived_sessions" if number == 3 else "sessions/2026/01/02")
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"rollout-2026-01-02T03-04-{number:02d}-{thread_id}.jsonl"
        shutil.copy(corpus_file, target)
        laid_out[corpus_file.name] = target
    return laid_out


def test_codex_rollouts_active_and_archived_are_imported_once(home: Path) -> None:
    laid_out = codex_home(home)

    summary = backfill_json(home, "--provider", "codex")["codex"]

    assert (summary["sessions_seen"], summary["imported"], summary["unchanged"]) == (len(laid_out), len(laid_out), 0)
    assert summary["warnings"] >= 1   # the malformed rollout's broken line
    assert any("00000006" in message for message in summary["warning_messages"])
    listed = {row["provider_session_id"]: row for row in sessions_json(home)}
    assert len(listed) == len(laid_out)
    synthetic = listed[laid_out[next(n for n in laid_out if n.startswith("claude-code-log_rollout"))].stem[-36:]]
    assert synthetic["cwd"] == "/workspace/synthetic-project"
    assert synthetic["model"] == "synthetic-model"
    assert synthetic["started_at"] < synthetic["ended_at"]
    assert all(row["backfilled"] and row["state"] == "exited" for row in listed.values())

    again = backfill_json(home, "--provider", "codex")["codex"]
    assert (again["imported"], again["updated"], again["unchanged"]) == (0, 0, len(laid_out))


# --- gemini: ~/.gemini/tmp/<project>/chats/session-*.jsonl (and the older .json) ------------------------
def gemini_home(home: Path) -> Path:
    chats = home / ".gemini" / "tmp" / "proj" / "chats"
    chats.mkdir(parents=True)
    for captured in sorted((CORPUS / "real-cli" / "gemini").glob("chat_session-*.json*")):
        shutil.copy(captured, chats / captured.name.removeprefix("chat_"))
    shutil.copy(CORPUS / "gemini" / "agent-sessions_large.json", chats / "session-2025-12-16T23-47-b4f17607.json")
    (home / ".gemini" / "projects.json").write_text(json.dumps({"projects": {"/srv/demo_gemini/proj": "proj"}}))
    return chats


def test_gemini_chats_both_formats_are_imported_once(home: Path) -> None:
    chats = gemini_home(home)
    session_ids = {json.loads(path.read_text().splitlines()[0])["sessionId"]
                   for path in chats.glob("*.jsonl")}
    legacy_id = json.loads((chats / "session-2025-12-16T23-47-b4f17607.json").read_text())["sessionId"]
    session_ids.add(legacy_id)

    summary = backfill_json(home, "--provider", "gemini")["gemini"]

    assert summary["imported"] == summary["sessions_seen"] == len(session_ids)
    listed = {row["provider_session_id"]: row for row in sessions_json(home)}
    assert set(listed) == session_ids
    assert all(row["cwd"] == "/srv/demo_gemini/proj" for row in listed.values())
    legacy = listed[legacy_id]
    assert legacy["model"] and legacy["started_at"] <= legacy["ended_at"]
    assert any(row["model"] == "gemini-3.8-flash" for row in listed.values())

    again = backfill_json(home, "--provider", "gemini")["gemini"]
    assert (again["imported"], again["updated"], again["unchanged"]) == (0, 0, len(session_ids))


# --- claude: ~/.claude/projects/<encoded cwd>/<session id>.jsonl (+ <session id>/subagents/) ------------
def claude_home(home: Path) -> dict[str, Path]:
    """Every claude corpus transcript under its own session id; returns {session id: transcript}."""
    projects = home / ".claude" / "projects"
    laid_out: dict[str, Path] = {}
    real = projects / "-srv-demo-claude-proj"
    real.mkdir(parents=True)
    for captured in sorted((CORPUS / "real-cli" / "claude").glob("transcript_*.jsonl")):
        session_id = json.loads(captured.read_text().splitlines()[0])["sessionId"]
        laid_out[session_id] = real / f"{session_id}.jsonl"
        shutil.copy(captured, laid_out[session_id])
    other = projects / "-tmp"
    for number, fixture in enumerate(sorted((CORPUS / "claude").glob("*.jsonl")), start=1):
        session_id = f"{number:08d}-1111-4111-8111-{number:012d}"
        laid_out[session_id] = other / f"{session_id}.jsonl"
        other.mkdir(parents=True, exist_ok=True)
        shutil.copy(fixture, laid_out[session_id])
    layout = CORPUS / "claude" / "agent-sessions_subagent_layout"
    shutil.copytree(layout, other, dirs_exist_ok=True)
    laid_out["0a1b2c3d-4e5f-4061-8071-2a3b4c5d6e7f"] = other / "0a1b2c3d-4e5f-4061-8071-2a3b4c5d6e7f.jsonl"
    return laid_out


def read_log(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(row["log_path"]).read_text().splitlines()]


def test_claude_transcripts_and_subagents_are_imported_once(home: Path) -> None:
    laid_out = claude_home(home)

    summary = backfill_json(home, "--provider", "claude")["claude"]

    assert (summary["sessions_seen"], summary["imported"], summary["unchanged"]) == (len(laid_out), len(laid_out), 0)
    listed = {row["provider_session_id"]: row for row in sessions_json(home)}
    assert set(listed) == set(laid_out)
    assert all(row["backfilled"] and row["state"] == "exited" and row["provider"] == "claude"
               for row in listed.values())
    resumed = listed["c36f1599-3e90-4feb-bf2a-29662e126d78"]     # 429, then resumed
    assert resumed["cwd"] == "/srv/demo_claude/proj"
    assert resumed["model"] == "claude-opus-4-8"   # the real model, not the 429 placeholder "<synthetic>"
    assert resumed["started_at"] < resumed["ended_at"]
    log = read_log(resumed)
    assert log[0]["type"] == "session_started" and log[0]["backfilled"] is True
    assert log[0]["cwd"] == "/srv/demo_claude/proj"
    assert [event["seq"] for event in log] == list(range(1, len(log) + 1))
    assert {event["source"] for event in log} == {"backfill"}
    hits = [event for event in log if event["type"] == "usage_limit_hit"]
    assert hits and all(hit["scheduled_resume_at"] is None and hit["incident_id"] for hit in hits)
    with_subagent = read_log(listed["0a1b2c3d-4e5f-4061-8071-2a3b4c5d6e7f"])
    assert any(event.get("is_sidechain") for event in with_subagent)
    assert sum(event["type"] == "session_started" for event in with_subagent) == 1

    again = backfill_json(home, "--provider", "claude")["claude"]
    assert (again["imported"], again["updated"], again["unchanged"], again["events"]) == (0, 0, len(laid_out), 0)


def test_claude_transcript_that_grew_gets_only_its_new_records(home: Path) -> None:
    laid_out = claude_home(home)
    target = laid_out["c1ed8895-4d43-4a7c-b1f8-80fd08a976d0"]
    lines = target.read_text().splitlines(keepends=True)
    half = len(lines) // 2
    target.write_text("".join(lines[:half]))
    backfill_json(home, "--provider", "claude")
    before = read_log({row["provider_session_id"]: row for row in sessions_json(home)}
                      ["c1ed8895-4d43-4a7c-b1f8-80fd08a976d0"])

    with open(target, "a") as handle:
        handle.write("".join(lines[half:]))
    summary = backfill_json(home, "--provider", "claude")["claude"]

    assert (summary["imported"], summary["updated"]) == (0, 1)
    row = {row["provider_session_id"]: row for row in sessions_json(home)}["c1ed8895-4d43-4a7c-b1f8-80fd08a976d0"]
    after = read_log(row)
    assert after[:len(before)] == before
    assert [event["seq"] for event in after] == list(range(1, len(after) + 1))
    assert row["last_seq"] == len(after)

    # the same transcript imported whole in one go gives the same events
    whole_home = home.parent / "whole"
    whole_home.mkdir()
    claude_home(whole_home)
    env_home = os.environ["ZAG_HOME"]
    os.environ["ZAG_HOME"] = str(whole_home / "zag")
    try:
        backfill_json(whole_home, "--provider", "claude")
        whole = read_log({row["provider_session_id"]: row for row in sessions_json(whole_home)}
                         ["c1ed8895-4d43-4a7c-b1f8-80fd08a976d0"])
    finally:
        os.environ["ZAG_HOME"] = env_home

    def strip(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [(e["seq"], e["type"], e["ts"], e.get("text"), e.get("tool_id")) for e in events]

    assert strip(after) == strip(whole)


# --- a session zag supervised live is continued, not imported again ------------------------------------
def claude_record(session_id: str, kind: str, text: str, second: int) -> dict[str, Any]:
    record: dict[str, Any] = {
        "parentUuid": None, "isSidechain": False, "type": kind, "uuid": f"{session_id[:8]}-{kind}-{second}",
        "timestamp": f"2026-11-22T14:50:{second:02d}.000Z", "cwd": "/w", "sessionId": session_id,
        "version": "2.1.197", "userType": "external", "entrypoint": "cli",
    }
    if kind == "user":
        record["message"] = {"role": "user", "content": text}
    else:
        record["message"] = {"id": f"msg_{second}", "type": "message", "role": "assistant",
                             "model": "claude-sonnet-5", "content": [{"type": "text", "text": text}],
                             "usage": {"input_tokens": 3, "output_tokens": 2}}
        record["requestId"] = f"req_{second}"
    return record


def test_a_session_supervised_live_is_continued_not_imported_twice(tmp_path: Path, home: Path) -> None:
    from tests.integration.helpers import Agent

    agent = Agent(tmp_path / "agent", Path(os.environ["ZAG_HOME"]))
    config = home / ".claude"
    transcript = "{env:CLAUDE_CONFIG_DIR}/projects/-w/{session_id}.jsonl"
    agent.script([
        {"mkdir": "{env:CLAUDE_CONFIG_DIR}/projects/-w"},
        {"append": transcript, "lines": [
            claude_record("{session_id}", "user", "say hi", 1),
            claude_record("{session_id}", "assistant", "hi there", 2),
        ]},
        {"sleep": 1.0},
        {"out": "hi there\n"},
        {"exit": 0},
    ])
    env = agent.env(HOME=str(home), CLAUDE_CONFIG_DIR=str(config))
    done = subprocess.run(agent.command("run", "claude", "-p", "say hi"), env=env, capture_output=True,
                          timeout=60, stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [live] = sessions_json(home)
    live_log = read_log(live)
    assert [e["type"] for e in live_log if e["type"] in ("user_message", "assistant_message")] == \
        ["user_message", "assistant_message"]
    [path] = list((config / "projects" / "-w").glob("*.jsonl"))
    session_id = path.stem
    assert live["provider_session_id"] == session_id

    def backfill() -> dict[str, Any]:
        done = subprocess.run([sys.executable, "-m", "zag", "backfill", "--provider", "claude", "--json"],
                              env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["providers"][0]

    from zag.logs.index import Index

    with Index() as index:   # the supervisor left its reader's cursor under the live session
        assert [row[1] for row in index.backfill_fingerprints("claude").values()] == [live["session_id"]]
    first = backfill()
    assert (first["sessions_seen"], first["imported"], first["events"]) == (1, 0, 0)
    assert read_log(live) == live_log

    # the user went on with plain `claude --resume` (no zag): only that is appended, to the same session
    with open(path, "a") as handle:
        for record in (claude_record(session_id, "user", "and then?", 30),
                       claude_record(session_id, "assistant", "then this", 31)):
            handle.write(json.dumps(record) + "\n")
    grown = backfill()
    assert (grown["imported"], grown["updated"]) == (0, 1)
    [row] = sessions_json(home)
    assert row["session_id"] == live["session_id"]
    after = read_log(row)
    assert after[:len(live_log)] == live_log
    appended = after[len(live_log):]
    assert [e["type"] for e in appended if e["type"] in ("user_message", "assistant_message")] == \
        ["user_message", "assistant_message"]
    assert all(e["source"] == "backfill" for e in appended)
    assert [e["seq"] for e in after] == list(range(1, len(after) + 1))
    assert backfill()["events"] == 0


# --- config problems are said, and what is usable still applies ------------------------------------------
def test_a_bad_redaction_pattern_is_reported_and_the_good_ones_redact(home: Path) -> None:
    session_id = "5e5e5e5e-1111-4111-8111-000000000001"
    project = home / ".claude" / "projects" / "-w"
    project.mkdir(parents=True)
    (project / f"{session_id}.jsonl").write_text(
        json.dumps(claude_record(session_id, "user", "use secret-123 for the corp-token-(", 1)) + "\n")
    zag_home = Path(os.environ["ZAG_HOME"])
    write_config(zag_home, '[redaction]\nextra_patterns = ["corp-token-(", "secret-[0-9]+"]\n')

    done = zag(home, "backfill", "--provider", "claude")

    assert done.returncode == 0, done.stderr
    [problem] = done.stderr.splitlines()
    assert problem.startswith("zag: config: ") and "'corp-token-(' is not a valid regex" in problem
    [row] = sessions_json(home)
    [message] = [event for event in read_log(row) if event["type"] == "user_message"]
    assert message["content"] == "use [REDACTED:custom] for the corp-token-("
