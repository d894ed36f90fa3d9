"""gemini live: the stand-in agent writes chat records in gemini's real format and place (under a temp
home) while a LiveSession polls: events in order, once, each appended record on the next poll; finding the
file by the chosen id, by recency, by a reported id; `/clear`; a zag-planned resume; and `zag run gemini`."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.gemini import geminilib as g
from tests.integration.helpers import Agent, PolledLive, assert_valid_log, standin_executable, write_script
from zag.providers import get
from zag.providers.base import LaunchContext, LaunchPlan, SessionIdHint
from zag.providers.gemini import live


P = get("gemini")
NOW_TS = "2099-01-01T00:00:00.000Z"   # records "written" after the child started


@pytest.fixture(autouse=True)
def fast_rescans(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "RESCAN_SECS", 0.05)


class Rig(PolledLive):
    """A gemini home, a project, the stand-in, and a LiveSession polled with deadlines."""

    def __init__(self, tmp_path: Path, *, interactive: bool = False) -> None:
        self.root = tmp_path
        self.cwd = tmp_path / "proj"
        self.env, self.chats = g.make_home(tmp_path, self.cwd, via="GEMINI_CLI_HOME")
        self.interactive = interactive
        self.executable = standin_executable(tmp_path)
        self.gates = tmp_path / "gates"
        self.gates.mkdir()
        self.items: list[Any] = []
        self.live: Any = None
        self.proc: subprocess.Popen[bytes] | None = None

    def ctx(self) -> LaunchContext:
        return LaunchContext(cwd=str(self.cwd), env=self.env, interactive=self.interactive,
                             started_at=time.time(), zag_session_id="zag-1")

    def start(self, plan: LaunchPlan, ctx: LaunchContext, actions: list[dict[str, Any]]) -> None:
        script = write_script(self.root / "script.json", actions)
        env = {**self.env, **plan.env, "STANDIN_SCRIPT": str(script), "PYTHONDONTWRITEBYTECODE": "1"}
        self.proc = subprocess.Popen([str(self.executable), *plan.args], cwd=self.cwd, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.live = P.open_live(plan, ctx)

    def open(self, name: str) -> None:
        (self.gates / name).touch()

    def gate(self, name: str) -> dict[str, Any]:
        return {"wait_file": str(self.gates / name), "timeout": 30}


def kinds(items: list[Any]) -> list[str]:
    return [item["type"] for item in items if isinstance(item, dict)]


def count(kind: str) -> Any:
    return lambda items: kinds(items).count(kind)


def test_events_in_order_once_each_record_on_the_next_poll(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    ctx = rig.ctx()
    plan = P.plan_launch(["-p", "read a.txt"], ctx)
    sid = plan.provider_session_id
    assert plan.args[:2] == ["--session-id", sid]
    path = str(rig.chats / g.session_name(sid))
    call = g.tool_call("c1", "read_file", {"file_path": "a.txt"}, status="executing", ts=NOW_TS)
    done = g.tool_call("c1", "read_file", {"file_path": "a.txt"}, output="contents", ts=NOW_TS)
    answer = json.dumps(g.gemini("a2", "It says contents.", NOW_TS, tokens=g.tokens(30, 4)))
    rig.start(plan, ctx, [
        {"sleep": 0.3},
        {"append": path, "lines": [g.meta(sid, NOW_TS), g.set_(messages=[g.context(NOW_TS)])]},
        {"append": path, "lines": [g.user("u1", "read a.txt", NOW_TS), g.set_(lastUpdated=NOW_TS)]},
        rig.gate("1"),
        {"append": path, "lines": [g.gemini("a1", "", NOW_TS, tool_calls=[call])]},
        rig.gate("2"),
        {"append": path, "lines": [g.gemini("a1", "", NOW_TS, tokens=g.tokens(20, 3), tool_calls=[done])]},
        {"append": path, "text": answer[:25]},
        rig.gate("3"),
        {"append": path, "text": answer[25:] + "\n"},
        {"append": path, "lines": [g.set_(lastUpdated=NOW_TS), g.set_(summary="read a file")]},
    ])
    rig.poll_until(count("user_message"))
    assert rig.live.provider_session_id == sid and rig.live.source_key == sid
    assert kinds(rig.items) == ["provider_status", "user_message"]
    rig.open("1")
    rig.poll_until(count("tool_call"))
    assert kinds(rig.items)[2:] == ["tool_call"]
    rig.open("2")
    rig.poll_until(count("usage"))
    assert kinds(rig.items)[3:] == ["tool_result", "usage"]
    time.sleep(0.2)
    assert rig.live.poll() == [], "a torn last line waits for its newline"
    rig.open("3")
    items = rig.finish()
    assert kinds(items) == ["provider_status", "user_message", "tool_call", "tool_result", "usage",
                            "assistant_message", "usage", "provider_status"]
    assert [item.get("provider_session_id") for item in items] == [sid] * len(items)
    cursor = json.loads(json.dumps(rig.live.cursor()))
    [source] = P.discover(rig.env)
    assert source.source_key == rig.live.source_key
    assert list(P.open_reader(source, cursor).read()) == [], "backfill finds nothing new after the live run"


def test_without_a_chosen_id_the_newest_file_after_start(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    old = g.write(rig.chats / g.session_name("aaaaaaaa-0000-4000-8000-000000000000", "2026-01-01T00-00"),
                  g.meta("aaaaaaaa-0000-4000-8000-000000000000"), g.user("o1", "old session"))
    import os
    os.utime(old, (1_700_000_000, 1_700_000_000))
    ctx = rig.ctx()
    plan = LaunchPlan(args=["-p", "hi"])   # a CLI too old for --session-id
    sid = "bbbbbbbb-1111-4111-8111-111111111111"
    path = str(rig.chats / g.session_name(sid, "2026-11-22T15-00"))
    rig.start(plan, ctx, [{"append": path, "lines": [g.meta(sid, NOW_TS), g.user("u1", "hi", NOW_TS)]}])
    items = rig.poll_until(count("user_message"))
    rig.finish()
    assert rig.live.provider_session_id == sid
    assert [item["content"] for item in items if item["type"] == "user_message"] == ["hi"]


def test_reported_session_id_picks_among_concurrent_files(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    ctx = rig.ctx()
    ours, theirs = "cccccccc-2222-4222-8222-222222222222", "dddddddd-3333-4333-8333-333333333333"
    rig.start(LaunchPlan(args=["-r", "latest", "-p", "x"]), ctx, [
        {"append": str(rig.chats / g.session_name(ours)), "lines": [g.meta(ours), g.user("u1", "ours", NOW_TS)]},
        {"sleep": 0.2},
        {"append": str(rig.chats / g.session_name(theirs)), "lines": [g.meta(theirs), g.user("t1", "theirs", NOW_TS)]},
    ])
    rig.proc.wait(timeout=30)
    rig.live.hint(SessionIdHint(ours))
    items = rig.poll_until(count("user_message"))
    rig.finish()
    assert rig.live.provider_session_id == ours
    assert [item["content"] for item in items if item["type"] == "user_message"] == ["ours"]


def test_clear_in_the_tui_moves_to_a_new_session(tmp_path: Path) -> None:
    rig = Rig(tmp_path, interactive=True)
    ctx = rig.ctx()
    plan = P.plan_launch([], ctx)
    first = plan.provider_session_id
    second = "eeeeeeee-4444-4444-8444-444444444444"
    rig.start(plan, ctx, [
        {"append": str(rig.chats / g.session_name(first)), "lines": [g.meta(first), g.user("u1", "one", NOW_TS)]},
        rig.gate("clear"),
        {"append": str(rig.chats / g.session_name(second, "2026-11-22T15-01")),
         "lines": [g.meta(second), g.user("u2", "two", NOW_TS)]},
    ])
    rig.poll_until(count("user_message"))
    rig.open("clear")
    items = rig.poll_until(lambda found: count("user_message")(found) == 2)
    rig.finish()
    cleared = [item for item in items if item["type"] == "session_cleared"]
    assert cleared == [{"type": "session_cleared", "old_session_id": first, "new_session_id": second,
                        "provider_session_id": second}]
    assert kinds(items) == ["user_message", "session_cleared", "user_message"]
    assert rig.live.provider_session_id == second and rig.live.source_key == second


def test_zag_resume_continues_without_repeating_and_follows_the_oldest_file(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    sid = "0508d65f-584a-48a8-9f75-1d448b514ef9"
    primary = g.copy_real("chat_session-2026-11-22T14-44-0508d65f.jsonl", rig.chats)
    ctx = rig.ctx()
    plan = P.plan_resume(["-o", "stream-json", "-p", "say hi"], sid, "Continue", ctx)
    assert plan.args == ["--resume", sid, "-p", "Continue", "-o", "stream-json"]
    stray = rig.chats / g.session_name(sid, "2026-11-22T15-10")
    history = [json.loads(line) for line in primary.read_text().splitlines() if '"messages"' in line][-1]
    rig.start(plan, ctx, [
        {"append": str(stray), "lines": [g.meta(sid, NOW_TS), g.set_(messages=[g.context(NOW_TS)])]},
        {"append": str(primary), "lines": [
            g.set_(sessionId=sid), history,     # the resumed process restores the whole conversation
            g.user("n1", "Continue", NOW_TS), g.gemini("n2", "continuing", NOW_TS, tokens=g.tokens())]},
    ])
    items = rig.poll_until(count("usage"))
    items = rig.finish()
    assert kinds(items) == ["user_message", "assistant_message", "usage"]
    assert [item.get("content") for item in items][:2] == ["Continue", "continuing"]
    assert stray in rig.live._reader.paths and rig.live._reader.paths[0] == primary


@pytest.mark.parametrize("resume", ["id", "latest"])
def test_users_resume_logs_only_the_new_turn(tmp_path: Path, resume: str) -> None:
    rig = Rig(tmp_path)
    sid = "0508d65f-584a-48a8-9f75-1d448b514ef9"
    primary = g.copy_real("chat_session-2026-11-22T14-44-0508d65f.jsonl", rig.chats)
    ctx = rig.ctx()
    args = ["--resume", sid if resume == "id" else "latest", "-p", "what did I say"]
    plan = P.plan_launch(args, ctx)
    assert plan.args == args
    history = [json.loads(line) for line in primary.read_text().splitlines() if '"messages"' in line][-1]
    rig.start(plan, ctx, [
        {"sleep": 0.2},
        {"append": str(primary), "lines": [
            g.set_(sessionId=sid), history,     # the resumed process restores the whole conversation
            g.user("n1", "what did I say", NOW_TS), g.gemini("n2", "you said pineapple", NOW_TS,
                                                              tokens=g.tokens())]},
    ])
    rig.poll_until(count("usage"))
    items = rig.finish()
    assert kinds(items) == ["user_message", "assistant_message", "usage"]
    assert [item.get("content") for item in items][:2] == ["what did I say", "you said pineapple"]
    assert rig.live.provider_session_id == sid


def test_plan_warnings_and_previous_session_reach_the_log(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    failed = "1f2a73d3-ffa2-46e9-9ba1-cf61b58d7884"
    g.copy_real("chat_session-2026-11-22T14-44-1f2a73d3.jsonl", rig.chats)
    ctx = rig.ctx()
    plan = P.plan_resume(["-p", "say hi"], failed, "Continue", ctx)
    assert plan.notes["rerun_original"]
    new = plan.provider_session_id
    rig.start(plan, ctx, [{"append": str(rig.chats / g.session_name(new, "2026-11-22T15-20")),
                           "lines": [g.meta(new, NOW_TS), g.user("u1", "say hi", NOW_TS)]}])
    items = rig.poll_until(count("user_message"))
    rig.finish()
    assert items[0] == {"type": "session_cleared", "old_session_id": failed, "new_session_id": new,
                        "provider_session_id": new}


def test_no_session_runs_are_not_followed(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    ctx = rig.ctx()
    plan = P.plan_launch(["mcp", "list"], ctx)
    rig.start(plan, ctx, [])
    assert rig.finish() == [] and rig.live.cursor() is None


def test_zag_run_gemini_writes_the_transcript_once_in_order(tmp_path: Path, zag_home: Path) -> None:
    cwd = tmp_path / "proj"
    env, chats = g.make_home(tmp_path, cwd)
    agent = Agent(tmp_path / "agent", zag_home, provider="gemini")
    path = str(chats / "session-2026-11-22T14-44-{session_id}.jsonl")
    agent.script([
        {"append": path, "lines": [g.meta("{session_id}", NOW_TS), g.set_(messages=[g.context(NOW_TS)])]},
        {"append": path, "lines": [g.user("u1", "hello", NOW_TS)]},
        {"sleep": 0.3},
        {"append": path, "lines": [g.gemini("a1", "hi there", NOW_TS, tokens=g.tokens(10, 2))]},
        {"out": '{"type":"init","session_id":"{session_id}","model":"auto"}\n'},
        {"sleep": 0.3},
    ])
    result = subprocess.run(agent.command("run", "gemini", "-p", "hello", "-o", "stream-json"),
                            env=agent.env(HOME=env["HOME"]), cwd=cwd, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    [invocation] = agent.invocations()
    assert invocation["argv"][0] == "--session-id"
    sid = invocation["argv"][1]
    events = agent.only_session()
    assert_valid_log(events)
    transcript = [event for event in events if event["source"] == "provider_file"]
    assert [event["type"] for event in transcript] == ["provider_status", "user_message", "assistant_message", "usage"]
    assert [event["provider_session_id"] for event in transcript] == [sid] * 4
    assert transcript[1]["content"] == "hello" and transcript[2]["content"] == "hi there"


def test_zag_run_gemini_tui_clear_whose_file_is_seen_before_its_first_line(tmp_path: Path, zag_home: Path) -> None:
    """`/clear` in an interactive `zag run gemini`: the new session's file exists (empty) for a while before
    gemini writes its first line. zag saw the name, could not read its session id, counted the file as
    known and never looked at it again: the new session was not followed."""
    cwd = tmp_path / "proj"
    env, chats = g.make_home(tmp_path, cwd)
    agent = Agent(tmp_path / "agent", zag_home, provider="gemini")
    second = "eeeeeeee-4444-4444-8444-444444444444"
    new_file = str(chats / g.session_name(second, "2026-11-22T15-01"))
    agent.script([
        {"append": str(chats / "session-2026-11-22T14-44-{session_id8}.jsonl"),
         "lines": [g.meta("{session_id}", NOW_TS), g.user("u1", "before /clear", NOW_TS)]},
        {"sleep": 0.5},
        {"write": new_file, "text": ""},
        {"sleep": 1.0},   # zag polls meanwhile: the folder changed, the new file has no head yet
        {"append": new_file, "lines": [g.meta(second, NOW_TS), g.user("u2", "after /clear", NOW_TS)]},
        {"sleep": 0.5},
    ])
    events = _run_in_a_terminal(agent, env, cwd)
    assert events[0]["interactive"] is True
    first = agent.invocations()[0]["argv"][1]
    moves = [(e["type"], e.get("content") or e.get("new_session_id"), e["provider_session_id"]) for e in events
             if e["type"] in ("user_message", "session_cleared")]
    assert moves == [("user_message", "before /clear", first), ("session_cleared", second, second),
                     ("user_message", "after /clear", second)]


def _run_in_a_terminal(agent: Agent, env: dict[str, str], cwd: Path) -> list[dict[str, Any]]:
    """`zag run gemini` of the stand-in through a real terminal, to its end; the session's (valid) log."""
    import pexpect

    command = agent.command("run", "gemini")
    term = pexpect.spawn(command[0], command[1:], env=agent.env(HOME=env["HOME"]), cwd=str(cwd), timeout=30)
    term.expect(pexpect.EOF)
    term.close()
    assert term.exitstatus == 0, term.before
    events = agent.only_session()
    assert_valid_log(events)
    return events


