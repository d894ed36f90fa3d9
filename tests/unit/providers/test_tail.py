"""JsonlTail, the line reader under the codex and gemini readers: over-long lines cut once, even while
they are still being written (across reads, and across a cursor saved in between)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zag.providers import tail as tail_module
from zag.providers.tail import JsonlTail


@pytest.fixture(autouse=True)
def small_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tail_module, "MAX_LINE_BYTES", 300)
    monkeypatch.setattr(tail_module, "KEEP_OF_OVERSIZED", 40)
    monkeypatch.setattr(tail_module, "CHUNK_BYTES", 64)


def append(path: Path, text: str) -> None:
    with path.open("a") as handle:
        handle.write(text)


@pytest.mark.parametrize("through_cursor", [False, True])
def test_an_over_long_line_still_being_written_is_cut_once(tmp_path: Path, through_cursor: bool) -> None:
    target = tmp_path / "s.jsonl"
    target.write_text('{"a":1}\n{"long":"' + "x" * 600)
    tail = JsonlTail(target)
    lines = list(tail.lines())
    assert lines[0] == b'{"a":1}' and len(lines) == 2 and lines[1] == b'{"long":"' + b"x" * 31
    append(target, "y" * 700)
    if through_cursor:
        tail = JsonlTail(target, json.loads(json.dumps(tail.cursor())))
    assert list(tail.lines()) == []
    append(target, '"}\n{"b":2}\n')
    if through_cursor:
        tail = JsonlTail(target, json.loads(json.dumps(tail.cursor())))
    assert list(tail.lines()) == [b'{"b":2}']
    assert tail.offset == target.stat().st_size and "inside_oversized" not in tail.cursor()


def test_a_file_replaced_inside_an_over_long_line_is_read_whole(tmp_path: Path) -> None:
    target = tmp_path / "s.jsonl"
    target.write_text('{"long":"' + "x" * 600)
    tail = JsonlTail(target)
    assert len(list(tail.lines())) == 1 and tail.inside_oversized
    replacement = tmp_path / "new.jsonl"
    replacement.write_text('{"c":3}\n')
    replacement.replace(target)
    assert list(tail.lines()) == [b'{"c":3}'] and tail.restarted and not tail.inside_oversized
