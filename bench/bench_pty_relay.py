"""PTY relay throughput: 200 MB written by an agent, read through `zag run` in a PTY vs a plain PTY.

Plain: the agent's stdout is a PTY whose master this script reads. zag: `zag run claude` runs with a PTY
as its terminal (so it is interactive and gives the agent a PTY of its own); this script reads the outer
master. Both runs use the same stand-in agent writing the same bytes; the runs alternate and the medians
are compared. Goal: zag >= 0.8x the plain PTY.

    /work/venv/bin/python bench/bench_pty_relay.py [--mb 200] [--runs 3]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.helpers import standin_executable, write_script  # noqa: E402


def through_pty(argv: list[str], env: dict[str, str]) -> tuple[float, int, float]:
    """Run `argv` on a fresh PTY, read the master to EOF: (seconds, bytes read, child CPU seconds)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    total = 0
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every slave fd is closed
            break
        if not data:
            break
        total += len(data)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    os.close(master)
    code = os.waitstatus_to_exitcode(status)
    assert code == 0, f"{argv[0]} exited {code}"
    return elapsed, total, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    size = options.mb * 1000 * 1000
    zag = str(Path(sys.executable).with_name("zag"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        agent = standin_executable(root)
        script = write_script(root / "script.json", [{"out_bytes": size, "chunk": 65536}])
        env = dict(os.environ, ZAG_HOME=str(root / "home"), ZAG_CLAUDE_BIN=str(agent),
                   STANDIN_SCRIPT=str(script))
        plain, wrapped, plain_cpu, wrapped_cpu = [], [], [], []
        for _ in range(options.runs):
            seconds, received, cpu = through_pty([str(agent)], env)
            plain.append(seconds)
            plain_cpu.append(cpu)
            plain_bytes = received
            seconds, received, cpu = through_pty([zag, "run", "claude"], env)
            wrapped.append(seconds)
            wrapped_cpu.append(cpu)
            assert received == plain_bytes, f"zag delivered {received} bytes, the plain PTY {plain_bytes}"
    mb = plain_bytes / 1e6
    p, w = statistics.median(plain), statistics.median(wrapped)
    print(f"payload: {size / 1e6:.0f} MB written, {mb:.1f} MB read (the PTY adds \\r before \\n); "
          f"{options.runs} runs each, alternating")
    print(f"plain PTY:        median {p:6.2f} s  {mb / p:6.1f} MB/s   (agent CPU {statistics.median(plain_cpu):.2f} s)")
    print(f"zag run in a PTY: median {w:6.2f} s  {mb / w:6.1f} MB/s   "
          f"(zag + agent CPU {statistics.median(wrapped_cpu):.2f} s)")
    print(f"ratio zag/plain:  {p / w:.2f}x   (goal >= 0.8x)")
    extra_cpu = statistics.median(wrapped_cpu) - statistics.median(plain_cpu)
    print(f"zag relay CPU:    {extra_cpu:.2f} s = {extra_cpu * 1000 / mb:.1f} ms per MB")


if __name__ == "__main__":
    main()
