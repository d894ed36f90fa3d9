"""`zag backfill` (in-process) whose session log cannot be written for longer than the writer holds
(`MAX_PENDING_BYTES`, made small here), then can again before the job ends: the events past the bound
were dropped, so the job must fail (nothing kept, cursor not advanced, said as unwritten) rather than
succeed with a hole; the next run imports the source whole."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.unit.providers.test_torn_tail import claude_record
from zag import paths
from zag.logs import backfill_worker
from zag.logs import writer as writer_module
from zag.logs.backfill import run_backfill
from zag.logs.index import Index
from zag.logs.reader import read_events
from zag.providers import get

SID = "70a7a11e-3333-4333-8333-000000000002"


class FlakyDisk:
    """`os` for the writer: its `write` calls number `failing` fail with ENOSPC, the others pass."""

    def __init__(self, failing: range) -> None:
        self.failing = failing
        self.calls = 0

    def write(self, fd: int, data: Any) -> int:
        self.calls += 1
        if self.calls in self.failing:
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


def _transcript(home: Path) -> None:
    folder = home / ".claude" / "projects" / "-w"
    folder.mkdir(parents=True)
    lines = []
    for second in range(1, 50):
        for kind in ("user", "assistant"):
            record = json.loads(claude_record(SID, kind, second))
            if kind == "assistant":
                record["message"]["content"][0]["text"] += " " + "x" * 1000
            lines.append(json.dumps(record))
    (folder / f"{SID}.jsonl").write_text("\n".join(lines) + "\n")


def _answers() -> list[str]:
    with Index() as index:
        session_id = index.find_by_provider_session("claude", SID)
    assert session_id
    return [event["content"].split()[1] for event in read_events(paths.session_log(session_id))
            if event["type"] == "assistant_message"]


def test_events_dropped_past_the_bound_fail_the_job_and_the_next_run_imports_it_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    _transcript(home)
    disk = FlakyDisk(range(2, 4))
    monkeypatch.setattr(writer_module, "os", disk)
    monkeypatch.setattr(writer_module, "MAX_PENDING_BYTES", 1000)
    monkeypatch.setattr(backfill_worker, "BATCH_EVENTS", 4)  # a write every 4 events
    [first] = run_backfill([get("claude")], env={"HOME": str(home)}, jobs=1)
    assert disk.calls > 4  # the log could be written again before the job ended
    assert first.not_written == 1 and first.imported == 0
    monkeypatch.setattr(writer_module, "os", os)
    [second] = run_backfill([get("claude")], env={"HOME": str(home)}, jobs=1)
    assert _answers() == [str(second) for second in range(1, 50)], (first, second)
