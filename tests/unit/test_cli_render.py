"""Terminal rendering: the colour decision, styles, tables, times, and one line per event."""

from __future__ import annotations

import io
import os
import pty
import re
import time

import pytest

from zag.cli import render
from zag.logs import events

ESC = "\x1b["


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_needs_a_terminal_and_no_no_color() -> None:
    assert render.colour_enabled(_Tty(), env={}) is True
    assert render.colour_enabled(io.StringIO(), env={}) is False
    assert render.colour_enabled(_Tty(), env={"NO_COLOR": "1"}) is False
    assert render.colour_enabled(_Tty(), env={"NO_COLOR": ""}) is True  # no-color.org: empty means unset
    assert render.colour_enabled(_Tty(), env={"TERM": "dumb"}) is False
    assert render.colour_enabled(io.StringIO(), env={"FORCE_COLOR": "1"}) is True
    assert render.colour_enabled(io.StringIO(), env={"FORCE_COLOR": "1", "NO_COLOR": "1"}) is False


def test_colour_on_a_real_pty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    master, slave = pty.openpty()
    try:
        with os.fdopen(slave, "w", closefd=False) as stream:
            assert render.colour_enabled(stream) is True
            monkeypatch.setenv("NO_COLOR", "1")
            assert render.colour_enabled(stream) is False
    finally:
        os.close(master)
        os.close(slave)


def test_style_is_identity_when_off() -> None:
    assert render.Style(False)("text", "bold red") == "text"
    painted = render.Style(True)("text", "bold red")
    assert painted == "\x1b[1;31mtext\x1b[0m"
    assert render.Style(True)("text", None) == "text"


def test_table_aligns_and_clips_the_last_column() -> None:
    rows = [("a", ("running", "green"), "short"), ("bbbb", "exited", "x" * 100)]
    plain = render.table(("ID", "STATE", "COMMAND"), rows, render.Style(False), width=40)
    lines = plain.splitlines()
    assert lines[0].startswith("ID    STATE    COMMAND")
    assert lines[1].startswith("a     running  short")
    assert all(len(line) <= 40 for line in lines)
    assert lines[2].endswith("…")
    coloured = render.table(("ID", "STATE", "COMMAND"), rows, render.Style(True), width=40)
    assert "\x1b[32mrunning" in coloured
    assert ESC not in plain


def test_table_unlimited_width_keeps_everything() -> None:
    text = render.table(("A", "B"), [("1", "y" * 300)], render.Style(False))
    assert "y" * 300 in text


def test_durations_and_clipping() -> None:
    assert [render.duration(s) for s in (5, 125, 3 * 3600 + 300, 2 * 86400 + 3600)] == ["5s", "2m", "3h05m", "2d01h"]
    assert render.duration(None) == "-"
    assert render.clip("a\nb\tc", 0) == "a b c"
    assert render.clip("abcdef", 4) == "abc…"
    assert render.clip_left("/very/long/path/here", 10) == "…path/here"
    now = time.time()
    assert render.when(now, now) == time.strftime("%H:%M", time.localtime(now))
    assert render.when(None) == "-"


def test_epoch_of_accepts_numbers_and_rfc3339() -> None:
    assert render.epoch_of(1.5) == 1.5
    assert render.epoch_of("1970-01-01T00:00:10.000Z") == 10.0
    assert render.epoch_of("garbage") is None
    assert render.epoch_of(True) is None


