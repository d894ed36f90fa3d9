"""goose parsers under fuzzing: no exception escapes, every bad record is one parse_warning, the next is read."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.goose import gooselib as gl
from zag.logs import events
from zag.providers.base import LaunchContext
from zag.providers.goose import records
from zag.providers.goose.reader import DbSessionReader, LegacyJsonlReader, decode_message
from zag.providers.goose.scanner import GooseOutputScanner

SID = "20251108_1"


CONTENTS = [json.dumps(message["content"]).encode() for message in gl.fixture_messages()]
SENTINEL = json.dumps([{"type": "text", "text": "sentinel"}]).encode()


HUGE = b'[{"type":"text","text":"' + b"x" * (10 * 1024 * 1024) + b'"'        # 10 MB, truncated


def mutations(data: bytes, rng: random.Random, *, huge: bool = False) -> list[bytes]:
    """Truncations, invalid UTF-8, (a 10 MB line), wrong JSON types, deep nesting."""
    cut = rng.randrange(1, max(2, len(data) - 1))
    return [
        data[:cut],
        data[:cut] + b"\xff\xfe\xc3" + data[cut:],
        *([HUGE] if huge else []),
        b"[" * 50_000 + b"]" * 50_000,                                            # deep nesting
        b'{"content": ' + data + b"}",                                            # object, not a list
        b"42", b"null", b'"text"', b"",
    ]


def wrong_types(content: list[Any], rng: random.Random) -> list[Any]:
    """Valid JSON arrays whose items have wrong field types or unknown types (mapped, never fatal)."""
    odd = json.loads(json.dumps(content))
    for item in odd:
        if isinstance(item, dict):
            key = rng.choice(list(item))
            item[key] = rng.choice([None, 5, [], {}, "s", True, [[[]]]])
    return odd + [{"type": "quantumEntanglement", "x": 1}, [], None, {"type": None}]


def warnings(items: list[Any]) -> int:
    return sum(1 for item in items if isinstance(item, dict) and item.get("type") == events.PARSE_WARNING)


@pytest.mark.parametrize("index", range(len(CONTENTS)))
def test_mutated_content_is_one_warning_each_and_the_next_row_is_read(tmp_path: Path, index: int) -> None:
    rng = random.Random(index)
    db = gl.GooseDb.create(tmp_path / "sessions.db")
    db.create_session(SID)
    bad = mutations(CONTENTS[index], rng, huge=index in (0, 12))
    created = 1762600000
    for raw in bad:
        db.add_message(SID, "assistant", [], created=created, raw_content=raw)
        db.add_message(SID, "user", [], created=created + 1, raw_content=SENTINEL)
        created += 2
    odd = wrong_types(json.loads(CONTENTS[index]), rng)
    db.add_message(SID, "assistant", odd, created=created)
    items = list(DbSessionReader(db.path, SID).read())
    assert warnings(items) == len(bad)
    sentinels = [item for item in items if isinstance(item, dict) and item.get("content") == "sentinel"]
    assert len(sentinels) == len(bad)
    # each warning is directly followed by the sentinel row: nothing else came out of a bad row
    kinds = [item["type"] for item in items if isinstance(item, dict)]
    for position, kind in enumerate(kinds):
        if kind == events.PARSE_WARNING:
            assert kinds[position + 1] == events.USER_MESSAGE


@pytest.mark.parametrize("index", range(len(CONTENTS)))
def test_mutated_legacy_lines(tmp_path: Path, index: int) -> None:
    rng = random.Random(1000 + index)
    message = gl.fixture_messages()[index]
    line = json.dumps({"role": message["role"], "created": message["created"], "content": message["content"]}).encode()
    good = json.dumps({"role": "user", "created": 1, "content": [{"type": "text", "text": "sentinel"}]}).encode()
    bad = [raw for raw in mutations(line, rng, huge=index == 1) if raw.strip()]
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"working_dir": "/w", "description": "d"}\n' + b"".join(raw + b"\n" + good + b"\n" for raw in bad))
    items = list(LegacyJsonlReader(path, "s").read())
    assert warnings(items) == len(bad)
    assert sum(1 for item in items if isinstance(item, dict) and item.get("content") == "sentinel") == len(bad)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
TYPES = st.sampled_from(["text", "image", "toolRequest", "toolResponse", "toolConfirmationRequest", "actionRequired",
                         "frontendToolRequest", "thinking", "redactedThinking", "systemNotification", "error",
                         "reasoning", "ToolUse", "ToolResult", "Text", "mystery"])
ITEM = st.builds(lambda kind, fields: {"type": kind, **fields}, TYPES,
                 st.dictionaries(st.sampled_from(["text", "id", "toolCall", "toolResult", "thinking", "data", "kind",
                                                  "msg", "notificationType", "name", "output", "value", "status"]),
                                 JSON, max_size=5))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(role=st.sampled_from(["user", "assistant", "system", None, 3]), content=st.lists(ITEM | JSON, max_size=6),
       created=JSON, metadata=JSON, message_id=JSON)
def test_any_message_shape_maps_without_exception(role, content, created, metadata, message_id) -> None:
    items = records.message_items(role, content, created=created, message_id=message_id, metadata=metadata,
                                  session_id=SID, tools=records.ToolNames())
    for item in items:
        if isinstance(item, dict):
            assert item["type"] in events.EVENT_TYPES
            json.dumps(item, default=str)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400))
def test_any_bytes_decode_to_items_or_one_warning(data: bytes) -> None:
    items = decode_message("assistant", data, 1762600000, None, data, session_id=SID, tools=records.ToolNames(),
                           source="provider_file")
    assert warnings(items) in (0, 1)
    if warnings(items):
        assert len(items) == 1


@settings(max_examples=200, deadline=None)
@given(chunks=st.lists(st.binary(max_size=200) | st.sampled_from([
    b'{"type":"error","error":', b'"Rate limit exceeded: x"}\n', b"{\n", b"}\n", b"\x1b[31mRan into this error: ",
    b"Rate limit exceeded: resets 3pm\n", b'{"type":"message","message":{"role":"assistant","content":[{"type":"text"']),
    max_size=12))
def test_scanner_survives_any_output(chunks: list[bytes]) -> None:
    ctx = LaunchContext(cwd="/w", env={}, interactive=True, started_at=0.0, zag_session_id="z",
                        extra_limit_patterns=("(?P<reset>\\d+s)",))
    scanner = GooseOutputScanner(ctx)
    for index, chunk in enumerate(chunks):
        scanner.feed(("stdout", "stderr", "pty")[index % 3], chunk)
    scanner.finish()
