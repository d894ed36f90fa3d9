"""`zag sessions`, `zag events`, and how a SESSION argument is resolved (prefixes, errors: exit 2)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.readside import ZAG_BIN, add_session, piped_stdout, started_body, transcript, write_log
from zag import states
from zag.cli import cli
from zag.logs import events
from zag.logs.index import DOC_COLUMNS, Index
from zag.logs.writer import SessionLogWriter


def _zag(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


# --- zag sessions ----------------------------------------------------------------------------------
def _three() -> list[str]:
    now = time.time()
    with Index() as index:
        return [
            add_session(index, provider="claude", started_at=now - 300, ended_at=now - 200, last_seq=12,
                        provider_session_id="claude-prov"),
            add_session(index, provider="codex", started_at=now - 200, backfilled=True, argv=None, last_seq=40),
            add_session(index, provider="claude", started_at=now - 100, state=states.EXITED, exit_code=1,
                        resumed=True, interactive=True, model="sonnet"),
        ]


def test_sessions_newest_first_with_flags_and_counts() -> None:
    oldest, backfilled, newest = _three()
    code, out, _ = _zag("sessions")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["ID", "PROVIDER", "FLAGS", "STATE", "STARTED"]
    assert [line[:8] for line in lines[1:]] == [newest[:8], backfilled[:8], oldest[:8]]
    assert " RI " in lines[1] and "exited 1" in lines[1] and "sonnet" in lines[1]
    assert " B " in lines[2] and " 40 " in lines[2]
    assert "claude-prov" in lines[3] and " 12 " in lines[3] and "1m" in lines[3]  # took 100 s


def test_sessions_filters_and_json() -> None:
    oldest, backfilled, newest = _three()
    code, out, _ = _zag("sessions", "--json")
    documents = json.loads(out)
    assert [doc["session_id"] for doc in documents] == [newest, backfilled, oldest]
    assert all(set(doc) == set(DOC_COLUMNS) for doc in documents)
    assert documents[1]["backfilled"] is True and documents[1]["argv"] is None
    assert documents[0]["resumed"] is True and documents[0]["exit_code"] == 1
    _, out, _ = _zag("sessions", "--provider", "claude", "--json")
    assert [doc["session_id"] for doc in json.loads(out)] == [newest, oldest]
    _, out, _ = _zag("sessions", "--limit", "1", "--json")
    assert [doc["session_id"] for doc in json.loads(out)] == [newest]
    _, out, _ = _zag("sessions", "--provider", "codex", "--limit", "1")
    assert backfilled[:8] in out and newest[:8] not in out


def test_sessions_state_is_effective() -> None:
    with Index() as index:
        session_id = add_session(index, state=states.RUNNING, supervisor_pid=1, supervisor_started="nope",
                                 hostname=None, exit_code=None)
    [doc] = json.loads(_zag("sessions", "--json")[1])
    assert doc["session_id"] == session_id and doc["state"] == states.DEAD


def test_sessions_rejects_bad_options() -> None:
    code, _, err = _zag("sessions", "--provider", "vim")
    assert code == 2 and "vim" in err
    code, _, _ = _zag("sessions", "--limit", "0")
    assert code == 2


def test_sessions_empty() -> None:
    assert _zag("sessions", "--json")[:2] == (0, "[]\n")
    code, out, err = _zag("sessions")
    assert code == 0 and out == "" and "no sessions yet" in err


# --- zag events -----------------------------------------------------------------------------------
def _logged_session() -> tuple[str, list[bytes]]:
    """A session with a log of every common kind of event; returns its id and the log's lines."""
    with Index() as index:
        session_id = add_session(index)
    bodies = [started_body(), *transcript(), events.body(events.HEARTBEAT, interval_secs=10),
              events.body(events.SESSION_ENDED, exit_code=0, success=True, error=None)]
    path = write_log(session_id, bodies)
    return session_id, path.read_bytes().splitlines(keepends=True)


def test_events_render_every_event_in_order() -> None:
    session_id, lines = _logged_session()
    code, out, _ = _zag("events", session_id[:6])
    assert code == 0
    rendered = out.splitlines()
    assert len(rendered) == len(lines) == 8
    assert "started" in rendered[0] and "fix the test" in rendered[0]
    assert "Bash [shell] pytest -q" in rendered[3]
    assert "failed: 1 failed" in rendered[4]
    assert "exit 0" in rendered[-1]
    assert "\x1b[" not in out


