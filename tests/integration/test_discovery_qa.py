"""Finding the agent's own session file where users lose sessions (adversarial QA), with the stand-in.

A config folder given as a relative path is relative to the agent's working directory — the session's
folder, which `zag resume` starts the agent in from wherever the user's shell is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.gemini import geminilib as g
from tests.integration import test_live_claude as claude_rig
from tests.integration.helpers import Agent, assert_valid_log, standin_executable, wait_until, write_script
from tests.integration.test_live_claude import Rig, assistant, contents, count, limit, user
from zag.providers.claude import PROVIDER

NOW_TS = "2099-01-01T00:00:00.000Z"   # records "written" after the child started


def test_zag_resume_from_another_folder_with_a_relative_claude_config_dir(tmp_path: Path,
                                                                         monkeypatch) -> None:
    """zag looked for `conf/projects/…` below its own cwd: `zag resume` said no transcript, ran the original
    prompt again in a new session (resume_fallback), and the follow of an id found nothing."""
    monkeypatch.setattr(claude_rig.live, "GLOB_EVERY_SECS", 0.05)
    rig = Rig(tmp_path, via_config_dir=True)
    rig.env["CLAUDE_CONFIG_DIR"] = os.path.relpath(rig.config, rig.cwd)
    elsewhere = tmp_path / "where the shell is"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    sid = "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a"
    rig.project.mkdir(parents=True)
    Path(rig.transcript(sid)).write_text(user(sid, "say hi") + "\n" + limit(sid) + "\n")
    plan = PROVIDER.plan_resume(["-p", "say hi"], sid, "Continue", rig.ctx())
    assert "resume_fallback" not in plan.notes
    assert plan.args == ["-p", "--resume", sid, "--", "Continue"]
    rig.start(plan, [{"append": rig.transcript(sid), "lines": [user(sid, "Continue"), assistant(sid, "resumed")]}])
    rig.poll_until(count("assistant_message"))
    rig.finish()
    assert contents(rig.items) == ["Continue", "resumed"]


@pytest.mark.parametrize("launch", ["gemini", "node_options"])
def test_a_gemini_beside_the_tui_in_its_folder_is_not_its_clear_and_a_later_clear_is(tmp_path: Path,
                                                                                      zag_home: Path,
                                                                                      launch: str) -> None:
    """An interactive `zag run gemini` while the user runs another gemini in the same folder (another tab):
    the other's new chat file was taken for a `/clear` of this session (its conversation logged here, this
    session's next turns lost). Now it is noted, not followed; a `/clear` whose file appears while the other
    still counts as recent is followed once that file is written to after the other is gone — read from its
    start. `node_options`: the other runs behind interpreter options, as the child gemini 0.61.0 relaunches
    itself as (`node --max-old-space-size=… …/bin/gemini`, the process that writes its chat file): zag did
    not count it as a gemini and took its file for this session's `/clear` (seen with two real TUIs)."""
    import pexpect

    cwd = tmp_path / "proj"
    env, chats = g.make_home(tmp_path, cwd)
    gates = tmp_path / "gates"
    gates.mkdir()
    agent = Agent(tmp_path / "agent", zag_home, provider="gemini")
    ours = str(chats / "session-2026-11-22T14-44-{session_id8}.jsonl")
    cleared = "eeeeeeee-4444-4444-8444-444444444444"
    cleared_file = str(chats / g.session_name(cleared, "2026-11-22T15-01"))
    agent.script([
        {"append": ours, "lines": [g.meta("{session_id}", NOW_TS), g.user("u1", "before the other", NOW_TS)]},
        {"wait_file": str(gates / "other_done"), "timeout": 30},
        {"append": ours, "lines": [g.user("u2", "after the other", NOW_TS)]},
        {"append": cleared_file, "lines": [g.meta(cleared, NOW_TS), g.user("u3", "after clear", NOW_TS)]},
        {"sleep": 6.0},   # the other gemini no longer counts as recent; zag has looked again meanwhile
        {"append": cleared_file, "lines": [g.gemini("m3", "answer after clear", NOW_TS)]},
        {"sleep": 1.0},
    ])
    command = agent.command("run", "gemini")
    term = pexpect.spawn(command[0], command[1:], env=agent.env(HOME=env["HOME"]), cwd=str(cwd), timeout=30)
    try:
        wait_until(lambda: list(chats.glob("session-*")), 15, message="the TUI's chat file")
        time.sleep(1.5)   # zag follows it
        other_id = "dddddddd-3333-4333-8333-333333333333"
        other_script = write_script(tmp_path / "other.json", [
            {"sleep": 1.5},   # a gemini starts up for a while before it writes its file
            {"append": str(chats / g.session_name(other_id, "2026-11-22T15-00")),
             "lines": [g.meta(other_id, NOW_TS), g.user("o1", "the other tab", NOW_TS),
                       g.gemini("o2", "the other answer", NOW_TS)]},
        ])
        (tmp_path / "other-bin").mkdir()
        launcher = [sys.executable, "-u"] if launch == "node_options" else []
        other = subprocess.run([*launcher, str(standin_executable(tmp_path / "other-bin", name="gemini"))],
                               cwd=cwd, env={**env, "STANDIN_SCRIPT": str(other_script)}, timeout=30)
        assert other.returncode == 0
        (gates / "other_done").touch()
        term.expect(pexpect.EOF)
    finally:
        term.close(force=True)
    assert term.exitstatus == 0, term.before
    events = agent.only_session()
    assert_valid_log(events)
    first = agent.invocations()[0]["argv"][1]
    moves = [(e["type"], e.get("content") or e.get("new_session_id"), e["provider_session_id"]) for e in events
             if e["type"] in ("user_message", "assistant_message", "session_cleared")]
    assert moves == [("user_message", "before the other", first), ("user_message", "after the other", first),
                     ("session_cleared", cleared, cleared), ("user_message", "after clear", cleared),
                     ("assistant_message", "answer after clear", cleared)]
    noted = [e["data"]["session_id"] for e in events
             if e["type"] == "provider_status" and (e.get("data") or {}).get("other_pids")]
    assert noted == [other_id, cleared]  # the clear's file came while the other still counted as recent


