"""The supervisor's side of the Provider protocol, with a fake provider inside a real `zag run` process.

The real provider packages are tested on their own; here a fake one (below) is injected in place of
`claude`, so these tests pin what the supervisor does with whatever a provider returns: the launch plan,
scanner items, live-session items (records, session-id hints, limit signals, a session switch), cursors
for backfill, and faults of every kind.

The subprocess runs `python -c "from tests.integration.test_run_provider import main; main()" ARGS`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from tests.integration.helpers import REPO, Agent, assert_valid_log, wait_until, write_config

FIXED_ID = "11111111-2222-4333-8444-555555555555"


# --- the fake provider (runs inside the zag subprocess) ----------------------------------------
class FakeScanner:
    """Reports `SESSION-ID: <id>` lines as hints and `LIMIT HIT` as a limit signal."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.buffer = b""

    def feed(self, stream: str, data: bytes) -> list[Any]:
        from zag.providers.base import LimitSignal, SessionIdHint

        if self.mode == "faulty":
            raise RuntimeError("scanner exploded")
        self.buffer += data
        items: list[Any] = []
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            text = line.decode("utf-8", "replace").strip()
            if text.startswith("SESSION-ID: "):
                items.append(SessionIdHint(text.split(": ", 1)[1], stream))
            elif text == "LIMIT HIT":
                items.append(LimitSignal("claude", stream, text, structured=False))
        return items

    def finish(self) -> list[Any]:
        return []


class FakeLive:
    """Tails `$FAKE_TRANSCRIPT` (JSON lines written by the stand-in) from a byte offset."""

    def __init__(self, plan: Any, ctx: Any, mode: str) -> None:
        self.path = Path(ctx.env["FAKE_TRANSCRIPT"])
        self.mode = mode
        self.offset = 0
        self.provider_session_id = plan.provider_session_id
        self.source_key = plan.provider_session_id

    def poll(self) -> list[Any]:
        from zag.providers.base import LimitSignal

        if self.mode == "faulty":
            raise RuntimeError("poll exploded")
        try:
            data = self.path.read_bytes()[self.offset:]
        except FileNotFoundError:
            return []
        complete = data[:data.rfind(b"\n") + 1]
        items: list[Any] = []
        for line in complete.splitlines():
            self.offset += len(line) + 1
            record = json.loads(line)
            if record.get("kind") == "clear":
                items.append({"type": "session_cleared", "old_session_id": self.provider_session_id,
                              "new_session_id": record["new_id"], "provider_session_id": record["new_id"]})
                self.provider_session_id = self.source_key = record["new_id"]
            elif record.get("kind") == "limit":
                items.append(LimitSignal("claude", "provider_file", line.decode(), structured=True))
            elif record.get("kind") == "odd":
                items.extend([{"no_type": True}, 42, {"type": "provider_status", "data": object()}])
            else:
                items.append({"type": "assistant_message", "text": record["text"], "model": record.get("model"),
                              "ts": record.get("ts")})
        return items

    def hint(self, signal: Any) -> None:
        if self.provider_session_id is None:
            self.provider_session_id = self.source_key = signal.provider_session_id

    def cursor(self) -> Any:
        if self.mode == "faulty":
            raise RuntimeError("cursor exploded")
        return {"offset": self.offset}

    def close(self) -> None:
        pass


class FakeProvider:
    name = "claude"
    executable = "claude"
    install_hint = "npm install -g @anthropic-ai/claude-code"

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def plan_launch(self, user_args: Any, ctx: Any) -> Any:
        from zag.providers.base import LaunchPlan

        if self.mode == "faulty":
            raise RuntimeError("plan exploded")
        if self.mode == "hint":
            return LaunchPlan(args=list(user_args), env={"STANDIN_X_PLANNED": "yes"})
        return LaunchPlan(args=[*user_args, "--session-id", FIXED_ID], provider_session_id=FIXED_ID,
                          env={"STANDIN_X_PLANNED": "yes"}, model="fake-model-1")

    def output_scanner(self, ctx: Any) -> FakeScanner:
        return FakeScanner(self.mode)

    def open_live(self, plan: Any, ctx: Any) -> FakeLive:
        return FakeLive(plan, ctx, self.mode)


