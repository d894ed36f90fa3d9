"""goose homes and backfill discovery: every database and legacy folder, cheap fingerprints, stable keys."""

from __future__ import annotations

import os
import shutil
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
    with pytest.raises(UnreadableDatabase):
        for source in PROVIDER.discover(world["env"]):
            found.append(source.provider_session_id)
    assert "20250601_1" in found and "20250101_090000" in found


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