def _event(event_type: str, **fields: object) -> dict[str, object]:
    return {"seq": 1, "ts": "2026-01-02T03:04:05.000Z", "session_id": "s", "provider": "claude",
            "provider_session_id": None, "source": "wrapper", "type": event_type, **fields}


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (_event(events.SESSION_STARTED, argv=["claude", "-p", "fix it"], cwd="/w", model="opus", resumed=True),
         ["started", "claude -p 'fix it' in /w", "model opus", "resumed"]),
        (_event(events.USER_MESSAGE, content="hello there"), ["user", "hello there"]),
        (_event(events.ASSISTANT_MESSAGE, content=[{"type": "text", "text": "line one\nline two"}]),
         ["assistant", "line one line two"]),
        (_event(events.TOOL_CALL, tool_name="Read", tool_kind="file_read", input={"file_path": "/a.py"}),
         ["tool", "Read [file_read] /a.py"]),
        (_event(events.TOOL_RESULT, tool_id="t", success=False, error="boom"), ["result", "failed: boom"]),
        (_event(events.USAGE, input_tokens=1234, output_tokens=5, cost_usd=0.5),
         ["usage", "input 1,234", "output 5", "$0.5000"]),
        (_event(events.USAGE_LIMIT_HIT, scope="weekly", reset_at="2026-01-02T05:00:00.000Z",
                scheduled_resume_at="2026-01-02T05:00:30.000Z", fallback_used=True, incident_id="i"),
         ["LIMIT HIT", "weekly limit hit; resets", "resume at", "fallback"]),
        (_event(events.USAGE_LIMIT_RESUME_STARTED, incident_id="0a1b2c3d-e", attempt=2),
         ["resuming", "starting resume attempt 2 after the usage limit (incident 0a1b2c3d)"]),
        (_event(events.USAGE_LIMIT_RESUMED, incident_id="i", attempt=2, resume_message="Continue"),
         ["resumed", "attempt 2", "Continue"]),
        (_event(events.USAGE_LIMIT_RESUME_FAILED, incident_id="i", attempt=3, error="no binary"),
         ["resume failed", "attempt 3 failed: no binary"]),
        (_event(events.SESSION_ENDED, exit_code=3, success=False, error="killed by SIGTERM"),
         ["ended", "exit 3: killed by SIGTERM"]),
        (_event(events.PARSE_WARNING, message="bad record", raw="{oops"), ["warning", "bad record: {oops"]),
        (_event(events.HEARTBEAT, interval_secs=10), ["heartbeat", "every 10s"]),
        (_event("some_future_type", detail=1), ["some_future_type", '{"detail":1}']),
    ],
)
def test_event_lines_summarise_content(event: dict[str, object], expected: list[str]) -> None:
    line = render.format_event(event, render.Style(False))
    assert "\n" not in line and ESC not in line
    assert "claude" in line
    for part in expected:
        assert part in line


def _note(kind: str, message: str = "", source: str = events.SOURCE_WRAPPER, **data: object) -> dict[str, object]:
    return {**_event(events.PROVIDER_STATUS, message=message, data={"kind": kind, **data}), "source": source}


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (_note(events.NOTE_AGENT_EXITED, "claude exited with code 1; the session waits", exit_code=1,
               incident_id="0a1b2c3d-e"),
         "exited        claude exited with code 1; waiting to resume it after the usage limit (incident 0a1b2c3d)"),
        (_note(events.NOTE_AGENT_EXITED, "claude exited killed by SIGTERM", exit_code=143, incident_id="0a1b2c3d-e",
               signal="SIGTERM"),
         "exited        claude was killed by SIGTERM; waiting to resume it after the usage limit (incident 0a1b2c3d)"),
        (_note(events.NOTE_AGENT_STARTED, "claude runs again in this session (pid 123)", child_pid=123,
               final_argv=["claude", "-p", "--resume", "s-1", "--", "Continue"]),
         "relaunched    claude runs again (pid 123): claude -p --resume s-1 -- Continue"),
        (_note(events.NOTE_USAGE_LIMIT_CANCELLED, "usage-limit incident 0a1b2c3d: resume cancelled: the dead "
               "session was dismissed (`zag dismiss`)", incident_id="0a1b2c3d-e", attempts=0, cause="dismissed"),
         "cancelled     usage-limit incident 0a1b2c3d: resume cancelled: the dead session was dismissed "
         "(`zag dismiss`)"),
        (_note(events.NOTE_USAGE_LIMIT_CANCELLED, incident_id="0a1b2c3d-e", attempts=1, cause="usage_cancel"),
         "cancelled     resume cancelled with `zag usage cancel` (incident 0a1b2c3d)"),
        (_note(events.NOTE_USAGE_LIMIT_RECOVERED, incident_id="0a1b2c3d-e", attempts=0),
         "recovered     claude continued by itself after the usage limit; no resume needed (incident 0a1b2c3d)"),
        (_event(events.SESSION_ENDED, exit_code=None, success=False, reason="dismissed",
                error="its supervisor went away without ending the session"),
         "ended         dismissed with `zag dismiss`: its supervisor went away without ending the session"),
        (_event(events.SESSION_ENDED, exit_code=None, success=False, reason="someday"),
         "ended         ended (someday)"),
    ],
)
def test_zag_notes_read_as_sentences(event: dict[str, object], expected: str) -> None:
    """zag's own notes and ends are said as what happened (not a `status` dump of the note's data), the
    same in colour; a note of the same kind from the agent's own records stays a plain status."""
    line = render.format_event(event, render.Style(False))
    assert line.endswith(" claude " + expected) and len(line) == len("03:04:05 claude ") + len(expected)
    coloured = render.format_event(event, render.Style(True))
    label, _, summary = expected.partition(" ")
    assert f"m{label}" in coloured and coloured.endswith(summary.strip()) and "status" not in coloured
    if event["type"] == events.PROVIDER_STATUS:
        from_the_agent = render.format_event({**event, "source": events.SOURCE_PROVIDER_FILE}, render.Style(False))
        assert " status " in from_the_agent and label not in from_the_agent.split(" status ")[0]