def _engine_stand_ins(mode: str) -> None:
    """What a usage-limit engine would do, reduced to the two supervisor seams it uses."""
    from zag.providers.base import LaunchPlan
    from zag.wrapper.limits import LimitHandler

    if mode == "relaunch":
        def next_launch(self: Any, status: Any) -> Any:
            self.launches = getattr(self, "launches", 0) + 1
            return LaunchPlan(args=["second run", f"previous={status.exit_code}"]) if self.launches == 1 else None

        LimitHandler.next_launch = next_launch  # type: ignore[method-assign]
    elif mode == "type-keys":
        original = LimitHandler.observe

        def observe(self: Any, signal: Any) -> None:
            original(self, signal)
            self.supervisor.send_to_agent(b"typed by zag\r")

        LimitHandler.observe = observe  # type: ignore[method-assign]


def main() -> None:
    import zag.providers as providers
    from zag.cli import main as zag_main

    mode = os.environ["FAKE_MODE"]
    _engine_stand_ins(mode)
    fake = FakeProvider(mode)
    real_get = providers.get
    providers.get = lambda name: fake if name == "claude" else real_get(name)  # type: ignore[assignment]
    zag_main(["run", *sys.argv[1:]])


# --- the tests ----------------------------------------------------------------------------------
def _fake_env(agent: Agent, mode: str) -> dict[str, str]:
    # the fake's limit signals would otherwise schedule a real resume (an hour's fallback wait)
    write_config(agent.zag_home, "[usage_limits]\nenabled = false\n")
    return agent.env(FAKE_MODE=mode, FAKE_TRANSCRIPT=str(agent.root / "transcript.jsonl"),
                     PYTHONPATH=str(REPO))


