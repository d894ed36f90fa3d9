"""`zag usage cancel` while an interactive agent stays on screen: the wait ends, the agent goes on, the
session runs on. The log must say so when it happens (a wrapper note, `data.kind = "usage_limit_cancelled"`),
so that `zag reindex` of the log alone shows the resume cancelled and the session running, as the live
index does — and, after the session ended, the same again (`zag usage list --all --json`, `zag ps --all
--json`, compared)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.integration import limits_rig as L
from tests.integration.helpers import assert_valid_log, wait_until
from zag.logs.events import NOTE_USAGE_LIMIT_CANCELLED


def test_usage_cancel_with_the_agent_on_screen_is_in_the_log(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "claude")
    text = L.claude_limit_text(time.time() + 3600)  # a reset an hour ahead: zag waits until the test cancels
    rig.script([
        {"raw_tty": True},
        {"out": "╭─ Claude Code ─╮\r\n❯ fix the bug\r\n"},
        {"append": L.claude_transcript(rig), "lines": [L.claude_user(rig, "fix the bug"),
                                                       L.claude_limit_record(rig, text)]},
        {"out": f"  ⎿  {text}\r\n"},
        {"out": L.CLAUDE_DIALOG},
        {"expect": "/exit\r", "timeout": 90},   # the user quits, after the cancel
        {"exit": 0},
    ])
    copy = tmp_path / "copy"
    term = rig.spawn("run", "claude")
    try:
        term.expect_exact("hit its usage limit")
        waiting = rig.waiting_row(term)
        before = L.seen_live(rig)
        [(incident, (status, resume_at))] = before[0].items()
        assert (status, before[1]) == ("pending", ("waiting", resume_at))
        assert L.seen_reindexed(rig, copy) == before

        cancel = rig.run("usage", "cancel", incident[:8])
        assert cancel.returncode == 0, cancel.stderr.decode()
        term.expect_exact("claude keeps running", timeout=30)  # the supervisor saw it; the agent stays
        live = wait_until(lambda: (seen := L.seen_live(rig))[1][0] == "running" and seen, 30, interval=0.05,
                          message="the session running again")
        assert live == ({incident: ("cancelled", resume_at)}, ("running", None))
        assert L.seen_reindexed(rig, copy) == live
        assert term.isalive()

        term.send("/exit\r")
        code = L.finish(term)
    finally:
        if term.isalive():
            term.terminate(force=True)
    assert code == 0
    events = rig.log()
    assert_valid_log(events)
    [hit] = L.of_type(events, "usage_limit_hit")
    [note] = [e for e in events if e["type"] == "provider_status" and e["source"] == "wrapper"]
    assert note["data"] == {"kind": NOTE_USAGE_LIMIT_CANCELLED, "incident_id": hit["incident_id"],
                            "attempts": 0, "cause": "usage_cancel"}
    assert hit["seq"] < note["seq"] < events[-1]["seq"]
    assert "cancelled" not in events[-1]  # the session went on: its end is not the cancel's
    assert len(rig.invocations()) == 1 and not L.of_type(events, "usage_limit_resumed")
    assert waiting["session_id"] == events[0]["session_id"]
    # after the session: the same again, and a reindex in place changes nothing
    live_end = L.seen_live(rig)
    assert live_end == ({incident: ("cancelled", resume_at)}, ("exited", None))
    assert L.seen_reindexed(rig, copy) == live_end
    L.zag_in(rig, zag_home, "reindex")
    assert L.seen_live(rig) == live_end
    shown = L.zag_in(rig, zag_home, "events", events[0]["session_id"]).stdout.decode()
    assert f"usage-limit incident {incident[:8]}: resume cancelled with `zag usage cancel`" in shown
