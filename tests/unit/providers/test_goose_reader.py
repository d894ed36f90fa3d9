"""goose readers: incremental sessions.db reading (compaction, schema drift, locks) and legacy JSONL."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.goose import gooselib as gl
from zag.logs import events
from zag.providers.base import LimitSignal
from zag.providers.goose.reader import KEEP_KEYS, DbSessionReader, LegacyJsonlReader

T0 = 1762600000
SID = "20251108_1"


def message(n: int, role: str = "user", *, created: int | None = None, text: str | None = None,
            metadata: dict[str, Any] | None = None, message_id: str | None = "auto") -> dict[str, Any]:
    return {"role": role, "created": created if created is not None else T0 + n,
            "message_id": f"msg_{SID}_{n}" if message_id == "auto" else message_id,
            "metadata": metadata or {"userVisible": True, "agentVisible": True},
            "content": [gl.text(text if text is not None else f"message {n}")]}


def texts(items: list[Any]) -> list[str]:
    return [item["content"] for item in items
            if isinstance(item, dict) and item["type"] in (events.USER_MESSAGE, events.ASSISTANT_MESSAGE)]


def roundtrip(reader: DbSessionReader | LegacyJsonlReader) -> Any:
    return json.loads(json.dumps(reader.cursor()))


@pytest.fixture
def db(tmp_path: Path) -> Any:
    database = gl.GooseDb.create(tmp_path / "sessions" / "sessions.db")
    database.create_session(SID, name="zag-test", working_dir="/work/proj", created_at=T0)
    return database


def add(db: Any, *messages: dict[str, Any]) -> None:
    db.add_fixture_messages(SID, list(messages))


# --- incremental ------------------------------------------------------------------------------------------
def test_growing_session_read_message_by_message_equals_reading_it_whole(db: Any, tmp_path: Path) -> None:
    fixture = gl.fixture_messages()
    reader = DbSessionReader(db.path, SID)
    incremental: list[Any] = list(reader.read())
    for item in fixture:
        add(db, item)
        reader = DbSessionReader(db.path, SID, roundtrip(reader))   # the cursor survives JSON
        incremental += list(reader.read())
        assert list(reader.read()) == []
    whole = list(DbSessionReader(db.path, SID).read())
    assert incremental == whole
    assert len(whole) == 26   # 25 bodies (counted in test_goose_records) + 1 limit signal


def test_a_record_appended_shows_on_the_next_read_and_nothing_twice(db: Any) -> None:
    reader = DbSessionReader(db.path, SID)
    assert [item["message"] for item in reader.read()] == ["goose session"]
    assert not reader.changed() and list(reader.read()) == []
    add(db, message(1))
    assert reader.changed()
    assert texts(list(reader.read())) == ["message 1"]
    assert list(reader.read()) == []


def test_usage_events_once_per_change(db: Any) -> None:
    reader = DbSessionReader(db.path, SID)
    list(reader.read())
    db.set_tokens(SID, accumulated_input_tokens=100, accumulated_output_tokens=10, accumulated_total_tokens=110)
    [first] = list(reader.read())
    assert (first["input_tokens"], first["output_tokens"]) == (100, 10)
    add(db, message(1))
    assert [item["type"] for item in reader.read()] == [events.USER_MESSAGE]    # tokens unchanged
    db.set_tokens(SID, accumulated_input_tokens=250, accumulated_output_tokens=30, accumulated_total_tokens=280,
                  accumulated_cost=0.01)
    [second] = list(reader.read())
    assert (second["input_tokens"], second["output_tokens"], second["total_cost_usd"]) == (150, 20, 0.01)
    db.set_tokens(SID, accumulated_input_tokens=0, accumulated_output_tokens=0, accumulated_total_tokens=0)
    assert list(reader.read()) == []   # counters reset (e.g. /clear): nothing grew


# --- compaction / rewrites -----------------------------------------------------------------------------------
def test_compaction_reinserting_everything_emits_only_what_is_new(db: Any) -> None:
    originals = [message(n, "user" if n % 2 else "assistant") for n in range(1, 7)]
    add(db, *originals)
    reader = DbSessionReader(db.path, SID)
    assert len(texts(list(reader.read()))) == 6
    add(db, message(7), message(8, "assistant"))            # not read yet when goose compacts
    hidden = [{**item, "metadata": {"userVisible": True, "agentVisible": False}}
              for item in originals + [message(7), message(8, "assistant")]]
    summary = message(9, text="Summary of the conversation", metadata={"userVisible": False, "agentVisible": True})
    db.replace_conversation(SID, hidden + [summary])
    items = list(DbSessionReader(db.path, SID, roundtrip(reader)).read())
    assert texts(items) == ["message 7", "message 8", "Summary of the conversation"]
    replaced = [item for item in items if item["type"] == events.PROVIDER_STATUS]
    assert replaced[0]["data"] == {"rows_before": 6, "rows_kept": 0, "rows_now": 9}


def test_compaction_then_appends_in_one_poll(db: Any) -> None:
    add(db, message(1), message(2, "assistant"))
    reader = DbSessionReader(db.path, SID)
    list(reader.read())
    db.replace_conversation(SID, [message(1), message(2, "assistant"), message(3, text="summary")])
    add(db, message(4), message(5, "assistant"))
    assert texts(list(reader.read())) == ["summary", "message 4", "message 5"]
    add(db, message(6))
    assert texts(list(reader.read())) == ["message 6"]


def test_reinserted_rows_with_new_ids_or_changed_content_are_not_duplicated(db: Any) -> None:
    add(db, message(1), message(2, "assistant"), message(3))
    reader = DbSessionReader(db.path, SID)
    list(reader.read())
    # goose before v7 regenerated message ids on load; tool outputs may be shortened by compaction
    db.replace_conversation(SID, [message(1, message_id="msg_other_0"),
                                  message(2, "assistant", text="message 2 (shortened)"),
                                  message(3, message_id=None), message(4, text="new")])
    assert texts(list(reader.read())) == ["new"]


def test_clear_then_new_turn(db: Any) -> None:
    add(db, message(1), message(2, "assistant"))
    reader = DbSessionReader(db.path, SID)
    list(reader.read())
    db.replace_conversation(SID, [])
    [cleared] = list(reader.read())
    assert cleared["type"] == events.SESSION_CLEARED and cleared["new_session_id"] == SID
    add(db, message(3, text="after clear"))
    assert texts(list(reader.read())) == ["after clear"]


def test_truncated_conversation_then_edited_message(db: Any) -> None:
    add(db, message(1), message(2, "assistant"), message(3), message(4, "assistant"))
    reader = DbSessionReader(db.path, SID)
    list(reader.read())
    db.replace_conversation(SID, [message(1), message(2, "assistant")])   # edit the 3rd message
    items = list(reader.read())
    assert texts(items) == [] and items[0]["data"]["rows_now"] == 2
    add(db, message(5, text="edited question"))
    assert texts(list(reader.read())) == ["edited question"]


def test_state_stays_bounded_and_a_big_compaction_adds_only_the_summary(db: Any) -> None:
    many = [message(n, "user" if n % 2 else "assistant", created=T0 + n // 3) for n in range(1, 2001)]
    connection = db.connect()
    with connection:
        for item in many:
            connection.execute(gl.INSERT_MESSAGE_SQL, (item["message_id"], SID, item["role"],
                                                       json.dumps(item["content"]), item["created"], "{}"))
    connection.close()
    reader = DbSessionReader(db.path, SID)
    assert len(texts(list(reader.read()))) == 2000
    cursor = reader.cursor()
    assert len(cursor["seen"]) == KEEP_KEYS and len(json.dumps(cursor)) < 64 * 1024
    db.replace_conversation(SID, many + [message(3000, created=T0 + 5000, text="summary")])
    assert texts(list(DbSessionReader(db.path, SID, roundtrip(reader)).read())) == ["summary"]


def test_rows_that_appear_below_the_cursor_are_not_missed(db: Any) -> None:
    add(db, message(1), message(2, "assistant"))
    connection = db.connect()
    with connection:
        connection.execute("INSERT INTO messages (id, message_id, session_id, role, content_json, created_timestamp) "
                           "VALUES (5, 'm5', ?, 'user', ?, ?)", (SID, json.dumps([gl.text("five")]), T0 + 5))
    reader = DbSessionReader(db.path, SID)
    assert texts(list(reader.read())) == ["message 1", "message 2", "five"]
    with connection:   # e.g. a read that saw a half-checkpointed file missed it, or an id was reused
        connection.execute("INSERT INTO messages (id, message_id, session_id, role, content_json, created_timestamp) "
                           "VALUES (3, 'm3', ?, 'assistant', ?, ?)", (SID, json.dumps([gl.text("three")]), T0 + 3))
    connection.close()
    assert texts(list(reader.read())) == ["three"]
    assert list(reader.read()) == []
    add(db, message(6))
    assert texts(list(reader.read())) == ["message 6"]


# --- schema versions ------------------------------------------------------------------------------------------
def test_older_schema_without_message_id_and_cost(tmp_path: Path) -> None:
    old = gl.GooseDb.create(tmp_path / "old.db", schema="v6")
    old.create_session(SID, working_dir="/old")
    old.add_fixture_messages(SID, [message(1), message(2, "assistant")])
    old.set_tokens(SID, accumulated_input_tokens=7, accumulated_output_tokens=3)
    items = list(DbSessionReader(old.path, SID).read())
    assert [item["type"] for item in items] == ["provider_status", "user_message", "assistant_message", "usage"]
    assert "message_id" not in items[1] and "total_cost_usd" not in items[3]
    reader = DbSessionReader(old.path, SID)
    list(reader.read())
    old.replace_conversation(SID, [message(1), message(2, "assistant"), message(3, text="summary")])
    assert texts(list(reader.read())) == ["summary"]


def test_newer_schema_with_extra_columns(tmp_path: Path) -> None:
    extra = ("ALTER TABLE sessions ADD COLUMN accumulated_cache_read_tokens INTEGER;"
             "ALTER TABLE sessions ADD COLUMN accumulated_cache_write_tokens INTEGER;"
             "ALTER TABLE sessions ADD COLUMN parent_session_id TEXT;"
             "ALTER TABLE messages ADD COLUMN future_column TEXT;")
    new = gl.GooseDb.create(tmp_path / "new.db", extra_sql=extra)
    new.create_session(SID, working_dir="/new")
    new.add_fixture_messages(SID, [message(1)])
    new.set_tokens(SID, accumulated_input_tokens=10, accumulated_output_tokens=2,
                   accumulated_cache_read_tokens=40, accumulated_cache_write_tokens=5, parent_session_id="20251107_9")
    items = list(DbSessionReader(new.path, SID).read())
    assert items[0]["data"]["parent_session_id"] == "20251107_9"
    assert (items[-1]["cache_read_tokens"], items[-1]["cache_creation_tokens"]) == (40, 5)


# --- the database itself ---------------------------------------------------------------------------------------
def test_missing_database_then_created(tmp_path: Path) -> None:
    path = tmp_path / "later" / "sessions.db"
    reader = DbSessionReader(path, SID)
    assert list(reader.read()) == [] and reader.last_error
    assert not path.exists() and not path.parent.exists()
    created = gl.GooseDb.create(path)
    created.create_session(SID)
    created.add_fixture_messages(SID, [message(1)])
    assert texts(list(reader.read())) == ["message 1"]


def test_reading_creates_and_changes_nothing(db: Any) -> None:
    add(db, message(1))
    folder = db.path.parent
    before = {name: os.stat(folder / name).st_mtime_ns for name in os.listdir(folder)}
    content = db.path.read_bytes()
    list(DbSessionReader(db.path, SID).read())
    assert {name: os.stat(folder / name).st_mtime_ns for name in os.listdir(folder)} == before
    assert db.path.read_bytes() == content


def test_reading_while_goose_holds_the_database_open(db: Any) -> None:
    writer = db.connect()   # goose keeps its pool open: the -wal exists
    try:
        writer.execute("SELECT 1").fetchall()
        writer.execute(gl.INSERT_MESSAGE_SQL, ("m1", SID, "user", json.dumps([gl.text("uncommitted")]), T0, "{}"))
        reader = DbSessionReader(db.path, SID)
        assert texts(list(reader.read())) == []          # not committed yet
        writer.commit()
        assert texts(list(reader.read())) == ["uncommitted"]
        with pytest.raises(sqlite3.OperationalError):   # and the reader can never write
            from zag.providers import sqlite_ro
            sqlite_ro.connect(db.path).execute("DELETE FROM messages")
    finally:
        writer.close()


def test_locked_database_is_retried_at_the_next_read(tmp_path: Path) -> None:
    path = tmp_path / "rollback.db"
    connection = sqlite3.connect(path)
    connection.executescript(gl.SCHEMAS["v13"].read_text().replace("PRAGMA journal_mode = WAL;", ""))
    connection.close()
    locked = gl.GooseDb(path)
    locked.create_session(SID)
    locked.add_fixture_messages(SID, [message(1)])
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        reader = DbSessionReader(path, SID)
        assert list(reader.read()) == [] and "locked" in (reader.last_error or "")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert texts(list(reader.read())) == ["message 1"] and reader.last_error is None


def test_unknown_session_and_garbage_cursor(db: Any) -> None:
    assert list(DbSessionReader(db.path, "20990101_1").read()) == []
    add(db, message(1))
    for cursor in (None, "garbage", {"v": 99}, {"v": 1, "rowid": "x", "seen": "y", "usage": 3}):
        assert texts(list(DbSessionReader(db.path, SID, cursor).read())) == ["message 1"]


def test_bad_rows_are_one_parse_warning_each(db: Any) -> None:
    db.add_message(SID, "user", [], created=T0 + 1, raw_content='[{"type": "text", "text": "tru')
    db.add_message(SID, "user", [], created=T0 + 2, raw_content=b'[{"type":"text","text":"\xff\xfe"}]')
    db.add_message(SID, "user", [], created=T0 + 3, raw_content='{"type": "text"}')
    db.add_message(SID, "user", [gl.text("fine")], created=T0 + 4)
    items = list(DbSessionReader(db.path, SID).read())
    assert [item["type"] for item in items] == ["provider_status", "parse_warning", "parse_warning",
                                                "parse_warning", "user_message"]
    assert items[1]["raw"] == '[{"type": "text", "text": "tru' and items[1]["ts"] == T0 + 1


def test_resume_baseline_skips_what_an_earlier_run_logged(db: Any) -> None:
    add(db, message(1), message(2, "assistant"))
    db.set_tokens(SID, accumulated_input_tokens=100, accumulated_output_tokens=10)
    reader = DbSessionReader(db.path, SID, skip_before=T0 + 10)
    assert list(reader.read()) == []
    add(db, message(11, text="Continue"))
    db.set_tokens(SID, accumulated_input_tokens=150, accumulated_output_tokens=20)
    items = list(reader.read())
    assert texts(items) == ["Continue"] and items[-1]["input_tokens"] == 50


def backdate_inserts(db: Any) -> None:
    """Set each row's insert time (`messages.timestamp`, CURRENT_TIMESTAMP) to its `created_timestamp`
    (seconds or milliseconds), as if the rows had been written back then."""
    connection = db.connect()
    with connection:
        connection.execute("UPDATE messages SET timestamp = datetime(CASE WHEN created_timestamp > 10000000000 "
                           "THEN created_timestamp / 1000 ELSE created_timestamp END, 'unixepoch')")
    connection.close()


def test_resume_skips_messages_stamped_in_milliseconds(db: Any) -> None:
    """Some goose versions stored `created_timestamp` in milliseconds (goose reads both: session_manager.rs
    MILLISECOND_TIMESTAMP_THRESHOLD). A resume must skip those too, not log the whole history again."""
    add(db, message(1, created=(T0 + 1) * 1000), message(2, "assistant", created=(T0 + 2) * 1000))
    backdate_inserts(db)
    reader = DbSessionReader(db.path, SID, skip_before=T0 + 10)
    assert list(reader.read()) == []
    add(db, message(11, text="Continue"))
    items = list(reader.read())
    assert texts(items) == ["Continue"] and items[0]["ts"] == T0 + 11


def test_resume_keeps_new_messages_goose_stamped_with_a_stale_millisecond_time(db: Any) -> None:
    """goose stores `max(created, MAX(created_timestamp))` (insert_message), so after milliseconds rows
    every new message carries the old last message's time (aaif-goose/goose#12003). Its insert time
    (`messages.timestamp`) says it is new: it is not skipped."""
    import time

    now = int(time.time())
    add(db, message(1, created=(now - 3600) * 1000), message(2, "assistant", created=(now - 3599) * 1000))
    backdate_inserts(db)
    reader = DbSessionReader(db.path, SID, skip_before=now - 5)
    assert list(reader.read()) == []
    add(db, message(3, text="Continue", created=(now - 3599) * 1000), message(4, "assistant", text="On it",
                                                                          created=(now - 3599) * 1000))
    assert texts(list(reader.read())) == ["Continue", "On it"]


# --- legacy JSONL -----------------------------------------------------------------------------------------------
def test_legacy_file(tmp_path: Path) -> None:
    path = tmp_path / "20250325_200615.jsonl"
    shutil.copy(gl.LEGACY_FILE, path)
    items = list(LegacyJsonlReader(path, path.stem).read())
    assert [item["type"] for item in items] == [
        "provider_status", "user_message", "assistant_message", "tool_call", "tool_result", "assistant_message",
        "usage"]
    assert items[0]["cwd"] == "/home/u/old-proj" and items[0]["ts"] == 1742932000
    assert items[0]["data"]["description"] == "Fix the CI pipeline"
    assert items[1]["message_id"] == "msg_a1b2" and items[4]["output"] == "name: ci\non: push\n"
    assert (items[-1]["input_tokens"], items[-1]["output_tokens"]) == (2700, 400)


def test_legacy_file_rewritten_whole_and_grown_line_by_line(tmp_path: Path) -> None:
    lines = gl.LEGACY_FILE.read_text().splitlines(keepends=True)
    path = tmp_path / "20250325_200615.jsonl"
    whole = list(LegacyJsonlReader(gl.LEGACY_FILE, path.stem).read())
    reader = LegacyJsonlReader(path, path.stem)
    collected: list[Any] = []
    for count in range(1, len(lines) + 1):
        # goose rewrites the whole file (temp file + rename) on every save
        (tmp_path / "tmp").write_text("".join(lines[:count - 1]) + lines[count - 1][:10])
        os.replace(tmp_path / "tmp", path)
        collected += list(reader.read())             # the torn last line waits
        (tmp_path / "tmp").write_text("".join(lines[:count]))
        os.replace(tmp_path / "tmp", path)
        reader = LegacyJsonlReader(path, path.stem, roundtrip(reader))
        collected += list(reader.read())
    # the same events; usage may come earlier (the counters are on the metadata line), summing the same
    assert [item for item in collected if item["type"] != "usage"] == [item for item in whole if item["type"] != "usage"]
    for field in ("input_tokens", "output_tokens"):
        assert sum(item[field] for item in collected if item["type"] == "usage") == 2700 if field == "input_tokens" else 400
        assert sum(item[field] for item in whole if item["type"] == "usage") == (2700 if field == "input_tokens" else 400)
    assert list(reader.read()) == []


def test_legacy_resume_skips_messages_stamped_in_milliseconds(tmp_path: Path) -> None:
    path = tmp_path / "20250325_200615.jsonl"
    lines = [json.dumps({"working_dir": "/w", "description": "d", "message_count": 2})]
    lines += [json.dumps({"role": "user", "created": 1742932000123, "content": [gl.text("old")]}),
              json.dumps({"role": "user", "created": 1742932100, "content": [gl.text("new")]})]
    path.write_text("\n".join(lines) + "\n")
    assert texts(list(LegacyJsonlReader(path, path.stem, skip_before=1742932050).read())) == ["new"]


def test_legacy_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"working_dir": "/w"}\nnot json\n[1,2]\n{"role":"user","content":"str"}\n\xff\xfe\n'
                     b'{"role":"user","created":1,"content":[{"type":"text","text":"ok"}]}\n')
    items = list(LegacyJsonlReader(path, "x").read())
    assert [item["type"] for item in items] == ["provider_status"] + ["parse_warning"] * 4 + ["user_message"]
    assert not any(isinstance(item, LimitSignal) for item in items)
