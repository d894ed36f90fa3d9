"""Incremental reading of Claude sessions: growth line by line, partial lines, cursors through JSON,
shrink/replace, subagents appearing later, over-long lines."""

from __future__ import annotations

import json
import os
from pathlib import Path

import msgspec
import pytest

from zag.logs import codec
from zag.providers.base import LimitSignal
from zag.providers.claude import reader as reader_module
from zag.providers.claude.reader import ClaudeSessionReader

REPO = Path(__file__).resolve().parents[3]
REAL = REPO / "tests" / "fixtures" / "corpus" / "real-cli" / "claude"
OWN = REPO / "tests" / "fixtures" / "claude"
SOURCES = [OWN / "transcript_tool_use.jsonl", REAL / "transcript_tui_oauth_limit.jsonl",
           REPO / "tests" / "fixtures" / "corpus" / "claude" / "agent-sessions_stage0_small.jsonl"]


def normal(items: list) -> list:
    """Items as comparable plain values (Raw fields decoded, signal timestamps dropped)."""
    out = []
    for item in items:
        if isinstance(item, LimitSignal):
            out.append(("signal", item.raw, item.scope, item.reset_at, item.structured))
        else:
            out.append(msgspec.json.decode(codec.dumps(item)))
    return out


def read_whole(path: Path) -> list:
    return normal(list(ClaudeSessionReader("sid", path).read()))


@pytest.mark.parametrize("source", SOURCES, ids=lambda path: path.name)
def test_growing_line_by_line_with_partial_lines_gives_the_same_events(tmp_path: Path, source: Path) -> None:
    target = tmp_path / "s.jsonl"
    target.write_bytes(b"")
    reader = ClaudeSessionReader("sid", target)
    collected: list = []
    for raw in source.read_bytes().splitlines(keepends=True):
        half = len(raw) // 2
        with open(target, "ab") as handle:
            handle.write(raw[:half])
        collected.extend(reader.read())
        with open(target, "ab") as handle:
            handle.write(raw[half:])
        collected.extend(reader.read())
        collected.extend(reader.read())  # nothing new: nothing emitted twice
    assert normal(collected) == read_whole(source)


@pytest.mark.parametrize("source", SOURCES, ids=lambda path: path.name)
def test_cursor_round_trips_through_json(tmp_path: Path, source: Path) -> None:
    target = tmp_path / "s.jsonl"
    target.write_bytes(b"")
    cursor = None
    collected: list = []
    for raw in source.read_bytes().splitlines(keepends=True):
        with open(target, "ab") as handle:
            handle.write(raw)
        reader = ClaudeSessionReader("sid", target, cursor=cursor)
        collected.extend(reader.read())
        cursor = json.loads(json.dumps(reader.cursor()))
    assert normal(collected) == read_whole(source)


def test_usage_of_a_response_split_across_two_reads_is_counted_once(tmp_path: Path) -> None:
    lines = (OWN / "transcript_tool_use.jsonl").read_bytes().splitlines(keepends=True)
    target = tmp_path / "s.jsonl"
    target.write_bytes(b"".join(lines[:6]))  # up to the first of the two lines of msg_fake_d857…
    first = ClaudeSessionReader("sid", target)
    items = list(first.read())
    cursor = json.loads(json.dumps(first.cursor()))
    target.write_bytes(b"".join(lines))
    items += list(ClaudeSessionReader("sid", target, cursor=cursor).read())
    assert [item["type"] for item in items].count("usage") == 2


def test_replaced_file_is_read_again_without_repeating_records(tmp_path: Path) -> None:
    lines = (OWN / "transcript_tool_use.jsonl").read_bytes().splitlines(keepends=True)
    target = tmp_path / "s.jsonl"
    target.write_bytes(b"".join(lines[:8]))
    reader = ClaudeSessionReader("sid", target)
    first = list(reader.read())
    replacement = tmp_path / "new.jsonl"
    replacement.write_bytes(b"".join(lines))
    os.replace(replacement, target)  # a new inode with the old records and more
    second = list(reader.read())
    assert second[0]["type"] == "provider_status" and "replaced" in second[0]["message"]
    # queue operations have no uuid but a timestamp at or before the file's mark: skipped as well
    assert [item["type"] for item in second[1:]] == ["assistant_message", "usage", "provider_status"]
    kept = [item for item in normal(first + second[1:]) if item["type"] != "provider_status"]
    assert kept == [item for item in read_whole(target) if item["type"] != "provider_status"]


