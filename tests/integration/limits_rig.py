"""Usage-limit scenarios for integration tests: `zag run` (a subprocess, or in a real terminal through
pexpect) supervising the stand-in agent, which reproduces what each real CLI prints and writes when it
hits a usage limit (shapes from REAL_CLIS.md and the provider packages' own tests) and what it does when
it is resumed.

`Rig` holds the agent's homes (HOME, CODEX_HOME, gemini's projects, GOOSE_PATH_ROOT), a config with short
times, and helpers to run zag and read `zag ps --json` / `zag usage list --json`. The builders below
return stand-in action lists; records are stamped `{now}` when the stand-in writes them. `reset` is an
epoch a few seconds ahead, computed when the script is written.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pexpect

from tests.fixtures.gemini import geminilib
from tests.fixtures.goose import gooselib
from tests.integration.helpers import Agent, process_gone, reaped, wait_until, write_config
from zag.providers.claude.homes import encode_cwd

CONFIG = """heartbeat_secs = 0.5
[usage_limits]
jitter_secs = 0.5
fallback_secs = 3
retry_secs = 1
verify_secs = 20
max_attempts = 3
"""
MESSAGE = "Continue"
RUN_TIMEOUT = 120.0




def utc_clock(epoch: float) -> str:
    """`3:28pm` as claude prints reset times (here in UTC, said so in the message); on the hour claude
    leaves the minutes out: `3am`."""
    stamp = datetime.fromtimestamp(epoch, timezone.utc)
    minutes = f":{stamp.minute:02d}" if stamp.minute else ""
    return f"{stamp.hour % 12 or 12}{minutes}{'am' if stamp.hour < 12 else 'pm'}"


def local_clock(epoch: float) -> str:
    """`3:32 PM` as codex prints reset times (local time: zag and the agent run with TZ=UTC here)."""
    stamp = datetime.fromtimestamp(epoch, timezone.utc)
    return f"{stamp.hour % 12 or 12}:{stamp.minute:02d} {'AM' if stamp.hour < 12 else 'PM'}"


class Rig:
    """One test's agent, its homes and zag's config."""

    def __init__(self, tmp_path: Path, zag_home: Path, provider: str, config: str = CONFIG) -> None:
        self.provider = provider
        self.agent = Agent(tmp_path / "agent", zag_home, provider)
        self.cwd = self.agent.root
        self.home = tmp_path / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.extra_env = {"HOME": str(self.home), "TZ": "UTC"}
        if provider == "codex":
            self.codex_home = self.home / ".codex"
            self.codex_home.mkdir()
            self.extra_env["CODEX_HOME"] = str(self.codex_home)
        elif provider == "gemini":
            env, self.chats = geminilib.make_home(tmp_path, self.cwd)
            self.extra_env["HOME"] = env["HOME"]
        elif provider == "goose":
            self.goose_root = tmp_path / "gooseroot"
            self.extra_env["GOOSE_PATH_ROOT"] = str(self.goose_root)
        write_config(zag_home, config)

    # -- running zag --------------------------------------------------------------------------------
    def env(self, **more: str) -> dict[str, str]:
        return self.agent.env(**{**self.extra_env, **more})

    def script(self, *runs: list[dict[str, Any]]) -> None:
        self.agent.script(*runs)

    def run(self, *args: str, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(self.agent.command(*args), env=self.env(), cwd=self.cwd, capture_output=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.agent.command(*args), env=self.env(), cwd=self.cwd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def spawn(self, *args: str) -> pexpect.spawn:
        command = self.agent.command(*args)
        return pexpect.spawn(command[0], command[1:], env=self.env(), cwd=str(self.cwd), dimensions=(40, 160),
                             timeout=RUN_TIMEOUT)

    def zag_json(self, *args: str) -> Any:
        result = self.run(*args, timeout=60)
        assert result.returncode == 0, result.stderr.decode()
        return json.loads(result.stdout)

    def waiting_row(self, zag: Any = None, timeout: float = 60.0) -> dict[str, Any]:
        """`zag ps --json` until it shows the session waiting (returned); `zag` (a Popen or a pexpect
        spawn) must not end before."""
        def waiting() -> dict[str, Any] | None:
            rows = [row for row in self.zag_json("ps", "--json") if row["state"] == "waiting"]
            if rows:
                return rows[0]
            ended = zag is not None and (zag.poll() is not None if hasattr(zag, "poll") else not zag.isalive())
            assert not ended, "zag ended without waiting"
            return None
        return wait_until(waiting, timeout, interval=0.05, message="zag ps showing the session waiting")

    def killed_while_waiting_in_a_terminal(self, provider: str) -> dict[str, Any]:
        """`zag run provider` in a terminal, SIGKILLed once `zag ps` shows it waiting on the limit; returns
        that waiting row once `zag ps` calls the session dead."""
        term = self.spawn("run", provider)
        try:
            term.expect_exact("hit its usage limit")
            waiting = self.waiting_row(term)
            term.kill(signal.SIGKILL)
            term.expect(pexpect.EOF)
        finally:
            term.close(force=True)
        wait_until(lambda: self.zag_json("ps", "--json")[0]["state"] == "dead", 30, message="dead session")
        return waiting

    def signal_while_waiting(self, *args: str, signum: int) -> subprocess.Popen[bytes]:
        """Start `zag <args>`, send it `signum` once `zag ps` shows it waiting, and let it run to its end
        (returned, ended)."""
        with reaped(self.start(*args)) as proc:
            self.waiting_row(proc)
            proc.send_signal(signum)
            proc.communicate(timeout=60)
        return proc

    def killed_while_waiting(self, proc: subprocess.Popen[bytes] | None = None) -> dict[str, Any]:
        """SIGKILL zag (`proc`, or a new headless `zag run claude`) once `zag ps` shows the session waiting,
        as a crash would: the waiting row, once zag is gone (it leaves its schedule in the index)."""
        with reaped(proc or self.start("run", "claude", *CLAUDE_HEADLESS_ARGS)) as zag:
            waiting = self.waiting_row(zag)
            zag.send_signal(signal.SIGKILL)
            zag.wait(timeout=30)
        wait_until(lambda: process_gone(zag.pid), 10, message="zag gone")
        return waiting

    def log(self) -> list[dict[str, Any]]:
        return self.agent.only_session()

    def invocations(self) -> list[dict[str, Any]]:
        return self.agent.invocations()

    def resume_rows(self) -> list[dict[str, Any]]:
        from zag.logs.index import Index

        with Index(self.agent.zag_home / "index.sqlite") as index:
            return index.list_resumes(open_only=False)


# --- the live index against a reindex of the log alone ----------------------------------------------------
Seen = tuple[dict[str, tuple[str, str | None]], tuple[str, str | None]]  # incidents, the session's state


def zag_in(rig: Rig, home: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """`zag ARGS` with `home` as ZAG_HOME (it must succeed)."""
    result = subprocess.run(rig.agent.command(*args), env=rig.env(ZAG_HOME=str(home)), cwd=rig.cwd,
                            capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr.decode()
    return result


def seen_in(rig: Rig, home: Path) -> Seen:
    """incident → (status, resume_at) from `zag usage list --all --json`, and the session's (state,
    resume_at) from `zag ps --all --json` (times as RFC 3339)."""
    from zag.logs.events import format_ts

    rows = json.loads(zag_in(rig, home, "usage", "list", "--all", "--json").stdout)
    incidents = {row["incident_id"]: (row["status"], row["resume_at"]) for row in rows}
    [session] = json.loads(zag_in(rig, home, "ps", "--all", "--json").stdout)
    resume_at = format_ts(session["resume_at"]) if session["resume_at"] is not None else None
    return incidents, (session["state"], resume_at)


def seen_live(rig: Rig) -> Seen:
    return seen_in(rig, rig.agent.zag_home)


def seen_reindexed(rig: Rig, copy: Path) -> Seen:
    """The session's log alone, copied into a fresh ZAG_HOME (`copy`, emptied first) and reindexed there."""
    import shutil

    if copy.exists():
        shutil.rmtree(copy)
    (copy / "sessions").mkdir(parents=True)
    [log] = rig.agent.session_log_paths()
    shutil.copyfile(log, copy / "sessions" / log.name)
    zag_in(rig, copy, "reindex")
    return seen_in(rig, copy)


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [event for event in events if event["type"] == kind]


