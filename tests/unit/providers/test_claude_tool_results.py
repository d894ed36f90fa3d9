"""Claude tool results without `is_error` on the block: success or failure from the structured
`toolUseResult`, whose few keys are only decoded when they are written in it at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from zag.providers.claude.reader import ClaudeSessionReader


def _result_line(tool_use_result: Any, block_extra: dict[str, Any] | None = None) -> str:
    block = {"tool_use_id": "toolu_1", "type": "tool_result", "content": "out", **(block_extra or {})}
    return json.dumps({"type": "user", "uuid": "u2", "timestamp": "2026-01-01T10:00:01.000Z",
                       "message": {"role": "user", "content": [block]}, "toolUseResult": tool_use_result})


CALL = json.dumps({"type": "assistant", "uuid": "u1", "timestamp": "2026-01-01T10:00:00.000Z",
                   "message": {"id": "m1", "role": "assistant", "model": "claude-x", "content": [
                       {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}]}})


@pytest.mark.parametrize(("tool_use_result", "block_extra", "success"), [
    ({"stdout": "a \"status\" in the output", "stderr": ""}, None, True),
    ({"stdout": "", "stderr": "", "interrupted": False, "isImage": False}, None, True),
    ({"stdout": "", "stderr": "", "interrupted": True}, None, False),
    ({"status": "failed", "content": []}, None, False),
    ({"is_error": True, "content": "x"}, None, False),
    ({"type": "text", "file": {"filePath": "/a", "content": "\"interrupted\": true"}}, None, True),
    ("Error: no such file", None, False),
    ({"interrupted": True}, {"is_error": False}, True),   # the block's own flag wins
])
def test_success_of_a_tool_result_without_is_error(tmp_path: Path, tool_use_result: Any,
                                                   block_extra: dict[str, Any] | None, success: bool) -> None:
    transcript = tmp_path / "s.jsonl"
    transcript.write_text(CALL + "\n" + _result_line(tool_use_result, block_extra) + "\n")
    [result] = [item for item in ClaudeSessionReader("s", transcript).read()
                if isinstance(item, dict) and item["type"] == "tool_result"]
    assert result["success"] is success
    assert result["tool_name"] == "Bash"
    assert json.loads(bytes(result["details"])) == tool_use_result
