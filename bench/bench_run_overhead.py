"""Overhead of `zag run`: wall time added to a quick agent run, and zag's peak memory; headless, or on a
terminal with `--pty` (interactive: the agent gets a PTY of its own, under zag's session holder).

Runs the stand-in agent (prints a line, exits) directly and through `zag run claude`, alternating, and
prints the medians. Goal: <= 150 ms added wall, <= 30 MiB RSS.

    /work/venv/bin/python bench/bench_run_overhead.py [--runs 20] [--pty]

Peak RSS comes from `wait4` (the larger of zag and its child; the agent alone is shown for reference).
The `zag` measured is the one next to the interpreter that runs this script; the first line says whether
that is an editable install (the dev venv: a finder maps the package to the checkout, ~20 ms of start-up
a regular install does not pay, in the agent's interpreter too) or a regular one, e.g.

    python3 -m venv /tmp/zagperf && /tmp/zagperf/bin/pip install -q <a copy of the checkout>
    /tmp/zagperf/bin/python bench/bench_run_overhead.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.helpers import PYCACHE_PREFIX, standin_executable, write_script  # noqa: E402


def timed(argv: list[str], env: dict[str, str], pty: bool = False) -> tuple[float, int, int, float]:
    """(wall seconds, exit code, peak RSS in KiB, CPU seconds) of one run, stdout/stderr to /dev/null, or
    with `pty` on a fresh terminal (zag interactive: the agent gets a PTY of its own)."""
    master = slave = None
    if pty:
        master, slave = os.openpty()
    streams = slave if slave is not None else subprocess.DEVNULL
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdin=streams, stdout=streams, stderr=streams,
                            start_new_session=pty)
    if slave is not None:
        os.close(slave)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if master is not None:
        os.close(master)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, proc.returncode, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def install_kind() -> str:
    """How the `zag` measured is installed: editable (which source) or regular (where)."""
    from importlib import metadata

    installed = [entry for entry in sys.path if entry and Path(entry).resolve() != REPO]  # not the checkout
    found = list(metadata.Distribution.discover(name="zag", path=installed))
    if not found:
        return "zag is not installed next to this interpreter"
    dist = found[0]
    try:
        direct = json.loads(dist.read_text("direct_url.json") or "{}")
    except ValueError:
        direct = {}
    source = direct.get("url", "?").removeprefix("file://")
    if direct.get("dir_info", {}).get("editable"):
        return f"editable install of {source}"
    return f"regular install in {dist.locate_file('')} (built from {source})"


def bench_env(**extra: str) -> dict[str, str]:
    """The environment of a real install: compiled modules cached (outside the checkout)."""
    env = dict(os.environ, PYTHONPYCACHEPREFIX=PYCACHE_PREFIX, **extra)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--pty", action="store_true", help="on a terminal: `zag run` is interactive")
    options = parser.parse_args()
    zag = str(Path(sys.executable).with_name("zag"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        agent = standin_executable(root)
        script = write_script(root / "script.json", [{"out": "done\n"}])
        env = bench_env(ZAG_HOME=str(root / "home"), ZAG_CLAUDE_BIN=str(agent),
                   STANDIN_SCRIPT=str(script))
        direct, wrapped, direct_rss, wrapped_rss, direct_cpu, wrapped_cpu = [], [], [], [], [], []
        for argv in ([str(agent)], [zag, "run", "claude"]):  # warm the page cache and bytecode cache
            timed(argv, env, options.pty)
        for _ in range(options.runs):
            wall, code, rss, cpu = timed([str(agent)], env, options.pty)
            assert code == 0, code
            direct.append(wall)
            direct_rss.append(rss)
            direct_cpu.append(cpu)
            wall, code, rss, cpu = timed([zag, "run", "claude"], env, options.pty)
            assert code == 0, code
            wrapped.append(wall)
            wrapped_rss.append(rss)
            wrapped_cpu.append(cpu)
        sessions = len(list((root / "home" / "sessions").glob("*.jsonl")))
    d, w = statistics.median(direct), statistics.median(wrapped)
    print(f"{zag}: {install_kind()}")
    print(f"{'on a terminal (interactive)' if options.pty else 'headless'}; runs: {options.runs} each (alternating); sessions written: {sessions}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"agent directly:        median {d * 1000:7.1f} ms   peak RSS {max(direct_rss) / 1024:5.1f} MiB")
    print(f"zag run <agent>:       median {w * 1000:7.1f} ms   peak RSS {max(wrapped_rss) / 1024:5.1f} MiB"
          " (max of zag and agent)")
    print(f"added wall (median):   {(w - d) * 1000:7.1f} ms   (goal <= 150 ms)")
    print(f"fastest runs:          agent {min(direct) * 1000:.1f} ms, zag {min(wrapped) * 1000:.1f} ms, "
          f"added {(min(wrapped) - min(direct)) * 1000:.1f} ms")
    zag_cpu = statistics.median(wrapped_cpu) - statistics.median(direct_cpu)
    print(f"zag's own CPU (median): {zag_cpu * 1000:6.1f} ms per run (the agent's subtracted)")


if __name__ == "__main__":
    main()
