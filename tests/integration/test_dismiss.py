"""`zag dismiss`: a real `zag run` of the stand-in, SIGKILLed (dead), then dismissed: the log says it (so a
reindex keeps it ended), `zag ps` stops listing it, a torn last line is repaired first, a zag that is only
stopped is refused, a resume due is cancelled, and `zag resume` still continues a dismissed session."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration import limits_rig as L
from tests.integration.helpers import (Agent, assert_valid_log, kill_quietly, kill_zag, read_jsonl, reaped, stopped,
                                       types, wait_until, write_config)
from tests.integration.test_completions import _bash_complete, fleet  # noqa: F401 - `fleet` is a fixture
from tests.readside import add_session, live_supervisor
from zag import states
from zag.logs.index import Index


def _json(agent: Agent, *args: str, home: Path | None = None) -> object:
    env = agent.env(ZAG_HOME=str(home)) if home else agent.env()
    result = agent.run(*args, env=env)
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def _start(agent: Agent) -> tuple[subprocess.Popen[bytes], str, Path]:
    """`zag run claude` of a stand-in that waits; returns zag, the session id and its log, once it beats."""
    write_config(agent.zag_home, "heartbeat_secs = 0.2\n")
    agent.script([{"out": "ready\n"}, {"wait_signal": 60}])
    proc = agent.start("run", "claude", "-p", "work overnight", start_new_session=True)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    [log] = wait_until(agent.session_log_paths, 10, message="session log")
    wait_until(lambda: any(e["type"] == "heartbeat" for e in read_jsonl(log)), 10, message="a heartbeat")
    return proc, log.stem, log


def _killed(agent: Agent) -> tuple[str, Path]:
    """A session whose zag was SIGKILLed (its agent ended by the watchdog): `zag ps` shows it dead."""
    proc, session_id, log = _start(agent)
    kill_zag(proc, agent.wait_for_invocation()["pid"])
    [row] = _json(agent, "ps", "--json")
    assert (row["session_id"], row["state"]) == (session_id, "dead")
    return session_id, log


def _in_fresh_home(agent: Agent, log: Path, home: Path) -> None:
    """The log alone, copied into an empty ZAG_HOME and reindexed there."""
    (home / "sessions").mkdir(parents=True)
    shutil.copyfile(log, home / "sessions" / log.name)
    assert agent.run("reindex", env=agent.env(ZAG_HOME=str(home))).returncode == 0


def test_a_killed_session_is_dismissed_and_stays_so_after_reindex(agent: Agent, tmp_path: Path) -> None:
    session_id, log = _killed(agent)
    before = read_jsonl(log)

    result = agent.run("dismiss", session_id[:8])

    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode() == f"dismissed session {session_id[:8]} (claude)\n"
    events = read_jsonl(log)
    assert events[:-1] == before
    assert_valid_log(events)
    ended = events[-1]
    assert (ended["type"], ended["reason"], ended["exit_code"], ended["success"]) == ("session_ended", "dismissed",
                                                                                     None, False)
    assert _json(agent, "ps", "--json") == []
    [row] = _json(agent, "ps", "--all", "--json")
    assert (row["state"], row["end_reason"], row["exit_code"], row["last_seq"]) == ("exited", "dismissed", None,
                                                                                   ended["seq"])
    assert "dismissed" in agent.run("ps", "--all").stdout.decode()
    assert [s["session_id"] for s in _json(agent, "sessions", "--json")] == [session_id]
    shown = agent.run("events", session_id[:8]).stdout.decode()
    assert "dismissed with `zag dismiss`: its supervisor went away without ending the session" in shown

    assert agent.run("reindex").returncode == 0
    assert _json(agent, "ps", "--json") == []
    [rebuilt] = _json(agent, "ps", "--all", "--json")
    assert (rebuilt["state"], rebuilt["end_reason"], rebuilt["exit_code"]) == ("exited", "dismissed", None)
    _in_fresh_home(agent, log, tmp_path / "copy")
    [copied] = _json(agent, "ps", "--all", "--json", home=tmp_path / "copy")
    assert (copied["state"], copied["end_reason"]) == ("exited", "dismissed")

    again = agent.run("dismiss", session_id)
    assert again.returncode == 2 and b"already ended (dismissed)" in again.stderr
    assert read_jsonl(log) == events


@pytest.mark.parametrize("tail", [b'{"seq": 999, "ts": "2026-12-07T03:1', b"\x00\x00\x00\x00"],
                         ids=["half-a-line", "zeros"])
def test_a_torn_last_line_is_not_glued_to(agent: Agent, tail: bytes) -> None:
    """A writer killed mid-line (or a machine that died before the data reached the disk) leaves a torn
    last line; the dismissal's line starts on a line of its own and continues the seq after the last
    whole line."""
    session_id, log = _killed(agent)
    whole = read_jsonl(log)
    with open(log, "ab") as handle:
        handle.write(tail)

    result = agent.run("dismiss", session_id)

    assert result.returncode == 0, result.stderr.decode()
    data = log.read_bytes()
    assert data.endswith(b"\n") and tail not in data
    events = [json.loads(line) for line in data.splitlines()]  # every line whole
    assert events[:-1] == whole
    assert_valid_log(events)
    assert events[-1]["reason"] == "dismissed"
    report = _json(agent, "reindex", "--json")
    assert report["bad_lines"] == 0 and report["torn_tails"] == 0
    [row] = _json(agent, "ps", "--all", "--json")
    assert (row["state"], row["end_reason"]) == ("exited", "dismissed")


def test_a_stopped_zag_is_not_dismissed(agent: Agent) -> None:
    """Ctrl-Z / SIGSTOP: `zag ps` calls it dead (no heartbeats), but it still runs and would write on after a
    dismissal: refused, by name and by --dead; once it goes on it ends the session itself."""
    proc, session_id, log = _start(agent)
    child = agent.wait_for_invocation()["pid"]
    try:
        with reaped(proc):
            with stopped(proc):
                wait_until(lambda: _json(agent, "ps", "--json")[0]["state"] == "dead", 30, message="zag ps: dead")
                before = log.read_bytes()
                named = agent.run("dismiss", session_id[:8])
                every = agent.run("dismiss", "--dead", "--json")
                after = log.read_bytes()
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=30)
    finally:
        kill_quietly(child)
    assert named.returncode == 2, named.stderr.decode()
    assert f"kill -CONT {proc.pid}" in named.stderr.decode()
    assert every.returncode == 0 and "still runs" in every.stderr.decode()
    assert [r["status"] for r in json.loads(every.stdout)] == ["skipped"]
    assert after == before
    events = read_jsonl(log)
    assert_valid_log(events)
    assert events[-1]["signal"] == "SIGTERM" and "reason" not in events[-1]  # ended by its own zag
    [row] = _json(agent, "ps", "--all", "--json")
    assert (row["state"], row["end_reason"]) == ("exited", None)


def test_dismissing_a_session_with_a_resume_due_cancels_it_and_resume_still_continues_it(
        tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "claude")
    rig.script(L.claude_headless_hit(rig, time.time() + 600), L.claude_headless_resumed(rig))
    waiting = rig.killed_while_waiting()
    session_id = waiting["session_id"]
    assert "dead, resume due" in rig.run("ps").stdout.decode()
    [pending] = rig.zag_json("usage", "list", "--json")

    result = rig.run("dismiss", "--dead")

    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode() == (f"dismissed session {session_id[:8]} (claude); cancelled its scheduled "
                                      f"resume {pending['incident_id'][:8]}\n")
    events = rig.log()
    note, ended = events[-2:]
    assert note["data"] == {"kind": "usage_limit_cancelled", "incident_id": pending["incident_id"],
                            "attempts": 0, "cause": "dismissed"}
    assert ended["reason"] == "dismissed"
    assert rig.zag_json("ps", "--json") == [] and rig.zag_json("usage", "list", "--json") == []
    live = L.seen_live(rig)
    assert live == ({pending["incident_id"]: ("cancelled", pending["resume_at"])}, ("exited", None))
    assert L.seen_reindexed(rig, tmp_path / "copy") == live
    cancel = rig.run("usage", "cancel", pending["incident_id"][:8])
    assert cancel.returncode == 2 and b"already cancelled" in cancel.stderr

    # a dismissed session is an ended one: `zag resume` continues it at once (no wait: nothing is due)
    resumed = rig.run("resume", session_id[:8])
    assert resumed.returncode == 0, resumed.stderr.decode()
    first, second = rig.invocations()
    assert second["argv"][:3] == ["-p", "--resume", first["argv"][1]] and second["argv"][-1] == "Continue"
    events = rig.log()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert types(events).count("session_started") == 2 and events[-1]["type"] == "session_ended"
    assert "reason" not in events[-1] and events[-1]["exit_code"] == 0
    [row] = rig.zag_json("ps", "--all", "--json")
    assert (row["state"], row["exit_code"], row["end_reason"]) == ("exited", 0, None)


def test_completion_offers_the_dead_sessions_a_dismiss_would_take(fleet: dict[str, str]) -> None:  # noqa: F811
    with Index() as index:
        silent = add_session(index, session_id="abc55555-0000-4000-8000-000000000004", state=states.RUNNING,
                             exit_code=None, **{**live_supervisor(), "last_heartbeat": time.time() - 3600})
    assert _bash_complete(["zag", "dis"]) == ["dismiss"]
    assert _bash_complete(["zag", "dismiss", "abc"]) == [fleet["dead"]]
    assert silent not in _bash_complete(["zag", "dismiss", ""])
    assert _bash_complete(["zag", "dismiss", "--d"]) == ["--dead"]
