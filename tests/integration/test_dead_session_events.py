"""The EVENTS a listing shows for a session whose zag was SIGKILLed: what its log holds, not what the
index held at its last heartbeat (the supervisor stores `last_seq` only then)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.helpers import Agent, kill_zag, read_jsonl, wait_until, write_config
from tests.integration.test_live_claude import TS, assistant, user
from zag.providers.claude.homes import encode_cwd


def test_a_killed_sessions_events_are_the_logs_not_the_last_heartbeats(agent: Agent, tmp_path: Path) -> None:
    home = tmp_path / "home"
    transcript = str(home / ".claude" / "projects" / encode_cwd(str(agent.root)) / "{session_id}.jsonl")
    records = [user("{session_id}", "first")] + [assistant("{session_id}", f"reply {n}", f"msg_{n}")
                                                   for n in range(5)]
    agent.script([{"append": transcript, "lines": [line.replace(TS, "{now}") for line in records]},
                  {"out": "ready\n"}, {"wait_signal": 60}])
    write_config(agent.zag_home, "heartbeat_secs = 3600\n")   # no heartbeat before the kill, however slow
    env = agent.env(HOME=str(home))
    proc = agent.start("run", "claude", "-p", "x", env=env, start_new_session=True)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    [log] = wait_until(agent.session_log_paths, 10, message="session log")
    wait_until(lambda: sum(e["type"] == "assistant_message" for e in read_jsonl(log)) == 5, 15,
               message="the transcript in the log")
    wait_until(lambda: agent.index_row(log.stem) is not None, 15, message="the session's row in the index")
    kill_zag(proc, agent.wait_for_invocation()["pid"], timeout=15)
    logged = read_jsonl(log)[-1]["seq"]
    assert logged > 6 and agent.index_row(log.stem)["last_seq"] < logged   # the index's is stale

    for command in (("sessions", "--json"), ("ps", "--json"), ("ps", "--all", "--json")):
        result = agent.run(*command, env=env)
        [row] = json.loads(result.stdout)
        assert (row["state"], row["last_seq"]) == ("dead", logged), command
    table = agent.run("sessions", env=env).stdout.decode().splitlines()
    column = table[0].index(" EVENTS ") + 1
    assert table[1][column:].split()[0] == str(logged), table
