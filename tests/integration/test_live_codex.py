"""Following a running Codex child's rollout: the stand-in (or a small process holding the file open, as
the real codex does) writes real-format records under a temporary CODEX_HOME while a `LiveSession` polls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.integration.helpers import STANDIN, kill_quietly, wait_until, write_script
from zag.providers import proc_files
from zag.providers.base import LaunchContext, LimitSignal, SessionIdHint
from zag.providers.codex import PROVIDER

DEADLINE = 15.0


AHEAD = 0.0  # seconds added to record timestamps (scripts written before the launch stamp ahead)


def now_ts() -> str:
    moment = datetime.fromtimestamp(time.time() + AHEAD, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def rollout_path(home: Path, thread_id: str) -> Path:
    now = datetime.now()
    return home / "sessions" / now.strftime("%Y/%m/%d") / f"rollout-{now.strftime('%Y-%m-%dT%H-%M-%S')}-{thread_id}.jsonl"


def line(kind: str, payload: dict) -> str:
    return json.dumps({"timestamp": now_ts(), "type": kind, "payload": payload})


def meta(thread_id: str, cwd: str, **extra) -> str:
    return line("session_meta", {"id": thread_id, "cwd": cwd, "timestamp": now_ts(), "source": "cli", **extra})


def user(text: str) -> str:
    return line("event_msg", {"type": "user_message", "message": text})


def assistant(text: str) -> str:
    return line("response_item", {"type": "message", "role": "assistant",
                                  "content": [{"type": "output_text", "text": text}]})


def ctx(home: Path, cwd: Path, *, pid: int | None = None, zag_id: str = "zag-1", started: float | None = None,
        interactive: bool = False) -> LaunchContext:
    return LaunchContext(cwd=str(cwd), env={"CODEX_HOME": str(home), "HOME": str(home.parent)},
                         interactive=interactive, started_at=started if started is not None else time.time(),
                         zag_session_id=zag_id, child_pid=pid)


def poll_until(live, predicate, collected: list, timeout: float = DEADLINE) -> list:
    def step():
        collected.extend(live.poll())
        return predicate(collected)
    wait_until(step, timeout, interval=0.02, message="live events")
    return collected


def messages(items: list) -> list[tuple[str, str]]:
    return [(i["type"], i["content"]) for i in items if isinstance(i, dict)
            and i["type"] in ("user_message", "assistant_message")]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home" / ".codex"
    path.mkdir(parents=True)
    return path


def test_standin_rollout_followed_via_the_json_thread_id(tmp_path: Path, home: Path) -> None:
    """`codex exec --json`: the thread id comes from stdout; records show up in order, once."""
    thread_id = str(uuid.uuid4())
    cwd = tmp_path / "proj"
    cwd.mkdir()
    path = rollout_path(home, thread_id)
    gate = tmp_path / "gate"
    global AHEAD
    AHEAD = 120.0  # the stand-in's lines are written into its script before it is launched
    script = write_script(tmp_path / "script.json", [
        {"out": json.dumps({"type": "thread.started", "thread_id": thread_id}) + "\n"},
        {"append": str(path), "lines": [meta(thread_id, str(cwd)), user("first question")]},
        {"sleep": 0.2},
        {"append": str(path), "lines": [assistant("first answer")]},
        {"append": str(path), "text": user("torn then completed")[:30]},
        {"sleep": 0.2},
        {"append": str(path), "text": user("torn then completed")[30:] + "\n"},
        {"wait_file": str(gate), "timeout": 20},
        {"append": str(path), "lines": [assistant("after the gate")]},
    ])
    AHEAD = 0.0
    started = time.time()
    child = subprocess.Popen([sys.executable, str(STANDIN)], cwd=cwd, stdout=subprocess.PIPE,
                             env={"STANDIN_SCRIPT": str(script), "PATH": "/usr/bin:/bin"})
    try:
        context = ctx(home, cwd, pid=child.pid, started=started)
        plan = PROVIDER.plan_launch(["exec", "--json", "hi"], context)
        live = PROVIDER.open_live(plan, context)
        scanner = PROVIDER.output_scanner(context)
        (hint,) = [i for i in scanner.feed("stdout", child.stdout.readline()) if isinstance(i, SessionIdHint)]
        live.hint(hint)
        got: list = []
        poll_until(live, lambda items: ("user_message", "torn then completed") in messages(items), got)
        assert live.provider_session_id == thread_id and live.source_key == thread_id
        assert messages(got) == [("user_message", "first question"), ("assistant_message", "first answer"),
                                 ("user_message", "torn then completed")]
        assert live.poll() == []  # nothing new, nothing again
        gate.write_text("go")
        poll_until(live, lambda items: len(messages(items)) == 4, got)
        assert messages(got)[-1] == ("assistant_message", "after the gate")
        cursor = json.loads(json.dumps(live.cursor()))
        (source,) = [s for s in PROVIDER.discover(context.env) if s.source_key == thread_id]
        assert list(PROVIDER.open_reader(source, cursor).read()) == []  # backfill would import nothing twice
        live.close()
    finally:
        child.kill()
        child.wait(timeout=10)


HOLDER = textwrap.dedent("""
    import json, os, sys, time
    def ts():
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".%03dZ" % (int(time.time() * 1000) % 1000)
    def rec(kind, payload):
        return json.dumps({"timestamp": ts(), "type": kind, "payload": payload}) + "\\n"
    plan = json.loads(sys.argv[1])
    handles = {}
    for step in plan:
        if step[0] == "open":
            _, key, path, meta = step
            os.makedirs(os.path.dirname(path), exist_ok=True)
            handles[key] = open(path, "a")
            handles[key].write(rec("session_meta", meta)); handles[key].flush()
        elif step[0] == "write":
            _, key, kind, payload = step
            handles[key].write(rec(kind, payload)); handles[key].flush()
        elif step[0] == "close":
            handles.pop(step[1]).close()
        elif step[0] == "wait":
            deadline = time.time() + 20
            while not os.path.exists(step[1]) and time.time() < deadline:
                time.sleep(0.02)
        elif step[0] == "sleep":
            time.sleep(step[1])
    time.sleep(30)
