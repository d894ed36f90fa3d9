"""Overnight batches, from the soak (bench/bench_soak.py): what must not grow while many supervisors beat for
hours next to the read-side commands."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import struct
import termios
import uuid
from pathlib import Path

from tests.integration.helpers import Agent, reaped, wait_until
from zag.logs.index import Index

SESSIONS = 1500  # their JSON is several times a pipe's 64 KiB


def _pipe_bytes(fd: int) -> int:
    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]


def test_a_stalled_sessions_json_reader_does_not_pin_the_wal(agent: Agent) -> None:
    """`zag sessions --json | less` left open overnight: zag blocks writing to the full pipe. It stepped one
    SELECT as it wrote, so its read transaction stayed open while it was blocked, and no checkpoint could
    reset the WAL, which every supervisor's heartbeat then grew for as long as the pager was open. Now the
    rows are read a page at a time, each page whole: no transaction is open while zag waits on its output."""
    db = agent.zag_home / "index.sqlite"
    with Index(db) as index:
        for n in range(SESSIONS):
            index.add_session(session_id=str(uuid.uuid4()), provider="claude", state="exited",
                              started_at=1.8e9 + n // 2, updated_at=1.8e9 + n, cwd=str(agent.root), argv=["-p", "x"])
    read_end, write_end = os.pipe()
    try:
        with reaped(agent.start("sessions", "--json", stdout=write_end)) as proc:
            os.close(write_end)
            write_end = -1
            wait_until(lambda: _pipe_bytes(read_end) >= 65536, 30, message="zag blocked on a full pipe")
            conn = sqlite3.connect(db, isolation_level=None, timeout=10)
            try:
                for beat in range(20):  # supervisors beating meanwhile
                    conn.execute("UPDATE sessions SET updated_at = ? WHERE rowid = 1", (1.9e9 + beat,))
                busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                conn.close()
            assert busy == 0, "a reader blocked on its output still holds a read transaction"
            assert Path(f"{db}-wal").stat().st_size == 0
            data = bytearray()
            while chunk := os.read(read_end, 1 << 16):
                data += chunk
            assert proc.wait(timeout=30) == 0
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
    rows = json.loads(data)
    assert len(rows) == SESSIONS and len({row["session_id"] for row in rows}) == SESSIONS
