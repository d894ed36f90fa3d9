"""zag's claude provider against the real `@anthropic-ai/claude-code` 2.1.197 (npm) and the fake model API:
the chosen `--session-id` names the transcript, the live session and the scanner see what the CLI wrote and
printed, a tool turn maps to shell tool events, subscription and API-key limits are detected (structured and
as text), a planned resume continues the same session without repeating it, and in the TUI the rate-limit
dialog is answered with zag's keystrokes, the resume message submits, and `/clear` is followed through
claude's own pid registry (claude runs below the network-jail wrapper here)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from zag.logs import codec
from zag.providers import get
from zag.providers.base import LaunchContext, LaunchPlan, LimitSignal, SessionIdHint

from . import fake_api as fa
from .clis import CliEnv, Result

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
P = get("claude")
MakeEnv = Callable[..., CliEnv]
HEADLESS = ["--output-format", "stream-json", "--verbose"]


def ctx_of(env: CliEnv, interactive: bool = False, pid: int | None = None) -> LaunchContext:
    return LaunchContext(cwd=str(env.cwd), env=env.env, interactive=interactive, started_at=time.time(),
                         zag_session_id="e2e", child_pid=pid)


def run_plan(env: CliEnv, plan: LaunchPlan) -> Result:
    return env.run(*plan.args, extra_env=plan.env)


def scan(result: Result | bytes, stream: str = "stdout") -> list[Any]:
    scanner = P.output_scanner(LaunchContext(cwd="/", env={}, interactive=False, started_at=0, zag_session_id="e2e"))
    if isinstance(result, Result):
        items = scanner.feed("stdout", result.stdout.encode()) + scanner.feed("stderr", result.stderr.encode())
    else:
        items = scanner.feed(stream, result)
    return items + scanner.finish()


def follow(plan: LaunchPlan, ctx: LaunchContext) -> list[Any]:
    session = P.open_live(plan, ctx)
    items: list[Any] = []
    for _ in range(5):
        items += session.poll()
    return items


def kinds(items: list[Any]) -> list[str]:
    return [item["type"] for item in items if isinstance(item, dict) and item["type"] != "provider_status"]


def signals(items: list[Any]) -> list[LimitSignal]:
    return [item for item in items if isinstance(item, LimitSignal)]


def type_keys(tui: Any, keys: Any) -> None:
    """Write a KeySequence as the supervisor does: chunk by chunk, `pause` apart (reading meanwhile)."""
    for index, chunk in enumerate(keys.chunks):
        if index:
            tui.pump(keys.pause)
        tui.child.send(chunk)


def test_chosen_session_id_names_the_transcript_and_live_follows_it(cli_env: MakeEnv) -> None:
    env = cli_env("claude")
    ctx = ctx_of(env)
    plan = P.plan_launch(["-p", "say hi", *HEADLESS], ctx)
    assert plan.args[0] == "--session-id"
    result = run_plan(env, plan)
    assert result.returncode == 0, result.describe()
    sid = plan.provider_session_id
    assert env.session_file(sid).is_file()
    assert [item for item in scan(result) if isinstance(item, SessionIdHint)] == [SessionIdHint(sid, "stdout")]
    assert signals(scan(result)) == []
    items = follow(plan, ctx)
    assert kinds(items) == ["user_message", "assistant_message", "usage"]
    assert items and {item["provider_session_id"] for item in items} == {sid}
    user, answer = [item for item in items if item["type"] in ("user_message", "assistant_message")]
    assert (user["content"], answer["content"]) == ("say hi", fa.DEFAULT_TEXT)
    [source] = P.discover(env.env)
    assert source.source_key == sid and source.paths == (env.session_file(sid),)
    reader = P.open_reader(source, None)
    assert kinds(list(reader.read())) == kinds(items) and reader.info["cwd"] == str(env.cwd)


def test_tool_turn_maps_to_shell_events(cli_env: MakeEnv) -> None:
    env = cli_env("claude")
    env.fake.queue(env.family, fa.claude_bash("echo hello-e2e"), fa.Text("the tool said hello"))
    ctx = ctx_of(env)
    plan = P.plan_launch(["-p", "run it", "--allowedTools", "Bash", *HEADLESS], ctx)
    result = run_plan(env, plan)
    assert result.returncode == 0, result.describe()
    items = [item for item in follow(plan, ctx) if isinstance(item, dict)]
    assert kinds(items) == ["user_message", "tool_call", "usage", "tool_result", "assistant_message", "usage"]
    call = next(item for item in items if item["type"] == "tool_call")
    outcome = next(item for item in items if item["type"] == "tool_result")
    assert (call["tool_name"], call["tool_kind"]) == ("Bash", "shell")
    assert outcome["tool_id"] == call["tool_id"] and outcome["success"] and outcome["tool_name"] == "Bash"
    assert "hello-e2e" in json.dumps(msgspec.json.decode(codec.dumps(outcome)))


def test_a_fork_logs_its_own_turn_not_the_copied_history(cli_env: MakeEnv) -> None:
    """`--resume X --fork-session` writes a new transcript starting with a copy of X's records (same uuids,
    timestamps, message ids): live and backfill log only the fork's own turn, its usage once."""
    env = cli_env("claude")
    first = P.plan_launch(["-p", "remember pineapple", *HEADLESS], ctx_of(env))
    assert run_plan(env, first).returncode == 0
    parent = first.provider_session_id
    time.sleep(1.0)  # the copies keep the parent's times: older than the fork's start by more than the slack
    ctx = ctx_of(env)
    plan = P.plan_launch(["--resume", parent, "--fork-session", "-p", "and now?", *HEADLESS], ctx)
    result = run_plan(env, plan)
    assert result.returncode == 0, result.describe()
    live = P.open_live(plan, ctx)
    for hint in [item for item in scan(result) if isinstance(item, SessionIdHint)]:
        live.hint(hint)
    items = [item for _ in range(5) for item in live.poll()]
    fork = live.provider_session_id
    assert fork not in (None, parent)
    assert kinds(items) == ["user_message", "assistant_message", "usage"]
    assert _contents(items, "user_message") == ["and now?"]
    notes = [item["data"] for item in items if item["type"] == "provider_status"
             and isinstance(item.get("data"), dict) and item["data"].get("kind") == "copied_history"]
    assert len(notes) == 1
    sources = {source.source_key: source for source in P.discover(env.env)}
    backfilled = list(P.open_reader(sources[fork], None).read())
    assert kinds(backfilled) == kinds(items) and _contents(backfilled, "user_message") == ["and now?"]
    assert _contents(list(P.open_reader(sources[parent], None).read()), "user_message") == ["remember pineapple"]


