"""QA of following sessions: `zag listen`, `zag events`, `zag sessions` against real `zag run`s of the
stand-in agent and the logs they leave."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from tests.integration import limits_rig as L
from tests.integration.helpers import Agent, kill_zag, reaped, wait_until, write_config

CONTROL = re.compile(rb"[\x00-\x09\x0b-\x1f\x7f]")  # anything but the newline ending each line


def test_a_transcripts_timestamp_cannot_reach_the_terminal(tmp_path: Path, zag_home: Path) -> None:
    """A claude record whose `timestamp` is a terminal-title escape shaped like zag's own format (24
    characters, `T`, `.`, `Z` in place) was logged as the event's `ts` unchanged, and `zag events` /
    `zag listen` printed it raw (it could not be read as a time): the agent set the user's terminal title."""
    rig = L.Rig(tmp_path, zag_home, "claude")
    evil = "\x1b]2;owned\x07T12:00:00.000Z"
    answer = L.claude_assistant(rig, "hello").replace('"{now}"', json.dumps(evil))
    rig.script([{"append": L.claude_transcript(rig), "lines": [L.claude_user(rig, "hi"), answer]},
                {"sleep": 0.5}, {"exit": 0}])
    assert rig.run("run", "claude", "-p", "hi").returncode == 0

    log = rig.log()
    [said] = [event for event in log if event["type"] == "assistant_message"]
    assert said["content"] == "hello"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", said["ts"]), said["ts"]
    session = log[0]["session_id"]
    for command in (("events", session), ("listen", session, "--no-follow")):
        shown = rig.run(*command)
        assert shown.returncode == 0, shown.stderr.decode()
        assert b"hello" in shown.stdout and not CONTROL.search(shown.stdout), shown.stdout


