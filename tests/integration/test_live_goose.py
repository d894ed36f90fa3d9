"""Following a running goose's session: the stand-in agent writes rows into a schema-13 `sessions.db`
under a temporary GOOSE_PATH_ROOT (with delays, a second goose's session beside it, and a compaction that
deletes and re-inserts every row) while a `LiveSession` polls it; then the same under `zag run goose`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.goose import gooselib as gl
from tests.integration.helpers import STANDIN, read_jsonl, wait_until, write_script
from zag.logs import events
from zag.providers.base import LaunchContext, LaunchPlan
from zag.providers.goose import PROVIDER

DEADLINE = 20.0
SID = "20251108_2"
OTHER = "20251108_1"
ZAG_ID = "5b0e3a52-4f2c-4d8e-9f10-0a1b2c3d4e5f"


# --- goose's writes as literal SQL for the stand-in's `sqlite` action ---------------------------------------
def lit(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def create_session_sql(session_id: str, name: str, cwd: str, *, user_set_name: bool = True) -> str:
    """goose's create_session (plus the provider/model it records once the agent starts)."""
    stamp = gl.sql_time(time.time())
    config = json.dumps({"model_name": "claude-sonnet-4-5", "context_limit": 200000})
    values = [lit(session_id), lit(name), lit(user_set_name), "'user'", lit(cwd), "'{}'", "'auto'", lit(stamp),
              lit(stamp), lit("anthropic"), lit(config)]
    return ("INSERT INTO sessions (id, name, user_set_name, session_type, working_dir, extension_data, goose_mode, "
            f"created_at, updated_at, provider_name, model_config_json) VALUES ({', '.join(values)});")


def insert_sql(session_id: str, message: dict[str, Any]) -> str:
    values = ", ".join(lit(v) for v in (
        message.get("message_id"), session_id, message["role"], json.dumps(message["content"]), message["created"],
        json.dumps(message.get("metadata") or {"userVisible": True, "agentVisible": True})))
    return (f"INSERT INTO messages (message_id, session_id, role, content_json, created_timestamp, metadata_json) "
            f"VALUES ({values});")


def add_message(db: str, session_id: str, message: dict[str, Any]) -> dict[str, Any]:
    """goose's add_message: insert the row and bump updated_at, in one transaction."""
    return {"sqlite": db, "sql": f"BEGIN; {insert_sql(session_id, message)} "
                                 f"UPDATE sessions SET updated_at = datetime('now') WHERE id = {lit(session_id)}; COMMIT;"}


def replace_conversation(db: str, session_id: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """goose's compaction: DELETE every row of the session and INSERT the new conversation."""
    inserts = " ".join(insert_sql(session_id, message) for message in messages)
    return {"sqlite": db, "sql": f"BEGIN; DELETE FROM messages WHERE session_id = {lit(session_id)}; {inserts} COMMIT;"}


def set_tokens(db: str, session_id: str, inp: int, out: int) -> dict[str, Any]:
    return {"sqlite": db, "sql": f"UPDATE sessions SET accumulated_input_tokens = {inp}, accumulated_output_tokens = "
                                 f"{out}, accumulated_total_tokens = {inp + out}, input_tokens = {inp}, output_tokens = "
                                 f"{out}, updated_at = datetime('now') WHERE id = {lit(session_id)};"}


def msg(n: int, role: str, *content: dict[str, Any], visible: bool = True) -> dict[str, Any]:
    return {"role": role, "created": int(time.time()) + n, "message_id": f"msg_{SID}_{n}",
            "metadata": {"userVisible": True, "agentVisible": visible}, "content": list(content)}


# --- running the stand-in and polling ---------------------------------------------------------------------------
def goose_env(tmp_path: Path) -> dict[str, str]:
    return {"HOME": str(tmp_path / "home"), "GOOSE_PATH_ROOT": str(tmp_path / "gooseroot")}


def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "gooseroot" / "data" / "sessions" / "sessions.db")