def test_a_gemini_tui_clear_beside_an_idle_gemini_in_another_tab_is_followed(tmp_path: Path,
                                                                             zag_home: Path) -> None:
    """Two gemini tabs in one folder, one under zag: its `/clear` is followed while the other tab stays open
    (idle: it writes nothing, so the new file's growth can only be this session's)."""
    import pexpect

    cwd = tmp_path / "proj"
    env, chats = g.make_home(tmp_path, cwd)
    gates = tmp_path / "gates"
    gates.mkdir()
    (tmp_path / "other-bin").mkdir()
    idle = subprocess.Popen([str(standin_executable(tmp_path / "other-bin", name="gemini"))], cwd=cwd,
                            env={**env, "STANDIN_SCRIPT": str(write_script(tmp_path / "idle.json",
                                                                           [{"sleep": 60}]))})
    agent = Agent(tmp_path / "agent", zag_home, provider="gemini")
    cleared = "eeeeeeee-4444-4444-8444-444444444444"
    cleared_file = str(chats / g.session_name(cleared, "2026-11-22T15-01"))
    agent.script([
        {"append": str(chats / "session-2026-11-22T14-44-{session_id8}.jsonl"),
         "lines": [g.meta("{session_id}", NOW_TS), g.user("u1", "before clear", NOW_TS)]},
        {"sleep": 2.0},
        {"append": cleared_file, "lines": [g.meta(cleared, NOW_TS), g.user("u2", "after clear", NOW_TS)]},
        {"sleep": 2.5},
        {"append": cleared_file, "lines": [g.gemini("m2", "answer after clear", NOW_TS)]},
        {"sleep": 3.0},
    ])
    command = agent.command("run", "gemini")
    term = pexpect.spawn(command[0], command[1:], env=agent.env(HOME=env["HOME"]), cwd=str(cwd), timeout=30)
    try:
        term.expect(pexpect.EOF)
        assert idle.poll() is None  # the other tab was open all along
    finally:
        term.close(force=True)
        idle.kill()
        idle.wait(timeout=10)
    assert term.exitstatus == 0, term.before
    events = agent.only_session()
    assert_valid_log(events)
    moves = [(e["type"], e.get("content") or e.get("new_session_id")) for e in events
             if e["type"] in ("user_message", "assistant_message", "session_cleared")]
    assert moves == [("user_message", "before clear"), ("session_cleared", cleared),
                     ("user_message", "after clear"), ("assistant_message", "answer after clear")]
    noted = [e["data"]["other_pids"] for e in events
             if e["type"] == "provider_status" and (e.get("data") or {}).get("other_pids")]
    assert noted == [[idle.pid]]


