"""`zag run` as a command: argument passthrough, help, unknown provider, missing executable."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.integration.helpers import ZAG, Agent, PROVIDERS


def _argv_seen(agent: Agent) -> list[str]:
    [invocation] = agent.invocations()
    return invocation["argv"]


def _assert_user_args_in_order(seen: list[str], user_args: list[str]) -> None:
    """The user's args reach the agent untouched and in order (a provider may add its own around them)."""
    position = 0
    for arg in seen:
        if position < len(user_args) and arg == user_args[position]:
            position += 1
    assert position == len(user_args), f"{user_args} not passed through in order: {seen}"


@pytest.mark.parametrize(
    "user_args",
    [
        ["-p", "fix the failing test", "--model", "opus"],
        ["say \"hi\" and 'bye'", "  leading and trailing  ", "", "a\nb", "$HOME", "*", "\\"],
        ["héllo wörld", "日本語", "emoji 🎉", "--", "-x", "--", "--help"],
        ["--help"],
        ["-h"],
        ["--version"],
        ["--verbose", "-v"],
    ],
    ids=["flags", "quoting", "unicode-and-dashes", "help", "short-help", "version", "zag-flags"],
)
def test_arguments_after_the_provider_pass_through_untouched(agent: Agent, user_args: list[str]) -> None:
    result = agent.run("run", "claude", *user_args)
    assert result.returncode == 0, result.stderr
    _assert_user_args_in_order(_argv_seen(agent), user_args)
    assert result.stdout == b""


def test_zag_options_before_the_provider_are_zags(agent: Agent) -> None:
    result = agent.run("run", "--verbose", "claude", "--verbose")
    assert result.returncode == 0
    seen = _argv_seen(agent)
    assert seen.count("--verbose") == 1
    assert b"zag: session" in result.stderr


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_provider_runs_its_executable(agent: Agent, provider: str) -> None:
    agent.script([{"out": "from the agent\n"}, {"exit": 4}])
    result = agent.run("run", provider, "x")
    assert result.returncode == 4
    assert result.stdout == b"from the agent\n"
    assert "x" in _argv_seen(agent)
    assert agent.only_session()[0]["provider"] == provider


def test_run_help_is_zags_own_with_an_example(agent: Agent) -> None:
    result = agent.run("run", "--help")
    assert result.returncode == 0
    text = result.stdout.decode()
    assert "Usage:" in text and "PROVIDER" in text and "zag run claude" in text
    assert agent.invocations() == []


def test_unknown_provider_is_a_usage_error(agent: Agent) -> None:
    result = agent.run("run", "nosuchagent", "x")
    assert result.returncode == 2
    assert b"nosuchagent" in result.stderr and b"claude" in result.stderr
    assert b"Traceback" not in result.stderr
    assert agent.invocations() == []
    assert agent.session_log_paths() == []


def test_missing_provider_argument_is_a_usage_error(agent: Agent) -> None:
    result = agent.run("run")
    assert result.returncode == 2
    assert b"Traceback" not in result.stderr


@pytest.mark.parametrize("how", ["not-on-path", "override-missing", "override-is-a-folder"])
def test_missing_executable_is_one_line_exit_127(agent: Agent, tmp_path, how: str) -> None:
    env = agent.env()
    env["PATH"] = str(tmp_path / "empty-bin")
    del env["ZAG_CLAUDE_BIN"]
    if how == "override-missing":
        env["ZAG_CLAUDE_BIN"] = str(tmp_path / "does-not-exist")
    elif how == "override-is-a-folder":
        env["ZAG_CLAUDE_BIN"] = str(tmp_path)
    result = subprocess.run([*ZAG, "run", "claude", "-p", "hi"], capture_output=True, env=env, timeout=60)
    assert result.returncode == 127
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert "claude" in lines[0] and "npm install -g @anthropic-ai/claude-code" in lines[0]
    assert result.stdout == b""
    assert agent.session_log_paths() == []


@pytest.mark.parametrize("how", ["on-path", "override"])
def test_a_file_that_may_not_be_run_is_exit_126(agent: Agent, tmp_path, how: str) -> None:
    """As in a shell: the agent's file is there but not executable: permission denied, 126."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    plain = bin_dir / "claude"
    plain.write_text("#!/bin/sh\necho never\n")
    plain.chmod(0o644)
    env = agent.env()
    del env["ZAG_CLAUDE_BIN"]
    env["PATH"] = str(bin_dir)
    if how == "override":
        env["ZAG_CLAUDE_BIN"] = str(plain)
    result = subprocess.run([*ZAG, "run", "claude", "-p", "hi"], capture_output=True, env=env, timeout=60)
    assert result.returncode == 126
    [line] = result.stderr.decode().splitlines()
    assert f"{plain} is not executable (permission denied)" in line
    assert ("ZAG_CLAUDE_BIN" in line) == (how == "override")
    assert result.stdout == b""


def test_a_script_without_a_shebang_runs_with_sh(agent: Agent, tmp_path) -> None:
    """As a shell (and execvp) does: an executable text file with no `#!` line is run by /bin/sh."""
    script = tmp_path / "claude-no-shebang"
    script.write_text('printf "%s|" "$@"; exit 6\n')
    script.chmod(0o755)
    result = subprocess.run([*ZAG, "run", "claude", "-p", "a b"], capture_output=True,
                            env=agent.env(ZAG_CLAUDE_BIN=str(script)), timeout=60)
    assert result.returncode == 6, result.stderr
    assert result.stdout.endswith(b"|-p|a b|")  # after the --session-id zag adds


def test_executable_is_found_on_path(agent: Agent, tmp_path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(agent.executable, bin_dir / "codex")
    env = agent.env()
    del env["ZAG_CODEX_BIN"]
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    agent.script([{"out": "on path\n"}])
    result = agent.run("run", "codex", "exec", "hi", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"on path\n"
    assert "exec" in _argv_seen(agent)


def test_agent_gets_the_session_id_in_its_environment(agent: Agent) -> None:
    result = agent.run("run", "claude")
    assert result.returncode == 0
    [invocation] = agent.invocations()
    events = agent.only_session()
    assert invocation["env"]["ZAG_SESSION_ID"] == events[0]["session_id"]
    assert result.stderr == b""  # without --verbose zag says nothing


def test_verbose_prints_the_session_id_on_stderr_only(agent: Agent) -> None:
    agent.script([{"out": "out\n"}])
    result = agent.run("run", "-v", "claude")
    assert result.returncode == 0
    session_id = agent.only_session()[0]["session_id"]
    assert result.stdout == b"out\n"
    assert session_id.encode() in result.stderr
