"""`zag run` with a secret in its arguments and in the name of its folder: nothing zag keeps under
ZAG_HOME (log, index, diagnostics) or prints (`zag ps`, `zag sessions`, `zag events`) holds it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.integration.helpers import Agent, assert_valid_log

ANTHROPIC = "sk-ant-api03-" + "Q9w8E7r6T5y4U3i2" * 2
GITHUB = "ghp_" + "k3Y7p2" * 6
GOOGLE = "AIzaSyA1234567890abcdefghijklmnopqrstuv"


def files_holding(root: Path, needle: bytes) -> list[str]:
    return [str(path) for path in root.rglob("*") if path.is_file() and needle in path.read_bytes()]


def test_secrets_in_argv_and_cwd_stay_out_of_everything_zag_keeps_or_prints(agent: Agent, tmp_path: Path) -> None:
    folder = tmp_path / f"checkout-{ANTHROPIC}"
    folder.mkdir()
    agent.script([{"out": "hi\n"}, {"exit": 0}])
    prompt = f"use {ANTHROPIC} and {GITHUB}; fetch https://x.googleapis.com/v1?key={GOOGLE}"
    done = subprocess.run([*agent.command("run", "claude", "-p"), prompt], cwd=folder, env=agent.env(),
                          capture_output=True, timeout=60)
    assert done.returncode == 0 and done.stdout == b"hi\n", done.stderr
    assert agent.invocations()[0]["argv"][-1] == prompt  # the agent itself gets its arguments untouched
    events = agent.only_session()
    assert_valid_log(events)
    printed = [agent.run(*command).stdout for command in (
        ("ps", "--all"), ("ps", "--all", "--json"), ("sessions",), ("sessions", "--json"),
        ("events", events[0]["session_id"], "--json"))]
    for secret in (ANTHROPIC, GITHUB, GOOGLE):
        tail = secret[-12:].encode()
        assert files_holding(agent.zag_home, tail) == [], secret
        assert not any(tail in output for output in printed), secret
    [row] = json.loads(printed[1])
    assert row["argv"] == events[0]["argv"] and row["cwd"] == events[0]["cwd"]  # the index mirrors the log
    assert "[REDACTED:anthropic_key]" in row["cwd"] and "[REDACTED:github_token]" in row["argv"][2]


def test_resume_says_when_the_arguments_it_reuses_were_redacted(agent: Agent) -> None:
    agent.script([{"exit": 0}])
    done = agent.run("run", "claude", "--model", "opus", "-p", f"use {ANTHROPIC}")
    assert done.returncode == 0, done.stderr
    session_id = agent.only_session()[0]["session_id"]
    resumed = agent.run("resume", session_id)
    assert resumed.returncode == 0, resumed.stderr
    assert b"were redacted when it was logged" in resumed.stderr
    assert ANTHROPIC not in json.dumps(agent.invocations()[-1]["argv"])


def test_a_backtracking_redaction_pattern_does_not_hold_up_the_agent_or_its_log(agent: Agent) -> None:
    """`(a|aa)+$` on a long run of `a` backtracks for ages: with `re`, the session_started line (the
    prompt is in its argv) took 5 s for 24 characters, 2^n after that, and held the GIL meanwhile, so
    the agent never started. Each text now has a time budget; one that runs out is replaced whole."""
    from tests.integration.helpers import write_config

    write_config(agent.zag_home, '[redaction]\nextra_patterns = ["(a|aa)+$", "corp-[0-9]+"]\n')
    agent.script([{"out": "hi\n"}, {"exit": 0}])
    prompt = "a" * 80 + "! corp-42"
    done = agent.run("run", "claude", "-p", prompt, timeout=30)
    assert done.returncode == 0 and done.stdout == b"hi\n", done.stderr
    assert agent.invocations()[0]["argv"][-1] == prompt
    assert b"redaction pattern '(a|aa)+$' took too long" in done.stderr
    assert done.stderr.count(b"redaction pattern") == 1  # said once per run
    events = agent.only_session()
    assert_valid_log(events)
    assert events[0]["argv"][-1] == "[REDACTED:custom]"
    assert files_holding(agent.zag_home, b"corp-42") == []
