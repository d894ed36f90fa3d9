"""Shell completion: the committed scripts are current, and real bash, zsh and fish complete with them.

Completion runs `zag` from PATH (as a user's shell would), so the venv's bin folder goes first on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest

from tests.readside import add_session, gone_pid, live_supervisor
from zag import states
from zag.cli.completions import SHELLS, completion_script
from zag.logs.index import Index

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "completions"
BIN = Path(sys.executable).parent


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def _need(shell: str) -> str:
    found = shutil.which(shell)
    if found is None:
        pytest.skip(f"{shell} is not installed here (apt-get install -y {shell}); its completion is untested")
    return found


@pytest.fixture
def fleet() -> dict[str, str]:
    """A live, a dead and an exited session: only the live one may be offered."""
    with Index() as index:
        return {
            "live": add_session(index, session_id="abc12345-0000-4000-8000-000000000001", state=states.RUNNING,
                                exit_code=None, **live_supervisor(heartbeat_secs=600)),
            "dead": add_session(index, session_id="abc99999-0000-4000-8000-000000000002", state=states.RUNNING,
                                exit_code=None, **{**live_supervisor(), "supervisor_pid": gone_pid()}),
            "exited": add_session(index, session_id="abc77777-0000-4000-8000-000000000003"),
        }


@pytest.mark.parametrize("shell", SHELLS)
def test_committed_scripts_are_current(shell: str) -> None:
    committed = SCRIPTS / f"zag.{shell}"
    assert committed.exists(), f"missing {committed}: run `zag completions {shell} > completions/zag.{shell}`"
    assert committed.read_text() == completion_script(shell), (
        f"completions/zag.{shell} is stale: run `zag completions {shell} > completions/zag.{shell}`")


def test_completions_command_prints_the_script() -> None:
    done = subprocess.run([str(BIN / "zag"), "completions", "bash"], capture_output=True, timeout=60, env=_env())
    assert done.returncode == 0
    assert done.stdout.decode() == (SCRIPTS / "zag.bash").read_text()
    bad = subprocess.run([str(BIN / "zag"), "completions", "tcsh"], capture_output=True, timeout=60, env=_env())
    assert bad.returncode == 2


# --- bash: the completion function called as bash calls it ---------------------------------------
def _bash_complete(words: list[str]) -> list[str]:
    bash = _need("bash")
    quoted = " ".join("'" + word.replace("'", "'\\''") + "'" for word in words)
    script = (f"source '{SCRIPTS / 'zag.bash'}'\n"
              f"COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; COMPREPLY=()\n"
              "_zag_completion zag\n"
              'printf "%s\\n" "${COMPREPLY[@]}"\n')
    done = subprocess.run([bash, "--norc", "--noprofile", "-c", script], capture_output=True, timeout=60,
                          env=_env(), text=True)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return [line for line in done.stdout.splitlines() if line]


def test_bash_completes_commands_options_providers_and_live_sessions(fleet: dict[str, str]) -> None:
    assert _bash_complete(["zag", "li"]) == ["listen"]
    assert set(_bash_complete(["zag", ""])) >= {"run", "ps", "listen", "sessions", "events", "completions"}
    assert _bash_complete(["zag", "ps", "--a"]) == ["--all"]
    assert _bash_complete(["zag", "sessions", "--provider", ""]) == ["claude", "codex", "gemini", "goose"]
    assert _bash_complete(["zag", "completions", "z"]) == ["zsh"]
    assert _bash_complete(["zag", "events", "x", "--type", "tool_call,tool_r"]) == ["tool_call,tool_result"]
    assert _bash_complete(["zag", "listen", ""]) == [fleet["live"]]
    assert _bash_complete(["zag", "listen", "abc1"]) == [fleet["live"]]
    assert _bash_complete(["zag", "listen", "abc9"]) == []  # dead: not offered
    # events: every session, newest first (what ran overnight is looked at in the morning, ended)
    assert set(_bash_complete(["zag", "events", "ABC"])) == set(fleet.values())
    assert _bash_complete(["zag", "events", "abc7"]) == [fleet["exited"]]


def test_bash_completion_without_an_index_offers_nothing_and_creates_nothing(tmp_path: Path,
                                                                             zag_home: Path) -> None:
    assert _bash_complete(["zag", "listen", ""]) == []
    assert not (zag_home / "index.sqlite").exists()


# --- zsh: a real interactive zsh, TAB pressed --------------------------------------------------
def _zsh() -> pexpect.spawn:
    zsh = _need("zsh")
    child = pexpect.spawn(zsh, ["-f", "-i"], env={**_env(), "TERM": "dumb", "PS1": "> "}, encoding="utf-8",
                          timeout=30, dimensions=(40, 250))
    child.sendline(f"autoload -Uz compinit && compinit -u -D && source '{SCRIPTS / 'zag.zsh'}' && echo LOADED-OK")
    child.expect("LOADED-OK")
    return child


def _zsh_tab(child: pexpect.spawn, typed: str, expected: str) -> None:
    child.send(typed + "\t")
    child.expect_exact(expected)
    child.send("\x03")  # Ctrl-C: abandon the line
    time.sleep(0.05)


def test_zsh_completes_with_the_script(fleet: dict[str, str]) -> None:
    child = _zsh()
    try:
        _zsh_tab(child, "zag lis", "zag listen ")
        _zsh_tab(child, "zag ps --al", "zag ps --all ")
        _zsh_tab(child, "zag sessions --provider gem", "--provider gemini ")
        _zsh_tab(child, "zag listen abc1", f"zag listen {fleet['live']} ")
    finally:
        child.sendline("exit")
        child.close(force=True)


# --- fish: `complete -C` asks fish's own completion machinery --------------------------------------
def _fish_entries(line: str) -> list[str]:
    """What fish offers: `value<TAB>description` lines."""
    fish = _need("fish")
    script = f"source '{SCRIPTS / 'zag.fish'}'; complete -C '{line}'"
    done = subprocess.run([fish, "--no-config", "-c", script], capture_output=True, timeout=60, env=_env(),
                          text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def _fish_complete(line: str) -> list[str]:
    return [entry.split("\t")[0] for entry in _fish_entries(line)]


def test_fish_completes_with_the_script(fleet: dict[str, str]) -> None:
    assert _fish_complete("zag li") == ["listen"]
    usage = next(entry for entry in _fish_entries("zag us") if entry.startswith("usage\t"))
    assert usage.endswith(": list, cancel.")  # a help text with a comma, whole
    assert _fish_complete("zag ps --a") == ["--all"]
    assert _fish_complete("zag sessions --provider c") == ["claude", "codex"]
    assert _fish_complete("zag listen abc") == [fleet["live"]]


def test_a_completer_for_dead_sessions(fleet: dict[str, str]) -> None:
    """`session_completer` is generic: e.g. `zag resume` wants the dead ones."""
    import click

    from zag.cli.completions import session_completer

    complete = session_completer(states.DEAD)
    ctx = click.Context(click.Command("x"))
    assert [item.value for item in complete(ctx, click.Argument(["s"]), "")] == [fleet["dead"]]
    everything = session_completer(*states.ALL_STATES)
    assert {item.value for item in everything(ctx, click.Argument(["s"]), "ABC")} == set(fleet.values())


def test_resume_leaves_out_a_dead_session_whose_supervisor_still_runs(fleet: dict[str, str]) -> None:
    """`zag ps` calls a supervisor that stopped beating dead, but while its process runs (stopped with
    Ctrl-Z, a machine just woken up) `zag resume` refuses the session: TAB does not offer it."""
    with Index() as index:
        silent = add_session(index, session_id="abc55555-0000-4000-8000-000000000004", state=states.RUNNING,
                             exit_code=None, **{**live_supervisor(), "last_heartbeat": time.time() - 3600})
    assert silent not in _bash_complete(["zag", "listen", ""])  # dead by its heartbeats
    assert sorted(_bash_complete(["zag", "resume", "abc"])) == sorted([fleet["dead"], fleet["exited"]])


def test_events_offers_the_newest_sessions_of_any_state() -> None:
    """After a night of runs every session has ended: `zag events <TAB>` offers them, the newest first,
    at most 100 (it offered live sessions only: nothing)."""
    now = time.time()
    with Index() as index:
        ids = [add_session(index, started_at=now - n) for n in range(130)]
    offered = _bash_complete(["zag", "events", ""])
    assert offered == ids[:100]
    assert _bash_complete(["zag", "listen", ""]) == []


# --- after `zag run PROVIDER` every word is the agent's: files complete, zag's options do not -------
@pytest.fixture
def folder(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes-1.md").write_text("x")
    (work / "todo.txt").write_text("x")
    return work


def test_bash_completes_files_after_the_provider_not_zags_options(folder: Path) -> None:
    """`zag run claude no<TAB>` completed nothing (the ARGS argument offered no values and the script
    has no `-o default`), and `zag run claude -<TAB>` offered zag's -v/--help, which there are claude's."""
    bash = _need("bash")
    child = pexpect.spawn(bash, ["--norc", "--noprofile", "-i"], env={**_env(), "TERM": "dumb", "PS1": "> "},
                          encoding="utf-8", timeout=30, cwd=str(folder))
    try:
        child.sendline(f"source '{SCRIPTS / 'zag.bash'}' && echo LOADED-OK")
        child.expect("LOADED-OK")
        child.send("zag run claude -p no\t")
        child.expect_exact("zag run claude -p notes-1.md ")
        child.send("\x03")
        assert _bash_complete(["zag", "run", "claude", "--verb"]) == []
        assert _bash_complete(["zag", "run", "--verb"]) == ["--verbose"]  # before PROVIDER: zag's own
        assert _bash_complete(["zag", "run", "-v", "co"]) == ["codex"]
    finally:
        child.sendline("exit")
        child.close(force=True)


def test_zsh_completes_files_after_the_provider(folder: Path) -> None:
    child = _zsh()
    try:
        child.sendline(f"cd '{folder}'")
        _zsh_tab(child, "zag run gemini -p to", "zag run gemini -p todo.txt ")
    finally:
        child.sendline("exit")
        child.close(force=True)


def test_fish_completes_files_after_the_provider(folder: Path) -> None:
    fish = _need("fish")
    script = (f"source '{SCRIPTS / 'zag.fish'}'; complete -C 'zag run codex exec no'; echo ---; "
              "complete -C 'zag run codex --verb'")
    done = subprocess.run([fish, "--no-config", "-c", script], capture_output=True, timeout=60, env=_env(),
                          text=True, cwd=folder)
    assert done.returncode == 0, done.stderr
    files, options = done.stdout.split("---\n")
    assert [line.split("\t")[0] for line in files.splitlines()] == ["notes-1.md"]
    assert options.strip() == ""


def test_a_locked_index_does_not_hang_the_prompt(fleet: dict[str, str], zag_home: Path) -> None:
    """TAB while another process holds the index locked waited SQLite's 30 s busy timeout, the shell
    frozen meanwhile; now it waits half a second and offers nothing."""
    import sqlite3

    holder = sqlite3.connect(zag_home / "index.sqlite", isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        assert _bash_complete(["zag", "listen", ""]) == []
        assert time.monotonic() - started < 5
    finally:
        holder.close()
    assert _bash_complete(["zag", "listen", ""]) == [fleet["live"]]


def test_a_folder_name_with_a_newline_or_escapes_does_not_garble_the_offer() -> None:
    """zsh reads click's answer line by line (type, value, help): a session run in a folder whose name
    holds a newline shifted every later line, so zsh offered only that session, the others lost; an
    escape sequence in it reached the terminal when the offer was listed."""
    now = time.time()
    with Index() as index:
        odd = add_session(index, session_id="abc11111-0000-4000-8000-000000000001", started_at=now - 5,
                          cwd="/tmp/we\nird:dir\x1b[2J\x1b]0;title\x07")
        plain = add_session(index, session_id="abc22222-0000-4000-8000-000000000002", started_at=now - 10)
    answer = subprocess.run([str(BIN / "zag")], capture_output=True, timeout=60, text=True, env={
        **_env(), "COMP_WORDS": "zag events abc", "COMP_CWORD": "2", "_ZAG_COMPLETE": "zsh_complete"})
    assert answer.returncode == 0, answer.stderr
    lines = answer.stdout.splitlines()
    assert lines[0::3] == ["plain", "plain"] and lines[1::3] == [odd, plain], lines
    assert "\x1b" not in answer.stdout
    child = _zsh()
    try:
        child.send("zag events abc\t\t")
        child.expect_exact(plain)
    finally:
        child.sendline("\x03")
        child.sendline("exit")
        child.close(force=True)


def test_usage_cancel_completes_the_incidents_still_scheduled() -> None:
    """`zag usage cancel <TAB>` offered nothing: an incident id had to be copied from `zag usage list`."""
    with Index() as index:
        session = add_session(index, state=states.EXITED)
        for incident, status in (("2d40551c-0000-4000-8000-000000000001", states.RESUME_PENDING),
                                 ("2d40aaaa-0000-4000-8000-000000000002", states.RESUME_CANCELLED),
                                 ("9f000000-0000-4000-8000-000000000003", states.RESUME_PENDING)):
            index.add_resume(incident_id=incident, session_id=session, provider="claude", scope="session",
                             reset_at=time.time() + 50, resume_at=time.time() + 60, status=status, raw="x")
    assert sorted(_bash_complete(["zag", "usage", "cancel", ""])) == [
        "2d40551c-0000-4000-8000-000000000001", "9f000000-0000-4000-8000-000000000003"]
    assert _bash_complete(["zag", "usage", "cancel", "2D4"]) == ["2d40551c-0000-4000-8000-000000000001"]
    assert "9f000000-0000-4000-8000-000000000003" in _fish_complete("zag usage cancel 9")


@pytest.mark.parametrize("shell", SHELLS)
def test_clicks_own_source_instruction_prints_the_committed_script(shell: str) -> None:
    """`_ZAG_COMPLETE=fish_source zag > ~/.config/fish/completions/zag.fish` (the way click's docs give)
    printed click's unfixed fish script, which cuts a help text at its first comma."""
    done = subprocess.run([str(BIN / "zag")], capture_output=True, timeout=60, text=True,
                          env={**_env(), "_ZAG_COMPLETE": f"{shell}_source"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip("\n") == (SCRIPTS / f"zag.{shell}").read_text().rstrip("\n")
