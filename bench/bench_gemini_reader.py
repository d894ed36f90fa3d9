"""Gemini chat reading speed and memory: generate gemini-0.61-shaped JSONL sessions (a message re-appended
as it grows: text, tool call scheduled, results, tokens; tool output ≈ 75 % of bytes), then time discovery
and the reader (the code live tailing and backfill share), the cost of an idle live poll, and the peak RSS
of reading one big transcript in a fresh process.

    /work/venv/bin/python bench/bench_gemini_reader.py [--mb 300] [--files 300] [--single-mb 1024] [--keep DIR]

Prints MB/s of the reader alone (one process), discovery time, µs per idle poll, and max RSS.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from zag.providers.base import LaunchContext, LaunchPlan
from zag.providers.gemini import PROVIDER


def _ts(base: float, offset: float) -> str:
    t = time.gmtime(base + offset)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int((base + offset) * 1000) % 1000:03d}Z"


def write_session(path: Path, session_id: str, base: float, target_bytes: int, rng: random.Random) -> int:
    size = 0
    t = 0.0
    with open(path, "wb") as handle:
        def add(record: dict) -> None:
            nonlocal size, t
            t += 0.05
            line = json.dumps(record, separators=(",", ":")).encode() + b"\n"
            handle.write(line)
            size += len(line)

        add({"sessionId": session_id, "projectHash": "ab" * 32, "startTime": _ts(base, 0), "lastUpdated": _ts(base, 0),
             "kind": "main"})
        add({"$set": {"messages": [{"id": "ctx", "timestamp": _ts(base, 0), "type": "user",
                                    "content": [{"text": "<session_context>\n" + "dir/file.py\n" * 150}]}]}})
        turn = 0
        while size < target_bytes:
            turn += 1
            add({"id": f"u{turn}", "timestamp": _ts(base, t), "type": "user",
                 "content": [{"text": f"please fix test {turn} " + "and explain " * rng.randint(1, 30)}]})
            add({"$set": {"lastUpdated": _ts(base, t)}})
            message = {"id": f"g{turn}", "timestamp": _ts(base, t), "type": "gemini",
                       "content": "Let me look. " * rng.randint(1, 20), "model": "gemini-3.1-pro-preview",
                       "thoughts": [{"subject": "Plan", "description": "Looking at it " * 8, "timestamp": _ts(base, t)}],
                       "tokens": {"input": 12000, "output": 300, "cached": 9000, "thoughts": 120, "tool": 0,
                                  "total": 12420}}
            add(message)
            calls = []
            for call in range(rng.randint(2, 5)):
                call_id = f"run_shell_command_{turn}_{call}"
                scheduled = {"id": call_id, "name": "run_shell_command", "args": {"command": f"rg -n foo src/{call}"},
                             "status": "executing", "timestamp": _ts(base, t), "displayName": "Shell"}
                calls.append(scheduled)
                add({**message, "toolCalls": calls})
                output = "src/file.py:12: foo = bar  # " + "x" * rng.randint(2000, 12000)
                calls[-1] = {**scheduled, "status": "success",
                             "result": [{"functionResponse": {"id": call_id, "name": "run_shell_command",
                                                              "response": {"output": output}}}],
                             "resultDisplay": output[:200]}
                add({**message, "toolCalls": calls})
            add({"$set": {"lastUpdated": _ts(base, t)}})
    return size


def corpus(root: Path, total_mb: int, files: int) -> tuple[dict[str, str], int]:
    rng = random.Random(7)
    chats = root / "home" / ".gemini" / "tmp" / "proj" / "chats"
    chats.mkdir(parents=True)
    (root / "home" / ".gemini" / "projects.json").write_text(json.dumps({"projects": {"/srv/proj": "proj"}}))
    per_file = total_mb * 1024 * 1024 // files
    total = 0
    for index in range(files):
        session_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        name = f"session-2026-11-{1 + index % 28:02d}T{index % 24:02d}-{index % 60:02d}-{session_id[:8]}.jsonl"
        total += write_session(chats / name, session_id, 1_790_000_000 + index * 3600, per_file, rng)
    return {"HOME": str(root / "home")}, total


def read_everything(env: dict[str, str]) -> tuple[int, float, float]:
    started = time.perf_counter()
    sources = list(PROVIDER.discover(env))
    discovered = time.perf_counter() - started
    events = 0
    started = time.perf_counter()
    for source in sources:
        reader = PROVIDER.open_reader(source, None)
        for _ in reader.read():
            events += 1
        reader.cursor()
    return events, discovered, time.perf_counter() - started


def idle_poll_cost(env: dict[str, str], root: Path) -> float:
    [source] = [s for s in PROVIDER.discover(env)][:1]
    ctx = LaunchContext(cwd="/srv/proj", env=env, interactive=False, started_at=0.0, zag_session_id="bench")
    live = PROVIDER.open_live(LaunchPlan(args=[], provider_session_id=source.provider_session_id), ctx)
    while live.poll():
        pass
    rounds = 20000
    started = time.perf_counter()
    for _ in range(rounds):
        live.poll()
    return (time.perf_counter() - started) / rounds


def single_rss(mb: int, root: Path) -> None:
    path = root / "single" / "home" / ".gemini" / "tmp" / "proj" / "chats"
    path.mkdir(parents=True)
    session_id = str(uuid.uuid4())
    target = path / f"session-2026-11-22T14-44-{session_id[:8]}.jsonl"
    size = write_session(target, session_id, 1_790_000_000, mb * 1024 * 1024, random.Random(3))
    code = ("import resource, sys, time\nfrom pathlib import Path\nfrom zag.providers.gemini.reader import GeminiReader\n"
            f"r = GeminiReader({session_id!r}, [Path({str(target)!r})])\nn = 0\nt = time.perf_counter()\n"
            "for _ in r.read(): n += 1\nd = time.perf_counter() - t\nlen(str(r.cursor()))\n"
            "print(n, d, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    events, seconds, rss_kb = int(out[0]), float(out[1]), int(out[2])
    print(f"single transcript: {size / 1e6:.0f} MB, {events} events in {seconds:.2f} s "
          f"({size / 1e6 / seconds:.0f} MB/s), max RSS {rss_kb / 1024:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=300)
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--single-mb", type=int, default=1024)
    parser.add_argument("--keep")
    args = parser.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="zag-gemini-bench-"))
    try:
        env, size = corpus(root / "many", args.mb, args.files)
        read_everything(env)   # warm the page cache
        events, discovered, seconds = read_everything(env)
        print(f"corpus: {args.files} sessions, {size / 1e6:.0f} MB")
        print(f"discovery: {discovered * 1000:.0f} ms; reader: {events} events in {seconds:.2f} s = "
              f"{size / 1e6 / seconds:.0f} MB/s (one process)")
        print(f"idle live poll: {idle_poll_cost(env, root) * 1e6:.1f} µs")
        if args.single_mb:
            single_rss(args.single_mb, root)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
