"""The usage-limit engine against what a CLI may say, not what it should: a reset that keeps being a minute
already past is resumed with a growing back-off and given up after `max_attempts` (no loop); and a
headless agent that got over its limit by itself (a new answer after the hit, exit 0) is not resumed."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.integration import limits_rig as L
from tests.integration.helpers import assert_valid_log
from zag.logs.events import parse_ts

CONFIG = L.CONFIG.replace("retry_secs = 1", "retry_secs = 2.5")
ARGS = ["-p", "fix the bug"]  # plain text output: the reset is only a clock time in minutes


def _past_minute_hit(rig: L.Rig, prompt: str) -> list[dict[str, object]]:
    """claude -p at its limit, saying a reset two minutes ago (its minute's end is past: "now")."""
    text = L.claude_limit_text(time.time() - 120)
    return [
        {"append": L.claude_transcript(rig), "lines": [L.claude_user(rig, prompt), L.claude_limit_record(rig, text)]},
        {"out": text + "\n"},
        {"exit": 1},
    ]


def test_a_reset_that_stays_past_backs_off_and_gives_up_at_max_attempts(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "claude", config=CONFIG)          # max_attempts = 3
    rig.script(_past_minute_hit(rig, "fix the bug"), _past_minute_hit(rig, L.MESSAGE))
    result = rig.run("run", "claude", *ARGS)
    assert result.returncode == 1, result.stderr.decode()
    events = rig.log()
    assert_valid_log(events)
    hits = L.of_type(events, "usage_limit_hit")
    failed = L.of_type(events, "usage_limit_resume_failed")
    assert len(hits) == 4 and len(rig.invocations()) == 4               # three resumes, then zag gave up
    assert not L.of_type(events, "usage_limit_resumed")
    assert [h.get("repeat_of") for h in hits] == [None] + [h["incident_id"] for h in hits[:-1]]
    assert [(f["incident_id"], f["attempt"]) for f in failed] == [(h["incident_id"], n)
                                                                   for n, h in enumerate(hits[:-1], start=1)]
    # each failure names the next attempt (the next hit's); only the last one, after which zag stopped, none
    assert [f["next_resume_at"] for f in failed] == [h["scheduled_resume_at"] for h in hits[1:-1]] + [None]
    assert [f.get("next_incident_id") for f in failed] == [h["incident_id"] for h in hits[1:-1]] + [None]
    # each delay is its schedule less the moment from scheduling to logging the hit: milliseconds, but
    # a loaded machine may stall zag in between; exact above (+ ms rounding), a second to spare below
    delays = [parse_ts(h["scheduled_resume_at"]) - parse_ts(h["ts"]) for h in hits[:-1]]
    assert 2.0 <= delays[0] <= 3.002                            # a past reset: the settle delay (3 s)
    assert 2.0 <= delays[1] <= 3.002                            # a repeat: retry_secs, at least the settle delay
    assert 4.0 <= delays[2] <= 5.002                            # the next repeat: retry_secs doubled
    assert hits[-1]["scheduled_resume_at"] is None and "gave up after 3 failed attempts" in hits[-1]["error"]
    assert "gave up after 3" in events[-1]["error"] and events[-1]["exit_code"] == 1
    statuses = [row["status"] for row in sorted(rig.resume_rows(), key=lambda r: r["created_at"])]
    assert statuses == ["failed", "failed", "failed"]           # the fourth hit scheduled nothing
    [row] = rig.agent.index_rows()
    assert (row["state"], row["resume_at"]) == ("exited", None)
    stderr = result.stderr.decode()
    assert stderr.count("again, with no progress") == 3 and "gave up after 3 failed attempts" in stderr


def test_an_agent_that_continued_by_itself_is_not_resumed(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "claude")
    reset = time.time() + 300
    transcript = L.claude_transcript(rig)
    rig.script([
        {"out": json.dumps({"type": "system", "subtype": "init", "session_id": "{session_id}"}) + "\n"},
        {"append": transcript, "lines": [L.claude_user(rig, "fix the bug")]},
        {"out": json.dumps({"type": "rate_limit_event", "rate_limit_info": {
            "status": "rejected", "resetsAt": int(reset), "rateLimitType": "five_hour"},
            "session_id": "{session_id}"}) + "\n"},
        {"sleep": 0.3},                                       # the CLI's own retry got through
        {"append": transcript, "lines": [L.claude_assistant(rig, "Fixed it after all.")]},
        {"out": json.dumps({"type": "result", "subtype": "success", "is_error": False,
                            "result": "Fixed it after all.", "session_id": "{session_id}"}) + "\n"},
        {"exit": 0},
    ])
    result = rig.run("run", "claude", *L.CLAUDE_HEADLESS_ARGS)
    assert result.returncode == 0, result.stderr.decode()
    assert len(rig.invocations()) == 1
    events = rig.log()
    assert_valid_log(events)
    [hit] = L.of_type(events, "usage_limit_hit")
    [note] = [e for e in events if e["type"] == "provider_status" and e["source"] == "wrapper"]
    assert note["data"] == {"kind": "usage_limit_recovered", "incident_id": hit["incident_id"], "attempts": 0}
    assert not L.of_type(events, "usage_limit_resumed") and not L.of_type(events, "usage_limit_resume_failed")
    assert events[-1]["type"] == "session_ended" and events[-1]["exit_code"] == 0 and not events[-1]["error"]
    [resume] = rig.resume_rows()
    assert (resume["incident_id"], resume["status"]) == (hit["incident_id"], "done")
    reindexed = rig.run("reindex")
    assert reindexed.returncode == 0, reindexed.stderr.decode()
    [resume] = rig.resume_rows()                              # the log alone tells the same
    assert (resume["incident_id"], resume["status"]) == (hit["incident_id"], "done")
    assert "continued by itself" in result.stderr.decode()


def test_a_failure_says_no_further_attempt_only_when_none_follows(tmp_path: Path, zag_home: Path) -> None:
    """The QA repro: the bare text notice (no reset: the fallback) and exit 1 on every run, max_attempts = 2:
    exactly two resumes, the first failure names the second attempt, the second says zag stopped."""
    config = ("[usage_limits]\nmax_attempts = 2\nretry_secs = 1\nfallback_secs = 1\njitter_secs = 0\n"
              "verify_secs = 20\n")
    rig = L.Rig(tmp_path, zag_home, "claude", config=config)
    rig.script([{"out": "Claude AI usage limit reached\n"}, {"exit": 1}])
    result = rig.run("run", "claude", "-p", "x")
    assert result.returncode == 1, result.stderr.decode()
    events = rig.log()
    assert_valid_log(events)
    assert len(rig.invocations()) == 3                          # the run, then max_attempts resumes
    hits = L.of_type(events, "usage_limit_hit")
    failed = L.of_type(events, "usage_limit_resume_failed")
    assert [f["attempt"] for f in failed] == [1, 2]
    first, last = failed
    assert first["next_resume_at"] is not None and first["next_resume_at"] == hits[1]["scheduled_resume_at"]
    assert first["next_incident_id"] == hits[1]["incident_id"]
    assert last["next_resume_at"] is None and "next_incident_id" not in last
    assert events.index(last) > max(events.index(h) for h in hits[:-1])  # nothing was tried after it
    assert hits[-1]["scheduled_resume_at"] is None and "gave up after 2 failed attempts" in events[-1]["error"]
    shown = rig.run("events", events[0]["session_id"])
    assert shown.returncode == 0, shown.stderr.decode()
    lines = [line for line in shown.stdout.decode().splitlines() if "resume attempt" in line and "failed" in line]
    assert len(lines) == 2 and "next attempt at" in lines[0] and lines[1].endswith("no further attempt")
    reindexed = rig.run("reindex")
    assert reindexed.returncode == 0, reindexed.stderr.decode()
    assert sorted(r["status"] for r in rig.resume_rows()) == ["failed", "failed"]


def test_a_relative_reset_later_each_time_still_gives_up_at_max_attempts(tmp_path: Path, zag_home: Path) -> None:
    """`try again in 1 second` on every run: each hit names a reset later than the last (so it is no
    repeat), yet each resume ended with no progress: zag backs off (retry_secs, doubling) instead of
    relaunching the agent every second, and gives up after `max_attempts`."""
    import uuid

    config = CONFIG.replace("jitter_secs = 0.5", "jitter_secs = 0")      # retry_secs = 2.5
    rig = L.Rig(tmp_path, zag_home, "codex", config=config)             # max_attempts = 3
    thread = str(uuid.uuid4())
    message = "You've hit your usage limit. Upgrade to Pro (https://openai.com/chatgpt/pricing) or try again in 1 second."
    rig.script([
        {"out": json.dumps({"type": "thread.started", "thread_id": thread}) + "\n"},
        {"out": json.dumps({"type": "error", "message": message}) + "\n"},
        {"out": json.dumps({"type": "turn.failed", "error": {"message": message}}) + "\n"},
        {"exit": 1},
    ])
    result = rig.run("run", "codex", *L.CODEX_HEADLESS_ARGS, timeout=60)
    assert result.returncode == 1, result.stderr.decode()
    events = rig.log()
    assert_valid_log(events)
    hits = L.of_type(events, "usage_limit_hit")
    assert len(hits) == 4 and len(rig.invocations()) == 4               # three resumes, then zag gave up
    assert hits[-1]["scheduled_resume_at"] is None and "gave up after 3 failed attempts" in hits[-1]["error"]
    assert "gave up after 3" in events[-1]["error"]
    assert [row["state"] for row in rig.agent.index_rows()] == ["exited"]
    # the CLI's second, then the back-off (a second to spare below, exact above + ms rounding)
    delays = [parse_ts(h["scheduled_resume_at"]) - parse_ts(h["ts"]) for h in hits[:-1]]
    assert 0.0 <= delays[0] <= 1.002
    assert 1.5 <= delays[1] <= 2.502 and 4.0 <= delays[2] <= 5.002
    assert result.stderr.decode().count("again after a resume that did not continue the session") == 2