def test_subscription_limit_then_planned_resume(cli_env: MakeEnv) -> None:
    env = cli_env("claude")
    first = P.plan_launch(["-p", "remember pineapple", *HEADLESS], ctx_of(env))
    assert run_plan(env, first).returncode == 0
    sid = first.provider_session_id

    reset = time.time() + 3 * 3600
    env.fake.limit_next(env.family, 1, fa.claude_subscription_limit(reset, "five_hour"))
    limited_ctx = ctx_of(env)
    limited = P.plan_resume(["-p", "remember pineapple", *HEADLESS], sid, "say more", limited_ctx)
    assert limited.args == ["-p", "--resume", sid, *HEADLESS, "--", "say more"]
    result = run_plan(env, limited)
    assert result.returncode == 1, result.describe()
    event, assistant, outcome = signals(scan(result))
    assert all(signal.structured for signal in (event, assistant, outcome))
    assert (event.scope, event.reset_at) == ("session", float(int(reset)))
    assert assistant.raw.startswith("You've hit your session limit · resets ")
    assert abs(assistant.reset_at - reset) < 120  # the text is rounded to the minute
    items = follow(limited, limited_ctx)
    assert kinds(items) == ["user_message", "assistant_message"]
    [hit] = signals(items)
    assert hit.structured and hit.scope == "session" and hit.provider_session_id == sid
    assert abs(hit.reset_at - reset) < 120

    resume_ctx = ctx_of(env)
    plan = P.plan_resume(["-p", "remember pineapple", *HEADLESS], sid, "Continue", resume_ctx)
    result = run_plan(env, plan)
    assert result.returncode == 0, result.describe()
    sent = env.fake.requests(env.family, fa.MAIN)[-1].text()
    assert "remember pineapple" in sent and "Continue" in sent
    items = follow(plan, resume_ctx)
    assert kinds(items) == ["user_message", "assistant_message", "usage"]
    assert [item["content"] for item in items if isinstance(item, dict) and item["type"] == "user_message"] == [
        "Continue"]


