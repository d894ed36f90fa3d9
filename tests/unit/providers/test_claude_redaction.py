"""Secrets planted in a Claude transcript never reach the unified log, also where the reader passes JSON
through raw (tool inputs and results, structured tool results, whole provider_status records)."""

from __future__ import annotations

import json
from pathlib import Path

from zag.logs.writer import SessionLogWriter
from zag.providers.claude.reader import ClaudeSessionReader

ANTHROPIC = "sk-ant-api03-" + "A1b2C3d4E5f6G7h8" * 4
GITHUB = "ghp_" + "x1Y2z3" * 7
AWS = "AKIAIOSFODNN7EXAMPLE"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"


def test_planted_secrets_are_redacted(tmp_path: Path) -> None:
    records = [
        {"type": "user", "uuid": "u1", "message": {"role": "user", "content": f"use key {ANTHROPIC} please"}},
        {"type": "assistant", "uuid": "a1", "requestId": "r", "message": {
            "id": "m1", "role": "assistant", "model": "claude-x", "content": [
                {"type": "text", "text": f"export GITHUB_TOKEN={GITHUB}"},
                {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": f"echo {AWS}"}}]}},
        {"type": "user", "uuid": "u2", "toolUseResult": {"stdout": PEM, "stderr": ""}, "message": {
            "role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": PEM}]}},
        {"type": "attachment", "uuid": "x1", "attachment": {"type": "hook_success", "stdout": f"Bearer {ANTHROPIC}"}},
    ]
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    items = [item for item in ClaudeSessionReader("sid", path).read() if isinstance(item, dict)]
    log = tmp_path / "log.jsonl"
    with SessionLogWriter("z", "claude", path=log) as writer:
        writer.write_many(items, "backfill")
    data = log.read_bytes()
    for secret in (ANTHROPIC, GITHUB, AWS, "MIIEow", "A1b2C3d4E5f6G7h8"):
        assert secret.encode() not in data, secret
    lines = [json.loads(line) for line in data.splitlines()]
    assert [line["type"] for line in lines] == ["user_message", "assistant_message", "tool_call", "tool_result",
                                                "provider_status"]
    assert "[REDACTED:" in lines[0]["content"] and "[REDACTED:" in lines[2]["input"]["command"]
    assert "[REDACTED:" in lines[3]["output"] and "[REDACTED:" in lines[3]["details"]["stdout"]
