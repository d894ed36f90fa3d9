"""What zag writes to disk is private under any umask: every folder it makes (ZAG_HOME, the parents of
ZAG_HOME it had to make, sessions/, claims/) is 0700 and every file (session logs, the index and its
-wal/-shm, a moved-aside damaged index, zag.log, locks, claims) 0600, through `zag run` (headless and
PTY), `zag backfill` (worker processes, temporary logs), `zag dismiss`, `zag resume` and `zag reindex`.
A ZAG_HOME the user made keeps its mode (others' write access is warned about); files zag opens by name
are never written through a symlink planted in their place."""

from __future__ import annotations

import os
import pty
import shutil
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration.helpers import Agent, kill_quietly, process_gone, wait_until, write_config

REPO = Path(__file__).resolve().parents[2]
CLAUDE_CORPUS = REPO / "tests" / "fixtures" / "corpus" / "claude"
AGENT_HOME_VARS = ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "CODEX_SQLITE_HOME", "GEMINI_CLI_HOME", "GOOSE_PATH_ROOT",
                   "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME")


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def _modes(root: Path, skip: tuple[str, ...] = ()) -> dict[str, int]:
    """{path relative to root: permission bits} for root and everything under it (symlinks not followed)."""
    found = {".": stat.S_IMODE(os.lstat(root).st_mode)}
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(folder, name)
            relative = str(path.relative_to(root))
            if name not in skip:
                found[relative] = stat.S_IMODE(os.lstat(path).st_mode)
    return found


def _not_private(modes: dict[str, int], root: Path) -> dict[str, str]:
    wrong = {}
    for relative, mode in modes.items():
        wanted = 0o700 if (root / relative).is_dir() else 0o600
        if mode != wanted:
            wrong[relative] = f"{mode:04o}"
    return wrong


def _agent_env(agent: Agent, home: Path) -> dict[str, str]:
    env = {key: value for key, value in agent.env(HOME=str(home)).items() if key not in AGENT_HOME_VARS}
    return env


