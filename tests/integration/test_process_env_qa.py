"""`zag` in the hostile but legal surroundings a shell, cron, CI or a batch script can give it: extra
descriptors, odd encodings, a relative ZAG_HOME. The agent must behave as it would without zag, and zag's
own commands must say one clear line, never a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.helpers import REPO, Agent, assert_valid_log, reaped

FIXTURES = REPO / "tests" / "fixtures"


def _shell_agent(agent: Agent, body: str) -> dict[str, str]:
    """zag's environment with the agent replaced by a /bin/sh script (`body`)."""
    script = agent.root / "shell-agent"
    script.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    script.chmod(0o755)
    return agent.env(ZAG_CLAUDE_BIN=str(script))


def test_descriptors_the_shell_gave_zag_reach_the_agent(agent: Agent) -> None:
    # `zag run claude --mcp-config <(...)`: the agent reads /dev/fd/63; `3>log` gives it an fd 3
    env = _shell_agent(agent, 'eval cat "\\${$#}"; echo to-the-sink > /dev/fd/$SINK_FD')
    source_r, source_w = os.pipe()
    os.write(source_w, b"from the process substitution\n")
    os.close(source_w)
    sink_r, sink_w = os.pipe()
    env["SINK_FD"] = str(sink_w)
    try:
        done = subprocess.run([*agent.command("run", "claude", f"/dev/fd/{source_r}")], env=env, cwd=agent.root,
                              capture_output=True, timeout=60, pass_fds=(source_r, sink_w))
        os.close(sink_w)
        sink_w = -1
        sunk = os.read(sink_r, 4096)
    finally:
        os.close(source_r)
        os.close(sink_r)
        if sink_w >= 0:
            os.close(sink_w)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"from the process substitution\n"
    assert sunk == b"to-the-sink\n"
    assert_valid_log(agent.only_session())