def test_zag_run_gemini_tui_clear_keeps_what_the_old_session_wrote_last(tmp_path: Path, zag_home: Path) -> None:
    """The answer gemini writes to the old chat file just before `/clear` creates the new one (both between
    two polls) belongs to the old session: zag swapped readers without reading the old file to its end,
    and that answer was lost."""
    cwd = tmp_path / "proj"
    env, chats = g.make_home(tmp_path, cwd)
    agent = Agent(tmp_path / "agent", zag_home, provider="gemini")
    second = "eeeeeeee-5555-4444-8444-444444444444"
    old_file = str(chats / "session-2026-11-22T14-44-{session_id8}.jsonl")
    agent.script([
        {"append": old_file, "lines": [g.meta("{session_id}", NOW_TS), g.user("u1", "question", NOW_TS)]},
        {"sleep": 0.6},
        {"append": old_file, "lines": [g.gemini("a1", "last answer", NOW_TS)]},
        {"append": str(chats / g.session_name(second, "2026-11-22T15-01")),
         "lines": [g.meta(second, NOW_TS), g.user("u2", "after /clear", NOW_TS)]},
        {"sleep": 0.6},
    ])
    events = _run_in_a_terminal(agent, env, cwd)
    first = agent.invocations()[0]["argv"][1]
    said = [(e["type"], e.get("content"), e["provider_session_id"]) for e in events
            if e["type"] in ("user_message", "assistant_message", "session_cleared")]
    assert said == [("user_message", "question", first), ("assistant_message", "last answer", first),
                    ("session_cleared", None, second), ("user_message", "after /clear", second)]


