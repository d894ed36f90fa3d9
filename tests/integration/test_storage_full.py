"""zag on a disk that fills up while it works: a real `zag run` (the stand-in writing claude transcripts)
and `zag backfill` with ZAG_HOME, or a part of it, on a tiny tmpfs that the test fills and frees.

The agent keeps running and exits with its own code; zag says once what happened (at column 0 on a raw
terminal); the session log stays whole lines; what the agent wrote meanwhile reaches the log once there
is space (or `zag backfill` adds it later); a backfill that cannot write exits non-zero, counts nothing
half-imported, and a second run completes it as a one-shot import would.

Mounting needs root (CI runs as root): without it these tests are skipped. A tmpfs hands out whole
pages, so an append that fits in the last page of a file succeeds even on a full one: the records that
must fail are bigger than a page.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.integration.helpers import ZAG, Agent, assert_valid_log, read_jsonl, reaped, wait_until, write_config
from tests.integration.test_live_claude import TS, assistant, user
from zag.providers.claude.homes import encode_cwd

BIG = "x" * 9000  # a record that needs new pages of the file system
NO_SPACE = "No space left on device"


class TinyDisk:
    """A tmpfs mounted at `path` that the test fills (one filler file) and frees."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / ".filler"

    def fill(self) -> None:
        block = b"\0" * 4096
        fd = os.open(self.filler, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, block)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
        finally:
            os.close(fd)

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def grow(self, size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.path)], check=True)


@pytest.fixture
def tiny_disk() -> Iterator[Callable[..., TinyDisk]]:
    """`tiny_disk(path, size)` mounts a tmpfs there for the test (skipped where mounting is not allowed)."""
    mounted: list[Path] = []

    def mount(path: Path, size: str = "8m") -> TinyDisk:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if shutil.which("mount") is None:
            pytest.skip("no mount command")
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"mode=0700,size={size}", "tmpfs", str(path)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
        mounted.append(path)
        return TinyDisk(path)

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _stamped(line: str) -> str:
    return line.replace(TS, "{now}")  # each record its own time, as claude writes them


class Run:
    """A `zag run claude -p` of the stand-in that appends transcript records at gates the test opens."""

    def __init__(self, agent: Agent, tmp_path: Path, replies: int, exit_code: int = 7) -> None:
        self.agent = agent
        self.home = tmp_path / "home"
        self.gates = tmp_path / "gates"
        self.gates.mkdir()
        self.project = self.home / ".claude" / "projects" / encode_cwd(str(agent.root))
        path = str(self.project / "{session_id}.jsonl")
        actions: list[dict[str, Any]] = [{"append": path, "lines": [_stamped(user("{session_id}", "first"))]}]
        for number in range(1, replies + 1):
            actions += [self.gate(f"g{number}"),
                        {"append": path, "lines": [_stamped(assistant("{session_id}", f"reply {number} {BIG}",
                                                                      f"msg_{number}"))]}]
        actions += [self.gate("end"), {"exit": exit_code}]
        agent.script(actions)
        self.env = agent.env(HOME=str(self.home))

    @contextlib.contextmanager
    def zag(self) -> Iterator[subprocess.Popen[bytes]]:
        """`zag run claude -p hi` of this script, once its log has the agent's first record; reaped
        whatever happens."""
        with reaped(self.agent.start("run", "claude", "-p", "hi", env=self.env)) as proc:
            _wait_for_the_first_record(self.log)
            yield proc

    def finish(self, proc: subprocess.Popen[bytes]) -> bytes:
        """Let the agent exit and zag end; zag's stderr."""
        self.open("end")
        _, stderr = proc.communicate(timeout=60)
        return stderr

    def gate(self, name: str) -> dict[str, Any]:
        return {"wait_file": str(self.gates / name), "timeout": 60}

    def open(self, name: str) -> None:
        (self.gates / name).touch()

    def transcript_lines(self) -> int:
        files = list(self.project.glob("*.jsonl"))
        return files[0].read_text().count("\n") if files else 0

    def let_agent_write(self, name: str, lines: int) -> None:
        """Open gate `name`, wait until the agent wrote its transcript up to `lines` lines, and give zag's
        follower time to read it (it polls at least every 0.25 s)."""
        self.open(name)
        wait_until(lambda: self.transcript_lines() >= lines, 15, message=f"transcript line {lines}")
        time.sleep(1.0)

    def log(self) -> list[dict[str, Any]]:
        paths = self.agent.session_log_paths()
        return read_jsonl(paths[0]) if paths else []

    def replies(self) -> list[str]:
        return [event["content"].split(" ")[1] for event in self.log() if event["type"] == "assistant_message"]

    def state(self) -> str:
        result = subprocess.run(self.agent.command("ps", "--all", "--json"), env=self.env, capture_output=True,
                                text=True, timeout=30)
        rows = json.loads(result.stdout) if result.returncode == 0 and result.stdout.strip() else []
        if not rows:
            return "?"
        return rows[0]["state"] + (" (index stale)" if rows[0].get("index_stale") else "")

    def table(self) -> str:
        return subprocess.run(self.agent.command("ps", "--all"), env=self.env, capture_output=True, text=True,
                              timeout=30).stdout

    def never_dead_while_full(self) -> None:
        """With the index unwritable its heartbeat ages past 3 beats (0.2 s): `zag ps` must show the
        session live with its index stale, never dead (its zag beats on in its log's time)."""
        seen = set()
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            seen.add(self.state())
        assert "dead" not in seen and "running (index stale)" in seen, seen
        wait_until(lambda: "running (index stale)" in self.table(), 5, message="the table saying so")


