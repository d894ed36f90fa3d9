"""goose message → unified events: every content type, hand-counted over the fixture conversation."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.fixtures.goose import gooselib as gl
from zag.logs import events
from zag.providers.base import LimitSignal
from zag.providers.goose import records
from zag.providers.goose.reader import DbSessionReader
from zag.providers.goose.tools import tool_kind

T0 = 1762600000


@pytest.fixture
def fixture_items(tmp_path: Path) -> list:
    db = gl.GooseDb.create(tmp_path / "sessions.db")
    db.create_session("20251108_1", name="fix tests", working_dir="/work/proj", created_at=T0 - 5)
    db.add_fixture_messages("20251108_1")
    db.set_tokens("20251108_1", accumulated_input_tokens=5200, accumulated_output_tokens=800,
                  accumulated_total_tokens=6000, input_tokens=2100, output_tokens=300, total_tokens=2400,
                  accumulated_cost=0.0345)
    return list(DbSessionReader(db.path, "20251108_1").read())


def test_fixture_conversation_counts(fixture_items: list) -> None:
    bodies = [item for item in fixture_items if isinstance(item, dict)]
    counts = Counter(body["type"] for body in bodies)
    assert counts == {
        events.USER_MESSAGE: 3, events.ASSISTANT_MESSAGE: 3, events.TOOL_CALL: 5, events.TOOL_RESULT: 4,
        events.REASONING: 2, events.PROVIDER_STATUS: 8, events.USAGE: 1,
    }
    signals = [item for item in fixture_items if isinstance(item, LimitSignal)]
    assert len(signals) == 1
    assert all(body.get("provider_session_id") == "20251108_1" for body in bodies)


def test_fixture_conversation_values(fixture_items: list) -> None:
    bodies = [item for item in fixture_items if isinstance(item, dict)]
    status = bodies[0]
    assert status["type"] == events.PROVIDER_STATUS and status["message"] == "goose session"
    assert status["cwd"] == "/work/proj" and status["model"] == "claude-sonnet-4-5"
    assert status["data"]["provider"] == "anthropic" and status["data"]["name"] == "fix tests"

    user = bodies[1]
    assert user == {"type": "user_message", "content": "List the files and fix the failing test.",
                    "ts": float(T0), "provider_session_id": "20251108_1", "message_id": "msg_20251108_1_u1"}
    assistant = bodies[2]
    assert assistant["content"] == "I'll look at the repository first."
    assert assistant["model"] == "claude-sonnet-4-5-20250929" and assistant["message_id"] == "msg_20251108_1_a1"
    shell = bodies[3]
    assert (shell["tool_name"], shell["tool_kind"], shell["tool_id"], shell["input"]) == (
        "developer__shell", "shell", "toolu_01", {"command": "ls -la"})
    result = bodies[4]
    assert result["tool_id"] == "toolu_01" and result["tool_name"] == "developer__shell"
    assert result["success"] is True and result["error"] is None
    assert result["output"] == "total 8\n-rw-r--r-- 1 u u 42 test_app.py"   # the assistant copy only

    calls = [body for body in bodies if body["type"] == events.TOOL_CALL]
    assert [call["tool_kind"] for call in calls] == ["shell", "file_read", "file_edit", "other", "other"]
    assert calls[3]["tool_name"] is None and calls[3]["error"] == "-32602: Tool developer__nope not found"
    assert calls[4]["frontend"] is True and calls[4]["tool_name"] == "browser__open"

    results = [body for body in bodies if body["type"] == events.TOOL_RESULT]
    assert results[1]["output"] == "def test_add():\n    assert add(1, 1) == 3\n"        # legacy list shape
    assert results[3] == {**results[3], "success": False, "output": "",
                          "error": "-32602: Tool developer__nope not found"}

    reasoning = [body for body in bodies if body["type"] == events.REASONING]
    assert reasoning[0]["content"] == "The test file is small; read it."
    assert reasoning[1]["redacted"] is True and reasoning[1]["data"] == "EuYBCkQYAiJA"

    summary = [body for body in bodies if body.get("message_id") == "msg_20251108_1_s1"][0]
    assert summary["type"] == events.USER_MESSAGE and summary["visibility"] == {"user": False, "agent": True}

    statuses = [body["message"] for body in bodies if body["type"] == events.PROVIDER_STATUS]
    assert statuses == ["goose session", "goose tool confirmation request", "goose action required",
                        "goose image", "goose system notification: inlineMessage", "goose error",
                        "goose error", "goose content type 'hologram'"]

    usage = bodies[-1]
    assert usage["type"] == events.USAGE
    assert (usage["input_tokens"], usage["output_tokens"], usage["total_cost_usd"]) == (5200, 800, 0.0345)
    assert usage["cumulative"]["total_tokens"] == 6000 and usage["model"] == "claude-sonnet-4-5"


def test_quoted_and_pasted_limit_texts_are_ordinary_messages(fixture_items: list) -> None:
    bodies = {body.get("message_id"): body for body in fixture_items if isinstance(body, dict)}
    assert bodies["msg_20251108_1_a6"]["type"] == events.ASSISTANT_MESSAGE
    assert bodies["msg_20251108_1_u5"]["type"] == events.USER_MESSAGE
    [signal] = [item for item in fixture_items if isinstance(item, LimitSignal)]
    assert signal.structured is True and signal.source == "provider_file"
    assert signal.raw.startswith("Ran into this error: Rate limit exceeded: {\"type\":\"error\"")
    assert signal.observed_at == T0 + 18 and signal.reset_at == T0 + 18 + 120   # retry-after: 120
    assert signal.reset_relative  # a delay: timed on the elapsed clock
    assert signal.provider_session_id == "20251108_1"


def test_error_record_is_never_an_assistant_message() -> None:
    items = records.message_items("assistant", gl.rate_limit_error("quota"), created=T0, message_id="m",
                                  metadata=None, session_id="s", tools=records.ToolNames())
    assert [type(item).__name__ for item in items] == ["dict", "LimitSignal"]
    assert items[0]["type"] == events.PROVIDER_STATUS and items[0]["data"]["error"] == "Rate limit exceeded: quota"


def test_model_written_reply_with_inference_metadata_is_not_an_error_record() -> None:
    metadata = {"userVisible": True, "agentVisible": True, "inference": {"provider": "x", "requestedModel": "m"}}
    content = [gl.text("Ran into this error: Rate limit exceeded: x.\n\n"
                       "Please retry if you think this is a transient or recoverable error.")]
    items = records.message_items("assistant", content, created=T0, message_id=None, metadata=metadata,
                                  session_id="s", tools=records.ToolNames())
    assert [item["type"] for item in items] == [events.ASSISTANT_MESSAGE]


def test_adjacent_texts_join_and_order_is_kept() -> None:
    content = [gl.text("a"), gl.text("b"), gl.tool_request("t1", "developer__shell", {"command": "pwd"}),
               gl.text(""), gl.text("c")]
    items = records.message_items("assistant", content, created=T0, message_id=None, metadata=None,
                                  session_id=None, tools=records.ToolNames())
    assert [(item["type"], item.get("content")) for item in items] == [
        ("assistant_message", "a\nb"), ("tool_call", None), ("assistant_message", "c")]
    assert "provider_session_id" not in items[0] and "message_id" not in items[0]


def test_python_era_shapes_and_legacy_reasoning() -> None:
    tools = records.ToolNames()
    content = [{"type": "Text", "text": "hi"}, {"type": "ToolUse", "id": "u1", "name": "bash__run_command",
                                                "parameters": {"command": "ls"}},
               {"type": "reasoning", "text": "hmm"}]
    items = records.message_items("assistant", content, created=T0, message_id=None, metadata=None,
                                  session_id=None, tools=tools)
    assert [item["type"] for item in items] == ["assistant_message", "tool_call", "reasoning"]
    result = records.message_items("user", [{"type": "ToolResult", "tool_use_id": "u1", "output": "boom",
                                             "is_error": True}], created=T0, message_id=None, metadata=None,
                                   session_id=None, tools=tools)
    assert result[0]["tool_name"] == "bash__run_command" and result[0]["success"] is False
    assert result[0]["error"] == "boom"


def test_odd_items_are_kept_whole() -> None:
    content = [42, {"type": "text", "text": 7}, {"no": "type"}, {"type": "toolResponse", "id": "x", "toolResult": "?"}]
    items = records.message_items("user", content, created="yesterday", message_id=5, metadata="x",
                                  session_id="s", tools=records.ToolNames())
    assert [item["type"] for item in items] == ["provider_status", "provider_status", "provider_status", "tool_result"]
    assert items[0]["data"] == 42 and items[2]["data"] == {"no": "type"}
    assert items[3]["success"] is False and items[0]["ts"] is None
    system = records.message_items("system", [gl.text("x")], created=T0, message_id=None, metadata=None,
                                   session_id="s", tools=records.ToolNames())
    assert system[0]["type"] == "provider_status" and system[0]["data"]["role"] == "system"


def test_tool_output_shapes() -> None:
    is_error = records.message_items("user", [gl.tool_response("t", "exit 1", is_error=True)], created=T0,
                                     message_id=None, metadata=None, session_id=None, tools=records.ToolNames())
    assert (is_error[0]["success"], is_error[0]["output"], is_error[0]["error"]) == (False, "exit 1", "exit 1")
    assert records.content_text([{"type": "image", "mimeType": "image/png", "data": "x"},
                                 {"type": "resource", "resource": {"uri": "file:///a", "text": "body"}},
                                 {"type": "resource", "resource": {"uri": "file:///b"}}]) == (
        "[image image/png]\nbody\n[resource file:///b]")


@pytest.mark.parametrize("name, arguments, kind", [
    ("developer__shell", {"command": "ls"}, "shell"),
    ("shell", None, "shell"),
    ("developer__text_editor", {"command": "view"}, "file_read"),
    ("developer__text_editor", {"command": "write"}, "file_write"),
    ("developer__text_editor", {"command": "str_replace"}, "file_edit"),
    ("developer__text_editor", {"command": "insert"}, "file_edit"),
    ("developer__text_editor", {"command": "undo_edit"}, "file_edit"),
    ("developer__edit", {}, "file_edit"),
    ("developer__write", {}, "file_write"),
    ("developer__tree", {}, "search"),
    ("developer__read_image", {}, "file_read"),
    ("developer__image_processor", {}, "file_read"),
    ("developer__screen_capture", {}, "other"),
    ("subagent__execute_task", {}, "sub_agent"),
    ("dynamic_task__create_task", {}, "sub_agent"),
    ("delegate", {}, "sub_agent"),
    ("computercontroller__web_search", {}, "web"),
    ("computercontroller__web_scrape", {}, "web"),
    ("fetch__fetch", {}, "web"),
    ("duckduckgo-search__search", {}, "web"),
    ("jupyter__run_cell", {}, "notebook"),
    ("execute_code", {}, "shell"),
    ("todo__write", {}, "other"),
    ("memory__remember_memory", {}, "other"),
    ("github__create_issue", {}, "other"),
    (None, None, "other"),
])
def test_tool_kinds(name, arguments, kind) -> None:
    assert tool_kind(name, arguments) == kind