def finish(term: pexpect.spawn) -> int:
    term.expect(pexpect.EOF)
    term.close()
    assert term.signalstatus is None, f"zag died of signal {term.signalstatus}"
    return term.exitstatus


# --- claude (2.1.197 shapes) -----------------------------------------------------------------------------
def claude_transcript(rig: Rig) -> str:
    return str(rig.home / ".claude" / "projects" / encode_cwd(str(rig.cwd)) / "{session_id}.jsonl")


def _claude_record(rig: Rig, kind: str, **fields: Any) -> str:
    return json.dumps({"parentUuid": None, "isSidechain": False, "type": kind, "uuid": str(uuid.uuid4()),
                       "timestamp": "{now}", "userType": "external", "entrypoint": "cli", "cwd": str(rig.cwd),
                       "sessionId": "{session_id}", "version": "2.1.197", "gitBranch": "HEAD", **fields})


def claude_user(rig: Rig, text: str) -> str:
    return _claude_record(rig, "user", message={"role": "user", "content": text}, promptId=uuid.uuid4().hex)


def claude_assistant(rig: Rig, text: str) -> str:
    return _claude_record(rig, "assistant", requestId="req_" + uuid.uuid4().hex[:12], message={
        "id": "msg_" + uuid.uuid4().hex[:16], "type": "message", "role": "assistant", "model": "claude-sonnet-5",
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 12, "output_tokens": 5}})


