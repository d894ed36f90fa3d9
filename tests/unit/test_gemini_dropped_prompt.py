"""gemini's `dropped_prompt` on real chat files (gemini 0.61, corpus): a session whose only turn was rolled
back after a quota error gives that prompt back; one with a real turn, or an unknown id, gives None. And
the re-run plan of an interactive session without a prompt of its own says it is an empty new chat."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from tests.fixtures.gemini import geminilib
from zag.providers.base import LaunchContext
from zag.providers.gemini import plans

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus" / "real-cli" / "gemini"
ROLLED_BACK = "chat_session-2026-11-22T14-44-8225f940.jsonl"   # "say hi", then a $set that drops it
ANSWERED = "chat_session-2026-11-22T14-44-f40a1acd.jsonl"      # "say hi", answered


def _ctx(tmp_path: Path, *names: str, interactive: bool = True) -> tuple[LaunchContext, dict[str, str]]:
    cwd = tmp_path / "proj"
    env, chats = geminilib.make_home(tmp_path, cwd)
    ids = {}
    for name in names:
        shutil.copyfile(CORPUS / name, chats / name.removeprefix("chat_"))
        ids[name] = json.loads((CORPUS / name).read_text().splitlines()[0])["sessionId"]
    return LaunchContext(cwd=str(cwd), env=env, interactive=interactive, started_at=time.time(),
                         zag_session_id="t"), ids


def test_the_rolled_back_prompt_of_a_failed_only_session(tmp_path: Path) -> None:
    ctx, ids = _ctx(tmp_path, ROLLED_BACK, ANSWERED)
    assert plans.dropped_prompt(ids[ROLLED_BACK], ctx) == "say hi"
    assert plans.dropped_prompt(ids[ANSWERED], ctx) is None         # it has a turn to resume
    assert plans.dropped_prompt("0123abcd-0000-4000-8000-000000000000", ctx) is None
    assert plans.dropped_prompt(None, ctx) is None


def test_an_interactive_re_run_without_a_prompt_is_an_empty_new_chat(tmp_path: Path) -> None:
    ctx, ids = _ctx(tmp_path, ROLLED_BACK)
    sid = ids[ROLLED_BACK]
    plain = plans.plan_resume([], sid, "Continue", ctx)
    assert plain.notes["rerun_original"] and plain.notes["new_chat"] and "Continue" not in plain.args
    with_prompt = plans.plan_resume(["-i", "say hi"], sid, "Continue", ctx)
    assert with_prompt.notes["rerun_original"] and "new_chat" not in with_prompt.notes
    headless_ctx, _ = _ctx(tmp_path / "h", ROLLED_BACK, interactive=False)
    assert "new_chat" not in plans.plan_resume(["-p", "say hi"], sid, "Continue", headless_ctx).notes