def _wait_for_the_first_record(log: Callable[[], list[dict[str, Any]]]) -> None:
    wait_until(lambda: any(event["type"] == "user_message" for event in log()), 20, message="first record")


def _transcript_events(events: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(event["type"], (event.get("content") or "")[:7] or None)
            for event in events if event["source"] == "provider_file"]


def _diagnostics(zag_home: Path) -> list[str]:
    path = zag_home / "zag.log"
    return [json.loads(line)["event"] for line in path.read_text().splitlines()] if path.exists() else []


# --- zag run -----------------------------------------------------------------------------------------
def test_what_the_agent_writes_while_zag_home_is_full_reaches_the_log_once_there_is_space(
        agent: Agent, zag_home: Path, tmp_path: Path, tiny_disk: Callable[..., TinyDisk]) -> None:
    disk = tiny_disk(zag_home)
    write_config(zag_home, "heartbeat_secs = 0.2\n")
    run = Run(agent, tmp_path, replies=2)
    with run.zag() as proc:
        disk.fill()
        run.let_agent_write("g1", 2)
        run.never_dead_while_full()
        assert run.replies() == []  # held, not written
        disk.free()
        wait_until(lambda: run.replies() == ["1"], 10, message="the held records written")
        wait_until(lambda: run.state() == "running", 10, message="heartbeats back in the index")
        run.let_agent_write("g2", 3)
        stderr = run.finish(proc)
    assert proc.returncode == 7
    text = stderr.decode()
    assert text.count("zag: cannot write session log") == 1 and NO_SPACE in text, text
    assert "Traceback" not in text and "lost" not in text
    events = run.log()
    assert_valid_log(events)
    assert _transcript_events(events) == [("user_message", "first"), ("assistant_message", "reply 1"),
                                          ("usage", None), ("assistant_message", "reply 2"), ("usage", None)]
    assert events[-1]["exit_code"] == 7
    assert "session_log_write_failed" in _diagnostics(zag_home)  # the lines held while full, written at exit
    result = subprocess.run(agent.command("reindex"), env=run.env, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    [row] = agent.index_rows()
    assert row["state"] == "exited" and row["exit_code"] == 7 and row["last_seq"] == events[-1]["seq"]


def test_a_full_disk_is_said_at_column_0_of_a_raw_terminal(
        agent: Agent, zag_home: Path, tmp_path: Path, tiny_disk: Callable[..., TinyDisk]) -> None:
    """The agent's screen has the terminal raw: a bare LF would leave the next line starting where the
    message ended, and without a CR first the message would start wherever the agent's cursor was."""
    disk = tiny_disk(zag_home)
    run = Run(agent, tmp_path, replies=1, exit_code=5)
    script = json.loads(agent.script_path.read_text())
    script["runs"][0][:0] = [{"raw_tty": True}, {"out": "ready> "}]
    script["runs"][0][-1:-1] = [{"out": "bye\r\n"}]
    agent.script_path.write_text(json.dumps(script))
    command = agent.command("run", "claude")
    term = pexpect.spawn(command[0], command[1:], env=run.env, cwd=str(agent.root), timeout=30)
    term.logfile_read = seen = io.BytesIO()
    try:
        term.expect_exact("ready> ")
        _wait_for_the_first_record(run.log)
        disk.fill()
        run.let_agent_write("g1", 2)
        disk.free()
        run.open("end")
        term.expect_exact("bye")
        term.expect(pexpect.EOF)
    finally:
        term.close(force=True)
    assert term.exitstatus == 5
    screen = seen.getvalue()
    assert b"ready> \rzag: cannot write session log" in screen, screen
    assert b"holding events in memory and retrying\r\nbye" in screen, screen


def test_events_still_unwritten_at_exit_are_said_to_be_lost_and_backfill_adds_them_later(
        agent: Agent, zag_home: Path, tmp_path: Path, tiny_disk: Callable[..., TinyDisk]) -> None:
    disk = tiny_disk(zag_home / "sessions")  # the log's folder only: the index records the exit
    run = Run(agent, tmp_path, replies=2)
    with run.zag() as proc:
        disk.fill()
        run.let_agent_write("g1", 2)
        run.let_agent_write("g2", 3)
        stderr = run.finish(proc)
    assert proc.returncode == 7
    text = stderr.decode()
    assert text.count("zag: cannot write session log") == 1, text
    assert f"({NO_SPACE}) and are lost" in text and "`zag backfill` adds what is missing" in text, text
    [row] = agent.index_rows()
    assert row["state"] == "exited" and row["exit_code"] == 7
    disk.free()
    result = subprocess.run(agent.command("backfill", "--provider", "claude"), env=run.env, capture_output=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    events = run.log()
    assert_valid_log(events, ended=False)  # the end could not be written; the index has it
    assert [kind for kind, _ in _transcript_events(events)] == ["user_message"]
    imported = [(event["type"], event.get("content", "")[:7]) for event in events if event["source"] == "backfill"]
    assert imported == [("assistant_message", "reply 1"), ("usage", ""), ("assistant_message", "reply 2"),
                        ("usage", "")]


@pytest.mark.parametrize("full", ["index", "log"])
def test_index_or_log_full_alone(agent: Agent, zag_home: Path, tmp_path: Path,
                                 tiny_disk: Callable[..., TinyDisk], full: str) -> None:
    """The index cannot grow while the log can (ZAG_HOME full, its sessions/ elsewhere), and the reverse:
    the agent is not disturbed, nothing is missing once there is space, and the row ends `exited`."""
    if full == "index":
        disk = tiny_disk(zag_home)
        elsewhere = tmp_path / "sessions-elsewhere"
        elsewhere.mkdir(mode=0o700)
        (zag_home / "sessions").mkdir(mode=0o700)
        subprocess.run(["mount", "--bind", str(elsewhere), str(zag_home / "sessions")], check=True)
    else:
        disk = tiny_disk(zag_home / "sessions")
    try:
        write_config(zag_home, "heartbeat_secs = 0.2\n")
        run = Run(agent, tmp_path, replies=2)
        with run.zag() as proc:
            wait_until(lambda: run.state() == "running", 10, message="the index row")
            disk.fill()
            run.let_agent_write("g1", 2)
            if full == "index":
                assert run.replies() == ["1"]  # the log goes on
                run.never_dead_while_full()
            else:
                assert run.replies() == [] and run.state() == "running"  # the heartbeat goes on
            disk.free()
            wait_until(lambda: run.replies() == ["1"] and run.state() == "running", 10, message="recovery")
            run.let_agent_write("g2", 3)
            stderr = run.finish(proc)
        assert proc.returncode == 7
        assert b"Traceback" not in stderr and b"lost" not in stderr and b"could not update" not in stderr, stderr
        events = run.log()
        assert_valid_log(events)
        assert run.replies() == ["1", "2"]
        [row] = agent.index_rows()
        assert row["state"] == "exited" and row["exit_code"] == 7 and row["last_seq"] == events[-1]["seq"]
    finally:
        if full == "index":
            subprocess.run(["umount", "-l", str(zag_home / "sessions")], capture_output=True)


def test_events_past_the_held_bound_are_dropped_unstamped_and_said_with_counts_once_there_is_space(
        agent: Agent, zag_home: Path, tmp_path: Path, tiny_disk: Callable[..., TinyDisk],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """More waits than the writer holds (its bound, 64 MiB, made 15 kB here): the events past it were
    dropped from the front of the queue, leaving a seq gap in the log and saying nothing until zag exited.
    Now the live follower stops reading the agent's transcript meanwhile (its records wait in the agent's
    file and reach the log once there is space), the other events past the bound (heartbeats here) are
    dropped before they get a seq: the log stays seq 1..n, and a `provider_status` note (`events_dropped`,
    with counts) follows the held ones and the user is told."""
    import tests.integration.helpers as helpers

    starter = tmp_path / "zag-small-bound"
    starter.write_text("import sys\nfrom zag.logs import writer\nwriter.MAX_PENDING_BYTES = 15000\n"
                       "from zag.cli import main\nmain(sys.argv[1:])\n", encoding="utf-8")
    monkeypatch.setattr(helpers, "ZAG", (sys.executable, str(starter)))
    disk = tiny_disk(zag_home)
    write_config(zag_home, "heartbeat_secs = 0.2\n")
    run = Run(agent, tmp_path, replies=4)
    with run.zag() as proc:
        disk.fill()
        for number in range(1, 5):
            run.let_agent_write(f"g{number}", number + 1)
        disk.free()
        notes = lambda: [event for event in run.log() if event["type"] == "provider_status"]  # noqa: E731
        wait_until(notes, 10, message="the note of what was dropped")
        stderr = run.finish(proc)
    assert proc.returncode == 7
    text = stderr.decode()
    events = run.log()
    assert_valid_log(events)
    assert run.replies() == ["1", "2", "3", "4"]  # 1 and 2 held (18 kB ≥ 15 kB), 3 and 4 read afterwards
    [note] = notes()
    data = note["data"]
    assert data["kind"] == "events_dropped" and data["error"] == NO_SPACE
    assert set(data["types"]) == {"heartbeat"} and data["count"] == data["types"]["heartbeat"] > 0, data
    # 3 and 4 were read once there was space (after the note), not held in memory while it was full
    assert [event["type"] for event in events].index("provider_status") < [
        event.get("content", "")[:7] for event in events].index("reply 3")
    said = f"zag: {data['count']} events (heartbeat {data['count']}) from {data['first_ts']} to {data['last_ts']}"
    assert f"{said} are not in" in text, text
    assert "Traceback" not in text


def test_a_record_the_agent_writes_after_its_own_disk_was_full_is_not_lost(
        agent: Agent, zag_home: Path, tmp_path: Path, tiny_disk: Callable[..., TinyDisk]) -> None:
    """The agent's own session folder (CLAUDE_CONFIG_DIR) fills up: its append fails half way, leaving a
    torn head, and once there is space its next record lands on the same line. zag reported that line
    as malformed and the record in it never reached the log."""
    config = tmp_path / "claude-config"
    disk = tiny_disk(config, size="1m")
    project = config / "projects" / encode_cwd(str(agent.root))
    path = str(project / "{session_id}.jsonl")
    gates = tmp_path / "gates"
    gates.mkdir()
    agent.script([
        {"append": path, "lines": [_stamped(user("{session_id}", "first"))]},  # leaves room in its last page
        {"wait_file": str(gates / "full"), "timeout": 60},
        {"append": path, "lines": [_stamped(assistant("{session_id}", f"reply 1 {BIG}", "msg_1"))],
         "ignore_errors": True},
        {"wait_file": str(gates / "freed"), "timeout": 60},
        {"append": path, "lines": [_stamped(assistant("{session_id}", "reply 2", "msg_2"))]},
        {"wait_file": str(gates / "end"), "timeout": 60},
        {"exit": 0},
    ])
    env = agent.env(CLAUDE_CONFIG_DIR=str(config), HOME=str(tmp_path / "home"))
    log = lambda: read_jsonl(agent.session_log_paths()[0]) if agent.session_log_paths() else []  # noqa: E731
    with reaped(agent.start("run", "claude", "-p", "hi", env=env)) as proc:
        _wait_for_the_first_record(log)
        disk.fill()
        (gates / "full").touch()
        transcript = next(project.glob("*.jsonl"))
        wait_until(lambda: not transcript.read_bytes().endswith(b"\n"), 10, message="the torn append")
        time.sleep(1.0)  # zag's follower sees the unterminated line
        disk.free()
        (gates / "freed").touch()
        wait_until(lambda: transcript.read_bytes().endswith(b"\n"), 10, message="the next record")
        (gates / "end").touch()
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert b"standin: append failed: No space left on device" in stderr
    followed = [(event["type"], (event.get("content") or event.get("message") or "")[:18])
                for event in log() if event["source"] == "provider_file"]
    assert followed == [("user_message", "first"), ("parse_warning", "claude transcript:"),
                        ("assistant_message", "reply 2"), ("usage", "")], followed
    assert "torn line" in [event for event in log() if event["type"] == "parse_warning"][0]["message"]


def test_zag_home_failing_mid_run_as_a_file_system_gone_bad(agent: Agent, tmp_path: Path) -> None:
    """`mount -o remount,ro` is refused (EBUSY) while zag holds its log open for writing, so a ZAG_HOME
    that turns read-only under a running zag is a file system that failed (ext4 `errors=remount-ro`):
    every write fails from then on. Shut down an ext4 image the same way (EXT4_IOC_SHUTDOWN: EIO)."""
    if shutil.which("mkfs.ext4") is None:
        pytest.skip("no mkfs.ext4")
    image, zag_home = tmp_path / "ext4.img", tmp_path / "zag-home-ext4"
    zag_home.mkdir()
    subprocess.run(["truncate", "-s", "32M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
    mounted = subprocess.run(["mount", "-o", "loop", str(image), str(zag_home)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a loop device here: {mounted.stderr.strip()}")
    try:
        agent = Agent(agent.root, zag_home)
        write_config(zag_home, "heartbeat_secs = 0.2\n")
        run = Run(agent, tmp_path, replies=2)
        with run.zag() as proc:
            fd = os.open(zag_home, os.O_RDONLY)
            try:
                fcntl.ioctl(fd, 0x8004587D, struct.pack("I", 2))  # EXT4_IOC_SHUTDOWN, no log flush
            finally:
                os.close(fd)
            run.let_agent_write("g1", 2)
            run.let_agent_write("g2", 3)
            stderr = run.finish(proc)
    finally:
        subprocess.run(["umount", "-l", str(zag_home)], capture_output=True)
    assert proc.returncode == 7
    text = stderr.decode()
    assert "Traceback" not in text
    assert text.count("zag: cannot write session log") == 1 and "Input/output error" in text, text
    assert "events could not be written" in text and "and are lost" in text, text
    assert "zag: could not update the index" in text, text


def test_unwritable_diagnostics_never_stop_the_run(agent: Agent, zag_home: Path) -> None:
    """zag.log is a folder (no write can succeed, even as root) while the session log fails too: every
    one of those failures logs to zag.log, and none of them stops the agent or zag."""
    zag_home.mkdir(parents=True)
    (zag_home / "zag.log").mkdir()
    (zag_home / "sessions").write_text("a file where the folder should be")
    agent.script([{"out": "one\n"}, {"err": "two\n"}, {"exit": 6}])
    result = agent.run("run", "claude", "-p", "hi")
    assert result.returncode == 6
    assert result.stdout == b"one\n"
    assert b"two\n" in result.stderr and b"Traceback" not in result.stderr


# --- zag backfill ------------------------------------------------------------------------------------
def _claude_history(home: Path, sessions: int) -> None:
    project = home / ".claude" / "projects" / encode_cwd("/srv/p")
    project.mkdir(parents=True)
    for number in range(sessions):
        sid = f"00000000-0000-4000-8000-{number + 1:012d}"
        lines = []
        for turn in range(15):
            stamp = f"2026-11-22T14:{number % 60:02d}:{turn:02d}.000Z"
            lines.append(user(sid, f"q{turn} " + "u" * 300).replace(TS, stamp))
            lines.append(assistant(sid, f"a{turn} " + "a" * 700, f"msg_{number}_{turn}").replace(
                TS, stamp.replace(".000", ".500")))
        (project / f"{sid}.jsonl").write_text("\n".join(lines) + "\n")


def _backfill(home: Path, zag_home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "ZAG_HOME": str(zag_home)}
    env.pop("CLAUDE_CONFIG_DIR", None)
    return subprocess.run([*ZAG, "backfill", "--provider", "claude"], env=env, capture_output=True, text=True,
                          timeout=120)


def _imported(zag_home: Path) -> dict[str, list[tuple[Any, ...]]]:
    return {path.name: [(event["seq"], event["type"], event.get("content"), event["ts"])
                        for event in read_jsonl(path)]
            for path in sorted((zag_home / "sessions").glob("*.jsonl"))}


@pytest.mark.parametrize("full", ["sessions", "home"])
def test_backfill_on_a_disk_that_fills_up_fails_then_completes_as_a_one_shot_import(
        tmp_path: Path, tiny_disk: Callable[..., TinyDisk], full: str) -> None:
    """`sessions`: only the logs cannot be written (the index commits what did import); `home`: the
    index fills up too. Either way: a clear message, exit 1, and a second run equals a one-shot import."""
    home = tmp_path / "home"
    _claude_history(home, 40)  # ~1.1 MB of logs to write
    reference = tmp_path / "reference"
    assert _backfill(home, reference).returncode == 0
    zag_home = tmp_path / "zag-home-small"
    disk = tiny_disk(zag_home / "sessions" if full == "sessions" else zag_home, size="400k")

    first = _backfill(home, zag_home)

    assert first.returncode == 1, first.stdout + first.stderr
    assert "Traceback" not in first.stderr and "holding events in memory" not in first.stderr
    if full == "sessions":
        assert "sessions were not imported: their logs could not be written" in first.stderr
        assert NO_SPACE in first.stdout  # each source's warning says why
    else:  # the index could not be written either (or only the logs, as above)
        assert "what was imported is kept" in first.stderr
    disk.grow("64m")
    second = _backfill(home, zag_home)
    assert second.returncode == 0, second.stderr
    assert _imported(zag_home) == _imported(reference)
    third = _backfill(home, zag_home)
    assert "0 imported, 0 updated, 40 unchanged" in third.stdout


def test_commands_on_a_full_zag_home_say_that_the_disk_is_full(tmp_path: Path,
                                                               tiny_disk: Callable[..., TinyDisk]) -> None:
    """With no zag running, the index has no -wal/-shm files, and SQLite cannot make them on a full disk:
    every command that opens the index failed with a bare "disk I/O error"."""
    home = tmp_path / "home"
    _claude_history(home, 3)
    zag_home = tmp_path / "zag-home-small"
    disk = tiny_disk(zag_home)
    assert _backfill(home, zag_home).returncode == 0
    disk.fill()
    env = {**os.environ, "HOME": str(home), "ZAG_HOME": str(zag_home)}
    said = f"the disk that holds {zag_home} is full (0 KB free); free some space and run it again"
    for command in (["ps"], ["sessions"], ["reindex"]):
        result = subprocess.run([*ZAG, *command], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 1 and said in result.stderr, (command, result.stderr)
    sid = "00000000-0000-4000-8000-000000000001"
    with open(home / ".claude" / "projects" / encode_cwd("/srv/p") / f"{sid}.jsonl", "a") as transcript:
        transcript.write(user(sid, "more") + "\n")  # something to import
    result = _backfill(home, zag_home)
    assert result.returncode == 1 and said + ", what was imported is kept" in result.stderr, result.stderr
    disk.free()
    assert _backfill(home, zag_home).returncode == 0
    result = subprocess.run([*ZAG, "ps", "--all"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