def claude_limit_text(reset: float) -> str:
    return f"You've hit your session limit · resets {utc_clock(reset)} (UTC)"


def claude_limit_record(rig: Rig, text: str) -> str:
    """The synthetic API-error message claude appends on a 429 (structured evidence)."""
    return _claude_record(rig, "assistant", requestId="req_limit", error="rate_limit", isApiErrorMessage=True,
                          apiErrorStatus=429, message={
                              "id": str(uuid.uuid4()), "model": "<synthetic>", "role": "assistant", "type": "message",
                              "stop_reason": "stop_sequence", "content": [{"type": "text", "text": text}],
                              "usage": {"input_tokens": 0, "output_tokens": 0}})


CLAUDE_HEADLESS_ARGS = ["-p", "fix the bug", "--output-format", "stream-json", "--verbose"]


def claude_headless_hit(rig: Rig, reset: float) -> list[dict[str, Any]]:
    """`claude -p … --output-format stream-json` with subscription auth at its 5-hour limit."""
    text = claude_limit_text(reset)
    path = claude_transcript(rig)
    return [
        {"out": json.dumps({"type": "system", "subtype": "init", "session_id": "{session_id}"}) + "\n"},
        {"append": path, "lines": [claude_user(rig, "fix the bug")]},
        {"out": json.dumps({"type": "rate_limit_event", "rate_limit_info": {
            "status": "rejected", "resetsAt": int(reset), "rateLimitType": "five_hour", "overageStatus": "rejected",
            "isUsingOverage": False}, "session_id": "{session_id}"}) + "\n"},
        {"append": path, "lines": [claude_limit_record(rig, text)]},
        {"out": json.dumps({"type": "result", "subtype": "success", "is_error": True, "api_error_status": 429,
                            "result": text, "session_id": "{session_id}"}) + "\n"},
        {"exit": 1},
    ]


