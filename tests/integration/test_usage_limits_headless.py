"""Headless runs of each agent hitting its usage limit with the reset a few seconds ahead: the hit, the
wait (`zag ps --json` shows the session waiting with its resume time), the resume argv (the agent's own
resume flag for the same session, in the original cwd, the user's other flags kept), the verified
continuation, all in one log and one index row, exit 0."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration import limits_rig as L
from tests.integration.helpers import assert_valid_log, types, wait_until
from zag.logs.events import parse_ts


def _run_through(rig: L.Rig, *args: str) -> tuple[Any, dict[str, Any]]:
    """Start `zag run`, see it waiting in `zag ps --json`, let it finish."""
    proc = rig.start("run", rig.provider, *args)
    try:
        waiting = rig.waiting_row(proc)
        out, err = proc.communicate(timeout=L.RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    proc.stdout_bytes, proc.stderr_bytes = out, err  # type: ignore[attr-defined]
    return proc, waiting


def _check_common(rig: L.Rig, proc: Any, waiting: dict[str, Any], *, reset: float | None) -> dict[str, Any]:
    assert proc.returncode == 0, proc.stderr_bytes.decode()
    events = rig.log()
    assert_valid_log(events)
    [hit] = L.of_type(events, "usage_limit_hit")
    [resumed] = L.of_type(events, "usage_limit_resumed")
    assert resumed["incident_id"] == hit["incident_id"] and resumed["attempt"] == 1
    assert resumed["resume_message"] == L.MESSAGE
    assert not L.of_type(events, "usage_limit_resume_failed")
    kinds = types(events)
    assert kinds.index("usage_limit_hit") < kinds.index("usage_limit_resumed") < kinds.index("session_ended")
    scheduled = parse_ts(hit["scheduled_resume_at"])
    if reset is not None:
        assert hit["fallback_used"] is False
        assert abs(parse_ts(hit["reset_at"]) - reset) < 1.5
        assert reset - 1.5 <= scheduled <= reset + 0.5 + 1.5  # reset + jitter (0.5 s here)
    # while waiting, `zag ps` showed the session waiting until the scheduled time
    assert waiting["session_id"] == events[0]["session_id"] and abs(waiting["resume_at"] - scheduled) < 0.01
    beats = [e for e in L.of_type(events, "heartbeat") if e.get("state") == "waiting"]
    assert beats and all(b["incident_id"] == hit["incident_id"] for b in beats)
    assert beats[0]["resume_at"] == hit["scheduled_resume_at"] and beats[0]["remaining_secs"] >= 0
    # the resume started at (not before) the scheduled time
    second_start = rig.invocations()[1]
    assert len(rig.invocations()) == 2 and second_start["cwd"] == str(rig.cwd)
    assert second_start["env"]["ZAG_SESSION_ID"] == events[0]["session_id"]
    [row] = rig.agent.index_rows()
    assert row["state"] == "exited" and row["exit_code"] == 0 and row["resume_at"] is None
    assert row["last_seq"] == events[-1]["seq"]
    [resume] = rig.resume_rows()
    assert (resume["incident_id"], resume["status"], resume["attempts"]) == (hit["incident_id"], "done", 1)
    assert events[-1]["exit_code"] == 0 and "cancelled" not in events[-1]
    line = [text for text in proc.stderr_bytes.decode().splitlines() if "usage limit" in text]
    assert len(line) == 1 and f"zag usage cancel {hit['incident_id'][:8]}" in line[0]
    return hit


def test_claude(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "claude")
    reset = time.time() + 4
    rig.script(L.claude_headless_hit(rig, reset), L.claude_headless_resumed(rig))
    proc, waiting = _run_through(rig, *L.CLAUDE_HEADLESS_ARGS)
    hit = _check_common(rig, proc, waiting, reset=reset)
    first, second = rig.invocations()
    sid = first["argv"][1]
    assert first["argv"] == ["--session-id", sid, *L.CLAUDE_HEADLESS_ARGS]
    assert second["argv"] == ["-p", "--resume", sid, "--output-format", "stream-json", "--verbose", "--", "Continue"]
    assert hit["scope"] == "session" and hit["raw"] == L.claude_limit_text(reset)
    events = rig.log()
    messages = [(e["type"], e["content"]) for e in events if e["type"] in ("user_message", "assistant_message")
                and not e.get("api_error")]
    assert messages == [("user_message", "fix the bug"), ("user_message", "Continue"),
                        ("assistant_message", "Picking up where I stopped.")]
    assert {e["provider_session_id"] for e in events} == {sid}
    # stdout went to the user untouched: both runs' stream-json lines
    lines = [json.loads(line) for line in proc.stdout_bytes.decode().splitlines()]
    assert [line["type"] for line in lines] == ["system", "rate_limit_event", "result", "result"]


def test_codex(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "codex")
    thread = str(uuid.uuid4())
    reset = time.time() + 4
    rig.script(L.codex_headless_hit(rig, thread, reset), L.codex_headless_resumed(rig, thread))
    proc, waiting = _run_through(rig, *L.CODEX_HEADLESS_ARGS)
    hit = _check_common(rig, proc, waiting, reset=reset)
    first, second = rig.invocations()
    assert first["argv"] == L.CODEX_HEADLESS_ARGS
    assert second["argv"] == ["exec", "--json", "resume", thread, "Continue"]
    assert hit["scope"] == "session"  # the 300-minute window is the used-up one
    assert hit["raw"].startswith("You’ve hit your usage limit.")
    events = rig.log()
    messages = [(e["type"], e["content"]) for e in events if e["type"] in ("user_message", "assistant_message")]
    assert messages == [("user_message", "fix the bug"), ("user_message", "Continue"),
                        ("assistant_message", "Continuing the fix.")]
    assert {e["provider_session_id"] for e in events[2:]} == {thread}


def test_gemini_whose_only_turn_failed_runs_the_original_command_again(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "gemini")
    before = time.time()
    rig.script(L.gemini_headless_hit(rig), L.gemini_headless_rerun(rig))
    proc, waiting = _run_through(rig, *L.GEMINI_HEADLESS_ARGS)
    hit = _check_common(rig, proc, waiting, reset=None)
    assert before + 4 <= parse_ts(hit["reset_at"]) <= time.time() + 4  # "Please retry in 4s"
    first, second = rig.invocations()
    old, new = first["argv"][1], second["argv"][1]
    assert first["argv"] == ["--session-id", old, *L.GEMINI_HEADLESS_ARGS]
    # nothing of that session can be resumed (the prompt was rolled back): the original command, anew
    assert second["argv"] == ["--session-id", new, *L.GEMINI_HEADLESS_ARGS] and new != old
    events = rig.log()
    [cleared] = L.of_type(events, "session_cleared")
    assert (cleared["old_session_id"], cleared["new_session_id"]) == (old, new)
    assert [(e["content"], e["provider_session_id"]) for e in L.of_type(events, "assistant_message")] == [
        ("Fixed it.", new)]
    assert proc.returncode == 0


def test_goose(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "goose")
    before = time.time()
    rig.script(L.goose_headless_hit(rig), L.goose_headless_resumed(rig))
    proc, waiting = _run_through(rig, *L.GOOSE_HEADLESS_ARGS)
    hit = _check_common(rig, proc, waiting, reset=None)
    assert before + 3 <= parse_ts(hit["reset_at"]) <= time.time() + 4  # "please retry in 4s"
    first, second = rig.invocations()
    zag_id = first["env"]["ZAG_SESSION_ID"]
    assert first["argv"] == ["run", "--name", f"zag-{zag_id}", "-t", "fix the bug"]
    assert second["argv"] == ["run", "--resume", "--session-id", L.GOOSE_SID, "-t", "Continue"]
    # `raw` is the first report's text: the line goose printed, or (when zag read the database first, as
    # under load) the whole error message goose stored
    stored = L.goose_error_text(L.GOOSE_DETAILS)
    assert (hit["source"], hit["raw"]) in [("stdout", stored.splitlines()[0]), ("provider_file", stored)], hit
    events = rig.log()
    assert [e["content"] for e in L.of_type(events, "assistant_message")] == ["Continuing."]
    # goose's own error message is no assistant message: the resume could not be mistaken for progress
    assert any(e["type"] == "provider_status" and e.get("message") == "goose error" for e in events)


@pytest.mark.parametrize("provider", ["claude"])
def test_resume_disabled_still_records_the_hit(tmp_path: Path, zag_home: Path, provider: str) -> None:
    rig = L.Rig(tmp_path, zag_home, provider, config=L.CONFIG + "[usage_limits.providers.claude]\nenabled = false\n")
    reset = time.time() + 600
    rig.script(L.claude_headless_hit(rig, reset), L.claude_headless_resumed(rig))
    result = rig.run("run", "claude", *L.CLAUDE_HEADLESS_ARGS)
    assert result.returncode == 1
    events = rig.log()
    assert_valid_log(events)
    [hit] = L.of_type(events, "usage_limit_hit")
    assert hit["scheduled_resume_at"] is None and abs(parse_ts(hit["reset_at"]) - reset) < 1.5
    assert len(rig.invocations()) == 1 and rig.resume_rows() == []
    assert not [e for e in L.of_type(events, "heartbeat") if e.get("state") == "waiting"]
    [row] = rig.agent.index_rows()
    assert row["state"] == "exited" and row["exit_code"] == 1
    assert "Automatic resume is off" in result.stderr.decode()


def test_a_resume_in_progress_reads_the_same_after_a_reindex(tmp_path: Path, zag_home: Path) -> None:
    """While the resumed agent runs, `zag usage list` shows its incident `resuming` and `zag ps` the
    session running; `zag reindex` of the log alone says the same (the attempt's start is logged)."""
    rig = L.Rig(tmp_path, zag_home, "claude")
    rig.script(L.claude_headless_hit(rig, time.time() + 2), [{"sleep": 6}, *L.claude_headless_resumed(rig)])
    proc = rig.start("run", "claude", *L.CLAUDE_HEADLESS_ARGS)
    try:
        rig.waiting_row(proc)
        def resuming() -> tuple[Any, Any] | None:
            live = L.seen_live(rig)
            if [status for status, _ in live[0].values()] != ["resuming"]:
                return None
            return live, L.seen_reindexed(rig, tmp_path / "copy")
        live, reindexed = wait_until(resuming, 30, interval=0.05, message="the incident resuming")
        out, err = proc.communicate(timeout=L.RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, err.decode()
    assert live[1] == ("running", None) and reindexed == live
    [started] = L.of_type(rig.log(), "usage_limit_resume_started")
    [hit] = L.of_type(rig.log(), "usage_limit_hit")
    assert (started["incident_id"], started["attempt"]) == (hit["incident_id"], 1)
