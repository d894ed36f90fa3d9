"""`zag run` in a folder, and with an argument, whose name is not UTF-8 (a disk written under another
encoding): the session is logged and indexed like any other, those bytes shown as `\\xff`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.integration.helpers import Agent, assert_valid_log


def test_a_folder_and_an_argument_that_are_not_utf8(agent: Agent, tmp_path: Path) -> None:
    folder = os.fsencode(tmp_path) + b"/caf\xe9"
    os.mkdir(folder)
    agent.script([{"out": "hi\n"}, {"exit": 0}])
    done = subprocess.run([*agent.command("run", "claude", "-p"), os.fsdecode(b"r\xe9sum\xe9")], cwd=folder,
                          env=agent.env(), capture_output=True, timeout=60)
    assert done.returncode == 0 and done.stdout == b"hi\n", done.stderr
    assert b"could not update the index" not in done.stderr
    events = agent.only_session()
    assert_valid_log(events)  # session_started was logged (it was a parse_warning)
    started = events[0]
    assert started["cwd"].endswith("/caf\\xe9") and started["argv"] == ["claude", "-p", "r\\xe9sum\\xe9"]
    listed = agent.run("ps", "--all", "--json")
    [row] = json.loads(listed.stdout)  # the session was missing from the index
    assert (row["state"], row["exit_code"]) == ("exited", 0)
    assert row["cwd"] == started["cwd"] and row["argv"] == started["argv"]
    table = agent.run("ps", "--all").stdout.decode()
    assert "caf\\xe9" in table and "r\\xe9sum\\xe9" in table
