"""`zag resume SESSION`: a supervisor killed while waiting leaves its schedule in the index (`zag ps`
shows the session dead, `zag usage list` the pending resume); `zag resume` continues the same session
(same log, seq goes on, same index row), waits for the rest of the wait, resumes the agent and verifies.
Also: continuing an ended session, and the refusals."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from tests.integration import limits_rig as L
from tests.integration.helpers import reaped, stopped, types, wait_until
from tests.readside import add_session, live_supervisor
from zag.logs.events import parse_ts
from zag.logs.index import Index


def _check_one_log(events: list[dict], runs: int) -> None:
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert len({e["session_id"] for e in events}) == 1
    starts = [e for e in events if e["type"] == "session_started"]
    assert len(starts) == runs and [s["resumed"] for s in starts] == [False] + [True] * (runs - 1)
    assert events[-1]["type"] == "session_ended"


def test_killed_while_waiting_then_zag_resume_finishes_it(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "claude")
    reset = time.time() + 8
    rig.script(L.claude_headless_hit(rig, reset), L.claude_headless_resumed(rig))
    waiting = rig.killed_while_waiting()
    session_id = waiting["session_id"]
    [row] = rig.zag_json("ps", "--json")
    assert row["session_id"] == session_id and row["state"] == "dead"
    [pending] = rig.zag_json("usage", "list", "--json")
    assert pending["status"] == "pending" and pending["supervisor"] == "dead"
    table = rig.run("ps").stdout.decode()
    assert "dead, resume due" in table

    result = rig.run("resume", session_id[:8])
    assert result.returncode == 0, result.stderr.decode()
    resumed_at = time.time()
    assert resumed_at >= parse_ts(pending["resume_at"])  # waited for the rest of the wait
    first, second = rig.invocations()
    sid = first["argv"][1]
    assert second["argv"] == ["-p", "--resume", sid, "--output-format", "stream-json", "--verbose", "--", "Continue"]
    assert second["cwd"] == str(rig.cwd) and second["env"]["ZAG_SESSION_ID"] == session_id
    events = rig.log()
    _check_one_log(events, runs=2)
    [hit] = L.of_type(events, "usage_limit_hit")
    [resumed] = L.of_type(events, "usage_limit_resumed")
    assert resumed["incident_id"] == hit["incident_id"] == pending["incident_id"] and resumed["attempt"] == 1
    assert types(events).count("session_ended") == 1
    later = [e for e in events if e["type"] == "session_started"][1]
    assert later["supervisor_pid"] != events[0]["supervisor_pid"]
    [row] = rig.agent.index_rows()
    assert (row["session_id"], row["state"], row["exit_code"], row["resumed"]) == (session_id, "exited", 0, True)
    assert row["supervisor_pid"] == later["supervisor_pid"] and row["last_seq"] == events[-1]["seq"]
    assert [r["status"] for r in rig.resume_rows()] == ["done"]
    # the listener and the rebuilt index see the whole story
    listened = rig.run("listen", session_id, "--json", "--no-follow").stdout.decode().splitlines()
    assert [json.loads(line)["seq"] for line in listened] == [e["seq"] for e in events]
    assert rig.run("reindex").returncode == 0
    [rebuilt] = rig.agent.index_rows()
    assert (rebuilt["state"], rebuilt["exit_code"], rebuilt["resumed"]) == ("exited", 0, True)
    assert [r["status"] for r in rig.resume_rows()] == ["done"]


def test_killed_interactive_session_resumed_in_a_terminal(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "claude", config=L.CONFIG.replace("fallback_secs = 3", "fallback_secs = 6"))
    rig.script(
        [{"raw_tty": True}, {"append": L.claude_transcript(rig), "lines": [L.claude_user(rig, "fix the bug")]},
         {"out": "● API Error: Request rejected (429) · This request would exceed your account's rate limit. "
                 "Please try again later.\r\n"}, {"wait_signal": 60}],
        [{"raw_tty": True}, {"out": "╭─ Claude Code ─╮\r\n❯ \r\n  ? for shortcuts\r\n"}, *L.claude_tui_resumed(rig)],
    )
    waiting = rig.killed_while_waiting_in_a_terminal("claude")
    term = rig.spawn("resume", waiting["session_id"][:8])
    try:
        code = L.finish(term)
    finally:
        if term.isalive():
            term.terminate(force=True)
    assert code == 0
    first, second = rig.invocations()
    assert second["argv"] == ["--resume", first["argv"][1]]  # relaunched in a terminal; the message typed
    events = rig.log()
    _check_one_log(events, runs=2)
    [resumed] = L.of_type(events, "usage_limit_resumed")
    assert resumed["attempt"] == 1
    assert [e["content"] for e in L.of_type(events, "assistant_message")] == ["Picking up where I stopped."]


def test_zag_resume_continues_an_ended_session(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "claude")
    rig.script(
        [{"append": L.claude_transcript(rig), "lines": [L.claude_user(rig, "fix the bug"),
                                                       L.claude_assistant(rig, "Done with part one.")]},
         {"exit": 0}],
        L.claude_headless_resumed(rig, "Part two as well."),
    )
    first_run = rig.run("run", "claude", "-p", "fix the bug", "--model", "opus")
    assert first_run.returncode == 0
    [row] = rig.agent.index_rows()
    result = rig.run("resume", row["session_id"])
    assert result.returncode == 0, result.stderr.decode()
    first, second = rig.invocations()
    sid = first["argv"][1]
    assert second["argv"] == ["-p", "--resume", sid, "--model", "opus", "--", "Continue"]
    events = rig.log()
    _check_one_log(events, runs=2)
    assert types(events).count("session_ended") == 2
    assert not [e for e in events if e["type"].startswith("usage_limit")]
    assert [e["content"] for e in L.of_type(events, "assistant_message")] == ["Done with part one.",
                                                                            "Part two as well."]
    [row] = rig.agent.index_rows()
    assert (row["state"], row["exit_code"], row["resumed"]) == ("exited", 0, True)
    # listen reads across both runs, to the last end
    shown = rig.run("listen", row["session_id"], "--no-follow").stdout.decode()
    assert shown.count("started") == 2 and "Part two as well." in shown


def test_refusals(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "claude")
    with Index(zag_home / "index.sqlite") as index:
        live = add_session(index, state="running", exit_code=None, provider_session_id="p-1", cwd=str(rig.cwd),
                           **live_supervisor(heartbeat_secs=600))
        no_id = add_session(index, provider_session_id=None, cwd=str(rig.cwd))
        gone_dir = add_session(index, provider_session_id="p-2", cwd=str(tmp_path / "deleted"))
    result = rig.run("resume", live[:8])
    assert result.returncode == 2 and "still supervised by zag" in result.stderr.decode()
    assert "zag usage list" not in result.stderr.decode()  # nothing is scheduled for it
    result = rig.run("resume", no_id)
    assert result.returncode == 2 and "no claude session id to resume" in result.stderr.decode()
    result = rig.run("resume", gone_dir)
    assert result.returncode == 2 and "no longer exists" in result.stderr.decode()
    result = rig.run("resume", "0123abcd")
    assert result.returncode == 2 and "no session matches" in result.stderr.decode()
    assert rig.invocations() == []
    assert "Traceback" not in result.stderr.decode()


def test_usage_cancel_after_the_supervisor_died_is_logged_and_clears_the_due_resume(tmp_path: Path,
                                                                                   zag_home: Path) -> None:
    """The supervisor is gone, so `zag usage cancel` itself says it in the session's log (the note a live
    supervisor writes), and the session no longer reads `dead, resume due`: live and reindexed agree."""
    rig = L.Rig(tmp_path, zag_home, "claude")
    rig.script(L.claude_headless_hit(rig, time.time() + 600))
    waiting = rig.killed_while_waiting()
    [pending] = rig.zag_json("usage", "list", "--json")
    before = len(rig.log())

    result = rig.run("usage", "cancel", pending["incident_id"][:8])

    assert result.returncode == 0, result.stderr.decode()
    assert b"its supervisor is gone" in result.stdout
    events = rig.log()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    [note] = events[before:]
    assert (note["type"], note["source"]) == ("provider_status", "wrapper")
    assert note["data"] == {"kind": "usage_limit_cancelled", "incident_id": pending["incident_id"],
                            "attempts": 0, "cause": "usage_cancel"}
    assert "dead, resume due" not in rig.run("ps", "--all").stdout.decode()
    live = L.seen_live(rig)
    assert live == ({pending["incident_id"]: ("cancelled", pending["resume_at"])}, ("dead", None))
    assert L.seen_reindexed(rig, tmp_path / "copy") == live
    assert waiting["session_id"] == events[0]["session_id"]


def test_a_silent_but_running_supervisor_is_not_taken_over(tmp_path: Path, zag_home: Path) -> None:
    """A zag stopped while it waits (Ctrl-Z, or a machine just woken from suspend) misses heartbeats and
    `zag ps` shows it dead, but its process runs: `zag resume` is refused (a second supervisor would
    resume the agent too); once it goes on, that zag alone resumes the agent."""
    rig = L.Rig(tmp_path, zag_home, "claude")
    rig.script(L.claude_headless_hit(rig, time.time() + 6), L.claude_headless_resumed(rig))
    with reaped(rig.start("run", "claude", *L.CLAUDE_HEADLESS_ARGS)) as proc:
        waiting = rig.waiting_row(proc)
        with stopped(proc):
            wait_until(lambda: rig.zag_json("ps", "--json")[0]["state"] == "dead", 30, message="zag ps: dead")
            refused = rig.run("resume", waiting["session_id"][:8])
        proc.communicate(timeout=60)
    assert refused.returncode == 2 and f"kill -CONT {proc.pid}" in refused.stderr.decode()
    assert proc.returncode == 0
    assert len(rig.invocations()) == 2
    events = rig.log()
    _check_one_log(events, 1)
    assert types(events).count("usage_limit_resumed") == 1


def test_sigusr2_during_the_wait_of_zag_resume_is_not_kept_for_the_agent(tmp_path: Path, zag_home: Path) -> None:
    """As during `zag run`'s wait: a non-terminating signal with no agent running is dropped, not given
    to the agent `zag resume` starts after the wait (SIGUSR2 killed it at its start)."""
    rig = L.Rig(tmp_path, zag_home, "claude")
    rig.script(L.claude_headless_hit(rig, time.time() + 8), [{"sleep": 0.5}, *L.claude_headless_resumed(rig)])
    waiting = rig.killed_while_waiting()
    proc = rig.signal_while_waiting("resume", waiting["session_id"][:8], signum=signal.SIGUSR2)
    assert proc.returncode == 0
    events = rig.log()
    assert "usage_limit_resume_failed" not in types(events)
    assert types(events).count("usage_limit_resumed") == 1 and len(rig.invocations()) == 2


def _rebuilt_from_the_log(rig: L.Rig) -> None:
    """The index gone (a lost ZAG_HOME/index.sqlite) and rebuilt from the session log alone."""
    for path in rig.agent.zag_home.glob("index.sqlite*"):
        path.unlink()
    result = rig.run("reindex")
    assert result.returncode == 0, result.stderr.decode()


def test_the_agents_exit_code_during_the_wait_survives_a_reindex(tmp_path: Path, zag_home: Path) -> None:
    """The agent exited 1 at its limit; zag was killed while waiting and the index rebuilt from the log:
    `zag resume` then cancelled with `zag usage cancel` still ends with the agent's code, 1 (the code was
    only in the index, and a rebuilt row without one read as 0)."""
    rig = L.Rig(tmp_path, zag_home, "claude")
    rig.script(L.claude_headless_hit(rig, time.time() + 600))
    waiting = rig.killed_while_waiting()
    _rebuilt_from_the_log(rig)
    [row] = rig.zag_json("ps", "--json")
    assert row["exit_code"] == 1
    with reaped(rig.start("resume", waiting["session_id"][:8])) as proc:
        rig.waiting_row(proc)
        [pending] = rig.zag_json("usage", "list", "--json")
        assert rig.run("usage", "cancel", pending["incident_id"][:8]).returncode == 0
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err.decode()
    ended = L.of_type(rig.log(), "session_ended")
    assert [(e["exit_code"], e["success"], e["cancelled"]) for e in ended] == [(1, False, True)]
    assert len(rig.invocations()) == 1


def test_a_relaunched_agent_and_its_exit_survive_a_reindex(tmp_path: Path, zag_home: Path) -> None:
    """The resumed agent hit its limit again and exited 3, zag was killed during the second wait: the index
    rebuilt from the log names that agent's pid and code, as the live index did (it named the first
    agent's pid, and no code)."""
    rig = L.Rig(tmp_path, zag_home, "claude")
    again = [*L.claude_headless_hit(rig, time.time() + 600)[:-1], {"exit": 3}]
    rig.script(L.claude_headless_hit(rig, time.time() + 2), again)
    with reaped(rig.start("run", "claude", *L.CLAUDE_HEADLESS_ARGS)) as proc:
        rig.agent.wait_for_invocation(2, timeout=60)
        wait_until(lambda: len(L.of_type(rig.log(), "usage_limit_hit")) == 2, 60, message="the second hit")
        rig.killed_while_waiting(proc)
    second_pid = rig.invocations()[1]["pid"]
    [live] = rig.zag_json("ps", "--json")
    assert (live["child_pid"], live["exit_code"]) == (second_pid, 3)
    _rebuilt_from_the_log(rig)
    [rebuilt] = rig.zag_json("ps", "--json")
    assert (rebuilt["state"], rebuilt["child_pid"], rebuilt["exit_code"]) == ("dead", second_pid, 3)