def test_zags_own_descriptors_do_not_reach_the_agent(agent: Agent) -> None:
    env = _shell_agent(agent, 'ls /proc/$$/fd')
    done = subprocess.run(agent.command("run", "claude"), env=env, cwd=agent.root, capture_output=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    # 0-2, the script the shell reads (10 or so, its own) and ls's listing: nothing of zag's (a log, the index)
    leaked = sorted(int(fd) for fd in done.stdout.split() if 2 < int(fd) < 10)
    assert len(leaked) <= 1, done.stdout  # ls's own open directory


@pytest.mark.parametrize("encoding", [{"PYTHONIOENCODING": "ascii"}, {"PYTHONIOENCODING": "latin-1"},
                                      {"PYTHONUTF8": "0", "LC_ALL": "C", "LANG": "C"}],
                         ids=["ascii", "latin-1", "C-locale-without-utf8-mode"])
def test_listings_in_an_encoding_that_cannot_show_the_folder(agent: Agent, tmp_path: Path,
                                                             encoding: dict[str, str]) -> None:
    folder = tmp_path / "café €"
    folder.mkdir()
    agent.script([{"out": "hi\n"}, {"exit": 0}])
    done = subprocess.run(agent.command("run", "claude", "-p", "☃"), env=agent.env(), cwd=folder,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    session_id = agent.only_session()[0]["session_id"]
    env = agent.env(**encoding)
    for command in (["sessions"], ["ps", "--all"], ["events", session_id], ["listen", session_id, "--no-follow"]):
        listed = agent.run(*command, env=env)
        assert listed.returncode == 0 and b"Traceback" not in listed.stderr, (command, listed.stderr)
        assert b"\\u20ac" in listed.stdout or "€".encode() in listed.stdout, (command, listed.stdout)


def test_a_relative_zag_home_is_the_folder_it_names_from_where_zag_started(agent: Agent, tmp_path: Path) -> None:
    # `cd project && ZAG_HOME=.zag zag run ...`; later, from elsewhere, `ZAG_HOME=project/.zag zag sessions --json`
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    agent.script([{"out": "hi\n"}, {"exit": 0}])
    done = subprocess.run(agent.command("run", "claude", "-p", "x"), env=agent.env(ZAG_HOME=".zag"), cwd=project,
                          capture_output=True, timeout=60)
    assert done.returncode == 0 and done.stdout == b"hi\n", done.stderr
    assert (project / ".zag" / "sessions").is_dir()
    assert agent.invocations()[-1]["env"]["ZAG_HOME"] == str(project / ".zag")  # for the agent's hooks
    listed = subprocess.run(agent.command("sessions", "--json"), env=agent.env(ZAG_HOME="../project/.zag"),
                            cwd=elsewhere, capture_output=True, timeout=60)
    [row] = json.loads(listed.stdout)
    assert Path(row["log_path"]).is_absolute() and Path(row["log_path"]).is_file(), row["log_path"]


def test_a_zag_home_whose_name_is_not_utf8_takes_backfill_and_reindex(agent: Agent, tmp_path: Path) -> None:
    home = os.fsdecode(os.fsencode(tmp_path) + b"/zag-\xff")
    claude_home = tmp_path / "claude-home"
    transcript = FIXTURES / "claude" / "transcript_tool_use.jsonl"
    provider_id = json.loads(transcript.read_text(encoding="utf-8").splitlines()[0])["sessionId"]
    (claude_home / ".claude" / "projects" / "-work").mkdir(parents=True)
    (claude_home / ".claude" / "projects" / "-work" / f"{provider_id}.jsonl").write_bytes(transcript.read_bytes())
    env = agent.env(ZAG_HOME=home, HOME=str(claude_home))
    agent.script([{"out": "hi\n"}, {"exit": 0}])
    assert agent.run("run", "claude", "-p", "x", env=env).returncode == 0
    for command in (["backfill", "--provider", "claude"], ["reindex"]):
        done = agent.run(*command, env=env)
        assert done.returncode == 0 and b"Traceback" not in done.stderr, (command, done.stderr)
    rows = json.loads(agent.run("sessions", "--json", env=env).stdout)
    assert sorted(row["provider_session_id"] == provider_id for row in rows) == [False, True]
    assert len(os.listdir(os.path.join(home, "sessions"))) == 2


def test_zag_resume_of_a_session_whose_folder_name_is_not_utf8(agent: Agent, tmp_path: Path) -> None:
    folder = os.fsencode(tmp_path) + b"/caf\xe9\nnewline"
    os.mkdir(folder)
    agent.script([{"out": "hi\n"}, {"exit": 0}])
    done = subprocess.run(agent.command("run", "claude", "-p", "x"), env=agent.env(), cwd=folder,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    session_id = agent.only_session()[0]["session_id"]
    resumed = agent.run("resume", session_id)  # the index has the folder as 'caf\\xe9\nnewline'
    assert resumed.returncode == 0, resumed.stderr
    assert agent.invocations()[-1]["cwd"] == os.fsdecode(folder)
    os.rmdir(folder)
    refused = agent.run("resume", session_id)
    assert refused.returncode == 2 and refused.stderr.count(b"\n") == 1, refused.stderr  # one line
    assert b"caf\\xe9\\nnewline, which no longer exists" in refused.stderr


# zag as `python -c`, with the threads named in REFUSE_THREADS ("all": every one) refused as the system
# refuses them at a pids limit (a container's, or `ulimit -u`, where threads count) or under `ulimit -v`
_REFUSING_THREADS = """
import os, sys, threading
refused = set(os.environ["REFUSE_THREADS"].split(","))
start = threading.Thread.start
def refusing(self):
    if "all" in refused or self.name in refused:
        raise RuntimeError("can't start new thread")
    start(self)
threading.Thread.start = refusing
from zag.cli import main
main()
"""


@pytest.mark.parametrize("refused", ["all", "zag-relay", "zag-signals", "zag-registry", "zag-observe", "zag-live",
                                     "zag-heartbeat"])
def test_threads_the_system_refuses_do_not_end_the_agents_session(agent: Agent, refused: str) -> None:
    agent.script([{"out": "start\n"}, {"sleep": 0.5}, {"err": "note\n"}, {"out": "end\n"}, {"exit": 5}])
    done = subprocess.run([sys.executable, "-c", _REFUSING_THREADS, "run", "claude", "-p", "x"], cwd=agent.root,
                          env=agent.env(REFUSE_THREADS=refused), capture_output=True, timeout=60)
    assert (done.returncode, done.stdout) == (5, b"start\nend\n"), done.stderr
    assert b"note\n" in done.stderr and b"internal error" not in done.stderr, done.stderr
    assert done.stderr.count(b"the system refused zag a thread (") == 1, done.stderr
    if refused in ("all", "zag-registry"):  # the index row is not written: said as such, not "busy"
        assert b"could not update the index (the system refused zag a thread to write it)" in done.stderr


def test_signals_reach_the_agent_without_zags_signal_thread(agent: Agent) -> None:
    agent.script([{"trap": ["SIGTERM"]}, {"out": "ready\n"}, {"wait_signal": 30}, {"exit": 0}])
    proc = subprocess.Popen([sys.executable, "-c", _REFUSING_THREADS, "run", "claude", "-p", "x"], cwd=agent.root,
                            env=agent.env(REFUSE_THREADS="zag-signals"), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with reaped(proc):
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert (proc.returncode, out) == (128 + signal.SIGTERM, b"got SIGTERM\n"), err
    assert_valid_log(agent.only_session())


# zag as `python -c` for a user with no home: HOME unset and no passwd entry (`env -i` as a uid that has
# none), where platformdirs cannot name a folder
_HOMELESS = """
import platformdirs
def nowhere(*args, **kwargs):
    raise RuntimeError("could not determine the home directory for '~/.local/share', set an absolute HOME")
platformdirs.user_data_path = platformdirs.user_config_path = nowhere
from zag.cli import main
main()
"""


def test_without_any_home_the_agent_runs_without_zag_and_commands_say_so(agent: Agent) -> None:
    env = agent.env()
    del env["ZAG_HOME"]
    agent.script([{"out": "hi\n"}, {"exit": 3}])
    done = subprocess.run([sys.executable, "-c", _HOMELESS, "run", "claude", "-p", "x"], cwd=agent.root, env=env,
                          capture_output=True, timeout=60)
    assert (done.returncode, done.stdout) == (3, b"hi\n"), done.stderr
    assert done.stderr == b"zag: no home folder to keep zag's state in (HOME is not set, and this user has none); " \
                          b"set ZAG_HOME or HOME; claude runs without zag\n"
    assert agent.invocations()[-1]["argv"] == ["-p", "x"]  # nothing added: nothing to follow
    for command in (["sessions"], ["ps"], ["backfill"], ["usage", "list"]):
        listed = subprocess.run([sys.executable, "-c", _HOMELESS, *command], cwd=agent.root, env=env,
                                capture_output=True, timeout=60)
        assert listed.returncode == 1 and b"set ZAG_HOME or HOME" in listed.stderr, (command, listed.stderr)
        assert b"Traceback" not in listed.stderr and listed.stderr.count(b"\n") == 1, (command, listed.stderr)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_output_a_full_disk_refused_is_said_and_not_a_success(agent: Agent) -> None:
    # `zag run claude -p ... > result.txt` on a full disk: without zag the agent's write fails (ENOSPC) and
    # it exits non-zero; with zag it had written into zag's pipe and exited 0, its output silently lost
    agent.script([{"out": "the answer\n"}, {"exit": 0}])
    with open("/dev/full", "wb") as full:
        done = subprocess.run(agent.command("run", "claude", "-p", "x"), env=agent.env(), cwd=agent.root,
                              stdout=full, stderr=subprocess.PIPE, timeout=60)
    assert done.returncode == 1, done.stderr
    assert done.stderr == (b"zag: could not write all of claude's output (stdout: No space left on device); "
                           b"what it wrote after that is lost\n")
    events = agent.only_session()
    assert_valid_log(events)
    assert events[-1]["exit_code"] == 0  # the log keeps the agent's own


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("command", [["completions", "bash"], ["--help"], ["run", "--help"], ["sessions"],
                                     ["ps", "--all"]], ids=["completions", "help", "run-help", "sessions", "ps"])
def test_commands_whose_output_a_full_disk_refuses_say_so_in_one_line(agent: Agent, command: list[str]) -> None:
    # `zag completions bash > ~/.local/share/bash-completion/completions/zag` on a full disk was a traceback
    agent.script([{"out": "hi\n"}, {"exit": 0}])
    assert agent.run("run", "claude", "-p", "x").returncode == 0
    with open("/dev/full", "wb") as full:
        done = subprocess.run(agent.command(*command), env=agent.env(), cwd=agent.root, stdout=full,
                              stderr=subprocess.PIPE, timeout=60)
    assert (done.returncode, done.stderr) == (1, b"zag: cannot write the output: No space left on device\n")
