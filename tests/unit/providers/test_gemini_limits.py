"""gemini usage limits: every wording (AGENT_FORMATS.md §3.5, the real captures, the 0.61.0 TUI), scope and
reset against fixed clocks and zones, structured output first, prose never a hit, extra patterns."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from zag.providers.base import LaunchContext, LimitSignal, SessionIdHint
from zag.providers.gemini import limits
from zag.providers.gemini.scanner import GeminiScanner

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "corpus" / "real-cli" / "gemini"
LA = ZoneInfo("America/Los_Angeles")
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=LA).timestamp()      # a Thursday noon in Los Angeles
MIDNIGHT = datetime(2026, 1, 16, 0, 0, tzinfo=LA).timestamp()


def at(year: int, month: int, day: int, hour: int, minute: int = 0, zone=LA) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=zone).timestamp()


def minute_end(year: int, month: int, day: int, hour: int, minute: int = 0, zone=LA) -> float:
    """What a reset shown to the minute stands for: the end of that minute (the CLIs floor resets)."""
    return at(year, month, day, hour, minute, zone) + 60


def scanner(*patterns: str, now: float = NOW, zone=LA) -> GeminiScanner:
    ctx = LaunchContext(cwd="/", env={}, interactive=False, started_at=0, zag_session_id="z",
                        extra_limit_patterns=patterns)
    return GeminiScanner(ctx, clock=lambda: now, zone=zone)


def scan(stream: str, text: str, *patterns: str, now: float = NOW, zone=LA, chunk: int = 7) -> list:
    instance = scanner(*patterns, now=now, zone=zone)
    data = text.encode()
    items = []
    for start in range(0, len(data), chunk):
        items += instance.feed(stream, data[start:start + chunk])
    return items + instance.finish()


def signals(items: list) -> list[LimitSignal]:
    return [item for item in items if isinstance(item, LimitSignal)]


# --- classify: every wording -------------------------------------------------------------------------
@pytest.mark.parametrize("text, scope, reset", [
    ("You have exhausted your daily quota on this model.", "daily", MIDNIGHT),
    ("[API Error: You have exhausted your daily quota on this model.]", "daily", MIDNIGHT),
    ("You have exhausted your capacity on this model. Your quota will reset after 8h44m7s.", "unknown",
     NOW + 8 * 3600 + 44 * 60 + 7),
    ("You have exhausted your capacity on this model. Your quota will reset after 53s.", "unknown", NOW + 53),
    ("You have exhausted your capacity on this model. Your quota will reset after 0s.", "unknown", NOW),
    ("You exceeded your current quota, please check your plan and billing details. Please retry in 41.2s.",
     "unknown", NOW + 41.2),
    ("You exceeded your current quota, please check your plan and billing details. Please retry in 3600s.\n"
     "Suggested retry after 3600s.", "unknown", NOW + 3600),
    ("You exceeded your current quota, please check your plan and billing details.", "unknown", None),
    ('[{ "error": { "code": 429, "message": "Quota exceeded for quota metric \'Gemini 2.5 Pro Requests\' and limit '
     '\'Gemini 2.5 Pro Requests per day per user per tier\' of service \'cloudcode-pa.googleapis.com\'", '
     '"status": "RESOURCE_EXHAUSTED", "details": [{ "reason": "RATE_LIMIT_EXCEEDED", '
     '"metadata": {"quota_limit": "Gemini25ProRequestsPerDay"} }] } }]', "daily", MIDNIGHT),
    ('{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [{"@type": '
     '"type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "51820.638305887s"}]}}', "unknown",
     NOW + 51820.638305887),
    ("Resource has been exhausted (e.g. check quota).", "unknown", None),
    ("Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/"
     "docs/error-code-429 for more details.", "unknown", None),
    ("[API Error: got status: 429 Too Many Requests (Status: RESOURCE_EXHAUSTED)]\nPlease wait and try again later.",
     "unknown", None),
    ("Usage limit reached for all Pro models.", "unknown", None),
    ("Usage limit reached for gemini-2.5-pro.\nAccess resets at 3:45 PM PST.\n/stats model for usage details",
     "unknown", minute_end(2026, 1, 15, 15, 45)),
    ("Usage limit reached for all Pro models.\nAccess resets at 9:05 AM PST.", "unknown", minute_end(2026, 1, 16, 9, 5)),
    ("Usage limit reached for all Pro models.\nAccess resets at 11:55 AM PST.", "unknown", minute_end(2026, 1, 15, 11, 55)),
    ("Usage limit reached for all Pro models.\nAccess resets at 8:30 PM UTC.", "unknown",
     datetime(2026, 1, 15, 20, 31, tzinfo=timezone.utc).timestamp()),
    ("Usage limit reached for all Pro models.\nAccess resets at 9:30 PM GMT+1.", "unknown",
     datetime(2026, 1, 15, 20, 31, tzinfo=timezone.utc).timestamp()),
    ("We are currently experiencing high demand for gemini-3.1-pro-preview.\nWe apologize and appreciate your "
     "patience.\nAccess resets at 1:00 PM PST.", "unknown", minute_end(2026, 1, 15, 13)),
    ("⚡ You have reached your daily gemini-2.5-pro quota limit.", "daily", MIDNIGHT),
])
def test_wordings(text: str, scope: str, reset: float | None) -> None:
    quota = limits.classify(text, NOW, zone=LA)
    assert quota is not None
    assert quota.scope == scope
    assert quota.reset_at == (pytest.approx(reset, abs=1e-3) if reset is not None else None)


@pytest.mark.parametrize("text", [
    "hi from fake upstream", "Request cancelled.", "Error: connect ECONNREFUSED 127.0.0.1:9",
    "Model \"gemini-9\" was not found or is invalid.",
])
def test_other_errors_are_no_quota(text: str) -> None:
    assert limits.classify(text, NOW) is None
    assert limits.classify(text, NOW, force=True) == limits.Quota("unknown", None)


@pytest.mark.parametrize("now, expected", [
    (at(2026, 3, 7, 12), datetime(2026, 3, 8, 8, tzinfo=timezone.utc)),      # PST day before the DST switch
    (at(2026, 3, 8, 12), datetime(2026, 3, 9, 7, tzinfo=timezone.utc)),      # first PDT day
    (at(2026, 10, 31, 23, 59), datetime(2026, 11, 1, 7, tzinfo=timezone.utc)),
    (at(2026, 11, 1, 12), datetime(2026, 11, 2, 8, tzinfo=timezone.utc)),    # the day clocks fell back
    (at(2026, 1, 16, 0, 0), datetime(2026, 1, 17, 8, tzinfo=timezone.utc)),  # exactly midnight: the next one
])
def test_daily_reset_is_next_midnight_pacific(now: float, expected: datetime) -> None:
    assert limits.next_pacific_midnight(now) == expected.timestamp()


def test_access_resets_in_the_local_zone_across_dst() -> None:
    before_switch = at(2026, 3, 29, 0, 30, BERLIN)       # Berlin springs forward at 02:00 that night
    quota = limits.classify("Usage limit reached for all Pro models.\nAccess resets at 3:15 AM CEST.",
                            before_switch, zone=BERLIN)
    assert quota is not None and quota.reset_at == minute_end(2026, 3, 29, 3, 15, BERLIN)
    assert quota.reset_at - before_switch == timedelta(hours=1, minutes=46).total_seconds()


# --- the scanner on real captures -----------------------------------------------------------------------
def test_stream_json_daily_quota() -> None:
    items = scan("stdout", (REAL / "stdout_B_429_daily_stream.txt").read_text())
    hint, signal = items
    assert hint == SessionIdHint("f0a58041-6b7d-4c31-ba2f-84bd6384f1e8", source="stdout")
    assert signal.structured and signal.scope == "daily" and signal.reset_at == MIDNIGHT
    assert signal.raw.startswith("[API Error: You have exhausted your daily quota on this model.]\nPlease wait")
    assert signal.provider_session_id == hint.provider_session_id and signal.source == "stdout"


def test_stream_json_long_retry_delay() -> None:
    [_, signal] = scan("stdout", (REAL / "stdout_B4_429_minute_long_delay.txt").read_text())
    assert signal.structured and signal.scope == "unknown" and signal.reset_at == NOW + 3600


def test_json_output_error_document_on_stderr() -> None:
    items = scan("stderr", (REAL / "stderr_B2_429_daily_json.txt").read_text(), chunk=97)
    text_signal, hint, structured = items
    assert not text_signal.structured and text_signal.raw == \
        "TerminalQuotaError: You have exhausted your daily quota on this model."
    assert hint.provider_session_id == "1f2a73d3-ffa2-46e9-9ba1-cf61b58d7884"
    assert structured.structured and structured.raw == "You have exhausted your daily quota on this model."
    assert structured.scope == "daily" and structured.reset_at == MIDNIGHT


@pytest.mark.parametrize("name, raw, scope, reset", [
    ("stderr_B3_429_daily_text.txt", "TerminalQuotaError: You have exhausted your daily quota on this model.",
     "daily", MIDNIGHT),
    ("stderr_B_429_daily_stream.txt", "TerminalQuotaError: You have exhausted your daily quota on this model.",
     "daily", MIDNIGHT),
    ("stderr_F4_resume_429.txt", "TerminalQuotaError: You have exhausted your daily quota on this model.",
     "daily", MIDNIGHT),
    ("stderr_B4_429_minute_long_delay.txt", "TerminalQuotaError: You exceeded your current quota, please check "
     "your plan and billing details. Please retry in 3600s.", "unknown", NOW + 3600),
    ("stderr_C_429_minute_retry.txt", "RetryableQuotaError: You exceeded your current quota, please check your "
     "plan and billing details. Please retry in 2s.", "unknown", NOW + 2),
])
def test_stderr_error_reports(name: str, raw: str, scope: str, reset: float) -> None:
    found = signals(scan("stderr", (REAL / name).read_text()))
    assert len(found) == 1, "the router's and the main call's identical reports count once"
    [signal] = found
    assert not signal.structured and signal.raw == raw and signal.scope == scope and signal.reset_at == reset


@pytest.mark.parametrize("name", ["stderr_D_429_once.txt", "stderr_A_hi_json.txt", "stderr_F_resume_uuid.txt",
                                  "stderr_F3_resume_limited_session.txt", "stdout_A3_hi_text.txt",
                                  "stdout_D_429_once.txt", "stdout_C_429_minute_retry.txt"])
def test_transient_retries_and_normal_runs_are_no_hit(name: str) -> None:
    stream = "stdout" if name.startswith("stdout") else "stderr"
    assert signals(scan(stream, (REAL / name).read_text())) == []


def test_session_ids_from_machine_output() -> None:
    assert scan("stdout", (REAL / "stdout_A2_hi_stream.txt").read_text()) == [
        SessionIdHint("48088161-f65c-41d8-9b65-566db354464f", source="stdout")]
    assert scan("stdout", (REAL / "stdout_A_hi_json.txt").read_text()) == [
        SessionIdHint("0508d65f-584a-48a8-9f75-1d448b514ef9", source="stdout")]
    assert scan("pty", (REAL / "screen_G_tui.4_exit.screen.txt").read_text()) == [
        SessionIdHint("c86a1836-d8ba-4d73-a6e0-226f31fe9800", source="pty")]


@pytest.mark.parametrize("name, raw", [
    ("screen_G2_tui_first_prompt_429.1_429.screen.txt",
     "Usage limit reached for gemini-3.5-flash-lite.\n/stats model for usage details"),
    ("screen_G2_tui_first_prompt_429.2_chose_stop.screen.txt",
     "Usage limit reached for all Pro models.\n/stats model for usage details"),
])
def test_tui_quota_dialogs(name: str, raw: str) -> None:
    [signal] = signals(scan("pty", (REAL / name).read_text()))
    assert signal.raw == raw and not signal.structured and signal.source == "pty" and signal.reset_at is None


def test_tui_dialog_with_reset_and_ansi() -> None:
    screen = ("\x1b[33m│\x1b[0m \x1b[1mUsage limit reached for gemini-2.5-pro.\x1b[0m     │\r\n"
              "│ Access resets at 3:45 PM PST.            │\r\n│ /stats model for usage details │\r\n"
              "│ ● 1. Switch to gemini-2.5-flash  │\r\n│   2. Stop │\r\n")
    [signal] = signals(scan("pty", screen))
    assert signal.raw == "Usage limit reached for gemini-2.5-pro.\nAccess resets at 3:45 PM PST.\n" \
                         "/stats model for usage details"
    assert signal.reset_at == minute_end(2026, 1, 15, 15, 45)


@pytest.mark.parametrize("screen", [
    "\r\n✕ [API Error: You have exhausted your daily quota on this model.]\r\n",
    # as 0.61.0 draws it: cursor moves inside one output line (they become line breaks when stripped)
    "\x1b[2K\x1b[1A\x1b[2K\x1b[1A\x1b[2K\x1b[G \x1b[31m✕ [API Error: You have exhausted your daily quota on this "
    "model.]\x1b[39m\x1b[1B\x1b[G\r\n",
])
def test_tui_api_error_line_after_stop(screen: str) -> None:
    [signal] = signals(scan("pty", screen))
    assert signal.raw == "[API Error: You have exhausted your daily quota on this model.]"
    assert signal.scope == "daily" and signal.reset_at == MIDNIGHT


def test_redrawn_dialog_is_reported_once() -> None:
    dialog = "│ Usage limit reached for all Pro models. │\n│ /stats model for usage details │\n"
    assert len(signals(scan("pty", dialog * 5))) == 1


@pytest.mark.parametrize("stream, text", [
    # the model quoting a limit: machine output
    ("stdout", '{"type":"message","role":"assistant","content":"You have exhausted your daily quota on this model.",'
               '"delta":true}\n'),
    ("stdout", '{"type":"result","status":"success","stats":{}}\n'),
    ("stdout", '{\n  "session_id": "s",\n  "response": "Usage limit reached for all Pro models.\\nAccess resets at '
               '3:00 PM PST.\\nTerminalQuotaError: You have exhausted your daily quota on this model."\n}\n'),
    # the model's answer in text mode is stdout: never scanned for built-in wordings
    ("stdout", "You have exhausted your daily quota on this model.\nTerminalQuotaError: x\n"),
    # TUI: the assistant's text (✦, indented continuation) and the user's echoed prompt
    ("pty", "✦ You have exhausted your daily quota on this model.\n"),
    ("pty", "✦ Here is the message:\n  You have exhausted your daily quota on this model.\n"),
    ("pty", " > You have exhausted your daily quota on this model.\n"),
    ("pty", "  Usage limit reached for all Pro models.\n  Access resets at 3:00 PM PST.\n  /stats model\n"),
    # a dialog head without the dialog
    ("pty", "│ Usage limit reached for all Pro models. │\n│ Sure, I can help with that. │\n\n\n\n\n\n\n"),
    # transient retries and the router's fallback
    ("stderr", "Attempt 1 failed: You have exhausted your capacity on this model. Your quota will reset after 5s.. "
               "Retrying after 6173ms...\n"),
    ("stderr", "[Routing] NumericalClassifierStrategy failed: Error: Failed to generate content: You have exhausted "
               "your daily quota on this model.\n"),
    ("stderr", "    message: 'You exceeded your current quota, please check your plan and billing details. "
               "Please retry in 3600s.',\n"),
    ("stderr", '{"type":"error","severity":"warning","message":"You exceeded your current quota"}\n'),
])
def test_prose_and_transient_retries_are_no_hit(stream: str, text: str) -> None:
    assert signals(scan(stream, text)) == []


def test_structured_error_types_and_codes() -> None:
    by_type = scan("stdout", '{"type":"result","status":"error","error":{"type":"TerminalQuotaError","message":'
                             '"Model quota gone"}}\n')
    by_code = scan("stderr", '{\n  "session_id": "s1",\n  "error": {\n    "type": "Error",\n    "message": "boom",\n'
                             '    "code": 429\n  }\n}\n')
    not_quota = scan("stdout", '{"type":"result","status":"error","error":{"type":"FatalInputError",'
                               '"message":"bad input"}}\n')
    error_event = scan("stdout", '{"type":"error","severity":"error","message":"[API Error: You have exhausted '
                                 'your daily quota on this model.]"}\n')
    assert [(s.structured, s.raw, s.scope) for s in signals(by_type)] == [(True, "Model quota gone", "unknown")]
    assert [(s.structured, s.raw, s.provider_session_id) for s in signals(by_code)] == [(True, "boom", "s1")]
    assert signals(not_quota) == []
    assert [(s.structured, s.scope) for s in signals(error_event)] == [(True, "daily")]


def test_extra_patterns() -> None:
    pattern = r"QUOTA GONE until (?P<reset>\d{1,2}:\d{2}\s*[ap]m)"
    [signal] = signals(scan("stdout", "log: QUOTA GONE until 4:30 pm\n", pattern))
    assert signal.raw == "QUOTA GONE until 4:30 pm" and not signal.structured
    assert signal.reset_at == minute_end(2026, 1, 15, 16, 30)
    [other] = signals(scan("stderr", "custom limit hit, Please retry in 30s\n", r"custom limit hit"))
    assert other.reset_at == NOW + 30
    assert signals(scan("stderr", "nothing here\n", r"custom limit hit", "([invalid")) == []


def test_partial_lines_and_finish() -> None:
    instance = scanner()
    assert instance.feed("stderr", b"TerminalQuotaError: You have exhausted your da") == []
    [signal] = instance.feed("stderr", b"ily quota on this model.\n")
    assert signal.scope == "daily"
    assert instance.feed("stderr", b"Resource has been exhausted (e.g. check quota).") == []
    [last] = instance.finish()
    assert last.raw == "Resource has been exhausted (e.g. check quota)."


# --- a reset given as a delay is relative (timed on the elapsed clock), a named time is not ----------
@pytest.mark.parametrize("text, relative", [
    ("You have exhausted your capacity on this model. Your quota will reset after 8h44m7s.", True),
    ("You exceeded your current quota, please check your plan and billing details. Please retry in 41.2s.", True),
    ("Quota exceeded. Suggested retry after 3600s.", True),
    ('{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [{"@type": '
     '"type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "51820.638305887s"}]}}', True),
    ("Usage limit reached for all Pro models.\nAccess resets at 9:05 AM PST.", False),
    ("You have exhausted your daily quota on this model.", False),           # the next Pacific midnight
    ("You exceeded your current quota, please check your plan and billing details.", False),  # no reset
])
def test_a_delay_is_relative_and_a_named_time_is_not(text: str, relative: bool) -> None:
    quota = limits.classify(text, NOW, zone=LA, force=True)
    assert quota is not None and quota.reset_relative is relative


def test_scanner_signals_say_whether_the_reset_was_a_delay() -> None:
    [delay] = signals(scan("stderr", (REAL / "stderr_C_429_minute_retry.txt").read_text()))
    [named] = signals(scan("stderr", "Usage limit reached for all Pro models.\nAccess resets at 9:05 AM PST.\n"))
    assert (delay.reset_at, delay.reset_relative) == (NOW + 2, True)
    assert named.reset_at is not None and named.reset_relative is False
    [extra] = signals(scan("stderr", "custom limit hit, Please retry in 30s\n", r"custom limit hit"))
    until = r"QUOTA GONE until (?P<reset>\d{1,2}:\d{2}\s*[ap]m)"
    [clock] = signals(scan("stdout", "log: QUOTA GONE until 4:30 pm\n", until))
    [after] = signals(scan("stdout", "log: QUOTA GONE for 5 minutes\n", r"QUOTA GONE for (?P<reset>\d+ minutes)"))
    assert (extra.reset_relative, clock.reset_relative, after.reset_relative) == (True, False, True)


def test_the_session_id_of_the_stats_box_is_a_hint_the_models_text_is_not() -> None:
    """`/stats` shows the session the TUI is in (after `/clear` or `/resume` the only id it shows before
    `/quit`); the same words in the model's answer are no hint."""
    sid = "c86a1836-d8ba-4d73-a6e0-226f31fe9800"
    box = f"\x1b[38;2;1;2;3m│\x1b[39m  Session ID:                 \x1b[1m{sid}\x1b[0m                  \x1b[38;2;1;2;3m│\x1b[39m\r\n"
    assert scan("pty", box) == [SessionIdHint(sid, source="pty")]
    assert scan("pty", f"✦ Session ID: {sid}\r\n  Session ID: {sid}\r\n") == []
