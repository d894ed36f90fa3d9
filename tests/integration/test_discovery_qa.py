"""Finding the agent's own session file where users lose sessions (adversarial QA), with the stand-in.

A config folder given as a relative path is relative to the agent's working directory — the session's
folder, which `zag resume` starts the agent in from wherever the user's shell is."""

from __future__ import annotations

import os
from pathlib import Path

from tests.integration import test_live_claude as claude_rig
from tests.integration.test_live_claude import Rig, assistant, contents, count, limit, user
from zag.providers.claude import PROVIDER


def test_zag_resume_from_another_folder_with_a_relative_claude_config_dir(tmp_path: Path,
                                                                         monkeypatch) -> None:
    """zag looked for `conf/projects/…` below its own cwd: `zag resume` said no transcript, ran the original
    prompt again in a new session (resume_fallback), and the follow of an id found nothing."""
    monkeypatch.setattr(claude_rig.live, "GLOB_EVERY_SECS", 0.05)
    rig = Rig(tmp_path, via_config_dir=True)
    rig.env["CLAUDE_CONFIG_DIR"] = os.path.relpath(rig.config, rig.cwd)
    elsewhere = tmp_path / "where the shell is"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    sid = "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a"
    rig.project.mkdir(parents=True)
    Path(rig.transcript(sid)).write_text(user(sid, "say hi") + "\n" + limit(sid) + "\n")
    plan = PROVIDER.plan_resume(["-p", "say hi"], sid, "Continue", rig.ctx())
    assert "resume_fallback" not in plan.notes
    assert plan.args == ["-p", "--resume", sid, "--", "Continue"]
    rig.start(plan, [{"append": rig.transcript(sid), "lines": [user(sid, "Continue"), assistant(sid, "resumed")]}])
    rig.poll_until(count("assistant_message"))
    rig.finish()
    assert contents(rig.items) == ["Continue", "resumed"]
