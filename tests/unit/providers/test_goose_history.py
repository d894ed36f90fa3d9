"""goose homes and backfill discovery: every database and legacy folder, cheap fingerprints, stable keys."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.fixtures.goose import gooselib as gl
from zag.providers.goose import PROVIDER, homes
from zag.providers.goose.history import UnreadableDatabase, db_source_key

T0 = 1762600000


def test_homes_follow_goose_path_root_xdg_and_home(tmp_path: Path) -> None:
    home = str(tmp_path / "h")
    assert homes.goose_home({"HOME": home}).db_path == tmp_path / "h/.local/share/goose/sessions/sessions.db"
    root = homes.goose_home({"HOME": home, "GOOSE_PATH_ROOT": str(tmp_path / "root")})
    assert (root.data, root.config, root.state) == (tmp_path / "root/data", tmp_path / "root/config",
                                                    tmp_path / "root/state")
    relative = homes.goose_home({"HOME": home, "GOOSE_PATH_ROOT": "rel/root", "XDG_DATA_HOME": str(tmp_path / "x")})
    assert relative.data == tmp_path / "x/goose"
    assert homes.goose_home({"HOME": home, "XDG_DATA_HOME": "not/absolute"}).data == tmp_path / "h/.local/share/goose"
    assert homes.goose_home({"HOME": home, "XDG_CONFIG_HOME": str(tmp_path / "c")}).config == tmp_path / "c/goose"
    folders = homes.session_dirs({"HOME": home, "APPDATA": str(tmp_path / "appdata")})
    assert tmp_path / "h/.local/share/Block/goose/sessions" in folders
    assert tmp_path / "h/Library/Application Support/goose/sessions" in folders
    assert tmp_path / "appdata/Block/goose/data/sessions" in folders
    assert tmp_path / "h/.config/goose/sessions" in folders and tmp_path / "h/.goose/sessions" in folders


@pytest.fixture
def world(tmp_path: Path) -> dict:
    home = tmp_path / "home"
    env = {"HOME": str(home)}
    main = gl.GooseDb.create(home / ".local/share/goose/sessions/sessions.db")
    main.create_session("20251108_1", name="zag-a", working_dir="/work/a", created_at=T0)
    main.add_message("20251108_1", "user", [gl.text("hello")], created=T0 + 1)
    main.create_session("20251108_2", name="empty", working_dir="/work/b", created_at=T0)    # no messages
    main.create_session("20251109_1", name="second", working_dir="/work/c", created_at=T0 + 86400, model=None)
    main.add_message("20251109_1", "user", [gl.text("again")], created=T0 + 86401)
    # goose imported this legacy file into its database already: not a second source
    shutil.copy(gl.LEGACY_FILE, home / ".local/share/goose/sessions/20251108_1.jsonl")
    shutil.copy(gl.LEGACY_FILE, home / ".local/share/goose/sessions/20250325_200615.jsonl")
    (home / ".config/goose/sessions").mkdir(parents=True)
    shutil.copy(gl.LEGACY_FILE, home / ".config/goose/sessions/20250101_090000.jsonl")
    shutil.copy(gl.LEGACY_FILE, home / ".config/goose/sessions/20250325_200615.jsonl")   # same id again
    block = gl.GooseDb.create(home / ".local/share/Block/goose/sessions/sessions.db")
    block.create_session("20250601_1", working_dir="/old", created_at=T0 - 10**7)
    block.add_message("20250601_1", "assistant", [gl.text("old")], created=T0 - 10**7)
    return {"env": env, "home": home, "main": main, "block": block}


def test_discover_lists_every_session_once(world: dict) -> None:
    sources = {source.source_key: source for source in PROVIDER.discover(world["env"])}
    home = world["home"]
    main_db = home / ".local/share/goose/sessions/sessions.db"
    assert set(sources) == {
        db_source_key(main_db, "20251108_1"), db_source_key(main_db, "20251109_1"),
        db_source_key(home / ".local/share/Block/goose/sessions/sessions.db", "20250601_1"),
        os.path.realpath(home / ".local/share/goose/sessions/20250325_200615.jsonl"),
        os.path.realpath(home / ".config/goose/sessions/20250101_090000.jsonl"),
    }
    first = sources[db_source_key(main_db, "20251108_1")]
    assert first.provider_session_id == "20251108_1" and first.cwd == "/work/a"
    assert first.model == "claude-sonnet-4-5" and first.started_at == T0 and first.paths == (main_db,)
    assert first.extra["kind"] == "db" and first.extra["name"] == "zag-a"
    legacy = sources[os.path.realpath(home / ".config/goose/sessions/20250101_090000.jsonl")]
    assert legacy.provider_session_id == "20250101_090000" and legacy.cwd == "/home/u/old-proj"
    assert legacy.extra["kind"] == "jsonl"


def test_fingerprints_change_only_with_their_session(world: dict) -> None:
    def prints() -> dict[str, str]:
        return {source.provider_session_id: source.fingerprint for source in PROVIDER.discover(world["env"])}

    before = prints()
    assert before == prints()
    world["main"].add_message("20251109_1", "assistant", [gl.text("more")], created=T0 + 86402)
    after = prints()
    assert after["20251109_1"] != before["20251109_1"]
    assert after["20251108_1"] == before["20251108_1"] and after["20250601_1"] == before["20250601_1"]
    world["main"].replace_conversation("20251108_1", [{"role": "user", "created": T0 + 1,
                                                       "content": [gl.text("hello")]}])
    assert prints()["20251108_1"] != after["20251108_1"]     # same count, new row ids


def test_open_reader_for_each_kind_and_cursor_continuation(world: dict) -> None:
    sources = {source.provider_session_id: source for source in PROVIDER.discover(world["env"])}
    reader = PROVIDER.open_reader(sources["20251108_1"], None)
    assert [item["type"] for item in reader.read()] == ["provider_status", "user_message"]
    cursor = reader.cursor()
    reader.close()
    world["main"].add_message("20251108_1", "assistant", [gl.text("reply")], created=T0 + 2)
    again = PROVIDER.open_reader(sources["20251108_1"], cursor)
    assert [item.get("content") for item in again.read()] == ["reply"]
    legacy = PROVIDER.open_reader(sources["20250101_090000"], None)
    assert sum(1 for item in legacy.read() if item["type"] == "user_message") == 1


def test_an_unreadable_database_is_reported_after_the_rest(world: dict) -> None:
    broken = world["home"] / ".local/share/goose/sessions/sessions.db"
    broken.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    found = []
    with pytest.raises(UnreadableDatabase) as raised:
        for source in PROVIDER.discover(world["env"]):
            found.append(source.provider_session_id)
    # the other database is listed; the legacy files wait (the broken one may hold them, as it holds
    # 20251108_1: listed now, they would be imported a second time once it can be read)
    assert found == ["20250601_1"]
    [problem] = raised.value.problems
    assert str(broken) in problem and "4 legacy goose session files" in problem


def test_nothing_on_disk(tmp_path: Path) -> None:
    assert list(PROVIDER.discover({"HOME": str(tmp_path)})) == []


def test_backfill_runner_imports_goose_once_then_only_what_grew(world: dict) -> None:
    """The real backfill runner over goose's databases and legacy files: idempotent and incremental."""
    from zag.logs.backfill import run_backfill
    from zag.logs.index import Index
    from zag.logs.reader import read_events
    from zag import paths

    [first] = run_backfill([PROVIDER], env=world["env"], jobs=1)
    assert (first.sessions_seen, first.imported, first.warnings) == (5, 5, 0)
    [again] = run_backfill([PROVIDER], env=world["env"], jobs=1)
    assert (again.imported, again.updated, again.unchanged, again.events) == (0, 0, 5, 0)
    world["main"].add_message("20251108_1", "assistant", [gl.text("late reply")], created=T0 + 5)
    [grown] = run_backfill([PROVIDER], env=world["env"], jobs=1)
    assert (grown.imported, grown.updated, grown.unchanged) == (0, 1, 4)
    with Index() as index:
        session_id = index.find_by_provider_session("goose", "20251108_1")
        row = index.get_session(session_id)
    assert row["cwd"] == "/work/a" and row["model"] == "claude-sonnet-4-5"
    log = list(read_events(paths.session_log(session_id)))
    assert [(e["type"], e.get("content")) for e in log if e["type"] in ("user_message", "assistant_message")] == [
        ("user_message", "hello"), ("assistant_message", "late reply")]
    assert log[0]["type"] == "session_started" and log[0]["backfilled"] is True


