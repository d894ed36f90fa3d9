"""`last_complete_seq`: a dead session's event count, read backwards from the end of its log, bounded."""

from __future__ import annotations

import json
from pathlib import Path

from zag.logs.lastseq import last_complete_seq


def _line(seq: int, text: str = "x") -> bytes:
    return json.dumps({"seq": seq, "type": "stdout", "text": text}).encode() + b"\n"


def test_the_last_complete_line_wins_over_a_torn_and_a_damaged_one(tmp_path: Path) -> None:
    log = tmp_path / "s.jsonl"
    log.write_bytes(b"".join(_line(seq) for seq in range(1, 8)) + b'{"garbage\n' + b'{"seq": 9, "type": "std')
    assert last_complete_seq(log) == 7


def test_lines_longer_than_a_chunk_are_read_whole(tmp_path: Path) -> None:
    log = tmp_path / "s.jsonl"
    log.write_bytes(_line(1) + _line(2, "y" * 200_000) + _line(3, "z" * 150_000))
    assert last_complete_seq(log) == 3
    log.write_bytes(_line(1) + _line(2, "y" * 200_000) + b"torn" * 50_000)
    assert last_complete_seq(log) == 2


def test_the_read_is_bounded(tmp_path: Path) -> None:
    log = tmp_path / "s.jsonl"
    log.write_bytes(_line(1) + _line(2, "y" * 300_000))
    assert last_complete_seq(log, budget=100_000) is None   # the caller keeps the index's count
    assert last_complete_seq(log, budget=400_000) == 2
    log.write_bytes(_line(1) + b"\n" * 5 + b"not json\n" * 50_000)
    assert last_complete_seq(log, budget=64 * 1024) is None


def test_nothing_to_read(tmp_path: Path) -> None:
    log = tmp_path / "s.jsonl"
    assert last_complete_seq(log) is None
    log.write_bytes(b"")
    assert last_complete_seq(log) is None
    log.write_bytes(b'{"seq": 1, "type": "session_started"}')   # torn: no complete line yet
    assert last_complete_seq(log) is None
    log.write_bytes(b'{"seq": 1, "type": "session_started"}\n')
    assert last_complete_seq(log) == 1
