"""The start of a backfilled session whose first records carry no time (claude `summary` lines, a codex
`session_meta` without `timestamp`) is its first dated record: in the index row, in `session_started`,
and after `zag reindex` (which takes `session_started`'s time) — however many undated records lead."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from zag import paths
from zag.logs import events
from zag.logs.backfill import run_backfill
from zag.logs.index import Index
from zag.logs.reader import read_events
from zag.logs.reindex import reindex
from zag.providers import get
from zag.providers.codex.limits import USAGE_LIMIT_CODE

CLAUDE_SID = "5a5a5a5a-4444-4444-8444-000000000001"
CODEX_TID = "5b5b5b5b-4444-4444-8444-000000000002"
FIRST = "2026-11-22T15:00:07.000Z"


def claude_transcript(home: Path, undated: int) -> None:
    records: list[dict[str, Any]] = [{"type": "summary", "summary": f"topic {i}", "leafUuid": f"leaf-{i}"}
                                     for i in range(undated)]
    for second in (7, 9):
        records.append({"type": "user", "uuid": f"u{second}", "parentUuid": None, "sessionId": CLAUDE_SID,
                        "cwd": "/w", "timestamp": f"2026-11-22T15:00:0{second}.000Z",
                        "message": {"role": "user", "content": f"q{second}"}})
    write(home / ".claude" / "projects" / "-w" / f"{CLAUDE_SID}.jsonl", records)


def codex_rollout(home: Path, undated: int) -> None:
    records: list[dict[str, Any]] = [{"type": "session_meta", "payload": {"id": CODEX_TID, "cwd": "/cx"}}]
    records += [{"type": "event_msg", "payload": {"type": "agent_reasoning", "text": f"r{i}"}}
                for i in range(undated - 2)]
    # a usage-limit error without a time: its `usage_limit_hit` must not take the time of the import
    records.append({"type": "event_msg", "payload": {"type": "error", "message": "You've hit your usage limit.",
                                                      "codex_error_info": USAGE_LIMIT_CODE}})
    for second in (7, 9):
        records.append({"timestamp": f"2026-11-22T15:00:0{second}.000Z", "type": "event_msg",
                        "payload": {"type": "user_message", "message": f"q{second}"}})
    # the file name's time (when codex created it) is earlier than the first dated record
    write(home / ".codex" / "sessions" / "2026" / "11" / "22" / f"rollout-2026-11-22T14-59-59-{CODEX_TID}.jsonl",
          records)


def write(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record) + "\n" for record in records))


CASES = {"claude": (claude_transcript, CLAUDE_SID), "codex": (codex_rollout, CODEX_TID)}


@pytest.mark.parametrize("undated", [2, 300], ids=["few", "more-than-a-batch"])
@pytest.mark.parametrize("provider", sorted(CASES))
def test_the_start_is_the_first_dated_record(tmp_path: Path, provider: str, undated: int) -> None:
    make, provider_session_id = CASES[provider]
    home = tmp_path / "home"
    make(home, undated)

    run_backfill([get(provider)], env={"HOME": str(home)}, jobs=1)

    with Index() as index:
        session_id = index.find_by_provider_session(provider, provider_session_id)
        assert session_id
        row = index.get_session(session_id)
    log = list(read_events(paths.session_log(session_id)))
    assert log[0]["type"] == "session_started" and log[0]["ts"] == FIRST
    assert all(event["ts"] >= FIRST for event in log)   # the undated head too: not the time of the import
    assert row is not None and row["started_at"] == events.parse_ts(FIRST)
    assert row["ended_at"] == events.parse_ts("2026-11-22T15:00:09.000Z")
    if provider == "codex":
        assert [event["type"] for event in log].count("usage_limit_hit") == 1

    reindex()
    with Index() as index:
        again = index.get_session(session_id)
    assert again is not None and again["started_at"] == events.parse_ts(FIRST)


def test_the_end_is_the_latest_record_after_a_reindex_too(tmp_path: Path) -> None:
    """Records out of time order (claude writes an attachment a millisecond before the prompt it follows;
    a redacted transcript put a later record first): the end is the latest time, as backfill gives it,
    not the time of the last line, which `zag reindex` took."""
    home = tmp_path / "home"
    records = [{"type": "user", "uuid": f"u{second}", "parentUuid": None, "sessionId": CLAUDE_SID, "cwd": "/w",
                "timestamp": f"2026-11-22T15:00:0{second}.000Z", "message": {"role": "user", "content": f"q{second}"}}
               for second in (7, 9, 8)]
    write(home / ".claude" / "projects" / "-w" / f"{CLAUDE_SID}.jsonl", records)
    run_backfill([get("claude")], env={"HOME": str(home)}, jobs=1)
    with Index() as index:
        session_id = index.find_by_provider_session("claude", CLAUDE_SID)
        assert session_id
        row = index.get_session(session_id)
    assert row is not None and row["ended_at"] == events.parse_ts("2026-11-22T15:00:09.000Z")

    reindex()
    with Index() as index:
        again = index.get_session(session_id)
    assert again is not None and (again["started_at"], again["ended_at"]) == (row["started_at"], row["ended_at"])
