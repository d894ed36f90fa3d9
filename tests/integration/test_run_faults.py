"""zag's own faults never stop the agent: its output, input and exit code still come through."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from tests.integration.helpers import Agent, assert_valid_log, write_config


def _diagnostics(zag_home: Path) -> list[dict]:
    path = zag_home / "zag.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_unwritable_sessions_folder(agent: Agent, zag_home: Path) -> None:
    zag_home.mkdir(parents=True)
    (zag_home / "sessions").write_text("a file where the folder should be")  # fails even for root
    agent.script([{"echo_stdin": True}, {"err": "agent err\n"}, {"exit": 4}])
    result = agent.run("run", "claude", input=b"data in\n")
    assert result.returncode == 4
    assert result.stdout == b"data in\n"
    lines = result.stderr.decode().splitlines()
    assert lines[-1] == "agent err"
    assert any("cannot write the session log" in line for line in lines)
    assert "Traceback" not in result.stderr.decode()
    [row] = agent.index_rows()  # the index still knows the run
    assert row["state"] == "exited" and row["exit_code"] == 4


def test_unusable_zag_home(agent: Agent, tmp_path: Path) -> None:
    home_file = tmp_path / "home-is-a-file"
    home_file.write_text("")
    agent.script([{"out": "still works\n"}, {"exit": 3}])
    result = agent.run("run", "claude", env=agent.env(ZAG_HOME=str(home_file)))
    assert result.returncode == 3
    assert result.stdout == b"still works\n"
    assert b"Traceback" not in result.stderr


def test_locked_index(agent: Agent, zag_home: Path) -> None:
    from zag.logs.index import Index

    Index(zag_home / "index.sqlite").close()
    blocker = sqlite3.connect(zag_home / "index.sqlite", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        agent.script([{"out": "ran\n"}, {"exit": 8}])
        started = time.monotonic()
        result = agent.run("run", "claude", timeout=60)
        elapsed = time.monotonic() - started
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert result.returncode == 8
    assert result.stdout == b"ran\n"
    assert b"index" in result.stderr and b"Traceback" not in result.stderr
    assert b"`zag reindex` rebuilds it from the logs" in result.stderr  # the log itself is whole
    assert elapsed < 30, "a locked index must not hold the agent (or zag's exit) for long"
    events = agent.only_session()
    assert_valid_log(events)
    assert events[-1]["exit_code"] == 8
    assert any(record["event"] == "index_write_failed" for record in _diagnostics(zag_home))


def test_index_busy_for_a_while_catches_up(agent: Agent, zag_home: Path) -> None:
    """A lock held during the start only delays the row: it is written once the index is free."""
    from zag.logs.index import Index

    Index(zag_home / "index.sqlite").close()
    release = agent.root / "release"
    agent.script([{"out": "ready\n"}, {"wait_file": str(release), "timeout": 30}, {"exit": 0}])
    blocker = sqlite3.connect(zag_home / "index.sqlite", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        proc = agent.start("run", "claude")
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    release.touch()
    assert proc.wait(timeout=60) == 0
    [row] = agent.index_rows()
    events = agent.only_session()
    assert row["state"] == "exited" and row["exit_code"] == 0 and row["last_seq"] == events[-1]["seq"]


def test_corrupt_index_file(agent: Agent, zag_home: Path) -> None:
    zag_home.mkdir(parents=True)
    (zag_home / "index.sqlite").write_bytes(b"this is not a database" * 100)
    agent.script([{"out": "ok\n"}, {"exit": 1}])
    result = agent.run("run", "claude")
    assert result.returncode == 1
    assert result.stdout == b"ok\n"
    assert b"Traceback" not in result.stderr
    assert_valid_log(agent.only_session())


def test_broken_config_is_reported_and_defaults_used(agent: Agent, zag_home: Path) -> None:
    write_config(zag_home, "heartbeat_secs = [not toml\n")
    agent.script([{"out": "ok\n"}])
    result = agent.run("run", "claude")
    assert result.returncode == 0
    assert result.stdout == b"ok\n"
    assert b"config" in result.stderr and b"Traceback" not in result.stderr
    assert agent.only_session()[0]["heartbeat_secs"] == 10.0


def test_skeleton_or_failing_provider_does_not_disturb_the_agent(agent: Agent, zag_home: Path) -> None:
    """Whatever the provider adapter does (today: skeletons raising NotImplementedError), the run is
    complete; faults, if any, go to zag's diagnostics and never to the agent's streams."""
    agent.script([{"out": "out\n"}, {"err": "err\n"}, {"exit": 0}])
    for provider in ("claude", "codex", "gemini", "goose"):
        result = agent.run("run", provider, "-p", "hi")
        assert result.returncode == 0, (provider, result.stderr)
        assert result.stdout == b"out\n" and result.stderr == b"err\n", provider
    for events in agent.session_logs():
        assert_valid_log(events)
    for record in _diagnostics(zag_home):
        assert record["event"] != "supervisor_failed", record


def test_config_problems_are_said_and_the_agent_runs(agent: Agent, zag_home: Path) -> None:
    write_config(zag_home, 'heartbeat_sec = 5\n[usage_limits]\nextra_patterns = ["^Quota hit (at"]\n'
                           'max_attempts = 0\n')
    agent.script([{"out": "fine\n"}, {"exit": 5}])
    result = agent.run("run", "claude")
    assert result.returncode == 5
    assert result.stdout == b"fine\n"
    problems = [line for line in result.stderr.decode().splitlines() if line.startswith("zag: config: ")]
    assert len(problems) == 3, result.stderr
    assert "unknown key 'heartbeat_sec'" in problems[0]
    assert "'^Quota hit (at' is not a valid regex" in problems[1]
    assert "max_attempts must be a whole number of at least 1" in problems[2]
