"""Codex rollout reading speed: generate Codex-shaped rollouts (0.16x record shapes, tool output ≈ 75 % of
bytes), then time discovery and the reader (the code live tailing and backfill share) over all of them.

    /work/venv/bin/python bench/bench_codex_reader.py [--mb 300] [--files 600] [--keep DIR]

Prints MB/s of the reader alone (one process), the discovery time over the files, and the per-line cost.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from zag.providers.codex import PROVIDER


def _ts(base: float, offset: float) -> str:
    t = time.gmtime(base + offset)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int((base + offset) * 1000) % 1000:03d}Z"


def _rollout(thread_id: str, base: float, target_bytes: int, rng: random.Random) -> bytes:
    lines: list[bytes] = []
    t = 0.0
    size = 0

    def add(kind: str, payload: dict) -> None:
        nonlocal t, size
        t += 0.05
        record = {"timestamp": _ts(base, t), "ordinal": len(lines), "type": kind, "payload": payload}
        lines.append(json.dumps(record, separators=(",", ":")).encode() + b"\n")
        size += len(lines[-1])

    add("session_meta", {"id": thread_id, "session_id": thread_id, "cwd": "/srv/proj", "originator": "codex_cli_rs",
                         "cli_version": "0.169.0", "source": "cli", "model_provider": "openai",
                         "base_instructions": {"text": "You are Codex. " * 1500}, "history_mode": "paginated"})
    total = [0, 0, 0, 0]
    turn = 0
    while size < target_bytes:
        turn += 1
        add("event_msg", {"type": "task_started", "turn_id": f"t{turn}", "model_context_window": 258400})
        add("turn_context", {"turn_id": f"t{turn}", "cwd": "/srv/proj", "model": "gpt-6-sol",
                             "approval_policy": "never", "sandbox_policy": {"type": "workspace-write"}})
        prompt = f"please fix test {turn} " + "and explain " * rng.randint(1, 30)
        add("response_item", {"type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]})
        add("event_msg", {"type": "item_completed", "turn_id": f"t{turn}", "item": {
            "type": "UserMessage", "id": str(uuid.uuid4()), "content": [{"type": "text", "text": prompt}]}})
        for call in range(rng.randint(2, 6)):
            call_id = f"call_{turn}_{call}"
            add("response_item", {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Looking at it " * 8}],
                                  "encrypted_content": "gAAAA" + "x" * 800})
            add("response_item", {"type": "function_call", "name": "exec_command", "call_id": call_id,
                                  "arguments": json.dumps({"cmd": f"rg -n foo src/{call}", "workdir": "/srv/proj"})})
            output = "".join(f"src/file_{i}.py:{i}: def foo_{i}(): return {i} * bar\n" for i in range(rng.randint(20, 400)))
            add("response_item", {"type": "function_call_output", "call_id": call_id,
                                  "output": f"Chunk ID: 1\nWall time: 0.1 seconds\nProcess exited with code 0\nOutput:\n{output}"})
            total[0] += 4000
            total[1] += 3000
            total[3] += 200
            add("event_msg", {"type": "token_count", "info": {
                "total_token_usage": {"input_tokens": total[0], "cached_input_tokens": total[1], "output_tokens": total[3],
                                      "reasoning_output_tokens": 50, "total_tokens": total[0] + total[3]},
                "last_token_usage": {"input_tokens": 4000, "cached_input_tokens": 3000, "output_tokens": 200,
                                     "reasoning_output_tokens": 50, "total_tokens": 4200}, "model_context_window": 258400},
                "rate_limits": {"limit_id": "codex", "primary": {"used_percent": 12.0, "window_minutes": 300,
                                                                 "resets_at": 1795361528}}})
        answer = "Fixed it. " * rng.randint(5, 80)
        add("event_msg", {"type": "item_completed", "turn_id": f"t{turn}", "item": {
            "type": "AgentMessage", "id": f"msg_{turn}", "content": [{"type": "Text", "text": answer}]}})
        add("response_item", {"type": "message", "role": "assistant", "id": f"msg_{turn}",
                              "content": [{"type": "output_text", "text": answer}]})
        add("event_msg", {"type": "task_complete", "turn_id": f"t{turn}", "last_agent_message": answer})
    return b"".join(lines)


def generate(root: Path, megabytes: int, files: int) -> int:
    rng = random.Random(7)
    per_file = megabytes * 1024 * 1024 // files
    base = time.time() - 86400 * 3
    total = 0
    for index in range(files):
        thread_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        moment = time.localtime(base + index * 60)
        folder = root / "sessions" / time.strftime("%Y/%m/%d", moment)
        folder.mkdir(parents=True, exist_ok=True)
        data = _rollout(thread_id, base + index * 60, per_file, rng)
        (folder / f"rollout-{time.strftime('%Y-%m-%dT%H-%M-%S', moment)}-{thread_id}.jsonl").write_bytes(data)
        total += len(data)
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=300)
    parser.add_argument("--files", type=int, default=600)
    parser.add_argument("--keep", type=Path)
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="zag-codex-bench-"))
    try:
        if not (root / "sessions").exists():
            print(f"generating ~{args.mb} MB in {args.files} rollouts under {root} …", flush=True)
            generate(root, args.mb, args.files)
        env = {"CODEX_HOME": str(root), "HOME": str(root / "nohome")}
        start = time.perf_counter()
        sources = list(PROVIDER.discover(env))
        discover_secs = time.perf_counter() - start
        nbytes = sum(os.path.getsize(p) for s in sources for p in s.paths)
        for source in sources:  # warm the page cache
            for path in source.paths:
                path.read_bytes()
        best = best_cpu = None
        for _ in range(3):
            start = time.perf_counter()
            cpu_start = time.process_time()
            items = lines = 0
            for source in sources:
                reader = PROVIDER.open_reader(source, None)
                for _item in reader.read():
                    items += 1
                reader.cursor()
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - cpu_start
            best = elapsed if best is None else min(best, elapsed)
            best_cpu = cpu if best_cpu is None else min(best_cpu, cpu)
        for source in sources:
            lines += sum(1 for p in source.paths for _ in open(p, "rb"))
        print(f"rollouts: {len(sources)} files, {nbytes / 1e6:.1f} MB, {lines} lines, {items} items")
        print(f"discover: {discover_secs * 1000:.1f} ms")
        print(f"reader (1 process, best of 3): {best:.2f} s = {nbytes / 1e6 / best:.0f} MB/s, "
              f"{best / lines * 1e6:.2f} µs/line")
        print(f"reader CPU time (what it costs on an idle core): {best_cpu:.2f} s = {nbytes / 1e6 / best_cpu:.0f} MB/s; "
              f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
