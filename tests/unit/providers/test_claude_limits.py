"""Claude usage-limit detection: every wording (fixed clocks and zones), stream-json events, real captures,
prose and pastes that are not hits, the user's extra patterns."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from zag.providers.base import LaunchContext, LimitSignal, SessionIdHint
from zag.providers.claude import limits
from zag.providers.claude.scanner import ClaudeOutputScanner
from zag.providers.reset_time import ROUNDING_GRACE_SECS

REPO = Path(__file__).resolve().parents[3]
REAL = REPO / "tests" / "fixtures" / "corpus" / "real-cli" / "claude"
OWN = REPO / "tests" / "fixtures" / "claude"


def at(text: str, zone: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


def end(text: str, zone: str = "UTC") -> float:
    """The end of the minute `text` names: what a reset shown to the minute stands for (claude floors it)."""
    return at(text, zone) + 60


@pytest.fixture(autouse=True)
def berlin(monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent renders reset times in the process's zone; pin it."""
    monkeypatch.setenv("TZ", "Europe/Berlin")


def scanner(*extra: str) -> ClaudeOutputScanner:
    return ClaudeOutputScanner(LaunchContext(cwd="/tmp", env={}, interactive=False, started_at=time.time(),
                                             zag_session_id="z", extra_limit_patterns=tuple(extra)))


def feed(scan: ClaudeOutputScanner, stream: str, data: bytes, step: int = 7) -> list:
    items = []
    for start in range(0, len(data), step):
        items.extend(scan.feed(stream, data[start:start + step]))
    return items + scan.finish()


def signals(items: list) -> list[LimitSignal]:
    return [item for item in items if isinstance(item, LimitSignal)]


API_KEY_429 = ("API Error: Request rejected (429) · This request would exceed your account's rate limit. "
               "Please try again later.")


# --- wordings ------------------------------------------------------------------------------------
NOW = at("2026-02-10T09:00:00")  # 10:00 in Berlin (CET)

WORDINGS = [
    # text, scope, reset (epoch) or None
    ("Claude AI usage limit reached|1755615600", "unknown", 1755615600.0),
    ("Claude AI usage limit reached|1755615600000", "unknown", 1755615600.0),
    ("Claude usage limit reached. Your limit will reset at 5pm (Europe/Warsaw).", "unknown",
     end("2026-02-10T17:00:00", "Europe/Warsaw")),
    ("5-hour limit reached ∙ resets 5am", "session", end("2026-02-11T05:00:00", "Europe/Berlin")),
    ("5-hour limit reached · resets 3pm", "session", end("2026-02-10T15:00:00", "Europe/Berlin")),
    ("Weekly limit reached ∙ resets Feb 14, 9am", "weekly", end("2026-02-14T09:00:00", "Europe/Berlin")),
    ("You've hit your session limit · resets 3pm (Europe/Berlin)", "session",
     end("2026-02-10T15:00:00", "Europe/Berlin")),
    ("You’ve hit your weekly limit · resets Feb 16, 11am (Europe/Berlin)", "weekly",
     end("2026-02-16T11:00:00", "Europe/Berlin")),
    ("You've hit your limit · resets Apr 23 at 4pm (America/Recife)", "unknown",
     end("2026-04-23T16:00:00", "America/Recife")),
    ("You've hit your limit · resets 8pm (Europe/Berlin) · /upgrade to increase your usage limit.", "unknown",
     end("2026-02-10T20:00:00", "Europe/Berlin")),
    ("You've hit your limit · resets 8pm (Europe/Berlin) /login to switch to an API usage-billed account.", "unknown",
     end("2026-02-10T20:00:00", "Europe/Berlin")),
    # 01:00 in Los Angeles now: 12:50am was ten minutes ago, i.e. the CLI's rounding — the reset is now
    ("You've hit your session limit · resets 12:50am (America/Los_Angeles)", "session",
     end("2026-02-10T00:50:00", "America/Los_Angeles")),
    ("You've hit your weekly limit · resets Sep 17 at 10pm (Europe/Lisbon)", "weekly",
     end("2026-09-17T22:00:00", "Europe/Lisbon")),
    ("You're out of extra usage · resets 11:59pm (UTC)", "unknown", end("2026-02-10T23:59:00")),
    ("You've hit your individual spend limit", "unknown", None),
    ("You've reached your Opus limit. Run /usage-credits to continue.", "unknown", None),
    (API_KEY_429, "unknown", None),
    ("API Error: Request rejected (429) · The usage limit has been reached", "unknown", None),
    ('API Error: 429 {"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed your '
     "account's rate limit. Please try again later.\"}}", "unknown", None),
    # as the TUI shows them (glyphs, NBSP)
    ("  ⎿ \u00a0You've hit your session limit · resets 3:51pm (UTC)", "session", end("2026-02-10T15:51:00")),
    ("● API Error: Request rejected (429) · This request would exceed your account's rate limit.", "unknown", None),
    ("✕ Claude usage limit reached. Your limit will reset at 5pm (Europe/Warsaw).", "unknown",
     end("2026-02-10T17:00:00", "Europe/Warsaw")),
]


