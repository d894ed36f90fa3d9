"""gemini reader: incremental reading (byte by byte, cursors through JSON), several files per session,
shrink/replace, legacy documents rewritten in place, bounded bookkeeping."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.gemini import geminilib as g
from zag.providers.gemini import conversation
from zag.providers.gemini.reader import GeminiReader


SID = "0508d65f-584a-48a8-9f75-1d448b514ef9"
REAL = [g.REAL_CLI / name for name in (
    "chat_session-2026-11-22T14-44-0508d65f.jsonl", "chat_session-2026-11-22T14-46-c86a1836.jsonl",
    "chat_session-2026-11-22T14-46-dcaf2f10.jsonl", "chat_session-2026-11-22T14-44-1f2a73d3.jsonl",
)] + [g.CORPUS / "agent-sessions_jsonl_v040.jsonl"]


def comparable(items: list[Any]) -> list[str]:
    return [json.dumps(item, sort_keys=True) if isinstance(item, dict) else repr(item) for item in items]


def whole(paths: list[Path], session_id: str | None = None) -> list[Any]:
    return list(GeminiReader(session_id, paths).read())


@pytest.mark.parametrize("source", REAL, ids=lambda p: p.name)
def test_growing_file_read_in_pieces_through_json_cursors_equals_one_read(tmp_path: Path, source: Path) -> None:
    data = source.read_bytes()
    target = tmp_path / "chats" / "session-2026-11-22T14-44-abcdef12.jsonl"
    target.parent.mkdir()
    target.write_bytes(b"")
    rng = random.Random(source.name)
    cuts = sorted(rng.sample(range(1, len(data)), min(40, len(data) - 1)))
    got: list[Any] = []
    cursor: Any = None
    previous = 0
    for cut in [*cuts, len(data)]:
        with open(target, "ab") as handle:
            handle.write(data[previous:cut])
        previous = cut
        reader = GeminiReader(None, [target], cursor)
        got += list(reader.read())
        cursor = json.loads(json.dumps(reader.cursor()))
    assert comparable(got) == comparable(whole([source]))
    assert not list(GeminiReader(None, [target], cursor).read()), "nothing left after the last cursor"


def test_one_reader_polled_while_lines_arrive(tmp_path: Path) -> None:
    path = g.write(tmp_path / "chats" / g.session_name(SID), g.meta(SID))
    reader = GeminiReader(SID, [path])
    assert list(reader.read()) == [] and not reader.changed()
    with open(path, "ab") as handle:
        handle.write(json.dumps(g.user("u1", "hello")).encode())      # no newline yet
    assert reader.changed() and list(reader.read()) == []
    g.append(path, "")  # completes the line
    assert [item["content"] for item in reader.read()] == ["hello"]
    g.append(path, g.gemini("a1", "hi", tokens=g.tokens()))
    assert [item["type"] for item in reader.read()] == ["assistant_message", "usage"]
    assert not reader.changed() and list(reader.read()) == []


def test_replaced_file_is_noticed_and_known_messages_not_repeated(tmp_path: Path) -> None:
    path = g.write(tmp_path / "chats" / g.session_name(SID), g.meta(SID), g.user("u1", "one"), g.gemini("a1", "1"))
    reader = GeminiReader(SID, [path])
    assert len(list(reader.read())) == 2
    replacement = path.with_suffix(".tmp")
    g.write(replacement, g.meta(SID), g.user("u1", "one"), g.gemini("a1", "1"), g.user("u2", "two"))
    os.replace(replacement, path)   # gemini's rewriteConversationFile: temp file + rename
    items = list(reader.read())
    assert [item["type"] for item in items] == ["provider_status", "user_message"]
    assert "replaced" in items[0]["message"] and items[1]["content"] == "two"


def test_truncated_file_is_read_again_without_duplicates(tmp_path: Path) -> None:
    path = g.write(tmp_path / "chats" / g.session_name(SID), g.meta(SID), g.user("u1", "one"), g.user("u2", "two"))
    reader = GeminiReader(SID, [path])
    list(reader.read())
    with open(path, "r+b") as handle:
        handle.truncate(10)
    g.write(path, g.meta(SID), g.user("u3", "three"))   # shorter than before
    items = list(reader.read())
    assert [item["type"] for item in items] == ["provider_status", "user_message"]
    assert items[1]["content"] == "three"


def test_resume_bug_sibling_is_part_of_the_session(tmp_path: Path) -> None:
    chats = tmp_path / "chats"
    chats.mkdir()
    primary = g.copy_real("chat_session-2026-11-22T14-44-0508d65f.jsonl", chats)
    sibling = g.copy_real("chat_session-2026-11-22T14-46-0508d65f.jsonl", chats)
    alone = whole([primary], SID)
    together = whole([sibling, primary], SID)   # given in any order: the oldest is read first
    assert comparable(together) == comparable(alone)


def test_legacy_document_and_its_jsonl_conversion(tmp_path: Path) -> None:
    chats = tmp_path / "chats"
    doc = {"sessionId": SID, "projectHash": "ab" * 32, "startTime": "2025-06-01T10:00:00.000Z",
           "lastUpdated": "2025-06-01T10:01:00.000Z", "messages": [g.user("u1", "one"), g.gemini("a1", "1")]}
    legacy = chats / "session-2025-06-01T10-00-0508d65f.json"
    legacy.parent.mkdir()
    legacy.write_text(json.dumps(doc, indent=2))
    converted = g.write(legacy.with_suffix(".jsonl"), g.meta(SID, "2025-06-01T10:00:00.000Z"), g.user("u1", "one"),
                        g.gemini("a1", "1"), g.set_(sessionId=SID), g.user("u2", "two"))
    items = whole([converted, legacy], SID)
    assert [item.get("content") for item in items] == ["one", "1", "two"]


def test_legacy_document_rewritten_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "chats" / "session-2025-06-01T10-00-0508d65f.json"
    path.parent.mkdir()
    doc = {"sessionId": SID, "projectHash": "ab" * 32, "messages": [g.user("u1", "one")]}
    path.write_text(json.dumps(doc, indent=2))
    reader = GeminiReader(SID, [path])
    assert [item["content"] for item in reader.read()] == ["one"]
    assert not reader.changed() and list(reader.read()) == []
    doc["messages"] += [g.gemini("a1", "1", tokens=g.tokens())]
    text = json.dumps(doc, indent=2)
    path.write_text(text[: len(text) // 2])            # caught mid-rewrite: fresh, unparsable
    assert list(reader.read()) == []
    path.write_text(text)
    assert [item["type"] for item in reader.read()] == ["assistant_message", "usage"]
    doc["messages"] = doc["messages"][:1]               # /rewind: the answer is gone
    path.write_text(json.dumps(doc, indent=2))
    [removed] = list(reader.read())
    assert removed["data"]["message_ids"] == ["a1"]


def test_stale_broken_document_is_one_parse_warning(tmp_path: Path) -> None:
    path = tmp_path / "chats" / "session-2025-06-01T10-00-0508d65f.json"
    path.parent.mkdir()
    path.write_text('{"sessionId": "x", "messages": [')
    os.utime(path, (1_700_000_000, 1_700_000_000))
    reader = GeminiReader(SID, [path])
    [warning] = list(reader.read())
    assert warning["type"] == "parse_warning" and warning["raw"] == '{"sessionId": "x", "messages": ['
    assert list(reader.read()) == []
    cursor = json.loads(json.dumps(reader.cursor()))
    assert list(GeminiReader(SID, [path], cursor).read()) == []


def test_marks_are_bounded_and_a_full_resume_snapshot_repeats_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conversation, "MAX_MARKS", 50)
    messages = [g.user(f"u{i}", f"prompt {i}") for i in range(120)]
    path = g.write(tmp_path / "chats" / g.session_name(SID), g.meta(SID), *messages)
    reader = GeminiReader(SID, [path])
    assert len(list(reader.read())) == 120
    cursor = json.loads(json.dumps(reader.cursor()))
    assert len(cursor["conv"]["marks"]) == 50 and cursor["conv"]["evicted"] == 70
    g.append(path, g.set_(sessionId=SID), g.set_(messages=messages), g.user("u999", "new"))
    items = list(GeminiReader(SID, [path], cursor).read())
    assert [item["content"] for item in items] == ["new"]


def test_cursor_of_another_format_starts_over(tmp_path: Path) -> None:
    path = g.write(tmp_path / "chats" / g.session_name(SID), g.meta(SID), g.user("u1", "one"))
    assert len(list(GeminiReader(SID, [path], {"offset": 99}).read())) == 1
    assert len(list(GeminiReader(SID, [path], "garbage").read())) == 1


def test_missing_files_read_as_nothing(tmp_path: Path) -> None:
    reader = GeminiReader(SID, [tmp_path / "chats" / g.session_name(SID), tmp_path / "chats" / "session-x.json"])
    assert list(reader.read()) == [] and not reader.changed()
    json.dumps(reader.cursor())


def test_history_a_checkpoint_loads_is_not_logged_again() -> None:
    """`/chat resume <tag>` (gemini 0.61.0, real file): gemini writes the checkpoint's messages again as new
    records, then a full message list naming exactly them. They were logged as new messages ('second here'
    said a second time); now one `history_loaded` note stands for them, and the turn after is logged."""
    name = "chat_session-2026-12-07T19-34-7e1c03cd.jsonl"
    path = Path(__file__).resolve().parents[2] / "fixtures" / "corpus" / "real-cli" / "gemini" / name
    reader = GeminiReader("7e1c03cd-95d3-4626-bc6b-81a009b436f5", [path])
    items = [item for item in reader.read() if isinstance(item, dict)]
    said = [item["content"] for item in items if item["type"] in ("user_message",)]
    assert said == ["first here", "second here", "third here", "after the checkpoint"]
    assert [item["type"] for item in items].count("assistant_message") == 4
    [loaded] = [item for item in items if (item.get("data") or {}).get("kind") == "history_loaded"]
    assert loaded["data"]["count"] == 4 and loaded["ts"] == "2026-12-07T19:34:22.591Z"


def test_a_full_list_naming_records_known_before_is_no_history_load(tmp_path: Path) -> None:
    """A list that names messages read before (a rolled-back failed turn, a resume's restore) is no load."""
    sid = "abcdef12-4444-4444-8444-444444444444"
    first, answer = g.user("u1", "hello", "2026-11-22T14:44:16.000Z"), g.gemini("a1", "hi", "2026-11-22T14:44:17.000Z")
    path = g.write(tmp_path / g.session_name(sid), g.meta(sid), first, g.set_(lastUpdated="x"), answer,
                   g.user("u2", "failed turn", "2026-11-22T14:44:18.000Z"), g.set_(messages=[first, answer]))
    items = [item for item in GeminiReader(sid, [path]).read() if isinstance(item, dict)]
    assert [item.get("content") for item in items if item["type"] == "user_message"] == ["hello", "failed turn"]
    assert not [item for item in items if (item.get("data") or {}).get("kind") == "history_loaded"]