def claude_headless_resumed(rig: Rig, answer: str = "Picking up where I stopped.") -> list[dict[str, Any]]:
    return [
        {"append": claude_transcript(rig), "lines": [claude_user(rig, MESSAGE), claude_assistant(rig, answer)]},
        {"out": json.dumps({"type": "result", "subtype": "success", "is_error": False, "result": answer,
                            "session_id": "{session_id}"}) + "\n"},
        {"exit": 0},
    ]


CLAUDE_DIALOG = ("\r\n What do you want to do?\r\n\r\n ❯ 1. Stop and wait for limit to reset\r\n"
                 "   2. Upgrade your plan\r\n\r\n Enter to confirm · Esc to cancel\r\n")


def claude_tui_hit(rig: Rig, now: float) -> list[dict[str, Any]]:
    """claude's TUI at its limit, hit at `now`: the notice (the reset shown is the minute before: the end
    of that minute is already past, so zag waits a short settle delay), the synthetic record, and the
    `/rate-limit-options` dialog that swallows keystrokes."""
    text = claude_limit_text(now - 60)
    path = claude_transcript(rig)
    return [
        {"raw_tty": True},
        {"out": "╭─ Claude Code ─╮\r\n❯ fix the bug\r\n"},
        {"append": path, "lines": [claude_user(rig, "fix the bug"), claude_limit_record(rig, text)]},
        {"out": f"  ⎿  {text}\r\n"},
        {"out": CLAUDE_DIALOG},
    ]


def claude_tui_resumed(rig: Rig, answer: str = "Picking up where I stopped.") -> list[dict[str, Any]]:
    return [
        {"expect": f"{MESSAGE}\r", "timeout": 60},
        {"append": claude_transcript(rig), "lines": [claude_user(rig, MESSAGE), claude_assistant(rig, answer)]},
        {"out": f"● {answer}\r\n"},
        {"exit": 0},
    ]


def claude_tui_in_place(rig: Rig, now: float) -> list[dict[str, Any]]:
    return [
        *claude_tui_hit(rig, now),
        {"expect": "\r", "timeout": 60},                 # zag answers the dialog: "Stop and wait"
        {"out": "\r\n❯ \r\n  ? for shortcuts\r\n"},      # the prompt is back
        *claude_tui_resumed(rig),
    ]


# --- codex (0.169 shapes) --------------------------------------------------------------------------------
def codex_rollout(rig: Rig, thread_id: str) -> str:
    now = datetime.now(timezone.utc)
    return str(rig.codex_home / "sessions" / now.strftime("%Y/%m/%d") /
               f"rollout-{now.strftime('%Y-%m-%dT%H-%M-%S')}-{thread_id}.jsonl")


def _codex_line(kind: str, payload: dict[str, Any]) -> str:
    return json.dumps({"timestamp": "{now}", "type": kind, "payload": payload})


def codex_limit_message(reset: float) -> str:
    return ("You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit "
            "https://chatgpt.com/settings/usage to purchase more credits or try again at "
            f"{local_clock(reset)}.")


def codex_hit_records(rig: Rig, thread_id: str, reset: float, source: str) -> list[str]:
    return [
        _codex_line("session_meta", {"id": thread_id, "cwd": str(rig.cwd), "timestamp": "{now}", "source": source,
                                     "originator": "codex_exec" if source == "exec" else "codex_cli_rs",
                                     "cli_version": "0.169.0", "model_provider": "openai"}),
        _codex_line("event_msg", {"type": "task_started"}),
        _codex_line("event_msg", {"type": "user_message", "message": "fix the bug"}),
        _codex_line("event_msg", {"type": "token_count", "info": None, "rate_limits": {
            "limit_id": "codex", "primary": {"used_percent": 100.0, "window_minutes": 300, "resets_at": int(reset)},
            "secondary": {"used_percent": 40.0, "window_minutes": 10080, "resets_at": int(reset) + 86400},
            "plan_type": None, "rate_limit_reached_type": None}}),
        _codex_line("event_msg", {"type": "task_complete", "last_agent_message": None, "error": {
            "message": codex_limit_message(reset), "codex_error_info": "usage_limit_exceeded"}}),
    ]