@pytest.mark.parametrize("how", ["mark", "stray"])
def test_resume_of_an_older_session_in_the_tui_moves_to_it_without_its_history(tmp_path: Path, how: str) -> None:
    """`/resume` in the TUI (the session browser) continues an older session in its own file: gemini appends
    `{"$set":{"sessionId":…}}`, the restored history and the new turns to it (verified with 0.61.0), or —
    resumed in a later minute — starts a stray file of that session. zag went on following the file it had,
    which got nothing more; the stray was taken for a `/clear` and the whole history logged again."""
    rig = Rig(tmp_path, interactive=True)
    older = "abcdef12-4444-4444-8444-444444444444"
    history = [g.context(), g.user("o1", "older history"), g.gemini("o2", "older answer", tokens=g.tokens())]
    older_file = g.write(rig.chats / g.session_name(older, "2026-11-22T14-00"), g.meta(older), *history)
    ctx = rig.ctx()
    plan = P.plan_launch([], ctx)
    first = plan.provider_session_id
    resumed = older_file if how == "mark" else rig.chats / g.session_name(older, "2026-11-22T15-01")
    rig.start(plan, ctx, [
        {"append": str(rig.chats / g.session_name(first)), "lines": [g.meta(first, NOW_TS),
                                                                     g.user("u1", "one", NOW_TS)]},
        rig.gate("resume"),
        *([{"append": str(resumed), "lines": [g.meta(older, NOW_TS)]}] if how == "stray" else []),
        {"append": str(older_file), "lines": [g.set_(sessionId=older), g.set_(messages=history)]},
        {"sleep": 0.3},
        {"append": str(older_file), "lines": [g.user("n1", "after resume", NOW_TS),
                                              g.gemini("n2", "resumed answer", NOW_TS, tokens=g.tokens())]},
    ])
    rig.poll_until(count("user_message"))
    rig.open("resume")
    rig.poll_until(lambda found: count("user_message")(found) == 2)
    items = rig.finish()
    said = [(item["type"], item.get("content") or item.get("new_session_id"), item["provider_session_id"])
            for item in items if item["type"] in ("user_message", "assistant_message", "session_cleared")]
    assert said == [("user_message", "one", first), ("session_cleared", older, older),
                    ("user_message", "after resume", older), ("assistant_message", "resumed answer", older)]
    assert kinds(items).count("usage") == 1 and rig.live.provider_session_id == older