def test_events_json_is_the_raw_lines() -> None:
    session_id, lines = _logged_session()
    code, out, _ = _zag("events", session_id, "--json")
    assert code == 0
    assert out.encode() == b"".join(lines)


@pytest.mark.parametrize("type_args", [
    ["--type", "tool_call,tool_result"],
    ["--type", "tool_call", "-t", "tool_result"],
    ["--type", " tool_call , tool_result "],
])
def test_events_type_filter(type_args: list[str]) -> None:
    session_id, _ = _logged_session()
    code, out, _ = _zag("events", session_id, "--json", *type_args)
    assert code == 0
    assert [json.loads(line)["type"] for line in out.splitlines()] == ["tool_call", "tool_result"]


def test_events_unknown_type_is_exit_2() -> None:
    session_id, _ = _logged_session()
    code, out, err = _zag("events", session_id, "--type", "tool_call,toolcall")
    assert code == 2 and out == ""
    assert err.startswith("zag: unknown event type toolcall") and len(err.splitlines()) == 1


def test_events_skip_garbage_and_torn_lines() -> None:
    session_id, lines = _logged_session()
    with Index() as index:
        path = index.get_session(session_id)["log_path"]
    with open(path, "ab") as handle:
        handle.write(b"this is not json\n")
        handle.write(b'{"seq": 10, "type": "user_message", "content": "half wri')
    code, out, err = _zag("events", session_id, "--json")
    assert code == 0
    assert out.encode() == b"".join(lines)
    assert "skipped 1 unreadable line" in err


def test_events_without_a_log_is_a_clear_error() -> None:
    with Index() as index:
        session_id = add_session(index)
    code, _, err = _zag("events", session_id)
    assert code == 1 and "has no log" in err and "Traceback" not in err


# --- naming a session -----------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["events"], ["listen", "--no-follow"]])
def test_prefix_errors_are_one_line_exit_2(command: list[str]) -> None:
    with Index() as index:
        add_session(index, session_id="abcdef01-0000-4000-8000-000000000001")
        add_session(index, session_id="abcdef02-0000-4000-8000-000000000002")
    for text, message in [
        ("abcdef0", "matches several sessions"),
        ("ffff", "no session matches"),
        ("../etc/passwd", "is not a session id"),
        ("abc/def", "is not a session id"),
        ("", "is not a session id"),
    ]:
        code, out, err = _zag(*command, text)
        assert code == 2, (text, err)
        assert out == ""
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err