# --- two goose data folders, one session id ---------------------------------------------------------
ZAG_ID = "11111111-2222-4333-8444-555555555555"


@pytest.fixture
def two_roots(tmp_path: Path) -> dict:
    """goose numbers sessions per database: the XDG one and a GOOSE_PATH_ROOT one both hold 20261207_1."""
    home = tmp_path / "home"
    xdg_env = {"HOME": str(home)}
    root_env = {"HOME": str(home), "GOOSE_PATH_ROOT": str(tmp_path / "proj-root")}   # backfill sees both
    xdg = gl.GooseDb.create(homes.goose_home(xdg_env).db_path)
    xdg.create_session("20261207_1", working_dir="/work/a", created_at=T0)
    xdg.add_message("20261207_1", "user", [gl.text("hello from a")], created=T0 + 1)
    other = gl.GooseDb.create(homes.goose_home(root_env).db_path)
    other.create_session("20261207_1", working_dir="/work/b", created_at=T0 + 5)
    other.add_message("20261207_1", "user", [gl.text("hello from b")], created=T0 + 6)
    return {"xdg_env": xdg_env, "env": root_env, "xdg": xdg, "other": other}


def _texts(session_id: str) -> list[str]:
    from zag import paths
    from zag.logs.reader import read_events

    return [e["content"] for e in read_events(paths.session_log(session_id)) if e["type"] == "user_message"]


