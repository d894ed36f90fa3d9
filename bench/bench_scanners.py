"""Cost of each provider's output scanner per MB of agent output (the relay hands it every byte).

Feeds every scanner the same synthetic output in the chunk sizes the relay reads (4 KiB from a PTY,
64 KiB from a pipe) and prints CPU milliseconds per MB. Shapes:
- `short`: 80-column prose lines (an agent printing a file, a long answer);
- `long`: 64 KiB lines of filler (what `bench_pty_relay.py` writes);
- `tui`: ANSI-styled screen lines with cursor moves and colours (a busy TUI, on the PTY);
- `json`: the provider's stream-json lines of one session (`-p --output-format stream-json`), on stdout.
One limit line is planted at the end of each run and must be reported (a scanner that skips too much
fails loudly). Goal: <= 10 ms per MB of ordinary output.

    /work/venv/bin/python bench/bench_scanners.py [--mb 8] [--providers claude,gemini,goose,codex]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from zag import providers  # noqa: E402
from zag.providers.base import LaunchContext, LimitSignal  # noqa: E402

WORDS = ("the quick brown fox jumps over a lazy dog while agents write code and tests run green "
         "for every module in this repository so nothing here is special at all ").split()
SESSION = "5d1b8c7e-3f0a-4b7e-9c11-2a6f4d8e9b10"
# A wording every scanner reports on stderr / the PTY (claude's, gemini's, goose's, codex's own).
LIMIT_LINES = {
    "claude": "You've hit your session limit · resets 3pm (UTC)",
    "gemini": "TerminalQuotaError: You have exhausted your daily quota on this model.",
    "goose": "Ran into this error: Rate limit exceeded: too many requests.",
    "codex": "ERROR: You've hit your usage limit. Try again later.",
}


def prose_lines(count: int, eol: bytes, start: int = 0) -> list[bytes]:
    lines = []
    for index in range(start, start + count):
        words = [WORDS[(index * 7 + k) % len(WORDS)] for k in range(14)]
        lines.append(" ".join(words)[:78].encode() + eol)
    return lines


def json_lines(provider_name: str, count: int, eol: bytes) -> list[bytes]:
    """The provider's own stream-json: a head line naming the session, then assistant messages."""
    head: dict[str, object] = {
        "claude": {"type": "system", "subtype": "init", "session_id": SESSION, "tools": []},
        "gemini": {"type": "init", "timestamp": "2026-11-22T14:44:00.000Z", "session_id": SESSION,
                   "model": "gemini-2.5-pro"},
        "goose": {"type": "message", "message": {"role": "user", "content": [{"type": "text", "text": "hi"}]}},
        "codex": {"type": "thread.started", "thread_id": SESSION},
    }[provider_name]
    lines = [head]
    for index, line in enumerate(prose_lines(count, b"")):
        text = line.decode() * 2
        lines.append({
            "claude": {"type": "assistant", "message": {"id": f"msg_{index}", "role": "assistant",
                       "content": [{"type": "text", "text": text}]}, "parent_tool_use_id": None,
                       "session_id": SESSION, "uuid": f"u-{index}"},
            "gemini": {"type": "message", "timestamp": "2026-11-22T14:44:01.000Z", "role": "assistant",
                       "content": text, "delta": True},
            "goose": {"type": "message", "message": {"id": f"m{index}", "role": "assistant", "created": 1763800000,
                      "content": [{"type": "text", "text": text}]}},
            "codex": {"type": "item.completed", "item": {"id": f"item_{index}", "type": "agent_message",
                      "text": text}},
        }[provider_name])
    return [json.dumps(record, separators=(",", ":")).encode() + eol for record in lines]


def shape(name: str, size: int, eol: bytes, provider_name: str) -> bytes:
    if name == "short":
        line_len = 80
        return b"".join(prose_lines(size // line_len + 1, eol))[:size]
    if name == "long":
        block = (b"0123456789abcdef" * 4096)[:65535] + eol
        return (block * (size // len(block) + 1))[:size]
    if name == "tui":
        out = []
        for index, line in enumerate(prose_lines(size // 120 + 1, b"")):
            words = line.split(b" ")
            styled = b"\x1b[38;2;215;119;87m\xe2\x97\x8f\x1b[39m " + b"\x1b[1G".join(
                b"\x1b[1m" + w + b"\x1b[22m" if k % 3 == 0 else w for k, w in enumerate(words))
            out.append(b"\x1b[2K" + styled + (b"\x1b[1A" if index % 5 == 0 else b"") + eol)
        return b"".join(out)[:size]
    if name == "json":
        return b"".join(json_lines(provider_name, size // 300 + 1, eol))[:size]
    raise ValueError(name)


def run(provider_name: str, stream: str, data: bytes, chunk: int, eol: bytes) -> tuple[float, int]:
    """(CPU seconds, limit signals seen) for feeding `data` then one limit line."""
    ctx = LaunchContext(cwd="/tmp", env={}, interactive=stream == "pty", started_at=time.time(),
                        zag_session_id="bench")
    scanner = providers.get(provider_name).output_scanner(ctx)
    # end on a line boundary, so the limit line starts a line of its own
    data = data[:data.rfind(eol) + len(eol)] if eol in data else data + eol
    tail = LIMIT_LINES[provider_name].encode() + eol
    signals = 0
    view = memoryview(data)
    started = time.process_time()
    for offset in range(0, len(data), chunk):
        scanner.feed(stream, bytes(view[offset:offset + chunk]))
    elapsed = time.process_time() - started
    for item in scanner.feed(stream, tail) + scanner.finish():
        signals += isinstance(item, LimitSignal)
    return elapsed, signals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=8.0)
    parser.add_argument("--providers", default="claude,gemini,goose,codex")
    options = parser.parse_args()
    size = int(options.mb * 1_000_000)
    cases = [("short", "pty", 4096, b"\r\n"), ("long", "pty", 4096, b"\r\n"), ("tui", "pty", 4096, b"\r\n"),
             ("short", "stdout", 65536, b"\n"), ("short", "stderr", 65536, b"\n"), ("json", "stdout", 65536, b"\n")]
    print(f"{options.mb:g} MB per case; CPU ms per MB (goal <= 10); load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    print(f"{'provider':8s} " + " ".join(f"{name + '/' + stream:>13s}" for name, stream, _, _ in cases))
    missed = []
    for provider_name in options.providers.split(","):
        cells = []
        for name, stream, chunk, eol in cases:
            data = shape(name, size, eol, provider_name)
            seconds, signals = run(provider_name, stream, data, chunk, eol)
            if stream != "stdout" and signals == 0:  # stdout text is the answer for some agents
                missed.append(f"{provider_name} {name}/{stream}")
            cells.append(f"{seconds * 1000 / (len(data) / 1e6):13.1f}")
        print(f"{provider_name:8s} " + " ".join(cells))
    if missed:
        print("MISSED the planted limit line: " + ", ".join(missed))
        sys.exit(1)


if __name__ == "__main__":
    main()
