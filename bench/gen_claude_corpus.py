"""Generate a deterministic corpus of Claude-Code-shaped transcripts for the backfill benchmark.

Layout as Claude writes it under its config dir: `projects/<encoded-cwd>/<session-uuid>.jsonl`, plus
`<session-uuid>/subagents/agent-<hex>.jsonl` (+ `.meta.json`) for some sessions. The record shapes follow
the real ones in tests/fixtures/corpus/claude and corpus/real-cli/claude (Claude Code 2.1.x): queue
operations, user prompts, attachments, assistant messages written as several lines that repeat one
`message.id`/`requestId`/usage (thinking, text, tool_use), tool results carried twice (in
`message.content[].tool_result` and in `toolUseResult`, as Claude does), file-history snapshots,
`system/turn_duration`, `last-prompt`, the odd rate-limit API error. Tool results make up ~75 % of the
bytes. Same seed, same bytes.

    python bench/gen_claude_corpus.py --out bench/.data/claude-1g --bytes 1100000000
    python bench/gen_claude_corpus.py --out bench/.data/claude-10k --sessions 10000 --small
    python bench/gen_claude_corpus.py --out bench/.data/claude-single --bytes 1000000000 --single
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

VERSION = "2.1.197"
MODELS = ("claude-sonnet-5", "claude-opus-4-7", "claude-haiku-4-5")
TOOLS = ("Bash", "Read", "Grep", "Edit", "Write", "Glob", "WebFetch", "TodoWrite")
WORDS = (
    "the function returns a value when input is valid otherwise raises error we need to update config "
    "file test module import path parser token stream buffer index session cursor offset handler request "
    "response client server retry timeout limit schema record field value list map key string number"
).split()


class Corpus:
    """One generator: a seeded RNG plus pre-built text pools (so generating 1 GB takes seconds)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.blob = self._code_blob(3 * 1024 * 1024)
        self.projects = [f"/home/dev/src/{self._word()}-{self._word()}{i}" for i in range(40)]
        self.start = datetime(2026, 9, 1, 8, 0, tzinfo=timezone.utc)

    # -- text pools ---------------------------------------------------------------------------------
    def _word(self) -> str:
        return self.rng.choice(WORDS)

    def _sentence(self, words: int) -> str:
        return " ".join(self.rng.choice(WORDS) for _ in range(words)).capitalize() + "."

    def _code_blob(self, size: int) -> str:
        lines, total, n = [], 0, 0
        while total < size:
            n += 1
            indent = "    " * self.rng.randint(0, 3)
            kind = self.rng.random()
            if kind < 0.15:
                line = f"def {self._word()}_{self._word()}({self._word()}: str, {self._word()}: int = {n % 97}) -> bool:"
            elif kind < 0.3:
                line = f'{indent}# {self._sentence(self.rng.randint(4, 12))}'
            elif kind < 0.55:
                line = f"{indent}{self._word()} = {self._word()}.{self._word()}({self._word()}, {n})"
            elif kind < 0.7:
                line = f'{indent}if {self._word()} is None or len({self._word()}) > {n % 1000}:'
            else:
                line = f'{indent}return {{"{self._word()}": {self._word()}, "line": {n}, "ok": True}}'
            lines.append(line)
            total += len(line) + 1
        return "\n".join(lines)

    def code(self, size: int) -> str:
        start = self.rng.randrange(0, max(1, len(self.blob) - size))
        return self.blob[start:start + size]

    # -- records ------------------------------------------------------------------------------------
    def session(self, out: Path, target_bytes: int, index: int, *, small: bool = False,
                no_subagent: bool = False) -> int:
        """Write one session (and maybe a subagent); return the bytes written."""
        rng = self.rng
        session_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        cwd = rng.choice(self.projects)
        folder = out / "projects" / re.sub(r"[^A-Za-z0-9]", "-", cwd)
        folder.mkdir(parents=True, exist_ok=True)
        when = self.start + timedelta(minutes=index * 37 + rng.randint(0, 30))
        model = rng.choices(MODELS, weights=(6, 3, 1))[0]
        writer = _Transcript(self, folder / f"{session_id}.jsonl", session_id, cwd, when, model, sidechain=False)
        writer.tool_steps = (0, 1) if small else (1, 7)
        written = writer.run(target_bytes)
        if rng.random() < 0.12 and not small and not no_subagent:
            agent = f"a{rng.getrandbits(64):016x}"
            sub_dir = folder / session_id / "subagents"
            sub_dir.mkdir(parents=True, exist_ok=True)
            sub = _Transcript(self, sub_dir / f"agent-{agent}.jsonl", session_id, cwd, writer.now, model,
                              sidechain=True, agent_id=agent)
            written += sub.run(min(target_bytes // 4, 25_000_000))
            meta = {"agentType": "general-purpose", "description": sub.first_prompt[:60], "spawnDepth": 1}
            (sub_dir / f"agent-{agent}.meta.json").write_text(json.dumps(meta))
        return written


class _Transcript:
    """Writes one transcript file as it goes (a 1 GB session never sits in memory)."""

    def __init__(self, corpus: Corpus, path: Path, session_id: str, cwd: str, start: datetime, model: str, *,
                 sidechain: bool, agent_id: str | None = None) -> None:
        self.c = corpus
        self.path = path
        self.rng = corpus.rng
        self.session_id = session_id
        self.cwd = cwd
        self.now = start
        self.model = model
        self.sidechain = sidechain
        self.agent_id = agent_id
        self.handle: Any = None
        self.size = 0
        self.parent: str | None = None
        self.first_prompt = ""
        self.tool_steps = (1, 7)

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _tick(self, low: float, high: float) -> str:
        self.now += timedelta(seconds=self.rng.uniform(low, high))
        return self.now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.now.microsecond // 1000:03d}Z"

    def _emit(self, record: dict) -> None:
        line = (json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")
        self.handle.write(line)
        self.size += len(line)

    def _envelope(self, kind: str, **fields: object) -> dict:
        record_id = self._uuid()
        record = {"parentUuid": self.parent, "isSidechain": self.sidechain, "userType": "external",
                  "cwd": self.cwd, "sessionId": self.session_id, "version": VERSION, "gitBranch": "main",
                  "type": kind, **fields, "uuid": record_id, "timestamp": self._tick(0.05, 3.0),
                  "entrypoint": "cli"}
        if self.agent_id:
            record["agentId"] = self.agent_id
        self.parent = record_id
        return record

    def run(self, target_bytes: int) -> int:
        """Write the transcript up to about `target_bytes`; return the bytes written."""
        rng = self.rng
        with open(self.path, "wb", buffering=1 << 20) as self.handle:
            if not self.sidechain and rng.random() < 0.3:
                self._emit({"type": "summary", "summary": self.c._sentence(6), "leafUuid": self._uuid()})
            while self.size < target_bytes:
                self._turn()
            if not self.sidechain:
                self._emit({"type": "last-prompt", "lastPrompt": self.first_prompt[:80], "leafUuid": self.parent,
                            "sessionId": self.session_id})
        return self.size

    def _turn(self) -> None:
        rng = self.rng
        prompt = self.c._sentence(rng.randint(5, 60))
        self.first_prompt = self.first_prompt or prompt
        if not self.sidechain:
            stamp = self._tick(1, 120)
            self._emit({"type": "queue-operation", "operation": "enqueue", "timestamp": stamp,
                        "sessionId": self.session_id, "content": prompt})
            self._emit({"type": "queue-operation", "operation": "dequeue", "timestamp": stamp,
                        "sessionId": self.session_id})
        user = self._envelope("user", promptId=self._uuid(), message={"role": "user", "content": prompt},
                              permissionMode="default")
        self._emit(user)
        if not self.sidechain:
            self._emit({"type": "file-history-snapshot", "messageId": user["uuid"],
                        "snapshot": {"messageId": user["uuid"], "trackedFileBackups": {},
                                     "timestamp": user["timestamp"]}, "isSnapshotUpdate": False})
            if rng.random() < 0.2:
                self._emit(self._envelope("attachment", attachment={
                    "type": "hook_success", "hookName": "UserPromptSubmit", "toolUseID": self._uuid(),
                    "hookEvent": "UserPromptSubmit", "content": "", "stdout": "{}", "stderr": "", "exitCode": 0,
                    "command": "hooks/check.sh", "durationMs": rng.randint(3, 90)}))
        if rng.random() < 0.004:
            self._rate_limited()
            return
        for _ in range(rng.randint(*self.tool_steps)):
            self._assistant_step(tools=True)
        self._assistant_step(tools=False)
        self._emit(self._envelope("system", subtype="turn_duration", durationMs=rng.randint(2000, 300000),
                                  messageCount=rng.randint(2, 40), isMeta=False))

    def _usage(self) -> dict:
        rng = self.rng
        return {"input_tokens": rng.randint(1, 50), "cache_creation_input_tokens": rng.randint(0, 20000),
                "cache_read_input_tokens": rng.randint(0, 150000), "output_tokens": rng.randint(5, 4000),
                "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
                "service_tier": "standard",
                "cache_creation": {"ephemeral_1h_input_tokens": 0,
                                   "ephemeral_5m_input_tokens": rng.randint(0, 20000)},
                "inference_geo": "", "iterations": [], "speed": "standard"}

    def _assistant_step(self, *, tools: bool) -> None:
        """One API response, written as one line per content block with the same id and usage."""
        rng = self.rng
        message_id = f"msg_{rng.getrandbits(96):024x}"
        request_id = f"req_{rng.getrandbits(96):024x}"
        usage = self._usage()
        blocks: list[dict] = []
        if rng.random() < 0.5:
            blocks.append({"type": "thinking", "thinking": self.c._sentence(rng.randint(10, 120)),
                           "signature": f"{rng.getrandbits(256):064x}"})
        blocks.append({"type": "text", "text": self.c._sentence(rng.randint(5, 80))})
        uses = []
        if tools:
            for _ in range(rng.choices((1, 2, 3), weights=(7, 2, 1))[0]):
                name = rng.choice(TOOLS)
                tool_id = f"toolu_{rng.getrandbits(96):024x}"
                uses.append((name, tool_id))
                blocks.append({"type": "tool_use", "id": tool_id, "name": name, "input": self._tool_input(name)})
        for position, block in enumerate(blocks):
            last = position == len(blocks) - 1
            message = {"model": self.model, "id": message_id, "type": "message", "role": "assistant",
                       "content": [block], "stop_reason": ("tool_use" if tools else "end_turn") if last else None,
                       "stop_sequence": None, "usage": usage}
            self._emit(self._envelope("assistant", message=message, requestId=request_id))
        for name, tool_id in uses:
            self._tool_result(name, tool_id)

    def _tool_input(self, name: str) -> dict:
        rng = self.rng
        path = f"{self.cwd}/{rng.choice(WORDS)}/{rng.choice(WORDS)}.py"
        if name == "Bash":
            return {"command": f"pytest -q tests/{rng.choice(WORDS)} -k {rng.choice(WORDS)}",
                    "description": self.c._sentence(4)}
        if name in ("Read", "Write"):
            return {"file_path": path} if name == "Read" else {"file_path": path, "content": self.c.code(rng.randint(200, 3000))}
        if name == "Edit":
            return {"file_path": path, "old_string": self.c.code(rng.randint(40, 400)),
                    "new_string": self.c.code(rng.randint(40, 400))}
        if name in ("Grep", "Glob"):
            return {"pattern": rng.choice(WORDS), "path": self.cwd}
        if name == "WebFetch":
            return {"url": f"https://example.invalid/{rng.choice(WORDS)}", "prompt": self.c._sentence(8)}
        return {"todos": [{"content": self.c._sentence(5), "status": "pending", "activeForm": self.c._sentence(3)}]}

    def _tool_result(self, name: str, tool_id: str) -> None:
        rng = self.rng
        size = int(min(200_000, rng.lognormvariate(8.1, 1.1))) if self.tool_steps[0] else rng.randint(100, 600)
        output = self.c.code(size)
        is_error = rng.random() < 0.05
        if name == "Bash":
            structured = {"stdout": output, "stderr": "", "interrupted": False, "isImage": False}
        elif name == "Read":
            structured = {"type": "text", "file": {"filePath": f"{self.cwd}/{rng.choice(WORDS)}.py",
                                                   "content": output, "numLines": output.count("\n") + 1,
                                                   "startLine": 1, "totalLines": output.count("\n") + 1}}
        else:
            structured = {"type": "text", "content": output[: size // 3]}
        content = [{"tool_use_id": tool_id, "type": "tool_result", "content": output, "is_error": is_error}]
        self._emit(self._envelope("user", message={"role": "user", "content": content}, toolUseResult=structured,
                                  sourceToolAssistantUUID=self.parent))

    def _rate_limited(self) -> None:
        message = {"id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)), "container": None,
                   "model": "<synthetic>", "role": "assistant", "stop_reason": "stop_sequence",
                   "stop_sequence": "", "type": "message",
                   "usage": {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0,
                             "cache_read_input_tokens": 0},
                   "content": [{"type": "text", "text": "You've hit your session limit · resets 3pm (Europe/Berlin)"}]}
        self._emit(self._envelope("assistant", message=message, requestId=f"req_{self.rng.getrandbits(48):012x}",
                                  error="rate_limit", isApiErrorMessage=True, apiErrorStatus=429))


def generate(out: Path, *, total_bytes: int | None, sessions: int | None, small: bool, seed: int,
             single: bool = False) -> tuple[int, int]:
    """Write the corpus; return (files, bytes)."""
    corpus = Corpus(seed)
    written = files = 0
    index = 0
    if single:  # one session of `total_bytes` (the bounded-memory benchmark)
        written = corpus.session(out, total_bytes or 0, 0, no_subagent=True)
        total_bytes = sessions = None
    while (total_bytes is not None and written < total_bytes) or (sessions is not None and index < sessions):
        if small:
            target = int(corpus.rng.uniform(1_000, 4_000))
        else:
            target = int(min(25_000_000, corpus.rng.lognormvariate(12.6, 1.0)))
        written += corpus.session(out, target, index, small=small)
        index += 1
    files = sum(1 for _ in (out / "projects").rglob("*.jsonl"))
    return files, written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="corpus root (becomes CLAUDE_CONFIG_DIR)")
    parser.add_argument("--bytes", type=int, help="stop once this many bytes are written")
    parser.add_argument("--sessions", type=int, help="write exactly this many sessions")
    parser.add_argument("--small", action="store_true", help="small sessions (1-4 KB), for the re-run benchmark")
    parser.add_argument("--single", action="store_true", help="one session of --bytes (a huge transcript)")
    parser.add_argument("--seed", type=int, default=20261206)
    args = parser.parse_args(argv)
    if args.bytes is None and args.sessions is None:
        parser.error("give --bytes or --sessions")
    if (args.out / "projects").exists():
        parser.error(f"{args.out}/projects exists already; remove it first")
    started = time.monotonic()
    files, written = generate(args.out, total_bytes=args.bytes, sessions=args.sessions, small=args.small,
                              seed=args.seed, single=args.single)
    print(f"wrote {files} files, {written / 1e6:.1f} MB in {time.monotonic() - started:.1f} s to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
