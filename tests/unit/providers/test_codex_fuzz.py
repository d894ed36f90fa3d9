"""Fuzzing the Codex record mapping: no exception escapes, a bad line is exactly one `parse_warning`, and the
next line is still read."""

from __future__ import annotations

import json
import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from zag.providers.base import LimitSignal
from zag.providers.codex.reader import RolloutReader
from zag.providers.codex.records import RecordMapper

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "corpus"
LINES = [line for path in sorted((CORPUS / "codex").glob("*.jsonl")) + sorted((CORPUS / "real-cli" / "codex").glob("*.jsonl"))
         for line in path.read_bytes().split(b"\n") if line.strip()]
GOOD = b'{"timestamp":"2026-11-22T14:32:08.000Z","type":"event_msg","payload":{"type":"user_message","message":"next"}}'


def is_json_object(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (ValueError, RecursionError):
        return False


def check(line: bytes) -> list:
    items = RecordMapper().map_line(line)
    assert isinstance(items, list)
    warnings = [i for i in items if isinstance(i, dict) and i["type"] == "parse_warning"]
    assert len(warnings) <= 1
    if warnings:
        assert items == warnings  # a bad line is that one warning, nothing else
    if line.strip() and not is_json_object(line):
        assert len(warnings) == 1
    for item in items:
        assert isinstance(item, (dict, LimitSignal))
    return items


def then_next_line_is_read(bad: bytes, tmp_path: Path) -> None:
    path = tmp_path / "rollout.jsonl"
    path.write_bytes(bad.replace(b"\n", b" ") + b"\n" + GOOD + b"\n")
    items = list(RolloutReader([path]).read())
    assert items[-1]["type"] == "user_message" and items[-1]["content"] == "next"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes(line: bytes) -> None:
    check(line.replace(b"\n", b" "))


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(
                        st.sampled_from(["type", "payload", "timestamp", "message", "info", "item", "content",
                                         "role", "call_id", "output", "error", "rate_limits", "id", "cwd"]),
                        children, max_size=5), max_leaves=20),
       st.sampled_from(["session_meta", "turn_context", "response_item", "event_msg", "compacted", "world_state",
                        "x_future"]))
def test_wrong_types_in_known_records(payload, kind: str) -> None:
    check(json.dumps({"timestamp": "2026-11-22T14:32:08.000Z", "type": kind, "payload": payload}).encode())


def test_corpus_line_mutations(tmp_path: Path) -> None:
    rng = random.Random(1234)
    for line in LINES:
        cut = line[: rng.randrange(1, max(2, len(line)))]
        if not is_json_object(cut):
            assert [i["type"] for i in check(cut)] == ["parse_warning"]
        spot = rng.randrange(0, len(line))
        check(line[:spot] + b"\xff\xfe\xc3" + line[spot:])
        if not is_json_object(line):
            continue
        record = json.loads(line)
        if isinstance(record.get("payload"), dict):
            for key in list(record["payload"])[:6]:
                for wrong in (None, 7, [], "x", {"deep": [1, {"x": None}]}):
                    mutated = dict(record, payload=dict(record["payload"], **{key: wrong}))
                    check(json.dumps(mutated).encode())
        check(json.dumps(dict(record, type="brand_new_type")).encode())
    then_next_line_is_read(LINES[3][:50], tmp_path)


def test_huge_and_deep_lines(tmp_path: Path) -> None:
    big_text = "x" * (10 * 1024 * 1024)
    big = json.dumps({"timestamp": "2026-11-22T14:32:08.000Z", "type": "event_msg",
                      "payload": {"type": "agent_message", "message": big_text}}).encode()
    (item,) = check(big)
    assert item["type"] == "assistant_message" and len(item["content"]) == len(big_text)
    broken = big[:-3]
    assert [i["type"] for i in check(broken)] == ["parse_warning"]
    then_next_line_is_read(broken, tmp_path)
    deep = b'{"type":"event_msg","payload":' + b'{"a":' * 20000 + b"1" + b"}" * 20000 + b"}"
    assert [i["type"] for i in check(deep)] == ["parse_warning"]
    then_next_line_is_read(deep, tmp_path)
    deep_list = b"[" * 100000 + b"]" * 100000
    assert [i["type"] for i in check(deep_list)] == ["parse_warning"]