def _supervised_row(state: str, session_id: str = ZAG_ID, cwd: str = "/work/a", started_at: float = T0,
                    **fields: object) -> None:
    """The index row of a zag session that ran goose on 20261207_1 (by default with the XDG folder, in
    /work/a), no cursor."""
    from zag.logs import events
    from zag.logs.index import Index
    from zag.logs.writer import SessionLogWriter
    from zag.wrapper.liveness import hostname, process_start_time

    me = os.getpid()
    with Index() as index:
        index.add_session(session_id=session_id, provider="goose", provider_session_id="20261207_1", state=state,
                          started_at=started_at, cwd=cwd, supervisor_pid=me, supervisor_started=process_start_time(me),
                          hostname=hostname(), last_heartbeat=time.time(), heartbeat_secs=10, last_seq=0, **fields)
    with SessionLogWriter(session_id, "goose", provider_session_id="20261207_1") as writer:
        writer.write(events.body(events.SESSION_STARTED, argv=["goose"], cwd=cwd, model=None,
                                 resumed=False, backfilled=False))


def test_a_supervisors_claim_holds_only_its_own_folders_session(two_roots: dict) -> None:
    """The supervisor claims goose's id with its database: backfill leaves that one alone (live) and
    imports the other folder's session with the same id (it skipped it as live)."""
    import threading
    from types import SimpleNamespace

    from zag.logs.backfill import run_backfill
    from zag.logs.index import Index
    from zag.wrapper.supervisor import Supervisor

    supervisor = SimpleNamespace(provider=PROVIDER, session_id=ZAG_ID, _state_lock=threading.Lock(),
                                 _claimed=set(), guard=None)
    Supervisor._claim(supervisor, "20261207_1", two_roots["xdg_env"])   # before the index row is written
    [summary] = run_backfill([PROVIDER], env=two_roots["env"], jobs=1)
    assert (summary.live, summary.imported) == (1, 1)
    with Index() as index:
        [row] = index.list_sessions()
    assert _texts(row["session_id"]) == ["hello from b"]
    Supervisor._release_claims(supervisor)
    [after] = run_backfill([PROVIDER], env=two_roots["env"], jobs=1)
    assert (after.imported, after.unchanged) == (1, 1)


