"""Several `zag run <provider>` started at the same instant in one folder, each stand-in agent writing its
own session in the provider's real format and place, where zag has no exact signal of which file is whose
(codex: no id printed, the rollout not held open; an older gemini: no `--session-id`; goose: bare `goose`,
or one `--name` for all). Whatever the pairing, each agent session must be followed by exactly one zag
session and each zag session must follow exactly one agent session (the claims under `$ZAG_HOME/claims`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.gemini import geminilib as g
from tests.fixtures.goose import gooselib as gl
from tests.integration.helpers import Agent, assert_valid_log, read_jsonl, write_script
from tests.integration.test_live_goose import add_message, create_session_sql

RUNS = 3
TIMEOUT = 60.0


def now_ts() -> str:
    moment = datetime.now(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def gate(agent: Agent) -> dict[str, Any]:
    """The stand-ins' first action: wait until all of them run (they then write within a few ms)."""
    return {"wait_file": str(agent.root / "all-started"), "timeout": 30}


def run_together(agent: Agent, scripts: list[list[dict[str, Any]]], argv: list[list[str]],
                 **env: str) -> None:
    """Start one `zag run` per script at once (same cwd, same ZAG_HOME), open the gate once every agent
    runs, and wait for all."""
    procs = []
    for index, actions in enumerate(scripts):
        script = write_script(agent.root / f"script-{index}.json", actions)
        procs.append(agent.start(*argv[index], env=agent.env(STANDIN_SCRIPT=str(script),
                                                             STANDIN_STATE=f"{script}.count", **env)))
    agent.wait_for_invocation(len(scripts), timeout=TIMEOUT)
    (agent.root / "all-started").touch()
    for proc in procs:
        _, err = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0, err.decode()


def followed(agent: Agent) -> list[tuple[str | None, list[str]]]:
    """(provider session id, transcript texts) of every zag session."""
    result = []
    for path in agent.session_log_paths():
        log = read_jsonl(path)
        assert_valid_log(log)
        said = [e for e in log if e["type"] in ("user_message", "assistant_message")]
        ids = {e["provider_session_id"] for e in said}
        assert len(ids) <= 1, f"one zag session followed several agent sessions: {ids}"
        result.append((ids.pop() if ids else None, [e["content"] for e in said]))
    return result


def assert_one_to_one(agent: Agent, written: dict[str, list[str]]) -> None:
    """Each agent session (id → its texts) followed by exactly one zag session, whole."""
    pairs = followed(agent)
    assert len(pairs) == len(written)
    assert sorted(str(session_id) for session_id, _ in pairs) == sorted(written), pairs
    for session_id, texts in pairs:
        assert texts == written[session_id]


def test_codex_rollouts_found_by_cwd_and_time_go_one_to_each_session(agent: Agent, tmp_path: Path) -> None:
    """No `thread.started`, no open rollout to see in /proc (the stand-in closes it after each write): the
    sessions fall back to "a rollout created after start with our cwd". Two of them used to take the same
    one: a claim was an O_EXCL-created file written after its creation, and a second claimer reading it
    empty in between took the holder for dead; and a session that finished first released its claim, so
    one whose search came later took that rollout again."""
    codex_home = tmp_path / "codexhome"
    codex_home.mkdir()
    scripts, written = [], {}
    for index in range(RUNS):
        thread_id = str(uuid.uuid4())
        created = datetime.fromtimestamp(time.time() + 60)  # named as if created after zag's start (the
        # name's second must not precede it: the scripts are written before zag starts, however slowly)
        path = (f"{codex_home}/sessions/{created:%Y/%m/%d}/rollout-{created:%Y-%m-%dT%H-%M-%S}-{thread_id}.jsonl")

        def line(kind: str, payload: dict[str, Any]) -> str:
            return json.dumps({"timestamp": "{now}", "type": kind, "payload": payload})
        scripts.append([
            gate(agent),
            {"append": path, "lines": [
                line("session_meta", {"id": thread_id, "cwd": str(agent.root), "timestamp": "{now}", "source": "exec"}),
                line("event_msg", {"type": "user_message", "message": f"question {index}"})]},
            {"sleep": 0.5},
            {"append": path, "lines": [line("response_item", {"type": "message", "role": "assistant", "content": [
                {"type": "output_text", "text": f"answer {index}"}]})]},
            {"sleep": 0.2},
        ])
        written[thread_id] = [f"question {index}", f"answer {index}"]
    run_together(agent, scripts, [["run", "codex", "exec", f"task {i}"] for i in range(RUNS)],
                 CODEX_HOME=str(codex_home))
    assert_one_to_one(agent, written)