""")


def start_holder(tmp_path: Path, plan: list, cwd: Path) -> subprocess.Popen:
    """Like the npm `codex` wrapper: a parent process whose child holds the rollout files open."""
    holder = tmp_path / "holder.py"
    holder.write_text(HOLDER)
    wrapper = (f"import subprocess, sys; p = subprocess.Popen([sys.executable, {str(holder)!r}, sys.argv[1]]); "
               "sys.exit(p.wait())")
    return subprocess.Popen([sys.executable, "-c", wrapper, json.dumps(plan)], cwd=cwd)


@pytest.mark.skipif(not proc_files.available(), reason="needs /proc")
def test_tui_rollout_found_through_open_files_subagents_ignored_new_session_cleared(tmp_path: Path,
                                                                                    home: Path) -> None:
    cwd = tmp_path / "proj"
    cwd.mkdir()
    main_id, sub_id, new_id, other_id = (str(uuid.uuid4()) for _ in range(4))
    started = time.time()
    # another codex in the same cwd, not ours: a newer rollout with our cwd that our child never opens
    other = rollout_path(home, other_id)
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_text(meta(other_id, str(cwd)) + "\n" + user("someone else's") + "\n")
    go_new = tmp_path / "go-new"
    plan = [
        ["sleep", 0.3],  # the TUI creates its rollout only at the first turn
        ["open", "main", str(rollout_path(home, main_id)), {"id": main_id, "cwd": str(cwd), "source": "cli"}],
        ["write", "main", "event_msg", {"type": "user_message", "message": "hello"}],
        ["open", "sub", str(rollout_path(home, sub_id)), {"id": sub_id, "cwd": str(cwd), "source": {
            "subagent": {"thread_spawn": {"parent_thread_id": main_id, "depth": 1}}}}],
        ["write", "sub", "event_msg", {"type": "user_message", "message": "sub-agent task"}],
        ["write", "main", "event_msg", {"type": "agent_message", "message": "hi there"}],
        ["wait", str(go_new)],
        ["open", "new", str(rollout_path(home, new_id)), {"id": new_id, "cwd": str(cwd), "source": "cli"}],
        ["write", "new", "event_msg", {"type": "user_message", "message": "after /new"}],
    ]
    child = start_holder(tmp_path, plan, cwd)
    try:
        context = ctx(home, cwd, pid=child.pid, started=started, interactive=True)
        live = PROVIDER.open_live(PROVIDER.plan_launch([], context), context)
        got: list = []
        poll_until(live, lambda items: ("assistant_message", "hi there") in messages(items), got)
        assert live.provider_session_id == main_id
        assert messages(got) == [("user_message", "hello"), ("assistant_message", "hi there")]
        go_new.write_text("")
        poll_until(live, lambda items: ("user_message", "after /new") in messages(items), got)
        cleared = [i for i in got if isinstance(i, dict) and i["type"] == "session_cleared"]
        assert cleared == [{"type": "session_cleared", "old_session_id": main_id, "new_session_id": new_id,
                            "provider_session_id": new_id}]
        assert live.provider_session_id == new_id and live.source_key == new_id
        assert "sub-agent task" not in json.dumps(got) and "someone else's" not in json.dumps(got)
        live.close()
    finally:
        tree = proc_files.process_tree(child.pid)  # before the wrapper dies and its child is reparented
        for pid in reversed(tree):
            kill_quietly(pid)
        child.wait(timeout=10)


def test_without_exact_signals_two_sessions_in_one_cwd_never_share_a_rollout(tmp_path: Path, home: Path) -> None:
    cwd = tmp_path / "proj"
    cwd.mkdir()
    started = time.time()
    old_id, elsewhere_id, first_id, second_id = (str(uuid.uuid4()) for _ in range(4))
    old = rollout_path(home, old_id)
    old.parent.mkdir(parents=True, exist_ok=True)
    old.write_text(line("session_meta", {"id": old_id, "cwd": str(cwd), "timestamp": "2020-01-01T00:00:00.000Z"})
                   + "\n" + user("old") + "\n")
    rollout_path(home, elsewhere_id).write_text(meta(elsewhere_id, str(tmp_path)) + "\n" + user("elsewhere") + "\n")
    one = PROVIDER.open_live(PROVIDER.plan_launch([], ctx(home, cwd, zag_id="zag-a", started=started)),
                             ctx(home, cwd, zag_id="zag-a", started=started))
    two = PROVIDER.open_live(PROVIDER.plan_launch([], ctx(home, cwd, zag_id="zag-b", started=started)),
                             ctx(home, cwd, zag_id="zag-b", started=started))
    assert one.poll() == [] and two.poll() == []
    rollout_path(home, first_id).write_text(meta(first_id, str(cwd)) + "\n" + user("first") + "\n")
    got_one = poll_until(one, lambda items: bool(messages(items)), [])
    time.sleep(0.01)
    rollout_path(home, second_id).write_text(meta(second_id, str(cwd)) + "\n" + user("second") + "\n")
    got_two = poll_until(two, lambda items: bool(messages(items)), [])
    assert (one.provider_session_id, messages(got_one)) == (first_id, [("user_message", "first")])
    assert (two.provider_session_id, messages(got_two)) == (second_id, [("user_message", "second")])
    one.close()
    two.close()


def test_resumed_rollout_emits_only_new_records_with_usage_against_the_old_total(tmp_path: Path,
                                                                                 home: Path) -> None:
    cwd = tmp_path / "proj"
    cwd.mkdir()
    thread_id = str(uuid.uuid4())
    path = rollout_path(home, thread_id)
    path.parent.mkdir(parents=True, exist_ok=True)

    def count(total: int) -> str:
        return line("event_msg", {"type": "token_count", "info": {"total_token_usage": {
            "input_tokens": total, "output_tokens": 2, "total_tokens": total + 2}}})
    path.write_text("\n".join([meta(thread_id, str(cwd)), user("before"), count(100),
                               line("event_msg", {"type": "task_complete", "error": {
                                   "message": "You've hit your usage limit. Try again later.",
                                   "codex_error_info": "usage_limit_exceeded"}})]) + "\n")
    time.sleep(0.01)
    context = ctx(home, cwd)
    plan = PROVIDER.plan_resume(["exec", "--json", "go"], thread_id, "Continue", context)
    assert plan.args == ["exec", "--json", "resume", thread_id, "Continue"]
    live = PROVIDER.open_live(plan, context)
    assert live.poll() == []
    with open(path, "a") as handle:
        handle.write("\n".join([line("event_msg", {"type": "task_started"}), user("Continue"), count(140)]) + "\n")
    got = poll_until(live, lambda items: any(isinstance(i, dict) and i["type"] == "usage" for i in items), [])
    assert messages(got) == [("user_message", "Continue")]
    assert [i["input_tokens"] for i in got if isinstance(i, dict) and i["type"] == "usage"] == [40]
    assert not [i for i in got if isinstance(i, LimitSignal)]
    live.close()


def test_zag_run_codex_with_the_standin(tmp_path: Path, agent) -> None:
    """`zag run codex exec --json …` with ZAG_CODEX_BIN = the stand-in: the unified log holds the
    transcript events in order, once, and the provider session id is the thread id."""
    pytest.importorskip("zag.cli.run")
    global AHEAD
    AHEAD = 120.0  # the stand-in's lines are written into its script before zag launches it
    thread_id = str(uuid.uuid4())
    codex_home_dir = tmp_path / "codexhome"
    codex_home_dir.mkdir()
    # named and stamped as if written after the launch (the script is written before it); if the
    # `thread.started` hint reaches the live session, it is found by id, else after the exit by cwd + time
    created = datetime.fromtimestamp(time.time() + AHEAD)
    path = "{env:CODEX_HOME}/sessions/" + created.strftime("%Y/%m/%d") + \
        f"/rollout-{created.strftime('%Y-%m-%dT%H-%M-%S')}-{thread_id}.jsonl"
    agent.script([
        {"out": json.dumps({"type": "thread.started", "thread_id": thread_id}) + "\n"},
        {"append": path, "lines": [meta(thread_id, str(agent.root)), user("say hi"), assistant("hi from stand-in"),
                                   line("event_msg", {"type": "token_count", "info": {"total_token_usage": {
                                       "input_tokens": 12, "output_tokens": 5, "total_tokens": 17}}})]},
        {"sleep": 0.3},
        {"out": json.dumps({"type": "turn.completed", "usage": {}}) + "\n"},
    ])
    AHEAD = 0.0
    result = agent.run("run", "codex", "exec", "--json", "say hi", env=agent.env(CODEX_HOME=str(codex_home_dir)))
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout.decode().splitlines()[0])["thread_id"] == thread_id  # stdout untouched
    log = agent.only_session()
    transcript = [(e["type"], e.get("content")) for e in log if e["type"] in ("user_message", "assistant_message")]
    assert transcript == [("user_message", "say hi"), ("assistant_message", "hi from stand-in")]
    assert [e["input_tokens"] for e in log if e["type"] == "usage"] == [12]
    assert {e["provider_session_id"] for e in log if e["type"] in ("user_message", "assistant_message")} == {thread_id}
    assert agent.invocations()[0]["argv"] == ["exec", "--json", "say hi"]


@pytest.mark.parametrize("argv", [["exec", "resume", "--last", "go on"], ["resume"]], ids=["exec-last", "picker"])
def test_zag_run_codex_resume_without_an_id_follows_the_rollout_written_to(tmp_path: Path, agent, argv) -> None:
    """`codex exec resume --last` / the TUI's resume picker continue an old rollout: no id on the command
    line, none printed here, the file not held open (as without /proc). The rollout of this cwd written to
    after the start is followed from the start on (it used to be "created after start" only: nothing was
    followed); another cwd's rollout written meanwhile is not taken."""
    codex_home_dir = tmp_path / "codexhome"
    days_ago = time.time() - 3 * 86400
    created = datetime.fromtimestamp(days_ago)
    old = datetime.fromtimestamp(days_ago, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def rollout(thread_id: str, cwd: str) -> Path:
        path = codex_home_dir / "sessions" / created.strftime("%Y/%m/%d") / \
            f"rollout-{created.strftime('%Y-%m-%dT%H-%M-%S')}-{thread_id}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(json.dumps({"timestamp": old, "type": kind, "payload": payload}) for kind, payload in [
            ("session_meta", {"id": thread_id, "cwd": cwd, "timestamp": old, "source": "cli"}),
            ("event_msg", {"type": "user_message", "message": "old question"})]) + "\n")
        os.utime(path, (days_ago, days_ago))
        return path
    thread_id, elsewhere_id = str(uuid.uuid4()), str(uuid.uuid4())
    path, elsewhere = rollout(thread_id, str(agent.root)), rollout(elsewhere_id, str(tmp_path))

    def stamped(kind: str, payload: dict) -> str:
        return json.dumps({"timestamp": "{now}", "type": kind, "payload": payload})

    def turn(prompt: str, answer: str) -> list[dict]:
        return [
            {"sleep": 0.2},
            {"append": str(elsewhere), "lines": [stamped("event_msg", {"type": "user_message", "message": "not ours"})]},
            {"append": str(path), "lines": [stamped("event_msg", {"type": "user_message", "message": prompt})]},
            {"sleep": 0.3},
            {"append": str(path), "lines": [stamped("response_item", {"type": "message", "role": "assistant",
                                                                      "content": [{"type": "output_text", "text": answer}]})]},
        ]
    agent.script(turn("go on", "done"), turn("and again", "done again"))
    for _ in range(2):  # the second run resumes a rollout the first one followed (and marked ended)
        result = agent.run("run", "codex", *argv, env=agent.env(CODEX_HOME=str(codex_home_dir)))
        assert result.returncode == 0, result.stderr.decode()
    logs = agent.session_logs()
    assert len(logs) == 2
    for log, (prompt, answer) in zip(sorted(logs, key=lambda log: log[0]["ts"]),
                                     [("go on", "done"), ("and again", "done again")]):
        said = [(e["type"], e["content"], e["provider_session_id"]) for e in log
                if e["type"] in ("user_message", "assistant_message")]
        assert said == [("user_message", prompt, thread_id), ("assistant_message", answer, thread_id)]
        assert log[-1]["provider_session_id"] == thread_id


