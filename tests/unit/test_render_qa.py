"""QA of what `zag listen` / `zag events` / `zag ps` / `zag sessions` print: nothing an agent wrote may reach
the user's terminal as a control sequence, every event renders on one line that fits the width."""

from __future__ import annotations

import re

from zag.cli import render
from zag.logs import events

# a terminal title (OSC 2) in a transcript's `timestamp`, 24 characters with `T`, `.` and `Z` where
# zag's own format has them
TITLE_IN_A_TIMESTAMP = "\x1b]2;owned\x07T12:00:00.000Z"
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def test_a_timestamp_that_only_looks_like_ours_is_not_taken_as_ours() -> None:
    assert len(TITLE_IN_A_TIMESTAMP) == 24
    assert events.normalize_ts(TITLE_IN_A_TIMESTAMP) is None
    assert events.normalize_ts("2026-12-07T03:14:00.123Z") == "2026-12-07T03:14:00.123Z"
    assert events.normalize_ts(" 2026-12-07T03:14:00.123Z ") == "2026-12-07T03:14:00.123Z"
    assert events.normalize_ts("2026-12-07T03:14:00.123+00:00") == "2026-12-07T03:14:00.123Z"


def test_an_unreadable_ts_is_printed_without_its_control_characters() -> None:
    """A log written before the fix above (or edited by hand) keeps such a `ts`: the event line shows it
    inert."""
    event = {"seq": 3, "ts": TITLE_IN_A_TIMESTAMP, "provider": "claude\x1b[2J", "source": "provider_file",
             "type": "assistant_message", "content": "hello"}
    for width in (0, 80):
        line = render.format_event(event, render.Style(False), width=width)
        assert not CONTROL.search(line), repr(line)
        assert "hello" in line


def test_a_type_this_zag_does_not_know_is_shown_generically_within_the_width() -> None:
    event = {"seq": 9, "ts": "2026-12-07T03:14:00.123Z", "provider": "claude", "source": "wrapper",
             "type": "usage_limit_resume_deferred\x1b]0;x\x07", "until": "x" * 500}
    line = render.format_event(event, render.Style(False), width=80)
    assert render.text_width(line) <= 80, line
    assert "usage_limit_resume_deferred" in line and '{"until":"xxx' in line
    assert not CONTROL.search(line)


def test_a_cwd_under_a_home_reached_through_a_symlink_is_shown_with_a_tilde(tmp_path, monkeypatch) -> None:
    """HOME=/home/me with /home a symlink (to /data/home): zag records the cwd as getcwd gives it
    (/data/home/me/app), which `zag ps`, `zag sessions` and `started` lines showed in full."""
    real = tmp_path / "data" / "me"
    (real / "app").mkdir(parents=True)
    (tmp_path / "home").symlink_to(tmp_path / "data")
    monkeypatch.setenv("HOME", str(tmp_path / "home" / "me"))
    render._homes.cache_clear()
    try:
        assert render.home_path(str(real / "app")) == "~/app"
        assert render.home_path(str(tmp_path / "home" / "me" / "app")) == "~/app"
        assert render.home_path(str(real)) == "~"
        assert render.home_path(str(tmp_path / "data" / "meme")) == str(tmp_path / "data" / "meme")
        started = {"ts": "2026-12-07T03:14:00.123Z", "provider": "claude", "type": "session_started",
                   "argv": ["claude"], "cwd": str(real / "app")}
        assert render.format_event(started, render.Style(False)).endswith("claude in ~/app")
    finally:
        render._homes.cache_clear()