def context(tmp_path: Path, env: dict[str, str], *, interactive: bool = False) -> LaunchContext:
    return LaunchContext(cwd=str(tmp_path), env=env, interactive=interactive, started_at=time.time(),
                         zag_session_id=ZAG_ID)


def start_standin(tmp_path: Path, env: dict[str, str], plan: LaunchPlan, actions: list[dict[str, Any]]) -> subprocess.Popen:
    script = write_script(tmp_path / "script.json", actions)
    return subprocess.Popen([sys.executable, str(STANDIN), *plan.args], cwd=tmp_path,
                            env={**os.environ, **env, "STANDIN_SCRIPT": str(script)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def follow(live: Any, process: subprocess.Popen) -> list[Any]:
    collected: list[Any] = []
    deadline = time.monotonic() + DEADLINE
    while process.poll() is None:
        assert time.monotonic() < deadline, "stand-in did not finish"
        collected += live.poll()
        time.sleep(0.02)
    assert process.returncode == 0, process.stderr.read().decode() if process.stderr else ""
    collected += live.poll()
    collected += live.poll()
    return collected


def transcript(items: list[Any]) -> list[tuple[str, Any]]:
    result = []
    for item in items:
        if not isinstance(item, dict) or item["type"] == events.USAGE:
            continue
        detail = item.get("content", item.get("tool_name", item.get("output", item.get("message"))))
        if item["type"] == events.TOOL_RESULT:
            detail = item["output"]
        result.append((item["type"], detail))
    return result


# --- tests ----------------------------------------------------------------------------------------------------
def test_live_session_follows_rows_through_a_compaction(tmp_path: Path) -> None:
    env = goose_env(tmp_path)
    db = db_path(tmp_path)
    gl.GooseDb.create(Path(db))                       # the schema-13 database goose created at start-up
    ctx = context(tmp_path, env)
    plan = PROVIDER.plan_launch(["run", "-t", "fix the test"], ctx)
    name = plan.notes["name"]
    assert plan.args == ["run", "--name", name, "-t", "fix the test"]
    m1 = msg(1, "user", gl.text("fix the test"))
    m2 = msg(2, "assistant", gl.text("Looking."), gl.tool_request("call_1", "developer__shell", {"command": "pytest -q"}))
    m3 = msg(3, "user", gl.tool_response("call_1", "1 failed"))
    m4 = msg(4, "assistant", gl.text("Fixed it."))
    hidden = [{**m, "metadata": {"userVisible": True, "agentVisible": False}} for m in (m1, m2, m3, m4)]
    summary = msg(5, "user", gl.text("Summary: fixed the failing test."), visible=True)
    summary["metadata"] = {"userVisible": False, "agentVisible": True}
    m6 = msg(6, "assistant", gl.text("All tests pass."))
    other = {**msg(1, "user", gl.text("another goose, another session")), "message_id": "msg_other"}
    actions = [
        {"sleep": 0.2},
        {"sqlite": db, "sql": create_session_sql(OTHER, "someone else", "/elsewhere")},
        {"sqlite": db, "sql": create_session_sql(SID, name, str(tmp_path))},
        add_message(db, OTHER, other),
        {"sleep": 0.1}, add_message(db, SID, m1),
        {"sleep": 0.1}, add_message(db, SID, m2),
        {"sleep": 0.05}, add_message(db, SID, m3), set_tokens(db, SID, 1000, 100),
        {"sleep": 0.1}, add_message(db, SID, m4), set_tokens(db, SID, 2500, 180),
        {"sleep": 0.1}, replace_conversation(db, SID, hidden + [summary]),
        add_message(db, OTHER, {**other, "message_id": "msg_other_2", "content": [gl.text("still elsewhere")]}),
        {"sleep": 0.1}, add_message(db, SID, m6), set_tokens(db, SID, 3100, 200),
        {"sleep": 0.1},
    ]
    live = PROVIDER.open_live(plan, ctx)
    assert live.poll() == [] and live.provider_session_id is None
    items = follow(live, start_standin(tmp_path, env, plan, actions))
    assert live.provider_session_id == SID
    assert live.source_key == os.path.realpath(db) + "#" + SID
    assert transcript(items) == [
        ("provider_status", "goose session"),
        ("user_message", "fix the test"),
        ("assistant_message", "Looking."),
        ("tool_call", "developer__shell"),
        ("tool_result", "1 failed"),
        ("assistant_message", "Fixed it."),
        ("provider_status", "goose replaced the conversation (compaction or edit)"),
        ("user_message", "Summary: fixed the failing test."),
        ("assistant_message", "All tests pass."),
    ]
    usage = [item for item in items if isinstance(item, dict) and item["type"] == events.USAGE]
    assert sum(u["input_tokens"] for u in usage) == 3100 and sum(u["output_tokens"] for u in usage) == 200
    assert all(item.get("provider_session_id") == SID for item in items if isinstance(item, dict))
    # (no assertion on -wal/-shm here: when goose's last write closes while a poll's read-only connection is
    # open, that connection closes last and cannot clean up; test_sqlite_ro covers zag's own side files)
    cursor = json.loads(json.dumps(live.cursor()))
    live.close()
    # backfill continues from the live cursor: nothing twice
    source = next(s for s in PROVIDER.discover(env) if s.provider_session_id == SID)
    assert source.source_key == live.source_key
    assert list(PROVIDER.open_reader(source, cursor).read()) == []


def test_a_record_shows_on_the_next_poll_and_the_database_may_not_exist_yet(tmp_path: Path) -> None:
    env = goose_env(tmp_path)
    db = db_path(tmp_path)
    ctx = context(tmp_path, env)
    plan = PROVIDER.plan_launch(["session"], ctx)
    marks = tmp_path / "marks"
    actions = [
        {"wait_file": str(marks / "go0"), "timeout": 15},
        {"sqlite": db, "sql": gl.SCHEMAS["v13"].read_text()},          # goose creates its database
        {"sqlite": db, "sql": create_session_sql(SID, plan.notes["name"], str(tmp_path))},
        {"write": str(marks / "m0"), "text": ""},
        {"wait_file": str(marks / "go1"), "timeout": 15},
        add_message(db, SID, msg(1, "user", gl.text("first"))),
        {"write": str(marks / "m1"), "text": ""},
        {"wait_file": str(marks / "go2"), "timeout": 15},
        add_message(db, SID, msg(2, "assistant", gl.text("second"))),
        {"write": str(marks / "m2"), "text": ""},
    ]
    marks.mkdir()
    live = PROVIDER.open_live(plan, ctx)
    process = start_standin(tmp_path, env, plan, actions)
    try:
        assert live.poll() == []                                        # no database yet
        assert not Path(db).exists()
        for step, expected in enumerate([[("provider_status", "goose session")],
                                         [("user_message", "first")], [("assistant_message", "second")]]):
            (marks / f"go{step}").write_text("")
            wait_until(lambda: (marks / f"m{step}").exists(), DEADLINE, message=f"mark {step}")
            assert transcript(live.poll()) == expected                   # the very next poll has it
            assert live.poll() == []                                     # and only once
    finally:
        process.wait(timeout=DEADLINE)
    live.close()


def test_resumed_session_shows_only_what_the_resume_adds(tmp_path: Path) -> None:
    env = goose_env(tmp_path)
    db = db_path(tmp_path)
    database = gl.GooseDb.create(Path(db))
    database.create_session(SID, name="zag-old", working_dir=str(tmp_path), created_at=time.time() - 3600)
    database.add_message(SID, "user", [gl.text("old question")], created=int(time.time()) - 3500)
    database.add_message(SID, "assistant", gl.rate_limit_error("429 Too Many Requests"), created=int(time.time()) - 3490)
    database.set_tokens(SID, accumulated_input_tokens=500, accumulated_output_tokens=50)
    ctx = context(tmp_path, env)
    plan = PROVIDER.plan_resume(["run", "-t", "old question", "--max-turns", "5"], SID, "Continue", ctx)
    assert plan.args == ["run", "--resume", "--session-id", SID, "--max-turns", "5", "-t", "Continue"]
    actions = [{"sleep": 0.1}, add_message(db, SID, msg(1, "user", gl.text("Continue"))),
               {"sleep": 0.1}, add_message(db, SID, msg(2, "assistant", gl.text("Picking up where I left off."))),
               set_tokens(db, SID, 800, 90)]
    live = PROVIDER.open_live(plan, ctx)
    items = follow(live, start_standin(tmp_path, env, plan, actions))
    assert transcript(items) == [("user_message", "Continue"), ("assistant_message", "Picking up where I left off.")]
    usage = [item for item in items if isinstance(item, dict) and item["type"] == events.USAGE]
    assert [(u["input_tokens"], u["output_tokens"]) for u in usage] == [(300, 40)]
    live.close()


def test_bare_goose_is_found_by_its_directory(tmp_path: Path) -> None:
    env = goose_env(tmp_path)
    db = db_path(tmp_path)
    gl.GooseDb.create(Path(db))
    ctx = context(tmp_path, env, interactive=True)
    plan = PROVIDER.plan_launch([], ctx)
    assert plan.args == []
    actions = [
        {"sqlite": db, "sql": create_session_sql(OTHER, "CLI Session", "/some/other/dir", user_set_name=False)},
        add_message(db, OTHER, msg(1, "user", gl.text("not ours"))),
        {"sqlite": db, "sql": create_session_sql(SID, "CLI Session", str(tmp_path), user_set_name=False)},
        add_message(db, SID, msg(2, "user", gl.text("ours"))),
    ]
    live = PROVIDER.open_live(plan, ctx)
    items = follow(live, start_standin(tmp_path, env, plan, actions))
    assert transcript(items)[1:] == [("user_message", "ours")] and live.provider_session_id == SID


# --- under `zag run goose` ------------------------------------------------------------------------------------
def test_zag_run_goose_with_the_standin(tmp_path: Path, agent) -> None:
    """`zag run goose run -n fixer -t …` with ZAG_GOOSE_BIN = the stand-in, which creates goose's database
    and writes rows (with a compaction) while zag supervises it: the unified log holds the transcript
    events in order, once, under goose's session id."""
    pytest.importorskip("zag.cli.run")
    goose_root = tmp_path / "gooseroot"
    db = str(goose_root / "data" / "sessions" / "sessions.db")
    m1 = msg(1, "user", gl.text("say hi"))
    m2 = msg(2, "assistant", gl.text("hi from the stand-in"))
    summary = msg(3, "user", gl.text("Summary: greeted."))
    summary["metadata"] = {"userVisible": False, "agentVisible": True}
    m4 = msg(4, "assistant", gl.text("bye"))
    agent.script([
        {"sqlite": db, "sql": gl.SCHEMAS["v13"].read_text()},
        {"sqlite": db, "sql": create_session_sql(SID, "fixer", str(agent.root))},
        add_message(db, SID, m1), {"sleep": 0.2},
        add_message(db, SID, m2), set_tokens(db, SID, 12, 5), {"sleep": 0.2},
        replace_conversation(db, SID, [m1, m2, summary]), {"sleep": 0.2},
        add_message(db, SID, m4), set_tokens(db, SID, 20, 9),
        {"out": "hi from the stand-in\n"},
    ])
    result = agent.run("run", "goose", "run", "-n", "fixer", "-t", "say hi",
                       env=agent.env(GOOSE_PATH_ROOT=str(goose_root)))
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"hi from the stand-in\n"
    assert agent.invocations()[0]["argv"] == ["run", "-n", "fixer", "-t", "say hi"]
    log = agent.only_session()
    messages = [(e["type"], e.get("content")) for e in log if e["type"] in ("user_message", "assistant_message")]
    assert messages == [("user_message", "say hi"), ("assistant_message", "hi from the stand-in"),
                        ("user_message", "Summary: greeted."), ("assistant_message", "bye")]
    assert sum(e["input_tokens"] for e in log if e["type"] == "usage") == 20
    assert {e["provider_session_id"] for e in log if e["type"] in ("user_message", "assistant_message")} == {SID}
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))


