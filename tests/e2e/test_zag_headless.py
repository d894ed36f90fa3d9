"""Issue 5, scenarios 1 and 2: the real CLIs run headless under `zag run` against the fake API.

1. `zag run <cli> <headless flags> "say hi"`: exit 0, the CLI's stdout as without zag (JSON output: ids,
   timestamps and durations masked; text output: the same bytes), one unified log with session_started, the user and assistant messages, usage and
   session_ended, all stamped with the CLI's own session id; `zag sessions --json` and `zag events --json`
   agree with the log.
2. A tool turn (shell command or file read): `tool_call` and `tool_result` with the right `tool_kind`.
"""

from __future__ import annotations

import json
from typing import Callable

import pytest

from . import fake_api as fa
from .clis import CLIS, CliEnv
from .zag_cli import (comparable_stdout, cli_session_id, conversation, kinds, of_type, only_log, zag_home_of,
                      zag_json, zag_ndjson, zag_run, zag)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
MakeEnv = Callable[..., CliEnv]
TOOL_ANSWER = "the tool said hello"


@pytest.mark.parametrize("name", CLIS)
def test_say_hi_under_zag(cli_env: MakeEnv, name: str) -> None:
    env = cli_env(name)
    args = env.headless_args("say hi")
    direct = env.run(*args)
    assert direct.returncode == 0, direct.describe()
    result = zag_run(env, *args)
    assert result.returncode == 0, result.describe()

    # the CLI's output, untouched (zag chose claude's and gemini's session id: masked like every uuid)
    assert comparable_stdout(result.stdout) == comparable_stdout(direct.stdout)
    assert "zag:" not in result.stderr
    assert len(env.fake.requests(env.family, fa.MAIN)) == 2  # one turn each: zag made no call of its own

    provider_session_id = cli_session_id(name, result)
    assert provider_session_id != cli_session_id(name, direct)
    own_file = env.session_file(provider_session_id).read_text(encoding="utf-8")
    assert provider_session_id[:8] in own_file and "say hi" in own_file

    session_id, log = only_log(zag_home_of(env))
    assert [event["seq"] for event in log] == list(range(1, len(log) + 1))
    assert {(event["session_id"], event["provider"]) for event in log} == {(session_id, name)}
    steps = kinds(log)
    assert steps[0] == "session_started" and steps[-1] == "session_ended"
    assert steps.count("session_started") == steps.count("session_ended") == 1
    assert conversation(log) == [("user_message", "say hi"), ("assistant_message", fa.DEFAULT_TEXT)]
    assert steps.index("user_message") < steps.index("assistant_message") < steps.index("usage")
    usage = of_type(log, "usage")
    assert [(u["input_tokens"], u["output_tokens"]) for u in usage] == [(12, 5)]
    transcript = [event for event in log if event["source"] == "provider_file"]
    assert transcript and {event["provider_session_id"] for event in transcript} == {provider_session_id}
    started, ended = log[0], log[-1]
    assert started["argv"] == [name, *args] and started["cwd"] == str(env.cwd) and started["resumed"] is False
    assert (ended["exit_code"], ended["success"], ended["provider_session_id"]) == (0, True, provider_session_id)

    [row] = zag_json(env, "sessions")
    assistant = of_type(log, "assistant_message")[0]
    assert row["session_id"] == session_id and row["provider"] == name
    assert row["provider_session_id"] == provider_session_id
    assert (row["state"], row["exit_code"], row["last_seq"]) == ("exited", 0, log[-1]["seq"])
    assert row["argv"] == started["argv"] and row["cwd"] == str(env.cwd) and row["model"] == assistant["model"]
    assert row["interactive"] is False and row["backfilled"] is False and row["resumed"] is False
    assert zag_json(env, "ps") == []  # nothing live any more
    assert zag_ndjson(env, "events", session_id[:8]) == log
    assert zag_ndjson(env, "events", session_id, "--type", "user_message,assistant_message") == \
        of_type(log, "user_message", "assistant_message")
    rendered = zag(env, "events", session_id[:8]).stdout
    assert "say hi" in rendered and fa.DEFAULT_TEXT in rendered

    # plain text output: nothing to mask, the very same stdout
    text_args = env.headless_args("say hi", output="text")
    direct_text, zag_text = env.run(*text_args), zag_run(env, *text_args)
    assert (zag_text.returncode, direct_text.returncode) == (0, 0), zag_text.describe()
    assert zag_text.stdout == direct_text.stdout and fa.DEFAULT_TEXT in zag_text.stdout, zag_text.describe()


# (cli, tool, reply asking for it, extra CLI flags, tool_name the CLI records, kind zag must give it)
TOOL_CASES = {
    "claude-shell": ("claude", lambda env: fa.claude_bash("echo hello-e2e"), ["--allowedTools", "Bash"],
                     "Bash", "shell"),
    "claude-read": ("claude", lambda env: fa.claude_read(str(env.cwd / "note.txt")), [], "Read", "file_read"),
    "codex-shell": ("codex", lambda env: fa.codex_shell("echo hello-e2e"), [], "exec_command", "shell"),
    "gemini-read": ("gemini", lambda env: fa.gemini_read(str(env.cwd / "note.txt")), [], "read_file",
                    "file_read"),
    "gemini-shell": ("gemini", lambda env: fa.gemini_shell("echo hello-e2e"), ["--yolo"], "run_shell_command",
                     "shell"),
}


@pytest.mark.parametrize("case", list(TOOL_CASES))
def test_tool_turn_under_zag(cli_env: MakeEnv, case: str) -> None:
    name, ask, flags, tool_name, tool_kind = TOOL_CASES[case]
    env = cli_env(name)
    (env.cwd / "note.txt").write_text("hello-e2e from the note\n", encoding="utf-8")
    env.fake.queue(env.family, ask(env), fa.Text(TOOL_ANSWER))
    result = zag_run(env, *env.headless_args("use the tool"), *flags)
    assert result.returncode == 0, result.describe()
    main = env.fake.requests(env.family, fa.MAIN)
    assert len(main) == 2 and "hello-e2e" in main[1].text()  # the tool ran and its output went back

    _, log = only_log(zag_home_of(env))
    calls = [event for event in of_type(log, "tool_call") if event["tool_name"] == tool_name]
    assert len(calls) == 1, [(e["tool_name"], e["tool_kind"]) for e in of_type(log, "tool_call")]
    [call] = calls
    assert call["tool_kind"] == tool_kind and call["tool_id"]
    assert ("echo hello-e2e" if tool_kind == "shell" else "note.txt") in json.dumps(call["input"])
    results = [event for event in of_type(log, "tool_result") if event["tool_id"] == call["tool_id"]]
    assert len(results) == 1
    [outcome] = results
    assert outcome["success"] is True and "hello-e2e" in json.dumps(outcome["output"])
    assert log.index(call) < log.index(outcome) < log.index(of_type(log, "assistant_message")[-1])
    assert conversation(log)[0] == ("user_message", "use the tool")
    assert conversation(log)[-1] == ("assistant_message", TOOL_ANSWER)
    for event in of_type(log, "tool_call"):
        assert event["tool_kind"] in ("shell", "file_read", "file_write", "file_edit", "search", "sub_agent",
                                      "web", "notebook", "other")
