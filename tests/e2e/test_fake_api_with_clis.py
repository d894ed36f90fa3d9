"""The real CLIs (npm, pinned) run directly against the fake model API: proves the fake is faithful to what
REAL_CLIS.md measured — headless answers, tool turns, every limit response, resume, and each TUI."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from . import fake_api as fa
from .clis import CliEnv, Result, claude_project_dir

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

FAMILY = {"claude": "anthropic", "codex": "openai", "gemini": "gemini"}
NOTE = "secret note 42"
CODEX_LIMIT = re.compile(r"You’ve hit your usage limit\. Upgrade to Pro \(https://chatgpt\.com/explore/pro\), visit "
                         r"https://chatgpt\.com/settings/usage to purchase more credits or try again at "
                         r"(\d{1,2}):(\d{2}) ([AP]M)\.")
GEMINI_DAILY = "You have exhausted your daily quota on this model."

MakeEnv = Callable[..., CliEnv]


# ------------------------------------------------------------------------------------------ helpers


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _ok(result: Result) -> Result:
    assert result.returncode == 0, result.describe()
    return result


def _next_minute_boundary(ahead_secs: int = 120) -> int:
    """A reset epoch on a whole minute (so the CLIs' "3:50pm" rendering is exact)."""
    return (int(time.time()) + ahead_secs) // 60 * 60 + 60


def _clock(epoch: int, style: str) -> str:
    """The UTC clock time (TZ=UTC is set) as claude ("3:50pm", on the hour "3pm") or codex ("3:50 PM",
    "3:00 PM") renders it."""
    stamp = time.gmtime(epoch)
    hour, minute, pm = stamp.tm_hour % 12 or 12, stamp.tm_min, stamp.tm_hour >= 12
    if style == "claude":
        return f"{hour}{f':{minute:02d}' if minute else ''}{'pm' if pm else 'am'}"
    return f"{hour}:{minute:02d} {'PM' if pm else 'AM'}"


def _session_id(env: CliEnv, result: Result) -> str:
    """The CLI's own session id, from its headless JSON output."""
    for line in result.json_lines():
        if env.name == "claude" and line.get("session_id"):
            return line["session_id"]
        if env.name == "codex" and line.get("type") == "thread.started":
            return line["thread_id"]
        if env.name == "gemini" and line.get("type") == "init":
            return line["session_id"]
    raise AssertionError(f"no session id in the output\n{result.describe()}")


def _assistant_text(env: CliEnv, result: Result) -> str:
    lines = result.json_lines()
    if env.name == "claude":
        return "".join(block.get("text", "") for line in lines if line.get("type") == "assistant"
                       for block in line["message"]["content"])
    if env.name == "codex":
        return "".join(line["item"]["text"] for line in lines if line.get("type") == "item.completed"
                       and line["item"].get("type") == "agent_message")
    return "".join(line["content"] for line in lines if line.get("type") == "message"
                   and line.get("role") == "assistant")


def _assert_talked_only_to_fake(env: CliEnv) -> None:
    fake = env.fake
    assert fake.requests(FAMILY[env.name], fa.MAIN), "the CLI never reached the fake API"
    assert not fake.unexpected(), [f"{r.method} {r.path}" for r in fake.unexpected()]


# ------------------------------------------------------------------------------------ headless: hi


@pytest.mark.parametrize("name", ["claude", "codex", "gemini"])
def test_say_hi_headless(cli_env: MakeEnv, name: str) -> None:
    env = cli_env(name)
    result = _ok(env.run(*env.headless_args("say hi")))
    session_id = _session_id(env, result)

    assert _assistant_text(env, result) == fa.DEFAULT_TEXT
    lines = result.json_lines()
    if name == "claude":
        assert lines[0]["type"] == "system" and lines[0]["subtype"] == "init"
        assert lines[-1]["type"] == "result" and lines[-1]["is_error"] is False
        assert lines[-1]["result"] == fa.DEFAULT_TEXT
    elif name == "codex":
        assert [line["type"] for line in lines] == ["thread.started", "turn.started", "item.completed",
                                                    "turn.completed"]
        assert lines[-1]["usage"]["input_tokens"] == 12
    else:
        assert lines[0]["type"] == "init"
        assert lines[-1]["type"] == "result" and lines[-1]["status"] == "success"
        assert [line["content"] for line in lines if line.get("role") == "user"] == ["say hi"]

    path = env.session_file(session_id)
    records = _jsonl(path)
    text = path.read_text(encoding="utf-8")
    assert "say hi" in text and fa.DEFAULT_TEXT in text
    if name == "claude":
        assert path.parent.name == claude_project_dir(env.cwd)
        assert {r.get("sessionId") for r in records if "sessionId" in r} == {session_id}
    elif name == "codex":
        meta = records[0]
        assert meta["type"] == "session_meta" and meta["payload"]["session_id"] == session_id
        assert meta["payload"]["model_provider"] == "fake"
    else:
        assert records[0]["sessionId"] == session_id
        assert json.loads((env.home / ".gemini" / "projects.json").read_text())["projects"][str(env.cwd)] \
            == path.parent.parent.name

    _assert_talked_only_to_fake(env)
    main = env.fake.requests(FAMILY[name], fa.MAIN)
    assert len(main) == 1 and "say hi" in main[0].text()
    if name == "claude":
        assert main[0].headers["authorization"] == "Bearer sk-ant-oat01-fake"
        assert main[0].headers["x-claude-code-session-id"] == session_id
        assert [r.kind for r in env.fake.requests("anthropic")][0] == "preflight"
    elif name == "codex":
        assert main[0].headers["authorization"] == "Bearer dummy"
        assert json.loads(main[0].headers["x-codex-turn-metadata"])["thread_id"] == session_id
    else:
        assert main[0].headers["x-goog-api-key"] == "dummy"
        assert env.fake.requests("gemini", "router"), "gemini's model router call did not reach the fake"


def test_claude_plain_text_and_api_key(cli_env: MakeEnv) -> None:
    env = cli_env("claude", claude_auth="api_key")
    result = _ok(env.run(*env.headless_args("say hi", output="text")))
    assert result.stdout == fa.DEFAULT_TEXT + "\n"
    request = env.fake.requests("anthropic", fa.MAIN)[0]
    assert request.headers["x-api-key"] == "dummy"
    assert request.query == {"beta": "true"} and request.body["stream"] is True


# ------------------------------------------------------------------------------------ tool use


TOOL_CASES = {
    "claude-bash": ("claude", lambda cwd: fa.claude_bash("cat notes.txt; echo from-shell"), []),
    "claude-read": ("claude", lambda cwd: fa.claude_read(str(cwd / "notes.txt")), []),
    "codex-shell": ("codex", lambda cwd: fa.codex_shell("cat notes.txt; echo from-shell"), []),
    "gemini-read": ("gemini", lambda cwd: fa.gemini_read("notes.txt"), []),
    "gemini-shell": ("gemini", lambda cwd: fa.gemini_shell("cat notes.txt; echo from-shell"), ["--yolo"]),
}


@pytest.mark.parametrize("case", list(TOOL_CASES))
def test_tool_use_turn(cli_env: MakeEnv, case: str) -> None:
    name, make_call, extra = TOOL_CASES[case]
    env = cli_env(name)
    (env.cwd / "notes.txt").write_text(NOTE + "\n", encoding="utf-8")
    call = make_call(env.cwd)
    env.fake.queue(FAMILY[name], call, fa.Text("the tool said: done"))

    result = _ok(env.run(*env.headless_args("use the tool"), *extra))

    assert _assistant_text(env, result).endswith("the tool said: done")
    first, second = env.fake.requests(FAMILY[name], fa.MAIN)
    assert env.fake.pending(FAMILY[name]) == 0
    result_item = _tool_result_sent(name, second.body)
    assert NOTE in json.dumps(result_item), f"tool output not sent back: {result_item}"
    if "shell" in case or "bash" in case:
        assert "from-shell" in json.dumps(result_item)
    # The CLI reports the tool in its own output too.
    kinds = {line.get("type") for line in result.json_lines()}
    if name == "claude":
        assert any(line.get("type") == "user" and "tool_result" in json.dumps(line) for line in result.json_lines())
    elif name == "codex":
        executions = [line["item"] for line in result.json_lines() if line.get("type") == "item.completed"
                      and line["item"].get("type") == "command_execution"]
        assert executions and executions[0]["exit_code"] == 0 and NOTE in executions[0]["aggregated_output"]
    else:
        assert {"tool_use", "tool_result"} <= kinds
    assert "use the tool" in first.text() and "use the tool" in second.text()
    assert _tool_calls_sent(name, second.body) == [call.name], "the conversation sent back lacks the tool call"


def _tool_calls_sent(name: str, body: dict[str, Any]) -> list[str]:
    """Names of the tool calls the CLI sent back as conversation history."""
    if name == "claude":
        return [block["name"] for message in body["messages"] if message["role"] == "assistant"
                and isinstance(message["content"], list)
                for block in message["content"] if block.get("type") == "tool_use"]
    if name == "codex":
        return [item["name"] for item in body["input"] if item.get("type") in ("custom_tool_call", "function_call")]
    return [part["functionCall"]["name"] for content in body["contents"] for part in content.get("parts", [])
            if "functionCall" in part]


def _tool_result_sent(name: str, body: dict[str, Any]) -> Any:
    """The tool result item the CLI sent back in its second request."""
    if name == "claude":
        return [block for message in body["messages"] if message["role"] == "user"
                and isinstance(message["content"], list)
                for block in message["content"] if block.get("type") == "tool_result"]
    if name == "codex":
        return [item for item in body["input"] if item.get("type") in ("custom_tool_call_output",
                                                                       "function_call_output")]
    return [part for content in body["contents"] for part in content.get("parts", []) if "functionResponse" in part]


# ------------------------------------------------------------------------------------ limits: claude


@pytest.mark.parametrize("claim, wording", [("five_hour", "session"), ("seven_day", "weekly")])
def test_claude_subscription_limit(cli_env: MakeEnv, claim: str, wording: str) -> None:
    env = cli_env("claude")
    reset_at = _next_minute_boundary()
    env.fake.limit_next("anthropic", 1, fa.claude_subscription_limit(reset_at, claim))

    result = env.run(*env.headless_args("say hi"))

    assert result.returncode == 1, result.describe()
    expected = f"You've hit your {wording} limit · resets {_clock(reset_at, 'claude')} (UTC)"
    lines = result.json_lines()
    event = next(line for line in lines if line.get("type") == "rate_limit_event")
    assert event["rate_limit_info"]["status"] == "rejected"
    assert event["rate_limit_info"]["resetsAt"] == reset_at
    assert event["rate_limit_info"]["rateLimitType"] == claim
    synthetic = next(line for line in lines if line.get("type") == "assistant")
    assert synthetic["message"]["model"] == "<synthetic>" and synthetic["error"] == "rate_limit"
    assert synthetic["message"]["content"][0]["text"] == expected
    final = lines[-1]
    assert final["type"] == "result" and final["subtype"] == "success"
    assert final["is_error"] is True and final["api_error_status"] == 429 and final["result"] == expected
    assert result.stderr == ""
    assert len(env.fake.requests("anthropic", fa.MAIN)) == 1, "claude retried a subscription limit"

    transcript = _jsonl(env.session_file(_session_id(env, result)))
    errors = [r for r in transcript if r.get("isApiErrorMessage")]
    assert len(errors) == 1 and errors[0]["apiErrorStatus"] == 429 and errors[0]["error"] == "rate_limit"
    assert errors[0]["message"]["content"][0]["text"] == expected


def _next_hour_boundary() -> int:
    """A reset epoch on a whole hour, which claude renders without minutes ("3am")."""
    return (int(time.time()) + 120) // 3600 * 3600 + 3600


@pytest.mark.parametrize("next_reset", [_next_minute_boundary, _next_hour_boundary], ids=["minute", "hour"])
def test_claude_subscription_limit_plain_text(cli_env: MakeEnv, next_reset: Callable[[], int]) -> None:
    env = cli_env("claude")
    reset_at = next_reset()
    env.fake.limit_next("anthropic", 1, fa.claude_subscription_limit(reset_at))
    result = env.run(*env.headless_args("say hi", output="text"))
    assert result.returncode == 1, result.describe()
    assert result.stdout == f"You've hit your session limit · resets {_clock(reset_at, 'claude')} (UTC)\n"


def test_claude_api_key_rate_limit(cli_env: MakeEnv) -> None:
    env = cli_env("claude", claude_auth="api_key")
    env.fake.limit_next("anthropic", 1, fa.claude_api_key_limit(retry_after=3600))
    result = env.run(*env.headless_args("say hi", output="text"))
    assert result.returncode == 1, result.describe()
    assert result.stdout == ("API Error: Request rejected (429) · This request would exceed your account's rate "
                             "limit. Please try again later.\n")
    assert len(env.fake.requests("anthropic", fa.MAIN)) == 1, "retry-after > 60 s must not be retried"


def test_claude_short_retry_after_is_retried_then_answered(cli_env: MakeEnv) -> None:
    env = cli_env("claude", claude_auth="api_key")
    env.fake.limit_next("anthropic", 1, fa.claude_api_key_limit(retry_after=1))
    result = _ok(env.run(*env.headless_args("say hi")))
    retries = [line for line in result.json_lines() if line.get("subtype") == "api_retry"]
    assert len(retries) == 1 and retries[0]["error_status"] == 429 and retries[0]["error"] == "rate_limit"
    assert _assistant_text(env, result) == fa.DEFAULT_TEXT
    assert [r.status for r in env.fake.requests("anthropic", fa.MAIN)] == [429, 200]


def test_claude_allowed_warning_headers(cli_env: MakeEnv) -> None:
    env = cli_env("claude")
    reset_at = _next_minute_boundary(3600)
    env.fake.queue("anthropic", fa.Text(headers=fa.claude_allowed_headers(reset_at, utilization=0.92)))
    result = _ok(env.run(*env.headless_args("say hi")))
    info = next(line for line in result.json_lines() if line.get("type") == "rate_limit_event")["rate_limit_info"]
    assert info["status"] == "allowed_warning" and info["utilization"] == 0.92
    assert info["resetsAt"] == reset_at and info["rateLimitType"] == "five_hour"


def test_claude_limit_then_resume_same_session(cli_env: MakeEnv) -> None:
    env = cli_env("claude")
    env.fake.limit_for("anthropic", 2, fa.claude_subscription_limit)  # reset 2 s after the first request
    limited = env.run(*env.headless_args("remember the word pineapple"))
    assert limited.returncode == 1, limited.describe()
    session_id = _session_id(env, limited)
    reset_at = env.fake.limit_reset_at("anthropic")
    event = next(line for line in limited.json_lines() if line.get("type") == "rate_limit_event")
    assert event["rate_limit_info"]["resetsAt"] == int(reset_at)

    env.fake.wait_for(lambda _: time.time() >= reset_at, timeout=10)
    resumed = _ok(env.run(*env.resume_args(session_id, "Continue")))

    assert _session_id(env, resumed) == session_id
    assert _assistant_text(env, resumed) == fa.DEFAULT_TEXT
    request = env.fake.requests("anthropic", fa.MAIN)[-1]
    assert request.status == 200 and request.headers["x-claude-code-session-id"] == session_id
    sent = request.text()
    assert "remember the word pineapple" in sent and "Continue" in sent
    assert "hit your session limit" not in sent, "the synthetic error message went upstream"
    transcript = env.session_file(session_id).read_text(encoding="utf-8")
    assert "hit your session limit" in transcript and fa.DEFAULT_TEXT in transcript
    assert len(env.session_files()) == 1, "resume forked a new transcript"


# ------------------------------------------------------------------------------------ limits: codex


def test_codex_usage_limit_then_resume(cli_env: MakeEnv) -> None:
    env = cli_env("codex")
    resets_at = _next_minute_boundary()
    env.fake.limit_next("openai", 1, fa.codex_usage_limit(resets_at))

    limited = env.run(*env.headless_args("remember the word pineapple"))

    assert limited.returncode == 1, limited.describe()
    lines = limited.json_lines()
    assert [line["type"] for line in lines] == ["thread.started", "turn.started", "error", "turn.failed"]
    match = CODEX_LIMIT.fullmatch(lines[2]["message"])
    assert match, lines[2]["message"]
    assert f"{match[1]}:{match[2]} {match[3]}" == _clock(resets_at, "codex")
    assert lines[3]["error"]["message"] == lines[2]["message"]
    assert len(env.fake.requests("openai", fa.MAIN)) == 1, "codex retried a usage limit"
    thread_id = _session_id(env, limited)
    rollout = _jsonl(env.session_file(thread_id))
    limits = [r["payload"]["rate_limits"] for r in rollout if r["type"] == "event_msg"
              and r["payload"].get("type") == "token_count" and r["payload"].get("rate_limits")]
    assert limits and limits[-1]["primary"]["used_percent"] == 100.0
    assert limits[-1]["primary"]["resets_at"] == resets_at and limits[-1]["primary"]["window_minutes"] == 300
    completes = [r["payload"] for r in rollout if r["type"] == "event_msg" and r["payload"].get("type") == "task_complete"]
    assert completes[-1]["error"]["codex_error_info"] == "usage_limit_exceeded"

    resumed = _ok(env.run(*env.resume_args(thread_id, "Continue")))

    assert _session_id(env, resumed) == thread_id
    assert _assistant_text(env, resumed) == fa.DEFAULT_TEXT
    sent = env.fake.requests("openai", fa.MAIN)[-1].text()
    assert "remember the word pineapple" in sent and "Continue" in sent
    assert len(env.session_files()) == 1, "resume wrote a second rollout"


def test_codex_usage_limit_plain_mode(cli_env: MakeEnv) -> None:
    env = cli_env("codex")
    env.fake.limit_next("openai", 1, fa.codex_usage_limit(_next_minute_boundary()))
    result = env.run(*env.headless_args("say hi", output="text"))
    assert result.returncode == 1, result.describe()
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR: ")]
    assert errors and all(CODEX_LIMIT.fullmatch(line[len("ERROR: "):]) for line in errors), result.stderr


def test_codex_plain_rate_limit_once_is_retried(cli_env: MakeEnv) -> None:
    env = cli_env("codex")
    env.fake.limit_next("openai", 1, fa.codex_rate_limited(retry_after=1))
    result = _ok(env.run(*env.headless_args("say hi")))
    errors = [line["message"] for line in result.json_lines() if line.get("type") == "error"]
    assert errors == ["Reconnecting... 1/1 (exceeded retry limit, last status: 429 Too Many Requests)"]
    assert _assistant_text(env, result) == fa.DEFAULT_TEXT
    assert result.json_lines()[-1]["type"] == "turn.completed"


# ------------------------------------------------------------------------------------ limits: gemini


def test_gemini_daily_quota(cli_env: MakeEnv) -> None:
    env = cli_env("gemini")
    env.fake.limit_until("gemini", time.time() + 120, fa.gemini_quota(per_day=True))

    result = env.run(*env.headless_args("say hi"))

    assert result.returncode == 173, result.describe()  # process.exit(429) & 0xFF
    final = result.json_lines()[-1]
    assert final["type"] == "result" and final["status"] == "error"
    assert final["error"]["message"].startswith(f"[API Error: {GEMINI_DAILY}]")
    assert "TerminalQuotaError" in result.stderr
    assert {r.status for r in env.fake.requests("gemini")} == {429}
    assert len(env.fake.requests("gemini", fa.MAIN)) == 1, "gemini retried a per-day quota"
    reports = list((env.root / "tmp").glob("gemini-client-error-*.json"))
    assert reports, "gemini writes its error report under TMPDIR"


def test_gemini_daily_quota_json_output(cli_env: MakeEnv) -> None:
    env = cli_env("gemini")
    env.fake.limit_next("gemini", 1, fa.gemini_quota(per_day=True))
    result = env.run("-p", "say hi", "--output-format", "json")
    assert result.returncode == 173, result.describe()
    assert result.stdout == ""
    tail = json.loads(result.stderr[result.stderr.rindex("\n{") + 1:])  # pretty-printed, last on stderr
    assert tail["session_id"] and tail["error"] == {"type": "Error", "message": GEMINI_DAILY, "code": 429}


def test_gemini_per_minute_quota_once_is_retried(cli_env: MakeEnv) -> None:
    env = cli_env("gemini")
    env.fake.limit_next("gemini", 1, fa.gemini_quota(per_day=False, retry_delay_secs=1))
    result = _ok(env.run(*env.headless_args("say hi")))
    assert re.search(r"Attempt 1 failed: .*Retrying after \d+ms", result.stderr, re.DOTALL), result.stderr[-2000:]
    assert _assistant_text(env, result) == fa.DEFAULT_TEXT
    assert [r.status for r in env.fake.requests("gemini", fa.MAIN)] == [429, 200]


def test_gemini_limit_then_resume(cli_env: MakeEnv) -> None:
    env = cli_env("gemini")
    first = _ok(env.run(*env.headless_args("remember the word pineapple")))
    session_id = _session_id(env, first)
    env.fake.limit_next("gemini", 1, fa.gemini_quota(per_day=True))

    limited = env.run(*env.resume_args(session_id, "say more"))
    assert limited.returncode == 173, limited.describe()
    assert _session_id(env, limited) == session_id

    resumed = _ok(env.run(*env.resume_args(session_id, "Continue")))
    assert _session_id(env, resumed) == session_id
    sent = env.fake.requests("gemini", fa.MAIN)[-1].text()
    assert "remember the word pineapple" in sent and "Continue" in sent
    chat = env.session_file(session_id)  # the oldest file of the session holds the whole conversation
    records = _jsonl(chat)
    assert [r["content"] for r in records if r.get("type") == "gemini"] == [fa.DEFAULT_TEXT, fa.DEFAULT_TEXT]
    for stray in env.session_files()[1:]:  # a resume in a later minute adds a header-only file (REAL_CLIS.md)
        assert stray.name.endswith(f"-{session_id[:8]}.jsonl")
        assert not [r for r in _jsonl(stray) if r.get("type") in ("user", "gemini")]


# ------------------------------------------------------------------------------------ interactive


def test_claude_tui_answer_limit_dialog_and_exit(cli_env: MakeEnv) -> None:
    env = cli_env("claude")
    reset_at = _next_minute_boundary()
    tui = env.spawn()
    tui.wait_for("? for shortcuts", timeout=30)
    tui.type_line("say hi")
    tui.wait_for(f"● {fa.DEFAULT_TEXT}", timeout=30)

    # every call is rejected while the account is limited, as upstream does: a header-less 200 to the TUI's
    # title call landing after the 429 would tell claude the limit is lifted, and it would not open its dialog
    env.fake.limit_until("anthropic", reset_at, fa.claude_subscription_limit(reset_at))
    tui.type_line("second prompt")
    tui.wait_for(f"You've hit your session limit · resets {_clock(reset_at, 'claude')} (UTC)", timeout=30)
    tui.wait_for("Stop and wait for limit to reset", timeout=15)  # claude opened /rate-limit-options itself
    tui.press("enter")
    tui.wait_gone("Stop and wait for limit to reset", timeout=15)

    env.fake.clear("anthropic")  # the limit is over (early, in this test's world)
    env.fake.queue("anthropic", fa.Text("answer after the limit"))
    tui.type_line("third prompt")
    tui.wait_for("● answer after the limit", timeout=30)
    sent = env.fake.requests("anthropic", fa.MAIN)[-1]
    assert "say hi" in sent.text() and "third prompt" in sent.text()
    assert env.fake.requests("anthropic", "title"), "the TUI's title request was not seen"
    assert sent.headers["user-agent"].endswith("(external, cli)")

    tui.type_line("/exit")
    assert tui.wait_exit(timeout=30) == 0
    session_id = sent.headers["x-claude-code-session-id"]
    assert f"claude --resume {session_id}" in tui.raw.decode(errors="replace")
    assert env.session_file(session_id).is_file()


def test_codex_tui_answer_limit_popup_and_quit(cli_env: MakeEnv) -> None:
    env = cli_env("codex")
    tui = env.spawn()
    tui.wait_for("Ask Codex to do anything", timeout=30)
    tui.type_line("say hi")
    tui.wait_for(f"• {fa.DEFAULT_TEXT}", timeout=30)

    env.fake.limit_next("openai", 1, fa.codex_usage_limit(_next_minute_boundary()))
    tui.type_line("second prompt")
    tui.wait_for("■ You’ve hit your usage limit.", timeout=30)
    tui.wait_for("Keep current model", timeout=15)  # the model-switch popup swallows keystrokes
    tui.press("down")
    tui.wait_for("› 2. Keep current model", timeout=10)
    tui.press("enter")
    tui.wait_gone("Keep current model", timeout=15)

    env.fake.queue("openai", fa.Text("answer after the limit"))
    tui.type_line("third prompt")
    tui.wait_for("• answer after the limit", timeout=30)
    sent = env.fake.requests("openai", fa.MAIN)[-1]
    assert "say hi" in sent.text() and "third prompt" in sent.text()
    assert sent.body["model"] == "gpt-6-sol", "the popup switched the model"
    assert env.fake.requests("openai", "title"), "the TUI's title request was not seen"

    tui.type_line("/quit")
    assert tui.wait_exit(timeout=30) == 0
    thread_id = json.loads(sent.headers["x-codex-turn-metadata"])["thread_id"]
    assert f"codex resume {thread_id}" in tui.raw.decode(errors="replace")
    assert env.session_file(thread_id).is_file()


def test_gemini_tui_limit_dialogs_answer_and_quit(cli_env: MakeEnv) -> None:
    env = cli_env("gemini")
    tui = env.spawn()
    tui.wait_for("Type your message", timeout=60)
    env.fake.limit_until("gemini", time.time() + 600, fa.gemini_quota(per_day=True))
    tui.type_line("say hi")
    tui.wait_for("Usage limit reached for gemini-3.5-flash-lite.", timeout=30)  # the router model's quota
    tui.press("down")
    tui.wait_for("● 2. Stop", timeout=10)  # keys sent in one burst get lost: wait for each to land
    tui.press("enter")
    tui.wait_for("Usage limit reached for all Pro models.", timeout=30)
    tui.press("down")
    tui.wait_for("● 2. Stop", timeout=10)
    tui.press("enter")
    tui.wait_for(f"✕ [API Error: {GEMINI_DAILY}]", timeout=30)
    assert {r.status for r in env.fake.requests("gemini")} == {429}

    env.fake.clear("gemini")  # the quota is back
    tui.type_line("again please")
    tui.wait_for(f"✦ {fa.DEFAULT_TEXT}", timeout=30)
    assert "again please" in env.fake.requests("gemini", fa.MAIN)[-1].text()
    tui.type_line("/quit")
    tui.wait_for("To resume this session: gemini --resume", timeout=30)
    assert tui.wait_exit(timeout=30) == 0
    session_id = re.search(r"gemini --resume ([0-9a-f-]{36})", tui.text())[1]
    assert fa.DEFAULT_TEXT in env.session_file(session_id).read_text(encoding="utf-8")
