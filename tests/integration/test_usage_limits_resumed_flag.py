"""The index's `resumed` flag (`zag sessions`: R) means one thing everywhere: zag continued the session —
after a usage limit (a verified resume) or by `zag resume` taking it over. The live supervisor, `zag
reindex` and `zag sessions --json` agree; a session that merely hit a limit and ended is not resumed."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.integration import limits_rig as L


def _resumed_flags(rig: L.Rig) -> list[bool]:
    listed = rig.zag_json("sessions", "--json")
    return [row["resumed"] for row in listed]


def test_a_session_resumed_after_a_usage_limit_is_flagged_resumed(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "claude")
    rig.script(L.claude_headless_hit(rig, time.time() + 2), L.claude_headless_resumed(rig))
    result = rig.run("run", "claude", *L.CLAUDE_HEADLESS_ARGS)
    assert result.returncode == 0, result.stderr.decode()
    assert L.of_type(rig.log(), "usage_limit_resumed")
    assert _resumed_flags(rig) == [True]
    assert rig.run("reindex").returncode == 0
    assert _resumed_flags(rig) == [True]
    header, line = rig.run("sessions").stdout.decode().splitlines()
    assert header.split()[2] == "FLAGS" and line.split()[2] == "R"


def test_a_hit_that_was_not_resumed_is_not_flagged(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "claude", config=L.CONFIG + "enabled = false\n")
    rig.script(L.claude_headless_hit(rig, time.time() + 2))
    result = rig.run("run", "claude", *L.CLAUDE_HEADLESS_ARGS)
    assert result.returncode == 1, result.stderr.decode()
    assert L.of_type(rig.log(), "usage_limit_hit")
    assert _resumed_flags(rig) == [False]
    assert rig.run("reindex").returncode == 0
    assert _resumed_flags(rig) == [False]
    assert json.loads(rig.run("ps", "--all", "--json").stdout)[0]["resumed"] is False