def _start(agent: Agent, mode: str, *args: str) -> Any:
    import subprocess

    command = [sys.executable, "-c", "from tests.integration.test_run_provider import main; main()", "claude",
               *args]
    return subprocess.Popen(command, env=_fake_env(agent, mode), cwd=agent.root, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _diagnostics(agent: Agent) -> list[dict[str, Any]]:
    path = agent.zag_home / "zag.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record)


def test_plan_scanner_and_live_session_feed_the_log_and_index(agent: Agent) -> None:
    transcript = "{env:FAKE_TRANSCRIPT}"
    release = agent.root / "release"
    new_id = "99999999-2222-4333-8444-555555555555"
    agent.script([
        {"append": transcript, "lines": [_line({"text": "first", "model": "fake-model-2",
                                                "ts": "2026-01-02T03:04:05.000Z"})]},
        {"out": "ready\n"},
        {"wait_file": str(release), "timeout": 30},
        {"out": "LIMIT HIT\n"},
        {"append": transcript, "lines": [_line({"kind": "limit"}), _line({"text": "second"}),
                                         _line({"kind": "clear", "new_id": new_id}), _line({"text": "third"})]},
        {"exit": 0},
    ])
    proc = _start(agent, "working", "-p", "hello")
    assert proc.stdout.readline() == b"ready\n"
    [log_path] = wait_until(agent.session_log_paths, 10, message="session log")

    def logged_texts() -> list[str]:
        from tests.integration.helpers import read_jsonl

        return [e.get("text") for e in read_jsonl(log_path) if e["type"] == "assistant_message"]

    wait_until(lambda: logged_texts() == ["first"], 10, message="live record in the log while the agent runs")
    release.touch()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == b"LIMIT HIT\n"

    [invocation] = agent.invocations()
    assert invocation["argv"] == ["-p", "hello", "--session-id", FIXED_ID]
    assert invocation["env"]["STANDIN_X_PLANNED"] == "yes"

    events = agent.only_session()
    assert_valid_log(events)
    session_id = events[0]["session_id"]
    assert events[0]["model"] == "fake-model-1" and events[0]["provider_session_id"] == FIXED_ID
    from_file = [e for e in events if e["source"] == "provider_file"]
    assert [e["type"] for e in from_file] == ["assistant_message", "assistant_message", "session_cleared",
                                              "assistant_message"]
    assert [e.get("text") for e in from_file] == ["first", "second", None, "third"]
    assert from_file[0]["ts"] == "2026-01-02T03:04:05.000Z"  # the record's own time is kept
    assert from_file[0]["provider_session_id"] == FIXED_ID
    assert from_file[-1]["provider_session_id"] == new_id
    assert events[-1]["type"] == "session_ended"

    [row] = agent.index_rows()
    assert row["provider_session_id"] == new_id
    assert row["model"] == "fake-model-2"
    assert row["last_seq"] == events[-1]["seq"]

    from zag.logs.index import Index

    with Index(agent.zag_home / "index.sqlite") as index:
        size = (agent.root / "transcript.jsonl").stat().st_size
        assert index.backfill_cursor("claude", new_id) == (session_id, {"offset": size})
        old = index.backfill_cursor("claude", FIXED_ID)
        assert old is not None and old[0] == session_id
        log_size = index.backfill_cursors("claude", [new_id])[new_id][2]
    # the log's size stored with the cursor: every record read up to it is before it, nothing after it is
    raw = log_path.read_bytes()
    assert raw.index(b'"third"') < log_size <= len(raw) and raw[log_size - 1:log_size] == b"\n"
    assert b'"provider_file"' not in raw[log_size:]

    limits = [r for r in _diagnostics(agent) if r["event"] == "usage_limit_signal"]
    assert {r["source"] for r in limits} == {"stdout", "provider_file"}
    assert not [r for r in _diagnostics(agent) if r["event"] == "provider_fault"]


def test_session_id_hint_from_the_output_reaches_the_index(agent: Agent) -> None:
    agent.script([{"out": "SESSION-ID: hinted-session\n"}, {"sleep": 0.6}, {"exit": 0}])
    proc = _start(agent, "hint")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == b"SESSION-ID: hinted-session\n"
    [row] = agent.index_rows()
    assert row["provider_session_id"] == "hinted-session"


def test_faulty_provider_never_disturbs_the_agent(agent: Agent) -> None:
    agent.script([{"append": "{env:FAKE_TRANSCRIPT}", "lines": [_line({"text": "x"})]},
                  {"out": "out 1\n"}, {"err": "err 1\n"}, {"sleep": 0.4}, {"out": "out 2\n"}, {"exit": 3}])
    proc = _start(agent, "faulty", "--user-arg")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3
    assert out == b"out 1\nout 2\n" and err == b"err 1\n"
    [invocation] = agent.invocations()
    assert invocation["argv"] == ["--user-arg"]  # plan_launch failed: the user's args, unchanged
    events = agent.only_session()
    assert_valid_log(events)
    statuses = [e for e in events if e["type"] == "provider_status"]
    noted = [e["data"]["zag_fault"] for e in statuses]
    assert len(noted) == len(set(noted))  # once per call site, however often it failed
    assert {"plan_launch", "OutputScanner.feed", "LiveSession.poll"} <= set(noted)
    faults = {r["call"] for r in _diagnostics(agent) if r["event"] == "provider_fault"}
    assert {"plan_launch", "OutputScanner.feed", "LiveSession.poll"} <= faults


def test_odd_items_become_warnings_not_crashes(agent: Agent) -> None:
    agent.script([{"append": "{env:FAKE_TRANSCRIPT}", "lines": [_line({"kind": "odd"}), _line({"text": "after"})]},
                  {"sleep": 0.5}, {"exit": 0}])
    proc = _start(agent, "working")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    events = agent.only_session()
    assert_valid_log(events)
    from_file = [e for e in events if e["source"] == "provider_file"]
    assert [e["type"] for e in from_file] == ["parse_warning", "parse_warning", "assistant_message"]
    assert from_file[-1]["text"] == "after"
    assert any(r.get("call") == "item" for r in _diagnostics(agent) if r["event"] == "provider_fault")


def test_agent_relaunched_in_the_same_session(agent: Agent) -> None:
    """`run_child`: a second child in the same session keeps the log, its seq and the index row."""
    agent.script([{"out": "first\n"}, {"exit": 3}], [{"out": "second\n"}, {"exit": 0}])
    proc = _start(agent, "relaunch", "-p", "go")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == b"first\nsecond\n"
    first, second = agent.invocations()
    assert first["argv"][:2] == ["-p", "go"]
    assert second["argv"] == ["second run", "previous=3"]
    assert first["env"]["ZAG_SESSION_ID"] == second["env"]["ZAG_SESSION_ID"]
    events = agent.only_session()
    assert_valid_log(events)
    assert [e["type"] for e in events].count("session_started") == 1
    [row] = agent.index_rows()
    assert row["child_pid"] == second["pid"] and row["exit_code"] == 0 and row["state"] == "exited"
    assert row["last_seq"] == events[-1]["seq"]


def test_keys_typed_into_the_agents_terminal(agent: Agent) -> None:
    """`send_to_agent`: what the engine types reaches an interactive agent as keystrokes."""
    import pexpect

    agent.script([{"out": "LIMIT HIT\n"}, {"read_line": True, "prefix": "got: "}])
    command = [sys.executable, "-c", "from tests.integration.test_run_provider import main; main()", "claude"]
    term = pexpect.spawn(command[0], command[1:], env=_fake_env(agent, "type-keys"), cwd=str(agent.root),
                         timeout=30)
    term.expect_exact("got: typed by zag")
    term.expect(pexpect.EOF)
    term.close()
    assert term.exitstatus == 0
