"""A usage limit in a headless run of the real CLI, zag killed while it waits for the reset (a crash, a
reboot), then `zag resume` picks the wait up: `zag ps` shows the session dead with its resume due, `zag
resume` says when it resumes, waits for the rest of the wait, and continues the SAME provider session (the
earlier prompt goes upstream with the resume message), in the same log, with the incident done.

The limit is scripted as in test_zag_limits (gemini's limited run is a second turn: a session whose only
turn failed has nothing to resume).
"""

from __future__ import annotations

from typing import Callable

import pytest

from . import fake_api as fa
from .clis import CliEnv
from .test_zag_limits import ANSWER, RESUME_MESSAGE, _hit_in, _limited_run, _waiting_row, epoch
from .zag_cli import conversation, kinds, of_type, only_log, wait_until, write_config, zag, zag_home_of, zag_json

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
MakeEnv = Callable[..., CliEnv]


@pytest.mark.parametrize("name", ["claude", "codex", "gemini"])
def test_zag_killed_while_waiting_then_zag_resume_continues_the_same_session(cli_env: MakeEnv, name: str) -> None:
    env = cli_env(name)
    home = zag_home_of(env)
    write_config(home, heartbeat_secs=0.5, resume_message=RESUME_MESSAGE, jitter_secs=1, fallback_secs=3,
                 max_wait_secs=8, max_attempts=3)
    args, _, earlier_prompt = _limited_run(env)
    env.fake.queue(env.family, fa.Text(ANSWER))
    process = env.start(argv=env.zag_argv("run", name, *args))
    try:
        session_id, hit = wait_until(lambda: _hit_in(home), 90, "usage_limit_hit in zag's log")
        wait_until(lambda: _waiting_row(env, session_id), 30, "zag ps: waiting")
        process.kill()
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    [dead] = zag_json(env, "ps")
    assert (dead["session_id"], dead["state"]) == (session_id, "dead")
    assert abs(dead["resume_at"] - epoch(hit["scheduled_resume_at"])) < 0.01, dead

    resumed = zag(env, "resume", session_id[:8], timeout=150, check=False)

    assert resumed.returncode == 0, resumed.describe()
    assert f"zag usage cancel {hit['incident_id'][:8]}" in resumed.stderr
    sent = env.fake.requests(env.family, fa.MAIN)[-1]
    assert sent.status == 200 and earlier_prompt in sent.text() and RESUME_MESSAGE in sent.text()
    assert sent.at >= epoch(hit["scheduled_resume_at"]) - 0.01  # the rest of the wait was waited
    same_id, log = only_log(home)
    assert same_id == session_id
    assert [event["seq"] for event in log] == list(range(1, len(log) + 1))
    assert [start["resumed"] for start in of_type(log, "session_started")] == [False, True]
    assert kinds(log)[-1] == "session_ended" and log[-1]["exit_code"] == 0
    [done] = of_type(log, "usage_limit_resumed")
    assert (done["incident_id"], done["attempt"]) == (hit["incident_id"], 1)
    after = log[log.index(of_type(log, "session_started")[1]):]
    assert conversation(after, typed_only=True)[-2:] == [("user_message", RESUME_MESSAGE),
                                                          ("assistant_message", ANSWER)]
    assert {e["provider_session_id"] for e in log if e["source"] == "provider_file"} == {hit["provider_session_id"]}
    [incident] = zag_json(env, "usage", "list", "--all")
    assert (incident["incident_id"], incident["status"], incident["attempts"]) == (hit["incident_id"], "done", 1)
    assert zag_json(env, "ps") == []
