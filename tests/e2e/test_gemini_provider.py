"""zag's gemini provider against the real `@google/gemini-cli` 0.61.0 (npm) and the fake model API: the
chosen `--session-id` names the chat file, the live session and the scanner see what the CLI wrote and
printed, a planned resume continues the same session, a failed-only session is re-run, and the TUI quota
dialogs are answered with zag's keystrokes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from zag.providers import get
from zag.providers.base import LaunchContext, LaunchPlan, LimitSignal, SessionIdHint
from zag.providers.gemini import files

from . import fake_api as fa
from .clis import CliEnv, Result

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
P = get("gemini")
MakeEnv = Callable[..., CliEnv]


def ctx_of(env: CliEnv, interactive: bool = False) -> LaunchContext:
    return LaunchContext(cwd=str(env.cwd), env=env.env, interactive=interactive, started_at=time.time(),
                         zag_session_id="e2e")


def run_plan(env: CliEnv, plan: LaunchPlan) -> Result:
    return env.run(*plan.args, extra_env=plan.env)


def scan(result: Result) -> list[Any]:
    scanner = P.output_scanner(LaunchContext(cwd="/", env={}, interactive=False, started_at=0, zag_session_id="e2e"))
    items = scanner.feed("stdout", result.stdout.encode()) + scanner.feed("stderr", result.stderr.encode())
    return items + scanner.finish()


def follow(plan: LaunchPlan, ctx: LaunchContext) -> list[Any]:
    session = P.open_live(plan, ctx)
    items: list[Any] = []
    for _ in range(5):
        items += session.poll()
    return items


def type_keys(tui: Any, keys: Any) -> None:
    """Write a KeySequence as the supervisor does: chunk by chunk, `pause` apart (reading meanwhile)."""
    for index, chunk in enumerate(keys.chunks):
        if index:
            tui.pump(keys.pause)
        tui.child.send(chunk)


def kinds(items: list[Any]) -> list[str]:
    return [item["type"] for item in items if isinstance(item, dict)]


def test_session_id_flag_names_the_file_and_live_follows_it(cli_env: MakeEnv) -> None:
    env = cli_env("gemini")
    ctx = ctx_of(env)
    plan = P.plan_launch(["-p", "say hi", "--output-format", "stream-json"], ctx)
    assert plan.args[0] == "--session-id"
    result = run_plan(env, plan)
    assert result.returncode == 0, result.describe()
    sid = plan.provider_session_id
    path = env.session_file(sid)
    assert path.name.endswith(f"-{sid[:8]}.jsonl") and files.head_session_id(path) == sid
    assert SessionIdHint(sid, source="stdout") in scan(result)
    items = follow(plan, ctx)
    assert kinds(items) == ["provider_status", "user_message", "assistant_message", "usage"]
    assert items[1]["content"] == "say hi" and items[2]["content"] == fa.DEFAULT_TEXT
    assert {item["provider_session_id"] for item in items} == {sid}
    [source] = P.discover(env.env)
    assert source.source_key == sid and source.cwd == str(env.cwd)


def test_quota_hit_then_planned_resume(cli_env: MakeEnv) -> None:
    env = cli_env("gemini")
    first_ctx = ctx_of(env)
    first = P.plan_launch(["-p", "remember pineapple", "-o", "stream-json"], first_ctx)
    assert run_plan(env, first).returncode == 0
    sid = first.provider_session_id

    env.fake.limit_next("gemini", 1, fa.gemini_quota(per_day=True))
    limited_ctx = ctx_of(env)
    limited = P.plan_resume(["-p", "remember pineapple", "-o", "stream-json"], sid, "say more", limited_ctx)
    assert limited.args[:4] == ["--resume", sid, "-p", "say more"]
    result = run_plan(env, limited)
    assert result.returncode == 173, result.describe()
    found = [item for item in scan(result) if isinstance(item, LimitSignal)]
    structured = [signal for signal in found if signal.structured]
    assert [(s.scope, s.provider_session_id) for s in structured] == [("daily", sid)]
    assert structured[0].reset_at and structured[0].reset_at > time.time()
    items = follow(limited, limited_ctx)
    assert kinds(items) == ["user_message", "provider_status"]       # the prompt, rolled back
    assert items[1]["data"]["kind"] == "messages_removed"

    resume_ctx = ctx_of(env)
    plan = P.plan_resume(["-p", "remember pineapple", "-o", "stream-json"], sid, "Continue", resume_ctx)
    result = run_plan(env, plan)
    assert result.returncode == 0, result.describe()
    assert "remember pineapple" in env.fake.requests("gemini", fa.MAIN)[-1].text()
    items = follow(plan, resume_ctx)
    assert kinds(items) == ["user_message", "assistant_message", "usage"]
    assert items[0]["content"] == "Continue"


def test_failed_only_session_is_rerun_not_resumed(cli_env: MakeEnv) -> None:
    env = cli_env("gemini")
    ctx = ctx_of(env)
    plan = P.plan_launch(["-p", "say hi", "--output-format", "json"], ctx)
    env.fake.limit_next("gemini", 1, fa.gemini_quota(per_day=True))
    result = run_plan(env, plan)
    assert result.returncode == 173, result.describe()
    signals = [item for item in scan(result) if isinstance(item, LimitSignal) and item.structured]
    assert [(s.raw, s.provider_session_id) for s in signals] == [
        ("You have exhausted your daily quota on this model.", plan.provider_session_id)]
    direct = env.run("--resume", plan.provider_session_id, "-p", "Continue")
    assert direct.returncode == 42, direct.describe()    # what zag avoids
    again = P.plan_resume(["-p", "say hi", "--output-format", "json"], plan.provider_session_id, "Continue", ctx_of(env))
    assert again.notes["rerun_original"] and again.args[2:] == ["-p", "say hi", "--output-format", "json"]
    assert run_plan(env, again).returncode == 0


def test_tui_dialogs_are_answered_and_the_message_submits(cli_env: MakeEnv) -> None:
    env = cli_env("gemini")
    ctx = ctx_of(env, interactive=True)
    plan = P.plan_launch([], ctx)
    tui = env.spawn(*plan.args)
    tui.wait_for("Type your message", timeout=60)
    tui.pump(3.0)                                                 # the TUI settles after start-up
    # A quota on the first prompt opens the dialogs (after a successful turn 0.61.0 shows nothing and
    # hot-loops instead: REAL_CLIS.md).
    env.fake.limit_until("gemini", time.time() + 600, fa.gemini_quota(per_day=True))
    type_keys(tui, P.resume_keys("say hi"))
    tui.wait_for("Usage limit reached for", timeout=30)
    tui.wait_for("Stop", timeout=5)
    answered = 0
    deadline = time.time() + 60
    while time.time() < deadline:
        keys = P.unblock_keys(tui.text())
        if keys is None:
            if "[API Error:" in tui.text():
                break
            tui.pump(0.2)
            continue
        tui.child.send(keys)
        answered += 1
        tui.pump(1.0)
    assert answered == 2 and "[API Error:" in tui.text(), tui.text()   # router model's dialog, then Pro's
    scanner = P.output_scanner(ctx)
    signals = [item for item in scanner.feed("pty", bytes(tui.raw)) + scanner.finish() if isinstance(item, LimitSignal)]
    raws = [s.raw for s in signals]
    assert {s.source for s in signals} == {"pty"} and not any(s.structured for s in signals)
    assert any(raw.startswith("Usage limit reached for gemini-3.5-flash-lite.") for raw in raws), raws
    assert any(raw.startswith("Usage limit reached for all Pro models.") for raw in raws), raws
    assert "[API Error: You have exhausted your daily quota on this model.]" in raws

    env.fake.clear("gemini")
    tui.pump(1.0)
    type_keys(tui, P.resume_keys("Continue"))
    deadline = time.time() + 30
    while "Continue" not in env.fake.requests("gemini", fa.MAIN)[-1].text() and time.time() < deadline:
        tui.pump(0.2)
    assert "Continue" in env.fake.requests("gemini", fa.MAIN)[-1].text()
    tui.wait_for(f"✦ {fa.DEFAULT_TEXT}", timeout=30)
    items = follow(plan, ctx)
    users = [item["content"] for item in items if isinstance(item, dict) and item["type"] == "user_message"]
    assert users[0] == "say hi" and users[-1] == "Continue"
    json.dumps([item for item in items if isinstance(item, dict)])


def test_tool_turn_then_resume_each_part_once(cli_env: MakeEnv) -> None:
    env = cli_env("gemini")
    (env.cwd / "notes.txt").write_text("secret note 42\n", encoding="utf-8")
    env.fake.queue("gemini", fa.gemini_shell("cat notes.txt"), fa.Text("the tool said: done"))
    ctx = ctx_of(env)
    plan = P.plan_launch(["-p", "use the tool", "--yolo"], ctx)
    assert run_plan(env, plan).returncode == 0
    sid = plan.provider_session_id
    resume_ctx = ctx_of(env)
    resumed = P.plan_resume(["-p", "use the tool", "--yolo"], sid, "Continue", resume_ctx)
    assert run_plan(env, resumed).returncode == 0
    items = [item for item in follow(LaunchPlan(args=[], provider_session_id=sid), ctx) if isinstance(item, dict)]
    # 0.61.0 writes the tool results again as a `user` record of functionResponse parts, and the resume
    # snapshot repeats the turn as functionCall/functionResponse contents under other ids: one call, one
    # result all the same.
    assert kinds(items) == ["provider_status", "user_message", "usage", "tool_call", "tool_result",
                            "assistant_message", "usage", "user_message", "assistant_message", "usage"], kinds(items)
    call, result = items[3], items[4]
    assert call["tool_name"] == "run_shell_command" and call["tool_kind"] == "shell"
    assert result["tool_id"] == call["tool_id"] and result["success"] and "secret note 42" in json.dumps(result)


def test_clear_in_the_tui_is_followed_to_the_new_session(cli_env: MakeEnv) -> None:
    env = cli_env("gemini")
    ctx = ctx_of(env, interactive=True)
    plan = P.plan_launch([], ctx)
    live = P.open_live(plan, ctx)
    items: list[Any] = []
    tui = env.spawn(*plan.args)
    tui.wait_for("Type your message", timeout=60)
    tui.pump(3.0)

    def poll_until(predicate: Callable[[list[Any]], bool], timeout: float = 30) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            items.extend(live.poll())
            if predicate(items):
                return
            tui.pump(0.1)
        raise AssertionError(f"not seen: {kinds(items)}")

    def say(text: str) -> None:  # typed, seen in the input, then submitted (under load a quick Enter merged
        tui.send(text)           # '/clear' with the next prompt: '/clearafter clear')
        tui.wait_for(text, timeout=20)
        tui.pump(0.3)
        tui.press("enter")

    say("say hi")
    poll_until(lambda found: "assistant_message" in kinds(found))
    say("/clear")
    poll_until(lambda found: "session_cleared" in kinds(found))
    tui.wait_gone("say hi", timeout=20)
    tui.pump(1.0)
    say("after clear")
    poll_until(lambda found: kinds(found).count("assistant_message") == 2)
    [cleared] = [item for item in items if isinstance(item, dict) and item["type"] == "session_cleared"]
    assert cleared["old_session_id"] == plan.provider_session_id
    assert cleared["new_session_id"] == live.provider_session_id != plan.provider_session_id
    users = [item["content"] for item in items if isinstance(item, dict) and item["type"] == "user_message"]
    assert users[0] == "say hi" and users[-1] == "after clear"
