"""Codex usage-limit wordings (fixed clocks and zones), the output scanner on real captures, and the TUI keys."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from zag.providers.base import LaunchContext, LimitSignal, SessionIdHint
from zag.providers.codex import keys, limits
from zag.providers.codex.scanner import CodexOutputScanner

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "corpus" / "real-cli" / "codex"
UTC = timezone.utc


def epoch(*parts: int, zone=UTC) -> float:
    return datetime(*parts, tzinfo=zone).timestamp()


def minute_end(*parts: int, zone=UTC) -> float:
    """What a reset shown to the minute stands for: the end of that minute (the CLIs floor resets)."""
    return epoch(*parts, zone=zone) + 60


def ctx(**extra) -> LaunchContext:
    return LaunchContext(cwd="/srv/p", env={}, interactive=False, started_at=time.time(),
                         zag_session_id="z", **extra)


def scan(stream: str, data: bytes, *, chunk: int | None = None, scanner: CodexOutputScanner | None = None,
         finish: bool = True) -> list:
    scanner = scanner or CodexOutputScanner(ctx())
    items = []
    step = chunk or len(data) or 1
    for start in range(0, len(data), step):
        items.extend(scanner.feed(stream, data[start:start + step]))
    if finish:
        items.extend(scanner.finish())
    return items


def signals(items: list) -> list[LimitSignal]:
    return [item for item in items if isinstance(item, LimitSignal)]


# --- wordings --------------------------------------------------------------------------------
NOW = epoch(2026, 11, 22, 14, 32, 8)


@pytest.mark.parametrize("apostrophe", ["'", "’"])
def test_plus_wording_same_day_clock(apostrophe: str) -> None:
    text = (f"You{apostrophe}ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit "
            "https://chatgpt.com/codex/settings/usage to purchase more credits or try again at 3:32 PM.")
    reading = limits.read_message(text, NOW, UTC)
    assert reading is not None and reading.reset_at == minute_end(2026, 11, 22, 15, 32)


def test_full_date_in_local_zone_across_dst() -> None:
    zone = ZoneInfo("America/New_York")  # DST starts 2026-03-08
    text = ("You've hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit "
            "https://chatgpt.com/codex/settings/usage to purchase more credits or try again at Mar 10th, 2026 3:39 AM.")
    reading = limits.read_message(text, epoch(2026, 3, 7, 12, 0), zone)
    assert reading.reset_at == minute_end(2026, 3, 10, 7, 39)  # 03:39 EDT = 07:39 UTC


def test_clock_a_few_minutes_past_means_now_not_tomorrow() -> None:
    reading = limits.read_message("You've hit your usage limit. Try again at 3:32 PM.", epoch(2026, 11, 22, 15, 35), UTC)
    assert reading.reset_at == minute_end(2026, 11, 22, 15, 32)


def test_clock_in_a_dst_gap_maps_forward() -> None:
    zone = ZoneInfo("Europe/Berlin")  # 2026-03-29 02:00 → 03:00
    reading = limits.read_message("You've hit your usage limit. Try again at 2:30 AM.", epoch(2026, 3, 29, 0, 10), zone)
    assert reading.reset_at == minute_end(2026, 3, 29, 1, 30)


@pytest.mark.parametrize("text, delay", [
    ("You've hit your usage limit. Upgrade to Pro (https://openai.com/chatgpt/pricing) or try again in 2 hours "
     "13 minutes.", 2 * 3600 + 13 * 60),
    ("You've hit your usage limit. Upgrade to Pro (https://openai.com/chatgpt/pricing) or try again in 5 days 22 "
     "hours 11\nminutes.", 5 * 86400 + 22 * 3600 + 11 * 60),
])
def test_older_relative_wordings(text: str, delay: int) -> None:
    assert limits.read_message(text, NOW, UTC).reset_at == NOW + delay


@pytest.mark.parametrize("text", [
    "You've hit your usage limit. To get more access now, send a request to your admin or try again at 9:05 PM.",
    "You've hit your usage limit. Upgrade to Plus to continue using Codex (https://chatgpt.com/explore/plus), or "
    "try again at 9:05 PM.",
    "You’ve hit your usage limit for GPT-5.3-Codex-Spark. Switch to another model now, or try again at 9:05 PM.",
    "You've hit your usage limit. Try again at 9:05 PM.",
])
def test_every_plan_wording(text: str) -> None:
    assert limits.read_message(text, NOW, UTC).reset_at == minute_end(2026, 11, 22, 21, 5)


@pytest.mark.parametrize("text", [
    "You've hit your usage limit. Try again later.",
    "You've hit your usage limit. Limits reset every 5h and every week.",
])
def test_wordings_without_a_reset(text: str) -> None:
    reading = limits.read_message(text, NOW, UTC)
    assert reading is not None and reading.reset_at is None


@pytest.mark.parametrize("text", [
    "To use Codex with your ChatGPT plan, upgrade to Plus: https://chatgpt.com/explore/plus.",
    "Your workspace is out of credits. Add credits to continue.",
    "exceeded retry limit, last status: 429 Too Many Requests",
    "Reconnecting... 1/5 (exceeded retry limit, last status: 429 Too Many Requests)",
    "Selected model is at capacity. Please try a different model.",
    "I think that you've hit your usage limit. Try again at 3 PM.",
])
def test_not_a_usage_limit(text: str) -> None:
    assert limits.read_message(text, NOW, UTC) is None


def test_raw_429_body_reset_from_resets_at() -> None:
    line = ('2026-03-10T00:12:31.123Z ERROR codex_core::client: unexpected status 429: {"error":{"type":'
            '"usage_limit_reached","message":"The usage limit has been reached","plan_type":"plus",'
            '"resets_at":1773113950,"eligible_promo":null,"resets_in_seconds":467439}}')
    assert limits.search_raw_body(line, NOW).reset_at == 1773113950.0
    only_seconds = '{"error":{"type":"usage_limit_reached","resets_in_seconds":60}}'
    assert limits.search_raw_body(only_seconds, NOW).reset_at == NOW + 60


def test_snapshot_scope_from_matching_reset_when_nothing_is_used_up() -> None:
    snapshot = {"primary": {"used_percent": 97.0, "window_minutes": 300, "resets_at": 1795361528},
                "secondary": {"used_percent": 50.0, "window_minutes": 10080, "resets_at": 1795447928}}
    assert limits.scope_and_reset(snapshot, NOW, 1795361520.0) == ("session", 1795361520.0)
    assert limits.scope_and_reset(snapshot, NOW, None) == ("unknown", None)
    assert limits.scope_and_reset(None, NOW, 5.0) == ("unknown", 5.0)


# --- the output scanner on real captures -----------------------------------------------------
def test_json_usage_limit_is_one_structured_signal_at_turn_failed() -> None:
    data = (REAL / "stdout_B_429_usage_limit.jsonl").read_bytes()
    for chunk in (None, 1, 7):
        items = scan("stdout", data, chunk=chunk)
        assert items[0] == SessionIdHint("01a203ab-eab3-7043-86ad-a425c7913562", source="stdout")
        (signal,) = signals(items)
        assert signal.structured and signal.source == "stdout" and signal.reset_at is not None
        assert signal.raw.startswith("You’ve hit your usage limit.")


@pytest.mark.parametrize("name", ["stdout_C_429_rate_limit_exceeded.jsonl", "stdout_D_429_once.jsonl",
                                  "stdout_B3_429_usage_not_included.jsonl", "stdout_A_hi.jsonl",
                                  "stdout_F_resume_id.jsonl"])
def test_json_without_usage_limit(name: str) -> None:
    items = scan("stdout", (REAL / name).read_bytes())
    assert signals(items) == [] and len([i for i in items if isinstance(i, SessionIdHint)]) == 1


def test_json_assistant_message_quoting_the_limit_is_not_a_signal() -> None:
    data = (b'{"type":"item.completed","item":{"id":"item_0","type":"agent_message","text":"You\'ve hit your '
            b'usage limit. Try again at 3:32 PM."}}\n{"type":"turn.completed","usage":{}}\n')
    assert signals(scan("stdout", data)) == []


def test_json_error_then_completed_turn_is_not_a_signal_but_unconfirmed_at_exit_is() -> None:
    error = b'{"type":"error","message":"You\'ve hit your usage limit. Try again at 3:32 PM."}\n'
    assert signals(scan("stdout", error + b'{"type":"turn.completed","usage":{}}\n')) == []
    (signal,) = signals(scan("stdout", error))
    assert signal.structured


def test_plain_stderr_error_printed_twice_is_one_signal_with_the_session_id_hint() -> None:
    items = scan("stderr", (REAL / "stderr_B2_429_usage_limit_plain.txt").read_bytes(), chunk=13)
    assert SessionIdHint("01a203ab-ecdd-78f3-9ce5-08dd1e19bcef", source="stderr") in items
    (signal,) = signals(items)
    assert not signal.structured and signal.source == "stderr" and signal.raw.startswith("ERROR: You’ve hit")


def test_plain_stderr_other_captures_have_no_signal() -> None:
    for name in ("stderr_A2_hi_plain.txt", "stderr_C_429_rate_limit_exceeded.txt", "stderr_F5_resume_unknown.txt"):
        assert signals(scan("stderr", (REAL / name).read_bytes())) == []


def test_stderr_tracing_line_with_raw_body() -> None:
    line = (b'2026-03-10T00:12:31.123Z ERROR codex_api: 429 {"error":{"type":"usage_limit_reached","resets_at":'
            b'1773113950,"resets_in_seconds":467439}}\n')
    (signal,) = signals(scan("stderr", line))
    assert signal.reset_at == 1773113950.0 and not signal.structured


def test_stderr_prose_mid_line_and_plain_stdout_answer_are_not_signals() -> None:
    prose = b"codex\nAs the error said, You've hit your usage limit. Try again at 3:32 PM.\n"
    assert signals(scan("stderr", prose)) == []
    answer = b"You've hit your usage limit. Try again at 3:32 PM.\n"
    assert signals(scan("stdout", answer)) == []  # plain-mode stdout is the assistant's answer


def _tui_bytes(screen: str) -> bytes:
    """A screen capture as a TUI would paint it: rows joined by cursor moves, colour codes around words."""
    rows = screen.split("\n")
    painted = "".join(f"\x1b[{n + 1};1H\x1b[2m{row}\x1b[0m" for n, row in enumerate(rows))
    return painted.encode()


def test_pty_wrapped_tui_message_is_one_signal_even_when_redrawn() -> None:
    screen = (REAL / "screen_G_tui.2_429.screen.txt").read_text()
    scanner = CodexOutputScanner(ctx())
    items = scan("pty", _tui_bytes(screen), chunk=97, scanner=scanner, finish=False)
    items += scan("pty", _tui_bytes(screen), chunk=4096, scanner=scanner)
    (signal,) = signals(items)
    assert signal.source == "pty" and not signal.structured and signal.raw.startswith("■ You’ve hit")
    assert signal.reset_at is not None


def test_pty_assistant_bullet_and_user_prompt_are_not_signals() -> None:
    screen = "• You've hit your usage limit. Try again at 3:32 PM.\n› You've hit your usage limit. Try again at 3 PM.\n"
    assert signals(scan("pty", _tui_bytes(screen))) == []


def test_extra_patterns_with_reset_group_and_bad_patterns_ignored() -> None:
    scanner = CodexOutputScanner(ctx(extra_limit_patterns=("(", r"quota gone, back in (?P<reset>\d+ minutes)")))
    before = time.time()
    (signal,) = signals(scan("stderr", b"warn: quota gone, back in 5 minutes\n", scanner=scanner))
    assert signal.raw == "quota gone, back in 5 minutes" and signal.reset_at >= before + 300
    assert len(signals(scan("stdout", b"quota gone, back in 9 minutes\n"))) == 0  # other scanner, no pattern


def test_scanner_never_raises_on_garbage() -> None:
    scanner = CodexOutputScanner(ctx())
    for stream in ("stdout", "stderr", "pty", "weird"):
        scanner.feed(stream, b"\xff\xfe{\x1b[31m\x00" * 100 + b"\n{not json}\n[1,2]\n")
    scanner.finish()


# --- TUI keys --------------------------------------------------------------------------------
def test_unblock_keys_on_the_real_popup_keeps_the_model() -> None:
    assert keys.unblock_keys((REAL / "screen_G_tui.2_429.screen.txt").read_text()) == b"\x1b[B\r"


@pytest.mark.parametrize("name", ["screen_G_tui.2b_popup_dismissed.screen.txt", "screen_G_tui.1_hi.screen.txt",
                                  "screen_G_tui.3_after.screen.txt", "screen_G_tui.0_start.screen.txt"])
def test_unblock_keys_none_without_the_popup(name: str) -> None:
    assert keys.unblock_keys((REAL / name).read_text()) is None


def test_unblock_keys_from_other_selected_rows() -> None:
    popup = ("  Approaching rate limits\n  Switch to gpt-6-luna for lower credit usage?\n\n"
             "  1. Switch to gpt-6-luna\n{two}2. Keep current model\n{three}3. Keep current model (never show again)\n")
    assert keys.unblock_keys(popup.format(two="› ", three="  ")) == b"\r"
    assert keys.unblock_keys(popup.format(two="  ", three="› ")) == b"\x1b[A\r"


def test_resume_keys_bracketed_paste_then_enter() -> None:
    assert keys.resume_keys("Continue") == b"\x1b[200~Continue\x1b[201~\r"
    assert keys.resume_keys("a\x1b[201~b\r\nc") == b"\x1b[200~a[201~b\nc\x1b[201~\r"


# --- a reset given as a delay is relative (timed on the elapsed clock), a named time is not ----------
def test_a_delay_is_relative_and_a_named_time_is_not() -> None:
    delay = limits.read_message("You've hit your usage limit. Upgrade to Pro or try again in 2 hours 13 minutes.",
                                NOW, UTC)
    named = limits.read_message("You've hit your usage limit. Try again at 3:32 PM.", NOW, UTC)
    dated = limits.read_message("You've hit your usage limit. Try again at Mar 10th, 2027 3:39 AM.", NOW, UTC)
    assert (delay.reset_at, delay.reset_relative) == (NOW + 2 * 3600 + 13 * 60, True)
    assert named.reset_relative is False and dated.reset_relative is False
    assert limits.search_text("■ You've hit your usage limit. Try again in 5 minutes.", NOW).reset_relative is True
    seconds = limits.search_raw_body('{"error":{"type":"usage_limit_reached","resets_in_seconds":60}}', NOW)
    at = limits.search_raw_body('{"error":{"type":"usage_limit_reached","resets_at":1773113950,'
                                '"resets_in_seconds":467439}}', NOW)
    assert (seconds.reset_at, seconds.reset_relative) == (NOW + 60, True)
    assert (at.reset_at, at.reset_relative) == (1773113950.0, False)


def test_a_snapshot_window_counting_seconds_is_relative() -> None:
    legacy = {"primary": {"used_percent": 100.0, "window_minutes": 300, "resets_in_seconds": 600}}
    current = {"primary": {"used_percent": 100.0, "window_minutes": 300, "resets_at": 1795361528}}
    assert limits.scope_and_reset_of(legacy, NOW, None) == ("session", (NOW + 600, True))
    assert limits.scope_and_reset_of(current, NOW, None) == ("session", (1795361528.0, False))
    text = limits.read_message("You've hit your usage limit. Try again in 10 minutes.", NOW, UTC).reset
    assert limits.scope_and_reset_of(None, NOW, text) == ("unknown", (NOW + 600, True))


def test_scanner_signals_say_whether_the_reset_was_a_delay() -> None:
    (delay,) = signals(scan("stderr", b"ERROR: You've hit your usage limit. Try again in 5 minutes.\n"))
    (named,) = signals(scan("stderr", b"ERROR: You've hit your usage limit. Try again at 3:32 PM.\n"))
    (body,) = signals(scan("stderr", b'ERROR codex_api: 429 {"error":{"type":"usage_limit_reached",'
                                     b'"resets_in_seconds":90}}\n'))
    assert (delay.reset_relative, named.reset_relative, body.reset_relative) == (True, False, True)
    extra = CodexOutputScanner(ctx(extra_limit_patterns=(r"quota gone, back in (?P<reset>\d+ minutes)",)))
    (signal,) = signals(scan("stderr", b"quota gone, back in 5 minutes\n", scanner=extra))
    assert signal.reset_relative is True
