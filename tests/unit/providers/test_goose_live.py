"""goose LiveSession: which session row it follows for each way goose can be started, hints, legacy files."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from tests.fixtures.goose import gooselib as gl
from zag.logs import events
from zag.providers.base import LaunchContext, SessionIdHint
from zag.providers.goose import PROVIDER


ZAG_ID = "9d1c7f0e-1111-4222-8333-444455556666"


def setup(tmp_path: Path) -> tuple[dict[str, str], Any, LaunchContext]:
    env = {"HOME": str(tmp_path / "home")}     # XDG default: ~/.local/share/goose
    database = gl.GooseDb.create(tmp_path / "home/.local/share/goose/sessions/sessions.db")
    ctx = LaunchContext(cwd=str(tmp_path), env=env, interactive=True, started_at=time.time(), zag_session_id=ZAG_ID)
    return env, database, ctx


def contents(items: list[Any]) -> list[Any]:
    return [item.get("content") for item in items if isinstance(item, dict) and "content" in item]


def test_bare_resume_follows_the_session_goose_updates(tmp_path: Path) -> None:
    _, database, ctx = setup(tmp_path)
    old = int(ctx.started_at) - 7200
    for sid in ("20251107_1", "20251107_2"):
        database.create_session(sid, working_dir="/elsewhere", created_at=old)
        database.add_message(sid, "user", [gl.text(f"old in {sid}")], created=old + 1)
    live = PROVIDER.open_live(PROVIDER.plan_launch(["session", "--resume"], ctx), ctx)
    assert live.poll() == []                      # nothing updated since launch yet
    database.add_message("20251107_1", "user", [gl.text("resumed here")], created=int(time.time()))
    assert contents(live.poll()) == ["resumed here"]
    assert live.provider_session_id == "20251107_1"


def test_resume_by_name_picks_the_most_recent_of_that_name(tmp_path: Path) -> None:
    _, database, ctx = setup(tmp_path)
    database.create_session("20251101_1", name="proj", created_at=ctx.started_at - 9000)
    database.create_session("20251102_1", name="proj", created_at=ctx.started_at - 5000)
    database.add_message("20251101_1", "user", [gl.text("older")], created=int(ctx.started_at) - 8000)
    database.add_message("20251102_1", "user", [gl.text("newer")], created=int(ctx.started_at) - 4000)
    plan = PROVIDER.plan_launch(["session", "-r", "-n", "proj"], ctx)
    live = PROVIDER.open_live(plan, ctx)
    assert live.poll() == [] and live.provider_session_id == "20251102_1"   # earlier rows were logged before
    database.add_message("20251102_1", "user", [gl.text("go on")], created=int(time.time()))
    assert contents(live.poll()) == ["go on"]


def test_a_new_session_named_like_an_old_one_is_told_apart_by_its_start(tmp_path: Path) -> None:
    _, database, ctx = setup(tmp_path)
    database.create_session("20251101_1", name="proj", created_at=ctx.started_at - 9000)
    database.add_message("20251101_1", "user", [gl.text("old")], created=int(ctx.started_at) - 8000)
    live = PROVIDER.open_live(PROVIDER.plan_launch(["session", "-n", "proj"], ctx), ctx)
    assert live.poll() == []
    database.create_session("20251108_1", name="proj", created_at=time.time())
    database.add_message("20251108_1", "user", [gl.text("new")], created=int(time.time()))
    assert contents(live.poll()) == ["new"] and live.provider_session_id == "20251108_1"


def test_fork_follows_the_copy_and_skips_the_copied_history(tmp_path: Path) -> None:
    _, database, ctx = setup(tmp_path)
    old = int(ctx.started_at) - 7200
    database.create_session("20251107_1", name="proj", created_at=old)
    database.add_message("20251107_1", "user", [gl.text("original")], created=old + 1)
    plan = PROVIDER.plan_launch(["session", "--resume", "--fork", "--session-id", "20251107_1"], ctx)
    live = PROVIDER.open_live(plan, ctx)
    assert live.poll() == []
    database.create_session("20251108_1", name="proj", created_at=time.time())       # goose's copy
    database.add_message("20251108_1", "user", [gl.text("original")], created=old + 1)
    database.add_message("20251108_1", "user", [gl.text("after the fork")], created=int(time.time()))
    assert contents(live.poll()) == ["after the fork"] and live.provider_session_id == "20251108_1"


def test_a_forks_copied_history_is_one_note_naming_the_parent(tmp_path: Path) -> None:
    _, database, ctx = setup(tmp_path)
    old = int(ctx.started_at) - 7200
    database.create_session("20251107_1", name="proj", created_at=old)
    database.add_message("20251107_1", "user", [gl.text("original")], created=old + 1, message_id="m1")
    database.add_message("20251107_1", "assistant", [gl.text("answer")], created=old + 2, message_id="m2")
    live = PROVIDER.open_live(PROVIDER.plan_launch(["run", "--resume", "--fork", "--session-id", "20251107_1",
                                                    "-t", "more"], ctx), ctx)
    assert live.poll() == []
    database.copy_session("20251107_1", "20251108_1", created_at=time.time())
    database.add_message("20251108_1", "user", [gl.text("after the fork")], created=int(time.time()))
    items = live.poll()
    [note] = [item for item in items if item.get("type") == events.PROVIDER_STATUS]
    assert note["data"]["kind"] == "copied_history" and note["data"]["forked_from"] == "20251107_1"
    assert note["data"]["messages"] == 2 and contents(items) == ["after the fork"]
    database.add_message("20251108_1", "assistant", [gl.text("done")], created=int(time.time()))
    assert [item.get("type") for item in live.poll()] == ["assistant_message"]


def test_a_reported_session_id_switches_the_session(tmp_path: Path) -> None:
    _, database, ctx = setup(tmp_path)
    plan = PROVIDER.plan_launch(["session"], ctx)
    database.create_session("20251108_1", name=plan.notes["name"], created_at=time.time())
    database.add_message("20251108_1", "user", [gl.text("first")], created=int(time.time()))
    live = PROVIDER.open_live(plan, ctx)
    assert contents(live.poll()) == ["first"]
    live.hint(SessionIdHint("20251108_1"))         # the same id: nothing happens
    database.create_session("20251108_2", name="other", created_at=time.time())
    database.add_message("20251108_2", "user", [gl.text("second")], created=int(time.time()))
    live.hint(SessionIdHint("20251108_2"))
    items = live.poll()
    assert items[0]["type"] == events.SESSION_CLEARED and items[0]["old_session_id"] == "20251108_1"
    assert contents(items[1:]) == ["second"] and live.provider_session_id == "20251108_2"


def test_goose_before_the_database_writes_a_legacy_file(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    ctx = LaunchContext(cwd=str(tmp_path), env=env, interactive=False, started_at=time.time(), zag_session_id=ZAG_ID)
    plan = PROVIDER.plan_launch(["run", "-n", "oldstyle", "-t", "x"], ctx)
    live = PROVIDER.open_live(plan, ctx)
    assert live.poll() == []
    folder = tmp_path / "xdg/goose/sessions"
    folder.mkdir(parents=True)
    lines = gl.LEGACY_FILE.read_text().splitlines(keepends=True)
    (folder / "oldstyle.jsonl").write_text("".join(lines[:2]))
    assert contents(live.poll()) == ["Why does CI fail?"]
    (folder / "tmp").write_text("".join(lines))
    os.replace(folder / "tmp", folder / "oldstyle.jsonl")
    # (the usage on the metadata line was reported with the first message already)
    assert [item["type"] for item in live.poll()] == ["assistant_message", "tool_call", "tool_result",
                                                      "assistant_message"]
    assert live.source_key == os.path.realpath(folder / "oldstyle.jsonl")
    json.dumps(live.cursor())


def test_no_session_and_other_commands_follow_nothing(tmp_path: Path) -> None:
    _, database, ctx = setup(tmp_path)
    database.create_session("20251108_1", created_at=time.time(), working_dir=str(tmp_path))
    database.add_message("20251108_1", "user", [gl.text("x")], created=int(time.time()))
    for args in (["run", "--no-session", "-t", "x"], ["info"], ["session", "list"]):
        live = PROVIDER.open_live(PROVIDER.plan_launch(args, ctx), ctx)
        assert live.poll() == [] and live.cursor() is None


def test_poll_never_raises(tmp_path: Path) -> None:
    env, database, ctx = setup(tmp_path)
    plan = PROVIDER.plan_launch(["session"], ctx)
    live = PROVIDER.open_live(plan, ctx)
    shutil.rmtree(tmp_path / "home")
    assert live.poll() == []
    (tmp_path / "home/.local/share/goose/sessions").mkdir(parents=True)
    (tmp_path / "home/.local/share/goose/sessions/sessions.db").write_bytes(b"garbage" * 100)
    assert live.poll() == []


def test_a_named_session_in_the_first_database_schema_without_a_name_column(tmp_path: Path) -> None:
    """goose's first sessions.db (schema ≤ 3) has no `name` column: the session's name is its
    `description`. Asking for `name` there is an SQL error, and the row was never found."""
    env = {"HOME": str(tmp_path / "home")}
    database = gl.GooseDb.create(tmp_path / "home/.local/share/goose/sessions/sessions.db", schema="v3")
    ctx = LaunchContext(cwd=str(tmp_path), env=env, interactive=True, started_at=time.time(), zag_session_id=ZAG_ID)

    def session(sid: str, description: str, at: float) -> None:
        connection = database.connect()
        with connection:
            connection.execute("INSERT INTO sessions (id, description, working_dir, created_at, updated_at) "
                               "VALUES (?, ?, ?, ?, ?)", (sid, description, str(tmp_path), gl.sql_time(at), gl.sql_time(at)))
        connection.close()

    session("20251101_1", "proj", ctx.started_at - 9000)
    database.add_message("20251101_1", "user", [gl.text("older")], created=int(ctx.started_at) - 8000)
    resumed = PROVIDER.open_live(PROVIDER.plan_launch(["session", "-r", "-n", "proj"], ctx), ctx)
    assert resumed.poll() == [] and resumed.provider_session_id == "20251101_1"
    fresh = PROVIDER.open_live(PROVIDER.plan_launch(["session", "-n", "other"], ctx), ctx)
    assert fresh.poll() == []
    session("20251108_1", "other", time.time())
    database.add_message("20251108_1", "user", [gl.text("new")], created=int(time.time()))
    assert contents(fresh.poll()) == ["new"] and fresh.provider_session_id == "20251108_1"


def test_a_damaged_database_is_said_once_while_it_lasts_and_followed_on_once_repaired(
        tmp_path: Path, monkeypatch: Any) -> None:
    """Bad pages in goose's database while zag follows a session: it follows up to them, says once (after
    TROUBLE_SAY_SECS, not at every poll) that it cannot read the database, and once the file is good again
    goes on from where it stopped, every message once. (It stopped without a word.)"""
    import sqlite3

    from zag.providers.goose import live as goose_live

    monkeypatch.setattr(goose_live, "TROUBLE_SAY_SECS", 0.0, raising=False)
    _, database, ctx = setup(tmp_path)
    plan = PROVIDER.plan_launch(["session", "--name", "proj"], ctx)
    database.create_session("20251108_1", name="proj", working_dir=str(tmp_path), created_at=time.time())
    live = PROVIDER.open_live(plan, ctx)
    connection = sqlite3.connect(database.path)
    for index in range(400):
        content = json.dumps([gl.text(f"{index} " + "x" * 300)])
        connection.execute(gl.INSERT_MESSAGE_SQL, (f"m{index}", "20251108_1", "user", content, int(time.time()), "{}"))
    connection.commit()
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages = [row[0] for row in connection.execute(
        "SELECT pageno FROM dbstat WHERE name = 'messages' AND pagetype = 'leaf' ORDER BY pageno")]
    connection.close()
    good = database.path.read_bytes()
    with open(database.path, "r+b") as handle:
        handle.seek(4096 * (pages[len(pages) // 2] - 1))
        handle.write(b"\0" * 4096)
    first = live.poll()
    notes = [item for item in live.poll() + live.poll() if item.get("type") == events.PROVIDER_STATUS]
    [said] = [item for item in first + notes if "cannot read" in item.get("message", "")]
    assert str(database.path) in said["message"] and "malformed" in said["message"]
    read = [text.split()[0] for text in contents(first)]
    assert 0 < len(read) < 400
    database.path.write_bytes(good)
    after = live.poll()
    assert any("can be read again" in item.get("message", "") for item in after)
    assert read + [text.split()[0] for text in contents(after)] == [str(index) for index in range(400)]


def test_a_database_whose_tables_zag_does_not_know_is_said_once_and_followed_once_it_knows_them(
        tmp_path: Path, monkeypatch: Any) -> None:
    """goose's tables as zag does not know them (a newer goose, or one migrating them): the session cannot
    be searched for; zag says so once (it followed nothing without a word), and finds it once they read
    as goose's."""
    import sqlite3

    from zag.providers.goose import live as goose_live

    monkeypatch.setattr(goose_live, "TROUBLE_SAY_SECS", 0.0, raising=False)
    _, database, ctx = setup(tmp_path)
    database.create_session("20251108_1", name="proj", working_dir=str(tmp_path), created_at=time.time())
    database.add_message("20251108_1", "user", [gl.text("hello")], created=int(time.time()))
    with sqlite3.connect(database.path) as connection:
        connection.execute("ALTER TABLE messages RENAME COLUMN content_json TO content")
    connection.close()
    live = PROVIDER.open_live(PROVIDER.plan_launch(["session", "--name", "proj"], ctx), ctx)
    said = [item for item in live.poll() + live.poll() + live.poll() if "cannot read" in item.get("message", "")]
    assert len(said) == 1 and "tables are not goose's" in said[0]["message"]
    with sqlite3.connect(database.path) as connection:
        connection.execute("ALTER TABLE messages RENAME COLUMN content TO content_json")
    connection.close()
    assert contents(live.poll()) == ["hello"] and live.provider_session_id == "20251108_1"