def old_gemini(agent: Agent, tmp_path: Path) -> Path:
    """The stand-in installed as gemini-cli 0.38 (no `--session-id` yet: zag cannot choose the id)."""
    package = tmp_path / "gemini-cli"
    (package / "bundle").mkdir(parents=True)
    (package / "package.json").write_text(json.dumps({"name": "@google/gemini-cli", "version": "0.38.0"}))
    executable = package / "bundle" / "gemini.js"
    executable.write_text(agent.executable.read_text())
    executable.chmod(0o755)
    return executable


def test_older_gemini_newest_chat_files_go_one_to_each_session(agent: Agent, tmp_path: Path) -> None:
    """Without `--session-id`, each session takes "the newest chat file of the project since the start":
    every one of them followed the same file (the first to appear), the other agents' went unlogged."""
    env, chats = g.make_home(tmp_path, agent.root, via="GEMINI_CLI_HOME")
    scripts, written = [], {}
    for index in range(RUNS):
        session_id = str(uuid.uuid4())
        path = str(chats / g.session_name(session_id, minute=f"2026-12-07T10-0{index}"))
        scripts.append([
            gate(agent),
            {"append": path, "lines": [json.dumps(g.meta(session_id, start="{now}")),
                                       json.dumps(g.user(f"u{index}", f"question {index}", ts="{now}"))]},
            {"sleep": 0.5},
            {"append": path, "lines": [json.dumps(g.gemini(f"g{index}", f"answer {index}", ts="{now}"))]},
            {"sleep": 0.2},
        ])
        written[session_id] = [f"question {index}", f"answer {index}"]
    run_together(agent, scripts, [["run", "gemini", "-p", f"task {i}"] for i in range(RUNS)],
                 GEMINI_CLI_HOME=env["GEMINI_CLI_HOME"], ZAG_GEMINI_BIN=str(old_gemini(agent, tmp_path)))
    assert all("--session-id" not in call["argv"] for call in agent.invocations())
    assert_one_to_one(agent, written)


def written_now(sql: str) -> str:
    """goose's row stamped when the stand-in writes it, not when its script was written."""
    return re.sub(r"'\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?Z?'", "datetime('now')", sql)


@pytest.mark.parametrize("named", [False, True], ids=["bare-goose", "one-name"])
def test_goose_rows_found_by_folder_or_name_go_one_to_each_session(agent: Agent, tmp_path: Path,
                                                                    named: bool) -> None:
    """Bare `goose` (zag cannot name it: "the session created after the launch in this folder") and
    `goose run --name X` given the same X by each: all of them followed the newest row."""
    db = tmp_path / "gooseroot" / "data" / "sessions" / "sessions.db"
    gl.GooseDb.create(db)
    scripts, written = [], {}
    for index in range(RUNS):
        session_id = f"20261207_{index + 1}"

        def message(n: int, role: str, text: str) -> dict[str, Any]:
            return {"role": role, "created": int(time.time()) + n, "message_id": f"msg_{session_id}_{n}",
                    "content": [{"type": "text", "text": text}]}
        scripts.append([
            gate(agent),
            {"sqlite": str(db), "sql": written_now(create_session_sql(session_id, "shared" if named else f"s{index}",
                                                                      str(agent.root)))},
            add_message(str(db), session_id, message(0, "user", f"question {index}")),
            {"sleep": 0.5},
            add_message(str(db), session_id, message(1, "assistant", f"answer {index}")),
            {"sleep": 0.2},
        ])
        written[session_id] = [f"question {index}", f"answer {index}"]
    argv = [["run", "goose", "run", "--name", "shared", "-t", f"task {i}"] if named else ["run", "goose"]
            for i in range(RUNS)]
    run_together(agent, scripts, argv, GOOSE_PATH_ROOT=str(tmp_path / "gooseroot"))
    assert_one_to_one(agent, written)


