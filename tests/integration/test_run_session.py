"""Every `zag run` is a session: its unified log, its index row, its heartbeat."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.integration.helpers import Agent, assert_valid_log, read_jsonl, types, wait_until, write_config


def test_log_records_start_and_end(agent: Agent) -> None:
    agent.script([{"out": "hi\n"}, {"exit": 2}])
    result = agent.run("run", "claude", "-p", "a b", "--model", "opus")
    assert result.returncode == 2
    events = agent.only_session()
    assert_valid_log(events)
    started, ended = events[0], events[-1]
    assert started["source"] == "wrapper" and started["provider"] == "claude"
    assert started["argv"] == ["claude", "-p", "a b", "--model", "opus"]
    assert started["final_argv"][0] == str(agent.executable)
    assert started["final_argv"][1:].count("a b") == 1
    assert started["cwd"] == str(agent.root)
    assert started["resumed"] is False and started["backfilled"] is False and started["interactive"] is False
    assert started["hostname"] == os.uname().nodename
    assert isinstance(started["supervisor_pid"], int) and started["supervisor_started"]
    assert started["heartbeat_secs"] == 10.0
    assert started["child_pid"] == agent.invocations()[0]["pid"]
    assert ended["exit_code"] == 2 and ended["success"] is False
    for event in events:
        assert set(event) >= {"seq", "ts", "session_id", "provider", "provider_session_id", "source", "type"}
        assert event["ts"].endswith("Z") and len(event["ts"]) == 24


def test_index_row_follows_the_session(agent: Agent, zag_home: Path) -> None:
    write_config(zag_home, "heartbeat_secs = 0.2\n")
    release = agent.root / "release"
    agent.script([{"out": "ready\n"}, {"wait_file": str(release), "timeout": 30}, {"exit": 6}])
    proc = agent.start("run", "claude", "--flag")
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    child_pid = agent.wait_for_invocation()["pid"]
    [log_path] = wait_until(agent.session_log_paths, 10, message="session log")
    session_id = log_path.stem

    from zag.wrapper import liveness

    row = wait_until(lambda: agent.index_row(session_id), 10, message="index row")
    assert row["state"] == "running" and row["provider"] == "claude"
    assert row["supervisor_pid"] == proc.pid
    assert row["supervisor_started"] == liveness.process_start_time(proc.pid)
    assert row["hostname"] == liveness.hostname()
    assert row["child_pid"] == child_pid
    assert row["argv"] == ["claude", "--flag"] and row["cwd"] == str(agent.root)
    assert row["heartbeat_secs"] == 0.2 and row["interactive"] is False
    assert row["log_path"] == str(log_path)
    assert liveness.effective_state(row) == "running"
    first_beat = row["last_heartbeat"]
    wait_until(lambda: agent.index_row(session_id)["last_heartbeat"] > first_beat, 10, message="a heartbeat")

    release.touch()
    assert proc.wait(timeout=30) == 6
    events = read_jsonl(log_path)
    assert_valid_log(events)
    row = agent.index_row(session_id)
    assert row["state"] == "exited" and row["exit_code"] == 6
    assert row["ended_at"] >= row["started_at"]
    assert row["last_seq"] == events[-1]["seq"]
    assert liveness.effective_state(row) == "exited"


def test_heartbeats_follow_the_configured_interval(agent: Agent, zag_home: Path) -> None:
    write_config(zag_home, "heartbeat_secs = 0.2\n")
    agent.script([{"sleep": 1.5}])
    assert agent.run("run", "claude").returncode == 0
    events = agent.only_session()
    assert_valid_log(events)
    beats = [event for event in events if event["type"] == "heartbeat"]
    assert len(beats) >= 3, types(events)
    assert all(beat["interval_secs"] == 0.2 and beat["source"] == "wrapper" for beat in beats)
    assert events[0]["heartbeat_secs"] == 0.2
    [row] = agent.index_rows()
    assert row["heartbeat_secs"] == 0.2 and row["last_heartbeat"] is not None


def test_default_interval_means_no_heartbeat_in_a_short_run(agent: Agent) -> None:
    assert agent.run("run", "claude").returncode == 0
    assert types(agent.only_session()) == ["session_started", "session_ended"]


def test_log_and_folders_are_private(agent: Agent, zag_home: Path) -> None:
    assert agent.run("run", "claude").returncode == 0
    [path] = agent.session_log_paths()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(zag_home.stat().st_mode) == 0o700


def test_each_run_is_a_new_session(agent: Agent) -> None:
    for _ in range(3):
        assert agent.run("run", "claude").returncode == 0
    logs = agent.session_logs()
    assert len(logs) == 3
    assert len({log[0]["session_id"] for log in logs}) == 3
    for log in logs:
        assert_valid_log(log)
    ids_seen_by_agent = [inv["env"]["ZAG_SESSION_ID"] for inv in agent.invocations()]
    assert sorted(ids_seen_by_agent) == sorted(log[0]["session_id"] for log in logs)


def test_the_agents_session_is_claimed_while_it_runs(agent: Agent, zag_home: Path) -> None:
    """Claimed before the agent starts (so a backfill leaves it alone before the index row exists), by
    zag's pid; released when the session ends."""
    import json

    release = agent.root / "release"
    agent.script([{"out": "ready\n"}, {"wait_file": str(release), "timeout": 30}, {"exit": 0}])
    proc = agent.start("run", "claude")
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        [invocation] = agent.invocations()
        provider_session_id = invocation["argv"][invocation["argv"].index("--session-id") + 1]
        claim = zag_home / "claims" / "claude" / provider_session_id
        assert json.loads(claim.read_text())["pid"] == proc.pid
        release.write_text("")
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert not claim.exists()