def test_truncated_file_is_noticed(tmp_path: Path) -> None:
    target = tmp_path / "s.jsonl"
    target.write_text('{"type":"user","uuid":"u1","message":{"role":"user","content":"one"}}\n'
                      '{"type":"user","uuid":"u2","message":{"role":"user","content":"two"}}\n')
    reader = ClaudeSessionReader("sid", target)
    assert [item["content"] for item in reader.read()] == ["one", "two"]
    with open(target, "w") as handle:
        handle.write('{"type":"user","uuid":"u3","message":{"role":"user","content":"three"}}\n')
    items = list(reader.read())
    assert items[0]["type"] == "provider_status" and [item.get("content") for item in items[1:]] == ["three"]


def test_subagent_file_appearing_later_is_followed(tmp_path: Path) -> None:
    sid = "11111111-2222-4333-8444-555555555555"
    main = tmp_path / f"{sid}.jsonl"
    main.write_text('{"type":"user","uuid":"p1","message":{"role":"user","content":"delegate"}}\n')
    sub_dir = tmp_path / sid / "subagents"
    reader = ClaudeSessionReader(sid, main, subagents=sub_dir)
    assert [item["content"] for item in reader.read()] == ["delegate"]
    assert not reader.changed()
    sub_dir.mkdir(parents=True)
    (sub_dir / "agent-a1.jsonl").write_text('{"type":"user","uuid":"c1","isSidechain":true,'
                                            '"message":{"role":"user","content":"search"}}\n')
    assert reader.changed()
    [child] = list(reader.read())
    assert (child["content"], child["agent_id"], child["is_sidechain"]) == ("search", "a1", True)
    workflow = sub_dir / "workflows" / "wf1"
    workflow.mkdir(parents=True)
    (workflow / "agent-w1.jsonl").write_text('{"type":"user","uuid":"w1","message":{"role":"user","content":"step"}}\n')
    assert [(item["content"], item["agent_id"]) for item in reader.read()] == [("step", "w1")]
    cursor = reader.cursor()
    assert set(cursor["files"]) == {"main", "subagents/agent-a1.jsonl", "subagents/workflows/wf1/agent-w1.jsonl"}
    with open(sub_dir / "agent-a1.jsonl", "a") as handle:
        handle.write('{"type":"user","uuid":"c2","message":{"role":"user","content":"more"}}\n')
    again = ClaudeSessionReader(sid, main, subagents=sub_dir, cursor=json.loads(json.dumps(cursor)))
    assert [item["content"] for item in again.read()] == ["more"]


@pytest.mark.parametrize("chunk", [64, 1024 * 1024])
def test_over_long_lines_are_one_warning_each_and_reading_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  chunk: int) -> None:
    monkeypatch.setattr(reader_module, "MAX_LINE_BYTES", 300)
    monkeypatch.setattr(reader_module, "KEEP_OF_OVERSIZED", 40)
    monkeypatch.setattr(reader_module, "CHUNK_BYTES", chunk)
    long_line = '{"type":"user","message":{"role":"user","content":"' + "x" * 1000 + '"}}\n'
    target = tmp_path / "s.jsonl"
    target.write_text('{"type":"user","message":{"role":"user","content":"before"}}\n' + long_line
                      + '{"type":"user","message":{"role":"user","content":"after"}}\n' + long_line)
    reader = ClaudeSessionReader("sid", target)
    items = list(reader.read())
    assert [item["type"] for item in items] == ["user_message", "parse_warning", "user_message", "parse_warning"]
    assert items[2]["content"] == "after" and len(items[1]["raw"]) == 40
    assert reader.cursor()["files"]["main"]["offset"] == target.stat().st_size


@pytest.mark.parametrize("through_cursor", [False, True])
def test_an_over_long_line_still_being_written_is_one_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              through_cursor: bool) -> None:
    """Its head is cut as soon as it is over-long; the rest, written after that read (or after a
    backfill stopped there), is skipped, not read as a malformed line of its own."""
    monkeypatch.setattr(reader_module, "MAX_LINE_BYTES", 300)
    monkeypatch.setattr(reader_module, "KEEP_OF_OVERSIZED", 40)
    monkeypatch.setattr(reader_module, "CHUNK_BYTES", 64)  # as in use: a chunk is smaller than the longest line
    target = tmp_path / "s.jsonl"
    target.write_text('{"type":"user","message":{"role":"user","content":"before"}}\n'
                      '{"type":"user","message":{"role":"user","content":"' + "x" * 600)
    reader = ClaudeSessionReader("sid", target)
    assert [item["type"] for item in reader.read()] == ["user_message", "parse_warning"]
    with target.open("a") as handle:
        handle.write("y" * 700)
    if through_cursor:
        reader = ClaudeSessionReader("sid", target, cursor=json.loads(json.dumps(reader.cursor())))
    assert list(reader.read()) == []
    with target.open("a") as handle:
        handle.write('"}}\n{"type":"user","message":{"role":"user","content":"after"}}\n')
    if through_cursor:
        reader = ClaudeSessionReader("sid", target, cursor=json.loads(json.dumps(reader.cursor())))
    assert [item.get("content") for item in reader.read()] == ["after"]
    assert reader.cursor()["files"]["main"]["offset"] == target.stat().st_size