def test_a_supervised_session_without_cursor_adopts_only_its_own_folders_session(two_roots: dict) -> None:
    """A zag session that holds 20261207_1 without a cursor (e.g. its cursor was forgotten on a full disk)
    is continued with the session of the folder it ran in; the other folder's becomes its own session.
    A second run imports nothing again."""
    from zag import states
    from zag.logs.backfill import run_backfill
    from zag.logs.index import Index

    _supervised_row(states.EXITED, ended_at=T0 + 60)
    [summary] = run_backfill([PROVIDER], env=two_roots["env"], jobs=1)
    assert (summary.imported, summary.updated) == (1, 1)
    assert _texts(ZAG_ID) == ["hello from a"]
    with Index() as index:
        [other] = [row for row in index.list_sessions() if row["session_id"] != ZAG_ID]
    assert other["provider_session_id"] == "20261207_1" and other["cwd"] == "/work/b"
    assert _texts(other["session_id"]) == ["hello from b"]
    [again] = run_backfill([PROVIDER], env=two_roots["env"], jobs=1)
    assert (again.imported, again.updated, again.unchanged, again.events) == (0, 0, 2, 0)
    two_roots["other"].add_message("20261207_1", "assistant", [gl.text("b grew")], created=T0 + 7)
    [grown] = run_backfill([PROVIDER], env=two_roots["env"], jobs=1)
    assert (grown.imported, grown.updated, grown.unchanged) == (0, 1, 1)
    assert _texts(ZAG_ID) == ["hello from a"]


def test_two_folders_same_id_are_two_sessions_imported_once(two_roots: dict) -> None:
    from zag.logs.backfill import run_backfill
    from zag.logs.index import Index

    [first] = run_backfill([PROVIDER], env=two_roots["env"], jobs=2)
    assert (first.sessions_seen, first.imported) == (2, 2)
    with Index() as index:
        rows = index.list_sessions()
    assert sorted(_texts(row["session_id"])[0] for row in rows) == ["hello from a", "hello from b"]
    [again] = run_backfill([PROVIDER], env=two_roots["env"], jobs=2)
    assert (again.imported, again.updated, again.events) == (0, 0, 0)


def test_two_supervised_sessions_with_the_same_id_each_adopt_their_own_folders_session(two_roots: dict) -> None:
    """Both folders' 20261207_1 ran under zag (in /work/a and /work/b), neither has a cursor: each is
    continued in its own zag session, though the index's newest holder of the id is the /work/b one."""
    from zag import states
    from zag.logs.backfill import run_backfill

    other_id = "22222222-2222-4333-8444-555555555555"
    _supervised_row(states.EXITED, ended_at=T0 + 60)
    _supervised_row(states.EXITED, session_id=other_id, cwd="/work/b", started_at=T0 + 5, ended_at=T0 + 60)
    [summary] = run_backfill([PROVIDER], env=two_roots["env"], jobs=1)
    assert (summary.imported, summary.updated) == (0, 2)
    assert _texts(ZAG_ID) == ["hello from a"] and _texts(other_id) == ["hello from b"]


def test_a_session_an_older_zag_indexed_without_owner_key_is_still_adopted_by_its_folder(two_roots: dict) -> None:
    """An index from before the owner keys (schema 5): opened, it gains their table; its rows, which have no
    key, are matched by folder as before."""
    import sqlite3

    from zag import paths, states
    from zag.logs.backfill import run_backfill
    from zag.logs.index import SCHEMA_VERSION, Index

    _supervised_row(states.EXITED, ended_at=T0 + 60)
    with sqlite3.connect(paths.index_db()) as conn:   # as schema 5 had it
        conn.execute("DROP TABLE session_owner_keys")
        conn.execute("PRAGMA user_version = 5")
    conn.close()
    [summary] = run_backfill([PROVIDER], env=two_roots["env"], jobs=1)
    assert (summary.imported, summary.updated) == (1, 1)
    assert _texts(ZAG_ID) == ["hello from a"]
    with Index() as index:
        assert index.get_session(ZAG_ID)["provider_owner_key"] is None
    with sqlite3.connect(paths.index_db()) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