def codex_resumed_records(answer: str) -> list[str]:
    return [
        _codex_line("event_msg", {"type": "task_started"}),
        _codex_line("event_msg", {"type": "user_message", "message": MESSAGE}),
        _codex_line("response_item", {"type": "message", "role": "assistant",
                                      "content": [{"type": "output_text", "text": answer}]}),
        _codex_line("event_msg", {"type": "task_complete", "last_agent_message": answer}),
    ]


CODEX_HEADLESS_ARGS = ["exec", "--json", "fix the bug"]


def codex_headless_hit(rig: Rig, thread_id: str, reset: float) -> list[dict[str, Any]]:
    """`codex exec --json` at the usage limit: an `error` line, then `turn.failed` (exit 1)."""
    message = codex_limit_message(reset)
    return [
        {"out": json.dumps({"type": "thread.started", "thread_id": thread_id}) + "\n"},
        {"out": json.dumps({"type": "turn.started"}) + "\n"},
        {"append": codex_rollout(rig, thread_id), "lines": codex_hit_records(rig, thread_id, reset, "exec")},
        {"out": json.dumps({"type": "error", "message": message}) + "\n"},
        {"out": json.dumps({"type": "turn.failed", "error": {"message": message}}) + "\n"},
        {"exit": 1},
    ]


def codex_headless_resumed(rig: Rig, thread_id: str, answer: str = "Continuing the fix.") -> list[dict[str, Any]]:
    return [
        {"out": json.dumps({"type": "thread.started", "thread_id": thread_id}) + "\n"},
        {"append": codex_rollout(rig, thread_id), "lines": codex_resumed_records(answer)},
        {"out": json.dumps({"type": "item.completed", "item": {"id": "item_0", "type": "agent_message",
                                                              "text": answer}}) + "\n"},
        {"out": json.dumps({"type": "turn.completed", "usage": {}}) + "\n"},
        {"exit": 0},
    ]


CODEX_POPUP = ("\r\n  Approaching rate limits\r\n  Switch to gpt-6-luna for lower credit usage?\r\n\r\n"
               "› 1. Switch to gpt-6-luna\r\n  2. Keep current model\r\n  3. Keep current model (never show again)\r\n")


def codex_tui_in_place(rig: Rig, thread_id: str, reset: float,
                       answer: str = "Continuing the fix.") -> list[dict[str, Any]]:
    """The codex TUI (it holds its rollout open): the error line, then the model-switch popup."""
    rollout = codex_rollout(rig, thread_id)
    return [
        {"raw_tty": True},
        {"out": "╭─ OpenAI Codex ─╮\r\n› fix the bug\r\n"},
        {"hold_open": rollout},
        {"append": rollout, "lines": codex_hit_records(rig, thread_id, reset, "cli")},
        {"out": f"■ {codex_limit_message(reset)}\r\n"},
        {"out": CODEX_POPUP},
        {"expect": "\x1b[B\r", "timeout": 60},           # zag keeps the model: Down, Enter
        {"out": "\r\n› Ask Codex to do anything\r\n  ? for shortcuts\r\n"},
        {"expect": f"\x1b[200~{MESSAGE}\x1b[201~\r", "timeout": 60},
        {"append": rollout, "lines": codex_resumed_records(answer)},
        {"out": f"• {answer}\r\n"},
        {"exit": 0},
    ]


# --- gemini (0.61 shapes) --------------------------------------------------------------------------------
def gemini_chat(rig: Rig) -> str:
    return str(rig.chats / "session-2026-11-22T14-44-{session_id8}.jsonl")


def _gemini(record: dict[str, Any]) -> str:
    return json.dumps(record)


GEMINI_HEADLESS_ARGS = ["-p", "fix the bug", "-o", "stream-json"]
GEMINI_QUOTA = ("[API Error: You exceeded your current quota, please check your plan and billing details. "
                "Please retry in 4s.\nSuggested retry after 4s.]\nPlease wait and try again later. To increase your "
                "limits, request a quota increase through AI Studio, or switch to another /auth method")


