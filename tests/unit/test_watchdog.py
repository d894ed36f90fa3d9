"""The session watchdog on its own: which processes it finds (the session's environment entry, started no
earlier than the child), how it ends them (SIGTERM, SIGKILL after the grace, newcomers too), and its
protocol with zag (a child running at EOF → act; none running, or stopped by zag → nothing); and the
single-threaded window zag forks it in (signals blocked, dispatched once the listener starts)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.helpers import kill_quietly, process_gone, wait_until
from zag.wrapper import watchdog

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the watchdog needs /proc")

IGNORES_TERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
# on SIGTERM: start one more marked process (what it prints is that pid), then keep ignoring SIGTERM
FORKS_ON_TERM = """
import signal, subprocess, sys, time
def on_term(signum, frame):
    child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"])
    print(child.pid, flush=True)
signal.signal(signal.SIGTERM, on_term)
print('up', flush=True)
time.sleep(60)
"""


@pytest.fixture
def session() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        kill_quietly(proc.pid)
        proc.wait(timeout=10)


def spawn(procs: list[subprocess.Popen[bytes]], session: str | None, code: str = "import time; time.sleep(60)",
          *, variable: str = watchdog.SESSION_VARIABLE) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != watchdog.SESSION_VARIABLE}
    if session is not None:
        env[variable] = session
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE)
    procs.append(proc)
    if "print('up'" in code:
        assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
    return proc


def needle(session: str) -> bytes:
    return f"{watchdog.SESSION_VARIABLE}={session}".encode()


def found(session: str, since: int = 0) -> set[int]:
    pids = set()
    for pid, pidfd in watchdog.marked(needle(session), since):
        pids.add(pid)
        watchdog._close(pidfd)
    return pids


def test_marked_means_this_sessions_entry_exactly(session: str, procs: list[subprocess.Popen[bytes]]) -> None:
    mine = spawn(procs, session)
    spawn(procs, None)
    spawn(procs, session + "0")                              # another id that starts the same
    spawn(procs, session, variable="OTHER_ZAG_SESSION_ID")   # the same value under another name
    assert found(session) == {mine.pid}


def test_marked_leaves_out_processes_older_than_the_bound(session: str, procs: list[subprocess.Popen[bytes]]) -> None:
    old = spawn(procs, session)
    ticks = watchdog.start_ticks(old.pid)
    assert ticks is not None
    assert old.pid in found(session, since=ticks)
    assert found(session, since=ticks + 1) == set()


def test_an_environment_that_reads_empty_inside_exec_is_read_again(session: str, procs: list[subprocess.Popen[bytes]],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    mine = spawn(procs, session)
    real = watchdog._environ
    reads: list[int] = []

    def inside_exec_at_first(pid: int) -> bytes | None:  # what /proc/<pid>/environ gives mid-exec
        if pid != mine.pid:
            return real(pid)
        reads.append(pid)
        return b"" if len(reads) <= 3 else real(pid)

    monkeypatch.setattr(watchdog, "_environ", inside_exec_at_first)
    assert mine.pid in found(session)
    assert len(reads) == 4


def test_a_process_with_no_environment_at_all_is_given_up_on(session: str,
                                                            procs: list[subprocess.Popen[bytes]]) -> None:
    bare = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env={})
    procs.append(bare)
    ticks = watchdog.start_ticks(bare.pid)
    assert ticks is not None
    assert bare.pid not in found(session, since=ticks)  # after EXEC_WAIT_SECS of reading it again


def test_kernel_threads_are_never_read(session: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """They have no environment either; new ones (kworkers) start all the time."""
    kernel = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
              if (stat := watchdog._stat(pid)) is not None and stat[2] & watchdog._PF_KTHREAD]
    if not kernel:
        pytest.skip("no kernel threads visible in this pid namespace")
    read: list[int] = []
    monkeypatch.setattr(watchdog, "_environ", lambda pid: read.append(pid) or b"")
    assert not any(watchdog._matches(pid, needle(session), 0) for pid in kernel)
    assert read == []


def test_terminate_sends_sigterm_then_sigkill_after_the_grace(session: str,
                                                              procs: list[subprocess.Popen[bytes]]) -> None:
    polite = spawn(procs, session)
    stubborn = spawn(procs, session, IGNORES_TERM)
    bystander = spawn(procs, None)
    ended = watchdog.terminate(needle(session), 0, grace=0.3)
    assert set(ended) == {polite.pid, stubborn.pid}
    assert polite.wait(timeout=10) == -signal.SIGTERM
    assert stubborn.wait(timeout=10) == -signal.SIGKILL
    assert bystander.poll() is None


def test_terminate_ends_processes_started_while_it_works(session: str, procs: list[subprocess.Popen[bytes]]) -> None:
    parent = spawn(procs, session, FORKS_ON_TERM)
    ended = watchdog.terminate(needle(session), 0, grace=0.5)
    assert parent.wait(timeout=10) == -signal.SIGKILL
    assert parent.stdout is not None
    newcomers = [int(line) for line in parent.stdout.read().split()]
    assert newcomers and set(newcomers) <= set(ended)
    for pid in newcomers:
        wait_until(lambda pid=pid: process_gone(pid), 10, message=f"newcomer {pid} gone")


def serve_in_thread(session: str, messages: bytes, *, close: bool = True) -> tuple[threading.Thread, int]:
    read_fd, write_fd = os.pipe()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(watchdog.serve(read_fd, needle(session))), daemon=True)
    thread.start()
    os.write(write_fd, messages)
    if close:
        os.close(write_fd)
    return thread, read_fd


def test_eof_while_a_child_runs_ends_its_tree_but_not_older_leftovers(
        session: str, procs: list[subprocess.Popen[bytes]]) -> None:
    leftover = spawn(procs, session)               # left running by an earlier child of the session
    wait_until(lambda: watchdog.start_ticks(leftover.pid), 5, message="leftover started")
    child = spawn(procs, session)
    while watchdog.start_ticks(child.pid) == watchdog.start_ticks(leftover.pid):  # a tick apart
        procs.remove(child)
        kill_quietly(child.pid)
        child.wait(timeout=10)
        child = spawn(procs, session)
    grandchild = spawn(procs, session)
    thread, read_fd = serve_in_thread(session, b"A%d\nD\nA%d\n" % (leftover.pid, child.pid))
    thread.join(15)
    os.close(read_fd)
    assert child.wait(timeout=10) < 0 and grandchild.wait(timeout=10) < 0
    assert leftover.poll() is None


@pytest.mark.parametrize("messages", [b"", b"A%d\nD\n"])
def test_eof_with_no_child_running_ends_nothing(session: str, procs: list[subprocess.Popen[bytes]],
                                                messages: bytes) -> None:
    child = spawn(procs, session)
    thread, read_fd = serve_in_thread(session, messages.replace(b"%d", str(child.pid).encode()))
    thread.join(15)
    os.close(read_fd)
    assert not thread.is_alive() and child.poll() is None


def test_a_stopped_watchdog_never_acts(session: str, procs: list[subprocess.Popen[bytes]]) -> None:
    child = spawn(procs, session)
    dog = watchdog.start(session)
    assert dog is not None
    wait_until(lambda: Path(f"/proc/{dog.pid}/comm").read_text().strip() == "zag-watchdog", 10,
               message="the watchdog named")
    assert os.getsid(dog.pid) == dog.pid  # out of our session and process group
    dog.arm(child.pid)
    dog.stop()
    assert process_gone(dog.pid)
    dog.stop()  # idempotent
    assert child.poll() is None


def test_the_watchdog_acts_when_the_pipe_closes_without_a_stop(session: str,
                                                              procs: list[subprocess.Popen[bytes]]) -> None:
    child = spawn(procs, session)
    dog = watchdog.start(session)
    assert dog is not None
    dog.arm(child.pid)
    assert dog._fd is not None
    os.close(dog._fd)  # as when zag dies: its end of the pipe is gone
    dog._fd = None
    assert child.wait(timeout=10) == -signal.SIGTERM
    os.waitpid(dog.pid, 0)


BLOCK_THEN_START = """
import os, signal, sys, threading, time
from zag.wrapper.signals import SignalListener
got = []
listener = SignalListener(lambda signum, from_terminal: got.append(signum))
listener.block()                       # zag: signals wait while it spawns the agent and forks the watchdog
os.kill(os.getpid(), signal.SIGUSR1)
time.sleep(0.1)
assert got == [] and threading.active_count() == 1
listener.start()
deadline = time.monotonic() + 10
while not got and time.monotonic() < deadline:
    time.sleep(0.01)
print(got)
"""


def test_signals_blocked_before_the_listener_starts_are_dispatched_once_it_does() -> None:
    result = subprocess.run([sys.executable, "-c", BLOCK_THEN_START], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"[{int(signal.SIGUSR1)}]"
