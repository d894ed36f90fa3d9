"""Controlling and judging resumes (claude stand-in, headless unless said): `zag usage list/cancel`
during the wait, SIGINT/SIGTERM during the wait, attempts that fail then succeed, attempts that never
succeed (max_attempts), a new hit on the resumed run, and limit texts that are not hits (the model
quoting one, the user pasting one)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration import limits_rig as L
from tests.integration.helpers import assert_valid_log, wait_until
from zag.logs.events import parse_ts

LONG_WAIT = L.CONFIG.replace("jitter_secs = 0.5", "jitter_secs = 0")


def _hit_far_ahead(rig: L.Rig) -> float:
    reset = time.time() + 3600
    rig.script(L.claude_headless_hit(rig, reset), L.claude_headless_resumed(rig))
    return reset


def test_usage_list_and_cancel_stop_the_wait(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "claude", config=LONG_WAIT)
    reset = _hit_far_ahead(rig)
    proc = rig.start("run", "claude", *L.CLAUDE_HEADLESS_ARGS)
    try:
        waiting = rig.waiting_row(proc)
        [listed] = rig.zag_json("usage", "list", "--json")
        assert listed["session_id"] == waiting["session_id"] and listed["provider"] == "claude"
        assert listed["status"] == "pending" and listed["supervisor"] == "alive" and listed["attempts"] == 0
        assert listed["scope"] == "session" and abs(parse_ts(listed["resume_at"]) - reset) < 1.5
        assert 3500 < listed["resume_in_secs"] <= 3600
        table = rig.run("usage", "list")
        assert table.returncode == 0 and listed["incident_id"][:8] in table.stdout.decode()
        assert "pending" in table.stdout.decode() and "alive" in table.stdout.decode()
        cancel = rig.run("usage", "cancel", listed["incident_id"][:6])
        assert cancel.returncode == 0, cancel.stderr.decode()
        assert "stops waiting" in cancel.stdout.decode()
        proc.communicate(timeout=30)  # within about a second of the cancel
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 1  # the agent's last exit code
    events = rig.log()
    assert_valid_log(events)
    assert events[-1]["cancelled"] is True and events[-1]["exit_code"] == 1
    assert len(rig.invocations()) == 1
    assert rig.zag_json("usage", "list", "--json") == []
    [row] = rig.zag_json("usage", "list", "--all", "--json")
    assert row["status"] == "cancelled" and row["supervisor"] == "ended"
    again = rig.run("usage", "cancel", listed["incident_id"])
    assert again.returncode == 2 and "already cancelled" in again.stderr.decode()  # a usage error, as a bad id
    unknown = rig.run("usage", "cancel", "ffffffff")
    assert unknown.returncode == 2 and "no usage-limit incident" in unknown.stderr.decode()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_terminating_signal_during_the_wait_cancels(tmp_path: Path, zag_home: Path, signum: int) -> None:
    rig = L.Rig(tmp_path, zag_home, "claude", config=LONG_WAIT)
    _hit_far_ahead(rig)
    proc = rig.signal_while_waiting("run", "claude", *L.CLAUDE_HEADLESS_ARGS, signum=signum)
    assert proc.returncode == 1
    events = rig.log()
    assert_valid_log(events)
    assert events[-1]["cancelled"] is True
    assert [r["status"] for r in rig.resume_rows()] == ["cancelled"]
    assert len(rig.invocations()) == 1


def test_a_resume_that_fails_twice_then_succeeds(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "claude")
    reset = time.time() + 3
    no_conversation = [{"err": "No conversation found with session ID: {session_id}\n"}, {"exit": 1}]
    rig.script(L.claude_headless_hit(rig, reset), no_conversation, no_conversation, L.claude_headless_resumed(rig))
    result = rig.run("run", "claude", *L.CLAUDE_HEADLESS_ARGS)
    assert result.returncode == 0, result.stderr.decode()
    events = rig.log()
    assert_valid_log(events)
    [hit] = L.of_type(events, "usage_limit_hit")
    failed = L.of_type(events, "usage_limit_resume_failed")
    assert [(f["incident_id"], f["attempt"]) for f in failed] == [(hit["incident_id"], 1), (hit["incident_id"], 2)]
    assert all("exited with code 1" in f["error"] and f["next_resume_at"] for f in failed)
    [resumed] = L.of_type(events, "usage_limit_resumed")
    assert (resumed["incident_id"], resumed["attempt"]) == (hit["incident_id"], 3)
    # each retry waited `retry_secs` after the failure it follows (less the moment from scheduling to logging
    # the failure: milliseconds, but a loaded machine may stall zag in between; exact above + ms rounding)
    for failure in failed:
        assert 0.5 <= parse_ts(failure["next_resume_at"]) - parse_ts(failure["ts"]) <= 1.002
    invocations = rig.invocations()
    assert len(invocations) == 4 and invocations[1]["argv"] == invocations[3]["argv"]
    [resume] = rig.resume_rows()
    assert (resume["status"], resume["attempts"]) == ("done", 3)
    assert result.stderr.decode().count("failed (") == 2


def test_a_resume_that_never_succeeds_stops_at_max_attempts(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "claude", config=L.CONFIG + "[usage_limits.providers.claude]\nmax_attempts = 2\n")
    reset = time.time() + 3
    rig.script(L.claude_headless_hit(rig, reset), [{"err": "still broken\n"}, {"exit": 7}])
    result = rig.run("run", "claude", *L.CLAUDE_HEADLESS_ARGS)
    assert result.returncode == 7  # the agent's last exit code
    events = rig.log()
    assert_valid_log(events)
    failed = L.of_type(events, "usage_limit_resume_failed")
    assert [f["attempt"] for f in failed] == [1, 2]
    assert failed[0]["next_resume_at"] is not None and failed[1]["next_resume_at"] is None
    assert not L.of_type(events, "usage_limit_resumed")
    assert "gave up after 2 failed attempts" in events[-1]["error"] and events[-1]["exit_code"] == 7
    assert len(rig.invocations()) == 3
    [resume] = rig.resume_rows()
    assert (resume["status"], resume["attempts"]) == ("failed", 2)
    assert "giving up" in result.stderr.decode()


def test_a_new_hit_on_the_resumed_run_is_a_second_incident(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "claude")
    first_reset, second_reset = time.time() + 3, time.time() + 9
    resumed_then_limited = [
        {"append": L.claude_transcript(rig), "lines": [L.claude_user(rig, "Continue"),
                                                       L.claude_assistant(rig, "Half of it is done.")]},
        *L.claude_headless_hit(rig, second_reset)[1:],
    ]
    rig.script(L.claude_headless_hit(rig, first_reset), resumed_then_limited,
               L.claude_headless_resumed(rig, "All done."))
    result = rig.run("run", "claude", *L.CLAUDE_HEADLESS_ARGS)
    assert result.returncode == 0, result.stderr.decode()
    events = rig.log()
    assert_valid_log(events)
    hits = L.of_type(events, "usage_limit_hit")
    resumed = L.of_type(events, "usage_limit_resumed")
    assert len(hits) == 2 and hits[0]["incident_id"] != hits[1]["incident_id"]
    assert [r["incident_id"] for r in resumed] == [h["incident_id"] for h in hits]
    assert abs(parse_ts(hits[1]["reset_at"]) - second_reset) < 1.5
    order = [e["type"] for e in events if e["type"].startswith("usage_limit")]
    assert order == ["usage_limit_hit", "usage_limit_resume_started", "usage_limit_resumed"] * 2
    assert sorted(r["status"] for r in rig.resume_rows()) == ["done", "done"]
    assert len(rig.invocations()) == 3
    assert result.stderr.decode().count("hit its usage limit") == 2


def test_a_hit_again_before_any_progress_ends_the_attempt_and_opens_a_new_incident(tmp_path: Path,
                                                                                   zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "claude")
    rig.script(L.claude_headless_hit(rig, time.time() + 3), L.claude_headless_hit(rig, time.time() + 8),
               L.claude_headless_resumed(rig))
    result = rig.run("run", "claude", *L.CLAUDE_HEADLESS_ARGS)
    assert result.returncode == 0, result.stderr.decode()
    events = rig.log()
    first, second = L.of_type(events, "usage_limit_hit")
    [failed] = L.of_type(events, "usage_limit_resume_failed")
    assert failed["incident_id"] == first["incident_id"]
    # not given up: the next attempt is the new incident's, and the failure says when and which
    assert failed["next_resume_at"] == second["scheduled_resume_at"] is not None
    assert failed["next_incident_id"] == second["incident_id"]
    assert "hit again" in failed["error"]
    [resumed] = L.of_type(events, "usage_limit_resumed")
    # the second resume in a row: its number goes on from the failed one (the hit says `attempts: 1`)
    assert resumed["incident_id"] == second["incident_id"] and resumed["attempt"] == 2 and second["attempts"] == 1
    statuses = {r["incident_id"]: r["status"] for r in rig.resume_rows()}
    assert statuses == {first["incident_id"]: "failed", second["incident_id"]: "done"}


def test_the_model_quoting_a_limit_message_is_no_incident(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "claude")
    quote = "You've hit your session limit · resets 3pm (Europe/Berlin)"
    rig.script([
        {"append": L.claude_transcript(rig), "lines": [
            L.claude_user(rig, "what does claude print at its limit?"),
            L.claude_assistant(rig, quote)]},
        {"out": quote + "\n"},   # plain `-p` output: the answer itself, at the start of a line
        {"exit": 0},
    ])
    result = rig.run("run", "claude", "-p", "what does claude print at its limit?")
    assert result.returncode == 0 and result.stdout.decode() == quote + "\n"
    events = rig.log()
    assert_valid_log(events)
    assert not [e for e in events if e["type"].startswith("usage_limit")]
    assert rig.resume_rows() == [] and "usage limit" not in result.stderr.decode()


def _tui_quoting(rig: L.Rig, text: str, *, typed: bool) -> list[dict[str, Any]]:
    """The TUI shows a limit wording at the start of a line that the user pasted (echoed) or the model
    wrote (in the transcript); then it waits a while and exits."""
    actions: list[dict[str, Any]] = [{"raw_tty": True}, {"out": "ready\r\n"}]
    if typed:
        actions += [{"expect": text, "timeout": 30}, {"out": f"{text}\r\n"}]
    else:
        actions += [{"append": L.claude_transcript(rig), "lines": [L.claude_user(rig, "quote it"),
                                                                   L.claude_assistant(rig, text)]},
                    {"out": f"● {text}\r\n"}]
    return [*actions, {"sleep": 4}, {"exit": 0}]


@pytest.mark.parametrize("typed", [True, False], ids=["pasted-by-the-user", "written-by-the-model"])
def test_tui_text_explained_by_the_user_or_the_model_is_no_incident(tmp_path: Path, zag_home: Path,
                                                                    typed: bool) -> None:
    rig = L.Rig(tmp_path, zag_home, "claude")
    text = "You've hit your session limit · resets 3pm (Europe/Berlin)"
    rig.script(_tui_quoting(rig, text, typed=typed))
    term = rig.spawn("run", "claude")
    try:
        term.expect_exact("ready")
        if typed:
            term.send(text)
        code = L.finish(term)
    finally:
        if term.isalive():
            term.terminate(force=True)
    assert code == 0
    events = rig.log()
    assert_valid_log(events)
    assert not [e for e in events if e["type"].startswith("usage_limit")]
    diagnostics = (zag_home / "zag.log").read_text()
    assert "usage_limit_signal" in diagnostics  # the wording was seen, and explained away


def test_zag_listen_shows_the_countdown(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "claude", config=LONG_WAIT)
    _hit_far_ahead(rig)
    proc = rig.start("run", "claude", *L.CLAUDE_HEADLESS_ARGS)
    try:
        waiting = rig.waiting_row(proc)

        def countdown() -> str | None:
            out = rig.run("listen", waiting["session_id"][:8], "--no-follow").stdout.decode()
            return out if "waiting for the usage-limit reset" in out else None

        shown = wait_until(countdown, 30, interval=0.2, message="a waiting heartbeat")
        assert "LIMIT HIT" in shown and "session limit hit" in shown
        rig.run("usage", "cancel", rig.zag_json("usage", "list", "--json")[0]["incident_id"])
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    shown = rig.run("listen", waiting["session_id"], "--no-follow").stdout.decode()
    assert "exit 1 (cancelled)" in shown


def test_a_non_terminating_signal_during_the_wait_is_not_kept_for_the_resumed_agent(tmp_path: Path,
                                                                                    zag_home: Path) -> None:
    """SIGUSR2 to zag while it waits with no agent running: there is no agent to give it to; kept for the
    next one, it killed the resumed agent at its start (SIGUSR2's default action), costing an attempt
    (SIGUSR1 would open node's inspector in it)."""
    rig = L.Rig(tmp_path, zag_home, "claude")
    rig.script(L.claude_headless_hit(rig, time.time() + 4), [{"sleep": 0.5}, *L.claude_headless_resumed(rig)])
    proc = rig.signal_while_waiting("run", "claude", *L.CLAUDE_HEADLESS_ARGS, signum=signal.SIGUSR2)
    assert proc.returncode == 0
    events = rig.log()
    assert_valid_log(events)
    assert not L.of_type(events, "usage_limit_resume_failed")
    [resumed] = L.of_type(events, "usage_limit_resumed")
    assert resumed["attempt"] == 1 and len(rig.invocations()) == 2