def test_zag_run_goose_names_the_session_after_the_zag_session(tmp_path: Path, agent) -> None:
    pytest.importorskip("zag.cli.run")
    agent.script([{"out": "ok\n"}])
    result = agent.run("run", "goose", "run", "-t", "hello", env=agent.env(GOOSE_PATH_ROOT=str(tmp_path / "root")))
    assert result.returncode == 0, result.stderr.decode()
    invocation = agent.invocations()[0]
    session_id = invocation["env"]["ZAG_SESSION_ID"]
    assert invocation["argv"] == ["run", "--name", f"zag-{session_id}", "-t", "hello"]
    assert agent.only_session()[0]["session_id"] == session_id


def test_two_goose_homes_in_one_folder_keep_their_own_session_after_the_index_is_lost(tmp_path: Path, agent) -> None:
    """Two `zag run goose` in one folder, one with goose's XDG data folder and one with its own GOOSE_PATH_ROOT:
    goose numbers sessions per database, so both write 20251108_2. Each zag session records its session's
    owner key (log and index). After the index is lost (no cursors: every supervised session is adopted again
    by id), goose goes on in both without zag; backfill appends each database's new turn to its own zag
    session. (The index kept only the bare id and the folder: the newest zag session took the first
    database's session, and the other zag session the other one's.)"""
    pytest.importorskip("zag.cli.run")
    home = tmp_path / "home"
    xdg_db = home / ".local/share/goose/sessions/sessions.db"
    root = tmp_path / "gooseroot"
    root_db = root / "data/sessions/sessions.db"

    def run(db: Path, text: str, env: dict[str, str]) -> str:
        agent.script([
            {"sqlite": str(db), "sql": gl.SCHEMAS["v13"].read_text()},
            {"sqlite": str(db), "sql": create_session_sql(SID, "fixer", str(agent.root))},
            add_message(str(db), SID, msg(1, "user", gl.text(text))),
        ])
        before = set(agent.session_log_paths())
        result = agent.run("run", "goose", "run", "-n", "fixer", "-t", text, env=env)
        assert result.returncode == 0, result.stderr.decode()
        [log] = set(agent.session_log_paths()) - before
        return log.stem

    only_xdg = agent.env(HOME=str(home))
    only_xdg.pop("GOOSE_PATH_ROOT", None)
    only_xdg.pop("XDG_DATA_HOME", None)
    second = run(root_db, "in the root home", {**only_xdg, "GOOSE_PATH_ROOT": str(root)})
    first = run(xdg_db, "in the xdg home", only_xdg)
    from zag.logs.index import Index

    with Index(agent.zag_home / "index.sqlite") as index:
        keys = {index.get_session(zag_id)["provider_owner_key"] for zag_id in (first, second)}
    root_env = {**only_xdg, "GOOSE_PATH_ROOT": str(root)}
    assert keys == {PROVIDER.owner_key(SID, only_xdg), PROVIDER.owner_key(SID, root_env)}
    for path in agent.zag_home.glob("index.sqlite*"):
        path.unlink()
    gl.GooseDb(xdg_db).add_message(SID, "user", [gl.text("later in the xdg home")], created=int(time.time()) + 5)
    gl.GooseDb(root_db).add_message(SID, "user", [gl.text("later in the root home")], created=int(time.time()) + 5)
    result = agent.run("backfill", "--provider", "goose", env=root_env)
    assert result.returncode == 0, result.stderr.decode()

    def texts(zag_id: str) -> list[str]:
        log = read_jsonl(agent.zag_home / "sessions" / f"{zag_id}.jsonl")
        return [e["content"] for e in log if e["type"] == "user_message"]

    assert texts(first) == ["in the xdg home", "later in the xdg home"]
    assert texts(second) == ["in the root home", "later in the root home"]
    assert len(agent.session_log_paths()) == 2