def gemini_headless_hit(rig: Rig) -> list[dict[str, Any]]:
    """`gemini -p … -o stream-json` whose only turn hits the quota: the prompt is rolled back in the chat
    file (nothing to resume), the error is on stdout, exit 173."""
    g = geminilib
    context = g.context("{now}")
    return [
        {"out": json.dumps({"type": "init", "session_id": "{session_id}", "model": "auto"}) + "\n"},
        {"append": gemini_chat(rig), "lines": [_gemini(g.meta("{session_id}", "{now}")),
                                               _gemini(g.set_(messages=[context])),
                                               _gemini(g.user("u1", "fix the bug", "{now}")),
                                               _gemini(g.set_(messages=[context]))]},
        {"err": "Warning: 256-color support not detected. Using a terminal with at least 256-color support is "
                "recommended for a better experience.\n"},
        {"out": json.dumps({"type": "result", "status": "error", "error": {"type": "unknown", "message": GEMINI_QUOTA},
                            "stats": {}}) + "\n"},
        {"exit": 173},
    ]


def gemini_headless_rerun(rig: Rig, answer: str = "Fixed it.") -> list[dict[str, Any]]:
    g = geminilib
    return [
        {"out": json.dumps({"type": "init", "session_id": "{session_id}", "model": "auto"}) + "\n"},
        {"append": gemini_chat(rig), "lines": [_gemini(g.meta("{session_id}", "{now}")),
                                               _gemini(g.set_(messages=[g.context("{now}")])),
                                               _gemini(g.user("u1", "fix the bug", "{now}")),
                                               _gemini(g.gemini("a1", answer, "{now}", tokens=g.tokens()))]},
        {"out": json.dumps({"type": "result", "status": "success", "stats": {}}) + "\n"},
        {"exit": 0},
    ]


GEMINI_DIALOG = ("╭──────────────────────────────────────────────╮\r\n"
                 "│ Usage limit reached for gemini-3.5-flash-lite.\r\n"
                 "│ /stats model for usage details\r\n"
                 "│ /model to switch models.\r\n"
                 "│ ● 1. Switch to gemini-3.1-pro-preview-customtools\r\n"
                 "│   2. Stop\r\n"
                 "╰──────────────────────────────────────────────╯\r\n")


def gemini_tui_in_place(rig: Rig, answer: str = "Continuing with the fix.", *,
                        retry_after_stop: bool = False) -> list[dict[str, Any]]:
    """gemini's TUI: one good turn, then the quota dialog (no reset given: zag's fallback applies);
    `retry_after_stop`: once the dialog is closed, gemini retries the prompt it was on and answers it
    (as the real CLI may) before zag types its message."""
    g = geminilib
    context = g.context("{now}")
    first_user, first_answer = g.user("u1", "hello", "{now}"), g.gemini("a1", "Hi! What next?", "{now}")
    retried = g.gemini("a1r", "Fixed on the retry.", "{now}", tokens=g.tokens())
    return [
        {"raw_tty": True},
        {"append": gemini_chat(rig), "lines": [_gemini(g.meta("{session_id}", "{now}")),
                                               _gemini(g.set_(messages=[context])),
                                               _gemini(first_user), _gemini(first_answer),
                                               _gemini(g.user("u2", "fix the bug", "{now}")),
                                               _gemini(g.set_(messages=[context, first_user, first_answer]))]},
        {"out": "✦ Hi! What next?\r\n\r\n"},
        {"out": GEMINI_DIALOG},
        {"expect": "2", "timeout": 60},                   # zag chooses Stop
        *([{"append": gemini_chat(rig), "lines": [_gemini(retried)]}, {"out": "\r\n✦ Fixed on the retry.\r\n"}]
          if retry_after_stop else []),
        {"out": "\r\n > Type your message or @path/to/file\r\n"},
        {"expect": f"{MESSAGE}\r", "timeout": 60},
        {"append": gemini_chat(rig), "lines": [_gemini(g.user("u3", MESSAGE, "{now}")),
                                               _gemini(g.gemini("a2", answer, "{now}", tokens=g.tokens()))]},
        {"out": f"✦ {answer}\r\n"},
        {"exit": 0},
    ]