@pytest.mark.parametrize("move", ["/clear", "/resume"])
def test_a_gemini_tui_clear_beside_a_busy_gemini_tui_is_followed_once_gemini_shows_the_session_id(
        tmp_path: Path, zag_home: Path, move: str) -> None:
    """Two gemini TUIs in one folder, both busy, one under zag: its `/clear` file is only noted (the other
    writes more than the file grows, so nothing tells whose it is), and zag followed it only when the TUI
    exited (`gemini --resume <id>`), or never when it printed nothing then. The id `/stats` shows
    (`Session ID: <id>` in its box) now moves zag to it at once, the new session read from its start. A
    `/resume` of an older session there is noted likewise, and followed then without that session's
    history."""
    import pexpect

    cwd = tmp_path / "proj"
    env, chats = g.make_home(tmp_path, cwd)
    gates = tmp_path / "gates"
    gates.mkdir()
    (tmp_path / "other-bin").mkdir()
    other_file = str(chats / g.session_name("dddddddd-3333-4333-8333-333333333333", "2026-11-22T14-40"))
    busy = [{"append": other_file, "lines": [g.meta("dddddddd-3333-4333-8333-333333333333", NOW_TS)]},
            *[step for _ in range(150) for step in ({"out_bytes": 4000, "chunk": 500}, {"sleep": 0.1})]]
    other = subprocess.Popen([str(standin_executable(tmp_path / "other-bin", name="gemini"))], cwd=cwd,
                             env={**env, "STANDIN_SCRIPT": str(write_script(tmp_path / "busy.json", busy))},
                             stdout=subprocess.DEVNULL)
    agent = Agent(tmp_path / "agent", zag_home, provider="gemini")
    cleared = "eeeeeeee-4444-4444-8444-444444444444"
    cleared_file = str(chats / g.session_name(cleared, "2026-11-22T15-01"))
    moved = [g.meta(cleared, NOW_TS), g.user("u2", "after clear", NOW_TS)]
    if move == "/resume":   # an older session of the folder, continued in its own file
        history = [g.user("o1", "older history"), g.gemini("o2", "older answer")]
        g.write(Path(cleared_file), g.meta(cleared), *history)
        moved = [g.set_(sessionId=cleared), g.set_(messages=history), g.user("u2", "after clear", NOW_TS)]
    agent.script([
        {"append": str(chats / "session-2026-11-22T14-44-{session_id8}.jsonl"),
         "lines": [g.meta("{session_id}", NOW_TS), g.user("u1", "before clear", NOW_TS)]},
        {"sleep": 1.5},
        {"append": cleared_file, "lines": moved},
        {"sleep": 2.5},
        {"append": cleared_file, "lines": [g.gemini("m2", "answer after clear", NOW_TS)]},
        {"sleep": 2.5},   # zag looked again: the busy one wrote more meanwhile, so still undecided
        {"out": f"\x1b[1m│\x1b[0m  Session ID:                 \x1b[36m{cleared}\x1b[0m   \x1b[1m│\x1b[0m\r\n"},
        {"wait_file": str(gates / "logged"), "timeout": 20},
        {"append": cleared_file, "lines": [g.user("u3", "after stats", NOW_TS)]},
        {"sleep": 1.0},
    ])
    command = agent.command("run", "gemini")
    term = pexpect.spawn(command[0], command[1:], env=agent.env(HOME=env["HOME"]), cwd=str(cwd), timeout=30)
    try:
        # followed while both run (the busy one until after the agent ends): not only at the agent's exit
        wait_until(lambda: "answer after clear" in _said(agent), 20, message="the /clear session, live")
        assert other.poll() is None
        (gates / "logged").touch()
        term.expect(pexpect.EOF)
        assert other.poll() is None
    finally:
        term.close(force=True)
        other.kill()
        other.wait(timeout=10)
    assert term.exitstatus == 0, term.before
    events = agent.only_session()
    assert_valid_log(events)
    moves = [(e["type"], e.get("content") or e.get("new_session_id")) for e in events
             if e["type"] in ("user_message", "assistant_message", "session_cleared")]
    assert moves == [("user_message", "before clear"), ("session_cleared", cleared),
                     ("user_message", "after clear"), ("assistant_message", "answer after clear"),
                     ("user_message", "after stats")]
    noted = [(e["data"]["other_pids"], e["data"]["move"]) for e in events
             if e["type"] == "provider_status" and (e.get("data") or {}).get("other_pids")]
    assert noted == [([other.pid], move)]


def _said(agent: Agent) -> list[str]:
    """The messages zag has logged so far (the session still running)."""
    logs = sorted((agent.zag_home / "sessions").glob("*.jsonl"))
    said = []
    for path in logs:
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("type") in ("user_message", "assistant_message"):
                said.append(event.get("content"))
    return said
