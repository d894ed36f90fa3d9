"""Issue 5, scenario 5: what zag logged live, `zag backfill` finds again in the CLIs' own files.

Per CLI, two sessions run under zag (a "say hi" turn; a tool turn). A fresh ZAG_HOME + `zag backfill` imports
both from the CLI's own files with the same messages, tool events and usage as the live logs; a second
backfill changes nothing, and in the original ZAG_HOME backfill imports nothing twice. (A session resumed by
the user under zag, and its backfill, is in test_zag_resume_by_user.py.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from . import fake_api as fa
from .clis import CLIS, CliEnv
from .zag_cli import (cli_session_id, conversation, of_type, session_logs, tool_events, zag_home_of, zag_json,
                      zag_ndjson, zag_run)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
MakeEnv = Callable[..., CliEnv]


def _read_note(env: CliEnv) -> fa.ToolCall:
    path = str(env.cwd / "note.txt")
    return {"claude": fa.claude_read, "codex": lambda p: fa.codex_shell(f"cat {p}"), "gemini": fa.gemini_read}[
        env.name](path)


@pytest.mark.parametrize("name", CLIS)
def test_backfill_finds_what_zag_logged_live(cli_env: MakeEnv, name: str, tmp_path: Path) -> None:
    env = cli_env(name)
    (env.cwd / "note.txt").write_text("pineapple-42\n", encoding="utf-8")
    first = zag_run(env, *env.headless_args("say hi"))
    assert first.returncode == 0, first.describe()
    env.fake.queue(env.family, _read_note(env), fa.Text("the note says pineapple-42"))
    second = zag_run(env, *env.headless_args("read the note"))
    assert second.returncode == 0, second.describe()
    ids = [cli_session_id(name, first), cli_session_id(name, second)]

    home = zag_home_of(env)
    live = {_provider_session(log): log for log in session_logs(home).values()}
    assert sorted(live) == sorted(ids)
    assert conversation(live[ids[0]]) == [("user_message", "say hi"), ("assistant_message", fa.DEFAULT_TEXT)]
    assert conversation(live[ids[1]]) == [("user_message", "read the note"),
                                          ("assistant_message", "the note says pineapple-42")]
    assert any(kind == "tool_result" and ok for kind, _, ok in tool_events(live[ids[1]]))

    fresh = tmp_path / "fresh-zag-home"
    summary = {p["provider"]: p for p in zag_json(env, "backfill", zag_home=fresh)["providers"]}
    assert (summary[name]["sessions_seen"], summary[name]["imported"]) == (2, 2), summary[name]
    assert all(p["imported"] == 0 for other, p in summary.items() if other != name)
    imported = {_provider_session(log): (session_id, log) for session_id, log in session_logs(fresh).items()}
    assert sorted(imported) == sorted(ids)
    rows = {row["provider_session_id"]: row for row in zag_json(env, "sessions", zag_home=fresh)}
    for provider_session_id in ids:
        session_id, log = imported[provider_session_id]
        assert log[0]["type"] == "session_started" and log[0]["backfilled"] is True
        assert {e["source"] for e in log} <= {"backfill", "wrapper"}
        assert conversation(log) == conversation(live[provider_session_id])
        assert tool_events(log) == tool_events(live[provider_session_id])
        assert usage_of(log) == usage_of(live[provider_session_id])
        row = rows[provider_session_id]
        assert (row["session_id"], row["provider"], row["backfilled"]) == (session_id, name, True)
        assert row["last_seq"] == log[-1]["seq"]
        assert zag_ndjson(env, "events", session_id[:8], zag_home=fresh) == log

    again = {p["provider"]: p for p in zag_json(env, "backfill", zag_home=fresh)["providers"]}
    assert (again[name]["imported"], again[name]["updated"], again[name]["unchanged"]) == (0, 0, 2)
    at_home = {p["provider"]: p for p in zag_json(env, "backfill")["providers"]}
    assert at_home[name]["imported"] == 0, at_home[name]  # supervised live: continued, never imported twice
    assert len(session_logs(home)) == 2


def _provider_session(log: list[dict]) -> str:
    [provider_session_id] = {e["provider_session_id"] for e in log if e["type"] in ("user_message",
                                                                                    "assistant_message")}
    return provider_session_id


def usage_of(log: list[dict]) -> list[tuple[int, int]]:
    return [(e["input_tokens"], e["output_tokens"]) for e in of_type(log, "usage")]