def test_small_chunks_split_lines_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader_module, "CHUNK_BYTES", 37)
    source = OWN / "transcript_tool_use.jsonl"
    assert normal(list(ClaudeSessionReader("sid", source).read())) == read_whole_default(source, monkeypatch)


def read_whole_default(path: Path, monkeypatch: pytest.MonkeyPatch) -> list:
    monkeypatch.setattr(reader_module, "CHUNK_BYTES", 1024 * 1024)
    return read_whole(path)


@pytest.mark.parametrize("cursor", [None, {}, {"v": 99}, "junk", {"v": 1, "files": {"main": {"offset": -5}}},
                                    {"v": 1, "files": {"main": {"offset": "x"}, "../../etc/passwd": {"offset": 0}}},
                                    {"v": 1, "files": [], "state": {"usage": [1, [2, 3], "x"]}}])
def test_bad_cursors_start_from_the_beginning(tmp_path: Path, cursor) -> None:
    target = tmp_path / "s.jsonl"
    target.write_text('{"type":"user","message":{"role":"user","content":"hi"}}\n')
    items = list(ClaudeSessionReader("sid", target, cursor=cursor, subagents=tmp_path / "sid" / "subagents").read())
    assert [item["content"] for item in items] == ["hi"]


def test_missing_file_reads_nothing_until_it_appears(tmp_path: Path) -> None:
    target = tmp_path / "later.jsonl"
    reader = ClaudeSessionReader("sid", target)
    assert list(reader.read()) == [] and not reader.changed()
    target.write_text('{"type":"user","message":{"role":"user","content":"now"}}\n')
    assert reader.changed() and [item["content"] for item in reader.read()] == ["now"]


def _sidechain_replay(line: str, request_id: str, cache_read: int, agent_id: str = "abtw1") -> str:
    """A parent transcript line as a sidechain file writes it again: same message.id, another requestId,
    the sidechain's own (bigger) context in its usage."""
    record = json.loads(line)
    record.update(isSidechain=True, agentId=agent_id, requestId=request_id, uuid=record["uuid"] + "-replay")
    record["message"]["usage"]["cache_read_input_tokens"] = cache_read
    return json.dumps(record) + "\n"


@pytest.mark.parametrize("resumed", [False, True], ids=["one read", "replay read from a cursor"])
def test_response_replayed_in_a_sidechain_under_a_new_request_id_is_counted_once(tmp_path: Path,
                                                                                  resumed: bool) -> None:
    # ccusage #913: a /btw or subagent transcript logs a parent response again with a new requestId;
    # only the sidechain's own responses are new API calls
    sid = "0b7f6c1e-3d2a-4c55-9e61-7a8b9c0d1e2f"
    main = tmp_path / f"{sid}.jsonl"
    parent_lines = (OWN / "transcript_tool_use.jsonl").read_text().splitlines(keepends=True)
    main.write_text("".join(parent_lines))
    sub_dir = tmp_path / sid / "subagents"
    reader = ClaudeSessionReader(sid, main, subagents=sub_dir)
    items = list(reader.read()) if resumed else []
    sub_dir.mkdir(parents=True)
    first_response = next(line for line in parent_lines if '"type":"assistant"' in line)
    own = json.loads(_sidechain_replay(first_response, "req_btw_own", 7))
    own["message"]["id"] = "msg_btw_own"
    own["message"]["content"] = [{"type": "text", "text": "a side answer"}]
    (sub_dir / "agent-abtw1.jsonl").write_text(_sidechain_replay(first_response, "req_btw_replay", 50_000)
                                               + json.dumps(own) + "\n")
    if resumed:
        reader = ClaudeSessionReader(sid, main, subagents=sub_dir, cursor=json.loads(json.dumps(reader.cursor())))
    items += list(reader.read())

    usage = [(item["message_id"], item["cache_read_tokens"], item.get("is_sidechain", False))
             for item in items if isinstance(item, dict) and item["type"] == "usage"]
    assert usage == [("msg_fake_d85766ad5eb34b00", 0, False), ("msg_fake_5c6dc73ce9224047", 0, False),
                     ("msg_btw_own", 7, True)]
