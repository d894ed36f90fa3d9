"""Read-side work that must not grow with history: counted in bytes read and rows visited, not time.

`zag listen --since` on a huge log reads its end, not the whole file;
`zag ps --json` visits the live sessions, not every session's JSON document;
completion of session ids reads the newest few asked for, not the whole index.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from zag import states
from zag.logs import codec, events
from zag.logs.follower import STOP_END_OF_LOG, EventFollower
from zag.logs.ids import new_session_id
from zag.logs.index import Index
from zag.logs.reader import seek_after_seq
from zag.logs.writer import SessionLogWriter

SID = "11111111-2222-4333-8444-555555555555"


def _bytes_read() -> int:
    """Bytes this process has read through read(2) and pread(2) so far (`rchar`)."""
    with open("/proc/self/io", "rb") as handle:
        for line in handle:
            if line.startswith(b"rchar:"):
                return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def _line(seq: int, **fields: object) -> bytes:
    return codec.dumps_line({"seq": seq, "ts": "2026-01-01T00:00:00.000Z", "session_id": SID, "provider": "claude",
                             "source": "wrapper", "type": "assistant_message", **fields})


def _write_log(path: Path, count: int, *, pad: int = 150, odd: dict[int, bytes] | None = None) -> None:
    odd = odd or {}
    with open(path, "wb") as handle:
        for seq in range(1, count + 1):
            handle.write(odd.get(seq) or _line(seq, text="x" * pad))


def test_the_writer_starts_every_line_with_its_seq(tmp_path: Path) -> None:
    """What `seek_after_seq` reads from a probed line's start."""
    writer = SessionLogWriter(SID, "claude", path=tmp_path / "log.jsonl", tell=None)
    writer.write(events.body(events.USER_MESSAGE, text="hi"))
    writer.close()
    assert (tmp_path / "log.jsonl").read_bytes().startswith(b'{"seq":1,')


