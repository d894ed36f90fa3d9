"""Interactive runs (a real terminal through pexpect) of each agent's TUI hitting its usage limit: zag
waits (`zag ps --json` shows it), clears what the CLI put in the way (claude's rate-limit dialog, codex's
model-switch popup, gemini's quota dialog; goose opens none), types the resume message with the
provider's keystrokes, and sees the session continue; all in one log, exit 0. Also: an agent that quit
during the wait is relaunched with its resume flag and the message typed once its TUI is ready."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from tests.integration import limits_rig as L
from tests.integration.helpers import assert_valid_log
from zag.logs.events import parse_ts


def _in_place(rig: L.Rig, *args: str) -> tuple[int, dict[str, Any], str]:
    term = rig.spawn("run", rig.provider, *args)
    try:
        term.expect_exact("hit its usage limit")
        waiting = rig.waiting_row(term)
        code = L.finish(term)
    finally:
        if term.isalive():
            term.terminate(force=True)
    return code, waiting, term.before.decode("utf-8", "replace") if isinstance(term.before, bytes) else ""


def _check(rig: L.Rig, code: int, waiting: dict[str, Any], answer: str) -> dict[str, Any]:
    """What every in-place resume must show; returns the hit."""
    assert code == 0
    events = rig.log()
    assert_valid_log(events)
    assert events[0]["interactive"] is True
    [hit] = L.of_type(events, "usage_limit_hit")
    [resumed] = L.of_type(events, "usage_limit_resumed")
    assert (resumed["incident_id"], resumed["attempt"], resumed["resume_message"]) == (hit["incident_id"], 1,
                                                                                      "Continue")
    assert not L.of_type(events, "usage_limit_resume_failed")
    assert abs(waiting["resume_at"] - parse_ts(hit["scheduled_resume_at"])) < 0.01
    assert waiting["session_id"] == events[0]["session_id"]
    assert len(rig.invocations()) == 1  # typed into the running agent: no relaunch
    contents = [e["content"] for e in L.of_type(events, "assistant_message") if not e.get("api_error")]
    assert contents[-1] == answer
    seqs = {e["type"]: e["seq"] for e in events}
    assert seqs["usage_limit_hit"] < seqs["usage_limit_resumed"] < seqs["session_ended"]
    [resume] = rig.resume_rows()
    assert (resume["status"], resume["attempts"]) == ("done", 1)
    [row] = rig.agent.index_rows()
    assert (row["state"], row["exit_code"]) == ("exited", 0)
    return hit


def test_claude_dialog_answered_then_message_typed(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "claude")
    rig.script(L.claude_tui_in_place(rig, time.time()))
    code, waiting, _ = _in_place(rig)
    hit = _check(rig, code, waiting, "Picking up where I stopped.")
    assert hit["scope"] == "session" and hit["fallback_used"] is False
    assert hit["raw"].startswith("You've hit your session limit · resets ")
    # "resets <the minute before>": its end is already past when seen, so a short settle delay, not tomorrow
    assert parse_ts(hit["scheduled_resume_at"]) - parse_ts(hit["ts"]) < 10


def test_codex_popup_kept_model_then_message_pasted(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "codex")
    thread = str(uuid.uuid4())
    reset = time.time() + 5
    rig.script(L.codex_tui_in_place(rig, thread, reset))
    code, waiting, _ = _in_place(rig)
    hit = _check(rig, code, waiting, "Continuing the fix.")
    assert abs(parse_ts(hit["reset_at"]) - reset) < 1.5 and hit["scope"] == "session"
    assert {e["provider_session_id"] for e in rig.log() if e["type"] == "assistant_message"} == {thread}


def test_gemini_dialog_stopped_then_message_typed_after_the_fallback_wait(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "gemini")
    rig.script(L.gemini_tui_in_place(rig))
    code, waiting, _ = _in_place(rig)
    hit = _check(rig, code, waiting, "Continuing with the fix.")
    assert hit["reset_at"] is None and hit["fallback_used"] is True  # the dialog names no reset time
    assert hit["raw"].startswith("Usage limit reached for gemini-3.5-flash-lite.")
    delay = parse_ts(hit["scheduled_resume_at"]) - parse_ts(hit["ts"])
    assert 2.0 <= delay <= 3.5  # fallback_secs = 3


def test_gemini_that_retries_its_prompt_once_the_dialog_is_closed_still_gets_the_message(
        tmp_path: Path, zag_home: Path) -> None:
    """The real gemini may answer the prompt it was on once zag closed its quota dialog at the due time: that
    answer is zag's doing, not the session going on without zag, so the resume goes on (the message is typed)."""
    rig = L.Rig(tmp_path, zag_home, "gemini")
    rig.script(L.gemini_tui_in_place(rig, retry_after_stop=True))
    code, waiting, _ = _in_place(rig)
    _check(rig, code, waiting, "Continuing with the fix.")
    assert not [e for e in L.of_type(rig.log(), "provider_status") if e["source"] == "wrapper"]


