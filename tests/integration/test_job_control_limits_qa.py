"""Job control (Ctrl-Z, `fg`, `bg`, `kill %1` in an interactive `bash -i`) meeting the usage-limit wait
and resume: the job stopped while zag waits for the reset, the reset passing while it is stopped, `fg`
afterwards; a headless wait suspended and continued in the background; `zag resume` of a dead session
suspended during its wait.

The interactive agent is a small claude-like TUI (raw mode, suspends itself on Ctrl-Z as claude's Ink
does: cooked modes back, SIGTSTP to its own group; raw again in its SIGCONT handler) that writes claude's
transcript records and logs every chunk of input it reads, with the terminal's ICANON at that moment.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect

from tests.integration import limits_rig as L
from zag.logs.events import parse_ts

PROMPT = "PROMPT$ "

CLAUDE_LIKE_TUI = r'''
import json, os, select, signal, sys, termios, time, tty
spec = json.load(open(os.environ["TUI_SPEC"]))
argv = sys.argv[1:]
sid = argv[argv.index("--session-id") + 1] if "--session-id" in argv else argv[argv.index("--resume") + 1]
keylog = open(spec["keylog"], "a")
def expand(text):
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    return text.replace("{session_id}", sid).replace("{now}", now)
def append(lines):
    path = expand(spec["transcript"])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as handle:
        for line in lines:
            handle.write(expand(line) + "\n")
def out(text):
    os.write(1, text.encode())
cooked = termios.tcgetattr(0)
tty.setraw(0)
def resumed(*_):
    time.sleep(float(spec.get("raw_delay", 0)))  # a loaded node event loop
    tty.setraw(0)
    out("\r\nresumed\r\n" + spec.get("redraw", ""))
signal.signal(signal.SIGCONT, resumed)
out(spec["banner"])
if "--resume" not in argv:
    append(spec["hit_lines"])
    out(spec["hit_screen"])
    if spec.get("quit_after_hit"):  # the user quits claude during the wait: zag relaunches it with --resume
        time.sleep(0.5)
        termios.tcsetattr(0, termios.TCSANOW, cooked)
        sys.exit(0)
else:
    out("\r\n> \r\n  ? for shortcuts\r\n")
seen = b""
deadline = time.monotonic() + float(spec.get("timeout", 60))
while time.monotonic() < deadline:
    data = os.read(0, 1024)
    canonical = bool(termios.tcgetattr(0)[3] & termios.ICANON)
    keylog.write(json.dumps({"data": data.decode("latin-1"), "icanon": canonical}) + "\n")
    keylog.flush()
    if data == b"\x1a":
        termios.tcsetattr(0, termios.TCSANOW, cooked)
        os.killpg(0, signal.SIGTSTP)
        continue
    if data == b"q":
        sys.exit(3)
    seen += data
    if seen.endswith(b"Continue"):
        out("typing\r\n")  # the message without its Enter yet (zag pauses between the two)
    if seen.endswith(b"\r") and b"Continue" not in seen:
        out("\r\n> \r\n  ? for shortcuts\r\n")  # "Stop and wait" chosen: the prompt is back
    if b"Continue\r" in seen:
        out("thinking\r\n")
        answer_at = time.monotonic() + float(spec.get("think", 0))
        while time.monotonic() < answer_at:  # the user may press Ctrl-Z while the model thinks
            ready = select.select([0], [], [], max(0.0, answer_at - time.monotonic()))[0]
            if ready and os.read(0, 1024) == b"\x1a":
                termios.tcsetattr(0, termios.TCSANOW, cooked)
                os.killpg(0, signal.SIGTSTP)
        append(spec["answer_lines"])
        out("answered\r\n")
        sys.exit(0)
sys.exit(5)
'''


def _bash(rig: L.Rig, **extra: str) -> pexpect.spawn:
    env = rig.env(PS1=PROMPT, TERM="xterm", HISTFILE="/dev/null", **extra)
    shell = pexpect.spawn("/bin/bash", ["--norc", "--noprofile", "-i"], env=env, cwd=str(rig.cwd),
                          dimensions=(40, 160), timeout=15)
    shell.expect_exact(PROMPT)
    return shell


def _zag_line(rig: L.Rig, *args: str) -> str:
    return " ".join(shlex.quote(part) for part in rig.agent.command(*args))


@contextlib.contextmanager
def _bash_running(rig: L.Rig, line: str, **extra: str) -> Iterator[pexpect.spawn]:
    """An interactive bash (`extra` in its environment) that was sent the command `line`; closed, forcibly,
    on the way out whatever happened."""
    shell = _bash(rig, **extra)
    try:
        shell.sendline(line)
        yield shell
    finally:
        shell.close(force=True)


def _claude_like_running(rig: L.Rig, tui: Path, tmp_path: Path) -> contextlib.AbstractContextManager[pexpect.spawn]:
    """`_bash_running` of `zag run claude` with the claude-like TUI (`_claude_like`'s) as claude."""
    return _bash_running(rig, _zag_line(rig, "run", "claude"), ZAG_CLAUDE_BIN=str(tui),
                         TUI_SPEC=str(tmp_path / "spec.json"))


def _ctrl_z(shell: pexpect.spawn) -> None:
    """Ctrl-Z to the foreground job, then the shell's 'Stopped' line and its prompt."""
    shell.sendcontrol("z")
    shell.expect_exact("Stopped", timeout=5)
    shell.expect_exact(PROMPT)


def _fg_until(shell: pexpect.spawn, text: str, timeout: float) -> None:
    """`fg`, then `text` on the screen within `timeout`, then the shell's prompt (the job ended)."""
    shell.sendline("fg")
    shell.expect_exact(text, timeout=timeout)
    shell.expect_exact(PROMPT)


def _ctrl_z_between_the_text_and_its_enter(shell: pexpect.spawn, typing_timeout: float) -> None:
    """Ctrl-Z once the agent got the resume message's text (zag pauses before its Enter), a second stopped,
    then `fg` until the agent answered and the job ended."""
    shell.expect_exact("typing", timeout=typing_timeout)
    _ctrl_z(shell)
    time.sleep(1)
    _fg_until(shell, "answered", timeout=10)


def _claude_like(rig: L.Rig, tmp_path: Path, reset: float, raw_delay: float = 0.0,
                 think: float = 0.0, quit_after_hit: bool = False) -> tuple[Path, Path]:
    """The TUI script and its spec; returns (executable, keylog)."""
    text = f"Claude AI usage limit reached|{int(reset)}"
    keylog = tmp_path / "keys.jsonl"
    spec = {
        "keylog": str(keylog),
        "raw_delay": raw_delay,
        "think": think,
        "quit_after_hit": quit_after_hit,
        "transcript": L.claude_transcript(rig),
        "banner": "╭─ Claude Code ─╮\r\n❯ fix the bug\r\n",
        "hit_lines": [L.claude_user(rig, "fix the bug"), L.claude_limit_record(rig, text)],
        "hit_screen": f"  ⎿  {text}\r\n{L.CLAUDE_DIALOG}",
        "answer_lines": [L.claude_user(rig, L.MESSAGE), L.claude_assistant(rig, "Picking up.")],
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    tui = tmp_path / "claude-like"
    tui.write_text(f"#!{sys.executable}\n{CLAUDE_LIKE_TUI}", encoding="utf-8")
    tui.chmod(0o755)
    return tui, keylog


def _keys(keylog: Path) -> list[dict[str, Any]]:
    if not keylog.exists():
        return []
    return [json.loads(line) for line in keylog.read_text(encoding="utf-8").splitlines() if line]


def _killed_job_status(shell: pexpect.spawn) -> int:
    """`kill %1` to the stopped job, then its exit status as `jobs` reports it once it ended (not `wait %1`
    right after the kill: bash may still have the job stopped then and return 128+SIGTSTP at once)."""
    shell.sendline("kill %1")
    shell.expect_exact(PROMPT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        shell.sendline("jobs")
        shell.expect_exact(PROMPT)
        seen = shell.before.decode("utf-8", "replace")
        ended = re.search(r"(Exit (\d+)|Done|Terminated)", seen)
        if ended:
            return int(ended.group(2)) if ended.group(2) else (0 if ended.group(1) == "Done" else 143)
        time.sleep(0.2)
    raise AssertionError("the killed job did not end")


def _status(shell: pexpect.spawn) -> int:
    shell.sendline("echo status=$?")
    shell.expect(r"status=(\d+)")
    code = int(shell.match.group(1))
    shell.expect_exact(PROMPT)
    return code


def test_interactive_wait_suspended_past_the_reset_resumes_after_fg(tmp_path: Path, zag_home: Path) -> None:
    """Ctrl-Z while zag waits for the reset (the agent, claude-like, suspends itself); the reset passes while
    the job is stopped; `fg`: zag types the resume message into the agent once it is back in raw mode
    (not into its cooked, stopped terminal, where the line discipline would turn Enter into a newline),
    and the session continues: one attempt, resumed, exit 0."""
    rig = L.Rig(tmp_path, zag_home, "claude")
    tui, keylog = _claude_like(rig, tmp_path, time.time() + 4, raw_delay=0.5)
    with _claude_like_running(rig, tui, tmp_path) as shell:
        shell.expect_exact("hit its usage limit")
        rig.waiting_row()  # Ctrl-Z during the wait: the agent stops at once, maybe before zag noted the wait
        _ctrl_z(shell)
        [row] = rig.zag_json("ps", "--json")
        assert row["state"] in ("waiting", "dead")
        time.sleep(7)  # the reset (+ jitter) passes while the job is stopped
        assert not [k for k in _keys(keylog) if "Continue" in k["data"]], "typed while the job was stopped"
        _fg_until(shell, "answered", timeout=15)
        assert _status(shell) == 0
    typed = [k for k in _keys(keylog) if "Continue" in k["data"] or k["data"] in ("\r", "\n")]
    assert all(not k["icanon"] for k in typed), typed
    events = rig.log()
    assert [e["attempt"] for e in L.of_type(events, "usage_limit_resumed")] == [1]
    assert not L.of_type(events, "usage_limit_resume_failed")


VERIFY_CONFIG = L.CONFIG.replace("verify_secs = 20", "verify_secs = 3").replace("retry_secs = 1", "retry_secs = 30")


def test_a_job_stopped_while_the_resumed_agent_answers_is_not_judged_by_the_time_it_stood_still(
        tmp_path: Path, zag_home: Path) -> None:
    """Ctrl-Z right after zag typed the resume message (the agent is thinking); the job stays stopped longer
    than `verify_secs`; `fg`: the agent answers a moment later. The attempt succeeded: the verify window
    counts the time the agent could run, not the time the job stood stopped (zag logged it failed at once
    after `fg`, and the answer then closed the incident as 'continued by itself')."""
    rig = L.Rig(tmp_path, zag_home, "claude", config=VERIFY_CONFIG)
    tui, keylog = _claude_like(rig, tmp_path, time.time() + 2, think=1.5)
    with _claude_like_running(rig, tui, tmp_path) as shell:
        shell.expect_exact("thinking", timeout=20)
        _ctrl_z(shell)
        time.sleep(5)  # longer than verify_secs
        _fg_until(shell, "answered", timeout=15)
        assert _status(shell) == 0
    events = rig.log()
    assert not L.of_type(events, "usage_limit_resume_failed")
    assert [e["attempt"] for e in L.of_type(events, "usage_limit_resumed")] == [1]


def _redirected(line: str, out: Path) -> str:
    return f"{line} >{shlex.quote(str(out))}"


def _headless_line(rig: L.Rig, out: Path) -> str:
    return _redirected(_zag_line(rig, "run", "claude", *L.CLAUDE_HEADLESS_ARGS), out)


def test_a_headless_wait_suspended_then_continued_with_bg_relaunches_the_agent(tmp_path: Path,
                                                                               zag_home: Path) -> None:
    """`zag run claude -p … >out` in an interactive shell: Ctrl-Z during the wait between runs (no agent
    running), then `bg`: the wait goes on in the background, the agent is relaunched there and the job
    ends with its exit code."""
    rig = L.Rig(tmp_path, zag_home, "claude")
    rig.script(L.claude_headless_hit(rig, time.time() + 3), L.claude_headless_resumed(rig))
    with _bash_running(rig, _headless_line(rig, tmp_path / "out.jsonl")) as shell:
        shell.expect_exact("hit its usage limit")
        _ctrl_z(shell)
        shell.sendline("bg")
        shell.expect_exact(PROMPT)
        shell.sendline("wait %1; echo status=$?")
        shell.expect(r"status=(\d+)", timeout=30)
        assert int(shell.match.group(1)) == 0
    events = rig.log()
    assert [e["attempt"] for e in L.of_type(events, "usage_limit_resumed")] == [1]
    assert events[-1]["type"] == "session_ended" and events[-1]["exit_code"] == 0
    assert len(rig.invocations()) == 2


def test_kill_of_a_headless_job_stopped_during_the_wait_ends_it_cleanly(tmp_path: Path, zag_home: Path) -> None:
    """Ctrl-Z during the headless wait, then `kill %1` (SIGTERM with a SIGCONT): zag cancels the wait, logs
    session_ended (cancelled) and exits with the agent's last exit code (1), without relaunching it."""
    rig = L.Rig(tmp_path, zag_home, "claude")
    rig.script(L.claude_headless_hit(rig, time.time() + 30), L.claude_headless_resumed(rig))
    with _bash_running(rig, _headless_line(rig, tmp_path / "out.jsonl")) as shell:
        shell.expect_exact("hit its usage limit")
        _ctrl_z(shell)
        code = _killed_job_status(shell)
    events = rig.log()
    assert events[-1]["type"] == "session_ended", [e["type"] for e in events[-3:]]
    assert (code, events[-1]["exit_code"], events[-1].get("cancelled")) == (1, 1, True)
    assert len(rig.invocations()) == 1
    [row] = rig.agent.index_rows()
    assert (row["state"], row["exit_code"]) == ("exited", 1)


def test_ctrl_z_between_the_typed_message_and_its_enter(tmp_path: Path, zag_home: Path) -> None:
    """Ctrl-Z lands while zag types the resume message (claude: the text, a 0.25 s pause, Enter): the agent
    suspends itself (cooked modes back); after `fg` the Enter must reach it as an Enter (CR in its raw
    mode), not go through the cooked line discipline of a stopped agent (CR turned into a newline: claude
    inserts a line, the message is never sent)."""
    rig = L.Rig(tmp_path, zag_home, "claude", config=VERIFY_CONFIG)
    tui, keylog = _claude_like(rig, tmp_path, time.time() + 2)
    try:
        with _claude_like_running(rig, tui, tmp_path) as shell:
            _ctrl_z_between_the_text_and_its_enter(shell, typing_timeout=20)
            assert _status(shell) == 0
    finally:
        print("KEYS", _keys(keylog))
    events = rig.log()
    assert not L.of_type(events, "usage_limit_resume_failed")
    assert [e["attempt"] for e in L.of_type(events, "usage_limit_resumed")] == [1]


def _dead_waiting_session(rig: L.Rig, reset_in: float, tui: bool) -> str:
    """A headless session hit its limit, its zag SIGKILLed while waiting: dead, resume due; the resumed run
    is a claude TUI (`tui`) or headless again."""
    resumed = ([{"raw_tty": True}, {"out": "╭─ Claude Code ─╮\r\n❯ \r\n  ? for shortcuts\r\n"},
                *L.claude_tui_resumed(rig)] if tui else L.claude_headless_resumed(rig))
    rig.script(L.claude_headless_hit(rig, time.time() + reset_in), resumed)
    return rig.killed_while_waiting()["session_id"]


def test_zag_resume_suspended_during_its_wait_then_fg(tmp_path: Path, zag_home: Path) -> None:
    """`zag resume <dead session> >out` from an interactive shell, Ctrl-Z during its wait, the due time
    passes, `fg`: it resumes the agent and ends 0."""
    rig = L.Rig(tmp_path, zag_home, "claude")
    session_id = _dead_waiting_session(rig, 6, tui=False)
    with _bash_running(rig, _redirected(_zag_line(rig, "resume", session_id[:8]), tmp_path / "out")) as shell:
        shell.expect_exact("resumes at")
        _ctrl_z(shell)
        time.sleep(6)
        started = time.monotonic()
        shell.sendline("fg")
        shell.expect_exact(PROMPT, timeout=20)
        assert time.monotonic() - started < 8
        assert _status(shell) == 0
    events = rig.log()
    assert [e["attempt"] for e in L.of_type(events, "usage_limit_resumed")] == [1]
    assert events[-1]["type"] == "session_ended" and events[-1]["exit_code"] == 0


def test_kill_of_zag_resume_stopped_during_its_wait(tmp_path: Path, zag_home: Path) -> None:
    """Ctrl-Z during `zag resume`'s wait, then `kill %1`: the wait is cancelled, session_ended logged, the
    exit code the agent had (1); the session is exited, not dead."""
    rig = L.Rig(tmp_path, zag_home, "claude")
    session_id = _dead_waiting_session(rig, 30, tui=False)
    with _bash_running(rig, _redirected(_zag_line(rig, "resume", session_id[:8]), tmp_path / "out")) as shell:
        shell.expect_exact("resumes at")
        _ctrl_z(shell)
        code = _killed_job_status(shell)
    events = rig.log()
    assert (code, events[-1]["type"], events[-1]["exit_code"], events[-1].get("cancelled")) == (
        1, "session_ended", 1, True)
    assert len(rig.invocations()) == 1
    [row] = rig.agent.index_rows()
    assert (row["state"], row["exit_code"]) == ("exited", 1)


def test_interactive_zag_resume_suspended_then_bg_waits_for_fg_and_types_the_message(
        tmp_path: Path, zag_home: Path) -> None:
    """`zag resume` in the terminal (the agent is relaunched as a TUI), Ctrl-Z during its wait, `bg`: at
    the due time it starts the agent and stops for the terminal (tty output); `fg`: the agent gets its
    terminal and the resume message, the job ends 0."""
    rig = L.Rig(tmp_path, zag_home, "claude")
    session_id = _dead_waiting_session(rig, 5, tui=True)
    with _bash_running(rig, _zag_line(rig, "resume", session_id[:8])) as shell:
        shell.expect_exact("resumes at")
        _ctrl_z(shell)
        shell.sendline("bg")
        shell.expect_exact(PROMPT)
        time.sleep(7)
        shell.sendline("jobs")
        shell.expect_exact("jobs")
        shell.expect_exact(PROMPT)
        jobs = shell.before.decode("utf-8", "replace")
        shell.sendline("fg")
        shell.expect_exact("Picking up where I stopped.", timeout=20)
        shell.expect_exact(PROMPT, timeout=20)
        assert _status(shell) == 0, jobs
    assert "Stopped" in jobs, jobs
    events = rig.log()
    assert [e["attempt"] for e in L.of_type(events, "usage_limit_resumed")] == [1]


def test_usage_cancel_while_the_job_is_stopped_types_nothing_after_fg(tmp_path: Path, zag_home: Path) -> None:
    """Ctrl-Z during the interactive wait; meanwhile `zag ps` shows the session (waiting, or dead (zag
    stopped) once its heartbeats are missed) and `zag usage cancel` cancels the resume; the reset passes;
    after `fg` nothing is typed into the agent and the log says the wait was cancelled."""
    rig = L.Rig(tmp_path, zag_home, "claude")
    tui, keylog = _claude_like(rig, tmp_path, time.time() + 8)
    with _claude_like_running(rig, tui, tmp_path) as shell:
        shell.expect_exact("hit its usage limit")
        rig.waiting_row()
        _ctrl_z(shell)
        time.sleep(3)  # heartbeats missed (heartbeat_secs = 0.5)
        [row] = rig.zag_json("ps", "--json")
        table = rig.run("ps").stdout.decode()
        assert "zag stopped" in table, table
        [pending] = rig.zag_json("usage", "list", "--json")
        listed = rig.run("usage", "list").stdout.decode()
        assert "dead (zag stopped)" in listed, listed  # as zag ps says: not one for `zag resume`
        cancelled = rig.run("usage", "cancel", pending["incident_id"][:8])
        assert cancelled.returncode == 0, cancelled.stderr.decode()
        while time.time() < parse_ts(pending["resume_at"]) + 1:  # past the reset
            time.sleep(0.2)
        shell.sendline("fg")
        shell.expect_exact("resume of claude cancelled", timeout=10)
        time.sleep(1.5)
        shell.send("q")
        shell.expect_exact(PROMPT, timeout=10)
        assert _status(shell) == 3
    assert not [k for k in _keys(keylog) if "Continue" in k["data"] or k["data"] == "\r"], _keys(keylog)
    events = rig.log()
    assert [e["data"]["cause"] for e in L.of_type(events, "provider_status")
            if (e.get("data") or {}).get("kind") == "usage_limit_cancelled"] == ["usage_cancel"]
    assert not L.of_type(events, "usage_limit_resume_started")


def test_kill_of_the_interactive_job_stopped_during_the_wait(tmp_path: Path, zag_home: Path) -> None:
    """Ctrl-Z during the interactive wait (the agent on screen), then `kill %1`: the agent gets the SIGTERM,
    the wait is cancelled (the resume row too), session_ended logged, the job ends 128+15, nothing typed."""
    rig = L.Rig(tmp_path, zag_home, "claude")
    tui, keylog = _claude_like(rig, tmp_path, time.time() + 30)
    with _claude_like_running(rig, tui, tmp_path) as shell:
        shell.expect_exact("hit its usage limit")
        rig.waiting_row()
        _ctrl_z(shell)
        code = _killed_job_status(shell)
    events = rig.log()
    ended = events[-1]
    assert (code, ended["type"], ended["exit_code"], ended.get("signal")) == (143, "session_ended", 143, "SIGTERM")
    assert [r["status"] for r in rig.resume_rows()] == ["cancelled"]
    [row] = rig.agent.index_rows()
    assert (row["state"], row["exit_code"], row["resume_at"]) == ("exited", 143, None)
    assert not [k for k in _keys(keylog) if "Continue" in k["data"]]


def test_bg_of_the_interactive_job_stopped_during_the_wait_types_nothing_until_fg(tmp_path: Path,
                                                                                  zag_home: Path) -> None:
    """Ctrl-Z during the interactive wait, `bg`: the job stays stopped (zag waits for the terminal) past the
    reset, nothing is typed meanwhile; `fg`: the message goes in, the session continues."""
    rig = L.Rig(tmp_path, zag_home, "claude")
    tui, keylog = _claude_like(rig, tmp_path, time.time() + 3)
    with _claude_like_running(rig, tui, tmp_path) as shell:
        shell.expect_exact("hit its usage limit")
        _ctrl_z(shell)
        shell.sendline("bg")
        shell.expect_exact(PROMPT)
        time.sleep(6)
        shell.sendline("jobs")
        shell.expect_exact("Stopped")
        shell.expect_exact(PROMPT)
        assert not [k for k in _keys(keylog) if k["data"] not in ("\x1a",)], _keys(keylog)
        _fg_until(shell, "answered", timeout=15)
        assert _status(shell) == 0
    events = rig.log()
    assert [e["attempt"] for e in L.of_type(events, "usage_limit_resumed")] == [1]


def test_ctrl_z_while_zag_types_into_the_relaunched_agent(tmp_path: Path, zag_home: Path) -> None:
    """The agent quit during the wait; zag relaunches it (--resume) and types the message once its TUI
    settled; Ctrl-Z lands between the text and its Enter: after `fg` the Enter reaches the raw TUI."""
    rig = L.Rig(tmp_path, zag_home, "claude", config=VERIFY_CONFIG)
    tui, keylog = _claude_like(rig, tmp_path, time.time() + 2, quit_after_hit=True)
    with _claude_like_running(rig, tui, tmp_path) as shell:
        _ctrl_z_between_the_text_and_its_enter(shell, typing_timeout=30)
        assert _status(shell) == 0
    events = rig.log()
    assert not L.of_type(events, "usage_limit_resume_failed")
    assert [e["attempt"] for e in L.of_type(events, "usage_limit_resumed")] == [1]