@pytest.mark.skipif(not os.path.exists("/proc/self/io"), reason="needs /proc/self/io")
def test_listen_since_reads_the_end_of_a_big_log_not_all_of_it(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    _write_log(path, 60_000)   # ~15 MB
    size = path.stat().st_size
    before = _bytes_read()
    follower = EventFollower(path, since_seq=59_990, follow=False)
    seqs = [line.event["seq"] for line in follower]
    read = _bytes_read() - before
    assert seqs == list(range(59_991, 60_001)) and follower.stop_reason == STOP_END_OF_LOG
    assert read < size / 20, f"read {read} of {size} bytes for the last 10 events"


@pytest.mark.parametrize("since", [0, 1, 2, 499, 1_000, 1_500, 2_998, 2_999, 3_000, 3_001, 10**9])
def test_listen_since_gives_exactly_the_events_after_seq(tmp_path: Path, since: int) -> None:
    """Every event after `since`, each once, across damaged lines, a line without seq, a long line."""
    path = tmp_path / "log.jsonl"
    odd = {700: b"not json at all\n", 701: b'{"seq": 701, "type": "user_message"}\n',
           1_200: _line(1_200, text="y" * 300_000), 2_000: b'{"broken\n'}
    _write_log(path, 3_000, odd=odd)
    got = [line.event.get("seq") for line in EventFollower(path, since_seq=since, follow=False)]
    expected = [seq for seq in range(since + 1, 3_001) if seq not in (700, 2_000)]
    assert got == expected


def test_seek_after_seq_only_ever_starts_early(tmp_path: Path) -> None:
    """Each answer is a line start with no later seq before it, and close to the seq asked for."""
    path = tmp_path / "log.jsonl"
    _write_log(path, 5_000, pad=60)
    data = path.read_bytes()
    starts = [0] + [index + 1 for index, byte in enumerate(data) if byte == 0x0A][:-1]
    with open(path, "rb") as handle:
        for seq in (1, 7, 100, 2_500, 4_999, 5_000, 6_000):
            offset = seek_after_seq(handle, seq, len(data))
            assert offset in starts
            line_no = starts.index(offset) + 1   # seq of the line starting there
            assert line_no <= seq + 1
            assert sum(len(_line(n, text="x" * 60)) for n in range(line_no, min(seq, 5_000) + 1)) <= 2 * 64 * 1024


def _fill_index(index: Index, count: int, *, live: int = 1) -> None:
    """`count` exited sessions and `live` running ones, in one transaction."""
    import time

    now = time.time()
    rows = [{"session_id": new_session_id(), "provider": ("claude", "codex")[n % 2],
             "state": states.RUNNING if n < live else states.EXITED, "cwd": f"/src/p{n}",
             "argv": '["claude", "-p", "x"]', "started_at": now - n, "updated_at": now, "last_seq": n}
            for n in range(count + live)]
    with index.transaction() as conn:
        conn.executemany("INSERT INTO sessions (session_id, provider, state, cwd, argv, started_at, updated_at, "
                         "last_seq) VALUES (:session_id, :provider, :state, :cwd, :argv, :started_at, :updated_at, "
                         ":last_seq)", rows)


def _steps(index: Index, run: Callable[[], object]) -> int:
    """SQLite virtual-machine steps (in thousands) that `run` made on `index`'s connection."""
    counted = [0]

    def count() -> int:
        counted[0] += 1
        return 0

    index._conn.set_progress_handler(count, 1000)
    try:
        run()
    finally:
        index._conn.set_progress_handler(None, 0)
    return counted[0]


def test_listing_live_sessions_visits_the_live_ones_not_every_session(tmp_path: Path) -> None:
    """`zag ps --json` (the form scripts poll) with a long history: its work does not grow with it."""
    work = {}
    for count in (200, 8_000):
        with Index(tmp_path / f"index-{count}.sqlite") as index:
            _fill_index(index, count)
            work[count] = _steps(index, lambda: list(index.iter_session_json(states_in=states.LIVE_STATES)))
            assert [stored for stored, _ in index.iter_session_json(states_in=states.LIVE_STATES)] == [states.RUNNING]
    assert work[8_000] <= work[200] + 2, work


@pytest.mark.parametrize("command", ["events", "resume"])
def test_completing_a_session_id_reads_the_newest_few_not_the_whole_index(
        monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    """`zag events <TAB>` with a long history: 1 s and 150 MB per TAB with 80,000 sessions, when every
    row was read to offer the newest 100; `zag resume <TAB>` offered all 80,000."""
    import click

    from zag.cli import completions
    from zag.logs import index as index_module
    from zag.logs.index import _session_dict

    with Index() as index:
        _fill_index(index, 3_000, live=0)
        newest = [row["session_id"] for row in index.list_sessions()]
    built = [0]

    def counting(row: object) -> dict:
        built[0] += 1
        return _session_dict(row)

    monkeypatch.setattr(index_module, "_session_dict", counting)
    completer = {"events": completions.complete_recent_sessions,
                 "resume": completions.session_completer(states.DEAD, states.EXITED, limit=completions.COMPLETION_LIMIT,
                                                         takeover=True)}[command]
    context = click.Context(click.Command(command))
    offered = [item.value for item in completer(context, click.Argument(["session"]), "")]
    assert offered == newest[:completions.COMPLETION_LIMIT]
    assert built[0] <= completions.COMPLETION_LIMIT + 1
    prefix = newest[2_000][:3]
    offered = [item.value for item in completer(context, click.Argument(["session"]), prefix.upper() + " ")]
    matching = [session_id for session_id in newest if session_id.startswith(prefix)]
    assert offered == matching[:completions.COMPLETION_LIMIT]


@pytest.mark.parametrize("argv", [["sessions"], ["ps", "--all"]])
def test_table_listings_render_each_session_as_it_is_read(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> None:
    """`zag sessions` and `zag ps --all` (tables) held every session's row as a dict until the table was
    built: 270 MB and 230 MB with 80,000 sessions. Rows are now made into table text as they are read."""
    from click.testing import CliRunner

    from zag.cli.app import cli
    from zag.logs import index as index_module
    from zag.logs.index import _session_dict

    with Index() as index:
        _fill_index(index, 2_000, live=0)
    alive = {"now": 0, "most": 0}

    class TrackedRow(dict):
        def __init__(self, *args: object) -> None:
            super().__init__(*args)
            alive["now"] += 1
            alive["most"] = max(alive["most"], alive["now"])

        def __del__(self) -> None:
            alive["now"] -= 1

    monkeypatch.setattr(index_module, "_session_dict", lambda row: TrackedRow(_session_dict(row)))
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == 2_001
    assert alive["most"] <= 5, alive


def test_listen_latest_finds_the_session_without_sorting_every_session(tmp_path: Path) -> None:
    """`zag listen --latest` ordered every session by an expression (a full scan and sort: 30 ms with
    80,000 sessions, growing with history); each of its three questions now has an index to answer it."""
    import time

    work = {}
    for count in (200, 8_000):
        with Index(tmp_path / f"index-{count}.sqlite") as index:
            _fill_index(index, count, live=0)
            newest = index.list_sessions(limit=1)[0]["session_id"]
            with index.transaction() as conn:   # all imported but the newest; one live session, older
                conn.execute("UPDATE sessions SET backfilled = 1 WHERE session_id != ?", (newest,))
                conn.execute("UPDATE sessions SET state = ?, last_heartbeat = ?, heartbeat_secs = 10 "
                             "WHERE session_id = (SELECT session_id FROM sessions ORDER BY started_at LIMIT 1)",
                             (states.RUNNING, time.time()))
            live = index.list_sessions(states_in=[states.RUNNING])[0]["session_id"]
            found: list[str | None] = []
            work[count] = _steps(index, lambda: found.append(index.latest_session_id()))
            assert found == [live]
            with index.transaction() as conn:
                conn.execute("UPDATE sessions SET last_heartbeat = 0 WHERE session_id = ?", (live,))
            assert index.latest_session_id() == newest   # the newest zag ran (not imported)
    assert work[8_000] <= work[200] + 2, work


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def test_a_line_tens_of_megabytes_long_costs_what_the_same_bytes_in_short_lines_do(tmp_path: Path) -> None:
    """Reading lines joined a growing buffer with each 1 MB chunk: quadratic in a line's length (a 50 MB
    tool output took 0.3 CPU-s, a 200 MB one 5). Compared with the same bytes in 64 KB lines, by CPU time
    of this process (not wall time), with a margin for the pages a long line's buffers touch (linear)."""
    from zag.logs.follower import LogFollower
    from zag.logs.reader import iter_complete_lines

    size = 96 * 1024 * 1024
    one = tmp_path / "one-line.jsonl"
    one.write_bytes(_line(1, text="x" * size))
    many = tmp_path / "many-lines.jsonl"
    with open(many, "wb") as handle:
        for seq in range(1, size // (64 * 1024) + 1):
            handle.write(_line(seq, text="x" * (64 * 1024)))

    def cost(read: Callable[[Path], int], path: Path) -> tuple[float, int]:
        best = float("inf")
        for _ in range(2):
            started = _cpu_seconds()
            total = read(path)
            best = min(best, _cpu_seconds() - started)
        return best, total

    for read in (lambda path: sum(len(line) for _, line in iter_complete_lines(path)),
                 lambda path: sum(len(line) for line in LogFollower(path).read_lines())):
        long_cost, long_bytes = cost(read, one)
        short_cost, short_bytes = cost(read, many)
        assert long_bytes == one.stat().st_size and short_bytes == many.stat().st_size
        assert long_cost < 10 * short_cost + 0.5, (long_cost, short_cost)   # quadratic: 2.9 s against 0.02


def _write_calls() -> int:
    with open("/proc/self/io", "rb") as handle:
        for line in handle:
            if line.startswith(b"syscw:"):
                return int(line.split()[1])
    raise AssertionError("no syscw in /proc/self/io")


@pytest.mark.skipif(not os.path.exists("/proc/self/io"), reason="needs /proc/self/io")
@pytest.mark.parametrize("as_json", [True, False])
def test_listen_writes_a_backlog_in_blocks_not_a_write_per_event(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, as_json: bool) -> None:
    """`zag listen` flushed stdout after every event: a write(2) each, 3,000,000 of them (6 s of system
    time) for the backlog of a big log. It now flushes when it has caught up with the log."""
    import io
    import sys

    from zag.cli import listen

    path = tmp_path / "log.jsonl"
    _write_log(path, 5_000, pad=20)
    with Index() as index:
        sink = io.TextIOWrapper(open(os.devnull, "wb"), encoding="utf-8")  # noqa: SIM115 - closed below
        monkeypatch.setattr(sys, "stdout", sink)
        try:
            before = _write_calls()
            code = listen._follow(index, SID, path, as_json=as_json, since=0, follow=False)
            writes = _write_calls() - before
        finally:
            monkeypatch.undo()
            sink.close()
    assert code == 0
    assert writes < 500, writes


@pytest.mark.parametrize(("as_json", "types", "whole"), [(True, None, 0), (True, {"session_ended"}, 0),
                                                        (False, {"session_ended"}, 1)])
def test_events_decodes_whole_only_the_events_it_renders(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                          as_json: bool, types: set[str] | None, whole: int) -> None:
    """`zag events --json` (lines passed on unchanged) and `--type` (most lines not shown) decoded every
    event whole: 6.9 and 5.2 CPU-s on a 3,000,000-event log, 4.0 and 2.3 now that a line is read only as
    far as its type. A damaged line, or one that is not an object or not UTF-8, is still counted."""
    import io
    import sys

    from zag.cli import sessions

    path = tmp_path / "log.jsonl"
    odd = {3: b"[1]\n", 4: b'{"seq":4,"type":"user_message","text":"\xff"}\n', 5: b"not json\n",
           1_000: _line(1_000, type="session_ended")}
    _write_log(path, 1_000, pad=20, odd=odd)
    whole_decodes = [0]
    loads = codec.loads

    def counting(data: bytes) -> object:
        whole_decodes[0] += 1
        return loads(data)

    monkeypatch.setattr(codec, "loads", counting)
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", out)
    bad = sessions.print_events(path, frozenset(types) if types else None, as_json)
    shown = out.buffer.getvalue().splitlines()
    monkeypatch.undo()
    assert bad == 3
    assert len(shown) == (1 if types else 997)
    assert whole_decodes[0] == whole


def test_listen_json_decodes_whole_only_the_starts_it_follows_runs_by(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    """`zag listen --json` passes lines on unchanged, yet decoded each event whole (the follower: 1.75
    CPU-s for 805,741 events, 1.28 now): only a run's `session_started` is, the others as far as their
    seq and type. Damaged lines and the end of the session are handled as before."""
    import io
    import sys

    from zag.cli import listen

    path = tmp_path / "log.jsonl"
    odd = {1: _line(1, type="session_started", supervisor_pid=1), 3: b"[1]\n", 4: b"not json\n",
           500: _line(500, type="session_ended")}
    _write_log(path, 500, pad=20, odd=odd)
    whole_decodes = [0]
    loads = codec.loads

    def counting(data: bytes) -> object:
        whole_decodes[0] += 1
        return loads(data)

    with Index() as index:
        monkeypatch.setattr(codec, "loads", counting)
        out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
        monkeypatch.setattr(sys, "stdout", out)
        code = listen._follow(index, SID, path, as_json=True, since=0, follow=True)
        shown = out.buffer.getvalue()
        monkeypatch.undo()
    assert code == 0
    assert shown == b"".join(line for line in path.read_bytes().splitlines(keepends=True) if line.startswith(b'{"seq"'))
    assert whole_decodes[0] == 1