def test_goose_message_typed_at_its_prompt(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "goose")
    rig.script(L.goose_tui_in_place(rig))
    code, waiting, _ = _in_place(rig, "session")
    hit = _check(rig, code, waiting, "Continuing.")
    assert hit["reset_at"] is not None and hit["fallback_used"] is False  # "please retry in 4s"
    assert rig.invocations()[0]["argv"][:2] == ["session", "--name"]


def test_claude_that_quit_during_the_wait_is_relaunched_and_the_message_typed(tmp_path: Path,
                                                                               zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "claude")
    relaunched = [
        {"raw_tty": True},
        {"out": "╭─ Claude Code ─╮\r\n"},
        {"sleep": 0.3},
        {"out": "\r\n❯ \r\n  ? for shortcuts\r\n"},  # the TUI is ready once its output settles
        *L.claude_tui_resumed(rig),
    ]
    rig.script([*L.claude_tui_hit(rig, time.time()), {"out": "\r\nResume this session with:\r\nclaude --resume "
                                                              "{session_id}\r\n"}, {"exit": 0}], relaunched)
    code, waiting, _ = _in_place(rig)
    assert code == 0
    first, second = rig.invocations()
    sid = first["argv"][1]
    assert second["argv"] == ["--resume", sid]  # interactive resume: the message is typed, not passed
    events = rig.log()
    assert_valid_log(events)
    [hit] = L.of_type(events, "usage_limit_hit")
    [resumed] = L.of_type(events, "usage_limit_resumed")
    assert resumed["incident_id"] == hit["incident_id"] and resumed["attempt"] == 1
    assert abs(waiting["resume_at"] - parse_ts(hit["scheduled_resume_at"])) < 0.01
    assert [e["content"] for e in L.of_type(events, "assistant_message") if not e.get("api_error")] == [
        "Picking up where I stopped."]
    [row] = rig.agent.index_rows()
    assert row["child_pid"] == second["pid"] and row["state"] == "exited"


def test_terminal_ctrl_c_while_waiting_without_an_agent_cancels(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "claude", config=L.CONFIG.replace("fallback_secs = 3", "fallback_secs = 600"))
    rig.script([{"raw_tty": True}, {"out": "API Error: Request rejected (429) · This request would exceed your "
                                          "account's rate limit. Please try again later.\r\n"}, {"exit": 1}])
    term = rig.spawn("run", "claude")
    try:
        term.expect_exact("hit its usage limit")
        rig.waiting_row(term)
        term.send("\x03")  # the terminal is the user's again (cooked): Ctrl-C is SIGINT for zag
        code = L.finish(term)
    finally:
        if term.isalive():
            term.terminate(force=True)
    assert code == 1  # the agent's last exit code
    events = rig.log()
    assert_valid_log(events)
    [hit] = L.of_type(events, "usage_limit_hit")
    assert hit["fallback_used"] is True and hit["reset_at"] is None  # API-key 429s give no reset
    assert events[-1]["cancelled"] is True and events[-1]["exit_code"] == 1
    assert [r["status"] for r in rig.resume_rows()] == ["cancelled"]
    assert len(rig.invocations()) == 1
    [row] = rig.agent.index_rows()
    assert row["end_reason"] == "cancelled"


