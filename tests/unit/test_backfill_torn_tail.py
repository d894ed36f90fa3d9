"""`zag backfill` (in-process) over a claude transcript whose last line was torn: SIGKILLed mid-write,
the file then never changes again. Backfill must come back to it once it settled (the unchanged
fingerprint must not hide it), report it once, and import the line if it is completed after all."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.unit.providers.test_torn_tail import claude_record
from zag import paths
from zag.logs import backfill
from zag.logs.backfill import run_backfill
from zag.logs.index import Index
from zag.logs.reader import read_events
from zag.providers import get, tail

SID = "70a7a11e-3333-4333-8333-000000000001"


def record(kind: str, second: int) -> bytes:
    return claude_record(SID, kind, second)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


def run(home: Path) -> backfill.ProviderSummary:
    [summary] = run_backfill([get("claude")], env={"HOME": str(home)}, jobs=1)
    return summary


def log(home: Path) -> list[dict[str, Any]]:
    with Index() as index:
        session_id = index.find_by_provider_session("claude", SID)
    assert session_id
    return list(read_events(paths.session_log(session_id)))


def test_a_torn_tail_too_fresh_on_the_first_run_is_reported_by_a_later_run(home: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    transcript = home / ".claude" / "projects" / "-w" / f"{SID}.jsonl"
    transcript.parent.mkdir(parents=True)
    last = record("assistant", 2)
    torn = last[:len(last) // 2]
    transcript.write_bytes(record("user", 1) + b"\n" + record("assistant", 1) + b"\n" + record("user", 2) + b"\n"
                           + torn)
    killed_at = time.time() - 30
    os.utime(transcript, (killed_at, killed_at))   # claude was killed 30 s ago

    first = run(home)
    assert (first.imported, first.warnings) == (1, 0)   # still waiting for the line's end

    monkeypatch.setattr(tail, "TORN_SETTLE_SECS", 10.0)   # later: the file has not changed since
    second = run(home)
    assert (second.updated, second.warnings) == (1, 1)
    assert any("torn last line" in message for message in second.warning_messages)
    [warning] = [event for event in log(home) if event["type"] == "parse_warning"]
    assert warning["raw"] == torn.decode()

    third = run(home)
    assert (third.unchanged, third.events, third.warnings) == (1, 0, 0)

    with open(transcript, "ab") as handle:   # the line gets its end after all
        handle.write(last[len(torn):] + b"\n")
    fourth = run(home)
    assert (fourth.updated, fourth.warnings) == (1, 0)
    texts = [event.get("content") for event in log(home) if event["type"] == "assistant_message"]
    assert texts == ["answer 1", "answer 2"]
    assert sum(event["type"] == "parse_warning" for event in log(home)) == 1
