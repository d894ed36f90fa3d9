"""A JSONL session file whose last line was torn (its writer killed mid-write: half a record, no newline).

Backfill readers (`provider.open_reader`) report such a tail once as a `parse_warning` with its raw text
when the file has settled (not modified for `tail.TORN_SETTLE_SECS`); before that, and in live readers,
it waits for its newline. If the line is completed after all, the record is imported once and nothing
is reported twice; if a writer appended a new record right after the torn bytes (claude resumed the
session), that record is imported."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from zag.logs import codec
from zag.providers import get
from zag.providers.base import HistorySource, LimitSignal, SessionReader
from zag.providers.claude.reader import ClaudeSessionReader
from zag.providers.codex.reader import RolloutReader
from zag.providers.gemini.reader import GeminiReader

REPO = Path(__file__).resolve().parents[3]
REAL = REPO / "tests" / "fixtures" / "corpus" / "real-cli"
OLD = time.time() - 3600
SID = "7077a11e-2222-4222-8222-000000000001"


@dataclass
class Case:
    provider: str
    path: Path
    lines: list[bytes]           # complete records, without newlines
    live: Callable[[Path], Any]  # the live reader of the same file

    def source(self) -> HistorySource:
        return HistorySource(SID, SID, (self.path,), "fp")

    def reader(self, cursor: Any = None) -> SessionReader:
        return get(self.provider).open_reader(self.source(), cursor)


def claude_record(session_id: str, kind: str, second: int) -> bytes:
    """A claude transcript line (no newline): the `user` question or `assistant` answer number `second`,
    at 14:50:<second>."""
    record: dict[str, Any] = {"type": kind, "uuid": f"{kind}-{second}", "sessionId": session_id, "cwd": "/w",
                              "timestamp": f"2026-11-22T14:50:{second:02d}.000Z", "parentUuid": None}
    if kind == "user":
        record["message"] = {"role": "user", "content": f"question {second}"}
    else:
        record["requestId"] = f"req_{second}"
        record["message"] = {"id": f"msg_{second}", "role": "assistant", "model": "claude-sonnet-5",
                             "content": [{"type": "text", "text": f"answer {second}"}],
                             "usage": {"input_tokens": 3, "output_tokens": 2}}
    return json.dumps(record).encode()


def claude_case(tmp_path: Path) -> Case:
    lines = [claude_record(SID, kind, second) for second in range(1, 5) for kind in ("user", "assistant")]
    path = tmp_path / "projects" / "-w" / f"{SID}.jsonl"
    return Case("claude", path, lines, lambda p: ClaudeSessionReader(SID, p))


def codex_case(tmp_path: Path) -> Case:
    lines = (REAL / "codex" / "rollout_usage_limit_then_resumed_ok.jsonl").read_bytes().splitlines()[:12]
    path = tmp_path / f"rollout-2026-11-22T14-32-08-{SID}.jsonl"
    return Case("codex", path, lines, lambda p: RolloutReader([p]))


def gemini_case(tmp_path: Path) -> Case:
    lines = (REAL / "gemini" / "chat_session-2026-11-22T14-44-0508d65f.jsonl").read_bytes().splitlines()
    path = tmp_path / "chats" / "session-2026-11-22T14-44-0508d65f.jsonl"
    return Case("gemini", path, lines, lambda p: GeminiReader(SID, [p]))


CASES = [claude_case, codex_case, gemini_case]


@pytest.fixture(params=CASES, ids=lambda make: make.__name__.removesuffix("_case"))
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    made = request.param(tmp_path)
    made.path.parent.mkdir(parents=True, exist_ok=True)
    assert len(made.lines) >= 3
    return made


def write(path: Path, data: bytes, *, mtime: float | None = OLD) -> None:
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def append(path: Path, data: bytes, *, mtime: float | None = None) -> None:
    with open(path, "ab") as handle:
        handle.write(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def normal(items: list[Any]) -> list[Any]:
    out = []
    for item in items:
        if isinstance(item, LimitSignal):
            out.append(("signal", item.raw, item.scope, item.reset_at, item.structured))
        elif isinstance(item, dict):
            out.append(msgspec.json.decode(codec.dumps(item)))
    return out


def warnings(items: list[Any]) -> list[dict[str, Any]]:
    return [item for item in items if isinstance(item, dict) and item.get("type") == "parse_warning"]


def content(items: list[Any]) -> list[Any]:
    return [item for item in normal(items) if item.get("type") != "parse_warning"] if items else []


def round_trip(reader: SessionReader) -> Any:
    return json.loads(json.dumps(reader.cursor()))


def whole_read(case: Case, tmp_path: Path, lines: list[bytes]) -> list[Any]:
    """What a fresh backfill reader gives for these complete lines."""
    copy = Case(case.provider, tmp_path / "whole" / case.path.relative_to(tmp_path), lines, case.live)
    copy.path.parent.mkdir(parents=True, exist_ok=True)
    write(copy.path, b"".join(line + b"\n" for line in lines))
    return list(copy.reader().read())


def torn_file(case: Case, *, mtime: float | None = OLD) -> bytes:
    """All lines but the last complete; the last one half written. Returns the torn bytes."""
    last = case.lines[-1]
    torn = last[:len(last) // 2]
    write(case.path, b"".join(line + b"\n" for line in case.lines[:-1]) + torn, mtime=mtime)
    return torn


# --- a settled torn tail -----------------------------------------------------------------------------
def test_a_settled_torn_tail_is_one_parse_warning_with_its_raw_text_once(case: Case) -> None:
    torn = torn_file(case)
    reader = case.reader()
    items = list(reader.read())

    [warning] = warnings(items)
    assert warning["raw"] == torn.decode()
    assert "torn" in warning["message"] or "unterminated" in warning["message"]
    assert getattr(reader, "unsettled", False) is False
    assert warnings(list(reader.read())) == []
    assert list(case.reader(round_trip(reader)).read()) == []


def test_a_torn_tail_completed_later_is_imported_once(case: Case, tmp_path: Path) -> None:
    torn = torn_file(case)
    first = case.reader()
    before = list(first.read())

    append(case.path, case.lines[-1][len(torn):] + b"\n")
    later = case.reader(round_trip(first))
    after = list(later.read())

    assert warnings(after) == []
    assert content(before) + content(after) == content(whole_read(case, tmp_path, case.lines))
    assert list(case.reader(round_trip(later)).read()) == []


def test_a_record_appended_after_torn_bytes_is_imported(case: Case, tmp_path: Path) -> None:
    """claude killed mid-write, then `claude --resume` appends to the same file: the new record starts
    right after the torn bytes, on the same line."""
    torn = torn_file(case)
    first = case.reader()
    before = list(first.read())

    append(case.path, case.lines[-1] + b"\n")
    after = list(case.reader(round_trip(first)).read())

    assert warnings(after) == []
    assert content(before) + content(after) == content(whole_read(case, tmp_path, case.lines))
    assert torn  # (reported once, in `before`)


def test_a_torn_tail_that_grows_but_stays_torn_reports_only_the_new_bytes(case: Case) -> None:
    torn = torn_file(case)
    first = case.reader()
    list(first.read())
    append(case.path, b'"more', mtime=OLD)

    [warning] = warnings(list(case.reader(round_trip(first)).read()))
    assert warning["raw"] == '"more'


# --- a fresh torn tail waits; live readers always wait ---------------------------------------------------
def test_a_fresh_torn_tail_waits_and_is_reported_once_it_settled(case: Case) -> None:
    torn = torn_file(case, mtime=None)
    reader = case.reader()
    assert warnings(list(reader.read())) == []
    assert getattr(reader, "unsettled", None) is True   # backfill then stores no fingerprint: read again

    os.utime(case.path, (OLD, OLD))
    later = case.reader(round_trip(reader))
    [warning] = warnings(list(later.read()))
    assert warning["raw"] == torn.decode()
    assert later.unsettled is False


def test_live_readers_never_report_a_torn_tail(case: Case) -> None:
    torn_file(case)
    assert warnings(list(case.live(case.path).read())) == []


def test_a_whole_last_record_without_newline_is_imported_when_settled(case: Case, tmp_path: Path) -> None:
    write(case.path, b"".join(line + b"\n" for line in case.lines[:-1]) + case.lines[-1])
    reader = case.reader()
    items = list(reader.read())
    assert warnings(items) == []
    assert content(items) == content(whole_read(case, tmp_path, case.lines))

    append(case.path, b"\n")   # its newline after all: nothing more
    assert content(list(case.reader(round_trip(reader)).read())) == []


def test_a_gemini_cursor_forgets_an_over_long_line_once_it_ended(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The cursor kept the tail's `inside_oversized` of an earlier cursor after the tail cleared it, so
    the next read skipped the first line written after the over-long one."""
    from zag.providers import tail

    monkeypatch.setattr(tail, "MAX_LINE_BYTES", 200)
    case = gemini_case(tmp_path)
    case.path.parent.mkdir(parents=True)
    long = b'{"x": "' + b"a" * 400
    write(case.path, case.lines[0] + b"\n", mtime=None)
    zeroth = GeminiReader(SID, [case.path])
    list(zeroth.read())
    append(case.path, long)
    first = GeminiReader(SID, [case.path], round_trip(zeroth))
    list(first.read())
    assert round_trip(first)["files"][case.path.name]["inside_oversized"] is True
    append(case.path, b'"}\n' + case.lines[1] + b"\n")
    second = GeminiReader(SID, [case.path], round_trip(first))
    list(second.read())
    append(case.path, case.lines[2] + b"\n")

    third = list(GeminiReader(SID, [case.path], round_trip(second)).read())

    alone = tmp_path / "alone" / case.path.name
    alone.parent.mkdir()
    write(alone, case.lines[0] + b"\n" + case.lines[1] + b"\n")
    reader = GeminiReader(SID, [alone])
    list(reader.read())
    append(alone, case.lines[2] + b"\n")
    assert content(third) == content(list(GeminiReader(SID, [alone], round_trip(reader)).read())) != []