def test_claude_hit_again_after_the_typed_resume_says_when_the_next_attempt_is(tmp_path: Path,
                                                                                 zag_home: Path) -> None:
    """In place, the limit hit again right after the message was typed: attempt 1 failed, and its event
    names the new incident's resume (not "no further attempt"), which then continues the session."""
    rig = L.Rig(tmp_path, zag_home, "claude")
    again = L.claude_limit_text(time.time() - 120)  # another past reset: a repeat, resumed after a back-off
    rig.script([
        *L.claude_tui_hit(rig, time.time()),
        {"expect": "\r", "timeout": 60},                     # zag answers the dialog
        {"out": "\r\n❯ \r\n  ? for shortcuts\r\n"},
        {"expect": f"{L.MESSAGE}\r", "timeout": 60},         # attempt 1 typed ...
        {"append": L.claude_transcript(rig), "lines": [L.claude_user(rig, L.MESSAGE),
                                                       L.claude_limit_record(rig, again)]},
        {"out": f"  ⎿  {again}\r\n"},                        # ... and the limit is hit again
        {"out": L.CLAUDE_DIALOG},
        {"expect": "\r", "timeout": 60},
        {"out": "\r\n❯ \r\n  ? for shortcuts\r\n"},
        *L.claude_tui_resumed(rig),                          # attempt 2 continues the session
    ])
    code, _, _ = _in_place(rig)
    assert code == 0
    events = rig.log()
    assert_valid_log(events)
    first, second = L.of_type(events, "usage_limit_hit")
    [failed] = L.of_type(events, "usage_limit_resume_failed")
    assert (failed["incident_id"], failed["attempt"]) == (first["incident_id"], 1)
    assert failed["next_resume_at"] == second["scheduled_resume_at"] is not None
    assert failed["next_incident_id"] == second["incident_id"] and second["repeat_of"] == first["incident_id"]
    [resumed] = L.of_type(events, "usage_limit_resumed")
    assert (resumed["incident_id"], resumed["attempt"]) == (second["incident_id"], 2)
    assert len(rig.invocations()) == 1
    statuses = {r["incident_id"]: r["status"] for r in rig.resume_rows()}
    assert statuses == {first["incident_id"]: "failed", second["incident_id"]: "done"}


def test_claude_the_user_continued_during_the_wait_gets_no_resume_typed(tmp_path: Path, zag_home: Path) -> None:
    """During the wait the user goes on in the agent (another model, extra usage) and gets an answer: the
    incident closes as the session going on by itself, and zag types nothing into the agent at the reset
    (a `Continue` typed hours later into a session in use would land in whatever the user is typing)."""
    rig = L.Rig(tmp_path, zag_home, "claude", config=L.CONFIG + "max_wait_secs = 6\n")  # resume due in 6 s
    text = L.claude_limit_text(time.time() + 3600)
    path = L.claude_transcript(rig)
    rig.script([
        {"raw_tty": True},
        {"out": "╭─ Claude Code ─╮\r\n❯ fix the bug\r\n"},
        {"append": path, "lines": [L.claude_user(rig, "fix the bug"), L.claude_limit_record(rig, text)]},
        {"out": f"  ⎿  {text}\r\n"},
        {"expect": "go on with sonnet\r", "timeout": 60},
        {"append": path, "lines": [L.claude_user(rig, "go on with sonnet"), L.claude_assistant(rig, "On it.")]},
        {"out": "● On it.\r\n"},
        {"sleep": 10},                      # past the resume's due time
        {"exit": 0},
    ])
    term = rig.spawn("run", "claude")
    try:
        term.expect_exact("hit its usage limit")
        rig.waiting_row(term)
        term.send("go on with sonnet\r")
        term.expect_exact("no resume needed")
        [row] = rig.zag_json("ps", "--json")
        assert (row["state"], row["resume_at"]) == ("running", None)
        assert L.seen_live(rig) == L.seen_reindexed(rig, tmp_path / "copy")  # the log alone says the same
        code = L.finish(term)
    finally:
        if term.isalive():
            term.terminate(force=True)
    assert code == 0
    events = rig.log()
    assert_valid_log(events)
    [hit] = L.of_type(events, "usage_limit_hit")
    assert not L.of_type(events, "usage_limit_resume_failed") and not L.of_type(events, "usage_limit_resumed")
    [note] = [e for e in L.of_type(events, "provider_status") if e["source"] == "wrapper"]
    assert note["data"]["kind"] == "usage_limit_recovered" and note["data"]["incident_id"] == hit["incident_id"]
    [resume] = rig.resume_rows()
    assert (resume["status"], resume["attempts"]) == ("done", 0)
    assert len(rig.invocations()) == 1
