"""Codex rollout records → unified events: every corpus file, exact counts counted by hand, dedupe,
usage, forks, legacy lines, and limit signals (never from prose)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from zag.logs import events
from zag.providers.base import LimitSignal
from zag.providers.codex.records import RecordMapper

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "corpus"
CODEX_FILES = sorted((CORPUS / "codex").glob("*.jsonl")) + sorted((CORPUS / "real-cli" / "codex").glob("*.jsonl"))
LIMIT_TEXT = ("You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit "
              "https://chatgpt.com/settings/usage to purchase more credits or try again at 3:32 PM.")


def map_lines(lines: list[bytes | str | dict], mapper: RecordMapper | None = None) -> list:
    mapper = mapper or RecordMapper()
    items = []
    for line in lines:
        if isinstance(line, dict):
            line = json.dumps(line)
        if isinstance(line, str):
            line = line.encode()
        items.extend(mapper.map_line(line))
    return items


def map_file(path: Path) -> list:
    return map_lines(path.read_bytes().split(b"\n"))


def kinds(items: list) -> Counter:
    return Counter(item["type"] if isinstance(item, dict) else type(item).__name__ for item in items)


def of_type(items: list, kind: str) -> list[dict]:
    return [item for item in items if isinstance(item, dict) and item["type"] == kind]


def rec(kind: str, payload: dict, ts: str = "2026-11-22T14:32:08.000Z") -> dict:
    return {"timestamp": ts, "type": kind, "payload": payload}


def meta(session_id: str = "01a203ab-0000-7000-8000-000000000001", **extra) -> dict:
    return rec("session_meta", {"id": session_id, "cwd": "/srv/p", "source": "exec", **extra})


@pytest.mark.parametrize("path", CODEX_FILES, ids=lambda p: p.name[:50])
def test_every_corpus_file_maps_without_exception(path: Path) -> None:
    items = map_file(path)
    assert items
    for item in items:
        assert isinstance(item, (dict, LimitSignal))
        if isinstance(item, dict):
            assert item["type"] in events.EVENT_TYPES
            json.dumps(item)  # serialisable


def test_claude_code_log_rollout_exact() -> None:
    path = next((CORPUS / "codex").glob("claude-code-log_rollout-*.jsonl"))
    items = map_file(path)
    # counted by hand: meta + future record = 2 status; the duplicated user/assistant texts
    # (event_msg + response_item) once each; 3 calls with their 3 outputs; 1 reasoning summary
    assert kinds(items) == {"provider_status": 2, "user_message": 1, "reasoning": 1, "tool_call": 3,
                            "tool_result": 3, "assistant_message": 1}
    calls = of_type(items, "tool_call")
    assert [(c["tool_name"], c["tool_kind"], c["tool_id"]) for c in calls] == [
        ("exec_command", "shell", "call-structured-001"),
        ("apply_patch", "file_edit", "call-custom-001"),
        ("mcp__synthetic__lookup", "other", "call-mcp-001"),
    ]
    assert calls[0]["input"] == {"cmd": "find . -maxdepth 1 -type f"}
    results = of_type(items, "tool_result")
    assert results[0]["output"] == "./alpha.txt\n./beta.txt" and results[0]["tool_name"] == "exec_command"
    assert results[1]["output"] == "Done!" and results[1]["success"] is True
    assert of_type(items, "assistant_message")[0]["model"] == "synthetic-model"
    assert of_type(items, "user_message")[0]["ts"] == "2026-01-02T03:04:07.000Z"
    assert all(i.get("provider_session_id") == "11111111-1111-4111-8111-111111111111" for i in items)
    assert "SYNTHETIC_ENCRYPTED_CONTENT_MUST_NOT_RENDER" not in json.dumps(items)
    assert of_type(items, "provider_status")[-1]["data"] == {"safe": "ignored"}


def test_real_cli_limit_then_resumed_exact() -> None:
    items = map_file(CORPUS / "real-cli" / "codex" / "rollout_usage_limit_then_resumed_ok.jsonl")
    # 25 lines: meta, additional_tools, 4 developer, 1 context, world_state, 2 thread_settings,
    # the failed turn = 11 provider_status; "say hi" and "Continue" (each written twice) = 2 users
    assert kinds(items) == {"provider_status": 11, "user_message": 2, "assistant_message": 1, "usage": 1,
                            "LimitSignal": 1}
    assert [m["content"] for m in of_type(items, "user_message")] == ["say hi", "Continue"]
    (assistant,) = of_type(items, "assistant_message")
    assert assistant["message_id"] == "msg_fake_67450de9348d" and assistant["model"] == "gpt-6-sol"
    (usage,) = of_type(items, "usage")
    assert (usage["input_tokens"], usage["output_tokens"], usage["cache_read_tokens"]) == (12, 5, 0)
    (signal,) = [i for i in items if isinstance(i, LimitSignal)]
    assert signal.structured and signal.source == "provider_file"
    assert signal.scope == "session" and signal.reset_at == 1795361528.0
    assert signal.raw.startswith("You’ve hit your usage limit")
    assert signal.provider_session_id == "01a203ab-eab3-7043-86ad-a425c7913562"
    status = of_type(items, "provider_status")[0]
    assert status["message"] == "session_meta" and status["cwd"] == "/srv/demo_codex/proj"


def test_real_cli_resumed_then_limit_usage_not_double_counted() -> None:
    items = map_file(CORPUS / "real-cli" / "codex" / "rollout_hi_resumed_ok_then_usage_limit.jsonl")
    usage = of_type(items, "usage")
    # three answered turns; the failed fourth turn repeats the last total (36/15): no usage for it
    assert len(usage) == 3
    assert sum(u["input_tokens"] for u in usage) == 36 and sum(u["output_tokens"] for u in usage) == 15
    assert [m["content"] for m in of_type(items, "user_message")] == ["say hi", "Continue", "Continue again",
                                                                     "Continue"]
    assert len(of_type(items, "assistant_message")) == 3
    (signal,) = [i for i in items if isinstance(i, LimitSignal)]
    assert signal.reset_at == 1795361534.0 and signal.scope == "session"


def test_stage0_small_mixed_eras() -> None:
    items = map_file(CORPUS / "codex" / "agent-sessions_stage0_small.jsonl")
    counts = kinds(items)
    # tool ids, counted by hand: call-1 (custom shell), call-2 (function), call-3 (tool_search),
    # ws-1 (web_search_call), call-4/5/6 (web_search_end, mcp end, patch end with no call before) and
    # the one "[trimmed for fixture]" id (later trimmed ids repeat it) = 8 calls; results for all but ws-1
    assert counts["tool_call"] == 8 and counts["tool_result"] == 7
    assert counts["parse_warning"] == 0
    assert "usage" in counts and counts["usage"] == 1
    assert of_type(items, "user_message")[0]["content"] == "List the files"
    assert of_type(items, "usage")[0]["input_tokens"] == 16341 - 3584
    assert of_type(items, "usage")[0]["reasoning_output_tokens"] == 63
    assert all(i.get("provider_session_id") == "019fc8be-3658-7ca3-9e29-000000000000"
               for i in items if isinstance(i, dict))
    assert "ghost_commit" not in json.dumps(items)
    statuses = [s["message"] for s in of_type(items, "provider_status")]
    assert "compacted" in statuses and "world_state" in statuses
    compacted = next(s for s in of_type(items, "provider_status") if s["message"] == "compacted")
    assert "replacement_history" not in compacted["data"] and compacted["data"]["replacement_history_items"] == 1


def test_schema_drift_legacy_lines() -> None:
    items = map_file(CORPUS / "codex" / "agent-sessions_stage0_schema_drift.jsonl")
    assert [i["type"] for i in items] == ["user_message", "tool_call", "tool_result", "assistant_message",
                                          "provider_status"]
    assert items[0]["content"] == "Translate 'hello' to Spanish"
    assert items[1]["tool_name"] == "translate" and items[1]["input"] == {"text": "hello", "to": "es"}
    assert items[2]["output"] == "hola" and items[2]["tool_name"] == "translate"
    assert items[3]["content"] == '"hola"'


def test_malformed_line_is_one_warning_and_reading_goes_on() -> None:
    items = map_file(CORPUS / "codex" / "claude-code-log_malformed_rollout.jsonl")
    assert [i["type"] for i in items] == ["provider_status", "user_message", "parse_warning"]
    assert items[2]["raw"] == "{synthetic malformed json"


def test_token_counts_cumulative_to_per_turn() -> None:
    items = map_file(CORPUS / "codex" / "ccusage_token_count_only.jsonl")
    first, second = of_type(items, "usage")
    assert (first["input_tokens"], first["cache_read_tokens"], first["output_tokens"], first["model"]) == (
        750, 250, 125, "gpt-5.2-codex")
    assert (second["input_tokens"], second["cache_read_tokens"], second["output_tokens"], second["model"]) == (
        2000, 500, 300, "gpt-5.3-codex")


def test_token_count_total_going_backwards_uses_last() -> None:
    def count(total: int, last: int) -> dict:
        usage = {"input_tokens": total, "output_tokens": 1, "total_tokens": total + 1}
        last_usage = {"input_tokens": last, "output_tokens": 1, "total_tokens": last + 1}
        return rec("event_msg", {"type": "token_count", "info": {"total_token_usage": usage,
                                                                 "last_token_usage": last_usage}})
    items = map_lines([meta(), count(100, 100), count(100, 100), count(40, 40), count(70, 30)])
    assert [u["input_tokens"] for u in of_type(items, "usage")] == [100, 40, 30]


def test_messages_dedupe_across_three_sources_and_repeat_in_later_turn() -> None:
    user = rec("response_item", {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]})
    event = rec("event_msg", {"type": "user_message", "message": "go"})
    item = rec("event_msg", {"type": "item_completed", "item": {"type": "UserMessage", "content": [
        {"type": "text", "text": "go"}]}})
    items = map_lines([meta(), user, event, item, event, user, item])
    assert [i["content"] for i in of_type(items, "user_message")] == ["go", "go"]


def test_context_and_developer_items_are_not_user_messages() -> None:
    env = rec("response_item", {"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "<environment_context>\n<cwd>/x</cwd>\n</environment_context>"}]})
    agents = rec("response_item", {"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "# AGENTS.md instructions for /x\n\nbe nice"}]})
    dev = rec("response_item", {"type": "message", "role": "developer", "content": [
        {"type": "input_text", "text": "system rules"}]})
    items = map_lines([meta(), env, agents, dev])
    assert of_type(items, "user_message") == []
    assert [s["message"] for s in of_type(items, "provider_status")] == [
        "session_meta", "context", "context", "developer message"]
    assert of_type(items, "provider_status")[3]["data"]["text"] == "system rules"


def test_tool_call_from_ui_event_first_is_not_repeated_by_response_items() -> None:
    end = rec("event_msg", {"type": "exec_command_end", "call_id": "c1", "command": ["ls"], "cwd": "/x",
                            "exit_code": 2, "aggregated_output": "nope", "stderr": "nope"})
    call = rec("response_item", {"type": "function_call", "name": "exec_command", "arguments": "{\"cmd\":\"ls\"}",
                                 "call_id": "c1"})
    output = rec("response_item", {"type": "function_call_output", "call_id": "c1", "output": "nope"})
    items = map_lines([meta(), end, call, output])
    assert kinds(items)["tool_call"] == 1 and kinds(items)["tool_result"] == 1
    result = of_type(items, "tool_result")[0]
    assert result["success"] is False and result["exit_code"] == 2 and result["error"] == "nope"


def test_function_output_exit_code_decides_success() -> None:
    call = rec("response_item", {"type": "function_call", "name": "shell", "arguments": "{}", "call_id": "c"})
    legacy = rec("response_item", {"type": "function_call_output", "call_id": "c", "output": json.dumps(
        {"output": "boom", "metadata": {"exit_code": 1}})})
    call2 = rec("response_item", {"type": "function_call", "name": "exec_command", "arguments": "{}", "call_id": "d"})
    unified = rec("response_item", {"type": "function_call_output", "call_id": "d",
                                    "output": "Chunk ID: 1\nWall time: 0.1\nProcess exited with code 0\nOutput:\nok"})
    items = map_lines([meta(), call, legacy, call2, unified])
    first, second = of_type(items, "tool_result")
    assert (first["success"], first["output"]) == (False, "boom")
    assert second["success"] is True


def test_reasoning_summary_dedupes_with_agent_reasoning_and_encrypted_is_never_text() -> None:
    reasoning = rec("response_item", {"type": "reasoning", "summary": [{"type": "summary_text", "text": "think A"},
                                                                       {"type": "summary_text", "text": "think B"}],
                                      "encrypted_content": "SECRET-BLOB"})
    events_ = [rec("event_msg", {"type": "agent_reasoning", "text": text}) for text in ("think A", "think B")]
    only_encrypted = rec("response_item", {"type": "reasoning", "summary": [], "encrypted_content": "SECRET-BLOB"})
    items = map_lines([meta(), reasoning, *events_, only_encrypted])
    assert [r["content"] for r in of_type(items, "reasoning")] == ["think A", "think B"]
    assert "SECRET-BLOB" not in json.dumps(items)


def test_unknown_and_wrong_typed_records() -> None:
    items = map_lines([meta(), rec("brand_new_kind", {"x": 1}), rec("event_msg", {"type": "new_event", "y": 2}),
                       '{"type":"response_item","payload":[1,2]}', '{"type":7,"payload":{}}', "[1,2,3]", '"text"'])
    assert [i["type"] for i in items] == ["provider_status", "provider_status", "provider_status",
                                          "parse_warning", "parse_warning", "parse_warning", "parse_warning"]
    assert items[1]["data"] == {"x": 1} and items[2]["data"] == {"type": "new_event", "y": 2}


def test_fork_replay_is_marked_and_never_counted_or_signalled() -> None:
    child, parent = "01a20000-0000-7000-8000-00000000c41d", "01a20000-0000-7000-8000-0000000000a1"
    t = "2026-11-22T10:00:00.{:03d}Z"
    total = lambda n: rec("event_msg", {"type": "token_count", "info": {  # noqa: E731
        "total_token_usage": {"input_tokens": n, "output_tokens": 1, "total_tokens": n + 1},
        "last_token_usage": {"input_tokens": 5, "output_tokens": 1, "total_tokens": 6}}}, ts)
    ts = t.format(0)
    lines = [meta(child, forked_from_id=parent, source={"subagent": {"thread_spawn": {"parent_thread_id": parent}}})]
    ts = t.format(5)
    lines += [meta(parent), rec("event_msg", {"type": "user_message", "message": "parent question"}, ts),
              total(100),
              rec("event_msg", {"type": "error", "message": LIMIT_TEXT, "codex_error_info": "usage_limit_exceeded"}, ts)]
    ts = "2026-11-22T10:00:04.000Z"
    lines += [rec("event_msg", {"type": "task_started"}, ts),
              rec("event_msg", {"type": "user_message", "message": "child question"}, ts), total(130),
              rec("event_msg", {"type": "error", "message": LIMIT_TEXT, "codex_error_info": "usage_limit_exceeded"}, ts)]
    items = map_lines(lines)
    users = of_type(items, "user_message")
    assert [(u["content"], u.get("replayed", False)) for u in users] == [("parent question", True),
                                                                       ("child question", False)]
    assert [u["input_tokens"] for u in of_type(items, "usage")] == [30]
    signals = [i for i in items if isinstance(i, LimitSignal)]
    assert len(signals) == 1 and signals[0].provider_session_id == child
    assert of_type(items, "provider_status")[0]["parent_session_id"] == parent
    assert "copied" in of_type(items, "provider_status")[1]["message"]


def test_limit_signal_once_per_turn_and_again_next_turn() -> None:
    error = rec("event_msg", {"type": "error", "message": LIMIT_TEXT, "codex_error_info": "usage_limit_exceeded"})
    complete = rec("event_msg", {"type": "task_complete", "error": {"message": LIMIT_TEXT,
                                                                     "codex_error_info": "usage_limit_exceeded"}})
    started = rec("event_msg", {"type": "task_started"})
    items = map_lines([meta(), started, error, complete, started, complete])
    assert len([i for i in items if isinstance(i, LimitSignal)]) == 2


def test_limit_scope_weekly_and_legacy_resets_in_seconds() -> None:
    weekly = rec("event_msg", {"type": "token_count", "info": None, "rate_limits": {
        "primary": {"used_percent": 40.0, "window_minutes": 300, "resets_at": 1795361528},
        "secondary": {"used_percent": 100.0, "window_minutes": 10080, "resets_at": 1795447928}}})
    error = rec("event_msg", {"type": "error", "message": "You've hit your usage limit. Try again later.",
                              "codex_error_info": {"usage_limit_exceeded": {}}})
    (signal,) = [i for i in map_lines([meta(), weekly, error]) if isinstance(i, LimitSignal)]
    assert (signal.scope, signal.reset_at, signal.reset_relative) == ("weekly", 1795447928.0, False)
    legacy = rec("event_msg", {"type": "token_count", "info": None, "rate_limits": {
        "primary": {"used_percent": 100.0, "window_minutes": 300, "resets_in_seconds": 600}}},
        ts="2026-11-22T10:00:00.000Z")
    (signal,) = [i for i in map_lines([meta(), legacy, error]) if isinstance(i, LimitSignal)]
    assert signal.scope == "session" and signal.reset_at == pytest.approx(1795341600.0 + 600)
    assert signal.reset_relative  # counted from the snapshot: timed on the elapsed clock


def test_a_limit_message_naming_a_delay_gives_a_relative_reset() -> None:
    error = rec("event_msg", {"type": "error", "message": "You've hit your usage limit. Try again in 10 minutes.",
                              "codex_error_info": "usage_limit_exceeded"})
    (signal,) = [i for i in map_lines([meta(), error]) if isinstance(i, LimitSignal)]
    assert signal.reset_at is not None and signal.reset_relative


def test_limit_from_message_wording_without_code() -> None:
    error = rec("event_msg", {"type": "error", "message": "Error running remote compact task: You’ve hit your "
                                                          "usage limit. Visit https://x.invalid/usage to purchase more "
                                                          "credits or try again at Mar 10th, 2026 3:39 AM."})
    (signal,) = [i for i in map_lines([meta(), error]) if isinstance(i, LimitSignal)]
    assert signal.structured and signal.scope == "unknown" and signal.reset_at is not None
    assert not signal.reset_relative  # a named date: an instant on the wall clock


@pytest.mark.parametrize("message", [
    "To use Codex with your ChatGPT plan, upgrade to Plus: https://chatgpt.com/explore/plus.",
    "exceeded retry limit, last status: 429 Too Many Requests",
    "Reconnecting... 2/5 (stream disconnected before completion)",
    "Selected model is at capacity. Please try a different model.",
])
def test_not_usage_limits(message: str) -> None:
    error = rec("event_msg", {"type": "error", "message": message})
    items = map_lines([meta(), error])
    assert not [i for i in items if isinstance(i, LimitSignal)]
    assert of_type(items, "provider_status")[-1]["message"] == f"error: {message}"


def test_quoted_limit_text_in_messages_is_not_a_signal() -> None:
    said = rec("response_item", {"type": "message", "role": "assistant", "content": [
        {"type": "output_text", "text": LIMIT_TEXT}]})
    echoed = rec("event_msg", {"type": "agent_message", "message": "The CLI says: " + LIMIT_TEXT})
    pasted = rec("event_msg", {"type": "user_message", "message": LIMIT_TEXT})
    done = rec("event_msg", {"type": "task_complete", "last_agent_message": LIMIT_TEXT})
    items = map_lines([meta(), said, echoed, pasted, done])
    assert not [i for i in items if isinstance(i, LimitSignal)]
    assert len(of_type(items, "assistant_message")) == 2 and len(of_type(items, "user_message")) == 1


def test_fast_forward_skips_records_before_launch_but_keeps_state() -> None:
    def count(total: int, ts: str) -> dict:
        return rec("event_msg", {"type": "token_count", "info": {"total_token_usage": {
            "input_tokens": total, "output_tokens": 1, "total_tokens": total + 1}}}, ts)
    mapper = RecordMapper()
    mapper.skip_before = 1795341600.0  # 2026-11-22T10:00:00Z
    old = "2026-11-22T09:00:00.000Z"
    new = "2026-11-22T10:00:01.000Z"
    items = map_lines([rec("session_meta", {"id": "s1", "cwd": "/x"}, old),
                       rec("event_msg", {"type": "user_message", "message": "old"}, old), count(100, old),
                       rec("event_msg", {"type": "user_message", "message": "new"}, new), count(130, new)], mapper)
    assert [i["type"] for i in items] == ["user_message", "usage"]
    assert items[0]["content"] == "new" and items[1]["input_tokens"] == 30 and items[0]["provider_session_id"] == "s1"


@pytest.mark.parametrize("path", CODEX_FILES, ids=lambda p: p.name[:50])
def test_fast_typed_path_equals_general_path(path: Path) -> None:
    """Compact lines (as Codex writes them) take the typed single-pass path; spaced ones the general one."""
    compact, spaced = [], []
    for raw in path.read_bytes().split(b"\n"):
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        compact.append(json.dumps(record, separators=(",", ":"), ensure_ascii=False))
        spaced.append(json.dumps(record, ensure_ascii=False))
    def comparable(items: list) -> list:
        return [json.dumps(i if isinstance(i, dict) else (i.raw, i.scope, i.reset_at), sort_keys=True) for i in items]
    assert comparable(map_lines(compact)) == comparable(map_lines(spaced))