# --- a damaged database -----------------------------------------------------------------------------
def _interleaved(env: dict, sessions: int = 3, each: int = 600) -> tuple[Path, bytes]:
    """A checkpointed database whose sessions' messages interleave (as gooses running at once write them):
    every table page holds rows of every session. Returns its path and its bytes."""
    import sqlite3

    path = homes.goose_home(env).db_path
    goose = gl.GooseDb.create(path)
    for number in range(1, sessions + 1):
        goose.create_session(f"20261207_{number}", working_dir=f"/work/{number}", created_at=T0)
    connection = sqlite3.connect(path)
    for index in range(sessions * each):
        connection.execute(gl.INSERT_MESSAGE_SQL, (f"m{index}", f"20261207_{index % sessions + 1}", "user",
                                                   json.dumps([gl.text(f"{index} " + "x" * 200)]), T0 + index, "{}"))
    connection.commit()
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return path, path.read_bytes()


def _middle_leaf(path: Path, table: str) -> int:
    """The page number of the middle leaf page of a table's b-tree."""
    import sqlite3

    with sqlite3.connect(path) as connection:
        pages = [row[0] for row in connection.execute(
            "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno", (table,))]
    connection.close()
    return pages[len(pages) // 2]


def _zero_page(path: Path, page: int) -> None:
    with open(path, "r+b") as handle:
        handle.seek(4096 * (page - 1))
        handle.write(b"\0" * 4096)


def _imported_texts() -> dict[str, list[str]]:
    from zag.logs.index import Index

    with Index() as index:
        return {row["provider_session_id"]: _texts(row["session_id"]) for row in index.list_sessions()}


def test_a_damaged_database_is_imported_up_to_the_damage_said_once_and_the_rest_once_it_is_repaired(
        tmp_path: Path) -> None:
    """Bad pages in goose's messages: each session is imported up to its first unreadable row, the database
    is named once (not once per session) and counted as not read (exit 1), and nothing is marked done: once
    the file is good again (goose's own repair, a restored backup) the next run imports the rest, once.
    (Each session was imported up to the damage, silently, and then counted unchanged for good.)"""
    from zag.logs.backfill import run_backfill

    env = {"HOME": str(tmp_path / "home")}
    path, good = _interleaved(env)
    _zero_page(path, _middle_leaf(path, "messages"))
    [damaged] = run_backfill([PROVIDER], env=env, jobs=2)
    assert (damaged.imported, damaged.unlisted, damaged.warnings) == (3, 1, 1)
    [line] = damaged.warning_messages
    assert line.startswith(f"cannot read all of {path} (database disk image is malformed)")
    partial = _imported_texts()
    assert all(0 < len(texts) < 600 for texts in partial.values())
    [again] = run_backfill([PROVIDER], env=env, jobs=2)   # still damaged: nothing twice
    assert (again.events, again.unlisted) == (0, 1) and _imported_texts() == partial
    path.write_bytes(good)
    [repaired] = run_backfill([PROVIDER], env=env, jobs=2)
    assert (repaired.updated, repaired.unlisted, repaired.warnings) == (3, 0, 0)
    for number, texts in _imported_texts().items():
        first = int(number.rsplit("_", 1)[1]) - 1
        assert [text.split()[0] for text in texts] == [str(index) for index in range(first, 1800, 3)]
    [settled] = run_backfill([PROVIDER], env=env, jobs=2)
    assert (settled.unchanged, settled.events) == (3, 0)


def test_a_damaged_index_of_goose_messages_is_read_by_row_id(tmp_path: Path) -> None:
    """The messages' session index damaged: the listing of every session's messages failed, so not one
    session was imported. Now the sessions are listed one by one and read without that index; the database
    is named once."""
    import sqlite3

    from zag.logs.backfill import run_backfill

    env = {"HOME": str(tmp_path / "home")}
    path, _ = _interleaved(env, each=200)
    connection = sqlite3.connect(path)
    [root] = connection.execute("SELECT rootpage FROM sqlite_master WHERE name = 'idx_messages_session'").fetchone()
    connection.close()
    _zero_page(path, root)
    [summary] = run_backfill([PROVIDER], env=env, jobs=1)
    assert (summary.imported, summary.unlisted, summary.warnings) == (3, 1, 1)
    assert {number: len(texts) for number, texts in _imported_texts().items()} == {
        "20261207_1": 200, "20261207_2": 200, "20261207_3": 200}


def test_goose_tables_zag_does_not_know_are_said_and_read_once_they_are(world: dict) -> None:
    """A newer goose's (or one migrating it right now) tables, not as zag knows them: the database is named,
    with what it has (it was skipped without a word), the other database is imported, and legacy files
    wait for it; once it reads as goose's again its sessions are imported."""
    import sqlite3

    from zag.logs.backfill import run_backfill

    path = world["home"] / ".local/share/goose/sessions/sessions.db"
    with sqlite3.connect(path) as connection:
        connection.execute("ALTER TABLE messages RENAME COLUMN content_json TO content")
    connection.close()
    [summary] = run_backfill([PROVIDER], env=world["env"], jobs=1)
    assert (summary.imported, summary.unlisted) == (1, 1)
    [line] = summary.warning_messages
    assert line.startswith(f"cannot read {path}: its tables are not goose's as zag knows them")
    assert "messages: content, created_timestamp," in line and "legacy goose session files" in line
    with sqlite3.connect(path) as connection:
        connection.execute("ALTER TABLE messages RENAME COLUMN content TO content_json")
    connection.close()
    [after] = run_backfill([PROVIDER], env=world["env"], jobs=1)
    assert (after.imported, after.unlisted, after.warnings) == (4, 0, 0)


def test_a_damaged_page_of_goose_sessions_blocks_only_the_sessions_on_it(tmp_path: Path) -> None:
    """A bad page among goose's session rows: every session whose row can be read is imported (none was:
    the listing failed as a whole), the database is named once, legacy files wait (one may be a session on
    that page), and once the file is good again the rest is imported, each session once."""
    import sqlite3

    from zag.logs.backfill import run_backfill

    env = {"HOME": str(tmp_path / "home")}
    path = homes.goose_home(env).db_path
    goose = gl.GooseDb.create(path)
    connection = goose.connect()
    for number in range(300):
        connection.execute(gl.INSERT_SESSION_SQL, (f"20261207_{number}", "n" * 200, 1, "/w", gl.sql_time(T0),
                                                   gl.sql_time(T0), "anthropic", None))
        connection.execute(gl.INSERT_MESSAGE_SQL, (f"m{number}", f"20261207_{number}", "user",
                                                   json.dumps([gl.text(f"hi {number}")]), T0 + 1, "{}"))
    connection.commit()
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    shutil.copy(gl.LEGACY_FILE, path.parent / "20250325_200615.jsonl")
    good = path.read_bytes()
    _zero_page(path, _middle_leaf(path, "sessions"))
    [damaged] = run_backfill([PROVIDER], env=env, jobs=2)
    assert 250 < damaged.imported < 300 and (damaged.unlisted, damaged.warnings) == (1, 1)
    assert "1 legacy goose session files" in damaged.warning_messages[0]
    path.write_bytes(good)
    [repaired] = run_backfill([PROVIDER], env=env, jobs=2)
    assert repaired.imported == 300 - damaged.imported + 1 and repaired.unlisted == 0
    texts = sorted(text for texts in _imported_texts().values() for text in texts)
    assert texts == sorted([f"hi {number}" for number in range(300)] + ["Why does CI fail?"])
