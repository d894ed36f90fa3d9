"""The usage-limit engine's costs: what a supervisor waiting for a reset burns, and what the engine adds
to an interactive agent's output path.

1. A waiting `zag run`: the stand-in hits a limit whose reset is an hour away and exits; zag waits
   (heartbeat every 10 s, the index polled about once a second for `zag usage cancel`). Its CPU time is
   sampled from /proc over `--wait-secs` of waiting and reported per minute; then the wait is cancelled
   with `zag usage cancel` and the time until zag exits is reported.
2. In-process: the screen buffer the engine keeps of PTY output (ms of CPU per MB, next to the claude
   output scanner on the same bytes), and the incident book (signals per second).

    /work/venv/bin/python bench/bench_limits.py [--wait-secs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.helpers import PYCACHE_PREFIX, standin_executable, write_config, write_script  # noqa: E402


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as handle:
        fields = handle.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def waiting_cost(wait_secs: float) -> None:
    zag = [sys.executable, "-m", "zag"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        agent = standin_executable(root)
        reset = int(time.time()) + 3600
        limit = {"type": "rate_limit_event", "rate_limit_info": {"status": "rejected", "resetsAt": reset,
                                                                 "rateLimitType": "five_hour"}}
        script = write_script(root / "script.json", [{"out": json.dumps(limit) + "\n"}, {"exit": 1}])
        write_config(root / "home", "heartbeat_secs = 10\n")
        env = dict(os.environ, ZAG_HOME=str(root / "home"), ZAG_CLAUDE_BIN=str(agent), STANDIN_SCRIPT=str(script),
                   PYTHONPYCACHEPREFIX=PYCACHE_PREFIX)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        proc = subprocess.Popen([*zag, "run", "claude", "-p", "x", "--output-format", "stream-json"], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            incident = None
            deadline = time.monotonic() + 60
            while incident is None and time.monotonic() < deadline:
                listed = subprocess.run([*zag, "usage", "list", "--json"], env=env, capture_output=True, check=True)
                rows = json.loads(listed.stdout)
                incident = rows[0]["incident_id"] if rows else None
                time.sleep(0.1)
            assert incident is not None, "zag never scheduled the resume"
            time.sleep(2)  # past the announcement
            before = cpu_seconds(proc.pid)
            time.sleep(wait_secs)
            used = cpu_seconds(proc.pid) - before
            cancelled_at = time.monotonic()
            subprocess.run([*zag, "usage", "cancel", incident], env=env, capture_output=True, check=True)
            proc.wait(timeout=30)
            stop = time.monotonic() - cancelled_at
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    print(f"waiting zag run: {used * 1000 / wait_secs * 60:.1f} ms CPU per minute of waiting "
          f"(sampled over {wait_secs:.0f} s); exited {stop:.2f} s after `zag usage cancel` returned")


def engine_costs() -> None:
    from zag.providers.base import LaunchContext, LimitSignal
    from zag.providers.claude.scanner import ClaudeOutputScanner
    from zag.wrapper.incidents import IncidentBook
    from zag.wrapper.screen import Screen

    chunk = (b"\x1b[2K\x1b[1G  some agent output with colours \x1b[32mok\x1b[0m " * 60)[:4095] + b"\n"
    count = 25_000
    megabytes = count * len(chunk) / 1e6
    screen = Screen()
    start = time.process_time()
    for _ in range(count):
        screen.feed(chunk)
    feed = time.process_time() - start
    start = time.process_time()
    screen.text()
    text = time.process_time() - start
    scanner = ClaudeOutputScanner(LaunchContext(cwd="/", env={}, interactive=True, started_at=0.0,
                                                zag_session_id="bench"))
    start = time.process_time()
    for _ in range(count):
        scanner.feed("pty", chunk)
    scan = time.process_time() - start
    print(f"screen buffer: {feed * 1000 / megabytes:.3f} ms CPU/MB of PTY output "
          f"(claude scanner on the same bytes: {scan * 1000 / megabytes:.2f} ms/MB); "
          f"screen text on demand: {text * 1000:.2f} ms")
    book = IncidentBook("claude", interactive=True)
    signal = LimitSignal("claude", "pty", "You've hit your session limit · resets 3pm", structured=False)
    signals = 100_000
    start = time.process_time()
    for n in range(signals):
        book.add(signal, 1_800_000_000.0 + n * 0.001)
    added = time.process_time() - start
    print(f"incident book: {signals / added:,.0f} signals/s merged into one incident")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wait-secs", type=float, default=20.0)
    options = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    engine_costs()
    waiting_cost(options.wait_secs)


if __name__ == "__main__":
    main()