def _followed(agent: Agent, *actions: dict[str, Any]) -> tuple[Path, subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    """`zag run claude` playing `actions` (heartbeats every 0.2 s) and `zag listen --latest` following it
    once its log is there: (the log, zag, the listener)."""
    write_config(agent.zag_home, "heartbeat_secs = 0.2\n")
    agent.script([{"out": "hi\n"}, *actions, {"exit": 0}])
    zag = listener = agent.start("run", "claude", "-p", "x")
    try:
        [log] = wait_until(agent.session_log_paths, 20, message="the session log")
        listener = agent.start("listen", "--latest")
        wait_until(lambda: len(log.read_bytes().splitlines()) >= 3, 20, message="a heartbeat")
    except BaseException:
        for proc in {zag, listener}:
            proc.kill()
            proc.communicate(timeout=10)
        raise
    return log, zag, listener


def test_a_log_removed_while_listening_ends_as_the_session_did(agent: Agent) -> None:
    """The log deleted under `zag listen` (zag writes on into it): the listener read the session's end
    from it, then failed with 'has no log … (its state: None)', exit 1."""
    log, zag, listener = _followed(agent, {"wait_file": str(agent.root / "go"), "timeout": 20})
    with reaped(zag), reaped(listener):
        log.unlink()
        (agent.root / "go").touch()
        assert zag.wait(30) == 0
        out, err = listener.communicate(timeout=30)
    assert listener.returncode == 0, err.decode()
    assert b" ended " in out and b"exit 0" in out.splitlines()[-1]
    assert b"None" not in err


def test_sessions_with_a_limit_larger_than_sqlite_takes_lists_them_all(agent: Agent) -> None:
    """`zag sessions --limit 99999999999999999999` printed an OverflowError traceback (SQLite integers are
    64-bit), in the table and in --json."""
    agent.script([{"exit": 0}])
    assert agent.run("run", "claude", "-p", "x").returncode == 0
    huge = str(2**64)
    table = agent.run("sessions", "--limit", huge)
    assert table.returncode == 0 and table.stderr == b"", table.stderr.decode()
    assert len(table.stdout.splitlines()) == 2
    listed = agent.run("sessions", "--json", "--limit", huge)
    assert listed.returncode == 0, listed.stderr.decode()
    assert len(json.loads(listed.stdout)) == 1


def test_a_listener_reads_the_index_that_replaced_the_one_it_opened(agent: Agent) -> None:
    """The index removed and rebuilt with `zag reindex` while `zag listen` follows a running session: the
    supervisor writes its heartbeats to the new index, the listener went on reading the removed one and
    said 'no heartbeat from its supervisor … (stopped, or the machine just woke up?)'."""
    log, zag, listener = _followed(agent, {"wait_file": str(agent.root / "go"), "timeout": 30})
    with reaped(zag), reaped(listener):
        for suffix in ("", "-wal", "-shm"):
            (agent.zag_home / f"index.sqlite{suffix}").unlink(missing_ok=True)
        assert agent.run("reindex").returncode == 0
        beats = log.read_bytes().count(b'"heartbeat"')
        # the removed index's last heartbeat is more than 3 intervals (+1 s) old by then
        wait_until(lambda: log.read_bytes().count(b'"heartbeat"') >= beats + 15, 30, message="heartbeats")
        (agent.root / "go").touch()
        assert zag.wait(30) == 0
        out, err = listener.communicate(timeout=30)
    assert listener.returncode == 0, err.decode()
    assert b"exit 0" in out.splitlines()[-1]
    assert err == b"", err.decode()


def test_a_deeply_nested_tool_output_does_not_end_the_listener(tmp_path: Path, zag_home: Path) -> None:
    """A claude tool_result whose content is 450 lists deep (an MCP server's answer) is logged whole;
    `zag events` and `zag listen` died on it with a RecursionError traceback, exit 1."""
    rig = L.Rig(tmp_path, zag_home, "claude")
    call = json.loads(L.claude_assistant(rig, "-"))
    call["message"]["content"] = [{"type": "tool_use", "id": "toolu_1", "name": "mcp__deep", "input": {"q": 1}}]
    result = json.loads(L.claude_user(rig, "-"))
    result["message"]["content"] = [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "@"}]
    deep = "[" * 450 + '{"type":"text","text":"inside"}' + "]" * 450
    rig.script([{"append": L.claude_transcript(rig), "lines": [
        L.claude_user(rig, "hi"), json.dumps(call), json.dumps(result).replace('"@"', deep),
        L.claude_assistant(rig, "after")]}, {"sleep": 0.5}, {"exit": 0}])
    assert rig.run("run", "claude", "-p", "hi").returncode == 0
    session = rig.log()[0]["session_id"]
    assert "tool_result" in [event["type"] for event in rig.log()]
    for command in (("events", session), ("listen", session)):
        shown = rig.run(*command)
        assert shown.returncode == 0, shown.stderr.decode()[-500:]
        assert b"ok: inside" in shown.stdout and b" after" in shown.stdout


def test_a_log_line_nested_too_deeply_to_decode_is_skipped_by_every_reader(agent: Agent) -> None:
    """A line 3000 lists deep in a dead session's log (damage, or a hand edit): msgspec and json raise
    RecursionError there, not a decode error, and `zag listen`, `zag events`, `zag reindex`, `zag ps`
    and `zag sessions` (which read a dead session's last line) died with a traceback."""
    agent.script([{"out": "ready\n"}, {"wait_signal": 60}])
    write_config(agent.zag_home, "heartbeat_secs = 3600\n")
    proc = agent.start("run", "claude", "-p", "x", start_new_session=True)
    with reaped(proc):
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        [log] = wait_until(agent.session_log_paths, 10, message="session log")
        wait_until(lambda: agent.index_row(log.stem) is not None, 15, message="the session's row")
        kill_zag(proc, agent.wait_for_invocation()["pid"], timeout=15)
    last = json.loads(log.read_bytes().splitlines()[-1])
    deep = json.dumps({**last, "seq": last["seq"] + 1, "type": "provider_status", "data": "@"})
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(deep.replace('"@"', "[" * 3000 + "]" * 3000) + "\n")

    for command in (("ps",), ("sessions",), ("ps", "--json"), ("events", log.stem), ("listen", log.stem),
                    ("reindex",), ("sessions", "--json")):
        result = agent.run(*command)
        assert b"Traceback" not in result.stderr, (command, result.stderr.decode()[-800:])
        assert result.returncode == (1 if command[0] == "listen" else 0), (command, result.stderr.decode())
    assert json.loads(agent.run("sessions", "--json").stdout)[0]["state"] == "dead"