@pytest.mark.skipif(not proc_files.available(), reason="needs /proc")
def test_tui_resume_of_a_thread_it_still_holds_open_moves_back_without_its_history(tmp_path: Path,
                                                                                     home: Path) -> None:
    """codex 0.169's TUI keeps every thread's rollout open: after `/new`, a `/resume` of the first session
    opens nothing new, codex just writes the next turns into that rollout again. zag looked only for newly
    opened rollouts: the turns after the resume were never logged (and a later `/fork` was reported as
    moving from the `/new` session)."""
    cwd = tmp_path / "proj"
    cwd.mkdir()
    main_id, new_id = str(uuid.uuid4()), str(uuid.uuid4())
    go_new, go_back = tmp_path / "go-new", tmp_path / "go-back"
    plan = [
        ["open", "main", str(rollout_path(home, main_id)), {"id": main_id, "cwd": str(cwd), "source": "cli"}],
        ["write", "main", "event_msg", {"type": "user_message", "message": "hello"}],
        ["write", "main", "event_msg", {"type": "agent_message", "message": "hi there"}],
        ["wait", str(go_new)],
        ["open", "new", str(rollout_path(home, new_id)), {"id": new_id, "cwd": str(cwd), "source": "cli"}],
        ["write", "new", "event_msg", {"type": "user_message", "message": "after /new"}],
        ["wait", str(go_back)],
        ["write", "main", "event_msg", {"type": "user_message", "message": "after /resume"}],
        ["write", "main", "event_msg", {"type": "agent_message", "message": "welcome back"}],
    ]
    child = start_holder(tmp_path, plan, cwd)
    try:
        context = ctx(home, cwd, pid=child.pid, interactive=True)
        live = PROVIDER.open_live(PROVIDER.plan_launch([], context), context)
        got: list = []
        poll_until(live, lambda items: ("assistant_message", "hi there") in messages(items), got)
        go_new.write_text("")
        poll_until(live, lambda items: ("user_message", "after /new") in messages(items), got)
        time.sleep(0.05)
        go_back.write_text("")
        poll_until(live, lambda items: ("assistant_message", "welcome back") in messages(items), got)
        assert messages(got) == [("user_message", "hello"), ("assistant_message", "hi there"),
                                 ("user_message", "after /new"), ("user_message", "after /resume"),
                                 ("assistant_message", "welcome back")]
        cleared = [(i["old_session_id"], i["new_session_id"]) for i in got
                   if isinstance(i, dict) and i["type"] == "session_cleared"]
        assert cleared == [(main_id, new_id), (new_id, main_id)]
        assert live.provider_session_id == main_id and live.source_key == main_id
        live.close()
    finally:
        tree = proc_files.process_tree(child.pid)
        for pid in reversed(tree):
            kill_quietly(pid)
        child.wait(timeout=10)