def _run_in_pty(env: dict[str, str], cwd: Path) -> int:
    """`zag run claude` on a terminal (the stand-in prints and exits); its exit code."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.chdir(cwd)
        os.execvpe(sys.executable, [sys.executable, "-m", "zag", "run", "claude"], env)
    try:
        while True:
            try:
                if not os.read(fd, 4096):
                    break
            except OSError:
                break
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    finally:
        os.close(fd)


@pytest.mark.parametrize("mask", [0o000, 0o002, 0o022, 0o077], ids=lambda mask: f"umask{mask:03o}")
def test_everything_zag_writes_is_private_under_any_umask(tmp_path: Path, mask: int) -> None:
    base = tmp_path / "state"
    base.mkdir(mode=0o755)
    zag_home = base / "made" / "by" / "zag"   # ZAG_HOME and two parents that do not exist yet
    agent = Agent(tmp_path / "agent", zag_home)
    home = tmp_path / "home"
    transcripts = home / ".claude" / "projects" / "-tmp"
    transcripts.mkdir(parents=True)
    for number, fixture in enumerate(sorted(CLAUDE_CORPUS.glob("*.jsonl"))[:3], start=1):
        shutil.copy(fixture, transcripts / f"{number:08d}-1111-4111-8111-{number:012d}.jsonl")
    env = _agent_env(agent, home)
    release = agent.root / "release"

    with _umask(mask):
        # headless, the index's -wal and -shm looked at while the supervisor holds them open
        agent.script([{"out": "ready\n"}, {"wait_file": str(release), "timeout": 30}, {"exit": 0}])
        proc = agent.start("run", "claude", "-p", "x", env=env)
        try:
            assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
            sidecars = [zag_home / "index.sqlite-wal", zag_home / "index.sqlite-shm"]
            wait_until(lambda: all(path.exists() for path in sidecars), 15, message="-wal and -shm")
            live = _modes(zag_home)
        finally:
            release.touch()
            proc.wait(timeout=60)
        assert proc.returncode == 0
        assert _not_private(live, zag_home) == {}

        agent.script([{"out": "on a terminal\n"}, {"exit": 0}])
        assert _run_in_pty(env, agent.root) == 0

        done = agent.run("backfill", env=env)   # worker processes, temporary logs renamed into place
        assert done.returncode == 0, done.stderr

        # a dead session (zag SIGKILLed), dismissed, then resumed
        write_config(zag_home, "heartbeat_secs = 0.2\n")
        agent.script([{"out": "ready\n"}, {"wait_signal": 60}])
        proc = agent.start("run", "claude", "-p", "long", env=env, start_new_session=True)
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        child = agent.wait_for_invocation(3)["pid"]
        wait_until(lambda: b'"running"' in agent.run("ps", "--json", env=env).stdout, 15, 0.1, "registered")
        proc.kill()
        proc.wait(timeout=10)
        wait_until(lambda: process_gone(child), 10, message="agent gone after zag was killed")
        kill_quietly(child)
        dead = agent.run("dismiss", "--dead", env=env)
        assert dead.returncode == 0 and dead.stdout.startswith(b"dismissed session "), dead.stderr
        session_id = dead.stdout.split()[2].decode()
        agent.script([{"out": "again\n"}, {"exit": 0}])
        resumed = agent.run("resume", session_id, env=env)
        assert resumed.returncode == 0, resumed.stderr

        assert agent.run("reindex", env=env).returncode == 0
        (zag_home / "index.sqlite").write_bytes(b"not a database" * 512)
        os.chmod(zag_home / "index.sqlite", 0o644)   # as a user's copy or an editor might leave it
        damaged = agent.run("reindex", env=env)
        assert damaged.returncode == 0 and b"damaged" in damaged.stderr, damaged.stderr

    modes = _modes(base / "made", skip=("config.toml",))   # the config is the user's file
    names = set(modes)
    assert {"by/zag/sessions", "by/zag/claims", "by/zag/index.sqlite", "by/zag/backfill.lock"} <= names, names
    assert any(name.startswith("by/zag/index.sqlite.damaged-") for name in names), names
    assert len([name for name in names if name.endswith(".jsonl")]) == 3 + 3   # three runs, three imports
    assert _not_private(modes, base / "made") == {}


def test_a_zag_home_the_user_made_keeps_its_mode_and_zags_folders_in_it_are_private(agent: Agent) -> None:
    agent.zag_home.mkdir(mode=0o755)
    os.chmod(agent.zag_home, 0o755)
    (agent.zag_home / "sessions").mkdir(mode=0o755)   # made loose (by hand, or an old copy): zag's own
    os.chmod(agent.zag_home / "sessions", 0o755)
    agent.script([{"out": "hi\n"}, {"exit": 0}])

    done = agent.run("run", "claude", "-p", "x")

    assert done.returncode == 0 and done.stderr == b""   # nothing to warn of: others cannot write there
    assert stat.S_IMODE(agent.zag_home.stat().st_mode) == 0o755
    assert _not_private(_modes(agent.zag_home), agent.zag_home) == {".": "0755"}


def test_a_zag_home_writable_only_by_the_users_own_group_is_not_warned_about(agent: Agent) -> None:
    import grp
    import pwd

    user = pwd.getpwuid(os.geteuid())
    if any(member != user.pw_name for member in grp.getgrgid(user.pw_gid).gr_mem):
        pytest.skip("the user's primary group has other members here")
    agent.zag_home.mkdir()
    os.chown(agent.zag_home, -1, user.pw_gid)
    os.chmod(agent.zag_home, 0o775)   # what umask 002 (Debian, Ubuntu) makes: a user-private group
    agent.script([{"out": "hi\n"}, {"exit": 0}])

    done = agent.run("run", "claude", "-p", "x")

    assert done.returncode == 0 and done.stderr == b""
    assert stat.S_IMODE(agent.zag_home.stat().st_mode) == 0o775


@pytest.mark.parametrize("trouble", ["writable by others", "another user's"])
def test_a_zag_home_others_could_write_to_is_warned_about_once_and_left_as_it_is(agent: Agent,
                                                                                   trouble: str) -> None:
    agent.zag_home.mkdir()
    if trouble == "writable by others":
        os.chmod(agent.zag_home, 0o777)
    else:
        os.chmod(agent.zag_home, 0o755)
        if os.geteuid() != 0:
            pytest.skip("giving a folder to another user takes root")
        os.chown(agent.zag_home, 65534, 65534)
    before = agent.zag_home.stat()
    agent.script([{"out": "hi\n"}, {"exit": 0}])

    done = agent.run("run", "claude", "-p", "x")

    assert done.returncode == 0 and done.stdout == b"hi\n"
    warned = [line for line in done.stderr.decode().splitlines() if "ZAG_HOME" in line]
    assert len(warned) == 1 and str(agent.zag_home) in warned[0], done.stderr
    assert "writable by other users" in warned[0] or "belongs to another user" in warned[0]
    after = agent.zag_home.stat()
    assert (stat.S_IMODE(after.st_mode), after.st_uid) == (stat.S_IMODE(before.st_mode), before.st_uid)
    [log] = agent.session_log_paths()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600 and stat.S_IMODE(log.parent.stat().st_mode) == 0o700


def test_a_session_log_replaced_by_a_symlink_is_not_written_through(agent: Agent, tmp_path: Path) -> None:
    agent.script([{"out": "hi\n"}, {"exit": 0}])
    assert agent.run("run", "claude", "-p", "x").returncode == 0
    [log] = agent.session_log_paths()
    session_id = log.stem
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_bytes(b"someone else's file\n")
    log.unlink()
    log.symlink_to(elsewhere)
    agent.script([{"out": "again\n"}, {"exit": 0}])

    resumed = agent.run("resume", session_id)

    assert resumed.stdout == b"again\n"   # the agent still runs, unlogged, and zag says why
    assert b"cannot write the session log" in resumed.stderr, resumed.stderr
    assert elsewhere.read_bytes() == b"someone else's file\n"
    assert log.is_symlink()


def test_heartbeats_of_a_run_without_a_log_neither_fail_nor_touch_the_symlinks_target(agent: Agent,
                                                                                      tmp_path: Path) -> None:
    """Each heartbeat also touches the session log (a beat that needs no free space); with no log to touch,
    it logged a heartbeat_failed traceback into zag.log at every beat."""
    agent.script([{"exit": 0}])
    assert agent.run("run", "claude", "-p", "x").returncode == 0
    [log] = agent.session_log_paths()
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_bytes(b"someone else's file\n")
    os.utime(elsewhere, (1_000_000, 1_000_000))
    log.unlink()
    log.symlink_to(elsewhere)
    write_config(agent.zag_home, "heartbeat_secs = 0.1\n")
    agent.script([{"sleep": 1.0}, {"out": "again\n"}, {"exit": 0}])

    resumed = agent.run("resume", log.stem)

    assert resumed.stdout == b"again\n", resumed.stderr
    assert "heartbeat_failed" not in (agent.zag_home / "zag.log").read_text(encoding="utf-8")
    assert elsewhere.stat().st_mtime == 1_000_000


def test_a_log_path_that_is_a_symlink_is_not_written_through(tmp_path: Path, zag_home: Path) -> None:
    """The writer every log goes through (a run's, a resume's, a dismiss's, a backfill's temporary log,
    whose name is predictable) refuses a symlink where the log should be."""
    from zag.logs import events
    from zag.logs.writer import SessionLogWriter

    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_bytes(b"")
    sessions = zag_home / "sessions"
    sessions.mkdir(parents=True, mode=0o700)
    for name in ("a.jsonl", "b.jsonl.backfill-tmp"):
        (sessions / name).symlink_to(elsewhere)
        with pytest.raises(OSError):
            with SessionLogWriter("s", "claude", path=sessions / name) as writer:
                writer.write(events.body(events.HEARTBEAT, interval_secs=1))
    assert elsewhere.read_bytes() == b""


def test_zag_log_replaced_by_a_symlink_is_not_written_through(tmp_path: Path, zag_home: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from zag import diag

    zag_home.mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_bytes(b"")
    (zag_home / "zag.log").symlink_to(elsewhere)
    monkeypatch.setattr(diag, "_logger", None)

    diag.error("something_failed", detail="a secret-free line")   # never raises

    assert elsewhere.read_bytes() == b""


def test_a_session_id_that_names_a_path_stays_inside_sessions(tmp_path: Path, zag_home: Path) -> None:
    from zag import paths
    from zag.logs.writer import SessionLogWriter

    for crafted in ("../../escaped", "..", "a/../../b", ""):
        with pytest.raises(ValueError):
            paths.session_log(crafted)
        with pytest.raises(ValueError):
            SessionLogWriter(crafted, "claude")
    assert not (zag_home / "escaped.jsonl").exists() and not (zag_home.parent / "escaped.jsonl").exists()
    assert not list(tmp_path.rglob("*.jsonl"))


def test_a_planted_claim_temporary_file_is_not_written_through(tmp_path: Path, zag_home: Path) -> None:
    from zag import paths
    from zag.providers import claims

    folder = paths.ensure_private_dir(zag_home / "claims" / "claude")
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_bytes(b"")
    (folder / f".key.{os.getpid()}").symlink_to(elsewhere)

    with _umask(0o000):
        assert claims.claim("claude", "key", "owner")

    assert elsewhere.read_bytes() == b""
    assert stat.S_IMODE((folder / "key").stat().st_mode) == 0o600
    assert not (folder / "key").is_symlink()



def test_a_backfill_lock_symlink_is_not_followed(agent: Agent, tmp_path: Path) -> None:
    agent.zag_home.mkdir(mode=0o700)
    planted = tmp_path / "planted-by-someone"
    (agent.zag_home / "backfill.lock").symlink_to(planted)

    done = agent.run("backfill", env=_agent_env(agent, tmp_path / "empty-home"))

    assert done.returncode == 1 and b"backfill.lock" in done.stderr, done.stderr
    assert not planted.exists()


def test_a_crafted_session_id_in_the_index_is_refused_with_a_message(agent: Agent, tmp_path: Path) -> None:
    import time

    from zag.logs.index import Index

    crafted = "0000aaaa/../../../" + str(tmp_path / "outside").lstrip("/")
    with Index(agent.zag_home / "index.sqlite") as index:
        index.add_session(session_id=crafted, provider="claude", state="exited", started_at=time.time(),
                          exit_code=0, log_path=str(tmp_path / "recorded.jsonl"))
    for command in (["events", "0000"], ["listen", "0000", "--no-follow"]):
        done = agent.run(*command)
        assert done.returncode == 2 and done.stderr.decode().startswith("zag: '0000aaaa/"), (command, done.stderr)
        assert "Traceback" not in done.stderr.decode()
    assert not list(tmp_path.glob("outside*"))


def _foreign_symlink(link: Path, target: Path) -> None:
    """`link` -> `target`, made by another user (root can give it away)."""
    if os.geteuid() != 0:
        pytest.skip("a symlink of another user takes root to make")
    link.symlink_to(target)
    os.chown(link, 65534, 65534, follow_symlinks=False)


def test_a_sessions_folder_symlinked_by_another_user_is_not_followed(agent: Agent, tmp_path: Path) -> None:
    elsewhere = tmp_path / "someone-elses-folder"
    elsewhere.mkdir()
    os.chmod(elsewhere, 0o755)
    agent.zag_home.mkdir(mode=0o700)
    _foreign_symlink(agent.zag_home / "sessions", elsewhere)
    agent.script([{"out": "hi\n"}, {"exit": 0}])

    done = agent.run("run", "claude", "-p", "x")

    assert done.returncode == 0 and done.stdout == b"hi\n"   # the agent runs, unlogged, and zag says why
    assert b"cannot write the session log" in done.stderr and b"another user" in done.stderr, done.stderr
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o755 and list(elsewhere.iterdir()) == []


def test_an_index_symlinked_by_another_user_is_not_followed(agent: Agent, tmp_path: Path) -> None:
    elsewhere = tmp_path / "someone-elses-file"
    elsewhere.write_bytes(b"")
    os.chmod(elsewhere, 0o644)
    agent.zag_home.mkdir(mode=0o700)
    _foreign_symlink(agent.zag_home / "index.sqlite", elsewhere)

    done = agent.run("ps")

    assert done.returncode == 1 and b"another user" in done.stderr, done.stderr
    assert elsewhere.read_bytes() == b"" and stat.S_IMODE(elsewhere.stat().st_mode) == 0o644


def test_the_watchdogs_note_in_zag_log_is_not_written_through_a_symlink(tmp_path: Path, zag_home: Path) -> None:
    from zag.wrapper import watchdog

    zag_home.mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_bytes(b"")
    (zag_home / "zag.log").symlink_to(elsewhere)

    watchdog._note(b"ZAG_SESSION_ID=00000000-0000-4000-8000-000000000000", [12345])   # never raises

    assert elsewhere.read_bytes() == b""
