"""Issue 5, scenario 6: SIGKILL zag during a headless run of the real CLI.

The fake holds its answer (`delay_secs`), so zag is killed mid-turn: the CLI must die with it (no orphan),
the log stops without `session_ended`, and `zag ps --json` shows the session `dead` — first while zag is
only frozen (SIGSTOP: its pid lives, its heartbeats stop; dead after three missed heartbeats, heartbeat_secs
is small here), then killed. Then `zag resume <session>` continues the same zag session
(same log, seq continues, a `session_started` with resumed=true) and the same provider session: the CLI
sends the earlier prompt with the resume message upstream and its new answer lands in the log.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Callable

import pytest

from . import fake_api as fa
from .clis import CLIS, CliEnv, describe_pid, kill_marked, marked_pids
from .zag_cli import (conversation, kinds, of_type, only_log, wait_until, write_config, zag, zag_home_of,
                      zag_json)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
MakeEnv = Callable[..., CliEnv]
HEARTBEAT_SECS = 1.0
RESUME_MESSAGE = "Continue after the crash"
ANSWER = "back after the crash"


def _ps_state(env: CliEnv, session_id: str) -> str | None:
    rows = {row["session_id"]: row for row in zag_json(env, "ps", "--all")}
    return rows[session_id]["state"] if session_id in rows else None


ORPHANS = pytest.mark.xfail(strict=True, reason=(
    "zag bug: PR_SET_PDEATHSIG covers only zag's direct child; the npm launcher's own child (codex.js spawns "
    "the native codex on Node < 22.15; gemini relaunches itself in a child node) outlives a SIGKILLed zag"))


def _start_and_kill_mid_turn(env: CliEnv, prompt: str, freeze_first: bool = False) -> tuple[str, list[dict]]:
    """`zag run <cli> <headless> prompt` with the answer held; SIGKILL zag once the turn is in its log.
    `freeze_first`: SIGSTOP zag before and wait for `zag ps` to call it dead from the missing heartbeats
    alone (its pid still exists)."""
    home = zag_home_of(env)
    env.fake.queue(env.family, fa.Text("never delivered", delay_secs=120))
    process = env.start(argv=env.zag_argv("run", env.name, *env.headless_args(prompt)))
    try:
        env.fake.wait_requests(env.family, 1, timeout=90)
        session_id, _ = wait_until(lambda: _log_with(home, "user_message"), 30, "the prompt in zag's log")
        assert _ps_state(env, session_id) == "running"
        wait_until(lambda: len(of_type(only_log(home)[1], "heartbeat")) >= 1, 10, "a heartbeat")
        if freeze_first:
            os.kill(process.pid, signal.SIGSTOP)
            frozen_at = time.monotonic()
            wait_until(lambda: _ps_state(env, session_id) == "dead", 3 * HEARTBEAT_SECS + 30,
                       "zag ps: dead while zag is frozen")
            print(f"{env.name}: frozen zag shown dead after {time.monotonic() - frozen_at:.1f}s "
                  f"(heartbeat {HEARTBEAT_SECS}s)")
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)  # reaped: a zombie's pid would still look alive
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    return only_log(home)


@pytest.mark.parametrize("name", ["claude", pytest.param("codex", marks=ORPHANS),
                                  pytest.param("gemini", marks=ORPHANS)])
def test_cli_dies_with_zag(cli_env: MakeEnv, name: str) -> None:
    env = cli_env(name)
    write_config(zag_home_of(env), heartbeat_secs=HEARTBEAT_SECS)
    _start_and_kill_mid_turn(env, "remember pineapple")
    try:
        wait_until(lambda: not marked_pids(env.marker), 10, "the CLI to die with zag")
    except TimeoutError:
        left = [describe_pid(pid) for pid in marked_pids(env.marker)]
        kill_marked(env.marker)
        raise AssertionError(f"the CLI outlived zag: {left}") from None


@pytest.mark.parametrize("name", CLIS)
def test_frozen_then_killed_zag_shows_dead(cli_env: MakeEnv, name: str) -> None:
    env = cli_env(name)
    home = zag_home_of(env)
    write_config(home, heartbeat_secs=HEARTBEAT_SECS)
    session_id, log = _start_and_kill_mid_turn(env, "remember pineapple", freeze_first=True)
    kill_marked(env.marker)  # an orphaned CLI: test_cli_dies_with_zag
    provider_session_id = log[-1]["provider_session_id"]
    assert provider_session_id and "session_ended" not in kinds(log)
    assert conversation(log) == [("user_message", "remember pineapple")]
    assert _ps_state(env, session_id) == "dead"
    [row] = zag_json(env, "ps")  # `zag ps` lists dead sessions without --all
    assert (row["session_id"], row["state"], row["provider_session_id"]) == (session_id, "dead",
                                                                             provider_session_id)
    [row] = zag_json(env, "sessions")
    assert row["state"] == "dead" and row["exit_code"] is None


@pytest.mark.parametrize("name", CLIS)
def test_zag_resume_continues_a_killed_session(cli_env: MakeEnv, name: str) -> None:
    env = cli_env(name)
    home = zag_home_of(env)
    write_config(home, heartbeat_secs=HEARTBEAT_SECS, resume_message=RESUME_MESSAGE, jitter_secs=0,
                 fallback_secs=2)
    session_id, log = _start_and_kill_mid_turn(env, "remember pineapple")
    kill_marked(env.marker)  # an orphaned CLI (test_cli_dies_with_zag) must not write while zag resumes
    provider_session_id = log[-1]["provider_session_id"]
    wait_until(lambda: _ps_state(env, session_id) == "dead", 30, "zag ps: dead")

    env.fake.queue(env.family, fa.Text(ANSWER))
    resumed = zag(env, "resume", session_id[:8], timeout=150, check=False)
    assert resumed.returncode == 0, resumed.describe()
    sent = env.fake.requests(env.family, fa.MAIN)[-1]
    assert sent.status == 200 and "remember pineapple" in sent.text() and RESUME_MESSAGE in sent.text()

    same_id, log = only_log(home)
    assert same_id == session_id
    assert [event["seq"] for event in log] == list(range(1, len(log) + 1))
    starts = of_type(log, "session_started")
    assert [start.get("resumed") for start in starts] == [False, True]
    assert of_type(log, "session_ended")[-1]["exit_code"] == 0 and kinds(log)[-1] == "session_ended"
    after = log[log.index(starts[1]):]
    assert conversation(after, typed_only=True) == [("user_message", RESUME_MESSAGE), ("assistant_message", ANSWER)]
    assert {e["provider_session_id"] for e in after if e["source"] == "provider_file"} == {provider_session_id}
    assert _ps_state(env, session_id) == "exited"
    assert zag_json(env, "ps") == []


def _log_with(home: os.PathLike, event_type: str) -> tuple[str, list[dict]] | None:
    from pathlib import Path

    logs = list((Path(home) / "sessions").glob("*.jsonl"))
    if len(logs) != 1:
        return None
    session_id, log = only_log(Path(home))
    return (session_id, log) if of_type(log, event_type) else None
