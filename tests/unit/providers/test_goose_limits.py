"""goose usage-limit detection: every wording, reset times on fixed clocks and zones, output scanning."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from zag.logs import events
from zag.providers.base import LaunchContext, LimitSignal, SessionIdHint
from zag.providers.goose import limits
from zag.providers.goose.scanner import GooseOutputScanner

SUFFIX = ".\n\nPlease retry if you think this is a transient or recoverable error."
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
# 2026-03-10 10:00 in Berlin (09:00 UTC)
NOW = datetime(2026, 3, 10, 10, 0, tzinfo=BERLIN).timestamp()


def at(zone: ZoneInfo, *parts: int) -> float:
    return datetime(*parts, tzinfo=zone).timestamp()


def minute_end(zone: ZoneInfo, *parts: int) -> float:
    """What a reset shown to the minute stands for: the end of that minute (the CLIs floor resets)."""
    return at(zone, *parts) + 60


@pytest.fixture(autouse=True)
def berlin_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Berlin")


# --- which errors are limit hits ------------------------------------------------------------------------
@pytest.mark.parametrize("error, scope, reset", [
    ("Rate limit exceeded: 429 Too Many Requests", events.SCOPE_UNKNOWN, None),
    ("Rate limit exceeded: Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): "
     "Limit 30000, Used 29500, Requested 1200. Please try again in 6.5s.", events.SCOPE_UNKNOWN, NOW + 6.5),
    ('Rate limit exceeded: {"error":{"code":429,"message":"Quota exceeded for metric '
     'generate_content_free_tier_requests, limit: 50","status":"RESOURCE_EXHAUSTED","details":[{"@type":'
     '"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":'
     '"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo",'
     '"retryDelay":"41s"}]}}', events.SCOPE_DAILY, NOW + 41),
    ("Rate limit exceeded: anthropic returned 429 (retry-after: 120)", events.SCOPE_UNKNOWN, NOW + 120),
    # goose driving another CLI ("CLI providers"): the wrapped CLI's own limit text is in the details
    ("Execution error: Claude CLI command failed: You've hit your limit · resets 3pm (Europe/Berlin)",
     events.SCOPE_UNKNOWN, minute_end(BERLIN, 2026, 3, 10, 15, 0)),
    ("Request failed: You’ve hit your weekly limit · resets Mar 17 at 10pm (Europe/Lisbon)",
     events.SCOPE_WEEKLY, minute_end(ZoneInfo("Europe/Lisbon"), 2026, 3, 17, 22, 0)),
    ("Execution error: Claude AI usage limit reached|1773158400", events.SCOPE_UNKNOWN, 1773158400.0),
    ("Execution error: 5-hour limit reached ∙ resets 5am", events.SCOPE_SESSION, minute_end(BERLIN, 2026, 3, 11, 5, 0)),
    ("Request failed: codex exited 1: You've hit your usage limit. Upgrade to Pro "
     "(https://openai.com/chatgpt/pricing) or try again at Mar 10th, 2026 3:39 PM.",
     events.SCOPE_UNKNOWN, minute_end(BERLIN, 2026, 3, 10, 15, 39)),
    ("Execution error: gemini: Usage limit reached for gemini-2.5-pro. Please retry in 41.2s.",
     events.SCOPE_UNKNOWN, NOW + 41.2),
    ("Execution error: You have exhausted your daily quota on this model.", events.SCOPE_DAILY, None),
    ("Server error: TerminalQuotaError: quota exhausted", events.SCOPE_UNKNOWN, None),
])
def test_limit_wordings(error: str, scope: str, reset: float | None) -> None:
    limit = limits.classify(error, NOW)
    assert limit is not None
    assert limit.scope == scope
    assert limit.reset_at == (pytest.approx(reset, abs=1e-3) if reset is not None else None)


@pytest.mark.parametrize("error", [
    "Credits exhausted: Your Tetrate balance is empty. Top up at https://example.test",
    "Insufficient balance: 1200 sats required. Please top up your balance to continue.",
    "Context length exceeded: prompt is too long: 210000 tokens > 200000 maximum",
    "Authentication error: invalid x-api-key",
    "Server error: 500 Internal Server Error",
    "Network error: Could not connect to api.anthropic.com — check your network connection and try again.",
    "Request failed: status: 400 Bad Request",
])
def test_other_errors_are_not_limit_hits(error: str) -> None:
    assert limits.classify(error, NOW) is None


def test_reset_across_a_dst_change(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    before_spring_forward = at(NEW_YORK, 2026, 3, 8, 1, 30)          # EST; clocks jump 2am → 3am
    limit = limits.classify("Rate limit exceeded: You've hit your limit · resets 4am", before_spring_forward)
    assert limit is not None and limit.reset_at == minute_end(NEW_YORK, 2026, 3, 8, 4, 0)
    assert limit.reset_at - before_spring_forward == 1.5 * 3600 + 60     # only 1.5 h of wall time


# --- goose's error records ----------------------------------------------------------------------------------
def test_error_record_shapes() -> None:
    text = "Ran into this error: Rate limit exceeded: slow down" + SUFFIX
    record = limits.error_record("assistant", [{"type": "text", "text": text}], None)
    assert record is not None and record.error == "Rate limit exceeded: slow down" and record.kind is None
    compact = limits.error_record("assistant", [{"type": "text", "text": "Ran into this error trying to compact: "
                                                 "Rate limit exceeded: x" + SUFFIX}], {})
    assert compact is not None and compact.error == "Rate limit exceeded: x"
    item_only = limits.error_record("assistant", [{"type": "error", "kind": "other",
                                                   "message": "Rate limit exceeded: quota"}], None)
    assert item_only is not None and item_only.error == "Rate limit exceeded: quota" and item_only.kind == "other"
    credits = limits.error_record("assistant", [{"type": "text", "text": "Ran into this error: Rate limit exceeded:"
                                                 " x" + SUFFIX}, {"type": "error", "kind": "creditsExhausted"}], None)
    assert credits is not None and limits.record_limit(credits, NOW) is None


@pytest.mark.parametrize("role, content, metadata", [
    ("user", [{"type": "text", "text": "Ran into this error: Rate limit exceeded: x" + SUFFIX}], None),
    ("assistant", [{"type": "text", "text": "Goose said: Ran into this error: Rate limit exceeded: x" + SUFFIX}], None),
    ("assistant", [{"type": "text", "text": "Ran into this error: Rate limit exceeded: x" + SUFFIX + " So I stopped."}],
     None),
    ("assistant", [{"type": "text", "text": "Ran into this error: Rate limit exceeded: x" + SUFFIX}],
     {"inference": {"provider": "openai", "requestedModel": "gpt-4o"}}),
    ("assistant", [{"type": "text", "text": "Ran into this error: Rate limit exceeded: x" + SUFFIX},
                   {"type": "toolRequest", "id": "t"}], None),
    ("assistant", "not a list", None),
])
def test_ordinary_messages_are_not_error_records(role, content, metadata) -> None:
    assert limits.error_record(role, content, metadata) is None


# --- output scanning ----------------------------------------------------------------------------------------
def scanner(*patterns: str) -> GooseOutputScanner:
    ctx = LaunchContext(cwd="/w", env={}, interactive=False, started_at=NOW, zag_session_id="z",
                        extra_limit_patterns=tuple(patterns))
    return GooseOutputScanner(ctx, clock=lambda: NOW)


def feed_lines(scan: GooseOutputScanner, stream: str, *lines: str) -> list:
    items: list = []
    for line in lines:
        items += scan.feed(stream, (line + "\n").encode())
    return items + scan.finish()


def test_stream_json_error_and_message_lines() -> None:
    error = json.dumps({"type": "error", "error": "Rate limit exceeded: please retry after 30s"})
    message = json.dumps({"type": "message", "message": {
        "id": None, "role": "assistant", "created": 1, "metadata": {"userVisible": True, "agentVisible": True},
        "content": [{"type": "text", "text": "Ran into this error: Rate limit exceeded: 429 (retry-after: 60)" + SUFFIX}]}})
    items = feed_lines(scanner(), "stdout", '{"type":"notification","extension_id":"developer","log":{"message":"x"}}',
                       error, message, '{"type":"complete","total_tokens":12}')
    assert [type(item) for item in items] == [LimitSignal, LimitSignal]
    assert all(item.structured and item.source == "stdout" for item in items)
    assert items[0].reset_at == NOW + 30 and items[1].reset_at == NOW + 60
    assert items[0].raw == "Rate limit exceeded: please retry after 30s"


def test_stream_json_quoting_or_pasting_is_not_a_hit() -> None:
    quoted = json.dumps({"type": "message", "message": {"role": "assistant", "created": 1, "content": [
        {"type": "text", "text": "The log says: Ran into this error: Rate limit exceeded: 429" + SUFFIX}]}})
    pasted = json.dumps({"type": "message", "message": {"role": "user", "created": 1, "content": [
        {"type": "text", "text": "Ran into this error: Rate limit exceeded: 429" + SUFFIX}]}})
    other = json.dumps({"type": "error", "error": "Context length exceeded: too long"})
    assert feed_lines(scanner(), "stdout", quoted, pasted, other) == []


def test_json_document_pretty_printed_or_on_one_line() -> None:
    document = {"messages": [
        {"role": "user", "created": 1, "content": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "created": 2, "content": [
            {"type": "text", "text": "Ran into this error: Rate limit exceeded: try again in 5 minutes" + SUFFIX}]}],
        "metadata": {"total_tokens": None, "status": "error"}}
    pretty = feed_lines(scanner(), "stdout", *json.dumps(document, indent=2).splitlines())
    assert len(pretty) == 1 and pretty[0].structured and pretty[0].reset_at == NOW + 300
    one_line = feed_lines(scanner(), "stdout", json.dumps(document))
    assert len(one_line) == 1 and one_line[0].raw.startswith("Ran into this error")


def test_text_output_lines() -> None:
    line = "\x1b[31m● Ran into this error: Rate limit exceeded: resets 3pm (Europe/Berlin)\x1b[0m"
    items = feed_lines(scanner(), "pty", line, "", "Please retry if you think this is a transient or recoverable error.")
    assert len(items) == 1 and items[0].structured is False and items[0].source == "pty"
    assert items[0].raw == "● Ran into this error: Rate limit exceeded: resets 3pm (Europe/Berlin)"
    assert items[0].reset_at == minute_end(BERLIN, 2026, 3, 10, 15, 0)
    rendered = feed_lines(scanner(), "stderr", "  error: Rate limit exceeded: retry after 20s")
    assert len(rendered) == 1 and rendered[0].reset_at == NOW + 20 and not rendered[0].structured
    assert feed_lines(scanner(), "stdout", "I ran into this error: Rate limit exceeded: 429",
                      "error: Server error: 500",
                      "Ran into this error: Credits exhausted: none left",
                      "Ran into this error: Server error: 502") == []


def test_partial_chunks_and_one_signal_per_line() -> None:
    scan = scanner(r"rate limit exceeded")
    data = b"Ran into this error: Rate limit ex" + b"ceeded: 429 Too Many Requests\r\nnext"
    items = scan.feed("stdout", data[:20]) + scan.feed("stdout", data[20:])
    assert len(items) == 1 and items[0].raw == "Ran into this error: Rate limit exceeded: 429 Too Many Requests"
    assert scan.finish() == []


def test_session_id_from_the_start_banner() -> None:
    items = feed_lines(scanner(), "stdout", "starting session | provider: openai model: gpt-4o",
                       "    session id: 20251108_3", "    working directory: /w",
                       "  ● new session · anthropic claude-sonnet-4-5", "     20251108_4 · /work/proj",
                       "     20251108_4 · /work/proj", "the id 20251108_5 · was mentioned")
    assert items == [SessionIdHint("20251108_3", source="stdout"), SessionIdHint("20251108_4", source="stdout")]


def test_extra_patterns_with_reset_group() -> None:
    scan = scanner(r"quota wall hit, back at (?P<reset>\d{1,2}(?::\d\d)?\s*[ap]m)", "([unclosed")
    items = feed_lines(scan, "stderr", "provider says: quota wall hit, back at 4pm")
    assert len(items) == 1 and not items[0].structured and items[0].reset_at == minute_end(BERLIN, 2026, 3, 10, 16, 0)
    assert items[0].raw == "quota wall hit, back at 4pm"


# --- a reset given as a delay is relative (timed on the elapsed clock), a named time is not ----------
@pytest.mark.parametrize("error, relative", [
    ("Rate limit exceeded: Rate limit reached for gpt-4o on tokens per min (TPM). Please try again in 6.5s.", True),
    ('Rate limit exceeded: {"error":{"code":429,"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo",'
     '"retryDelay":"41s"}]}}', True),
    ("Rate limit exceeded: anthropic returned 429 (retry-after: 120)", True),
    ("Execution error: gemini: Usage limit reached for gemini-2.5-pro. Please retry in 41.2s.", True),
    ("Execution error: Claude CLI command failed: You've hit your limit · resets in 2 hours", True),
    ("Execution error: Claude CLI command failed: You've hit your limit · resets 3pm (Europe/Berlin)", False),
    ("Request failed: You’ve hit your weekly limit · resets Mar 17 at 10pm (Europe/Lisbon)", False),
    ("Execution error: Claude AI usage limit reached|1773158400", False),
    ('Rate limit exceeded: {"resets_at": 1773158400}', False),
    ("Rate limit exceeded: 429 Too Many Requests", False),
])
def test_a_delay_is_relative_and_a_named_time_is_not(error: str, relative: bool) -> None:
    limit = limits.classify(error, NOW)
    assert limit is not None and limit.reset_relative is relative


def test_scanner_signals_say_whether_the_reset_was_a_delay() -> None:
    error = json.dumps({"type": "error", "error": "Rate limit exceeded: please retry after 30s"})
    named = "● Ran into this error: Rate limit exceeded: resets 3pm (Europe/Berlin)"
    [delay] = feed_lines(scanner(), "stdout", error)
    [clock] = feed_lines(scanner(), "pty", named)
    back_in = scanner(r"quota gone, back in (?P<reset>\d+ minutes)")
    [extra] = feed_lines(back_in, "stderr", "quota gone, back in 5 minutes")
    assert (delay.reset_relative, clock.reset_relative, extra.reset_relative) == (True, False, True)


def test_session_id_from_the_goose_ascii_banner() -> None:
    """goose 1.1x+ prints the id beside its ASCII goose (crates/goose-cli/src/session/output.rs
    display_session_info: `"  {}  {} {} {}"` with ` \\____)`, ` `, the id, `· <cwd>`), on stdout before
    any stream-json line too. Recorded 2026 banners, colours and all."""
    items = feed_lines(scanner(), "stdout",
                       "    __( O)>  ● new session · ollama qwen3-coder:30b",
                       "   \\____)    20260420_38 · /Users/someone/git/goose-recipes",
                       "     L L     goose is ready")
    styled = b"  \x1b[37m \\____)\x1b[0m  \x1b[2m \x1b[0m \x1b[2m20260916_6\x1b[0m \x1b[2m\xc2\xb7 /tmp/goosetest\x1b[0m\n"
    items += scanner().feed("stdout", styled)
    assert items == [SessionIdHint("20260420_38", source="stdout"), SessionIdHint("20260916_6", source="stdout")]
