"""gemini: chat records → unified events, each message part exactly once (corpus + built sequences)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.gemini import geminilib as g
from zag.logs import events
from zag.providers.base import LimitSignal
from zag.providers.gemini import limits
from zag.providers.gemini.reader import GeminiReader
from zag.providers.gemini.records import tool_kind


SID = "0508d65f-584a-48a8-9f75-1d448b514ef9"


def read_all(paths: list[Path], session_id: str | None = SID) -> list[Any]:
    return list(GeminiReader(session_id, paths).read())


def bodies(items: list[Any]) -> list[dict[str, Any]]:
    return [item for item in items if isinstance(item, dict)]


def types(items: list[Any]) -> list[str]:
    return [item["type"] for item in bodies(items)]


def chat(tmp_path: Path, *records: Any, name: str | None = None) -> Path:
    return g.write(tmp_path / "chats" / (name or g.session_name(SID)), *records)


# --- every corpus file ------------------------------------------------------------------------------
ALL_CORPUS = sorted(g.REAL_CLI.glob("chat_*.jsonl")) + sorted(g.CORPUS.iterdir())


@pytest.mark.parametrize("path", ALL_CORPUS, ids=lambda p: p.name)
def test_every_corpus_file_reads_without_error(path: Path) -> None:
    items = read_all([path], None)
    assert items, "every corpus file holds at least one event"
    for item in bodies(items):
        assert item["type"] in events.TRANSCRIPT_TYPES
        assert item["type"] != events.PARSE_WARNING
        json.dumps(item)  # JSON-serialisable as it will be written


def test_real_resumed_session_counted_by_hand() -> None:
    items = read_all([g.REAL_CLI / "chat_session-2026-11-22T14-44-0508d65f.jsonl"])
    assert types(items) == [
        "provider_status",                      # <session_context> preamble
        "user_message", "assistant_message", "usage",          # say hi
        "user_message", "assistant_message", "usage",          # resumed: Continue
        "user_message", "provider_status",      # resumed while limited: Continue, rolled back
        "provider_status",                      # $set summary
    ]
    found = bodies(items)
    assert found[0]["message"] == "gemini context preamble" and found[0]["data"]["id"] == g.CONTEXT_ID
    assert found[1] == {"type": "user_message", "content": "say hi", "ts": "2026-11-22T14:44:15.980Z",
                        "message_id": "bd5013b7-662b-4ba5-a780-b4cc6a6c0a49", "provider_session_id": SID}
    assert found[2]["content"] == "hi from fake upstream" and found[2]["model"] == "gemini-3.8-flash"
    assert found[3]["input_tokens"] == 12 and found[3]["output_tokens"] == 5 and found[3]["total_tokens"] == 17
    assert found[8]["data"] == {"kind": "messages_removed", "reason": "rollback", "count": 1,
                                "message_ids": ["080b5cae-24a1-421e-9b8d-37425d26c42c"]}
    assert found[9]["data"] == {"summary": "hi from fake upstream"}
    assert all(body["provider_session_id"] == SID for body in found)


def test_real_session_with_resume_header_in_the_same_file_is_not_a_rollback() -> None:
    # dcaf2f10 was resumed in the minute it started: a second metadata line, then the new process's
    # start-up snapshot (context only), then the full list again. Nothing was removed.
    items = read_all([g.REAL_CLI / "chat_session-2026-11-22T14-46-dcaf2f10.jsonl"],
                     "dcaf2f10-a152-43e5-aee9-4b28e27d62f8")
    assert types(items) == ["provider_status", "user_message", "assistant_message", "usage", "provider_status",
                            "user_message", "assistant_message", "usage"]
    assert [b["content"] for b in bodies(items) if b["type"] == "user_message"] == ["say hi", "Continue again"]


def test_real_tui_session_with_a_cancelled_turn() -> None:
    items = read_all([g.REAL_CLI / "chat_session-2026-11-22T14-46-c86a1836.jsonl"],
                     "c86a1836-d8ba-4d73-a6e0-226f31fe9800")
    assert types(items) == ["provider_status", "user_message", "assistant_message", "usage",
                            "provider_status",            # info: Request cancelled.
                            "user_message",               # second prompt (hot loop on a 429, cancelled)
                            "provider_status",            # rolled back: info + second prompt
                            "user_message", "assistant_message", "usage", "provider_status"]
    found = bodies(items)
    assert found[4]["message"] == "Request cancelled." and found[4]["level"] == "info"
    assert found[4]["data"]["type"] == "info"
    assert found[6]["data"]["message_ids"] == ["a26fb5ea-040c-4324-8a2e-3b6a08428ed4",
                                               "ef4aa509-22d3-4bd0-a82c-6aca694dca31"]


@pytest.mark.parametrize("name, expected, resumable", [
    ("chat_session-2026-11-22T14-44-1f2a73d3.jsonl", ["provider_status", "user_message", "provider_status"], False),
    ("chat_session-2026-11-22T14-44-f0a58041.jsonl", ["provider_status", "user_message", "provider_status"], False),
    ("chat_session-2026-11-22T14-44-59c0ef6e.jsonl", ["provider_status", "user_message"], True),
    ("chat_session-2026-11-22T14-47-9159ffe2.jsonl",
     ["provider_status", "user_message", "assistant_message", "usage"], True),
])
def test_real_limited_and_plain_sessions(name: str, expected: list[str], resumable: bool) -> None:
    reader = GeminiReader(None, [g.REAL_CLI / name])
    items = list(reader.read())
    assert types(items) == expected
    assert reader.conversation.has_resumable(reader.main_indexes()) is resumable
    assert not [item for item in items if isinstance(item, LimitSignal)], "a rolled-back turn is no limit shape"


def test_legacy_documents_counted_by_hand() -> None:
    large = read_all([g.CORPUS / "agent-sessions_large.json"], "session-2025-12-16T23-47-b4f17607")
    assert types(large) == ["user_message", "reasoning", "tool_call", "tool_result", "usage", "tool_call",
                            "tool_result", "provider_status", "assistant_message", "user_message",
                            "assistant_message"]
    call, result = bodies(large)[2], bodies(large)[3]
    assert call["tool_name"] == "run_shell_command" and call["tool_kind"] == "shell"
    assert call["tool_id"] == "run_shell_command-1" and call["input"]["cwd"] == "/tmp"
    assert result["tool_id"] == "run_shell_command-1" and result["success"] is True
    assert result["output"].startswith("Command: printf") and result["error"] is None
    assert bodies(large)[8] == {"type": "assistant_message", "content": "Captured multiline output.",
                                "message_id": "m4", "ts": "2025-12-16T23:47:05.000Z",
                                "provider_session_id": "session-2025-12-16T23-47-b4f17607"}
    small = read_all([g.CORPUS / "agent-sessions_small.json"])
    assert types(small) == ["user_message", "reasoning", "assistant_message", "usage"]
    assert bodies(small)[1]["content"] == "Short reasoning placeholder."


def test_pre_0_2_history_shape() -> None:
    items = read_all([g.CORPUS / "agent-sessions_schema_drift.json"])
    assert types(items) == ["user_message", "assistant_message", "provider_status"]
    first = bodies(items)[0]
    assert first["content"] == "Describe this image:"
    assert first["parts"] == [{"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]
    assert first["ts"] == 1695000000 and first["message_id"] == "history-0"


def test_jsonl_v040_tool_turn() -> None:
    items = read_all([g.CORPUS / "agent-sessions_jsonl_v040.jsonl"], "gemini_stage0_jsonl")
    assert types(items) == ["user_message", "tool_call", "tool_result", "usage", "assistant_message", "usage"]
    usage = bodies(items)[5]
    assert usage["input_tokens"] == 12069 - 11502 and usage["cache_read_tokens"] == 11502
    assert usage["output_tokens"] == 147 and usage["model"] == "gemini-3-flash-preview"


# --- upserts: one message re-appended as it grows -----------------------------------------------------
def test_reappended_message_emits_each_part_once(tmp_path: Path) -> None:
    call = g.tool_call("c1", "read_file", {"file_path": "a.txt"}, status="executing")
    done = g.tool_call("c1", "read_file", {"file_path": "a.txt"}, output="file body")
    second = g.tool_call("c2", "run_shell_command", {"command": "ls"}, status="error", error="exit 2")
    thought = {"subject": "Plan", "description": "read the file", "timestamp": "2026-11-22T14:44:16.010Z"}
    path = chat(tmp_path, g.meta(SID), g.user("u1", "read a.txt"),
                g.gemini("a1", "Let me look.", thoughts=[thought]),
                g.gemini("a1", "Let me look.", thoughts=[thought], tokens=g.tokens(100, 10, cached=40, thoughts=3)),
                g.gemini("a1", "Let me look.", thoughts=[thought], tokens=g.tokens(100, 10), tool_calls=[call]),
                g.gemini("a1", "Let me look.", thoughts=[thought], tokens=g.tokens(100, 10), tool_calls=[done]),
                g.gemini("a1", "Let me look.", thoughts=[thought], tokens=g.tokens(100, 10), tool_calls=[done, second]))
    items = bodies(read_all([path]))
    assert types(items) == ["user_message", "reasoning", "assistant_message", "usage", "tool_call", "tool_result",
                            "tool_call", "tool_result"]
    reasoning, _, usage, call1, result1, call2, result2 = items[1:]
    assert reasoning["content"] == "read the file" and reasoning["subject"] == "Plan"
    assert reasoning["ts"] == "2026-11-22T14:44:16.010Z"
    assert usage["input_tokens"] == 60 and usage["cache_read_tokens"] == 40 and usage["reasoning_tokens"] == 3
    assert call1["tool_kind"] == "file_read" and result1["output"] == "file body" and result1["success"] is True
    assert call2["tool_kind"] == "shell" and result2["success"] is False and result2["error"] == "exit 2"
    assert result2["status"] == "error"


def test_tool_only_message_then_text_later(tmp_path: Path) -> None:
    call = g.tool_call("c1", "glob", {"pattern": "*.py"}, output="a.py")
    path = chat(tmp_path, g.meta(SID), g.gemini("a1", "", tool_calls=[call]),
                g.gemini("a1", [{"text": "Found "}, {"text": "a.py"}], tool_calls=[call]))
    items = bodies(read_all([path]))
    assert types(items) == ["tool_call", "tool_result", "assistant_message"]
    assert items[0]["tool_kind"] == "search" and items[2]["content"] == "Found a.py"


def test_rewind_reports_dropped_messages_and_later_ones_flow(tmp_path: Path) -> None:
    path = chat(tmp_path, g.meta(SID), g.set_(messages=[g.context()]), g.user("u1", "one"), g.gemini("a1", "1"),
                g.user("u2", "two"), g.gemini("a2", "2"), g.rewind("u2"), g.user("u3", "three"))
    reader = GeminiReader(SID, [path])
    items = bodies(list(reader.read()))
    assert types(items) == ["provider_status", "user_message", "assistant_message", "user_message",
                            "assistant_message", "provider_status", "user_message"]
    assert items[5]["data"] == {"kind": "messages_removed", "reason": "rewind", "count": 2,
                                "message_ids": ["u2", "a2"], "rewind_to": "u2"}
    assert reader.conversation.has_resumable(reader.main_indexes())


def test_rewind_to_an_unknown_id_drops_everything_of_the_file(tmp_path: Path) -> None:
    path = chat(tmp_path, g.meta(SID), g.user("u1", "one"), g.gemini("a1", "1"), g.rewind("nope"))
    reader = GeminiReader(SID, [path])
    items = bodies(list(reader.read()))
    assert items[-1]["data"]["message_ids"] == ["u1", "a1"]
    assert not reader.conversation.has_resumable(reader.main_indexes())


def test_restored_message_is_not_emitted_again(tmp_path: Path) -> None:
    path = chat(tmp_path, g.meta(SID), g.user("u1", "one"), g.set_(messages=[]), g.set_(messages=[g.user("u1", "one")]))
    assert types(read_all([path])) == ["user_message", "provider_status"]


def test_startup_snapshot_after_a_header_only_adds(tmp_path: Path) -> None:
    path = chat(tmp_path, g.meta(SID), g.user("u1", "one"), g.meta(SID), g.set_(messages=[g.context()]),
                g.set_(sessionId=SID), g.set_(messages=[g.context(), g.user("u1", "one")]))
    assert types(read_all([path])) == ["user_message", "provider_status"]


def test_status_records_and_unknown_shapes_are_kept_whole(tmp_path: Path) -> None:
    odd = {"id": "x1", "type": "compression", "timestamp": "2026-11-22T14:44:17.000Z", "content": "squeezed"}
    path = chat(tmp_path, g.meta(SID), {"id": "w1", "type": "warning", "content": "careful"}, odd,
                {"something": "else"}, g.set_(memoryScratchpad={"v": 1}, newThing=[1, 2]))
    items = bodies(read_all([path]))
    assert types(items) == ["provider_status"] * 4
    assert items[0]["level"] == "warning" and items[0]["data"] == {"id": "w1", "type": "warning", "content": "careful"}
    assert items[1]["data"] == odd
    assert items[2]["data"] == {"something": "else"}
    assert items[3]["data"] == {"newThing": [1, 2]}


def test_error_record_with_a_quota_text_is_a_structured_limit(tmp_path: Path) -> None:
    text = "[API Error: You have exhausted your daily quota on this model.]"
    path = chat(tmp_path, g.meta(SID), {"id": "e1", "type": "error", "timestamp": "2026-01-15T20:00:00.000Z",
                                        "content": text})
    items = read_all([path])
    status, signal = items
    assert status["type"] == "provider_status" and status["data"]["content"] == text
    assert isinstance(signal, LimitSignal) and signal.structured and signal.scope == "daily"
    assert signal.raw == text and signal.source == "provider_file" and signal.provider_session_id == SID
    written = datetime(2026, 1, 15, 20, tzinfo=timezone.utc).timestamp()
    assert signal.reset_at == limits.next_pacific_midnight(written)
    assert signal.reset_at == datetime(2026, 1, 16, 8, tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize("record", [
    g.user("u1", "I got 'You have exhausted your daily quota on this model.' — what now?"),
    g.user("u1", "Usage limit reached for all Pro models.\nAccess resets at 3:00 PM PST."),
    g.gemini("a1", "When you see `TerminalQuotaError: You have exhausted your daily quota` wait a day."),
    g.gemini("a1", "Usage limit reached for all Pro models."),
])
def test_quoted_limit_texts_in_messages_are_no_signal(tmp_path: Path, record: dict) -> None:
    items = read_all([chat(tmp_path, g.meta(SID), record)])
    assert not [item for item in items if isinstance(item, LimitSignal)]
    assert types(items) in (["user_message"], ["assistant_message"])


def test_subagent_events_name_their_subagent(tmp_path: Path) -> None:
    main = chat(tmp_path, g.meta(SID), g.user("u1", "delegate"))
    sub = g.write(tmp_path / "chats" / SID / "sub-1.jsonl", g.meta("sub-1", kind="subagent"), g.user("s1", "task"),
                  g.gemini("s2", "done"))
    items = bodies(read_all([main, sub]))
    assert types(items) == ["user_message", "user_message", "assistant_message"]
    assert "subagent_session_id" not in items[0]
    assert items[1]["subagent_session_id"] == "sub-1" and items[1]["provider_session_id"] == SID


def test_display_content_and_non_text_parts_are_kept(tmp_path: Path) -> None:
    record = {"id": "u1", "type": "user", "timestamp": "2026-11-22T14:44:15.980Z",
              "content": [{"text": "look at @a.png"}, {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}],
              "displayContent": [{"text": "look at @a.png please"}]}
    [item] = bodies(read_all([chat(tmp_path, g.meta(SID), record)]))
    assert item["content"] == "look at @a.png" and item["display_content"] == "look at @a.png please"
    assert item["parts"] == [{"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]


@pytest.mark.parametrize("name, kind", [
    ("run_shell_command", "shell"), ("read_file", "file_read"), ("read_many_files", "file_read"),
    ("write_file", "file_write"), ("replace", "file_edit"), ("edit", "file_edit"), ("glob", "search"),
    ("search_file_content", "search"), ("grep", "search"), ("list_directory", "search"), ("web_fetch", "web"),
    ("google_web_search", "web"), ("codebase_investigator", "sub_agent"), ("save_memory", "other"),
    ("mcp_server__tool", "other"), (None, "other"),
])
def test_tool_kinds(name: str | None, kind: str) -> None:
    assert tool_kind(name) == kind


def test_real_tool_turn_and_resume_snapshot_give_one_call_one_result() -> None:
    path = Path(__file__).resolve().parents[2] / "fixtures" / "gemini" / "real-0.61.0_tool_turn_resumed.jsonl"
    items = bodies(read_all([path], "561beaba-a303-4853-aa8a-e088e1b432d4"))
    assert types(items) == ["provider_status", "user_message", "usage", "tool_call", "tool_result",
                            "assistant_message", "usage", "user_message", "assistant_message", "usage"]
    call, result = items[3], items[4]
    assert call["tool_id"] == result["tool_id"] == "run_shell_command__run_shell_command_1796603911286_0"
    assert call["input"] == {"command": "cat notes.txt", "description": "Run a shell command"}
    assert result["success"] is True and "secret note 42" in result["output"]
    assert [item["content"] for item in items if item["type"] == "user_message"] == ["use the tool", "Continue"]


def test_function_parts_in_contents_are_tool_events_once(tmp_path: Path) -> None:
    call = {"functionCall": {"id": "t1", "name": "read_file", "args": {"file_path": "a"}}}
    response = {"functionResponse": {"id": "t1", "name": "read_file", "response": {"output": "A"}}}
    failed = {"functionResponse": {"id": "t2", "name": "write_file", "response": {"error": "denied"}}}
    path = chat(tmp_path, g.meta(SID), {"id": "a1", "type": "gemini", "content": [{"text": "reading"}, call]},
                {"id": "r1", "type": "user", "content": [response]},
                {"id": "r2", "type": "user", "content": [response, failed]},
                g.set_(messages=[{"id": "a1", "type": "gemini", "content": [call]},
                                 {"id": "a1_response", "type": "user", "content": [response]}]))
    items = bodies(read_all([path]))
    assert types(items) == ["assistant_message", "tool_call", "tool_result", "tool_result", "provider_status"]
    assert items[0]["content"] == "reading" and "parts" not in items[0]
    assert (items[1]["tool_id"], items[1]["tool_kind"], items[1]["input"]) == ("t1", "file_read", {"file_path": "a"})
    assert (items[2]["tool_id"], items[2]["output"], items[2]["success"]) == ("t1", "A", True)
    assert (items[3]["tool_id"], items[3]["error"], items[3]["success"]) == ("t2", "denied", False)
    assert items[4]["data"]["message_ids"] == ["r1", "r2"]     # the snapshot left those records out


def test_an_error_record_naming_a_retry_delay_gives_a_relative_reset(tmp_path: Path) -> None:
    text = ("[API Error: You exceeded your current quota, please check your plan and billing details. "
            "Please retry in 41.2s.]")
    path = chat(tmp_path, g.meta(SID), {"id": "e1", "type": "error", "timestamp": "2026-01-15T20:00:00.000Z",
                                        "content": text})
    _, signal = read_all([path])
    written = datetime(2026, 1, 15, 20, tzinfo=timezone.utc).timestamp()
    assert isinstance(signal, LimitSignal) and signal.reset_at == written + 41.2 and signal.reset_relative
