"""gemini parsers under hostile input: mutations of real corpus lines (truncation, invalid UTF-8, 10 MB
lines, wrong JSON types, unknown types, deep nesting) and random bytes. No exception escapes, a bad line
is exactly one parse_warning, and the next line is still read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zag.providers.base import LaunchContext
from zag.providers.gemini.reader import GeminiReader
from zag.providers.gemini.scanner import GeminiScanner

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "corpus"
SOURCES = sorted((CORPUS / "real-cli" / "gemini").glob("chat_*.jsonl")) + [CORPUS / "gemini" / "agent-sessions_jsonl_v040.jsonl"]
LINES = [line for path in SOURCES for line in path.read_bytes().splitlines() if line.strip()]
BEFORE = json.dumps({"id": "before-1", "type": "user", "content": [{"text": "before"}]}).encode()
AFTER = json.dumps({"id": "after-1", "type": "user", "content": [{"text": "after"}]}).encode()
VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20),
                   st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))
_settings = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def read_around(tmp_path: Path, bad: bytes) -> list[Any]:
    path = tmp_path / "chats" / "session-2026-11-22T14-44-abcdef12.jsonl"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"\n".join([BEFORE, bad, AFTER]) + b"\n")
    return list(GeminiReader("abcdef12", [path]).read())


def check(items: list[Any], *, bad: bool) -> None:
    bodies = [item for item in items if isinstance(item, dict)]
    warnings = [body for body in bodies if body["type"] == "parse_warning"]
    users = [body["content"] for body in bodies if body["type"] == "user_message"]
    assert users[0] == "before" and users[-1] == "after", "the lines around the bad one are read"
    assert users.count("after") == 1
    assert len(warnings) == (1 if bad else len(warnings)) and len(warnings) <= 1
    for warning in warnings:
        assert isinstance(warning["raw"], (str, type(None))) and warning["message"]
        json.dumps(warning)


@_settings
@given(line=st.sampled_from(LINES), data=st.data())
def test_truncated_lines(tmp_path: Path, line: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(1, len(line) - 1))
    check(read_around(tmp_path, line[:cut]), bad=True)


@_settings
@given(line=st.sampled_from(LINES), data=st.data())
def test_invalid_utf8(tmp_path: Path, line: bytes, data: st.DataObject) -> None:
    at = data.draw(st.integers(0, len(line)))
    junk = data.draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xfe\xfe\xfe"]))
    items = read_around(tmp_path, line[:at] + junk + line[at:])
    check(items, bad=True)


@_settings
@given(line=st.sampled_from(LINES), data=st.data())
def test_wrong_json_types(tmp_path: Path, line: bytes, data: st.DataObject) -> None:
    record = json.loads(line)
    key = data.draw(st.sampled_from(sorted(record)))
    record[key] = data.draw(VALUES)
    if isinstance(record.get("$set"), dict) and data.draw(st.booleans()):
        record["$set"]["messages"] = data.draw(VALUES)
    check(read_around(tmp_path, json.dumps(record).encode()), bad=False)


@_settings
@given(kind=st.text(max_size=12), line=st.sampled_from(LINES))
def test_unknown_types(tmp_path: Path, kind: str, line: bytes) -> None:
    record = json.loads(line)
    record["type"] = kind
    items = read_around(tmp_path, json.dumps(record).encode())
    check(items, bad=False)
    assert not [item for item in items if isinstance(item, dict) and item["type"] == "parse_warning"]


@_settings
@given(blob=st.binary(max_size=300))
def test_random_bytes(tmp_path: Path, blob: bytes) -> None:
    blob = blob.replace(b"\n", b" ").replace(b"\r", b" ")
    items = read_around(tmp_path, blob)
    check(items, bad=False)


def test_ten_megabyte_lines(tmp_path: Path) -> None:
    text = "x" * (10 * 1024 * 1024)
    big = json.dumps({"id": "big", "type": "user", "content": [{"text": text}]}).encode()
    items = read_around(tmp_path, big)
    check(items, bad=False)
    assert [item["content"] for item in items][1] == text
    garbage = b"{" + b"x" * (10 * 1024 * 1024)
    check(read_around(tmp_path, garbage), bad=True)


def test_deep_nesting(tmp_path: Path) -> None:
    depth = 200_000
    deep = b'{"id":"deep","type":"user","content":' + b"[" * depth + b"]" * depth + b"}"
    check(read_around(tmp_path, deep), bad=True)
    deep_set = b'{"$set":{"messages":' + b"[" * depth + b"]" * depth + b"}}"
    check(read_around(tmp_path, deep_set), bad=True)


def test_broken_legacy_documents(tmp_path: Path) -> None:
    path = tmp_path / "chats" / "session-2025-06-01T10-00-abcdef12.json"
    path.parent.mkdir()
    for content in (b"[1, 2]", b'{"messages": 5}', b'{"messages": [5, {"id": 3}], "history": "x"}', b"\xff{}",
                    b'{"messages": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"):
        path.write_bytes(content)
        import os
        os.utime(path, (1_700_000_000, 1_700_000_000))
        items = list(GeminiReader("abcdef12", [path]).read())
        assert [item["type"] for item in items if item["type"] == "parse_warning"] == ["parse_warning"], content[:40]


@_settings
@given(chunks=st.lists(st.binary(max_size=200), max_size=20),
       stream=st.sampled_from(["stdout", "stderr", "pty"]))
def test_scanner_never_raises(chunks: list[bytes], stream: str) -> None:
    scanner = GeminiScanner(LaunchContext(cwd="/", env={}, interactive=False, started_at=0, zag_session_id="z",
                                          extra_limit_patterns=("(?P<reset>\\d+s)",)))
    for chunk in chunks:
        scanner.feed(stream, chunk)
    scanner.finish()


@_settings
@given(line=st.sampled_from(LINES), data=st.data())
def test_scanner_on_mutated_json_lines(line: bytes, data: st.DataObject) -> None:
    scanner = GeminiScanner(LaunchContext(cwd="/", env={}, interactive=False, started_at=0, zag_session_id="z"))
    cut = data.draw(st.integers(0, len(line)))
    scanner.feed("stdout", b'{"type":"result","status":"error","error":' + line[:cut] + b"}\n")
    scanner.feed("stderr", b"{\n" + line[:cut] + b"\n")
    scanner.finish()
