"""The fake model API on its own (no CLI): scripting, classification, wire formats, recording."""

from __future__ import annotations

import gzip
import json
import time
import urllib.error
import urllib.request
from typing import Any, Iterator

import pytest

from . import fake_api as fa


@pytest.fixture
def fake() -> Iterator[fa.FakeAPI]:
    with fa.FakeAPI() as server:  # in the test's own network namespace, so urllib can reach it
        yield server


def _post(fake: fa.FakeAPI, path: str, body: Any, headers: dict[str, str] | None = None,
          data: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(fake.base_url + path, data=data if data is not None else json.dumps(body).encode(),
                                     headers={"content-type": "application/json", **(headers or {})}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def _sse(raw: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    events = []
    for block in raw.decode().replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        name = None
        data = ""
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                data += line[len("data: "):]
        events.append((name, json.loads(data)))
    return events


CLAUDE_TURN = {"model": "claude-sonnet-5", "stream": True, "tools": [{"name": "Bash"}],
               "messages": [{"role": "user", "content": "say hi"}]}


def test_anthropic_preflight_and_text_stream(fake: fa.FakeAPI) -> None:
    head = urllib.request.Request(fake.base_url + "/", method="HEAD")
    with urllib.request.urlopen(head, timeout=10) as response:
        assert response.status == 200
    status, headers, raw = _post(fake, "/v1/messages?beta=true", CLAUDE_TURN)
    assert status == 200 and headers["content-type"] == "text/event-stream"
    events = _sse(raw)
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert all(name == data["type"] for name, data in events)
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert text == fa.DEFAULT_TEXT
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn" and events[-2][1]["usage"]["output_tokens"] > 0
    kinds = [(r.method, r.family, r.kind, r.query) for r in fake.requests()]
    assert kinds == [("HEAD", "anthropic", "preflight", {}), ("POST", "anthropic", "main", {"beta": "true"})]


def test_anthropic_tool_use_and_title_side_request(fake: fa.FakeAPI) -> None:
    fake.queue("anthropic", fa.claude_bash("ls"))
    title = {**CLAUDE_TURN, "tools": [], "stream": False}
    status, _, raw = _post(fake, "/v1/messages", title)  # side request: does not consume the queue
    assert status == 200 and json.loads(json.loads(raw)["content"][0]["text"]) == {"title": "Say hi"}
    events = _sse(_post(fake, "/v1/messages", CLAUDE_TURN)[2])
    start = next(d for n, d in events if n == "content_block_start")
    assert start["content_block"]["type"] == "tool_use" and start["content_block"]["name"] == "Bash"
    partial = next(d for n, d in events if n == "content_block_delta")["delta"]
    assert partial["type"] == "input_json_delta" and json.loads(partial["partial_json"])["command"] == "ls"
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert [r.kind for r in fake.requests()] == ["title", "main"]


def test_limit_next_then_normal_again(fake: fa.FakeAPI) -> None:
    reset_at = int(time.time()) + 5
    fake.limit_next("anthropic", 2, fa.claude_subscription_limit(reset_at, "seven_day"))
    for _ in range(2):
        status, headers, raw = _post(fake, "/v1/messages", CLAUDE_TURN)
        assert status == 429 and json.loads(raw)["error"]["type"] == "rate_limit_error"
        assert headers["anthropic-ratelimit-unified-status"] == "rejected"
        assert headers["anthropic-ratelimit-unified-representative-claim"] == "seven_day"
        assert headers["anthropic-ratelimit-unified-reset"] == str(reset_at)
    assert _post(fake, "/v1/messages", CLAUDE_TURN)[0] == 200
    assert [r.status for r in fake.requests()] == [429, 429, 200]


def test_limit_until_covers_side_requests_and_expires(fake: fa.FakeAPI) -> None:
    fake.limit_until("gemini", time.time() + 600, fa.gemini_quota(per_day=True))
    router = {"generationConfig": {"responseJsonSchema": {"properties": {"complexity_score": {}}}}}
    status, _, raw = _post(fake, "/v1beta/models/gemini-3.5-flash-lite:generateContent", router)
    error = json.loads(raw)["error"]
    assert status == 429 and error["status"] == "RESOURCE_EXHAUSTED"
    assert "PerDay" in error["details"][0]["violations"][0]["quotaId"]
    assert error["details"][2] == {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3600s"}
    fake.limit_until("gemini", time.time() - 1, fa.gemini_quota())  # a window in the past is over
    status, _, raw = _post(fake, "/v1beta/models/gemini-3.5-flash-lite:generateContent", router)
    answer = json.loads(json.loads(raw)["candidates"][0]["content"]["parts"][0]["text"])
    assert status == 200 and answer["complexity_score"] == 1 and answer["complexity_reasoning"]


def test_limit_for_starts_at_the_first_request(fake: fa.FakeAPI) -> None:
    fake.limit_for("openai", 30, fa.codex_usage_limit)
    assert fake.limit_reset_at("openai") is None
    before = time.time()
    status, headers, raw = _post(fake, "/v1/responses", {"stream": True})
    reset_at = fake.limit_reset_at("openai")
    assert status == 429 and before + 30 <= reset_at <= time.time() + 30
    assert json.loads(raw)["error"]["resets_at"] == int(reset_at)
    assert _post(fake, "/v1/responses", {"stream": True})[0] == 429  # the same window, side calls too
    fake.clear("openai")
    assert _post(fake, "/v1/responses", {"stream": True})[0] == 200


def test_openai_responses_stream_text_function_and_custom_calls(fake: fa.FakeAPI) -> None:
    fake.queue("openai", fa.Text("one two"), fa.ToolCall("shell", {"command": ["ls"]}), fa.codex_shell("ls"))
    body = {"model": "gpt-6-sol", "stream": True, "input": []}
    names = [n for n, _ in _sse(_post(fake, "/v1/responses", body)[2])]
    assert names == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.content_part.added", "response.output_text.delta", "response.output_text.done",
                     "response.content_part.done", "response.output_item.done", "response.completed"]
    function_events = _sse(_post(fake, "/v1/responses", body)[2])
    done = next(d for n, d in function_events if n == "response.output_item.done")["item"]
    assert done["type"] == "function_call" and json.loads(done["arguments"]) == {"command": ["ls"]}
    custom_events = _sse(_post(fake, "/v1/responses", body)[2])
    done = next(d for n, d in custom_events if n == "response.output_item.done")["item"]
    assert done["type"] == "custom_tool_call" and done["name"] == "exec"
    assert "tools.exec_command" in done["input"]
    completed = custom_events[-1][1]
    assert completed["type"] == "response.completed" and completed["response"]["status"] == "completed"
    assert [d["sequence_number"] for _, d in custom_events] == list(range(len(custom_events)))


def test_openai_title_request_is_a_side_request(fake: fa.FakeAPI) -> None:
    fake.limit_next("openai", 1, fa.codex_usage_limit(time.time() + 60))
    metadata = json.dumps({"thread_source": "thread_title"})
    status, _, raw = _post(fake, "/v1/responses", {"stream": True}, {"x-codex-turn-metadata": metadata})
    assert status == 200 and fake.pending("openai") == 1
    status, headers, raw = _post(fake, "/v1/responses", {"stream": True})
    error = json.loads(raw)["error"]
    assert status == 429 and error["type"] == "usage_limit_reached" and error["plan_type"] == "plus"
    assert 0 < error["resets_in_seconds"] <= 60 and error["resets_at"] > time.time()
    assert headers["x-codex-primary-used-percent"] == "100.0"
    assert headers["x-codex-primary-reset-at"] == str(error["resets_at"])
    assert headers["x-codex-secondary-window-minutes"] == "10080"


def test_gemini_stream_text_function_call_and_json_array(fake: fa.FakeAPI) -> None:
    fake.queue("gemini", fa.gemini_read("a.txt"))
    path = "/v1beta/models/gemini-3.8-flash:streamGenerateContent"
    chunks = [d for _, d in _sse(_post(fake, path + "?alt=sse", {"contents": []})[2])]
    assert chunks[0]["candidates"][0]["content"]["parts"][0]["functionCall"] == {
        "name": "read_file", "args": {"file_path": "a.txt"}}
    chunks = [d for _, d in _sse(_post(fake, path + "?alt=sse", {"contents": []})[2])]
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks) == fa.DEFAULT_TEXT
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP" and "usageMetadata" in chunks[-1]
    array = json.loads(_post(fake, path, {"contents": []})[2])
    assert isinstance(array, list) and array[-1]["candidates"][0]["finishReason"] == "STOP"
    assert [r.query for r in fake.requests()] == [
        {"alt": "sse"}, {"alt": "sse"}, {}]


def test_records_bodies_even_compressed_and_chunked(fake: fa.FakeAPI) -> None:
    body = {"model": "m", "stream": True, "tools": [1], "messages": [{"role": "user", "content": "zipped"}]}
    _post(fake, "/v1/messages", None, {"content-encoding": "gzip"}, data=gzip.compress(json.dumps(body).encode()))
    chunked = urllib.request.Request(fake.base_url + "/v1/messages", method="POST",
                                     data=iter([json.dumps(body).encode()]),
                                     headers={"content-type": "application/json", "transfer-encoding": "chunked"})
    with urllib.request.urlopen(chunked, timeout=10) as response:
        assert response.status == 200
    assert [r.body for r in fake.requests()] == [body, body]
    assert "zipped" in fake.requests()[0].text()


def test_unknown_endpoints_are_404_and_reported(fake: fa.FakeAPI) -> None:
    assert _post(fake, "/v1/models", {})[0] == 404
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(fake.base_url + "/api/oauth/profile", timeout=10)
    assert [r.path for r in fake.unexpected()] == ["/v1/models", "/api/oauth/profile"]


def test_callable_replies_and_waiting(fake: fa.FakeAPI) -> None:
    fake.queue("anthropic", lambda request: fa.Text(f"you sent {len(request.body['messages'])} message(s)"))
    events = _sse(_post(fake, "/v1/messages", CLAUDE_TURN)[2])
    assert "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta") == "you sent 1 message(s)"
    assert len(fake.wait_requests("anthropic", 1, timeout=1)) == 1
    with pytest.raises(TimeoutError):
        fake.wait_requests("anthropic", 2, timeout=0.3)


def test_a_delayed_answer_is_recorded_on_arrival(fake: fa.FakeAPI) -> None:
    import threading

    fake.queue("anthropic", fa.Text("late", delay_secs=30))
    caller = threading.Thread(target=lambda: _post(fake, "/v1/messages", CLAUDE_TURN), daemon=True)
    caller.start()
    request = fake.wait_requests("anthropic", 1, timeout=10)[0]
    assert request.status == 0  # in flight: a test can now kill the CLI (or zag) mid-turn
    fake.stop()  # wakes the delayed handler instead of waiting 30 s
    caller.join(timeout=10)
    assert not caller.is_alive()


def test_unknown_family_is_rejected(fake: fa.FakeAPI) -> None:
    with pytest.raises(ValueError):
        fake.queue("mistral", fa.Text())
