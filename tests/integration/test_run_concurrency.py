"""Many `zag run` at once: one valid log each, and no index update lost."""

from __future__ import annotations

from pathlib import Path

from tests.integration.helpers import Agent, assert_valid_log, write_config, write_script

RUNS = 20


def test_twenty_concurrent_runs(agent: Agent, zag_home: Path) -> None:
    write_config(zag_home, "heartbeat_secs = 0.1\n")
    procs = []
    for n in range(RUNS):
        script = write_script(agent.root / f"script-{n}.json",
                              [{"out": "working\n"}, {"sleep": 0.6}, {"out": "done\n"}, {"exit": n % 7}])
        procs.append(agent.start("run", "claude", f"run-{n}", env=agent.env(STANDIN_SCRIPT=str(script))))
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for n, (proc, (out, err)) in enumerate(zip(procs, outputs)):
        assert proc.returncode == n % 7, err
        assert out == b"working\ndone\n"

    logs = agent.session_logs()
    assert len(logs) == RUNS
    by_session = {}
    for events in logs:
        assert_valid_log(events)
        by_session[events[0]["session_id"]] = events

    rows = agent.index_rows()
    assert len(rows) == RUNS
    for row in rows:
        events = by_session[row["session_id"]]
        run_arg = events[0]["argv"][1]
        assert row["state"] == "exited"
        assert row["exit_code"] == events[-1]["exit_code"] == int(run_arg.split("-")[1]) % 7
        assert row["ended_at"] is not None
        assert row["last_seq"] == events[-1]["seq"]
        assert row["last_heartbeat"] is not None
