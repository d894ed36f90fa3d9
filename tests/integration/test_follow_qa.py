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


def _followed(agent: Agent, *actions: dict[str, Any], heartbeat: float = 0.2,
              ) -> tuple[Path, subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    """`zag run claude` playing `actions` (a heartbeat every `heartbeat` s) and `zag listen --latest`
    following it once its log is there: (the log, zag, the listener)."""
    write_config(agent.zag_home, f"heartbeat_secs = {heartbeat}\n")
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
    # 1 s heartbeats: a supervisor slowed down by a loaded machine is not late by 3 of them (+1 s)
    log, zag, listener = _followed(agent, {"wait_file": str(agent.root / "go"), "timeout": 60}, heartbeat=1.0)
    with reaped(zag), reaped(listener):
        for suffix in ("", "-wal", "-shm"):
            (agent.zag_home / f"index.sqlite{suffix}").unlink(missing_ok=True)
        assert agent.run("reindex").returncode == 0
        beats = log.read_bytes().count(b'"heartbeat"')
        # the removed index's last heartbeat is more than 3 intervals (+1 s) old by then
        wait_until(lambda: log.read_bytes().count(b'"heartbeat"') >= beats + 6, 40, message="heartbeats")
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


def test_listen_shows_what_backfill_appended_after_the_sessions_end(tmp_path: Path, zag_home: Path) -> None:
    """The user went on with plain `claude --resume` after the zag run ended; `zag backfill` appends that
    to the zag session's log, after its `session_ended`. `zag events` showed it; `zag listen` (following
    or --no-follow, 'what is written so far') stopped at the end and left it out."""
    rig = L.Rig(tmp_path, zag_home, "claude")
    transcript = L.claude_transcript(rig)
    rig.script([{"append": transcript, "lines": [L.claude_user(rig, "say hi"), L.claude_assistant(rig, "hi there")]},
                {"sleep": 0.5}, {"exit": 0}])
    assert rig.run("run", "claude", "-p", "say hi").returncode == 0
    session = rig.log()[0]["session_id"]
    [path] = (rig.home / ".claude" / "projects").glob("*/*.jsonl")
    later = [L.claude_user(rig, "and then?"), L.claude_assistant(rig, "then this")]
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(line.replace("{session_id}", path.stem) + "\n" for line in later))
    assert rig.run("backfill", "--provider", "claude").returncode == 0
    appended = [event for event in rig.log() if event["source"] == "backfill"]
    assert "then this" in [event.get("content") for event in appended]

    for command in (("listen", session, "--no-follow"), ("listen", session), ("events", session)):
        shown = rig.run(*command)
        assert shown.returncode == 0, shown.stderr.decode()
        assert b"then this" in shown.stdout, (command, shown.stdout.decode())
    raw = rig.run("listen", session, "--json")
    assert raw.stdout == rig.agent.session_log_paths()[0].read_bytes()


def test_json_on_a_terminal_escapes_the_controls_json_leaves_raw(tmp_path: Path, zag_home: Path) -> None:
    """`--json` prints the log's lines, where JSON keeps C1 controls (U+009B is CSI to terminals that
    obey C1 in UTF-8) and bidirectional overrides as raw UTF-8: on a terminal they reached it. There they
    are now JSON escapes (the same JSON); piped, the lines are still the log's bytes unchanged."""
    import pexpect

    rig = L.Rig(tmp_path, zag_home, "claude")
    said = "clear\u009b2J and \u202ereversed\u202c"
    rig.script([{"append": L.claude_transcript(rig), "lines": [L.claude_user(rig, "hi"), L.claude_assistant(rig, said)]},
                {"sleep": 0.5}, {"exit": 0}])
    assert rig.run("run", "claude", "-p", "hi").returncode == 0
    session = rig.log()[0]["session_id"]
    [log] = rig.agent.session_log_paths()
    assert "\u009b".encode() in log.read_bytes()
    for command in (("events", "--json", session), ("listen", "--json", session)):
        piped = rig.run(*command)
        assert piped.stdout == log.read_bytes(), command
        argv = rig.agent.command(*command)
        term = pexpect.spawn(argv[0], argv[1:], env=rig.env(), cwd=str(rig.cwd), timeout=30)
        term.expect(pexpect.EOF)
        term.close()
        shown = term.before.replace(b"\r\n", b"\n")
        assert term.exitstatus == 0, shown
        assert not re.search("[\u0080-\u009f\u202a-\u202e]", shown.decode()), shown
        assert b"\\u009b2J" in shown and b"\\u202ereversed\\u202c" in shown
        assert [json.loads(line) for line in shown.splitlines()] == rig.log()


def test_an_end_followed_by_backfilled_events_is_still_an_end(tmp_path: Path, zag_home: Path) -> None:
    """A run whose supervisor wrote its `session_ended` but not the index's exited (locked at its exit),
    later continued by the user without zag and backfilled (after the end): `zag ps` judged the session
    by its log's last line, a backfilled one, and showed it dead; `zag dismiss --dead` then wrote a second
    `session_ended` over the real exit code. `zag reindex` always read it as exited."""
    import sqlite3

    rig = L.Rig(tmp_path, zag_home, "claude")
    rig.script([{"append": L.claude_transcript(rig), "lines": [L.claude_user(rig, "say hi"),
                                                              L.claude_assistant(rig, "hi there")]}, {"exit": 3}])
    assert rig.run("run", "claude", "-p", "say hi").returncode == 3
    session = rig.log()[0]["session_id"]
    with sqlite3.connect(zag_home / "index.sqlite") as db:  # the supervisor's last index write was lost
        db.execute("UPDATE sessions SET state = 'running', ended_at = NULL, exit_code = NULL WHERE session_id = ?",
                   (session,))
    db.close()
    [path] = (rig.home / ".claude" / "projects").glob("*/*.jsonl")
    with open(path, "a", encoding="utf-8") as handle:
        for line in (L.claude_user(rig, "and then?"), L.claude_assistant(rig, "then this")):
            handle.write(line.replace("{session_id}", path.stem) + "\n")
    assert rig.run("backfill", "--provider", "claude").returncode == 0
    log = rig.log()
    assert log[-1]["source"] == "backfill" and [e["type"] for e in log].count("session_ended") == 1

    for command in (("ps", "--all", "--json"), ("sessions", "--json")):
        [row] = rig.zag_json(*command)
        assert (row["state"], row["exit_code"], row["last_seq"]) == ("exited", 3, log[-1]["seq"]), command
    assert "exited 3" in rig.run("ps", "--all").stdout.decode()
    assert rig.run("ps").stdout == b""
    dismissed = rig.run("dismiss", "--dead", "--json")
    assert dismissed.returncode == 0, dismissed.stderr.decode()
    assert [entry["status"] for entry in json.loads(dismissed.stdout)] == ["already_ended"]
    assert rig.log() == log
    [row] = rig.zag_json("ps", "--all", "--json")
    assert (row["state"], row["exit_code"], row["last_seq"]) == ("exited", 3, log[-1]["seq"])
