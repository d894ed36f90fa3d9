"""The observers get the agent's output on a thread of their own (`zag.wrapper.observation`): in order,
coalesced, complete while they keep up; a stuck or slow observer never holds back the relay (the terminal
gets every byte), and what they could not see is dropped oldest-first and reported in the diagnostics."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from zag import diag, paths
from zag.wrapper.observation import INPUT, Observation
from zag.wrapper.relay import Output, Relay

DEADLINE = 20.0


def wait_for(predicate: Any, message: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {message}"
        time.sleep(0.005)


class Recorder:
    """An observer that can be held up (as a stuck scanner would be) and records what it sees."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()

    def observe(self, stream: str, data: bytes) -> None:
        self.entered.set()
        self.release.wait(DEADLINE)
        self.calls.append((stream, data))

    def on_input(self, data: bytes) -> None:
        self.calls.append((INPUT, data))

    def seen(self, stream: str) -> bytes:
        return b"".join(data for name, data in self.calls if name == stream)


@pytest.fixture
def fresh_diagnostics(monkeypatch: pytest.MonkeyPatch) -> Path:
    """zag's diagnostics written to this test's ZAG_HOME (the logger is made once per process)."""
    monkeypatch.setattr(diag, "_logger", None)
    return paths.diagnostics_log()


def test_items_reach_the_observers_in_order_and_coalesced() -> None:
    recorder = Recorder()
    recorder.release.clear()
    observation = Observation()
    observation.start(recorder.observe, recorder.on_input)
    observation.put("stdout", b"first\n")
    wait_for(recorder.entered.is_set, "the first delivery")  # held up: the next items pile up
    for data in (b"a", b"b", b"c"):
        observation.put("stdout", data)
    observation.put("stderr", b"err")
    observation.put_input(b"typed")
    observation.put("stdout", b"d")
    observation.put("stdout", b"e")
    recorder.release.set()
    assert observation.finish(DEADLINE)
    assert recorder.calls == [("stdout", b"first\n"), ("stdout", b"abc"), ("stderr", b"err"),
                              (INPUT, b"typed"), ("stdout", b"de")]


def test_streaming_output_is_gathered_into_few_deliveries_and_keystrokes_are_not_held() -> None:
    """Output that keeps coming waits (up to `gather_secs`) for more, so that the observers' thread takes the
    interpreter lock from the relay's a few times, not once per chunk; output after a pause and keystrokes
    are observed at once."""
    recorder = Recorder()
    observation = Observation(gather_secs=DEADLINE)
    observation.start(recorder.observe, recorder.on_input)
    observation.put("pty", b"after a pause")
    wait_for(lambda: recorder.calls, "the first output")
    for index in range(50):  # streaming now: the last delivery was less than `gather_secs` ago
        observation.put("pty", b"%d " % index)
    time.sleep(0.05)
    assert recorder.calls == [("pty", b"after a pause")]  # still gathering
    observation.put_input(b"typed")
    wait_for(lambda: len(recorder.calls) == 3, "the keystrokes")
    assert recorder.calls[1:] == [("pty", b"".join(b"%d " % index for index in range(50))), (INPUT, b"typed")]
    observation.put("pty", b"last")
    started = time.monotonic()
    assert observation.finish(DEADLINE)  # finishing delivers what was gathered without waiting
    assert time.monotonic() - started < DEADLINE / 2
    assert recorder.calls[-1] == ("pty", b"last")


def test_gathered_output_is_observed_once_there_is_enough_or_after_the_gathering_time() -> None:
    for gather_secs, sizes in ((DEADLINE, (500, 500)), (0.05, (10, 10))):  # enough bytes / the time is up
        recorder = Recorder()
        observation = Observation(coalesce_bytes=1000, gather_secs=gather_secs)
        observation.start(recorder.observe)
        observation.put("pty", b"first")
        wait_for(lambda: recorder.calls, "the first output")
        observation.put("pty", b"x" * sizes[0])
        observation.put("pty", b"y" * sizes[1])
        wait_for(lambda: len(recorder.calls) == 2, "the gathered output")
        assert recorder.calls[1] == ("pty", b"x" * sizes[0] + b"y" * sizes[1])
        assert observation.finish(DEADLINE)