def test_another_session_growing_without_a_resume_mark_is_not_a_move(tmp_path: Path) -> None:
    """A `gemini -p` run elsewhere that writes to another session's file by other means than a resume (here: a
    record appended) is not this TUI's `/resume`."""
    rig = Rig(tmp_path, interactive=True)
    other = "abcdef12-5555-4444-8444-444444444444"
    other_file = g.write(rig.chats / g.session_name(other, "2026-11-22T14-00"), g.meta(other), g.user("o1", "x"))
    ctx = rig.ctx()
    plan = P.plan_launch([], ctx)
    first = plan.provider_session_id
    ours = str(rig.chats / g.session_name(first))
    rig.start(plan, ctx, [
        {"append": ours, "lines": [g.meta(first, NOW_TS), g.user("u1", "one", NOW_TS)]},
        rig.gate("grow"),
        {"append": str(other_file), "lines": [g.user("o2", "not ours", NOW_TS)]},
        {"sleep": 0.3},
        {"append": ours, "lines": [g.user("u2", "two", NOW_TS)]},
    ])
    rig.poll_until(count("user_message"))
    rig.open("grow")
    rig.poll_until(lambda found: count("user_message")(found) == 2)
    items = rig.finish()
    assert [item.get("content") for item in items if item["type"] == "user_message"] == ["one", "two"]
    assert "session_cleared" not in kinds(items)
