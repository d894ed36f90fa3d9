"""`zag run` as a user meets it with a broken environment or config: an agent executable that cannot
run, a config file that is not one. Each is one clear line on stderr, never a traceback, and whatever
can still run the agent does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.helpers import Agent, write_config


def _script(path: Path, text: bytes) -> Path:
    path.write_bytes(text)
    path.chmod(0o755)
    return path


@pytest.mark.parametrize(("first_line", "said"), [
    (b"#!/nonexistent/interp -x\n", b"its interpreter /nonexistent/interp (named on its #! line) is not found"),
    (b"#!/bin/sh\r\n", b"its #! line ends in a carriage return"),
])
def test_an_agent_script_whose_interpreter_is_missing_is_said_so(agent: Agent, tmp_path: Path,
                                                                first_line: bytes, said: bytes) -> None:
    """The kernel's ENOENT for a missing `#!` interpreter was said as "cannot run /x/claude: No such file
    or directory" about a file that is there; the usual case is a script saved with Windows line endings."""
    script = _script(tmp_path / "claude", first_line + b"echo hi\n")
    done = agent.run("run", "claude", "-p", "x", env=agent.env(ZAG_CLAUDE_BIN=str(script)))
    assert done.returncode == 127
    assert said in done.stderr and str(script).encode() in done.stderr, done.stderr
    assert b"No such file or directory" not in done.stderr and b"Traceback" not in done.stderr


def test_an_executable_name_not_on_path_is_said_so(agent: Agent) -> None:
    done = agent.run("run", "claude", "-p", "x", env=agent.env(ZAG_CLAUDE_BIN="claude-nightly"))
    assert done.returncode == 127
    assert b"`claude-nightly` (named by ZAG_CLAUDE_BIN) not found on PATH" in done.stderr, done.stderr


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_zag_run_with_a_config_that_is_not_a_file_runs_the_agent(agent: Agent, kind: str) -> None:
    """A FIFO named config.toml blocked `zag run` before it started the agent, until something wrote to it."""
    path = agent.zag_home / "config.toml"
    agent.zag_home.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    agent.script([{"out": "hi\n"}, {"exit": 0}])
    done = agent.run("run", "claude", "-p", "x", timeout=30)
    assert done.returncode == 0 and done.stdout == b"hi\n", done.stderr
    assert done.stderr == f"zag: config: cannot read {path}: it is not a regular file; using defaults\n".encode()


def test_every_bad_value_is_one_line_naming_the_file_and_key(agent: Agent) -> None:
    write_config(agent.zag_home, "heartbeat_secs = true\n[usage_limits]\nmax_attempts = -1\nretry_secs = nan\n"
                                 "[usage_limits.providers.claude]\nresume_mesage = 'go'\n")
    agent.script([{"out": "hi\n"}, {"exit": 0}])
    done = agent.run("run", "claude", "-p", "x")
    assert done.returncode == 0 and done.stdout == b"hi\n", done.stderr
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 4, lines
    assert all(line.startswith(f"zag: config: {agent.zag_home / 'config.toml'}: ") for line in lines), lines
    for key in ("heartbeat_secs", "usage_limits.max_attempts", "usage_limits.retry_secs",
                "usage_limits.providers.claude: unknown key 'resume_mesage'"):
        assert any(key in line for line in lines), (key, lines)


@pytest.mark.parametrize(("provider", "args"), [("claude", ["-p", "x"]), ("codex", ["exec", "x"]),
                                                 ("gemini", ["-p", "x"]), ("goose", ["run", "-t", "x"])])
def test_a_backtracking_limit_pattern_does_not_stall_the_run(agent: Agent, provider: str, args: list[str]) -> None:
    """`(a|aa)+$` from usage_limits.extra_patterns on a line of 60 `a`: with `re` the scan of that line
    would take longer than the universe has left (4 s at 34 characters, x1.6 per character), holding
    the GIL, so zag stalled with the agent's output. Each search now has a time budget."""
    write_config(agent.zag_home, '[usage_limits]\nextra_patterns = ["(a|aa)+$"]\n')
    agent.script([{"out": "a" * 60 + "!\n"}, {"err": "a" * 60 + "!\n"}, {"out": "after\n"}, {"exit": 0}])
    done = agent.run("run", provider, *args, timeout=40)
    assert done.returncode == 0 and done.stdout == b"a" * 60 + b"!\nafter\n", done.stderr
    assert b"zag: pattern '(a|aa)+$' from config.toml took too long" in done.stderr, done.stderr
    assert b"Traceback" not in done.stderr


def test_a_huge_integer_in_the_config_does_not_stop_the_agent(agent: Agent) -> None:
    write_config(agent.zag_home, "heartbeat_secs = 1" + "0" * 400 + "\n")
    agent.script([{"out": "hi\n"}, {"exit": 0}])
    done = agent.run("run", "claude", "-p", "x")
    assert done.returncode == 0 and done.stdout == b"hi\n", done.stderr
    assert b"heartbeat_secs must be a number of seconds" in done.stderr and b"internal error" not in done.stderr


def test_a_zag_home_of_blanks_is_unset_not_a_folder_named_blanks(agent: Agent, tmp_path: Path) -> None:
    """`ZAG_HOME=" "` made a folder named " " in the folder zag ran from (a relative path): each folder a
    different home, sessions seemingly gone. Blanks now mean unset, as for ZAG_<NAME>_BIN: the default."""
    home = tmp_path / "user"
    agent.script([{"out": "hi\n"}, {"exit": 0}])
    env = agent.env(ZAG_HOME="  ", HOME=str(home), XDG_DATA_HOME=str(home / "data"),
                    XDG_CONFIG_HOME=str(home / "config"))
    done = agent.run("run", "claude", "-p", "x", env=env)
    assert done.returncode == 0 and done.stdout == b"hi\n", done.stderr
    assert not (agent.root / "  ").exists()
    assert len(list((home / "data" / "zag" / "sessions").glob("*.jsonl"))) == 1
    assert agent.invocations()[0]["env"]["ZAG_HOME"] == "  "  # passed on as it was: unset for its zag too
