"""A session the user resumes with the CLI's own flag, under zag: `zag run <cli> <resume flags> <id> "…"`.

The new zag session follows the same provider session and logs only the new turn (the earlier turns are
in the first zag session's log already: logging them again would count their usage twice); the CLI sent
the whole conversation upstream; a fresh ZAG_HOME + `zag backfill` imports the provider session once, with
the turns of both zag sessions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from . import fake_api as fa
from .clis import CliEnv
from .zag_cli import cli_session_id, conversation, of_type, only_log, session_logs, zag_home_of, zag_json, zag_run

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
MakeEnv = Callable[..., CliEnv]

@pytest.mark.parametrize("name", ["claude", "codex", "gemini"])
def test_user_resume_logs_only_the_new_turn(cli_env: MakeEnv, name: str, tmp_path: Path) -> None:
    env = cli_env(name)
    first = zag_run(env, *env.headless_args("remember pineapple"))
    assert first.returncode == 0, first.describe()
    provider_session_id = cli_session_id(name, first)
    env.fake.queue(env.family, fa.Text("you said pineapple"))
    second = zag_run(env, *env.resume_args(provider_session_id, "what did I say"))
    assert second.returncode == 0, second.describe()
    assert cli_session_id(name, second) == provider_session_id
    sent = env.fake.requests(env.family, fa.MAIN)[-1].text()
    assert "remember pineapple" in sent and "what did I say" in sent

    logs = sorted(session_logs(zag_home_of(env)).values(), key=lambda log: log[0]["ts"])
    assert len(logs) == 2
    for log in logs:
        assert {e["provider_session_id"] for e in log if e["source"] == "provider_file"} == {provider_session_id}
    assert conversation(logs[0]) == [("user_message", "remember pineapple"), ("assistant_message", fa.DEFAULT_TEXT)]
    assert conversation(logs[1]) == [("user_message", "what did I say"),
                                     ("assistant_message", "you said pineapple")]
    assert len(of_type(logs[1], "usage")) == 1

    fresh = tmp_path / "fresh-zag-home"
    summary = {p["provider"]: p for p in zag_json(env, "backfill", zag_home=fresh)["providers"]}
    assert (summary[name]["sessions_seen"], summary[name]["imported"]) == (1, 1), summary[name]
    _, imported = only_log(fresh)
    assert conversation(imported) == conversation(logs[0]) + conversation(logs[1])