def test_a_claim_taken_by_many_processes_at_once_has_one_owner(tmp_path: Path) -> None:
    """The claim itself: processes released at one instant claim the same keys; each key gets exactly one
    owner (the O_EXCL-then-write claim let a second claimer replace the first's empty file)."""
    program = (
        "import os, sys, time\n"
        "from zag.providers import claims\n"
        "start = float(sys.argv[2])\n"
        "while time.time() < start: pass\n"
        "won = [key for key in map(str, range(40)) if claims.claim('codex', key, sys.argv[1])]\n"
        "print(' '.join(won))\n"
        "time.sleep(1)\n"   # stay alive: the claims must look live to the others until all are done
    )
    env = {**os.environ, "ZAG_HOME": str(tmp_path / "zaghome")}
    start = time.time() + 1.0
    procs = [subprocess.Popen([sys.executable, "-c", program, f"owner-{n}", str(start)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for n in range(6)]
    won: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0, err.decode()
        won += out.decode().split()
    assert sorted(won, key=int) == [str(key) for key in range(40)]


def test_gemini_resume_latest_beside_a_new_gemini_follows_the_resumed_session(agent: Agent, tmp_path: Path) -> None:
    """`zag run gemini --resume latest` (no id: zag used to take the newest chat file modified since the
    start) while another `zag run gemini` in the folder starts a new chat: the new chat's file, written
    first, was taken. zag now looks up which session `latest` is, as gemini does, and waits for it."""
    env, chats = g.make_home(tmp_path, agent.root, via="GEMINI_CLI_HOME")
    older, latest = str(uuid.uuid4()), str(uuid.uuid4())
    g.write(chats / g.session_name(older, "2026-12-07T08-00"), g.meta(older, start="2026-12-07T08:00:00.000Z"),
            g.user("o1", "older question", ts="2026-12-07T08:00:01.000Z"))
    resumed = chats / g.session_name(latest, "2026-12-07T08-30")
    g.write(resumed, g.meta(latest, start="2026-12-07T08:30:00.000Z"),
            g.user("l1", "earlier question", ts="2026-12-07T08:30:01.000Z"))
    for path in chats.iterdir():
        os.utime(path, (time.time() - 3600, time.time() - 3600))   # last written an hour ago
    new_file = str(chats / "session-2026-12-07T10-00-{session_id8}.jsonl")
    resume_script = [
        gate(agent),
        {"sleep": 0.8},  # gemini loads the old conversation first; the other agent writes meanwhile
        {"append": str(resumed), "lines": [json.dumps(g.user("l2", "resumed question", ts="{now}"))]},
        {"sleep": 0.3},
    ]
    new_script = [
        gate(agent),
        {"append": new_file, "lines": [json.dumps(g.meta("{session_id}", start="{now}")),
                                       json.dumps(g.user("n1", "new question", ts="{now}"))]},
        {"sleep": 1.2},
    ]
    run_together(agent, [resume_script, new_script],
                 [["run", "gemini", "--resume", "latest", "-p", "more"], ["run", "gemini", "-p", "new"]],
                 GEMINI_CLI_HOME=env["GEMINI_CLI_HOME"])
    by_argv = {}
    for path in agent.session_log_paths():
        log = read_jsonl(path)
        said = [(e["content"], e["provider_session_id"]) for e in log if e["type"] == "user_message"]
        by_argv[log[0]["argv"][1]] = said
    new_id = next(call["argv"][1] for call in agent.invocations() if call["argv"][0] == "--session-id")
    assert by_argv == {"--resume": [("resumed question", latest)], "-p": [("new question", new_id)]}


def test_claims_work_without_file_locks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file system without locks (flock fails with ENOLCK, as on some NFS mounts): claiming must not
    raise into the supervisor; it goes on without the lock."""
    import errno
    import fcntl

    from zag.providers import claims

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")
    monkeypatch.setenv("ZAG_HOME", str(tmp_path / "zaghome"))
    monkeypatch.setattr(fcntl, "flock", no_locks)
    assert claims.claim("codex", "k", "owner-a") is True
    assert claims.claim("codex", "k", "owner-b") is False
    claims.release("codex", "k", "owner-a", keep=True)
    assert claims.claimed_by_other("codex", "k", "owner-b", ended_too=True)
    assert claims.live_owner("codex", "k") is None


def test_a_claim_does_not_wait_for_ever_on_a_lock_held_by_a_stopped_process(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A zag stopped with Ctrl-Z while holding the claims folder's lock must not stall another agent's
    start: the claim waits a bounded time, then goes on unlocked."""
    import fcntl

    from zag.providers import claims

    monkeypatch.setenv("ZAG_HOME", str(tmp_path / "zaghome"))
    monkeypatch.setattr(claims, "LOCK_WAIT_SECS", 0.3, raising=False)
    assert claims.claim("codex", "first", "owner-a") is True  # creates the folder and its lock file
    lock = tmp_path / "zaghome" / "claims" / "codex" / ".lock"
    holder = os.open(lock, os.O_RDWR)  # another open file description: its lock excludes ours
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        started = time.monotonic()
        assert claims.claim("codex", "second", "owner-b") is True
        assert time.monotonic() - started < 10
    finally:
        os.close(holder)
    assert claims.claim("codex", "second", "owner-c") is False  # owner-b holds it (this process runs)
