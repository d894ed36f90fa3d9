"""`zag backfill` on an index an older zag wrote: what that zag stored for a source must not hide from the
current one what it reads now (its readers hand out more than the old ones did)."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from tests.unit.providers.test_torn_tail import claude_record
from zag import paths
from zag.logs.backfill import run_backfill
from zag.logs.index import Index
from zag.logs.reader import read_events
from zag.providers import get, tail

SID = "70a7a11e-3333-4333-8333-0000000000a5"


def test_a_torn_tail_a_release_zag_fingerprinted_is_reported_after_the_upgrade(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """zag 0a409af (index schema 4) stored a source's fingerprint when its reader stopped short of a torn
    last line (claude SIGKILLed mid-write); the current zag reports such a line once the file settled, but
    took the unchanged fingerprint for 'nothing new' and never read the file again: the line was lost."""
    home = tmp_path / "home"
    transcript = home / ".claude" / "projects" / "-w" / f"{SID}.jsonl"
    transcript.parent.mkdir(parents=True)
    last = claude_record(SID, "assistant", 2)
    torn = last[:len(last) // 2]
    transcript.write_bytes(b"\n".join(claude_record(SID, kind, second)
                                      for kind, second in (("user", 1), ("assistant", 1), ("user", 2))) + b"\n" + torn)
    killed_at = time.time() - 30
    os.utime(transcript, (killed_at, killed_at))

    def run() -> tuple[int, int, int, int]:
        [summary] = run_backfill([get("claude")], env={"HOME": str(home)}, jobs=1)
        return summary.imported, summary.updated, summary.unchanged, summary.warnings

    assert run() == (1, 0, 0, 0)   # the torn line waits to settle
    with sqlite3.connect(paths.index_db()) as conn:   # as the release left it: fingerprinted, schema 4
        conn.execute("UPDATE backfill_sources SET fingerprint = ?", (tail.fingerprint([transcript]),))
        conn.execute("PRAGMA user_version = 4")
    conn.close()

    monkeypatch.setattr(tail, "TORN_SETTLE_SECS", 10.0)
    assert run() == (0, 1, 0, 1)
    with Index() as index:
        session_id = index.find_by_provider_session("claude", SID)
    assert session_id
    [warning] = [e for e in read_events(paths.session_log(session_id)) if e["type"] == "parse_warning"]
    assert warning["raw"] == torn.decode()
    assert run() == (0, 0, 1, 0)   # once: the new fingerprint is kept
