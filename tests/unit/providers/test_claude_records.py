"""Claude transcripts → unified events: every corpus file, and exact events for several (counted by hand)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import msgspec
import pytest

from zag.logs import codec, events
from zag.providers.base import LimitSignal
from zag.providers.claude.reader import ClaudeSessionReader

REPO = Path(__file__).resolve().parents[3]
CORPUS = REPO / "tests" / "fixtures" / "corpus"
OWN = REPO / "tests" / "fixtures" / "claude"
TRANSCRIPTS = sorted([*(CORPUS / "claude").glob("*.jsonl"),
                      *(CORPUS / "real-cli" / "claude").glob("transcript_*.jsonl"), *OWN.glob("transcript_*.jsonl"),
                      *(CORPUS / "claude" / "agent-sessions_subagent_layout").rglob("*.jsonl")])


def read(path: Path, sid: str = "sid") -> list:
    return list(ClaudeSessionReader(sid, path).read())


def bodies(items: list) -> list[dict]:
    return [item for item in items if isinstance(item, dict)]


def types(items: list) -> list[str]:
    return [item["type"] if isinstance(item, dict) else type(item).__name__ for item in items]


def plain(value):
    """A body as plain JSON values (Raw pass-through fields decoded), for comparisons."""
    return msgspec.json.decode(codec.dumps(value))


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda path: path.name)
def test_every_transcript_reads_without_warnings(path: Path) -> None:
    items = read(path)
    assert items
    for item in items:
        if isinstance(item, LimitSignal):
            assert item.structured and item.provider == "claude" and item.provider_session_id == "sid"
            continue
        assert item["type"] in events.TRANSCRIPT_TYPES
        assert item["type"] != events.PARSE_WARNING, item
        assert item["provider_session_id"] == "sid"
        assert isinstance(plain(item), dict)  # encodable as the writer will encode it
        if item["type"] == events.TOOL_CALL:
            assert item["tool_kind"] in events.TOOL_KINDS


def test_tool_use_turn_of_the_real_cli() -> None:
    """2.1.197: one response over two lines (text, tool_use) with the same id/requestId/usage."""
    items = read(OWN / "transcript_tool_use.jsonl")
    assert types(items) == [
        "provider_status", "provider_status", "user_message", "provider_status", "provider_status",
        "assistant_message", "usage", "tool_call", "tool_result", "assistant_message", "usage", "provider_status",
    ]
    user, answer, usage, call, result, final, usage2 = (items[2], items[5], items[6], items[7], items[8], items[9],
                                                        items[10])
    assert (user["content"], user["ts"], user["provider_session_id"]) == ("run echo", "2026-12-07T00:17:00.520Z", "sid")
    assert answer["content"] == "running a command" and answer["model"] == "claude-opus-4-8"
    assert answer["message_id"] == call["message_id"] == "msg_fake_d85766ad5eb34b00"
    assert (usage["input_tokens"], usage["output_tokens"], usage["cache_read_tokens"], usage["cache_creation_tokens"]) \
        == (12, 9, 0, 0)
    assert usage["request_id"] == "req_fake_b860ada27b16"
    assert (call["tool_name"], call["tool_kind"], call["tool_id"]) == ("Bash", "shell", "toolu_9a229ace8a99")
    assert plain(call["input"]) == {"command": "echo hello-tool", "description": "echo"}
    assert (result["tool_id"], result["tool_name"], result["success"]) == ("toolu_9a229ace8a99", "Bash", True)
    assert plain(result["output"]) == "hello-tool" and result["error"] is None
    assert plain(result["details"])["stdout"] == "hello-tool"
    assert final["content"] == "hi from fake upstream" and usage2["output_tokens"] == 5
    assert items[0]["message"] == "queue-operation" and plain(items[0]["data"])["content"] == "run echo"
    assert items[3]["message"] == "attachment/agent_listing_delta"


def test_session_limit_record_is_a_hit_and_the_quoted_epoch_text_is_not() -> None:
    items = read(CORPUS / "real-cli" / "claude" / "transcript_tui_oauth_limit.jsonl")
    signals = [item for item in items if isinstance(item, LimitSignal)]
    assert len(signals) == 1
    [signal] = signals
    assert signal.raw == "You've hit your session limit · resets 3:51pm (UTC)"
    assert signal.scope == "session" and signal.structured and signal.source == "provider_file"
    assert signal.reset_at == utc("2026-11-22T15:52:00")  # written at 14:51:15Z; the end of the minute shown
    api_error = [body for body in bodies(items) if body.get("api_error")]
    assert [body["content"] for body in api_error] == [signal.raw]
    assert api_error[0]["api_error"] == {"error": "rate_limit", "status": 429}
    # "Claude AI usage limit reached|1795362684" came as an ordinary answer (HTTP 200): not a hit
    quoted = [body for body in bodies(items) if body["type"] == "assistant_message"
              and body["content"].startswith("Claude AI usage limit reached")]
    assert len(quoted) == 1 and "api_error" not in quoted[0]
    assert types(items).count("usage") == 2  # the synthetic error record has all-zero usage


@pytest.mark.parametrize("name", ["transcript_apikey_429_then_resumed_ok.jsonl", "transcript_tui_apikey_429.jsonl",
                                  "transcript_apikey_hi_resumed_ok_then_429.jsonl"])
def test_api_key_429_is_a_hit_without_reset(name: str) -> None:
    [signal] = [item for item in read(CORPUS / "real-cli" / "claude" / name) if isinstance(item, LimitSignal)]
    assert signal.raw == ("API Error: Request rejected (429) · This request would exceed your account's rate "
                          "limit. Please try again later.")
    assert (signal.scope, signal.reset_at, signal.structured) == ("unknown", None, True)


def test_no_response_requested_synthetic_message_is_not_an_error() -> None:
    items = read(CORPUS / "real-cli" / "claude" / "transcript_apikey_429_then_resumed_ok.jsonl")
    synthetic = [body for body in bodies(items) if body.get("content") == "No response requested."]
    assert len(synthetic) == 1 and "api_error" not in synthetic[0]
    assert synthetic[0]["model"] is None and synthetic[0]["synthetic"] is True
    meta = [body for body in bodies(items) if body.get("content") == "Continue from where you left off."]
    assert meta[0]["is_meta"] is True


def test_stage0_large_hand_count() -> None:
    items = read(CORPUS / "claude" / "agent-sessions_stage0_large.jsonl")
    assert types(items) == [
        "user_message", "reasoning", "assistant_message", "tool_call", "tool_result", "assistant_message",
        "user_message", "assistant_message", "user_message", "assistant_message", "user_message", "assistant_message",
    ]
    call, result = items[3], items[4]
    assert (call["tool_name"], call["tool_kind"], call["tool_id"]) == ("bash", "shell", None)
    # the block has no is_error; toolUseResult.is_error false decides; apiErrorStatus on an answer is no error
    assert result["success"] is True and plain(result["output"]) == "ok"
    assert plain(result["details"]) == {"stdout": "line1\nline2\nline3\n", "stderr": "", "is_error": False}
    assert items[1]["content"] == "Plan\n1) Do thing\n2) Verify\n"
    assert not any(isinstance(item, LimitSignal) for item in items)
    assert [item["content"] for item in items if item["type"] == "user_message"] == ["Start", "Step 1", "Step 2",
                                                                                       "Step 3"]


def test_schema_drift_flat_tool_lines_and_string_content() -> None:
    items = read(CORPUS / "claude" / "agent-sessions_stage0_schema_drift.jsonl")
    assert types(items) == ["user_message", "tool_call", "tool_result", "assistant_message", "provider_status",
                            "user_message", "provider_status", "provider_status", "provider_status",
                            "provider_status"]
    call, result = items[1], items[2]
    assert (call["tool_name"], call["tool_kind"], call["tool_id"]) == ("bash", "shell", "t1")
    assert (result["tool_id"], result["tool_name"], result["success"]) == ("t1", "bash", True)
    assert plain(result["output"]) == "# Title\n\nBody\n"
    assert items[3]["content"] == "Read README and extracted the title."
    assert items[5]["origin"] == "task-notification"
    assert [item["message"] for item in items if item["type"] == "provider_status"] == [
        "system/turn_duration", "permission-mode", "mode", "attachment/deferred_tools_delta",
        "system/stop_hook_summary"]


def test_usage_only_lines_with_legacy_cost() -> None:
    items = read(CORPUS / "claude" / "ccusage_usage_only_chat.jsonl")
    assert types(items) == ["usage", "usage", "usage"]
    assert [(item["input_tokens"], item["output_tokens"], item["cache_creation_tokens"], item["cache_read_tokens"],
             item["total_cost_usd"], item["model"]) for item in items] == [
        (100, 50, 25, 10, 0.12, "claude-sonnet-4-20250514"),
        (200, 75, 50, 20, 0.34, "claude-opus-4-20250514"),
        (300, 125, 0, 40, 0.56, "claude-sonnet-4-20250514"),
    ]


def test_legacy_todowrite_session() -> None:
    items = read(CORPUS / "claude" / "claude-code-log_todowrite_v1.0.24.jsonl")
    calls = [item for item in items if item["type"] == "tool_call"]
    results = [item for item in items if item["type"] == "tool_result"]
    assert [(call["tool_name"], call["tool_kind"], call["tool_id"]) for call in calls] == [
        ("TodoWrite", "other", f"toolu_todowrite_00{n}") for n in (1, 2, 3)]
    assert [(result["tool_id"], result["tool_name"], result["success"]) for result in results] == [
        (f"toolu_todowrite_00{n}", "TodoWrite", True) for n in (1, 2, 3)]
    assert types(items).count("usage") == 6 and types(items).count("user_message") == 2
    assert items[-1]["type"] == "provider_status"  # the summary line (the file ends without a newline)
    assert items[-1]["message"] == "summary: Feature Implementation with Task Management"


def test_compaction_after_rewind() -> None:
    items = read(CORPUS / "claude" / "claude-code-log_dag_compact_after_rewind.jsonl")
    boundary = [item for item in items if item["type"] == "provider_status"]
    assert [item["message"] for item in boundary] == ["system/compact_boundary"]
    assert plain(boundary[0]["data"])["compactMetadata"] == {"trigger": "auto", "preTokens": 150000}
    summary = [item for item in items if item.get("is_compact_summary")]
    assert len(summary) == 1 and summary[0]["content"].startswith("This session is being continued")
    assert [item["content"] for item in items if item["type"] == "assistant_message"] == [
        "Ready", "First answer", "Second answer", "Kept going", "Final answer"]
    assert types(items).count("usage") == 5


def test_stage0_small_shapes() -> None:
    items = read(CORPUS / "claude" / "agent-sessions_stage0_small.jsonl")
    statuses = [item["message"] for item in items if item["type"] == "provider_status"]
    for expected in ("system/session_start", "permission-mode", "summary: Claude Code: Context usage summary",
                     "progress", "queue-operation", "file-history-snapshot", "agent-name", "ai-title",
                     "system/api_refusal", "system/compact_boundary", "pr-link", "bridge-session", "atis-latch",
                     "system/api_error", "system/error", "system/model_refusal_fallback", "worktree-state"):
        assert expected in statuses, expected
    assert any(item.startswith("assistant content block not mapped (fallback)") for item in statuses)
    denied = [item for item in items if item["type"] == "tool_result" and not item["success"]]
    assert len(denied) == 1 and plain(denied[0]["error"]) == "The user doesn't want to proceed with this tool use."
    images = [item for item in items if item.get("images")]
    assert images and images[0]["images"][0]["data"] == "omitted"
    sidechain = [item for item in items if item.get("is_sidechain")]
    assert sidechain and all(item["is_sidechain"] is True for item in sidechain)
    # system/error with status 429 and a retry-after is claude retrying, not a limit hit
    assert not any(isinstance(item, LimitSignal) for item in items)


def test_one_response_over_several_lines_counts_usage_once_and_blocks_once(tmp_path: Path) -> None:
    usage = {"input_tokens": 7, "output_tokens": 30, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 3}
    lines = []
    for block in ({"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "Doing it."},
                  {"type": "tool_use", "id": "toolu_1", "name": "Edit", "input": {"file_path": "a"}},
                  {"type": "text", "text": "Doing it."}):  # a replayed block (e.g. a sidechain copy)
        lines.append(msgspec.json.encode({
            "type": "assistant", "uuid": f"u{len(lines)}", "timestamp": "2026-01-01T00:00:00.000Z",
            "requestId": "req_1", "message": {"id": "msg_1", "role": "assistant", "model": "m",
                                               "content": [block], "usage": usage}}).decode())
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(lines) + "\n")
    items = read(path)
    assert types(items) == ["reasoning", "usage", "assistant_message", "tool_call"]
    assert items[1]["cache_read_tokens"] == 100 and items[3]["tool_kind"] == "file_edit"


def test_subagent_layout_is_one_session_linked_to_the_parent(tmp_path: Path) -> None:
    root = CORPUS / "claude" / "agent-sessions_subagent_layout"
    sid = "0a1b2c3d-4e5f-4061-8071-2a3b4c5d6e7f"
    main = root / f"{sid}.jsonl"
    reader = ClaudeSessionReader(sid, main, subagents=root / sid / "subagents")
    items = list(reader.read())
    parent = [item for item in items if "agent_id" not in item]
    child = [item for item in items if item.get("agent_id") == "a0ad4f44468bdf20d"]
    assert types(parent) == ["provider_status", "user_message", "assistant_message", "tool_call"]
    assert parent[3]["tool_kind"] == "sub_agent"
    assert types(child) == ["user_message", "assistant_message", "tool_call", "tool_result", "provider_status"]
    assert all(item["is_sidechain"] is True and item["agent_type"] == "general-purpose"
               and item["provider_session_id"] == sid for item in child)
    assert "parent_tool_id" not in child[0]  # this meta has no toolUseId
    assert set(reader.cursor()["files"]) == {"main", "subagents/agent-a0ad4f44468bdf20d.jsonl"}


def test_subagent_meta_tool_use_id_links_to_the_task_call(tmp_path: Path) -> None:
    sid = "11111111-2222-4333-8444-555555555555"
    main = tmp_path / f"{sid}.jsonl"
    main.write_text(msgspec.json.encode({"type": "assistant", "requestId": "r", "message": {
        "id": "m1", "role": "assistant", "content": [{"type": "tool_use", "id": "toolu_task", "name": "Agent",
                                                      "input": {"prompt": "look"}}]}}).decode() + "\n"
                    + msgspec.json.encode({"type": "user", "toolUseResult": {"agentId": "abc", "status": "completed"},
                                           "message": {"role": "user", "content": [
                                               {"type": "tool_result", "tool_use_id": "toolu_task",
                                                "content": [{"type": "text", "text": "found"}]}]}}).decode() + "\n")
    sub = tmp_path / sid / "subagents"
    sub.mkdir(parents=True)
    (sub / "agent-abc.jsonl").write_text('{"type":"user","isSidechain":true,"agentId":"abc","sessionId":"'
                                         + sid + '","message":{"role":"user","content":"look"}}\n')
    (sub / "agent-abc.meta.json").write_text('{"agentType":"Explore","toolUseId":"toolu_task"}')
    items = list(ClaudeSessionReader(sid, main, subagents=sub).read())
    call, result, child = items
    assert (call["tool_kind"], result["agent_id"], result["tool_name"]) == ("sub_agent", "abc", "Agent")
    assert plain(result["output"]) == [{"type": "text", "text": "found"}]
    assert child["parent_tool_id"] == "toolu_task" and child["agent_type"] == "Explore"
    assert child["content"] == "look" and child["is_sidechain"] is True


def test_redacted_thinking_and_unknown_blocks_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(msgspec.json.encode({"type": "assistant", "message": {"id": "m", "role": "assistant", "content": [
        {"type": "redacted_thinking", "data": "ZW5jcnlwdGVk"},
        {"type": "server_tool_use", "id": "srv", "name": "web_search", "input": {"q": "x"}}]}}).decode() + "\n")
    items = read(path)
    assert types(items) == ["reasoning", "provider_status"]
    assert items[0]["redacted"] is True and plain(items[0]["data"]) == "ZW5jcnlwdGVk"
    assert items[1]["message"] == "assistant content block not mapped (redacted_thinking, server_tool_use)"
    assert plain(items[1]["data"])["message"]["content"][1]["name"] == "web_search"


def test_quoted_or_pasted_limit_texts_are_not_hits(tmp_path: Path) -> None:
    text = "You've hit your session limit · resets 3pm (Europe/Berlin)"
    records = [
        {"type": "user", "uuid": "u1", "message": {"role": "user", "content": text}},                  # pasted
        {"type": "user", "uuid": "u2", "message": {"role": "user", "content": [{"type": "text", "text": text}]}},
        {"type": "assistant", "uuid": "a1", "requestId": "r1", "message": {                          # quoted
            "id": "m1", "role": "assistant", "model": "claude-x", "content": [{"type": "text", "text": text}]}},
        {"type": "assistant", "uuid": "a2", "requestId": "r2", "isApiErrorMessage": False, "error": None, "message": {
            "id": "m2", "role": "assistant", "model": "claude-x",
            "content": [{"type": "text", "text": "Claude AI usage limit reached|1755615600"}]}},
        {"type": "user", "uuid": "u3", "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t", "content": "API Error: Request rejected (429) · x"}]}},
    ]
    path = tmp_path / "s.jsonl"
    path.write_text("".join(msgspec.json.encode(record).decode() + "\n" for record in records))
    items = read(path)
    assert types(items) == ["user_message", "user_message", "assistant_message", "assistant_message", "tool_result"]
    # the same text on claude's own error record is a hit
    path.write_text(msgspec.json.encode({"type": "assistant", "uuid": "e", "isApiErrorMessage": True,
                                         "error": "rate_limit", "message": {"id": "x", "model": "<synthetic>",
                                                                            "content": [{"type": "text",
                                                                                         "text": text}]}}).decode()
                    + "\n")
    assert types(read(path)) == ["assistant_message", "LimitSignal"]


def _user_line(content: object, **fields: object) -> str:
    return codec.dumps({"type": "user", "uuid": f"u-{len(str(content))}", "sessionId": "sid",
                        "timestamp": "2026-12-07T00:17:19.428Z", "message": {"role": "user", "content": content},
                        **fields}).decode()


def test_slash_command_records_are_marked_as_the_clis_bookkeeping(tmp_path: Path) -> None:
    """`/exit` in the TUI writes the command and its output as user records: marked, not prompts."""
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join([
        _user_line("fix the <div> in index.html"),
        _user_line("<command-name>/exit</command-name>\n            <command-message>exit</command-message>\n"
                   "            <command-args></command-args>"),
        _user_line("<local-command-stdout>Bye!</local-command-stdout>"),
        _user_line([{"type": "text", "text": "<local-command-stderr>nope</local-command-stderr>"}]),
        _user_line("<command-message>review is running…</command-message>\n<command-name>/review</command-name>"),
        _user_line("<b>bold</b> is what I want"),
    ]) + "\n")
    messages = [body for body in bodies(read(path)) if body["type"] == "user_message"]
    marks = [{key: body[key] for key in ("is_meta", "local_command", "local_command_output") if key in body}
             for body in messages]
    assert marks == [{}, {"is_meta": True, "local_command": "/exit"},
                     {"is_meta": True, "local_command_output": True},
                     {"is_meta": True, "local_command_output": True},
                     {"is_meta": True, "local_command": "/review"}, {}]
    assert messages[2]["content"] == "<local-command-stdout>Bye!</local-command-stdout>"  # kept whole


def test_the_clear_command_of_the_real_tui_is_marked() -> None:
    items = read(OWN / "transcript_tui_after_clear.jsonl")
    commands = [body for body in bodies(items) if body.get("local_command")]
    assert [(body["type"], body["local_command"], body["is_meta"]) for body in commands] == [
        ("user_message", "/clear", True)]
