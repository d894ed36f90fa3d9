"""`zag ps`: which sessions it shows, the derived `dead` state, and its JSON document."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from click.testing import CliRunner

from tests.readside import ZAG_BIN, add_session, gone_pid, live_supervisor, piped_stdout
from zag import paths, states
from zag.cli import cli
from zag.logs import index as index_module
from zag.logs.index import DOC_COLUMNS, Index
from zag.wrapper import liveness


def _ps(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["ps", *args])
    return result.exit_code, result.stdout, result.stderr


def _by_id(documents: list[dict]) -> dict[str, dict]:
    return {doc["session_id"]: doc for doc in documents}


def _fleet() -> dict[str, str]:
    """One session in each situation `zag ps` must tell apart."""
    with Index() as index:
        ids = {
            "running": add_session(index, state=states.RUNNING, exit_code=None, **live_supervisor()),
            "waiting": add_session(index, state=states.WAITING, exit_code=None, resume_at=time.time() + 3600,
                                   **live_supervisor()),
            "exited": add_session(index, state=states.EXITED, exit_code=3, ended_at=time.time()),
            "gone_pid": add_session(index, state=states.RUNNING, exit_code=None,
                                    **{**live_supervisor(), "supervisor_pid": gone_pid()}),
            "reused_pid": add_session(index, state=states.RUNNING, exit_code=None,
                                      **{**live_supervisor(), "supervisor_started": "another-boot:12345"}),
            "silent": add_session(index, state=states.WAITING, exit_code=None,
                                  **{**live_supervisor(heartbeat_secs=1.0), "last_heartbeat": time.time() - 60}),
        }
    return ids


def test_default_shows_live_and_dead_not_exited() -> None:
    ids = _fleet()
    code, out, _ = _ps("--json")
    assert code == 0
    shown = _by_id(json.loads(out))
    assert set(shown) == set(ids.values()) - {ids["exited"]}
    assert shown[ids["running"]]["state"] == states.RUNNING
    assert shown[ids["waiting"]]["state"] == states.WAITING
    for name in ("gone_pid", "reused_pid", "silent"):
        assert shown[ids[name]]["state"] == states.DEAD, name


def test_all_adds_exited_and_json_has_every_field() -> None:
    ids = _fleet()
    code, out, _ = _ps("--all", "--json")
    assert code == 0
    documents = json.loads(out)
    shown = _by_id(documents)
    assert set(shown) == set(ids.values())
    exited = shown[ids["exited"]]
    assert exited["state"] == states.EXITED and exited["exit_code"] == 3
    for doc in documents:
        assert set(doc) == set(DOC_COLUMNS)
        assert len(doc["session_id"]) == 36
        assert doc["argv"] == ["claude", "-p", "fix the test"]
        assert doc["interactive"] is False and doc["backfilled"] is False
    started = [doc["started_at"] for doc in documents]
    assert started == sorted(started, reverse=True)


def test_table_shows_short_ids_states_and_resume_time() -> None:
    ids = _fleet()
    code, out, _ = _ps()
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["ID", "PROVIDER", "STATE"]
    text = "\n".join(lines)
    assert ids["running"][:8] in text and ids["exited"][:8] not in text
    waiting_line = next(line for line in lines if line.startswith(ids["waiting"][:8]))
    assert "waiting →" in waiting_line
    gone_line = next(line for line in lines if line.startswith(ids["gone_pid"][:8]))
    assert " dead " in gone_line
    assert "claude -p 'fix the test'" in text
    assert "\x1b[" not in out  # NO_COLOR (conftest) and not a terminal
    _, all_out, _ = _ps("--all")
    assert "exited 3" in all_out


def test_a_dead_session_whose_zag_still_runs_says_whether_it_is_stopped_or_unresponsive() -> None:
    """No heartbeats makes a session dead (the JSON says so), but the table tells a zag stopped with Ctrl-Z
    (`fg` continues it) and one that runs without beating from a gone one, which `zag resume` continues."""
    stopped = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        os.kill(stopped.pid, signal.SIGSTOP)
        silent = {**live_supervisor(heartbeat_secs=1.0), "last_heartbeat": time.time() - 60}
        deadline = time.monotonic() + 10  # SIGSTOP is delivered asynchronously
        while liveness._process_stopped(stopped.pid) is False and time.monotonic() < deadline:
            time.sleep(0.02)
        with Index() as index:
            ids = {
                "stopped": add_session(index, state=states.RUNNING, exit_code=None,
                                       **{**silent, "supervisor_pid": stopped.pid,
                                          "supervisor_started": liveness.process_start_time(stopped.pid)}),
                "unresponsive": add_session(index, state=states.RUNNING, exit_code=None, **silent),
                "gone": add_session(index, state=states.RUNNING, exit_code=None,
                                    **{**silent, "supervisor_pid": gone_pid()}),
            }
        code, out, _ = _ps()
        assert code == 0
        line = {name: next(row for row in out.splitlines() if row.startswith(ids[name][:8])) for name in ids}
        assert "dead (zag stopped)" in line["stopped"]
        assert "dead (zag unresponsive)" in line["unresponsive"]
        assert " dead " in line["gone"] and "(zag" not in line["gone"]
        assert {doc["state"] for doc in json.loads(_ps("--json")[1])} == {states.DEAD}
    finally:
        stopped.kill()
        stopped.wait(timeout=10)


def test_empty_index() -> None:
    code, out, err = _ps("--json")
    assert (code, out) == (0, "[]\n")
    code, out, err = _ps()
    assert code == 0 and out == "" and "no live sessions" in err


def test_json_follows_index_updates() -> None:
    """The JSON cache the triggers keep must change with every kind of write."""
    with Index() as index:
        session_id = add_session(index, state=states.RUNNING, exit_code=None, **live_supervisor())
        index.heartbeat(session_id, last_seq=17)
        index.update_session(session_id, provider_session_id="prov-9", argv=["claude", "x y"])
    [doc] = json.loads(_ps("--json")[1])
    assert (doc["last_seq"], doc["provider_session_id"], doc["argv"]) == (17, "prov-9", ["claude", "x y"])
    with Index() as index:
        index.update_session(session_id, state=states.EXITED, exit_code=0)
    assert json.loads(_ps("--json")[1]) == []
    assert json.loads(_ps("--all", "--json")[1])[0]["state"] == states.EXITED
    with Index() as index:
        index.delete_all_sessions()
    assert json.loads(_ps("--all", "--json")[1]) == []


def test_json_survives_a_malformed_argv() -> None:
    with Index() as index:
        session_id = add_session(index)
        with index.transaction() as conn:
            conn.execute("UPDATE sessions SET argv = 'not json' WHERE session_id = ?", (session_id,))
    [doc] = json.loads(_ps("--all", "--json")[1])
    assert doc["argv"] is None


def test_index_from_schema_v1_gets_the_cache() -> None:
    """An index written before the JSON cache existed is migrated and listed completely."""
    db = paths.index_db()
    paths.ensure_private_dir(db.parent)
    conn = sqlite3.connect(db)
    conn.executescript(index_module._SCHEMA + "PRAGMA user_version = 1;")
    conn.execute(
        "INSERT INTO sessions (session_id, provider, state, started_at, updated_at, argv, interactive) "
        "VALUES ('11111111-2222-4333-8444-555555555555', 'codex', 'exited', 1.0, 1.0, '[\"codex\"]', 1)"
    )
    conn.commit()
    conn.close()
    [doc] = json.loads(_ps("--all", "--json")[1])
    assert (doc["provider"], doc["argv"], doc["interactive"]) == ("codex", ["codex"], True)


def test_ps_as_a_process_and_help() -> None:
    _fleet()
    done = subprocess.run([str(ZAG_BIN), "ps", "--all", "--json"], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) == 6
    help_text = CliRunner().invoke(cli, ["ps", "--help"]).stdout
    assert "Example:" in help_text and "zag ps" in help_text


def test_force_color_colours_ps_into_a_pipe() -> None:
    _fleet()
    for variable in ("FORCE_COLOR", "CLICOLOR_FORCE"):
        out = piped_stdout(["ps", "--all"], **{variable: "1"})
        assert "\x1b[" in out and "exited 3" in out, variable
    assert "\x1b[" not in piped_stdout(["ps", "--all"])
    assert "\x1b[" not in piped_stdout(["ps", "--all"], FORCE_COLOR="1", NO_COLOR="1")
    assert "\x1b[" not in piped_stdout(["ps", "--all"], CLICOLOR_FORCE="0")


def test_a_session_whose_log_ended_is_not_dead_when_its_supervisor_left_before_the_index_said_so() -> None:
    """A supervisor logs `session_ended`, then writes the index, then exits. `zag ps` read the row before
    the write and checked the pid after the exit: the session showed `dead` for a moment (seen with 40 runs
    ending together), and for good when the index was locked at the exit (the write gave up after 3 s).
    Its log says it ended: it is shown exited (with the log's exit code), and not listed without --all."""
    from tests.readside import started_body, write_log
    from zag.logs import events

    supervisor = {**live_supervisor(), "supervisor_pid": gone_pid()}
    with Index() as index:
        ended = add_session(index, state=states.RUNNING, exit_code=None, **supervisor)
        dead = add_session(index, state=states.WAITING, exit_code=None, **supervisor)
    started = started_body(supervisor_pid=supervisor["supervisor_pid"],
                           supervisor_started=supervisor["supervisor_started"])
    write_log(ended, [started, events.body(events.SESSION_ENDED, exit_code=3, success=False, error=None)])
    write_log(dead, [started])
    for args in (["--json"], ["--all", "--json"]):
        code, out, err = _ps(*args)
        assert code == 0, err
        shown = _by_id(json.loads(out))
        assert shown[dead]["state"] == states.DEAD
        if args == ["--json"]:
            assert ended not in shown
        else:
            assert (shown[ended]["state"], shown[ended]["exit_code"], shown[ended]["last_seq"]) == ("exited", 3, 2)
    code, out, _ = _ps()
    assert code == 0 and dead[:8] in out and ended[:8] not in out
    code, out, _ = _ps("--all")
    assert code == 0 and f"{ended[:8]}" in out and "exited 3" in out
