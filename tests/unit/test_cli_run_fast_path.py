"""`zag run PROVIDER ...` skips click (`zag.cli.runner`): it must read a command line exactly as click's
`run` command would, leave everything else to click, and start without importing click."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import click
import pytest

from zag.cli.runner import parse_run


def click_reading(args: list[str]) -> tuple[str, list[str], bool] | None:
    """What click's `zag run` makes of `args` (None: it would not run an agent)."""
    from zag.cli import run as run_module
    from zag.cli.app import cli

    seen: dict[str, Any] = {}

    def fake_run_agent(provider: str, agent_args: list[str], *, verbose: bool = False) -> int:
        seen.update(provider=provider, args=agent_args, verbose=verbose)
        return 0

    original = run_module.run_agent
    run_module.run_agent = fake_run_agent  # type: ignore[assignment]
    try:
        cli.main(args=args, prog_name="zag", standalone_mode=False)
    except (click.exceptions.ClickException, click.exceptions.Exit, SystemExit):
        pass
    finally:
        run_module.run_agent = original  # type: ignore[assignment]
    return (seen["provider"], seen["args"], seen["verbose"]) if seen else None


@pytest.mark.parametrize("args", [
    ["run", "claude"],
    ["run", "claude", "-p", "fix the test", "--model", "opus"],
    ["run", "-v", "codex", "exec", "hi"],
    ["run", "--verbose", "-v", "gemini", "--", "-v"],
    ["run", "goose", "--help"],
    ["run", "claude", "-v"],
    ["run", "claude", "run", "claude"],
])
def test_the_fast_path_reads_what_click_reads(args: list[str]) -> None:
    assert parse_run(args) == click_reading(args)
    assert parse_run(args) is not None


@pytest.mark.parametrize("args", [
    [], ["--version"], ["ps"], ["run"], ["run", "--help"], ["run", "-h", "claude"], ["run", "nope"],
    ["run", "--", "claude"], ["run", "-x", "claude"], ["run", "-vv", "claude"], ["run", "Claude"],
    ["--verbose", "run", "claude"],
])
def test_anything_else_is_left_to_click(args: list[str]) -> None:
    assert parse_run(args) is None


def test_zag_run_does_not_import_click(tmp_path: Any) -> None:
    agent = tmp_path / "agent"
    agent.write_text("#!/bin/sh\necho ran \"$@\"\n")
    agent.chmod(0o755)
    code = ("import sys; from zag.cli import main\n"
            "try:\n    main(['run', 'codex', 'a b'])\n"
            "except SystemExit as exit:\n    print('click' in sys.modules, exit.code)\n")
    env = dict(os.environ, ZAG_CODEX_BIN=str(agent), ZAG_HOME=str(tmp_path / "home"))
    result = subprocess.run([sys.executable, "-c", code], env=env, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=60)
    assert result.stdout == "ran a b\nFalse 0\n", result.stderr