# --- goose (schema 13) -----------------------------------------------------------------------------------
GOOSE_SID = "20261207_1"


def goose_db(rig: Rig) -> str:
    return str(rig.goose_root / "data" / "sessions" / "sessions.db")


# goose's add_message, stamped when the stand-in writes the row (a resumed session's reader skips rows
# created before the resume started)
_INSERT_MESSAGE_NOW = (
    "INSERT INTO messages (message_id, session_id, role, content_json, created_timestamp, metadata_json) "
    "VALUES (?, ?, ?, ?, CAST(strftime('%s', 'now') AS INTEGER), ?)"
)


def _goose_message(rig: Rig, role: str, content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    gl = gooselib
    params = [f"msg_{uuid.uuid4().hex[:12]}", GOOSE_SID, role, json.dumps(content),
              json.dumps({"userVisible": True, "agentVisible": True})]
    return [{"sqlite": goose_db(rig), "sql": _INSERT_MESSAGE_NOW, "params": params},
            {"sqlite": goose_db(rig), "sql": gl.TOUCH_SESSION_SQL, "params": [GOOSE_SID]}]


def goose_error_text(details: str) -> str:
    return (f"Ran into this error: Rate limit exceeded: {details}.\n\n"
            "Please retry if you think this is a transient or recoverable error.")


GOOSE_DETAILS = "429 Too Many Requests, please retry in 4s"


def goose_hit_actions(rig: Rig) -> list[dict[str, Any]]:
    """goose creates its database and session, records the prompt and its own rate-limit error message."""
    gl = gooselib
    stamp = gl.sql_time(time.time())
    session = [GOOSE_SID, "zag-{env:ZAG_SESSION_ID}", 1, str(rig.cwd), stamp, stamp, "anthropic",
               json.dumps({"model_name": "claude-sonnet-4-5", "context_limit": 200000})]
    return [
        {"sqlite": goose_db(rig), "sql": gl.SCHEMAS["v13"].read_text()},
        {"sqlite": goose_db(rig), "sql": gl.INSERT_SESSION_SQL, "params": session},
        *_goose_message(rig, "user", [gl.text("fix the bug")]),
        *_goose_message(rig, "assistant", gl.rate_limit_error(GOOSE_DETAILS)),
    ]


GOOSE_HEADLESS_ARGS = ["run", "-t", "fix the bug"]


def goose_headless_hit(rig: Rig) -> list[dict[str, Any]]:
    return [*goose_hit_actions(rig), {"out": goose_error_text(GOOSE_DETAILS) + "\n"}, {"exit": 0}]


def goose_resumed_actions(rig: Rig, answer: str) -> list[dict[str, Any]]:
    gl = gooselib
    return [*_goose_message(rig, "user", [gl.text(MESSAGE)]), *_goose_message(rig, "assistant", [gl.text(answer)])]


def goose_headless_resumed(rig: Rig, answer: str = "Continuing.") -> list[dict[str, Any]]:
    return [*goose_resumed_actions(rig, answer), {"out": answer + "\n"}, {"exit": 0}]


def goose_tui_in_place(rig: Rig, answer: str = "Continuing.") -> list[dict[str, Any]]:
    return [
        {"raw_tty": True},
        *goose_hit_actions(rig),
        {"out": "( O)> fix the bug\r\n"},
        {"out": goose_error_text(GOOSE_DETAILS).replace("\n", "\r\n") + "\r\n( O)> "},
        {"expect": f"{MESSAGE}\r", "timeout": 60},
        *goose_resumed_actions(rig, answer),
        {"out": f"\r\n{answer}\r\n"},
        {"exit": 0},
    ]
