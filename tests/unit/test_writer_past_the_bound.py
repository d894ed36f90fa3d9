"""The session log writer on a disk that stays full past its bound of held lines (`MAX_PENDING_BYTES`):
the events that no longer fit are dropped before they get a seq, so once space returns the log is still
seq 1..n with no gap or repeat, and a `provider_status` note (kind `events_dropped`) with the counts takes
the next seq; the user is told once then, with the counts. The agent's own records (from its files) are
held past the bound instead: the live follower stops reading there (`has_room`)."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest

from zag.logs import events
from zag.logs import writer as writer_module
from zag.logs.writer import SessionLogWriter


class Disk:
    """`os` for the writer, whose `write` fails with ENOSPC while `full`."""

    def __init__(self) -> None:
        self.full = False

    def write(self, fd: int, data: Any) -> int:
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


def _log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Disk:
    fake = Disk()
    monkeypatch.setattr(writer_module, "os", fake)
    monkeypatch.setattr(writer_module, "MAX_PENDING_BYTES", 2000)
    return fake


def test_past_the_bound_the_log_keeps_its_seq_run_and_says_what_was_dropped(disk: Disk, tmp_path: Path) -> None:
    told: list[str] = []
    path = tmp_path / "s.jsonl"
    writer = SessionLogWriter("s1", "claude", path=path, tell=told.append)
    writer.write(events.body(events.SESSION_STARTED))
    disk.full = True
    returned = [writer.write(events.body(events.ASSISTANT_MESSAGE, content=f"reply {n} " + "x" * 200),
                             events.SOURCE_STDOUT) for n in range(40)]
    assert len(told) == 1  # the failure, once
    disk.full = False
    writer.write(events.body(events.HEARTBEAT))
    assert writer.close() is False  # the dropped ones are told as lost at the end too
    log = _log(path)
    assert [event["seq"] for event in log] == list(range(1, len(log) + 1))
    written = [event for event in returned if event["seq"] is not None]
    dropped = len(returned) - len(written)
    assert 0 < len(written) < 40 and dropped
    replies = [event["content"].split()[1] for event in log if event["type"] == events.ASSISTANT_MESSAGE]
    assert replies == [str(n) for n in range(len(written))]  # the held ones, in order; the later ones dropped
    [note] = [event for event in log if event["type"] == events.PROVIDER_STATUS]
    assert note["seq"] == len(written) + 2 and log[-1]["type"] == events.HEARTBEAT
    assert note["data"]["kind"] == events.NOTE_EVENTS_DROPPED
    assert note["data"]["count"] == dropped and note["data"]["types"] == {"assistant_message": dropped}
    assert note["data"]["first_ts"] and note["data"]["last_ts"]
    assert f"{dropped} events (assistant_message {dropped}) from" in told[1] and str(path) in told[1]  # once
    assert f"{dropped} events could not be written" in told[2]


def test_the_agents_records_are_held_past_the_bound_and_the_follower_told_to_wait(disk: Disk,
                                                                                  tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    writer = SessionLogWriter("s1", "claude", path=path, tell=lambda line: None)
    writer.write(events.body(events.SESSION_STARTED))
    disk.full = True
    assert writer.has_room()
    for n in range(20):
        writer.write(events.body(events.ASSISTANT_MESSAGE, content=f"reply {n} " + "x" * 200),
                     events.SOURCE_PROVIDER_FILE)
    assert not writer.has_room()  # the follower reads nothing more meanwhile
    disk.full = False
    assert writer.has_room()
    assert writer.close() is True
    log = _log(path)
    assert [event["seq"] for event in log] == list(range(1, 22))
    assert [event["content"].split()[1] for event in log[1:]] == [str(n) for n in range(20)]
