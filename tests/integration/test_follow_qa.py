"""QA of following sessions: `zag listen`, `zag events`, `zag sessions` against real `zag run`s of the
stand-in agent and the logs they leave."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.integration import limits_rig as L
from tests.integration.helpers import Agent, wait_until, write_config

CONTROL = re.compile(rb"[\x00-\x09\x0b-\x1f\x7f]")  # anything but the newline ending each line


def test_a_transcripts_timestamp_cannot_reach_the_terminal(tmp_path: Path, zag_home: Path) -> None:
    """A claude record whose `timestamp` is a terminal-title escape shaped like zag's own format (24
    characters, `T`, `.`, `Z` in place) was logged as the event's `ts` unchanged, and `zag events` /
    `zag listen` printed it raw (it could not be read as a time): the agent set the user's terminal title."""
    rig = L.Rig(tmp_path, zag_home, "claude")
    evil = "\x1b]2;owned\x07T12:00:00.000Z"
    answer = L.claude_assistant(rig, "hello").replace('"{now}"', json.dumps(evil))
    rig.script([{"append": L.claude_transcript(rig), "lines": [L.claude_user(rig, "hi"), answer]},
                {"sleep": 0.5}, {"exit": 0}])
    assert rig.run("run", "claude", "-p", "hi").returncode == 0

    log = rig.log()
    [said] = [event for event in log if event["type"] == "assistant_message"]
    assert said["content"] == "hello"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", said["ts"]), said["ts"]
    session = log[0]["session_id"]
    for command in (("events", session), ("listen", session, "--no-follow")):
        shown = rig.run(*command)
        assert shown.returncode == 0, shown.stderr.decode()
        assert b"hello" in shown.stdout and not CONTROL.search(shown.stdout), shown.stdout
