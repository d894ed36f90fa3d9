"""`zag backfill` over a Codex rollout that shrank or was replaced between two backfills: nothing already
imported is written again, records added after the last import are (modelled on the Claude ones in
test_backfill_sources.py)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_backfill_cli import CORPUS, read_log, sessions_json
from tests.integration.test_backfill_sources import backfill, content_keys

THREAD = "5e5e5e5e-3333-4333-8333-000000000001"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


def stamp(second: int, millis: int = 0) -> str:
    return f"2026-03-04T05:06:{second:02d}.{millis:03d}Z"


def meta() -> dict[str, Any]:
    return {"timestamp": stamp(0), "type": "session_meta",
            "payload": {"id": THREAD, "timestamp": stamp(0), "cwd": "/w", "originator": "codex_cli_rs",
                        "cli_version": "0.99.0"}}


def user(text: str, second: int, millis: int = 0) -> dict[str, Any]:
    return {"timestamp": stamp(second, millis), "type": "event_msg",
            "payload": {"type": "user_message", "message": text, "images": []}}


def assistant(text: str, second: int, millis: int = 0) -> dict[str, Any]:
    return {"timestamp": stamp(second, millis), "type": "response_item",
            "payload": {"type": "message", "role": "assistant",
                        "content": [{"type": "output_text", "text": text}]}}


def turns(seconds: range) -> list[dict[str, Any]]:
    return [record for second in seconds
            for record in (user(f"user {second}", second), assistant(f"assistant {second}", second, 500))]


def rollout_path(home: Path) -> Path:
    folder = home / ".codex" / "sessions" / "2026" / "03" / "04"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"rollout-2026-03-04T05-06-00-{THREAD}.jsonl"


def write(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))


def replace_with(path: Path, records: list[dict[str, Any]]) -> None:
    replacement = path.with_name("replacement")
    write(replacement, records)
    os.replace(replacement, path)


def only_log(home: Path) -> list[dict[str, Any]]:
    [row] = sessions_json(home)
    return read_log(row)


def assert_each_once(log: list[dict[str, Any]], texts: set[str]) -> None:
    keys = content_keys(log)
    assert len(keys) == len(set(keys)), [key for key in keys if keys.count(key) > 1]
    assert {text for _, text in keys} == texts


def texts_of(records: list[dict[str, Any]]) -> set[str]:
    found = set()
    for record in records:
        payload = record["payload"]
        if payload.get("type") == "user_message":
            found.add(payload["message"])
        elif payload.get("type") == "message":
            found.add(payload["content"][0]["text"])
    return found


def test_a_truncated_codex_rollout_is_not_imported_twice(home: Path) -> None:
    records = [meta(), *turns(range(1, 7))]
    path = rollout_path(home)
    write(path, records)
    backfill(home, "--provider", "codex")

    path.write_text("".join(json.dumps(record) + "\n" for record in records[:7]))
    backfill(home, "--provider", "codex")

    log = only_log(home)
    assert any("shrank or was replaced" in str(event.get("message", "")) for event in log)
    assert_each_once(log, texts_of(records))


def test_a_replaced_codex_rollout_keeps_old_records_once_and_imports_new_ones(home: Path) -> None:
    records = [meta(), *turns(range(1, 7))]
    path = rollout_path(home)
    write(path, records)
    backfill(home, "--provider", "codex")

    newer = turns(range(7, 9))
    replace_with(path, [meta(), *records[3:9], *newer])   # some old records kept, new ones after them
    backfill(home, "--provider", "codex")

    assert_each_once(only_log(home), texts_of(records + newer))


def test_a_codex_rollout_replaced_with_a_new_record_at_the_last_imported_timestamp(home: Path) -> None:
    """Records sharing the last imported timestamp: the ones already imported are recognised by content."""
    records = [meta(), *turns(range(1, 4))]
    twin = user("twin", 3, 500)   # same timestamp as the last imported record
    path = rollout_path(home)
    write(path, records)
    backfill(home, "--provider", "codex")

    replace_with(path, [*records[-2:], twin])
    backfill(home, "--provider", "codex")
    replace_with(path, [*records[-2:], twin])   # and again: the twin is not imported a second time
    backfill(home, "--provider", "codex")

    assert_each_once(only_log(home), texts_of(records) | {"twin"})


def test_the_largest_corpus_rollout_halved_is_not_imported_twice(home: Path) -> None:
    corpus = max((CORPUS / "codex").glob("*.jsonl"), key=lambda file: file.stat().st_size)
    path = rollout_path(home)
    shutil.copy(corpus, path)
    backfill(home, "--provider", "codex")
    first = content_keys(only_log(home))

    lines = corpus.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:len(lines) // 2]))
    backfill(home, "--provider", "codex")

    assert content_keys(only_log(home)) == first
