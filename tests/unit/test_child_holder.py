"""`spawn_in_pty` starts the agent through the session holder: `Child.pid` is the agent's, the holder stops,
continues and ends as the agent does; a holder that cannot start, or does not report, means the agent is
started directly; the agent's own exec failing raises as `Popen` would."""

from __future__ import annotations

import errno
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from zag.wrapper import child as child_module
from zag.wrapper.child import Child, ExitStatus, spawn_in_pty


@pytest.fixture
def children() -> Iterator[list[Child]]:
    """Children started by a test; killed and their PTYs closed on the way out."""
    started: list[Child] = []
    yield started
    for child in started:
        if child.status is None:
            for pid in {child.pid, child.popen.pid}:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            child.popen.wait()
        if child.pty_master is not None:
            os.close(child.pty_master)


def _spawn(children: list[Child], script: str) -> Child:
    child = spawn_in_pty(["/bin/sh", "-c", script], dict(os.environ), None, terminal_fd=None)
    children.append(child)
    return child


def _read_until(fd: int, wanted: bytes, timeout: float = 10.0) -> bytes:
    deadline, seen = time.monotonic() + timeout, b""
    while wanted not in seen:
        assert time.monotonic() < deadline, f"{wanted!r} not read; got {seen!r}"
        try:
            seen += os.read(fd, 4096)
        except BlockingIOError:
            time.sleep(0.01)
    return seen


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as handle:
        stat = handle.read()
    return int(stat[stat.rfind(b")") + 2:].split()[1])


def test_the_child_is_the_agent_under_its_holder(children: list[Child]) -> None:
    child = _spawn(children, "echo pid=$$; exit 5")
    assert child.held and child.pid != child.popen.pid
    assert _read_until(child.pty_master, b"pid=%d" % child.pid)  # type: ignore[arg-type]
    assert child.wait() == ExitStatus(5)


def test_a_stop_of_the_agent_stops_the_holder_and_continuing_it_continues_the_agent(children: list[Child]) -> None:
    child = _spawn(children, "kill -TSTP $$; echo continued; exit 2")  # a group that is not orphaned: it stops
    stops: list[int] = []

    def on_stop(signum: int) -> None:
        stops.append(signum)
        child.continue_stopped()

    assert child.wait(on_stop) == ExitStatus(2)
    assert stops == [signal.SIGSTOP]
    assert _read_until(child.pty_master, b"continued")  # type: ignore[arg-type]


def test_a_signal_sent_to_the_holder_reaches_the_agent_and_its_death_is_the_holders(children: list[Child]) -> None:
    child = _spawn(children, "echo ready; while :; do sleep 0.05; done")
    _read_until(child.pty_master, b"ready")  # type: ignore[arg-type]
    assert _parent(child.pid) == child.popen.pid
    assert child.send_signal(signal.SIGTERM)
    assert child.wait() == ExitStatus(None, signal.SIGTERM)


def test_the_agents_exec_failure_is_raised(children: list[Child], tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        _spawn_argv(children, [str(tmp_path / "missing")])
    plain = tmp_path / "plain"
    plain.write_text("echo hi\n", encoding="utf-8")
    plain.chmod(0o755)
    with pytest.raises(OSError) as raised:
        _spawn_argv(children, [str(plain)])
    assert raised.value.errno == errno.ENOEXEC  # the supervisor runs it with /bin/sh then


def _spawn_argv(children: list[Child], argv: list[str]) -> Child:
    child = spawn_in_pty(argv, dict(os.environ), None, terminal_fd=None)
    children.append(child)
    return child


@pytest.mark.parametrize("how", ["missing holder", "no interpreter", "no report"])
def test_a_holder_that_cannot_start_the_agent_means_a_direct_start(children: list[Child], tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    how: str) -> None:
    if how == "missing holder":
        monkeypatch.setattr(child_module, "HOLDER", str(tmp_path / "missing.py"))
    elif how == "no interpreter":
        monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    else:
        silent = tmp_path / "silent.py"
        silent.write_text("import time\ntime.sleep(30)\n", encoding="utf-8")
        monkeypatch.setattr(child_module, "HOLDER", str(silent))
        monkeypatch.setattr(child_module, "HOLDER_REPORT_SECS", 0.3)
    child = _spawn(children, "echo sid=$(ps -o sid= -p $$ | tr -d ' ') pid=$$; exit 3")
    assert not child.held and child.pid == child.popen.pid
    seen = _read_until(child.pty_master, b"pid=%d" % child.pid)  # type: ignore[arg-type]
    assert b"sid=%d " % child.pid in seen  # the agent leads its session, as before the holder
    assert child.wait() == ExitStatus(3)



RECORDS_THE_HANGUP = """
import os, signal, sys, time
seen = []
for signum in (signal.SIGHUP, signal.SIGCONT):
    signal.signal(signum, lambda number, _: seen.append(signal.Signals(number).name))
print("ready", flush=True)
try:
    while os.read(0, 100):
        pass
except OSError:
    pass
deadline = time.monotonic() + 10  # the signals may come after the end-of-file on a loaded machine
while len(seen) < 2 and time.monotonic() < deadline:
    time.sleep(0.01)
time.sleep(0.3)  # and nothing more comes
with open(sys.argv[1], "w") as record:
    record.write(" ".join(seen))
"""


@pytest.mark.parametrize("ignored", [False, True])
def test_the_ptys_hangup_reaches_the_agent_as_when_it_led_the_session(children: list[Child], tmp_path: Path,
                                                                      ignored: bool) -> None:
    """zag closes the PTY's master (the user's terminal hung up): the kernel's SIGHUP and SIGCONT to the
    session leader reach the agent through the holder, even when zag (so the holder) has SIGHUP ignored."""
    record = tmp_path / "seen"
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN if ignored else signal.SIG_DFL)
    try:
        child = spawn_in_pty([sys.executable, "-c", RECORDS_THE_HANGUP, str(record)], dict(os.environ), None,
                             terminal_fd=None)
    finally:
        signal.signal(signal.SIGHUP, previous)
    children.append(child)
    assert child.held
    _read_until(child.pty_master, b"ready")  # type: ignore[arg-type]
    master, child.pty_master = child.pty_master, None
    os.close(master)  # type: ignore[arg-type]
    assert child.wait() == ExitStatus(0)
    assert record.read_text(encoding="utf-8") == "SIGHUP SIGCONT"
