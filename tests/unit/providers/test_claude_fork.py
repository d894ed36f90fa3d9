"""History a forked Claude session copies from its parent is not logged again, live or in backfill.

Real 2.1.197 captures (tests/fixtures/claude/README.md): `--resume X --fork-session` writes a new
transcript that starts with a copy of X's records — same uuid, timestamp, message id and requestId, no
marker — after the run's own first stamped lines; `/branch` copies carry `forkedFrom`."""

from __future__ import annotations

import json
from pathlib import Path

from zag.logs import events
from zag.providers.claude.reader import ClaudeSessionReader

OWN = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "claude"
PARENT = OWN / "transcript_fork_parent.jsonl"
FORK_P = OWN / "transcript_fork_session_p.jsonl"
TUI_PARENT = OWN / "transcript_fork_tui_parent.jsonl"
FORK_TUI = OWN / "transcript_fork_session_tui.jsonl"
BRANCH = OWN / "transcript_branch.jsonl"


def read(path: Path, **kwargs) -> list[dict]:
    return [item for item in ClaudeSessionReader(path.stem, path, **kwargs).read() if isinstance(item, dict)]


def contents(items: list[dict], kind: str) -> list:
    return [item["content"] for item in items if item["type"] == kind]


def usage(items: list[dict]) -> list[int]:
    return [item["output_tokens"] for item in items if item["type"] == events.USAGE]


def copy_notes(items: list[dict]) -> list[dict]:
    return [item["data"] for item in items if item["type"] == events.PROVIDER_STATUS
            and isinstance(item.get("data"), dict) and item["data"].get("kind") == "copied_history"]


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def test_the_history_fork_session_copies_is_not_logged_again_in_backfill() -> None:
    parent, fork = read(PARENT), read(FORK_P)
    assert contents(parent, events.USER_MESSAGE) == ["say hi"] and usage(parent) == [5]
    assert contents(fork, events.USER_MESSAGE) == ["say more"]
    assert contents(fork, events.ASSISTANT_MESSAGE) == ["hi from fake upstream"]
    assert usage(fork) == [5]  # the copied response's usage is the parent's: counted there only
    assert copy_notes(fork) == [{"kind": "copied_history", "forked_from": None,
                                 "first_uuid": "947a2c06-089b-4e0d-9496-e1be7f69e5a3",
                                 "first_ts": "2026-12-07T14:06:01.310Z"}]


def test_a_tui_fork_of_two_turns_logs_only_its_own_turn() -> None:
    assert contents(read(TUI_PARENT), events.USER_MESSAGE) == ["say hi", "plain resume"]
    fork = read(FORK_TUI)
    assert contents(fork, events.USER_MESSAGE) == ["tui fork prompt"]
    assert usage(fork) == [5]
    assert len(copy_notes(fork)) == 1


def test_live_knows_copies_by_the_launch_time_without_stamped_lines(tmp_path: Path) -> None:
    """Live, the child's start tells the copies (older) even when no stamped line precedes them."""
    records = [record for record in lines(FORK_P) if "uuid" in record]
    path = write(tmp_path / "fork.jsonl", records)
    launched = events.parse_ts("2026-12-07T14:06:03.300Z")
    items = read(path, started_at=launched)
    assert contents(items, events.USER_MESSAGE) == ["say more"] and usage(items) == [5]
    assert len(copy_notes(items)) == 1


def test_branch_copies_marked_forked_from_name_their_parent() -> None:
    """`/branch` (and the SDK's fork) write copies with `forkedFrom: {sessionId, messageUuid}`."""
    items = read(BRANCH)
    assert contents(items, events.USER_MESSAGE) == ["after branch"] and usage(items) == [5]
    assert [note["forked_from"] for note in copy_notes(items)] == ["11111111-2222-4333-8444-555555555555"]


def test_copies_read_over_two_backfill_runs_are_still_skipped(tmp_path: Path) -> None:
    """The head's state travels in the cursor: a run of copies cut by the end of a read goes on."""
    records = lines(FORK_P)
    path = write(tmp_path / "fork.jsonl", records[:5])   # mode, 2 queue-operations, 2 copies
    first = ClaudeSessionReader("fork", path)
    items = [item for item in first.read() if isinstance(item, dict)]
    cursor = json.loads(json.dumps(first.cursor()))
    write(path, records)
    items += [item for item in ClaudeSessionReader("fork", path, cursor=cursor).read() if isinstance(item, dict)]
    assert contents(items, events.USER_MESSAGE) == ["say more"] and usage(items) == [5]
    assert len(copy_notes(items)) == 1


def test_a_new_session_whose_first_record_is_a_millisecond_older_than_its_snapshot_is_logged(tmp_path: Path) -> None:
    snapshot = {"type": "file-history-snapshot", "messageId": "u1",
                "snapshot": {"messageId": "u1", "trackedFileBackups": {}, "timestamp": "2026-12-07T14:12:45.003Z"}}
    user = {"type": "user", "uuid": "u1", "parentUuid": None, "timestamp": "2026-12-07T14:12:45.002Z",
            "sessionId": "n", "message": {"role": "user", "content": "fresh"}}
    items = read(write(tmp_path / "n.jsonl", [snapshot, user]))
    assert contents(items, events.USER_MESSAGE) == ["fresh"] and copy_notes(items) == []


def test_a_session_resumed_in_place_keeps_its_history() -> None:
    """A plain resume appends to the parent's own transcript: nothing there is a copy."""
    items = read(TUI_PARENT)
    assert contents(items, events.USER_MESSAGE) == ["say hi", "plain resume"] and usage(items) == [5, 5]
    assert copy_notes(items) == []
