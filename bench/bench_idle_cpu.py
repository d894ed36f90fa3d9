"""CPU used by zag while it supervises an idle agent (goal: <= 1 % of one core).

The stand-in agent sleeps; zag keeps heartbeating, polling the provider's live session and waiting on
the child and its output. zag's own CPU time (utime + stime from /proc, its threads included, the agent
excluded) is sampled after a warm-up and again `--seconds` later. Both modes are measured at once:
headless (pipes) and interactive (zag in a PTY).

    /work/venv/bin/python bench/bench_idle_cpu.py [--seconds 60] [--heartbeat 10] [--provider claude]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.helpers import PYCACHE_PREFIX, standin_executable, write_script  # noqa: E402

WARM_UP_SECS = 2.0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as handle:
        fields = handle.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_env(**extra: str) -> dict[str, str]:
    """The environment of a real install: compiled modules cached (outside the checkout)."""
    env = dict(os.environ, PYTHONPYCACHEPREFIX=PYCACHE_PREFIX, **extra)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--heartbeat", type=float, default=10.0, help="heartbeat_secs for the run")
    parser.add_argument("--provider", default="claude")
    options = parser.parse_args()
    zag = str(Path(sys.executable).with_name("zag"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home = root / "home"
        home.mkdir()
        (home / "config.toml").write_text(f"heartbeat_secs = {options.heartbeat}\n")
        agent = standin_executable(root)
        script = write_script(root / "script.json", [{"out": "ready\n"}, {"sleep": options.seconds + 30}])
        env = bench_env(ZAG_HOME=str(home), STANDIN_SCRIPT=str(script), HOME=str(root),
                   **{f"ZAG_{options.provider.upper()}_BIN": str(agent)})
        master, slave = os.openpty()
        runs = {
            "headless": subprocess.Popen([zag, "run", options.provider], env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
            "interactive": subprocess.Popen([zag, "run", options.provider], env=env, stdin=slave, stdout=slave,
                                            stderr=slave, start_new_session=True),
        }
        os.close(slave)
        try:
            time.sleep(WARM_UP_SECS)
            start = {name: cpu_seconds(proc.pid) for name, proc in runs.items()}
            began = time.monotonic()
            time.sleep(options.seconds)
            elapsed = time.monotonic() - began
            used = {name: cpu_seconds(proc.pid) - start[name] for name, proc in runs.items()}
        finally:
            for proc in runs.values():
                proc.terminate()
                proc.wait(timeout=30)
            os.close(master)
    print(f"idle supervision over {elapsed:.1f} s (heartbeat {options.heartbeat:g} s, provider {options.provider}, "
          f"clock tick {1000 / os.sysconf('SC_CLK_TCK'):.0f} ms, load average {os.getloadavg()[0]:.1f}):")
    for name, seconds in used.items():
        print(f"  {name:12s} zag CPU {seconds * 1000:7.1f} ms = {100 * seconds / elapsed:.3f} % of a core "
              "(goal <= 1 %)")


if __name__ == "__main__":
    main()
