"""The supervisor seams the usage-limit engine relies on: a session-id hint that arrives before the live
session is open is handed over once it opens; the relay reports the user's keystrokes (to tell a pasted
limit message from the agent's own) and the PTY output (the screen dialogs are answered from)."""

from __future__ import annotations

import os
import threading
import time
import tty
from typing import Any

from zag.config import Config
from zag.providers.base import LaunchContext, LaunchPlan, SessionIdHint
from zag.wrapper.live import LiveFollower
from zag.wrapper.relay import Output, Relay
from zag.wrapper.supervisor import RunRequest, Supervisor


class FakeLive:
    provider_session_id = None
    source_key = None

    def __init__(self) -> None:
        self.hints: list[str] = []

    def poll(self) -> list[Any]:
        return []

    def hint(self, signal: SessionIdHint) -> None:
        self.hints.append(signal.provider_session_id)

    def cursor(self) -> Any:
        return None

    def close(self) -> None:
        pass


class FakeProvider:
    name = "codex"
    executable = "codex"
    install_hint = "-"

    def __init__(self) -> None:
        self.live = FakeLive()

    def open_live(self, plan: LaunchPlan, ctx: LaunchContext) -> FakeLive:
        return self.live


def test_a_hint_before_the_live_session_opens_is_handed_over() -> None:
    provider = FakeProvider()
    supervisor = Supervisor(provider, RunRequest("codex", [], "/bin/true", False), Config())  # type: ignore[arg-type]
    follower = LiveFollower(provider, supervisor.guard, None, supervisor._route,  # type: ignore[arg-type]
                            supervisor._set_provider_session_id)
    supervisor._follower = follower
    supervisor._route(SessionIdHint("019a-thread", "stdout"), "stdout")  # `thread.started`, before the open
    assert supervisor.provider_session_id == "019a-thread"  # the index learns it at once
    ctx = LaunchContext(cwd="/", env={}, interactive=False, started_at=time.time(), zag_session_id="z")
    assert follower.open(LaunchPlan(args=[]), ctx)
    follower.poll_once()
    assert provider.live.hints == ["019a-thread"]  # and the live session gets it when it opens
    supervisor._route(SessionIdHint("019b-thread", "stdout"), "stdout")
    follower.poll_once()
    assert provider.live.hints == ["019a-thread", "019b-thread"]


def test_the_relay_reports_keystrokes_and_output() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)  # like a TUI: no echo
    keys_r, keys_w = os.pipe()
    out_r, out_w = os.pipe()
    typed: list[bytes] = []
    shown: list[tuple[str, bytes]] = []
    os.set_blocking(master, False)
    relay = Relay([Output(master, out_w, "pty")], observe=lambda stream, data: shown.append((stream, data)),
                  pty_master=master, stdin_fd=keys_r, on_input=typed.append)
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    try:
        os.write(keys_w, b"pasted text\r")
        deadline = time.monotonic() + 10
        while not typed and time.monotonic() < deadline:
            time.sleep(0.01)
        assert typed == [b"pasted text\r"]
        assert os.read(slave, 100).startswith(b"pasted text")  # still forwarded to the agent
        os.write(slave, b"screen\r\n")
        while not shown and time.monotonic() < deadline:
            time.sleep(0.01)
        assert shown == [("pty", b"screen\r\n")]
    finally:
        relay.stop()
        thread.join(10)
        relay.close()
        for fd in (slave, keys_r, keys_w, out_r, out_w):
            os.close(fd)
