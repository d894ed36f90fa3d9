"""Interactive gemini whose only turn hit the limit: gemini rolled the prompt back (its chat file holds the
`user` record, then a `$set` that drops it), so its session has nothing to `--resume` and the resume
message would reach a conversation that never saw the prompt. zag sends that prompt again instead, in
place (the TUI still on screen) and after `zag resume` re-ran plain `gemini`; when it finds no prompt
(the chat file is gone), it says so in one line and types nothing into the new chat."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.fixtures.gemini import geminilib as g
from tests.integration import limits_rig as L

PROMPT = "fix the bug"
ANSWER = "Fixed the bug."
CONFIG = L.CONFIG.replace("fallback_secs = 3", "fallback_secs = 6")
PROMPT_LINE = "\r\n > Type your message or @path/to/file\r\n"


def _only_turn_fails(rig: L.Rig) -> list[dict[str, Any]]:
    """gemini's TUI: the first prompt hits the quota (rolled back in the chat file), its dialog opens."""
    context = g.context("{now}")
    return [
        {"raw_tty": True},
        {"append": L.gemini_chat(rig), "lines": [L._gemini(g.meta("{session_id}", "{now}")),
                                                 L._gemini(g.set_(messages=[context])),
                                                 L._gemini(g.user("u1", PROMPT, "{now}")),
                                                 L._gemini(g.set_(messages=[context]))]},
        {"out": f"> {PROMPT}\r\n"},
        {"out": L.GEMINI_DIALOG},
    ]


def _answers_the_prompt(rig: L.Rig, timeout: float = 30) -> list[dict[str, Any]]:
    return [
        {"expect": f"{PROMPT}\r", "timeout": timeout},
        {"append": L.gemini_chat(rig), "lines": [L._gemini(g.user("u9", PROMPT, "{now}")),
                                                 L._gemini(g.gemini("a9", ANSWER, "{now}", tokens=g.tokens()))]},
        {"out": f"✦ {ANSWER}\r\n"},
        {"exit": 0},
    ]


def _fresh_tui(rig: L.Rig) -> list[dict[str, Any]]:
    """Plain `gemini` run again: a new session, its prompt on screen."""
    return [{"raw_tty": True},
            {"append": L.gemini_chat(rig), "lines": [L._gemini(g.meta("{session_id}", "{now}")),
                                                     L._gemini(g.set_(messages=[g.context("{now}")]))]},
            {"out": PROMPT_LINE}]


def _resume_in_a_terminal(rig: L.Rig, session_id: str) -> tuple[int, str]:
    term = rig.spawn("resume", session_id[:8])
    try:
        term.expect(L.pexpect.EOF, timeout=90)
        shown = term.before.decode(errors="replace")
    finally:
        term.close(force=True)
    assert term.signalstatus is None, shown
    return term.exitstatus, shown


def test_in_place_the_dropped_prompt_is_sent_again(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "gemini")
    rig.script([*_only_turn_fails(rig), {"expect": "2", "timeout": 60}, {"out": PROMPT_LINE},
                *_answers_the_prompt(rig)])
    term = rig.spawn("run", "gemini")
    code = L.finish(term)
    assert code == 0
    events = rig.log()
    [resumed] = L.of_type(events, "usage_limit_resumed")
    assert resumed["resume_message"] == PROMPT
    assert [e["content"] for e in L.of_type(events, "assistant_message")] == [ANSWER]


def test_zag_resume_after_a_kill_sends_the_dropped_prompt_to_the_re_run(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "gemini", config=CONFIG)
    rig.script([*_only_turn_fails(rig), {"wait_signal": 60}], [*_fresh_tui(rig), *_answers_the_prompt(rig)])
    waiting = rig.killed_while_waiting_in_a_terminal("gemini")

    code, shown = _resume_in_a_terminal(rig, waiting["session_id"])

    assert code == 0, shown
    first, second = rig.invocations()
    assert "--resume" not in second["argv"] and second["argv"][0] == "--session-id"
    assert second["argv"][1] != first["argv"][1]   # the re-run is a new gemini session
    assert "sending its prompt again" in shown
    events = rig.log()
    [resumed] = L.of_type(events, "usage_limit_resumed")
    assert resumed["resume_message"] == PROMPT
    assert [e["content"] for e in L.of_type(events, "assistant_message")] == [ANSWER]
    assert [r["status"] for r in rig.resume_rows()] == ["done"]


def test_zag_resume_with_no_prompt_to_send_says_so_and_types_nothing(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "gemini",
                config=CONFIG.replace("verify_secs = 20", "verify_secs = 2").replace("retry_secs = 1",
                                                                                       "retry_secs = 1"))
    # the re-run exits 97 if nothing is typed within 8 s (verify_secs + retry_secs + slack), 5 if anything is
    rig.script([*_only_turn_fails(rig), {"wait_signal": 60}],
               [*_fresh_tui(rig), {"expect": "\r", "timeout": 8}, {"exit": 5}])
    waiting = rig.killed_while_waiting_in_a_terminal("gemini")
    for chat in rig.chats.iterdir():   # gemini's session cleanup removed the failed session's file
        chat.unlink()

    code, shown = _resume_in_a_terminal(rig, waiting["session_id"])

    assert code == 97, shown
    assert shown.count("nothing is typed into it") == 1, shown
    assert len(rig.invocations()) == 2
    events = rig.log()
    assert not L.of_type(events, "usage_limit_resumed") and not L.of_type(events, "usage_limit_resume_failed")
    notes = [e["data"] for e in L.of_type(events, "provider_status") if e["source"] == "wrapper"
             and e["data"].get("kind") == "usage_limit_cancelled"]
    assert [n["cause"] for n in notes] == ["nothing_to_resume"]
    assert [r["status"] for r in rig.resume_rows()] == ["cancelled"]
