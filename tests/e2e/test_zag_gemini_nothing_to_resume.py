"""Interactive gemini (the real CLI, 0.61) whose only prompt hit a per-day quota, zag SIGKILLed while it
waits, then `zag resume` in a terminal. Gemini kept nothing of that turn (its router call failed first: the
chat file holds no `user` record, so neither does zag's log) and has nothing to `--resume`: zag runs plain
`gemini` again, says in one line that nothing is typed, and never types its resume message into that new
chat (before, it typed it `verify_secs` + `retry_secs` later). The resume is closed as cancelled."""

from __future__ import annotations

import os
import signal
from typing import Callable

import pytest

from . import fake_api as fa
from .clis import CliEnv
from .test_zag_interactive import _hit_in, _pumping, _type, _waiting_row
from .zag_cli import of_type, only_log, wait_until, write_config, zag_home_of, zag_json

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
MakeEnv = Callable[..., CliEnv]
RESUME_MESSAGE = "Continue after the limit"
VERIFY_SECS = 3
RETRY_SECS = 1


def test_killed_wait_of_a_failed_only_chat_is_not_resumed_into_a_new_chat(cli_env: MakeEnv) -> None:
    env = cli_env("gemini")
    home = zag_home_of(env)
    write_config(home, heartbeat_secs=0.5, resume_message=RESUME_MESSAGE, jitter_secs=1, fallback_secs=8,
                 max_wait_secs=8, verify_secs=VERIFY_SECS, retry_secs=RETRY_SECS, max_attempts=3)
    tui = env.spawn(argv=env.zag_argv("run", "gemini"))
    tui.wait_for("Type your message", timeout=90)
    tui.pump(3.0)  # the TUI settles after start-up
    env.fake.limit_for(env.family, 3, lambda _: fa.gemini_quota(per_day=True))
    _type(tui, "say hi")
    tui.wait_for("Usage limit reached for", timeout=60)
    session_id, hit = _pumping(tui, lambda: _hit_in(home), 60, "usage_limit_hit in zag's log")
    waiting = _pumping(tui, lambda: _waiting_row(env, session_id), 30, "zag ps: waiting")
    os.kill(waiting["supervisor_pid"], signal.SIGKILL)
    wait_until(lambda: zag_json(env, "ps")[0]["state"] == "dead", 30, "zag ps: dead")
    tui.close()
    env.fake.clear(env.family)
    sent_before = len(env.fake.requests(env.family, fa.MAIN))

    resumed = env.spawn(argv=env.zag_argv("resume", session_id[:8]))
    resumed.wait_for("Type your message", timeout=90)
    resumed.pump(VERIFY_SECS + RETRY_SECS + 6)   # long enough for the retry that used to type the message
    sent = env.fake.requests(env.family, fa.MAIN)[sent_before:]
    assert not [r for r in sent if RESUME_MESSAGE in r.text()], [r.text()[-200:] for r in sent]
    assert RESUME_MESSAGE not in resumed.text()
    assert "nothing is typed into it" in " ".join(bytes(resumed.raw).decode(errors="replace").split())
    _type(resumed, "/quit")
    assert resumed.wait_exit(timeout=60) == 0, resumed.text()

    same_id, log = only_log(home)
    assert same_id == session_id
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
    assert not of_type(log, "usage_limit_resumed") and not of_type(log, "usage_limit_resume_failed")
    notes = [e["data"] for e in of_type(log, "provider_status")
             if e["source"] == "wrapper" and e["data"].get("kind") == "usage_limit_cancelled"]
    assert [(n["incident_id"], n["cause"]) for n in notes] == [(hit["incident_id"], "nothing_to_resume")]
    [incident] = zag_json(env, "usage", "list", "--all")
    assert incident["status"] == "cancelled"
    assert zag_json(env, "ps") == []