def test_unique_prefix_resolves_in_a_real_process() -> None:
    with Index() as index:
        session_id = add_session(index, session_id="abcdef01-0000-4000-8000-000000000001")
        add_session(index, session_id="abcdef02-0000-4000-8000-000000000002")
    write_log(session_id, [started_body()])
    done = subprocess.run([str(ZAG_BIN), "events", "ABCDEF01", "--json"], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["session_id"] == session_id
    bad = subprocess.run([str(ZAG_BIN), "events", "abcdef0"], capture_output=True, timeout=60)
    assert bad.returncode == 2 and bad.stdout == b""
    assert bad.stderr.decode().count("\n") == 1 and b"Traceback" not in bad.stderr


def test_events_into_a_closed_pipe_is_quiet() -> None:
    session_id, _ = _logged_session()
    with Index() as index:
        path = index.get_session(session_id)["log_path"]
    writer_bodies = [{"type": events.USER_MESSAGE, "content": "x" * 200} for _ in range(3000)]
    write_log(session_id, writer_bodies)
    assert path
    done = subprocess.run(f"'{ZAG_BIN}' events {session_id} | head -c 100 >/dev/null", shell=True,
                          capture_output=True, timeout=60)
    assert b"Traceback" not in done.stderr and b"Exception ignored" not in done.stderr, done.stderr


def test_help_has_examples() -> None:
    for command in (["sessions"], ["events"], [], ["reindex"], ["completions"], ["listen"], ["ps"]):
        code, out, _ = _zag(*command, "--help")
        assert code == 0 and "Example" in out, command
    code, out, _ = _zag("--version")
    assert code == 0 and out.startswith("zag, version ")


# --- colour, empty listings, logs of a copied ZAG_HOME ----------------------------------------------
def test_force_color_colours_sessions_into_a_pipe() -> None:
    _three()
    for variable in ("FORCE_COLOR", "CLICOLOR_FORCE"):
        out = piped_stdout(["sessions"], **{variable: "1"})
        assert "\x1b[" in out and "codex" in out, variable
    assert "\x1b[" not in piped_stdout(["sessions"])
    assert "\x1b[" not in piped_stdout(["sessions"], CLICOLOR_FORCE="1", NO_COLOR="1")


def test_sessions_of_a_provider_with_none_says_so() -> None:
    _three()  # claude and codex sessions, no gemini one
    code, out, err = _zag("sessions", "--provider", "gemini")
    assert code == 0 and out == ""
    assert "no gemini sessions" in err and "zag backfill --provider gemini" in err
    assert "yet" not in err


def test_events_read_the_log_of_the_current_home_after_a_copy(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from zag import paths

    session_id, lines = _logged_session()
    old_home = paths.home()
    copy = tmp_path / "elsewhere"
    shutil.copytree(old_home, copy)
    write_log(session_id, [{"type": events.USER_MESSAGE, "content": "only in the old copy"}])
    monkeypatch.setenv("ZAG_HOME", str(copy))
    for command in (["events", session_id, "--json"], ["listen", "--no-follow", "--json", session_id]):
        code, out, err = _zag(*command)
        assert code == 0, err
        assert out.encode() == b"".join(lines), command
    # the recorded path is still used when the current home has no log of that name
    (copy / "sessions" / f"{session_id}.jsonl").unlink()
    code, out, _ = _zag("events", session_id, "--json")
    assert code == 0 and "only in the old copy" in out


def test_an_empty_index_with_logs_on_disk_points_to_reindex() -> None:
    """The index was deleted (or replaced) while logs remain: `sessions` and `ps --all` say so."""
    runner = CliRunner()
    assert "no sessions yet" in runner.invoke(cli, ["sessions"]).stderr
    write_log("11111111-2222-4333-8444-555555555555", [started_body()])
    for command in (["sessions"], ["ps", "--all"]):
        result = runner.invoke(cli, command)
        assert result.exit_code == 0
        assert "1 session log(s) are on disk: `zag reindex` rebuilds the index" in result.stderr, command
    assert "zag ps --all" in runner.invoke(cli, ["ps"]).stderr  # live sessions only: no hint about logs


def test_a_session_whose_log_is_on_disk_but_not_in_the_index(tmp_path: Path) -> None:
    """The index was lost or replaced: `zag events`/`zag listen` on a session whose log is still there say
    so and point at `zag reindex` (they said "no session matches" / "no sessions yet")."""
    session_id = "3c047e5f-a7f1-4692-bc9d-8dacce382009"
    with SessionLogWriter(session_id, "claude") as writer:
        writer.write(events.body(events.SESSION_STARTED, argv=["claude"]))
    with Index():
        pass  # an empty index
    for args in (["events", session_id], ["listen", "3c04", "--no-follow"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2
        assert f"no session in the index matches '{args[1]}', but its log is on disk" in result.output
        assert "`zag reindex`" in result.output
    result = CliRunner().invoke(cli, ["listen", "--latest"])
    assert result.exit_code == 2 and "1 session log(s) are on disk: `zag reindex`" in result.output
    result = CliRunner().invoke(cli, ["events", "0000"])
    assert result.exit_code == 2 and "reindex" not in result.output


def test_latest_is_the_newest_live_session_then_the_newest_zag_ran() -> None:
    """`zag listen --latest` after `zag resume` of an older session follows that one (it picked the newest
    start, an ended session), and a backfilled session that started later is no live one either; a
    session whose supervisor went silent (dead) is not live. Without live ones: the newest zag ran."""
    now = time.time()
    with Index() as index:
        imported = add_session(index, started_at=now - 10, backfilled=True)
        assert index.latest_session_id(now) == imported
        ended = add_session(index, started_at=now - 100)
        assert index.latest_session_id(now) == ended
        dead = add_session(index, started_at=now - 50, state=states.RUNNING, last_heartbeat=now - 45,
                           heartbeat_secs=10)  # silent for 4.5 heartbeats: the newest zag ran, not live
        assert index.latest_session_id(now) == dead
        resumed = add_session(index, started_at=now - 3600, state=states.RUNNING, last_heartbeat=now - 2,
                              heartbeat_secs=10, resumed=True)
        assert index.latest_session_id(now) == resumed
        waiting = add_session(index, started_at=now - 1800, state=states.WAITING, last_heartbeat=now - 5,
                              heartbeat_secs=10)
        assert index.latest_session_id(now) == waiting
    result = CliRunner().invoke(cli, ["listen", "--latest", "--no-follow", "--json"])
    assert result.exit_code in (0, 1), result.output  # no log on disk for these rows
    assert waiting in result.output or waiting[:8] in result.output
