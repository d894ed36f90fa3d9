"""`zag run` spawns the agent right after `plan_launch`: getting a provider and planning a launch must not
import its reader, live, history, records or scanner modules (tens of ms: msgspec, limit wordings,
zoneinfo), which load later, when the supervisor first asks for them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("reader", "live", "history", "records", "scanner", "limits", "schema", "promptlog", "conversation",
         "db", "usage", "tools", "keys", "dialogs")
PLAN = """
import json, sys, time
from zag import providers
from zag.providers.base import LaunchContext
name = sys.argv[1]
ctx = LaunchContext(cwd=sys.argv[2], env={"HOME": sys.argv[2], "PATH": "/usr/bin:/bin"}, interactive=False,
                    started_at=time.time(), zag_session_id="z")
plan = providers.get(name).plan_launch(["-p", "hi"], ctx)
assert plan.args, plan
print(json.dumps(sorted(m for m in sys.modules if m.startswith("zag.") or m in ("msgspec", "click", "zoneinfo"))))
"""


@pytest.mark.parametrize("name", ["claude", "codex", "gemini", "goose"])
def test_planning_a_launch_imports_only_what_it_needs(name: str, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", PLAN, name, str(tmp_path)], capture_output=True, text=True,
                            timeout=60, check=True)
    loaded = json.loads(result.stdout)
    heavy = [module for module in loaded if module.rsplit(".", 1)[-1] in HEAVY]
    assert heavy == [], heavy
    assert "click" not in loaded and "zoneinfo" not in loaded
    if name != "gemini":  # gemini reads its settings.json and version (JSON) to plan
        assert "msgspec" not in loaded


@pytest.mark.parametrize("name", ["claude", "codex", "gemini", "goose"])
def test_the_rest_still_loads_on_demand(name: str) -> None:
    from zag import providers
    from zag.providers.base import LaunchContext

    provider = providers.get(name)
    ctx = LaunchContext(cwd="/tmp", env={}, interactive=False, started_at=0.0, zag_session_id="z")
    scanner = provider.output_scanner(ctx)
    assert scanner.feed("stdout", b"hello\n") == [] and scanner.finish() == []
    assert list(provider.discover({"HOME": "/nonexistent-zag-home"})) == []
    assert isinstance(provider.resume_keys("go on"), bytes)
