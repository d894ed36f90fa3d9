"""Finding each agent's own session file while it runs, where users lose sessions (adversarial QA).

The real CLIs under `zag run` against the fake API: config folders given the way an env file or a quoted
assignment leaves them, and several runs at once in one folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import pytest

from . import fake_api as fa
from .clis import CliEnv
from .zag_cli import conversation, only_log, zag_home_of, zag_run

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
MakeEnv = Callable[..., CliEnv]
CONFIG_VARIABLE = {"claude": "CLAUDE_CONFIG_DIR", "codex": "CODEX_HOME"}


@pytest.mark.parametrize("name", ["claude", "codex"])
def test_a_config_folder_named_with_a_literal_tilde_is_followed_where_the_agent_writes(
        cli_env: MakeEnv, name: str) -> None:
    """`CLAUDE_CONFIG_DIR='~/conf'` / `CODEX_HOME='~/conf'` (no shell expanded the `~`): both CLIs write
    into `<cwd>/~/conf/`, zag looked in `$HOME/conf` and logged no conversation at all."""
    env = cli_env(name)
    variable = CONFIG_VARIABLE[name]
    literal = env.cwd / "~" / "conf"
    shutil.copytree(env.env[variable], literal)
    shutil.copytree(env.env[variable], env.home / "conf")  # what `~` would expand to: a decoy, left empty
    result = zag_run(env, *env.headless_args("remember the tilde", output="text"),
                     extra_env={variable: "~/conf"})
    assert result.returncode == 0, result.describe()
    written = [path for path in literal.rglob("*.jsonl") if "projects" in path.parts or "sessions" in path.parts]
    assert written, "the agent wrote its session elsewhere than measured"
    assert not [path for path in (env.home / "conf").rglob("*.jsonl")]
    _, log = only_log(zag_home_of(env))
    assert conversation(log) == [("user_message", "remember the tilde"), ("assistant_message", fa.DEFAULT_TEXT)]