# --- live: a failed append (a full disk) and the writer's next record on the same line ----------------------
def test_live_a_record_appended_after_a_torn_head_is_read_on_its_own(case: Case, tmp_path: Path) -> None:
    """The agent's append failed half way (its disk was full) and its next record landed right after the
    torn bytes: the live reader, which saw that head unterminated, reports it and reads the record
    (it was one malformed line, the record lost)."""
    torn = torn_file(case, mtime=None)
    live = case.live(case.path)
    before = list(live.read())
    assert warnings(before) == []

    append(case.path, case.lines[-1] + b"\n")
    after = list(live.read())

    [warning] = warnings(after)
    assert warning["raw"] == torn.decode() and "torn line" in warning["message"]
    assert content(before) + content(after) == content(whole_read(case, tmp_path, case.lines))


def test_live_a_torn_looking_tail_completed_by_its_own_end_is_one_record(case: Case, tmp_path: Path) -> None:
    """A record seen half written (its writer was slow) and then finished is no glued line."""
    torn = torn_file(case, mtime=None)
    live = case.live(case.path)
    before = list(live.read())
    append(case.path, case.lines[-1][len(torn):] + b"\n")
    after = list(live.read())
    assert warnings(before + after) == []
    assert content(before) + content(after) == content(whole_read(case, tmp_path, case.lines))