@pytest.mark.parametrize("text,scope,reset", WORDINGS, ids=[item[0][:48] for item in WORDINGS])
def test_wording(text: str, scope: str, reset: float | None) -> None:
    hit = limits.match_text(text, NOW)
    assert hit is not None
    assert hit.scope == scope
    assert hit.reset_at == reset
    assert hit.raw in text and not hit.raw.startswith((" ", "⎿", "●", "✕"))


NOT_HITS = [
    'Sure — claude prints "You\'ve hit your session limit · resets 3pm" when that happens.',
    "❯ You've hit your session limit · resets 3pm (Europe/Berlin)",    # the user typing/pasting at the prompt
    "> Claude AI usage limit reached|1755615600",                      # quoted
    "Claude AI usage limit reached|1755615600 is what the old CLI printed",  # not the whole line
    "The 5-hour limit reached its end yesterday, so we can go on.",
    'API Error: 529 {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
    "API Error: 500 Internal server error",
    "Prompt is too long",
    "I think you've hit your session limit · resets 3pm",
]


@pytest.mark.parametrize("text", NOT_HITS)
def test_not_a_hit(text: str) -> None:
    assert limits.match_text(text, NOW) is None


def test_clock_time_just_past_means_now_not_tomorrow() -> None:
    now = at("2026-02-10T15:04:00", "Europe/Berlin")  # the CLI rounds to the minute
    assert limits.match_text("You've hit your session limit · resets 3pm (Europe/Berlin)", now).reset_at \
        == end("2026-02-10T15:00:00", "Europe/Berlin")
    later = at("2026-02-10T16:00:00", "Europe/Berlin")
    assert limits.match_text("You've hit your session limit · resets 3pm (Europe/Berlin)", later).reset_at \
        == end("2026-02-11T15:00:00", "Europe/Berlin")


def test_dst_fall_back_takes_the_first_occurrence() -> None:
    now = at("2026-10-24T23:00:00")  # 01:00 CEST, clocks go back at 03:00 CEST
    hit = limits.match_text("You've hit your session limit · resets 2:30am (Europe/Berlin)", now)
    assert hit.reset_at == end("2026-10-25T00:30:00")  # 02:30 CEST, not 02:30 CET an hour later


def test_reset_without_zone_uses_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    hit = limits.match_text("5-hour limit reached ∙ resets 5am", at("2026-07-01T12:00:00"))
    assert hit.reset_at == end("2026-07-02T05:00:00", "America/New_York")


# --- stream-json (structured) --------------------------------------------------------------------
def test_stream_json_oauth_limit() -> None:
    items = feed(scanner(), "stdout", (REAL / "stdout_H1_oauth_429_5h_resume.jsonl").read_bytes())
    assert [item.provider_session_id for item in items if isinstance(item, SessionIdHint)] == [
        "c1ed8895-4d43-4a7c-b1f8-80fd08a976d0"]
    event, assistant, result = signals(items)
    assert all(signal.structured and signal.source == "stdout" for signal in (event, assistant, result))
    assert (event.scope, event.reset_at) == ("session", 1795362628.0)
    assert '"rate_limit_event"' in event.raw
    assert assistant.raw == result.raw == "You've hit your session limit · resets 3:50pm (UTC)"
    assert assistant.scope == result.scope == "session"
    moment = datetime.fromtimestamp(assistant.reset_at - 60, timezone.utc)  # the end of the minute shown
    assert (moment.hour, moment.minute, moment.second) == (15, 50, 0)
    # the next 3:50pm, or today's when it passed less than ROUNDING_GRACE_SECS ago (a reset just gone)
    assert -ROUNDING_GRACE_SECS <= assistant.reset_at - time.time() < 86400 + 600


