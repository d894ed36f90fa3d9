"""`Child.wait(on_stop)`: the supervisor hears of each stop of the agent (job control) before its exit."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from zag.wrapper.child import Child, ExitStatus


def _child(script: str) -> Child:
    popen = subprocess.Popen(["/bin/sh", "-c", script])
    return Child(popen, ["/bin/sh", "-c", script])


def test_each_stop_is_reported_then_the_exit() -> None:
    child = _child("kill -STOP $$; kill -STOP $$; exit 4")
    stops: list[int] = []

    def on_stop(signum: int) -> None:
        stops.append(signum)
        os.kill(child.pid, signal.SIGCONT)

    assert child.wait(on_stop) == ExitStatus(4)
    assert stops == [signal.SIGSTOP, signal.SIGSTOP]


def test_death_by_signal_is_not_a_stop() -> None:
    child = _child("kill -KILL $$")
    assert child.wait(lambda signum: pytest.fail(f"stop reported: {signum}")) == ExitStatus(None, signal.SIGKILL)


def test_without_waitid_the_exit_is_still_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "waitid")  # macOS
    child = _child("exit 3")
    assert child.wait(lambda signum: pytest.fail("no stop can be seen")) == ExitStatus(3)
