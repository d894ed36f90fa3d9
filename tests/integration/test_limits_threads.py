"""A usage-limit hit when the system refuses zag the limit engine's thread (a pids limit, `ulimit -u`, where
threads count): zag says so once and goes on (a headless run is resumed all the same), never ending with
zag's "internal error" (it did: the engine started its timer thread unguarded, then joined it unstarted)."""

from __future__ import annotations

import subprocess
import sys
import time

import pexpect
from pathlib import Path

from tests.integration import limits_rig as L
from tests.integration.test_process_env_qa import _REFUSING_THREADS


def test_a_limit_hit_without_the_limit_engines_thread_ends_as_the_agent_did(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "claude")
    rig.script(L.claude_headless_hit(rig, time.time() + 4), L.claude_headless_resumed(rig))
    done = subprocess.run([sys.executable, "-c", _REFUSING_THREADS, "run", "claude", *L.CLAUDE_HEADLESS_ARGS],
                          cwd=rig.cwd, env=rig.env(REFUSE_THREADS="zag-limits"), capture_output=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert b"internal error" not in done.stderr and b"Traceback" not in done.stderr, done.stderr.decode()
    assert done.returncode == 0, done.stderr  # resumed all the same: the headless wait needs no thread of its own
    assert done.stderr.count(b"the system refused zag a thread (") == 1, done.stderr
    log = rig.log()
    assert [event["type"] for event in log][-1] == "session_ended"
    assert "Picking up where I stopped." in [event.get("content") for event in log]


def test_an_interactive_hit_without_the_resume_thread_leaves_the_agent_to_the_user(tmp_path: Path,
                                                                                     zag_home: Path) -> None:
    """Interactive, the typing of the resume runs on a thread of its own: refused, zag types nothing (said
    once), the agent stays on screen for the user, and the session ends as the agent does."""
    rig = L.Rig(tmp_path, zag_home, "claude")
    rig.script(L.claude_tui_in_place(rig, time.time()))
    term = pexpect.spawn(sys.executable, ["-c", _REFUSING_THREADS, "run", "claude"], cwd=str(rig.cwd),
                         env=rig.env(REFUSE_THREADS="zag-resume"), dimensions=(40, 160), timeout=60)
    try:
        term.expect_exact("hit its usage limit")
        term.expect_exact("the system refused zag a thread (")
        term.send("\r")          # the user answers the dialog
        term.expect_exact("? for shortcuts")
        term.send("Continue\r")  # and types the resume
        term.expect(pexpect.EOF)
    finally:
        if term.isalive():
            term.terminate(force=True)
    term.close()
    output = term.before.decode("utf-8", "replace") if isinstance(term.before, bytes) else ""
    assert "internal error" not in output, output
    assert term.exitstatus == 0, output
    assert [event["type"] for event in rig.log()][-1] == "session_ended"
