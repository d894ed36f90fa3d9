"""Benchmark the goose provider: backfill read speed over a large `sessions.db`, live poll cost.

    /work/venv/bin/python bench/bench_goose_reader.py [--mb 300] [--sessions 200] [--keep]

Generates (in a temp dir, or bench/.data/goose-<mb>mb with --keep) a schema-13 goose database of about
`--mb` MB of message JSON, shaped like real sessions: tool results ~75 % of the bytes, assistant text,
tool calls, user turns. Prints:
- discover: seconds to list every session (one query per database);
- reader: seconds and MB/s to read every session through `DbSessionReader` (one process), events/s;
- backfill: `run_backfill` into a fresh ZAG_HOME (log writer, redaction, index; all cores): s, MB/s;
- the no-change re-run of backfill (fingerprints only);
- live: microseconds per `LiveSession.poll()` when nothing changed, and the CPU share of polling at the
  supervisor's idle rate (4 polls/s); lag of a new row (write → seen by the next poll);
- peak RSS of this process (data is generated in a child process, so the figure is the readers').
With `--single`, everything is in one session (the bounded-memory check for one huge transcript).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import json
import os
import random
import resource
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
T0 = 1762600000


def gooselib():
    spec = importlib.util.spec_from_file_location("gooselib", REPO / "tests" / "fixtures" / "goose" / "gooselib.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generate(path: Path, megabytes: int, sessions: int) -> int:
    """Fill a goose database; returns the bytes of message JSON written."""
    gl = gooselib()
    gl.GooseDb.create(path)
    rng = random.Random(7)
    words = ("the quick brown fox jumps over lazy dogs while goose edits files and runs tests " * 4).split()
    connection = sqlite3.connect(path)
    target = megabytes * 1024 * 1024
    written = 0
    per_session = target // sessions
    for number in range(sessions):
        session_id = f"2025{(number // 28) % 12 + 1:02d}{number % 28 + 1:02d}_{number + 1}"
        stamp = gl.sql_time(T0 + number * 3600)
        connection.execute(
            "INSERT INTO sessions (id, name, user_set_name, working_dir, created_at, updated_at, provider_name, "
            "model_config_json, accumulated_input_tokens, accumulated_output_tokens, accumulated_total_tokens) "
            "VALUES (?, ?, 1, ?, ?, ?, 'anthropic', ?, 123456, 7890, 131346)",
            (session_id, f"session {number}", f"/work/project{number % 17}", stamp, stamp,
             json.dumps({"model_name": "claude-sonnet-4-5"})))
        rows = []
        size = 0
        turn = 0
        while size < per_session:
            created = T0 + number * 3600 + turn
            text = " ".join(rng.choice(words) for _ in range(rng.randint(10, 80)))
            call_id = f"toolu_{number}_{turn}"
            output = "\n".join(" ".join(rng.choice(words) for _ in range(12)) for _ in range(rng.randint(20, 120)))
            messages = [
                ("user", [{"type": "text", "text": text}]),
                ("assistant", [{"type": "text", "text": text[: len(text) // 2]},
                               {"type": "toolRequest", "id": call_id, "toolCall": {"status": "success", "value": {
                                   "name": "developer__shell", "arguments": {"command": f"grep -rn {turn} src"}}}}]),
                ("user", [{"type": "toolResponse", "id": call_id, "toolResult": {"status": "success", "value": {
                    "content": [{"type": "text", "text": output, "annotations": {"audience": ["assistant"]}},
                                {"type": "text", "text": output, "annotations": {"audience": ["user"]}}],
                    "isError": False}}}]),
            ]
            for role, content in messages:
                encoded = json.dumps(content)
                size += len(encoded)
                rows.append((f"msg_{session_id}_{turn}_{role}", session_id, role, encoded, created,
                             '{"userVisible":true,"agentVisible":true}'))
            turn += 1
        connection.executemany(
            "INSERT INTO messages (message_id, session_id, role, content_json, created_timestamp, metadata_json) "
            "VALUES (?, ?, ?, ?, ?, ?)", rows)
        connection.commit()
        written += size
    connection.close()
    return written


def bench_reader(env: dict[str, str], total: int) -> None:
    from zag.providers.goose import PROVIDER

    started = time.perf_counter()
    sources = list(PROVIDER.discover(env))
    listed = time.perf_counter() - started
    print(f"discover: {len(sources)} sessions in {listed * 1000:.1f} ms")
    started = time.perf_counter()
    cpu = time.process_time()
    count = 0
    for source in sources:
        reader = PROVIDER.open_reader(source, None)
        for _ in reader.read():
            count += 1
        reader.close()
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    print(f"reader: {total / 1e6:.0f} MB of message JSON, {count} items in {seconds:.2f} s = "
          f"{total / 1e6 / seconds:.0f} MB/s wall, {total / 1e6 / cpu:.0f} MB/s of CPU time, "
          f"{count / seconds:,.0f} items/s (one process); {peak_rss()}")


def peak_rss() -> str:
    return f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"


def bench_backfill(env: dict[str, str], total: int) -> None:
    from zag.logs.backfill import run_backfill
    from zag.providers.goose import PROVIDER

    home = Path(tempfile.mkdtemp(prefix="zag-goose-bench-"))
    os.environ["ZAG_HOME"] = str(home)
    try:
        started = time.perf_counter()
        [summary] = run_backfill([PROVIDER], env=env)
        seconds = time.perf_counter() - started
        print(f"backfill: {summary.imported} sessions, {summary.events} events in {seconds:.2f} s = "
              f"{total / 1e6 / seconds:.0f} MB/s of message JSON (all cores)")
        started = time.perf_counter()
        [again] = run_backfill([PROVIDER], env=env)
        print(f"backfill re-run: {again.unchanged} unchanged in {(time.perf_counter() - started) * 1000:.0f} ms")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def bench_live(env: dict[str, str], db_path: Path) -> None:
    from zag.providers.base import LaunchContext
    from zag.providers.goose import PROVIDER

    gl = gooselib()
    database = gl.GooseDb(db_path)
    ctx = LaunchContext(cwd="/work/live", env=env, interactive=False, started_at=time.time(), zag_session_id="bench")
    plan = PROVIDER.plan_launch(["run", "-t", "x"], ctx)
    database.create_session("20991231_1", name=plan.notes["name"], working_dir="/work/live")
    live = PROVIDER.open_live(plan, ctx)
    live.poll()
    rounds = 2000
    cpu = time.process_time()
    started = time.perf_counter()
    for _ in range(rounds):
        live.poll()
    per_poll = (time.perf_counter() - started) / rounds
    cpu_per_poll = (time.process_time() - cpu) / rounds
    print(f"live idle poll: {per_poll * 1e6:.1f} µs wall, {cpu_per_poll * 1e6:.1f} µs CPU; at 4 polls/s "
          f"= {cpu_per_poll * 4 * 100:.4f} % of a core")
    lags = []
    for turn in range(50):
        database.add_message("20991231_1", "user", [gl.text(f"row {turn}")], created=int(time.time()))
        written = time.perf_counter()
        items = live.poll()
        lags.append(time.perf_counter() - written)
        assert any(isinstance(i, dict) and i.get("content") == f"row {turn}" for i in items)
    lags.sort()
    print(f"live read of a new row (poll after the write): p50 {lags[len(lags) // 2] * 1000:.2f} ms, "
          f"max {lags[-1] * 1000:.2f} ms (plus the supervisor's poll interval, 50-250 ms)")
    live.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=300)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--single", action="store_true", help="one session holding all the data")
    parser.add_argument("--keep", action="store_true", help="generate into bench/.data and reuse it")
    parser.add_argument("--generate-into", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sessions = 1 if args.single else args.sessions
    if args.generate_into:
        root = Path(args.generate_into)
        db_path = root / "data" / "sessions" / "sessions.db"
        started = time.perf_counter()
        total = generate(db_path, args.mb, sessions)
        (root / "bytes.txt").write_text(str(total))
        print(f"generated {total / 1e6:.0f} MB of message JSON in {sessions} session(s) "
              f"({db_path.stat().st_size / 1e6:.0f} MB database) in {time.perf_counter() - started:.1f} s")
        return
    label = f"goose-{args.mb}mb-{sessions}"
    root = BENCH / ".data" / label if args.keep else Path(tempfile.mkdtemp(prefix="goose-bench-"))
    db_path = root / "data" / "sessions" / "sessions.db"
    env = {"HOME": str(root / "home"), "GOOSE_PATH_ROOT": str(root)}
    marker = root / "bytes.txt"
    if not marker.exists():   # in a child process: this one's peak RSS stays the readers'
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, __file__, "--mb", str(args.mb), "--sessions", str(sessions),
                        "--generate-into", str(root)], check=True)
    total = int(marker.read_text())
    try:
        bench_reader(env, total)
        bench_backfill(env, total)
        bench_live(env, db_path)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