@pytest.mark.parametrize("name", ["stdout_B_429.jsonl", "stdout_C_429_retry.jsonl"])
def test_stream_json_api_key_limit(name: str) -> None:
    found = signals(feed(scanner(), "stdout", (REAL / name).read_bytes()))
    assert len(found) == 2  # the synthetic assistant and the result (api_error_status 429); api_retry is not one
    assert all(signal.structured and signal.reset_at is None and signal.scope == "unknown" for signal in found)
    assert found[0].raw.startswith("API Error: Request rejected (429)")


@pytest.mark.parametrize("name", ["stdout_A_hi.jsonl", "stdout_D_429_once.jsonl", "stdout_E_usage_text.jsonl",
                                  "stdout_F_resume.jsonl", "stdout_H5_oauth_warning.jsonl",
                                  "stdout_F5_resume_unknown_id.jsonl"])
def test_stream_json_without_a_hit(name: str) -> None:
    items = feed(scanner(), "stdout", (REAL / name).read_bytes(), step=101)
    assert signals(items) == []
    assert len([item for item in items if isinstance(item, SessionIdHint)]) == 1


def test_stream_json_tool_use_of_the_real_cli() -> None:
    items = feed(scanner(), "stdout", (OWN / "stdout_tool_use.jsonl").read_bytes(), step=50)
    assert items == [SessionIdHint("0b7f6c1e-3d2a-4c55-9e61-7a8b9c0d1e2f", "stdout")]


def test_assistant_quoting_a_limit_in_stream_json_is_not_a_hit() -> None:
    line = (b'{"type":"assistant","message":{"id":"msg_1","model":"claude-x","content":[{"type":"text",'
            b'"text":"You\'ve hit your session limit \xc2\xb7 resets 3pm (Europe/Berlin)"}]},"session_id":"s1"}\n'
            b'{"type":"result","subtype":"success","is_error":false,"result":"You\'ve hit your session limit '
            b'\xc2\xb7 resets 3pm (Europe/Berlin)","session_id":"s1"}\n')
    assert signals(feed(scanner(), "stdout", line)) == []


def test_result_with_is_error_and_a_legacy_limit_line_is_a_hit() -> None:
    line = (b'{"type":"result","subtype":"success","is_error":true,'
            b'"result":"Claude AI usage limit reached|1755615600"}\n')
    [signal] = signals(feed(scanner(), "stdout", line))
    assert signal.structured and signal.reset_at == 1755615600.0


# --- plain output and the TUI (unconfirmed) -------------------------------------------------------
@pytest.mark.parametrize("name,scope,epoch", [
    ("stdout_B2_429_text.txt", "unknown", None),
    ("stdout_E2_usage_text_plain.txt", "unknown", 1795362621.0),
    ("stdout_H2_oauth_429_5h_text.txt", "session", "15:50"),
    ("stdout_H3_oauth_429_7d_text.txt", "weekly", "15:50"),
])
def test_plain_output_captures(name: str, scope: str, epoch) -> None:
    [signal] = signals(feed(scanner(), "stdout", (REAL / name).read_bytes()))
    assert (signal.structured, signal.source, signal.scope) == (False, "stdout", scope)
    assert signal.raw == (REAL / name).read_text().strip()
    if isinstance(epoch, str):  # a clock time: the end of that minute
        moment = datetime.fromtimestamp(signal.reset_at - 60, timezone.utc)
        assert f"{moment.hour}:{moment.minute}" == epoch
    else:
        assert signal.reset_at == epoch


def test_stderr_of_an_unknown_session_is_nothing() -> None:
    assert feed(scanner(), "stderr", (REAL / "stderr_F5_resume_unknown_id.txt").read_bytes()) == []


@pytest.mark.parametrize("name,raw", [
    ("screen_G2_tui_oauth.2_429.screen.txt", "You've hit your session limit · resets 3:51pm (UTC)"),
    ("screen_G_tui_apikey.2_429.screen.txt", API_KEY_429),
])
def test_tui_screens(name: str, raw: str) -> None:
    [signal] = signals(feed(scanner(), "pty", (REAL / name).read_bytes(), step=64))
    assert (signal.raw, signal.structured, signal.source) == (raw, False, "pty")


def test_tui_screens_without_a_hit() -> None:
    for name in ("screen_G2_tui_oauth.1_hi.screen.txt", "screen_G_tui_apikey.1_hi.screen.txt",
                 "screen_G2_tui_oauth.0_start.screen.txt"):
        assert signals(feed(scanner(), "pty", (REAL / name).read_bytes())) == []