def test_a_started_note_does_not_read_as_a_session_start() -> None:
    """`zag listen` of a session `zag resume` continued counts its starts by the word `started`."""
    line = render.format_event(_note(events.NOTE_AGENT_STARTED, child_pid=7, final_argv=["claude"]),
                               render.Style(False))
    assert "started" not in line and line.endswith("relaunched    claude runs again (pid 7): claude")


def test_event_line_colours_and_dims_heartbeats() -> None:
    style = render.Style(True)
    hit = render.format_event(_event(events.USAGE_LIMIT_HIT, scope="session"), style)
    assert "\x1b[1;31mLIMIT HIT" in hit
    beat = render.format_event(_event(events.HEARTBEAT, interval_secs=10), style)
    assert beat.startswith("\x1b[2m") and beat.endswith("\x1b[0m")


def test_event_line_fits_the_width() -> None:
    line = render.format_event(_event(events.USER_MESSAGE, content="word " * 100), render.Style(False), width=60)
    assert len(line) <= 60 and line.endswith("…")


@pytest.mark.parametrize("value, forced", [("1", True), ("true", True), ("3", True), ("0", False),
                                           ("false", False), ("", False)])
def test_force_variables_zero_and_false_do_not_force(value: str, forced: bool) -> None:
    for name in ("FORCE_COLOR", "CLICOLOR_FORCE"):
        assert render.colour_enabled(io.StringIO(), env={name: value}) is forced, (name, value)


def test_table_fits_a_terminal_narrower_than_its_columns() -> None:
    """`zag ps` in a 40-column pane: every line is cut at the width (not wrapped over three lines)."""
    rows = [(("a71c4070", "bold"), "claude", ("running", "green"), "9012", "/home/me/projects/app", "claude -p x")]
    headers = ("ID", "PROVIDER", "STATE", "PID", "CWD", "COMMAND")
    for style in (render.Style(False), render.Style(True)):
        text = render.table(headers, rows, style, width=40)
        visible = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in text.splitlines()]
        assert all(len(line) <= 40 for line in visible), visible
        assert visible[1].startswith("a71c4070  claude    running  9012  /hom") and visible[1].endswith("…")


def test_wide_characters_take_two_columns() -> None:
    """A CJK or emoji cwd keeps the columns after it aligned, and clipping counts terminal columns."""
    assert render.text_width("日本語🚀") == 8 and render.text_width("e\u0301") == 1
    assert render.clip("日本語ディレクトリ", 7) == "日本語…"
    assert render.clip_left("/srv/日本語", 6) == "…本語"
    rows = [("/srv/日本語", "one"), ("/srv/abc", "two")]
    lines = render.table(("CWD", "COMMAND"), rows, render.Style(False)).splitlines()
    assert [render.text_width(line[: line.index(word)]) for line, word in zip(lines[1:], ("one", "two"))] == [13, 13]
    wide = [("/srv/日本語日本語日本語", "x")]
    fitted = render.table(("CWD", "COMMAND"), wide, render.Style(False), width=12)
    assert all(render.text_width(line) <= 12 for line in fitted.splitlines())


def test_escape_sequences_in_content_never_reach_the_terminal() -> None:
    """A tool's coloured output, a title/clipboard OSC or a screen clear in an event or a cwd is not
    passed to the terminal by `zag listen`/`zag events`/`zag ps` (it recoloured the following lines,
    cleared the screen, set the window title); other control characters are shown as ^X."""
    output = "\x1b[31mFAILED\x1b[0m test_x \x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x1b\\ \x1b[2Jcleared \x08\x7f\x9bZ\x00 ok"
    event = _event(events.TOOL_RESULT, tool_id="t", success=True, output=output, error=None)
    for width in (0, 200):
        line = render.format_event(event, render.Style(False), width=width)
        assert "\x1b" not in line and "\x07" not in line and "\x08" not in line and "\x9b" not in line
        assert "FAILED test_x" in line and "cleared ^H^?^@ ok" in line
    assert render.one_line("plain\ttext") == "plain text"
    cells = render.table(("CWD",), [("/srv/\x1b[2Jx",)], render.Style(True))
    assert "\x1b[2J" not in cells and "/srv/x" in cells


def test_clipping_a_huge_value_measures_only_what_is_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 10 MB tool output with one non-ASCII character, shown by `zag listen` on a terminal: only the
    characters that fit are measured (measuring all of it took ~2 s per event)."""
    measured = []
    real = render._char_width
    monkeypatch.setattr(render, "_char_width", lambda char: measured.append(char) or real(char))
    output = "é" + "y" * 10_000_000
    event = _event(events.TOOL_RESULT, tool_id="t", success=True, output=output, error=None)
    line = render.format_event(event, render.Style(False), width=120)
    assert line.endswith("y…") and render.text_width(line) <= 120
    assert render.clip_left("y" * 100 + "日本", 9) == "…yyyy日本"
    assert len(measured) < 1000
