"""claude live: the stand-in agent appends records in claude's real format to the real place (under a temp
HOME) while a LiveSession polls in-process: events in order, once, each appended record on the next poll;
finding the session by the chosen id, by claude's pid registry (`--continue`, `/clear`), by a reported id,
by the cwd folder; subagents; a zag-planned resume that does not repeat history; and `zag run claude`."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import (Agent, PolledLive, assert_valid_log, standin_executable, wait_until,
                                       write_script)
from zag.providers.base import LaunchContext, LaunchPlan, LimitSignal, SessionIdHint
from zag.providers.claude import PROVIDER, live
from zag.providers.claude.homes import encode_cwd

TS = "2026-11-22T14:51:09.692Z"
LATER = "2099-01-01T00:00:00.000Z"  # written after the move: a session moved to logs what is older as history


@pytest.fixture(autouse=True)
def fast_scans(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "GLOB_EVERY_SECS", 0.05)
    monkeypatch.setattr(live, "FALLBACK_EVERY_SECS", 0.05)


# --- records in claude 2.1.197's shapes ----------------------------------------------------------------
def envelope(kind: str, sid: str, **fields: Any) -> dict[str, Any]:
    return {"parentUuid": None, "isSidechain": False, "type": kind, "uuid": str(uuid.uuid4()), "timestamp": TS,
            "userType": "external", "entrypoint": "cli", "cwd": "/srv/p", "sessionId": sid, "version": "2.1.197",
            "gitBranch": "HEAD", **fields}


def user(sid: str, text: str, **fields: Any) -> str:
    return json.dumps(envelope("user", sid, message={"role": "user", "content": text}, promptId="p1", **fields))


def assistant(sid: str, text: str, msg_id: str | None = None, **fields: Any) -> str:
    return json.dumps(envelope("assistant", sid, requestId="req_" + (msg_id or "x"), message={
        "id": msg_id or "msg_" + uuid.uuid4().hex[:16], "type": "message", "role": "assistant",
        "model": "claude-sonnet-5", "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 12, "output_tokens": 5, "cache_read_input_tokens": 0,
                  "cache_creation_input_tokens": 0}}, **fields))


def limit(sid: str) -> str:
    record = envelope("assistant", sid, requestId="req_l", error="rate_limit", isApiErrorMessage=True,
                      apiErrorStatus=429, message={
                          "id": str(uuid.uuid4()), "model": "<synthetic>", "role": "assistant", "type": "message",
                          "content": [{"type": "text", "text": "You've hit your session limit · resets 3:51pm (UTC)"}],
                          "usage": {"input_tokens": 0, "output_tokens": 0}})
    return json.dumps(record)


def queue(sid: str, text: str) -> str:
    return json.dumps({"type": "queue-operation", "operation": "enqueue", "timestamp": TS, "sessionId": sid,
                       "content": text})


class Rig(PolledLive):
    """A claude config home, a project, the stand-in, and a LiveSession polled with deadlines."""

    def __init__(self, tmp_path: Path, *, interactive: bool = False, via_config_dir: bool = False) -> None:
        self.root = tmp_path
        self.cwd = tmp_path / "work dir" / "proj_1"
        self.cwd.mkdir(parents=True)
        self.home = tmp_path / "home"
        self.config = (tmp_path / "claude-config") if via_config_dir else (self.home / ".claude")
        self.env = {"HOME": str(self.home), "PATH": "/usr/bin:/bin"}
        if via_config_dir:
            self.env["CLAUDE_CONFIG_DIR"] = str(self.config)
        self.project = self.config / "projects" / encode_cwd(str(self.cwd))
        self.interactive = interactive
        self.executable = standin_executable(tmp_path)
        self.gates = tmp_path / "gates"
        self.gates.mkdir()
        self.items: list[Any] = []
        self.live: Any = None
        self.proc: subprocess.Popen[bytes] | None = None

    def ctx(self, pid: int | None = None) -> LaunchContext:
        return LaunchContext(cwd=str(self.cwd), env=self.env, interactive=self.interactive, started_at=time.time(),
                             zag_session_id="zag-1", child_pid=pid)

    def transcript(self, sid: str = "{session_id}") -> str:
        return str(self.project / f"{sid}.jsonl")

    def start(self, plan: LaunchPlan, actions: list[dict[str, Any]], *, with_pid: bool = True,
              wrapper: bool = False) -> LaunchContext:
        script = write_script(self.root / "script.json", actions)
        env = {**self.env, **plan.env, "STANDIN_SCRIPT": str(script), "PYTHONDONTWRITEBYTECODE": "1",
               "STANDIN_LOG": str(self.root / "invocations.jsonl")}
        command = [str(self.executable), *plan.args]
        if wrapper:  # like an npx/shell launcher: claude runs as a child of what zag started
            command = ["/bin/sh", "-c", '"$0" "$@"; exit $?', *command]
        self.proc = subprocess.Popen(command, cwd=self.cwd, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        ctx = self.ctx(self.proc.pid if with_pid else None)
        self.live = PROVIDER.open_live(plan, ctx)
        return ctx

    def open(self, name: str) -> None:
        (self.gates / name).touch()

    def gate(self, name: str) -> dict[str, Any]:
        return {"wait_file": str(self.gates / name), "timeout": 30}

    def registry(self, sid: str, pid: int | None = None) -> None:
        """What claude writes as `<config>/sessions/<pid>.json` (atomically replaced)."""
        assert self.proc is not None
        pid = pid or self.proc.pid
        folder = self.config / "sessions"
        folder.mkdir(parents=True, exist_ok=True)
        temp = folder / "tmp.json"
        temp.write_text(json.dumps({"pid": pid, "sessionId": sid, "cwd": str(self.cwd),
                                    "startedAt": int(time.time() * 1000), "kind": "interactive"}))
        temp.replace(folder / f"{pid}.json")

    def agent_pid(self) -> int:
        log = self.root / "invocations.jsonl"
        wait_until(lambda: log.exists() and log.read_text().strip(), 10, message="stand-in start")
        return json.loads(log.read_text().splitlines()[0])["pid"]


def kinds(items: list[Any]) -> list[str]:
    return [item["type"] if isinstance(item, dict) else type(item).__name__ for item in items]


def contents(items: list[Any]) -> list[str]:
    return [item["content"] for item in items if isinstance(item, dict) and "content" in item]


def count(kind: str) -> Any:
    return lambda items: kinds(items).count(kind)


# --- tests ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("via_config_dir", [False, True])
def test_events_in_order_once_each_record_on_the_next_poll(tmp_path: Path, via_config_dir: bool) -> None:
    rig = Rig(tmp_path, via_config_dir=via_config_dir)
    ctx = rig.ctx()
    plan = PROVIDER.plan_launch(["-p", "say hi", "--output-format", "stream-json", "--verbose"], ctx)
    sid = plan.provider_session_id
    path = rig.transcript()
    rig.start(plan, [
        {"append": path, "lines": [queue("{session_id}", "say hi"), user("{session_id}", "say hi")]},
        rig.gate("1"),
        {"append": path, "lines": [assistant("{session_id}", "hi there", "msg_a")]},
        rig.gate("2"),
        {"append": path, "text": limit("{session_id}")[:40]},  # a torn line, completed later
        rig.gate("3"),
        {"append": path, "text": limit("{session_id}")[40:] + "\n"},
    ])
    assert kinds(rig.poll_until(count("user_message"))) == ["provider_status", "user_message"]
    assert rig.live.provider_session_id == sid and rig.live.source_key == sid
    for gate, expected in (("1", ["assistant_message", "usage"]), ("2", []), ("3", ["assistant_message",
                                                                                     "LimitSignal"])):
        before = len(rig.items)
        written = Path(path.replace("{session_id}", sid))
        size = written.stat().st_size
        rig.open(gate)
        wait_until(lambda size=size: written.stat().st_size > size, 10, message="append")
        rig.items += rig.live.poll()  # the record shows on the very next poll
        assert kinds(rig.items[before:]) == expected
    items = rig.finish()
    assert kinds(items) == ["provider_status", "user_message", "assistant_message", "usage", "assistant_message",
                            "LimitSignal"]
    assert all(item["provider_session_id"] == sid for item in items if isinstance(item, dict))
    signal = items[-1]
    assert isinstance(signal, LimitSignal) and signal.structured and signal.scope == "session"
    cursor = json.loads(json.dumps(rig.live.cursor()))
    assert cursor["files"]["main"]["offset"] == Path(path.replace("{session_id}", sid)).stat().st_size


def test_continue_follows_the_pid_registry_past_its_placeholder_and_reads_only_what_is_new(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    old = "3b3b3b3b-1111-4222-8333-944444444444"
    placeholder = "4c4c4c4c-1111-4222-8333-944444444444"
    rig.project.mkdir(parents=True)
    Path(rig.transcript(old)).write_text(user(old, "earlier") + "\n" + assistant(old, "earlier answer") + "\n")
    plan = PROVIDER.plan_launch(["-c", "-p", "more"], rig.ctx())
    assert plan.provider_session_id is None and plan.args == ["-c", "-p", "more"]
    rig.start(plan, [rig.gate("go"), {"append": rig.transcript(old), "lines": [user(old, "more")]},
                     rig.gate("end")])
    rig.registry(placeholder)  # 2.1.197 shows a fresh id first, then the session it continues
    assert rig.live.poll() == [] and rig.live.provider_session_id is None
    rig.registry(old)
    rig.open("go")
    items = rig.poll_until(count("user_message"))
    assert contents(items) == ["more"] and rig.live.provider_session_id == old
    rig.open("end")
    rig.finish()


def test_registry_of_claude_below_a_wrapper_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "REGISTRY_SCAN_SECS", 0.05)
    rig = Rig(tmp_path)
    old = "3b3b3b3b-1111-4222-8333-944444444444"
    rig.project.mkdir(parents=True)
    Path(rig.transcript(old)).write_text(user(old, "earlier") + "\n")
    other = "1e1e1e1e-1111-4222-8333-944444444444"
    Path(rig.transcript(other)).write_text(user(other, "another claude's session") + "\n")
    plan = PROVIDER.plan_launch(["-c"], rig.ctx())
    rig.start(plan, [rig.gate("go"), {"append": rig.transcript(old), "lines": [user(old, "more")]},
                     {"sleep": 0.05},  # then another claude in this cwd writes (newest file: the cwd guess)
                     {"append": rig.transcript(other), "lines": [user(other, "not ours")]},
                     rig.gate("end")], wrapper=True)
    rig.registry(other, pid=1)  # some other claude on the machine (not below the child)
    rig.registry(old, pid=rig.agent_pid())
    rig.open("go")
    wait_until(lambda: "not ours" in Path(rig.transcript(other)).read_text(), 10, message="both appends")
    items = rig.poll_until(count("user_message"))
    assert contents(items) == ["more"] and rig.live.provider_session_id == old
    rig.open("end")
    rig.finish()


def test_clear_moves_to_the_new_session(tmp_path: Path) -> None:
    rig = Rig(tmp_path, interactive=True)
    plan = PROVIDER.plan_launch([], rig.ctx())
    first = plan.provider_session_id
    second = "9f5bf4e6-1c7b-4af5-91f5-ab94f17c7945"
    rig.start(plan, [
        {"append": rig.transcript(), "lines": [user("{session_id}", "say hi"), assistant("{session_id}", "hi")]},
        rig.gate("clear"),
        {"append": rig.transcript(), "lines": [assistant("{session_id}", "late line of the old session")]},
        {"append": rig.transcript(second), "lines": [user(second, "/clear", timestamp=LATER),
                                                    user(second, "second", timestamp=LATER)]},
        rig.gate("end"),
    ])
    rig.registry(first)
    rig.poll_until(count("assistant_message"))
    rig.open("clear")
    wait_until(lambda: Path(rig.transcript(second)).exists(), 10, message="new transcript")
    rig.registry(second)
    items = rig.poll_until(lambda items: "session_cleared" in kinds(items) and contents(items)[-1:] == ["second"])
    cleared = kinds(items).index("session_cleared")
    assert contents(items[:cleared]) == ["say hi", "hi", "late line of the old session"]
    assert items[cleared] == {"type": "session_cleared", "old_session_id": first, "new_session_id": second,
                              "provider_session_id": second}
    assert contents(items[cleared:]) == ["/clear", "second"]
    assert rig.live.provider_session_id == second and rig.live.source_key == second
    rig.open("end")
    rig.finish()
    assert kinds(rig.items).count("session_cleared") == 1


def test_resume_back_to_the_session_left_by_clear_moves_back_without_its_history(tmp_path: Path) -> None:
    """The TUI's `/clear` (first -> second), then `/resume <first>`: claude 2.1.197 rewrites its registry to the
    first id and writes the next turns into the first transcript. zag ignored any id it had left, so those
    turns were never logged, not even at exit."""
    rig = Rig(tmp_path, interactive=True)
    plan = PROVIDER.plan_launch([], rig.ctx())
    first = plan.provider_session_id
    second = "9f5bf4e6-1c7b-4af5-91f5-ab94f17c7945"
    rig.start(plan, [
        {"append": rig.transcript(), "lines": [user("{session_id}", "say hi"), assistant("{session_id}", "hi")]},
        rig.gate("clear"),
        {"append": rig.transcript(second), "lines": [user(second, "second", timestamp=LATER)]},
        rig.gate("back"),
        {"append": rig.transcript(), "lines": [user("{session_id}", "back again", timestamp=LATER),
                                               assistant("{session_id}", "welcome back", timestamp=LATER)]},
        rig.gate("end"),
    ])
    rig.registry(first)
    rig.poll_until(count("assistant_message"))
    rig.open("clear")
    wait_until(lambda: Path(rig.transcript(second)).exists(), 10, message="new transcript")
    rig.registry(second)
    rig.poll_until(lambda items: contents(items)[-1:] == ["second"])
    rig.live.hint(SessionIdHint(first))
    rig.items += rig.live.poll()   # an output hint naming the session left is stale: no move
    assert rig.live.provider_session_id == second
    rig.registry(first)
    rig.open("back")
    items = rig.poll_until(lambda items: contents(items)[-1:] == ["welcome back"])
    assert contents(items) == ["say hi", "hi", "second", "back again", "welcome back"]
    moves = [(item["old_session_id"], item["new_session_id"]) for item in items
             if isinstance(item, dict) and item["type"] == "session_cleared"]
    assert moves == [(first, second), (second, first)]
    assert rig.live.provider_session_id == first and rig.live.source_key == first
    rig.open("end")
    rig.finish()


def test_reported_session_id_is_followed_without_the_registry(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    forked = "5d5d5d5d-1111-4222-8333-944444444444"
    plan = PROVIDER.plan_launch(["--resume", "6e6e6e6e-1111-4222-8333-944444444444", "--fork-session", "-p", "x"],
                                rig.ctx())
    # a copy of the parent's prompt (its time kept, older than the start), then the fork's own prompt
    prompt = user(forked, "forked prompt", timestamp=time.strftime("%Y-%m-%dT%H:%M:%S.999Z", time.gmtime()))
    lines = [user(forked, "the parent's prompt"), prompt]
    rig.start(plan, [{"append": rig.transcript(forked), "lines": lines}, rig.gate("end")], with_pid=False)
    rig.live.hint(SessionIdHint(forked))
    items = rig.poll_until(count("user_message"))
    assert contents(items) == ["forked prompt"] and rig.live.provider_session_id == forked
    rig.open("end")
    rig.finish()


def test_without_any_id_the_transcript_that_grows_in_the_cwd_folder(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    old = "7f7f7f7f-1111-4222-8333-944444444444"
    idle = "8a8a8a8a-1111-4222-8333-944444444444"
    rig.project.mkdir(parents=True)
    Path(rig.transcript(old)).write_text(user(old, "history") + "\n")
    Path(rig.transcript(idle)).write_text(user(idle, "other session") + "\n")
    plan = PROVIDER.plan_launch(["--continue"], rig.ctx())
    rig.start(plan, [rig.gate("go"), {"append": rig.transcript(old), "lines": [user(old, "continued")]},
                     rig.gate("end")], with_pid=False)
    assert rig.live.poll() == []
    rig.open("go")
    items = rig.poll_until(count("user_message"))
    assert contents(items) == ["continued"] and rig.live.provider_session_id == old
    rig.open("end")
    rig.finish()


def test_subagent_transcripts_join_the_session_live(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    plan = PROVIDER.plan_launch(["-p", "delegate"], rig.ctx())
    sub = str(rig.project / "{session_id}" / "subagents" / "agent-a0ad4f44468bdf20d.jsonl")
    meta = str(rig.project / "{session_id}" / "subagents" / "agent-a0ad4f44468bdf20d.meta.json")
    task = json.dumps(envelope("assistant", "{session_id}", requestId="r1", message={
        "id": "msg_t", "role": "assistant", "model": "m",
        "content": [{"type": "tool_use", "id": "toolu_task", "name": "Task", "input": {"prompt": "find"}}]}))
    rig.start(plan, [
        {"append": rig.transcript(), "lines": [user("{session_id}", "delegate"), task]},
        {"write": meta, "text": '{"agentType":"general-purpose","toolUseId":"toolu_task"}'},
        {"append": sub, "lines": [json.dumps(envelope("user", "{session_id}", isSidechain=True,
                                                      agentId="a0ad4f44468bdf20d",
                                                      message={"role": "user", "content": "find"}))]},
        rig.gate("end"),
    ])
    items = rig.poll_until(lambda items: any(isinstance(i, dict) and i.get("agent_id") for i in items))
    child = [item for item in items if isinstance(item, dict) and item.get("agent_id")]
    assert [(item["content"], item["parent_tool_id"], item["is_sidechain"]) for item in child] == [
        ("find", "toolu_task", True)]
    assert child[0]["provider_session_id"] == plan.provider_session_id
    rig.open("end")
    rig.finish()


def test_zag_planned_resume_reads_on_from_where_the_transcript_ended(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    sid = "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a"
    rig.project.mkdir(parents=True)
    Path(rig.transcript(sid)).write_text(user(sid, "say hi") + "\n" + limit(sid) + "\n")
    plan = PROVIDER.plan_resume(["-p", "say hi", "--output-format", "stream-json", "--verbose"], sid, "Continue",
                                rig.ctx())
    assert plan.args == ["-p", "--resume", sid, "--output-format", "stream-json", "--verbose", "--", "Continue"]
    rig.start(plan, [{"append": rig.transcript(), "lines": [user("{session_id}", "Continue"),
                                                          assistant("{session_id}", "resumed")]}])
    items = rig.poll_until(count("assistant_message"))
    rig.finish()
    assert contents(rig.items) == ["Continue", "resumed"]
    assert not any(isinstance(item, LimitSignal) for item in items)  # the old hit is not reported again


def test_poll_is_quiet_and_safe_when_nothing_is_there(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    plan = PROVIDER.plan_launch(["mcp", "list"], rig.ctx())
    rig.start(plan, [])
    for _ in range(5):
        assert rig.live.poll() == []
    assert rig.live.cursor() is None and rig.live.provider_session_id is None
    rig.finish()
    unreadable = PROVIDER.open_live(LaunchPlan(args=[], provider_session_id="../../x"), rig.ctx(pid=999999))
    assert unreadable.poll() == []


def test_zag_run_claude_writes_the_transcript_once_in_order(tmp_path: Path, zag_home: Path) -> None:
    cwd = tmp_path / "proj"
    cwd.mkdir()
    home = tmp_path / "home"
    project = home / ".claude" / "projects" / encode_cwd(str(cwd))
    path = str(project / "{session_id}.jsonl")
    agent = Agent(tmp_path / "agent", zag_home, provider="claude")
    agent.script([
        {"append": path, "lines": [queue("{session_id}", "say hi"), user("{session_id}", "say hi")]},
        {"sleep": 0.3},
        {"append": path, "lines": [assistant("{session_id}", "hi from the stand-in", "msg_1")]},
        {"out": '{"type":"system","subtype":"init","session_id":"{session_id}"}\n'},
        {"sleep": 0.3},
    ])
    result = subprocess.run(agent.command("run", "claude", "-p", "say hi", "--output-format", "stream-json",
                                          "--verbose"),
                            env=agent.env(HOME=str(home)), cwd=cwd, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    [invocation] = agent.invocations()
    assert invocation["argv"][0] == "--session-id"
    sid = invocation["argv"][1]
    assert invocation["argv"][2:] == ["-p", "say hi", "--output-format", "stream-json", "--verbose"]
    assert result.stdout.decode() == '{"type":"system","subtype":"init","session_id":"%s"}\n' % sid
    events = agent.only_session()
    assert_valid_log(events)
    transcript = [event for event in events if event["source"] == "provider_file"]
    assert [event["type"] for event in transcript] == ["provider_status", "user_message", "assistant_message", "usage"]
    assert [event["provider_session_id"] for event in transcript] == [sid] * 4
    assert transcript[1]["content"] == "say hi" and transcript[2]["content"] == "hi from the stand-in"
    assert [event["seq"] for event in transcript] == sorted(event["seq"] for event in transcript)


def test_a_stale_registry_file_of_a_reused_pid_is_not_followed(tmp_path: Path) -> None:
    """A claude killed before it removed `sessions/<pid>.json` leaves it behind; a later child given the same
    pid must not be taken for that old session: zag switched to the old transcript (a `session_cleared`)
    and never followed the child's own."""
    rig = Rig(tmp_path)
    stale = "5e5e5e5e-1111-4222-8333-944444444444"
    rig.project.mkdir(parents=True)
    Path(rig.transcript(stale)).write_text(user(stale, "long ago") + "\n")
    plan = PROVIDER.plan_launch(["-p", "hi"], rig.ctx())
    chosen = plan.provider_session_id
    rig.start(plan, [rig.gate("go"), {"append": rig.transcript(), "lines": [user("{session_id}", "hi")]},
                     rig.gate("end"), {"append": rig.transcript(), "lines": [assistant("{session_id}", "hello")]}])
    rig.registry(stale)
    hour_ago = time.time() - 3600
    os.utime(rig.config / "sessions" / f"{rig.proc.pid}.json", (hour_ago, hour_ago))
    rig.open("go")
    rig.poll_until(count("user_message"))
    rig.open("end")
    items = rig.poll_until(count("assistant_message"))
    rig.finish()
    assert kinds(items) == ["user_message", "assistant_message", "usage"]
    assert contents(items) == ["hi", "hello"] and rig.live.provider_session_id == chosen
