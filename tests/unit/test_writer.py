"""The session log writer: seq continuity, whole lines, torn-line repair, permissions, redaction."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from zag.logs import codec, events
from zag.logs.reader import ReadStats, read_events
from zag.logs.redact import Redactor
from zag.logs.writer import SessionLogWriter

SID = "11111111-2222-4333-8444-555555555555"


def _writer(path: Path, **kw) -> SessionLogWriter:
    return SessionLogWriter(SID, "claude", path=path, redactor=Redactor(), **kw)


def test_envelope_and_seq(tmp_path: Path) -> None:
    log = tmp_path / "s" / "a.jsonl"
    with _writer(log) as writer:
        first = writer.write(events.body(events.SESSION_STARTED, argv=["claude"], cwd="/x"))
        writer.write({"type": events.USER_MESSAGE, "content": "hi", "ts": "2026-01-02T03:04:05Z",
                      "provider_session_id": "p1"}, events.SOURCE_PROVIDER_FILE)
        writer.write(events.body(events.HEARTBEAT, interval_secs=10))
    assert list(first)[:7] == list(events.ENVELOPE_FIELDS)
    lines = list(read_events(log))
    assert [e["seq"] for e in lines] == [1, 2, 3]
    assert lines[1]["ts"] == "2026-01-02T03:04:05.000Z"
    assert lines[1]["source"] == "provider_file"
    assert lines[2]["provider_session_id"] == "p1"  # learned from the earlier event
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(log.parent).st_mode) == 0o700


def test_continues_seq_and_repairs_torn_garbage(tmp_path: Path) -> None:
    log = tmp_path / "a.jsonl"
    with _writer(log) as writer:
        for _ in range(3):
            writer.write(events.body(events.HEARTBEAT, interval_secs=1))
    with open(log, "ab") as handle:
        handle.write(b'{"seq": 4, "ts": "x", "type": "heart')  # crash mid-write
    stats = ReadStats()
    assert len(list(read_events(log, stats))) == 3 and stats.torn_tail
    with _writer(log) as writer:
        event = writer.write(events.body(events.HEARTBEAT, interval_secs=1))
    assert event["seq"] == 4
    assert [e["seq"] for e in read_events(log)] == [1, 2, 3, 4]


def test_torn_but_complete_json_keeps_its_line(tmp_path: Path) -> None:
    log = tmp_path / "a.jsonl"
    with _writer(log) as writer:
        writer.write(events.body(events.HEARTBEAT, interval_secs=1))
    data = log.read_bytes().rstrip(b"\n")
    log.write_bytes(data)  # the newline never made it to disk
    with _writer(log) as writer:
        assert writer.write(events.body(events.HEARTBEAT, interval_secs=1))["seq"] == 2
    assert [e["seq"] for e in read_events(log)] == [1, 2]


def test_huge_last_line_found_backwards(tmp_path: Path) -> None:
    log = tmp_path / "a.jsonl"
    with _writer(log) as writer:
        writer.write(events.body(events.TOOL_RESULT, output="x" * 300_000, tool_id="t"))
    with _writer(log) as writer:
        assert writer.write(events.body(events.HEARTBEAT))["seq"] == 2


def test_secrets_redacted_before_write(tmp_path: Path) -> None:
    log = tmp_path / "a.jsonl"
    key = "sk-ant-api03-" + "A1b2" * 10
    with _writer(log) as writer:
        writer.write(events.body(events.ASSISTANT_MESSAGE, content=f"your key is {key}"))
    raw = log.read_bytes()
    assert key.encode() not in raw
    assert codec.loads(raw)["content"] == "your key is [REDACTED:anthropic_key]"


def test_write_failure_holds_events_and_retries(tmp_path: Path, monkeypatch, capsys) -> None:
    log = tmp_path / "a.jsonl"
    writer = _writer(log)
    real_write = os.write
    failing = {"on": True}

    def flaky(fd, data):
        if failing["on"] and fd == writer._fd:
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", flaky)
    assert writer.complete
    writer.write(events.body(events.HEARTBEAT, interval_secs=1))
    writer.write(events.body(events.HEARTBEAT, interval_secs=1))
    assert log.read_bytes() == b""
    assert not writer.complete
    assert "No space left on device" in capsys.readouterr().err
    failing["on"] = False
    writer.write(events.body(events.HEARTBEAT, interval_secs=1))
    assert writer.complete
    writer.close()
    assert [e["seq"] for e in read_events(log)] == [1, 2, 3]


def test_events_still_held_at_close_are_told_lost_once_more(tmp_path: Path, monkeypatch, capsys) -> None:
    """The first failure said the events were held and retried; if the disk is still full at the end,
    the user must hear that they are lost (the first message is not repeated)."""
    told: list[str] = []
    writer = _writer(tmp_path / "a.jsonl", tell=told.append)
    real_write = os.write

    def full(fd, data):
        if fd == writer._fd:
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    for _ in range(3):
        writer.write(events.body(events.HEARTBEAT, interval_secs=1))
    assert not writer.close()
    assert len(told) == 2 and "holding events in memory" in told[0]
    assert told[1] == (f"zag: 3 events could not be written to {tmp_path / 'a.jsonl'} (No space left on device) "
                       "and are lost")
    assert capsys.readouterr().err == ""  # told through `tell` only


def test_a_writer_told_nothing_says_nothing(tmp_path: Path, monkeypatch, capsys) -> None:
    writer = _writer(tmp_path / "a.jsonl", tell=None)
    monkeypatch.setattr(os, "write", lambda fd, data: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    writer.write(events.body(events.HEARTBEAT, interval_secs=1))
    monkeypatch.undo()
    assert writer.close() and writer.last_error == "No space left on device"
    assert capsys.readouterr().err == ""


def test_a_loose_log_is_made_private_and_a_vanished_folder_made_again(tmp_path: Path) -> None:
    loose = tmp_path / "s" / "loose.jsonl"
    loose.parent.mkdir()
    loose.write_text("")
    os.chmod(loose, 0o644)
    _writer(loose).close()
    assert stat.S_IMODE(os.stat(loose).st_mode) == 0o600
    loose.unlink()
    loose.parent.rmdir()  # the folder was checked once by this process, then removed
    with _writer(loose) as writer:
        writer.write(events.body(events.HEARTBEAT, interval_secs=10))
    assert stat.S_IMODE(os.stat(loose.parent).st_mode) == 0o700
    assert [e["seq"] for e in read_events(loose)] == [1]


def test_write_many_gives_the_events_write_gives(tmp_path: Path) -> None:
    bodies = [
        {"type": events.USER_MESSAGE, "content": "hi", "ts": "2026-01-02T03:04:05Z"},
        {"type": events.ASSISTANT_MESSAGE, "ts": "2026-01-02T03:04:06.500Z", "provider_session_id": "p1",
         "content": "yo", "model": "m"},
        {"type": events.USAGE, "ts": 1767323046.5, "input_tokens": 3},
        {"type": events.PROVIDER_STATUS, "message": "x", "data": {"a": 1}, "ts": None},
    ]
    one, many = tmp_path / "one.jsonl", tmp_path / "many.jsonl"
    with _writer(one) as writer:
        singles = [writer.write(dict(body), events.SOURCE_BACKFILL) for body in bodies]
    with _writer(many) as writer:
        batch = writer.write_many([dict(body) for body in bodies], events.SOURCE_BACKFILL)
    for single, batched in zip(singles, batch):
        if single["ts"] != batched["ts"]:  # both "now" for the event without a time
            assert single["type"] == events.PROVIDER_STATUS
            single["ts"] = batched["ts"]
        assert list(single.items()) == list(batched.items())
    assert [e["provider_session_id"] for e in batch] == [None, "p1", "p1", "p1"]