def test_bidirectional_overrides_in_an_agents_text_are_shown_not_obeyed() -> None:
    """U+202E (right-to-left override) and its kin reorder the rest of the line on a terminal that does
    bidirectional text ('Trojan Source'): a tool call could be shown as another command. Plain
    right-to-left text is left alone."""
    call = {"ts": "2026-12-07T03:14:00.123Z", "provider": "codex", "source": "provider_file", "type": "tool_call",
            "tool_name": "shell", "tool_kind": "shell", "input": {"command": "echo \u202e\u2066fr- mr\u2069 ok"}}
    line = render.format_event(call, render.Style(False), width=0)
    assert not re.search("[\u202a-\u202e\u2066-\u2069]", line), repr(line)
    assert "echo <202e><2066>fr- mr<2069> ok" in line
    rows = [("1", "abc\u202edef"), ("2", "שלום עולם")]
    shown = render.table(("ID", "TEXT"), rows, render.Style(False))
    assert "abc<202e>def" in shown and "שלום עולם" in shown


def test_a_tool_output_nested_deeper_than_pythons_recursion_renders() -> None:
    """`text_of` recursed two frames a level: a tool_result whose output was ~450 lists deep ended
    `zag events` / `zag listen` with a RecursionError traceback."""
    deep: object = [{"type": "text", "text": "inside"}]
    for _ in range(5000):
        deep = [deep]
    result = {"ts": "2026-12-07T03:14:00.123Z", "provider": "claude", "source": "provider_file",
              "type": "tool_result", "tool_id": "t1", "success": True, "output": deep}
    assert render.format_event(result, render.Style(False)).endswith("result        ok: inside")
    assert render.text_of(["a", "", None, ["b", {"text": "c"}], 5]) == "a b c 5"
    odd = {"ts": "2026-12-07T03:14:00.123Z", "provider": "claude", "type": "provider_status", "data": deep}
    assert "nested too deeply" in render.format_event(odd, render.Style(False))


def test_a_session_switch_names_the_agents_sessions() -> None:
    """`session_cleared` was always 'conversation cleared', also when a gemini rerun after a usage limit
    went on in a new chat of its own: the line now names where the agent went on."""
    switch = {"ts": "2026-12-07T03:14:00.123Z", "provider": "gemini", "source": "provider_file",
              "type": "session_cleared", "old_session_id": "80b4bfbd-eed8-41a2-98f7-8606cbd44152",
              "new_session_id": "ca913396-a05c-4d3d-9b80-6129dcc83a55"}
    line = render.format_event(switch, render.Style(False))
    assert line.endswith("cleared       now in gemini session ca913396 (was 80b4bfbd)"), line
    bare = {"ts": "2026-12-07T03:14:00.123Z", "provider": "claude", "type": "session_cleared"}
    assert render.format_event(bare, render.Style(False)).endswith("conversation cleared")


def test_a_shell_call_given_as_an_argv_list_reads_as_a_command_line() -> None:
    """codex logs its shell tool's command as a list; the line showed it as JSON ({"command":["ls"]})."""
    call = {"ts": "2026-12-07T03:14:00.123Z", "provider": "codex", "source": "provider_file", "type": "tool_call",
            "tool_name": "shell", "tool_kind": "shell", "input": {"command": ["bash", "-lc", "ls -la"], "workdir": "/w"}}
    assert render.format_event(call, render.Style(False)).endswith("tool          shell [shell] bash -lc 'ls -la'")
    odd = dict(call, input={"command": ["ls", 3]})
    assert render.format_event(odd, render.Style(False)).endswith('shell [shell] {"command":["ls",3]}')


def test_times_no_clock_can_show_are_shown_as_unknown() -> None:
    """A usage-limit line whose times are numbers out of range (NaN, 1e30: a damaged or hand-written log)
    raised OverflowError / ValueError out of `zag listen`."""
    for value in (float("nan"), 1e30, -1e30, 10**30, float("inf")):
        hit = {"ts": "2026-12-07T03:14:00.123Z", "provider": "claude", "type": "usage_limit_hit",
               "scope": "session", "reset_at": value, "scheduled_resume_at": value}
        assert render.format_event(hit, render.Style(False)).endswith("session limit hit; resets -")
        failed = {"ts": value, "provider": "claude", "type": "usage_limit_resume_failed", "attempt": 1,
                  "error": "x", "next_resume_at": value}
        assert render.format_event(failed, render.Style(False)).endswith("failed: x; no further attempt")
    assert render.epoch_of(1796613240) == 1796613240.0
