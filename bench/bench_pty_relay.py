"""PTY relay throughput: 200 MB written by an agent, read through `zag run` in a PTY vs a plain PTY.

Plain: the agent's stdout is a PTY whose master this script reads. zag: `zag run claude` runs with a PTY
as its terminal (so it is interactive and gives the agent a PTY of its own); this script reads the outer
master. Both runs use the same stand-in agent writing the same bytes; the runs alternate and the medians
are compared. Goal: zag >= 0.8x the plain PTY.

Two more variants: util-linux `script` (a C relay between two PTYs, the same shape as zag's: what a
relay costs at all), and "relay only", the same `zag run` with the output observers (the provider's
scanner and the usage-limit engine's screen) switched off in-process, to separate the relay's own cost
from theirs. The observers run on a thread of their own and may drop output they cannot keep up with
(for observation only: the terminal gets every byte); the last line says whether any run did (from
zag's diagnostics).

    /work/venv/bin/python bench/bench_pty_relay.py [--mb 200] [--runs 3]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
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

from bench_run_overhead import install_kind  # noqa: E402
from tests.integration.helpers import PYCACHE_PREFIX, standin_executable, write_script  # noqa: E402


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


def bench_env(**extra: str) -> dict[str, str]:
    """The environment of a real install: compiled modules cached (outside the checkout)."""
    env = dict(os.environ, PYTHONPYCACHEPREFIX=PYCACHE_PREFIX, **extra)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


RELAY_ONLY = (
    "import sys, zag.wrapper.supervisor as s; s.Supervisor._observer = lambda self, *args: None; "
    "from zag.cli import main; sys.argv[0] = 'zag'; main()"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--provider", default="claude")
    options = parser.parse_args()
    size = options.mb * 1000 * 1000
    zag = str(Path(sys.executable).with_name("zag"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        agent = standin_executable(root)
        script = write_script(root / "script.json", [{"out_bytes": size, "chunk": 65536}])
        env = bench_env(ZAG_HOME=str(root / "home"), STANDIN_SCRIPT=str(script))
        variants = {
            "plain PTY": [str(agent)],
            "util-linux script": ["script", "-q", "-e", "-c", str(agent), "/dev/null"],
            f"zag run {options.provider}": [zag, "run", options.provider],
            "zag, relay only": [sys.executable, "-c", RELAY_ONLY, "run", options.provider],
        }
        if shutil.which("script") is None:
            del variants["util-linux script"]
        env[f"ZAG_{options.provider.upper()}_BIN"] = str(agent)
        seconds: dict[str, list[float]] = {name: [] for name in variants}
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        received: dict[str, int] = {}
        for _ in range(options.runs):
            for name, argv in variants.items():
                elapsed, got, used = through_pty(argv, env)
                seconds[name].append(elapsed)
                cpu[name].append(used)
                received[name] = got
        dropped = _observation_drops(root / "home" / "zag.log")
    plain_bytes = received["plain PTY"]
    for name, got in received.items():
        assert got == plain_bytes, f"{name} delivered {got} bytes, the plain PTY {plain_bytes}"
    mb = plain_bytes / 1e6
    print(f"{zag}: {install_kind()}")
    print(f"payload: {size / 1e6:.0f} MB written, {mb:.1f} MB read; {options.runs} runs each, alternating; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    plain_time = statistics.median(seconds["plain PTY"])
    plain_cpu = statistics.median(cpu["plain PTY"])
    for name in variants:
        taken = statistics.median(seconds[name])
        used = statistics.median(cpu[name])
        line = f"{name:22s} median {taken:6.2f} s {mb / taken:6.1f} MB/s  ratio {plain_time / taken:4.2f}x"
        if name != "plain PTY":
            line += f"  relay CPU {(used - plain_cpu) * 1000 / mb:5.1f} ms/MB (start-up included)"
        print(line)
    print("goal: zag >= 0.8x the plain PTY")
    print(f"output the observers could not keep up with: {dropped[0]} runs, {dropped[1] / 1e6:.1f} MB in all"
          if dropped[0] else "output the observers could not keep up with: none (every byte was scanned)")


def _observation_drops(log: Path) -> tuple[int, int]:
    """(runs, bytes) that zag's diagnostics report as not observed."""
    runs = total = 0
    if log.exists():
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == "output_observation_incomplete" and record.get("final"):
                runs += 1
                total += int(record.get("dropped_bytes") or 0)
    return runs, total


if __name__ == "__main__":
    main()