def test_api_key_limit_in_plain_text_output(cli_env: MakeEnv) -> None:
    env = cli_env("claude", claude_auth="api_key")
    env.fake.limit_next(env.family, 1, fa.claude_api_key_limit(3600))
    ctx = ctx_of(env)
    plan = P.plan_launch(["-p", "say hi"], ctx)
    result = run_plan(env, plan)
    assert result.returncode == 1, result.describe()
    [text] = signals(scan(result))
    assert not text.structured and text.reset_at is None and text.raw.startswith("API Error: Request rejected (429)")
    [hit] = signals(follow(plan, ctx))
    assert hit.structured and hit.reset_at is None and hit.raw == text.raw


def test_tui_limit_dialog_resume_message_and_clear(cli_env: MakeEnv) -> None:
    env = cli_env("claude")
    ctx = ctx_of(env, interactive=True)
    plan = P.plan_launch([], ctx)
    tui = env.spawn(*plan.args)
    live = P.open_live(plan, ctx_of(env, interactive=True, pid=tui.pid))
    items: list[Any] = []
    tui.wait_for("for shortcuts", timeout=60)
    tui.pump(1.0)
    # every call is rejected while limited, the TUI's title call too (see test_fake_api_with_clis)
    reset = time.time() + 3600
    env.fake.limit_until(env.family, reset, fa.claude_subscription_limit(reset))
    type_keys(tui, P.resume_keys("say hi"))
    tui.wait_for("You've hit your session limit", timeout=30)
    tui.wait_for("Stop and wait for limit to reset", timeout=15)
    keys = P.unblock_keys(tui.text())
    assert keys == b"\r"
    tui.child.send(keys)
    tui.wait_gone("Stop and wait for limit to reset", timeout=15)
    env.fake.clear(env.family)  # the limit is over
    assert P.unblock_keys(tui.text()) is None
    message = "Please continue with the task where you left off, the limit has reset."
    type_keys(tui, P.resume_keys(message))
    tui.wait_for(fa.DEFAULT_TEXT, timeout=30)
    assert message in env.fake.requests(env.family, fa.MAIN)[-1].text()
    # claude writes its transcript a moment after the screen shows the answer.
    poll_live_until(live, tui, items, lambda: message in _contents(items, "user_message"))
    first = plan.provider_session_id
    assert live.provider_session_id == first
    assert _contents(items, "user_message") == ["say hi", message]
    assert [signal.scope for signal in signals(items)] == ["session"]
    pty = signals(scan(bytes(tui.raw), "pty"))
    assert [(signal.structured, signal.scope) for signal in pty] == [(False, "session")]

    tui.send("/clear")
    tui.pump(0.5)
    tui.press("enter")
    tui.pump(2.0)
    type_keys(tui, P.resume_keys("after clear"))
    poll_live_until(live, tui, items, lambda: "after clear" in _contents(items, "user_message"))
    cleared = [item for item in items if isinstance(item, dict) and item["type"] == "session_cleared"]
    assert len(cleared) == 1 and cleared[0]["old_session_id"] == first
    second = cleared[0]["new_session_id"]
    assert second != first and live.provider_session_id == second
    assert env.session_file(second).is_file()
    tui.close()


def _contents(items: list[Any], kind: str) -> list[Any]:
    return [item["content"] for item in items if isinstance(item, dict) and item["type"] == kind]


def poll_live_until(live: Any, tui: Any, items: list[Any], done: Callable[[], bool], timeout: float = 30) -> None:
    """Append what `live` yields to `items` until `done()` or `timeout` seconds, keeping the TUI's output drained."""
    deadline = time.time() + timeout
    items += live.poll()
    while not done() and time.time() < deadline:
        tui.pump(0.2)
        items += live.poll()
