"""Issue 5, scenario 3: a usage limit in a headless run under zag, resumed by zag itself.

The fake answers the turn with the CLI's real limit response (claude: OAuth 429 with a reset a few seconds
ahead; codex: 429 `usage_limit_reached` with `resets_at`; gemini: 429 per-day quota — no reset given, so
`max_wait_secs` caps the wait). zag logs one `usage_limit_hit` with the reset the CLI reported, `zag ps`
shows the session `waiting` with the resume time, then zag runs the CLI's own resume for the SAME provider
session with the configured resume message; the fake sees the earlier conversation in that request, the
answer arrives, `usage_limit_resumed`, and `zag run` exits 0 — all in one log.

Gemini cannot resume a session whose only turn failed (it rolls the prompt back), so its limited run is
the second turn of a session (`zag run gemini -r <id> -p …`), as an overnight batch would continue one.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Callable

import pytest

from . import fake_api as fa
from .clis import CLIS, CliEnv
from .zag_cli import (assistant_text, cli_session_id, conversation, kinds, of_type, only_log, session_logs,
                      wait_until, write_config, zag_home_of, zag_json, zag_run)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
MakeEnv = Callable[..., CliEnv]
RESUME_MESSAGE = "Continue after the limit"
ANSWER = "answer after the limit"
JITTER_SECS = 1
RESET_AHEAD_SECS = 8  # from the test's start: the CLI (gemini: ~2–6 s under load) hits the limit before it
GEMINI_MAX_WAIT_SECS = 5


def epoch(stamp: str | None) -> float | None:
    return None if stamp is None else datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _limited_run(env: CliEnv) -> tuple[list[str], int | None, str]:
    """Script the limit; return (the `zag run` CLI args, the reset epoch the CLI will report or None, the
    earlier prompt the resumed request must carry)."""
    reset = int(time.time()) + RESET_AHEAD_SECS
    if env.name == "claude":
        env.fake.limit_next(env.family, 1, fa.claude_subscription_limit(reset, "five_hour"))
        return env.headless_args("say hi"), reset, "say hi"
    if env.name == "codex":
        env.fake.limit_next(env.family, 1, fa.codex_usage_limit(reset))
        return env.headless_args("say hi"), reset, "say hi"
    first = env.run(*env.headless_args("remember pineapple"))
    assert first.returncode == 0, first.describe()
    env.fake.limit_next(env.family, 1, fa.gemini_quota(per_day=True))
    return env.resume_args(cli_session_id("gemini", first), "say more"), None, "remember pineapple"


def _ps_row(env: CliEnv, session_id: str) -> dict[str, Any] | None:
    rows = [row for row in zag_json(env, "ps", "--all") if row["session_id"] == session_id]
    return rows[0] if rows else None


@pytest.mark.parametrize("name", CLIS)
def test_headless_limit_is_waited_out_and_resumed(cli_env: MakeEnv, name: str) -> None:
    env = cli_env(name)
    home = zag_home_of(env)
    write_config(home, heartbeat_secs=0.5, resume_message=RESUME_MESSAGE, jitter_secs=JITTER_SECS,
                 fallback_secs=3, max_wait_secs=GEMINI_MAX_WAIT_SECS if name == "gemini" else 120,
                 max_attempts=3)
    args, reset, earlier_prompt = _limited_run(env)
    env.fake.queue(env.family, fa.Text(ANSWER))  # after the limit
    process = env.start(argv=env.zag_argv("run", name, *args))
    try:
        session_id, hit = wait_until(lambda: _hit_in(home), 90, "usage_limit_hit in zag's log")
        waiting = wait_until(lambda: _waiting_row(env, session_id), 30, "zag ps: waiting")
        stdout, stderr = process.communicate(timeout=150)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    described = f"exit {process.returncode}\n--- stdout\n{stdout[-3000:]}\n--- stderr\n{stderr[-3000:]}"
    assert process.returncode == 0, described

    # the hit: one incident, the reset the CLI reported, a resume time after it
    [hit] = of_type(only_log(home)[1], "usage_limit_hit")
    assert hit["incident_id"] and hit["raw"], hit
    scheduled = epoch(hit["scheduled_resume_at"])
    if reset is not None:
        assert epoch(hit["reset_at"]) == reset and hit["fallback_used"] is False, hit
        assert hit["scope"] == "session"
        assert reset <= scheduled <= reset + JITTER_SECS + 0.01, hit
    else:  # gemini's daily quota: a reset at the next quota day, capped by max_wait_secs
        assert hit["scope"] == "daily" and epoch(hit["reset_at"]) > epoch(hit["ts"]) + GEMINI_MAX_WAIT_SECS, hit
        assert scheduled <= epoch(hit["ts"]) + GEMINI_MAX_WAIT_SECS + 0.01, hit
    assert waiting["state"] == "waiting" and abs(waiting["resume_at"] - scheduled) < 0.01, waiting
    assert stderr.count("zag:") == 1 and "usage limit" in stderr, stderr  # told once, plainly

    # the resume: the same provider session, the earlier conversation sent upstream, no sooner than planned
    main = env.fake.requests(env.family, fa.MAIN)
    sent = main[-1]
    assert sent.status == 200 and earlier_prompt in sent.text() and RESUME_MESSAGE in sent.text()
    assert sent.at >= scheduled - 0.01
    assert sum(r.status == 429 for r in main) == 1
    assert assistant_text(name, stdout).endswith(ANSWER)  # the resumed CLI's output passed through

    session_id, log = only_log(home)
    assert [event["seq"] for event in log] == list(range(1, len(log) + 1))
    steps = kinds(log)
    assert steps[0] == "session_started" and steps[-1] == "session_ended" and steps.count("session_ended") == 1
    assert log[-1]["exit_code"] == 0
    [resumed] = of_type(log, "usage_limit_resumed")
    assert (resumed["incident_id"], resumed["attempt"], resumed["resume_message"]) == (
        hit["incident_id"], 1, RESUME_MESSAGE)
    assert not of_type(log, "usage_limit_resume_failed")
    after_hit = log[log.index(hit):]
    assert conversation(after_hit)[-2:] == [("user_message", RESUME_MESSAGE), ("assistant_message", ANSWER)]
    assert log.index(hit) < log.index(resumed)
    provider_ids = {e["provider_session_id"] for e in log if e["source"] == "provider_file"}
    assert len(provider_ids) == 1 and provider_ids == {hit["provider_session_id"]}

    [row] = zag_json(env, "sessions")
    assert (row["session_id"], row["state"], row["exit_code"]) == (session_id, "exited", 0)
    assert zag_json(env, "ps") == []


def _hit_in(home: Any) -> tuple[str, dict] | None:
    logs = session_logs(home)
    for session_id, log in logs.items():
        hits = of_type(log, "usage_limit_hit")
        if hits:
            return session_id, hits[0]
    return None


def _waiting_row(env: CliEnv, session_id: str) -> dict[str, Any] | None:
    row = _ps_row(env, session_id)
    return row if row and row["state"] == "waiting" else None


def test_reset_known_to_the_minute_is_not_resumed_early(cli_env: MakeEnv) -> None:
    """claude's plain-text output gives the reset only as a clock time in minutes (no stream-json
    `rate_limit_event` with the epoch): a resume must not come before the reset that minute stands for."""
    env = cli_env("claude")
    write_config(zag_home_of(env), heartbeat_secs=0.5, resume_message=RESUME_MESSAGE, jitter_secs=JITTER_SECS,
                 max_attempts=3)
    ahead = 20  # the first premature resume (hit + 3 s settle) must come before it, even under load
    if time.time() % 60 > 58 - ahead:  # keep the reset inside this minute: the shown minute is then past
        time.sleep(61 - time.time() % 60)
    reset = int(time.time()) + ahead
    env.fake.limit_until(env.family, reset, fa.claude_subscription_limit(reset))
    result = zag_run(env, *env.headless_args("say hi", output="text"))
    assert result.returncode == 0, result.describe()
    assert result.stdout.startswith("You've hit your session limit · resets ") and fa.DEFAULT_TEXT in result.stdout
    _, log = only_log(zag_home_of(env))
    limited = [r for r in env.fake.requests(env.family, fa.MAIN) if r.status == 429]
    hits = of_type(log, "usage_limit_hit")
    assert (len(limited), len(hits)) == (1, 1), (
        f"{len(limited)} requests before the reset, {len(hits)} incidents, "
        f"{len(of_type(log, 'usage_limit_resume_failed'))} failed resumes")
