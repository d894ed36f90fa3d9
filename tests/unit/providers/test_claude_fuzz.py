"""Fuzzing the Claude parsers: no exception escapes, every bad line is exactly one parse_warning, the next
line is still read (hypothesis, and mutations of real corpus lines)."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zag.logs import codec
from zag.providers.base import LaunchContext, LimitSignal, SessionIdHint
from zag.providers.claude.reader import ClaudeSessionReader
from zag.providers.claude.records import RecordMapper
from zag.providers.claude.scanner import ClaudeOutputScanner

REPO = Path(__file__).resolve().parents[3]
CORPUS = REPO / "tests" / "fixtures" / "corpus"
GOOD = b'{"type":"user","message":{"role":"user","content":"next line"}}'
CORPUS_LINES = [line for path in sorted([*(CORPUS / "claude").glob("*.jsonl"),
                                         *(CORPUS / "real-cli" / "claude").glob("transcript_*.jsonl"),
                                         *(REPO / "tests" / "fixtures" / "claude").glob("transcript_*.jsonl")])
                for line in path.read_bytes().splitlines() if line.strip()]


def check_line(line: bytes) -> list:
    """Map `line` then a good line; the good line must come out whatever `line` was."""
    mapper = RecordMapper("sid")
    items = mapper.map_line(line)
    warnings = [item for item in items if isinstance(item, dict) and item["type"] == "parse_warning"]
    if warnings:
        assert items == warnings and len(warnings) == 1, items
        assert isinstance(warnings[0]["raw"], str)
    for item in items:
        assert isinstance(item, (dict, LimitSignal))
        if isinstance(item, dict):
            codec.dumps(item)  # the writer can encode whatever comes out
    assert [item["content"] for item in mapper.map_line(GOOD)] == ["next line"]
    return items


def is_warning(items: list) -> bool:
    return len(items) == 1 and isinstance(items[0], dict) and items[0]["type"] == "parse_warning"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_random_bytes(data: bytes) -> None:
    check_line(data.replace(b"\n", b" "))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
record_keys = st.sampled_from(["type", "subtype", "message", "uuid", "timestamp", "isSidechain", "agentId",
                               "isApiErrorMessage", "error", "apiErrorStatus", "quotaLimits", "toolUseResult",
                               "costUSD", "origin", "attachment", "requestId", "name", "input", "output", "id"])
message_keys = st.sampled_from(["id", "role", "model", "content", "usage"])
types = st.sampled_from(["user", "assistant", "system", "summary", "tool_use", "tool_result", "attachment",
                         "queue-operation", "brand-new-type", None])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(record_keys, json_values, max_size=8), st.dictionaries(message_keys, json_values, max_size=5),
       types)
def test_records_with_wrong_types(record: dict, message: dict, kind) -> None:
    record = dict(record)
    if kind is not None:
        record["type"] = kind
    if message:
        record["message"] = message
    check_line(json.dumps(record).encode())


def test_valid_records_of_unknown_types_are_kept_not_warned() -> None:
    items = check_line(b'{"type":"hologram","sessionId":"x","payload":{"a":[1,2,3]}}')
    assert [(item["type"], item["message"]) for item in items] == [("provider_status", "hologram")]


def mutations(line: bytes, rng: random.Random) -> list[tuple[str, bytes, bool]]:
    """(name, mutated line, must be a warning)."""
    cut = rng.randrange(1, len(line))
    position = rng.randrange(0, len(line))
    return [
        ("truncated", line[:cut], line[:cut].rstrip() != line.rstrip()),
        ("invalid utf-8", line[:position] + b"\xff\xfe" + line[position:], True),
        ("wrong top-level type", b"[" + line + b"]", True),
        ("number", b"42", True),
        ("deep nesting", line[:-1] + b',"deep":' + b"[" * 50_000 + b"]" * 50_000 + b"}", True),
    ]


def test_corpus_line_mutations() -> None:
    rng = random.Random(20261207)
    assert len(CORPUS_LINES) > 150
    for line in CORPUS_LINES:
        for name, mutated, must_warn in mutations(line, rng):
            items = check_line(mutated)
            if must_warn:
                assert is_warning(items), (name, mutated[:200], items)


def test_wrong_json_types_in_real_records_are_one_warning_each() -> None:
    for line in CORPUS_LINES:
        record = json.loads(line)
        if record.get("type") not in ("user", "assistant") or not isinstance(record.get("message"), dict):
            continue
        for key, value in (("message", 5), ("isSidechain", "yes"), ("timestamp", [1])):
            broken = dict(record, **{key: value})
            assert is_warning(check_line(json.dumps(broken).encode())), (key, line[:120])
        broken = dict(record, message=dict(record["message"], content=12))
        assert is_warning(check_line(json.dumps(broken).encode()))


def test_lone_surrogate_escapes_from_javascript_are_repaired() -> None:
    line = b'{"type":"user","message":{"role":"user","content":"emoji cut: \\ud83d and pair \\ud83d\\ude00"}}'
    [item] = check_line(line)
    assert item["content"] == "emoji cut: \ufffd and pair \U0001F600"


def test_ten_megabyte_line_then_more(tmp_path: Path) -> None:
    big = json.dumps({"type": "user", "message": {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t", "content": "y" * 10_000_000}]}}).encode()
    path = tmp_path / "s.jsonl"
    path.write_bytes(big + b"\n" + big[: len(big) // 2] + b"\n" + GOOD + b"\n")
    items = list(ClaudeSessionReader("sid", path).read())
    assert [item["type"] for item in items] == ["tool_result", "parse_warning", "user_message"]
    assert len(codec.dumps(items[0])) > 10_000_000


def test_a_file_of_mixed_good_and_bad_lines(tmp_path: Path) -> None:
    rng = random.Random(7)
    lines, bad = [], 0
    for line in CORPUS_LINES[:120]:
        if rng.random() < 0.3:
            lines.append(line[: rng.randrange(1, len(line) - 1)])
            bad += 1
        lines.append(line)
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    items = list(ClaudeSessionReader("sid", path).read())
    assert sum(1 for item in items if isinstance(item, dict) and item["type"] == "parse_warning") == bad
    clean = tmp_path / "clean.jsonl"
    clean.write_bytes(b"\n".join(CORPUS_LINES[:120]) + b"\n")
    expected = [item for item in ClaudeSessionReader("sid", clean).read() if not isinstance(item, LimitSignal)]
    got = [item for item in items if not isinstance(item, LimitSignal) and item["type"] != "parse_warning"]
    assert len(got) == len(expected)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8), st.sampled_from(["stdout", "stderr", "pty"]))
def test_scanner_survives_anything(chunks: list[bytes], stream: str) -> None:
    scan = ClaudeOutputScanner(LaunchContext(cwd="/", env={}, interactive=False, started_at=time.time(),
                                             zag_session_id="z", extra_limit_patterns=("(?P<reset>x+)",)))
    items = []
    for chunk in chunks:
        items.extend(scan.feed(stream, chunk))
    items.extend(scan.finish())
    assert all(isinstance(item, (LimitSignal, SessionIdHint)) for item in items)
