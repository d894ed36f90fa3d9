"""A new hit while an older incident of the session waits for its retry (its attempt failed, none runs):
the new incident supersedes the older one, which zag closes as failed at once. The log must say so when
it happens, so that `zag reindex` of the logs alone shows every incident as the live index does, while
the session waits and after it ended (`zag usage list --all --json` and the session row, compared)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.integration import limits_rig as L
from tests.integration.helpers import assert_valid_log, wait_until

# attempt 1 is judged after 1 s; its retry (8 s later) is still ahead when the limit is hit again 4 s
# after the message was typed; the new hit repeats the unverified resume: it waits the back-off (8 s)
CONFIG = L.CONFIG.replace("retry_secs = 1", "retry_secs = 8").replace("verify_secs = 20", "verify_secs = 1")


def _script(rig: L.Rig) -> list[dict[str, Any]]:
    again = L.claude_limit_text(time.time() - 120)  # a reset already past: a repeat of the unverified resume
    return [
        *L.claude_tui_hit(rig, time.time()),
        {"expect": "\r", "timeout": 60},                     # zag answers the dialog
        {"out": "\r\n❯ \r\n  ? for shortcuts\r\n"},
        {"expect": f"{L.MESSAGE}\r", "timeout": 60},         # attempt 1 typed, and nothing answers it ...
        {"append": L.claude_transcript(rig), "lines": [L.claude_user(rig, L.MESSAGE)]},
        {"sleep": 4},                                        # ... so it fails (verify_secs) and waits its retry
        {"append": L.claude_transcript(rig), "lines": [L.claude_limit_record(rig, again)]},
        {"out": f"  ⎿  {again}\r\n"},                        # the limit hit again, no attempt running
        {"out": L.CLAUDE_DIALOG},
        {"expect": "\r", "timeout": 60},
        {"out": "\r\n❯ \r\n  ? for shortcuts\r\n"},
        *L.claude_tui_resumed(rig),                          # the new incident's attempt continues the session
    ]


def test_a_hit_while_an_older_incident_waits_for_its_retry_supersedes_it_in_the_log(tmp_path: Path,
                                                                                    zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "claude", config=CONFIG)
    rig.script(_script(rig))
    copy = tmp_path / "copy"
    term = rig.spawn("run", "claude")
    try:
        term.expect_exact("hit its usage limit")
        term.expect_exact("hit its usage limit again", timeout=60)
        # while the new incident waits: the live index, and the log reindexed alone, agree
        def settled() -> tuple[Any, Any] | None:
            before = L.seen_live(rig)
            if len(before[0]) != 2 or before[1][0] != "waiting":
                return None
            reindexed = L.seen_reindexed(rig, copy)
            return (before, reindexed) if L.seen_live(rig) == before else None  # nothing moved meanwhile
        (live, reindexed) = wait_until(settled, 30, interval=0.05, message="the second incident waiting")
        code = L.finish(term)
    finally:
        if term.isalive():
            term.terminate(force=True)
    events = rig.log()
    assert_valid_log(events)
    first, second = L.of_type(events, "usage_limit_hit")
    [failed] = L.of_type(events, "usage_limit_resume_failed")
    assert (failed["incident_id"], failed["attempt"]) == (first["incident_id"], 1)
    assert "next_incident_id" not in failed                  # no attempt was running when the limit was hit again
    assert second["repeat_of"] == first["incident_id"] and second["supersedes"] == [first["incident_id"]]
    assert live[0][first["incident_id"]][0] == "failed"      # the live supervisor closed the older incident ...
    assert live[0][second["incident_id"]] == ("pending", second["scheduled_resume_at"])  # ... for the new one
    assert live[1] == ("waiting", second["scheduled_resume_at"])
    assert reindexed == live
    assert code == 0
    [resumed] = L.of_type(events, "usage_limit_resumed")
    assert (resumed["incident_id"], resumed["attempt"]) == (second["incident_id"], 2)
    # after the session: the same again, and a reindex in place changes nothing
    live_end = L.seen_live(rig)
    assert live_end[0] == {first["incident_id"]: ("failed", failed["next_resume_at"]),
                           second["incident_id"]: ("done", second["scheduled_resume_at"])}
    assert L.seen_reindexed(rig, copy) == live_end
    L.zag_in(rig, rig.agent.zag_home, "reindex")
    assert L.seen_live(rig) == live_end