def test_exit_screen_reports_the_session_id() -> None:
    items = feed(scanner(), "pty", (REAL / "screen_G2_tui_oauth.4_exit.screen.txt").read_bytes())
    hints = [item for item in items if isinstance(item, SessionIdHint)]
    assert hints == [SessionIdHint("7e924ea7-9365-41d3-8261-a5bac471b837", "pty")]


def test_raw_pty_bytes_of_the_real_tui_give_one_hit() -> None:
    """claude 2.1.197 positions words with cursor-to-column sequences; redraws repeat lines."""
    data = (OWN / "pty_oauth_limit_dialog.bin").read_bytes()
    found = signals(feed(scanner(), "pty", data + data, step=333))
    assert len(found) == 1
    assert found[0].raw == "You've hit your session limit · resets 1:18am (UTC)"
    assert found[0].scope == "session"


def test_the_same_line_is_reported_once_per_scanner_but_a_new_scanner_reports_it() -> None:
    text = b"You've hit your session limit \xc2\xb7 resets 3pm (Europe/Berlin)\n"
    scan = scanner()
    assert len(signals(feed(scan, "stdout", text))) == 1
    assert signals(feed(scan, "stdout", text)) == []
    assert len(signals(feed(scanner(), "stdout", text))) == 1


def test_extra_patterns() -> None:
    scan = scanner(r"quota kaput until (?P<reset>\d{1,2}(?::\d\d)?(?:am|pm))", r"[invalid(")
    [signal] = signals(feed(scan, "stderr", b"warning: quota kaput until 6pm, sorry\n"))
    assert signal.raw == "quota kaput until 6pm" and not signal.structured
    moment = datetime.fromtimestamp(signal.reset_at, ZoneInfo("Europe/Berlin"))
    assert (moment.hour, moment.minute) == (18, 1)  # the end of the minute 6pm names


def test_long_lines_and_garbage_do_not_break_the_scanner() -> None:
    scan = scanner()
    junk = b"{" + b"x" * 600_000 + b"\n" + b"\xff\xfe{not json\n" + b'{"type": 5}\n'
    assert signals(feed(scan, "stdout", junk, step=65536)) == []
    assert signals(feed(scan, "stdout", b"You've hit your weekly limit \xc2\xb7 resets 9am\n")) != []


# --- a reset given as a delay is relative (timed on the elapsed clock), a named time is not ----------
@pytest.mark.parametrize("line, relative", [
    ("You've hit your session limit · resets in 2 hours", True),
    ("Claude usage limit reached. Your limit will reset at 5pm (Europe/Warsaw).", False),
    ("You've hit your session limit · resets 3:50pm (UTC)", False),
    ("You've hit your weekly limit · resets Feb 16, 11am", False),
    ("Claude AI usage limit reached|1773158400", False),
    ("API Error: Request rejected (429) · This request would exceed your account's rate limit.", False),
])
def test_a_delay_is_relative_and_a_named_time_is_not(line: str, relative: bool) -> None:
    hit = limits.match_text(line, at("2026-07-01T12:00:00"))
    assert hit is not None and hit.reset_relative is relative


def test_signals_say_whether_the_reset_was_a_delay() -> None:
    [delay] = signals(feed(scanner(), "stderr", "You've hit your session limit · resets in 2 hours\n".encode()))
    [clock] = signals(feed(scanner(), "stderr", "You've hit your session limit · resets 3pm\n".encode()))
    extra_scanner = scanner(r"quota kaput for (?P<reset>\d+ minutes)")
    [extra] = signals(feed(extra_scanner, "stderr", b"quota kaput for 5 minutes\n"))
    assert (delay.reset_relative, clock.reset_relative, extra.reset_relative) == (True, False, True)
    now = time.time()
    record = limits.limit_from_error_record(error="rate_limit", status=429, now=now, source="provider_file",
                                            text="You've hit your session limit · resets in 30 minutes",
                                            quota=None, provider_session_id="s")
    quota = limits.limit_from_error_record(error="rate_limit", status=429, now=now, source="provider_file",
                                           text="You've hit your session limit · resets in 30 minutes",
                                           quota=("rejected", 1795362628, "five_hour"), provider_session_id="s")
    assert record is not None and record.reset_relative and record.reset_at == pytest.approx(now + 1800)
    assert quota is not None and not quota.reset_relative and quota.reset_at == 1795362628.0  # the epoch wins