def test_killed_during_a_resume_attempt_reads_resume_due_as_zag_resume_will_do(tmp_path: Path,
                                                                              zag_home: Path) -> None:
    """zag SIGKILLed while the resumed agent runs (its incident `resuming`): `zag resume` continues it,
    so `zag ps` (table and --json) and `zag sessions` say `dead, resume due …` as for a zag killed while
    it waited, and a reindex of the log alone says the same."""
    rig = L.Rig(tmp_path, zag_home, "claude")
    rig.script(L.claude_headless_hit(rig, time.time() + 2), [{"wait_signal": 60}], L.claude_headless_resumed(rig))

    def in_attempt() -> bool:
        rows = rig.zag_json("usage", "list", "--json")
        return bool(rows) and rows[0]["status"] == "resuming" and len(rig.invocations()) == 2

    with reaped(rig.start("run", "claude", *L.CLAUDE_HEADLESS_ARGS)) as zag:
        wait_until(in_attempt, 60, interval=0.05, message="the resume attempt running")
        zag.send_signal(signal.SIGKILL)
        zag.wait(timeout=30)
    wait_until(lambda: rig.zag_json("ps", "--json")[0]["state"] == "dead", 30, message="dead session")
    [incident] = rig.zag_json("usage", "list", "--json")
    assert incident["status"] == "resuming"
    [row] = rig.zag_json("ps", "--json")
    assert row["resume_at"] is not None and abs(row["resume_at"] - parse_ts(incident["resume_at"])) < 0.01
    [listed] = rig.zag_json("sessions", "--json")
    assert (listed["state"], listed["resume_at"]) == ("dead", row["resume_at"])
    assert "dead, resume due" in rig.run("ps").stdout.decode()
    assert "dead, resume due" in rig.run("sessions").stdout.decode()
    assert L.seen_reindexed(rig, tmp_path / "copy") == L.seen_live(rig)

    result = rig.run("resume", row["session_id"][:8])
    assert result.returncode == 0, result.stderr.decode()
    assert len(rig.invocations()) == 3
    [row] = rig.zag_json("ps", "--all", "--json")
    assert (row["state"], row["exit_code"], row["resume_at"]) == ("exited", 0, None)
    assert "resume due" not in rig.run("ps", "--all").stdout.decode()
