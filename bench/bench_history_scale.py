"""The read commands a user runs daily, on a ZAG_HOME that looks like years of heavy use.

Builds (by real means) a home in a temporary folder, or reuses one given with --home: `zag backfill` of
--sessions small generated Claude transcripts (bench/gen_claude_corpus.py --small), of one transcript
with --tool-calls tool calls and three tool results of --long-line-mb MB each (one unified log of
millions of events with a few very long lines), and a few `zag run`s of the stand-in agent (one left
running). Then runs each command as a whole process, --runs times, and prints the median CPU time
(user + system, of the process and what it waited for: a machine shared with others disturbs it less
than wall time), wall time and peak RSS:

    /work/venv/bin/python bench/bench_history_scale.py [--sessions 20000] [--tool-calls 300000] [--runs 3]
    /work/venv/bin/python bench/bench_history_scale.py --home /tmp/zag-scale --keep   # build once, rerun

What to look for: listings within ~150 ms at 10,000 sessions and growing gently; `events`/`listen` peak
RSS set by the longest line, not by the log's size; `listen --since` near the end and completions about
as cheap as `zag --version`; `zag run` start-up the same with and without the history.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
ZAG = [sys.executable, "-m", "zag"]
STANDIN = REPO / "tests" / "agents" / "standin.py"


def tool_call_transcript(out: Path, calls: int, long_line_mb: int) -> None:
    """One Claude transcript: `calls` tool calls with one-line results, three of them `long_line_mb` MB."""
    session = "5ca1ab1e-0000-4000-8000-000000000001"
    cwd = "/home/dev/src/many-tools"
    folder = out / "projects" / re.sub(r"[^A-Za-z0-9]", "-", cwd)
    folder.mkdir(parents=True, exist_ok=True)
    long_at = {calls * part // 4 for part in (1, 2, 3)}
    parent = None
    with open(folder / f"{session}.jsonl", "w", buffering=1 << 20) as handle:
        for number in range(2 * calls + 1):
            uid = f"{number:08d}-0000-4000-8000-000000000000"
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(1_735_689_600 + number))
            record = {"parentUuid": parent, "isSidechain": False, "userType": "external", "cwd": cwd,
                      "sessionId": session, "version": "2.1.197", "uuid": uid, "timestamp": stamp}
            call = (number - 1) // 2
            if number == 0:
                record.update(type="user", message={"role": "user", "content": "run all the things"})
            elif number % 2:
                record.update(type="assistant", requestId=f"req_{call}", message={
                    "id": f"msg_{call}", "type": "message", "role": "assistant", "model": "claude-sonnet-5",
                    "content": [{"type": "tool_use", "id": f"toolu_{call}", "name": "Bash",
                                 "input": {"command": f"echo {call}"}}],
                    "usage": {"input_tokens": 3, "output_tokens": 10}})
            else:
                body = "x" * (long_line_mb << 20) if call in long_at else f"{call}\n"
                record.update(type="user", message={"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": f"toolu_{call}", "content": body}]})
            handle.write(json.dumps(record, separators=(",", ":")) + "\n")
            parent = uid


def build(home: Path, work: Path, sessions: int, calls: int, long_line_mb: int) -> None:
    env = {**os.environ, "ZAG_HOME": str(home), "HOME": str(work / "home")}
    (work / "home").mkdir(parents=True, exist_ok=True)
    small = work / "claude-small"
    print(f"generating {sessions} small sessions and one of {calls} tool calls …", flush=True)
    subprocess.run([sys.executable, str(BENCH / "gen_claude_corpus.py"), "--out", str(small),
                    "--sessions", str(sessions), "--small"], check=True, stdout=subprocess.DEVNULL)
    tool_call_transcript(work / "claude-calls", calls, long_line_mb)
    for corpus in (small, work / "claude-calls"):
        started = time.perf_counter()
        subprocess.run([*ZAG, "backfill", "--provider", "claude"], env={**env, "CLAUDE_CONFIG_DIR": str(corpus)},
                       check=True)
        print(f"backfilled {corpus.name} in {time.perf_counter() - started:.1f} s", flush=True)
    script = work / "standin.json"
    script.write_text(json.dumps({"runs": [[{"out": "hi\n"}, {"exit": 0}]]}))
    for number in range(5):
        subprocess.run([*ZAG, "run", "claude", "-p", f"task {number}"], env=_run_env(env, work, script), check=True,
                       stdout=subprocess.DEVNULL)


def _run_env(env: dict[str, str], work: Path, script: Path) -> dict[str, str]:
    return {**env, "ZAG_CLAUDE_BIN": str(STANDIN), "STANDIN_SCRIPT": str(script),
            "STANDIN_STATE": str(work / f"count-{random.getrandbits(32)}"),
            "CLAUDE_CONFIG_DIR": str(work / "claude-empty")}


TIME = shutil.which("time", path="/usr/bin:/bin")


def measure(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, float, float, int]:
    """(median CPU ms, median wall ms, max peak RSS MB, exit code); output read through a pipe and dropped.

    Peak RSS comes from /usr/bin/time: a child's own ru_maxrss counts this process's image, forked before
    the exec."""
    cpus, walls, rss, code = [], [], 0.0, 0
    report = Path(tempfile.mkstemp(prefix="zag-bench-time-")[1])
    try:
        for _ in range(runs):
            started = time.perf_counter()
            timed = [TIME, "-f", "%M", "-o", str(report), *argv] if TIME else argv
            proc = subprocess.Popen(timed, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            while proc.stdout.read(1 << 20):
                pass
            _, status, usage = os.wait4(proc.pid, 0)
            proc.stdout.close()
            walls.append((time.perf_counter() - started) * 1000)
            cpus.append((usage.ru_utime + usage.ru_stime) * 1000)
            peak = report.read_text().split()[-1] if TIME else str(usage.ru_maxrss)
            rss = max(rss, int(peak) / 1024)
            code = os.waitstatus_to_exitcode(status)
    finally:
        report.unlink(missing_ok=True)
    return statistics.median(cpus), statistics.median(walls), rss, code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument("--tool-calls", type=int, default=300_000)
    parser.add_argument("--long-line-mb", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--home", type=Path, help="the ZAG_HOME to build (if missing) and measure")
    parser.add_argument("--keep", action="store_true", help="keep what was built")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zag-bench-scale-"))
    home = args.home or work / "zag-home"
    live = None
    try:
        if not (home / "index.sqlite").exists():
            build(home, work, args.sessions, args.tool_calls, args.long_line_mb)
        env = {key: value for key, value in os.environ.items() if key not in ("PYTHONUNBUFFERED",)}
        env.update(ZAG_HOME=str(home), HOME=str(work / "home"))
        (work / "home").mkdir(exist_ok=True)
        from zag.logs.index import Index

        os.environ["ZAG_HOME"] = str(home)
        with Index() as index:
            rows = index.list_sessions()
        biggest = max(rows, key=lambda row: row["last_seq"])
        smallest = next(row for row in rows if row["backfilled"] and row["last_seq"] > 2)
        big, last = biggest["session_id"], biggest["last_seq"]
        log_mb = (home / "sessions" / f"{big}.jsonl").stat().st_size / 1e6
        script = work / "standin-live.json"
        script.write_text(json.dumps({"runs": [[{"out": "hi\n"}, {"sleep": 600}]]}))
        live = subprocess.Popen([*ZAG, "run", "claude", "-p", "stay"], env=_run_env(env, work, script),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(2)
        complete = {**env, "_ZAG_COMPLETE": "bash_complete", "COMP_CWORD": "2"}
        run_script = work / "standin-quick.json"
        run_script.write_text(json.dumps({"runs": [[{"out": "hi\n"}, {"exit": 0}]]}))
        empty_home = work / "empty-home"
        print(f"home: {home}: {len(rows)} sessions; biggest log {big[:8]}: {last} events, {log_mb:.0f} MB")
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)\n")
        cases = [
            ("zag --version", ["--version"], env),
            ("ps", ["ps"], env), ("ps --json", ["ps", "--json"], env), ("ps --all", ["ps", "--all"], env),
            ("ps --all --json", ["ps", "--all", "--json"], env), ("sessions", ["sessions"], env),
            ("sessions --json", ["sessions", "--json"], env), ("sessions --limit 20", ["sessions", "--limit", "20"], env),
            ("sessions --provider claude --json --limit 50", ["sessions", "--provider", "claude", "--json", "--limit", "50"], env),
            ("usage list", ["usage", "list"], env),
            ("events SMALL --json", ["events", smallest["session_id"], "--json"], env),
            ("events BIG --json", ["events", big, "--json"], env),
            ("events BIG --type session_ended", ["events", big, "--type", "session_ended"], env),
            ("listen BIG --no-follow --json", ["listen", big, "--no-follow", "--json"], env),
            (f"listen BIG --since {last - 10} --no-follow", ["listen", big, "--since", str(last - 10), "--no-follow"], env),
            ("listen --latest --no-follow", ["listen", "--latest", "--no-follow"], env),
            ("complete: zag events <TAB>", [], {**complete, "COMP_WORDS": "zag events "}),
            ("complete: zag resume <TAB>", [], {**complete, "COMP_WORDS": "zag resume "}),
            ("run (this history)", ["run", "claude", "-p", "x"], _run_env(env, work, run_script)),
            ("run (empty home)", ["run", "claude", "-p", "x"], {**_run_env(env, work, run_script), "ZAG_HOME": str(empty_home)}),
        ]
        print(f"{'command':<46} {'CPU ms':>8} {'wall ms':>9} {'peak RSS MB':>12}")
        for label, argv, case_env in cases:
            cpu, wall, rss, code = measure([*ZAG, *argv], case_env, args.runs)
            note = "" if code == 0 else f"  (exit {code})"
            print(f"{label:<46} {cpu:>8.0f} {wall:>9.0f} {rss:>12.1f}{note}", flush=True)
        cpu, wall, rss, code = measure([*ZAG, "reindex"], env, 1)
        print(f"{'reindex':<46} {cpu:>8.0f} {wall:>9.0f} {rss:>12.1f}")
    finally:
        if live is not None:
            os.killpg(live.pid, signal.SIGTERM)
            live.wait(30)
        if args.keep:
            print(f"kept {work} (and {home})")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
