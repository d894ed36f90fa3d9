"""Issue 5, scenario 4: the real TUIs under `zag run <cli>` on a pty (pexpect + pyte), a usage limit on screen.

A prompt is typed and answered (on screen and in zag's log); the next turn hits the limit (claude: OAuth
429 with a reset a few seconds ahead — the TUI shows it only as a clock time in minutes, which is the reset
zag must log — and claude opens its rate-limit options dialog by itself; codex: 429
`usage_limit_reached` — codex opens its model-switch popup; gemini: a per-day quota on the first prompt —
gemini opens its "Usage limit reached" dialogs). zag detects it, shows `waiting` in `zag ps`, and at the
reset clears what the CLI put in the way and types the resume message: the fake sees it (with the earlier
conversation), the answer shows on screen and in the log, `usage_limit_resumed`; the user then quits the
TUI and zag exits 0 with one log.

Gemini 0.61 after a successful turn shows nothing at all on a per-day quota (it hot-loops on its router
model: REAL_CLIS.md), so its limit is hit on the first prompt, where it opens its dialogs.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

import pytest

from . import fake_api as fa
from .clis import CliEnv
from .tui import Tui
from .zag_cli import (conversation, kinds, of_type, only_log, session_logs, wait_until, write_config, zag_home_of,
                      zag_json)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
MakeEnv = Callable[..., CliEnv]
RESUME_MESSAGE = "Continue after the limit"
ANSWER = "answer after the limit"
JITTER_SECS = 1
RESET_AHEAD_SECS = 8
SETTLE_MAX_SECS = 10  # "a few seconds" after a reset that is already past
GEMINI_WAIT_SECS = 6  # no reset on screen: fallback (or the daily reset capped by max_wait_secs)


@dataclass(frozen=True)
class Tuiflow:
    ready: str            # the TUI is ready for a prompt
    first_answer: str     # the first turn's answer as the TUI shows it
    hit: str              # the limit on screen
    blocker: str          # what the CLI put in the way of the next keystrokes
    quit: str             # the TUI's own quit command
    answer: str           # the answer after the resume as the TUI shows it


FLOWS = {
    "claude": Tuiflow("? for shortcuts", f"● {fa.DEFAULT_TEXT}", "You've hit your session limit",
                      "Stop and wait for limit to reset", "/exit", f"● {ANSWER}"),
    "codex": Tuiflow("Ask Codex to do anything", f"• {fa.DEFAULT_TEXT}", "■ You’ve hit your usage limit.",
                     "Keep current model", "/quit", f"• {ANSWER}"),
    "gemini": Tuiflow("Type your message", "", "Usage limit reached for", "Stop", "/quit", ANSWER),
}


def epoch(stamp: str | None) -> float | None:
    return None if stamp is None else datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize("name", ["claude", "codex", "gemini"])
def test_tui_limit_is_cleared_and_resumed_by_zag(cli_env: MakeEnv, name: str) -> None:
    env = cli_env(name)
    flow = FLOWS[name]
    home = zag_home_of(env)
    write_config(home, heartbeat_secs=0.5, resume_message=RESUME_MESSAGE, jitter_secs=JITTER_SECS,
                 fallback_secs=GEMINI_WAIT_SECS, max_wait_secs=GEMINI_WAIT_SECS if name == "gemini" else 120,
                 max_attempts=3)
    tui = env.spawn(argv=env.zag_argv("run", name))
    tui.wait_for(flow.ready, timeout=90)
    tui.pump(2.0 if name != "gemini" else 3.0)  # the TUI settles after start-up

    reset: int | None = None
    if name == "gemini":
        env.fake.limit_for(env.family, 3, lambda _: fa.gemini_quota(per_day=True))
        limited_prompt = "say hi"
    else:
        _type(tui, "say hi")
        tui.wait_for(flow.first_answer, timeout=60)
        wait_until(lambda: ("assistant_message", fa.DEFAULT_TEXT) in conversation(only_log(home)[1]), 30,
                   "the first answer in zag's log")
        reset = int(time.time()) + RESET_AHEAD_SECS
        if name == "claude":  # rejected until the reset, every call (a 200 to the title call would lift it)
            env.fake.limit_until(env.family, reset, fa.claude_subscription_limit(reset))
        else:
            env.fake.limit_next(env.family, 1, fa.codex_usage_limit(reset))
        limited_prompt = "second prompt"
    env.fake.queue(env.family, *[_answer_resume] * 4)  # (gemini: Stop may let the CLI retry the prompt first)
    _type(tui, limited_prompt)
    shown = tui.wait_for(flow.hit, timeout=60)
    tui.wait_for(flow.blocker, timeout=30)
    if name == "claude":  # the TUI has only the text "resets 1:06am (UTC)": minutes, not the exact reset
        reset = _shown_clock(shown, near=reset)

    session_id, hit = _pumping(tui, lambda: _hit_in(home), 60, "usage_limit_hit in zag's log")
    waiting = _pumping(tui, lambda: _waiting_row(env, session_id), 30, "zag ps: waiting")
    scheduled = epoch(hit["scheduled_resume_at"])
    if reset is not None:
        assert epoch(hit["reset_at"]) == reset and hit["fallback_used"] is False, hit
        due = max(reset, epoch(hit["ts"]))  # a reset already past (claude's minute): a short settle delay
        assert due <= scheduled <= due + JITTER_SECS + SETTLE_MAX_SECS, hit
    else:
        assert scheduled <= epoch(hit["ts"]) + GEMINI_WAIT_SECS + 0.01, hit
    assert abs(waiting["resume_at"] - scheduled) < 0.01, waiting

    # at the reset zag clears the dialog/popup and types the resume message; the CLI answers
    tui.wait_for(flow.answer, timeout=120)
    sent = wait_until(lambda: [r for r in env.fake.requests(env.family, fa.MAIN)
                               if RESUME_MESSAGE in r.text() and r.status == 200], 30, "the resumed request")[-1]
    assert sent.at >= scheduled - 0.01
    if name != "gemini":
        assert "say hi" in sent.text()  # the earlier conversation went along
    if name == "codex":
        assert sent.body["model"] == "gpt-6-sol", "the model-switch popup was answered with a switch"
    assert flow.blocker not in tui.text() or name == "gemini"
    _, resumed = _pumping(tui, lambda: _resumed_in(home), 60, "usage_limit_resumed in zag's log")
    assert (resumed["incident_id"], resumed["resume_message"]) == (hit["incident_id"], RESUME_MESSAGE)

    _type(tui, flow.quit)
    assert tui.wait_exit(timeout=60) == 0, tui.text()
    session_id_again, log = only_log(home)
    assert session_id_again == session_id
    assert [event["seq"] for event in log] == list(range(1, len(log) + 1))
    steps = kinds(log)
    assert steps[0] == "session_started" and steps[-1] == "session_ended" and log[-1]["exit_code"] == 0
    assert log[0]["interactive"] is True
    assert len(of_type(log, "usage_limit_hit")) == 1 and len(of_type(log, "usage_limit_resumed")) == 1
    talk = conversation(log[log.index(of_type(log, "usage_limit_hit")[0]):], typed_only=True)
    commands = [e for e in of_type(log, "user_message")  # claude may write its /exit as user records
                if str(e.get("content")).startswith(("<command-name>", "<local-command-std"))]
    assert all(e.get("is_meta") and ("local_command" in e or e.get("local_command_output")) for e in commands), \
        commands
    typed = talk.index(("user_message", RESUME_MESSAGE))  # (claude's /exit records: is_meta, left out)
    assert [turn for turn in talk[typed + 1:] if turn[0] == "assistant_message"][:1] == [
        ("assistant_message", ANSWER)], talk
    provider_ids = {e["provider_session_id"] for e in log if e["source"] == "provider_file"}
    assert len(provider_ids) == 1, provider_ids
    assert zag_json(env, "ps") == []


def _answer_resume(request: fa.Request) -> fa.Text:
    return fa.Text(ANSWER if RESUME_MESSAGE in request.text() else fa.DEFAULT_TEXT)


def _shown_clock(screen: str, near: int) -> int:
    """The reset claude's "resets 1:06am (UTC)" (on the hour "resets 3am (UTC)") on screen stands for: the
    END of that minute (claude floors the reset to the minute it shows), on the day nearest `near`."""
    match = re.search(r"resets (\d{1,2})(?::(\d{2}))?(am|pm) \(UTC\)", screen)
    assert match, screen
    hour, minute = int(match[1]) % 12 + (12 if match[3] == "pm" else 0), int(match[2] or 0)
    day = near - near % 86400
    candidates = [day + offset * 86400 + hour * 3600 + minute * 60 for offset in (-1, 0, 1)]
    return min(candidates, key=lambda value: abs(value - near)) + 60


def _type(tui: Tui, text: str) -> None:
    """Type like a user: the text, then Enter once it shows (gemini drops an Enter sent with the text)."""
    tui.send(text)
    tui.wait_for(text, timeout=20)
    tui.pump(0.3)
    tui.press("enter")


def _pumping(tui: Tui, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """`wait_until`, reading the TUI meanwhile (so neither it nor zag's relay blocks on a full pty)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout}s\n{tui.text()}")
        tui.pump(0.2)


def _hit_in(home: Any) -> tuple[str, dict] | None:
    for session_id, log in session_logs(home).items():
        hits = of_type(log, "usage_limit_hit")
        if hits:
            return session_id, hits[0]
    return None


def _resumed_in(home: Any) -> tuple[str, dict] | None:
    for session_id, log in session_logs(home).items():
        found = of_type(log, "usage_limit_resumed")
        if found:
            return session_id, found[0]
    return None


def _waiting_row(env: CliEnv, session_id: str) -> dict[str, Any] | None:
    rows = [row for row in zag_json(env, "ps") if row["session_id"] == session_id]
    return rows[0] if rows and rows[0]["state"] == "waiting" else None
