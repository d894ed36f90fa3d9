"""The rollout reader's per-file mark: a rollout that shrank or was replaced is read again from its start,
and what an earlier read imported from it (up to the mark) is not imported again."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from zag.providers.codex.reader import MARK_KEYS, RolloutReader

THREAD = "5e5e5e5e-4444-4444-8444-000000000001"


def stamp(second: int, millis: int = 0) -> str:
    return f"2026-03-04T05:06:{second:02d}.{millis:03d}Z"


def meta() -> dict[str, Any]:
    return {"timestamp": stamp(0), "type": "session_meta", "payload": {"id": THREAD, "cwd": "/w"}}


def user(text: str, second: int, millis: int = 0) -> dict[str, Any]:
    return {"timestamp": stamp(second, millis), "type": "event_msg",
            "payload": {"type": "user_message", "message": text, "images": []}}


def assistant(text: str, second: int, millis: int = 0) -> dict[str, Any]:
    return {"timestamp": stamp(second, millis), "type": "response_item",
            "payload": {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}}


def turns(seconds: range) -> list[dict[str, Any]]:
    return [record for second in seconds
            for record in (user(f"user {second}", second), assistant(f"assistant {second}", second, 500))]


def write(path: Path, records: list[dict[str, Any]]) -> None:
    replacement = path.with_name(path.name + ".new")
    replacement.write_text("".join(json.dumps(record) + "\n" for record in records))
    os.replace(replacement, path)


def texts(items: Any) -> list[str]:
    return [item.get("content") or item.get("text") for item in items
            if isinstance(item, dict) and item.get("type") in ("user_message", "assistant_message")]


def read_fresh(path: Path, cursor: Any) -> tuple[list[str], dict[str, Any], list[Any]]:
    """One backfill run: a new reader from the saved cursor (round-tripped through JSON)."""
    reader = RolloutReader([path], json.loads(json.dumps(cursor)) if cursor else None)
    items = list(reader.read())
    return texts(items), reader.cursor(), items


def rollout(tmp_path: Path) -> Path:
    return tmp_path / f"rollout-2026-03-04T05-06-00-{THREAD}.jsonl"


def test_a_truncated_rollout_is_not_imported_again(tmp_path: Path) -> None:
    path = rollout(tmp_path)
    records = [meta(), *turns(range(1, 5))]
    write(path, records)
    first, cursor, _ = read_fresh(path, None)
    assert len(first) == 8
    assert cursor["files"][path.name]["mark"][0] == stamp(4, 500)

    write(path, records[:4])
    again, cursor, items = read_fresh(path, cursor)
    assert again == []
    assert any("shrank or was replaced" in str(item.get("message", "")) for item in items if isinstance(item, dict))
    assert cursor["files"][path.name]["mark"][0] == stamp(4, 500)   # the mark is not moved back

    write(path, records[:4] + turns(range(9, 10)))   # it grows again: only the new records are imported
    assert read_fresh(path, cursor)[0] == ["user 9", "assistant 9"]


def test_a_replaced_rollout_keeps_old_records_once_and_imports_new_ones(tmp_path: Path) -> None:
    path = rollout(tmp_path)
    records = [meta(), *turns(range(1, 5))]
    write(path, records)
    _, cursor, _ = read_fresh(path, None)

    write(path, [meta(), *records[3:], *turns(range(5, 7))])
    again, _, _ = read_fresh(path, cursor)
    assert again == ["user 5", "assistant 5", "user 6", "assistant 6"]


def test_a_new_record_at_the_last_imported_timestamp_is_imported_once(tmp_path: Path) -> None:
    path = rollout(tmp_path)
    records = [meta(), *turns(range(1, 3))]
    write(path, records)
    _, cursor, _ = read_fresh(path, None)

    twin = user("twin", 2, 500)   # the same timestamp as the last imported record, another line
    write(path, [records[-1], twin])
    again, cursor, _ = read_fresh(path, cursor)
    assert again == ["twin"]
    assert len(cursor["files"][path.name]["mark"][1]) == 2

    write(path, [records[-1], twin, assistant("after", 3)])
    assert read_fresh(path, cursor)[0] == ["after"]


def test_the_same_reader_continues_and_keys_stay_bounded(tmp_path: Path) -> None:
    path = rollout(tmp_path)
    same_ms = [user(f"burst {n}", 1) for n in range(MARK_KEYS + 10)]
    write(path, [meta(), *same_ms])
    reader = RolloutReader([path])
    assert len(texts(reader.read())) == MARK_KEYS + 10
    mark = reader.cursor()["files"][path.name]["mark"]
    assert mark[0] == stamp(1) and len(mark[1]) == MARK_KEYS

    write(path, [*same_ms[-5:], user("new", 2)])   # replaced under the same (live) reader
    assert texts(reader.read()) == ["new"]
    assert len(json.dumps(reader.cursor()["files"])) < 2000


def test_an_old_cursor_without_a_mark_still_works(tmp_path: Path) -> None:
    path = rollout(tmp_path)
    records = [meta(), *turns(range(1, 3))]
    write(path, records)
    _, cursor, _ = read_fresh(path, None)
    entry = cursor["files"][path.name]
    del entry["mark"]                          # as written before marks existed

    with path.open("a") as handle:             # grown: continues at the offset
        handle.write("".join(json.dumps(record) + "\n" for record in turns(range(3, 4))))
    grown, cursor, _ = read_fresh(path, cursor)
    assert grown == ["user 3", "assistant 3"]
    assert "mark" in cursor["files"][path.name]

    cursor["files"][path.name]["mark"] = ["not", "a", "mark"]   # a damaged mark is ignored
    write(path, records[:2])
    assert read_fresh(path, cursor)[0] == ["user 1"]           # read again in full, as before marks