def test_output_waits_for_the_observers_to_be_attached() -> None:
    recorder = Recorder()
    observation = Observation()
    observation.put("pty", b"before the scanner existed ")
    observation.put_input(b"k")
    observation.start(recorder.observe, recorder.on_input)
    observation.put("pty", b"and after")
    assert observation.finish(DEADLINE)
    assert recorder.seen("pty") == b"before the scanner existed and after"
    assert recorder.seen(INPUT) == b"k"


def test_without_observers_nothing_is_kept() -> None:
    observation = Observation(max_bytes=10)
    observation.put("stdout", b"x" * 100)
    observation.start(None, None)
    observation.put("stdout", b"y" * 100)
    assert observation.finish(1.0)
    assert observation.dropped_bytes == 0


def test_a_lagging_observer_loses_the_oldest_output_and_it_is_reported(fresh_diagnostics: Path) -> None:
    recorder = Recorder()
    recorder.release.clear()
    observation = Observation(max_bytes=1000)
    observation.start(recorder.observe, None)
    observation.put("stdout", b"held\n")
    wait_for(recorder.entered.is_set, "the first delivery")
    for index in range(100):  # 3000 bytes while the observer is stuck: the queue keeps the newest 1000
        observation.put("stdout", b"%029d\n" % index)
    observation.put("stdout", b"the very end")
    recorder.release.set()
    assert observation.finish(DEADLINE)
    seen = recorder.seen("stdout")
    assert seen.startswith(b"held\n") and seen.endswith(b"%029d\nthe very end" % 99)
    assert observation.dropped_bytes == 3000 + len(b"the very end") - (len(seen) - len(b"held\n"))
    assert observation.dropped_items > 0
    records = [json.loads(line) for line in fresh_diagnostics.read_text().splitlines()]
    reports = [r for r in records if r["event"] == "output_observation_incomplete"]
    assert reports and reports[-1]["dropped_bytes"] == observation.dropped_bytes and reports[-1]["final"]


def test_finish_gives_up_on_a_hung_observer(fresh_diagnostics: Path) -> None:
    recorder = Recorder()
    recorder.release.clear()
    observation = Observation()
    observation.start(recorder.observe, None)
    observation.put("stdout", b"never returns")
    wait_for(recorder.entered.is_set, "the delivery")
    assert not observation.finish(0.05)
    recorder.release.set()
    records = [json.loads(line) for line in fresh_diagnostics.read_text().splitlines()]
    assert any(r["event"] == "output_observation_incomplete" and r["observers_unfinished"] for r in records)


def test_a_failing_observer_keeps_observing() -> None:
    calls: list[bytes] = []

    def observe(stream: str, data: bytes) -> None:
        calls.append(data)
        if data == b"boom":
            raise RuntimeError("scanner bug")

    observation = Observation()
    observation.start(observe)
    observation.put("stdout", b"boom")
    wait_for(lambda: calls, "the first delivery")
    observation.put("stdout", b"next")
    assert observation.finish(DEADLINE)
    assert calls == [b"boom", b"next"]


def test_a_stuck_observer_never_holds_back_the_terminal() -> None:
    """The relay delivers every byte to the user while the observer is stuck; the observer gets the end."""
    recorder = Recorder()
    recorder.release.clear()
    child_r, child_w = os.pipe()
    user_r, user_w = os.pipe()
    os.set_blocking(child_r, False)
    relay = Relay([Output(child_r, user_w, "stdout")], observation=Observation(max_bytes=256 * 1024))
    relay.observation.start(recorder.observe)
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    payload = os.urandom(3 * 1024 * 1024) + b"usage limit reached at the very end"
    writer = threading.Thread(target=_write_all_and_close, args=(child_w, payload), daemon=True)
    writer.start()
    received = bytearray()
    try:
        while True:  # the observer is still stuck in its first call all along
            data = os.read(user_r, 1 << 16)
            if not data:
                break
            received += data
            if len(received) == len(payload):
                break
        assert bytes(received) == payload
        assert not recorder.calls
        relay.child_exited()
        thread.join(DEADLINE)
        assert not thread.is_alive()
    finally:
        recorder.release.set()
        relay.stop()
        thread.join(DEADLINE)
        assert relay.observation.finish(DEADLINE)
        relay.close()
        for fd in (user_r, user_w):
            os.close(fd)
    assert recorder.seen("stdout").endswith(b"usage limit reached at the very end")
    assert relay.observation.dropped_bytes > 0


def _write_all_and_close(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view[:65536]):]
    os.close(fd)
