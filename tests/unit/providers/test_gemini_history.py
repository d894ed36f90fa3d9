"""gemini discovery for backfill: homes (HOME, GEMINI_CLI_HOME), slug and hash project folders → cwd, one
source per session (resume siblings, legacy + converted files, subagents), prompts of deleted sessions,
fingerprints, and readers that continue from cursors."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from tests.fixtures.gemini import geminilib as g
from zag.providers import get
from zag.providers.tail import fingerprint


P = get("gemini")
SID = "0508d65f-584a-48a8-9f75-1d448b514ef9"


def by_key(env: dict[str, str]) -> dict:
    return {source.source_key: source for source in P.discover(env)}


def test_sessions_of_a_slug_project(tmp_path: Path) -> None:
    cwd = tmp_path / "My Proj"
    env, chats = g.make_home(tmp_path, cwd, slug="my-proj")
    for name in ("chat_session-2026-11-22T14-44-0508d65f.jsonl", "chat_session-2026-11-22T14-46-0508d65f.jsonl",
                 "chat_session-2026-11-22T14-46-c86a1836.jsonl"):
        g.copy_real(name, chats)
    g.write(chats / SID / "agent-7.jsonl", g.meta("agent-7", kind="subagent"), g.user("s1", "sub task"))
    (chats / "session-2026-11-22T14-44-0508d65f.jsonl.unreadable-123").write_text("{")
    found = by_key(env)
    assert sorted(found) == [SID, "c86a1836-d8ba-4d73-a6e0-226f31fe9800"]
    source = found[SID]
    assert [path.name for path in source.paths] == ["session-2026-11-22T14-44-0508d65f.jsonl",
                                                     "session-2026-11-22T14-46-0508d65f.jsonl", "agent-7.jsonl"]
    assert source.provider_session_id == SID and source.cwd == str(cwd)
    assert source.started_at == 1795358640.0  # 2026-11-22T14:44Z, from the file name
    assert source.fingerprint == fingerprint(source.paths)
    assert source.extra == {"kind": "chat", "project_id": "my-proj"}


def test_gemini_cli_home_replaces_home(tmp_path: Path) -> None:
    cwd = tmp_path / "proj"
    env, chats = g.make_home(tmp_path, cwd, via="GEMINI_CLI_HOME")
    g.copy_real("chat_session-2026-11-22T14-47-9159ffe2.jsonl", chats)
    assert list(by_key(env)) == ["9159ffe2-8d9a-46b4-876a-f31a87ad71b4"]
    assert list(by_key({"HOME": env["HOME"]})) == []
    assert list(P.discover({})) == []


def test_hash_folder_maps_to_a_known_cwd(tmp_path: Path) -> None:
    cwd = tmp_path / "old-project"
    env, chats = g.make_home(tmp_path, cwd, slug="hash")
    assert chats.parent.name == hashlib.sha256(str(cwd).encode()).hexdigest()
    g.copy_real("chat_session-2026-11-22T14-47-9159ffe2.jsonl", chats)
    [source] = P.discover(env)
    assert source.cwd is None          # nothing names this path yet
    gemini = Path(env["HOME"]) / ".gemini"
    (gemini / "history" / "old-project").mkdir(parents=True)
    (gemini / "history" / "old-project" / ".project_root").write_text(str(cwd))
    [source] = P.discover(env)
    assert source.cwd == str(cwd)


def test_legacy_document_and_its_conversion_are_one_session(tmp_path: Path) -> None:
    env, chats = g.make_home(tmp_path, tmp_path / "proj")
    doc = {"sessionId": SID, "projectHash": "ab" * 32, "messages": [g.user("u1", "one")]}
    (chats / "session-2025-06-01T10-00-0508d65f.json").write_text(json.dumps(doc, indent=2))
    g.write(chats / "session-2025-06-01T10-00-0508d65f.jsonl", g.meta(SID), g.user("u1", "one"), g.user("u2", "two"))
    (chats / "session-2025-06-02T10-00-ffffffff.json").write_text('{"history": []}')   # no id: its own name
    found = by_key(env)
    assert sorted(found) == [SID, "session-2025-06-02T10-00-ffffffff"]
    assert [p.suffix for p in found[SID].paths] == [".json", ".jsonl"]
    items = list(P.open_reader(found[SID], None).read())
    assert [item["content"] for item in items] == ["one", "two"]


def test_backfill_is_incremental_from_the_cursor(tmp_path: Path) -> None:
    env, chats = g.make_home(tmp_path, tmp_path / "proj")
    path = g.write(chats / g.session_name(SID), g.meta(SID), g.user("u1", "one"))
    [source] = P.discover(env)
    reader = P.open_reader(source, None)
    assert len(list(reader.read())) == 1
    cursor = json.loads(json.dumps(reader.cursor()))
    [same] = P.discover(env)
    assert same.fingerprint == source.fingerprint
    g.append(path, g.gemini("a1", "1"))
    [grown] = P.discover(env)
    assert grown.fingerprint != source.fingerprint
    assert [item["content"] for item in P.open_reader(grown, cursor).read()] == ["1"]


def test_prompts_of_deleted_sessions(tmp_path: Path) -> None:
    env, chats = g.make_home(tmp_path, tmp_path / "proj")
    g.copy_real("chat_session-2026-11-22T14-47-9159ffe2.jsonl", chats)
    log = chats.parent / "logs.json"
    entries = [{"sessionId": "9159ffe2-8d9a-46b4-876a-f31a87ad71b4", "messageId": 0, "type": "user",
                "message": "say hi", "timestamp": "2026-11-22T14:47:28.091Z"},
               {"sessionId": "gone-1", "messageId": 0, "type": "user", "message": "first",
                "timestamp": "2026-11-20T10:00:00.000Z"},
               {"sessionId": "gone-1", "messageId": 1, "type": "user", "message": "second",
                "timestamp": "2026-11-20T10:01:00.000Z"}]
    log.write_text(json.dumps(entries))
    found = by_key(env)
    assert sorted(found) == ["9159ffe2-8d9a-46b4-876a-f31a87ad71b4", "gone-1"]
    gone = found["gone-1"]
    assert gone.paths == (log,) and gone.extra["kind"] == "prompt_log"
    reader = P.open_reader(gone, None)
    items = list(reader.read())
    assert [(i["content"], i["message_id"], i["ts"]) for i in items] == [
        ("first", "prompt-log-0", "2026-11-20T10:00:00.000Z"), ("second", "prompt-log-1", "2026-11-20T10:01:00.000Z")]
    cursor = json.loads(json.dumps(reader.cursor()))
    entries.append({"sessionId": "gone-1", "messageId": 2, "type": "user", "message": "third"})
    log.write_text(json.dumps(entries))
    assert [i["content"] for i in P.open_reader(gone, cursor).read()] == ["third"]
    chat_cursor = {"v": 1, "keys": [], "files": {}, "conv": {"marks": []}}
    assert list(P.open_reader(gone, chat_cursor).read()) == []   # imported from its chat file before


def test_unreadable_corners_do_not_break_discovery(tmp_path: Path) -> None:
    env, chats = g.make_home(tmp_path, tmp_path / "proj")
    (chats / "session-2026-11-22T14-44-badbadba.jsonl").write_bytes(b"\xff\xfe not json\n")
    (chats.parent / "logs.json").write_text("[{broken")
    (Path(env["HOME"]) / ".gemini" / "projects.json").write_text("{not json")
    os.mkfifo(chats / "session-fifo.jsonl") if hasattr(os, "mkfifo") else None
    found = by_key(env)
    assert "session-2026-11-22T14-44-badbadba" in found
    items = list(P.open_reader(found["session-2026-11-22T14-44-badbadba"], None).read())
    assert [item["type"] for item in items] == ["parse_warning"]
