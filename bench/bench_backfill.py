"""Benchmark `zag backfill` against ccusage on the same ≥ 1 GB corpus of Claude-shaped transcripts.

Prints, side by side in one run (warm page cache):
- `zag backfill --provider claude --json` into a fresh ZAG_HOME: seconds, MB/s, peak RSS (largest
  process, and the whole process tree sampled every 20 ms), events;
- the no-change re-run on that corpus, and on a 10,000-file corpus (goal ≤ 1 s);
- `ccusage@20.0.24 daily --json --offline` (npm, installed into bench/.data/ccusage) with
  CLAUDE_CONFIG_DIR at the same corpus, its runs alternating with zag's: seconds, MB/s, CPU, peak RSS;
  and the ratios by wall and by CPU time (goal ≥ 1.0×, ≥ 100 MB/s);
- the runner's own overhead: the same import with a trivial reader (one small event per line, no JSON
  parsing), which isolates discovery, the process pool, the log writer and the index from the parser.

    /work/venv/bin/python bench/bench_backfill.py [--repeat 3] [--skip-ccusage] [--skip-trivial]

The corpora are generated on first use by bench/gen_claude_corpus.py into bench/.data/ (git-ignored).
The runs' homes (and so the session logs) go to ~/.cache/zag-bench (--home-dir), are removed only when
the benchmark ends, and each run starts after a `sync`: on ext4, what an earlier run wrote or deleted
otherwise costs the next one CPU time that a single real backfill does not pay. The time to create a
file there is printed: on this kind of VM it is ~40 µs, or ~1.5 ms within ~30 s of deleting thousands
of files (wait a minute between two benchmark runs).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DATA = BENCH / ".data"
CORPUS_1G = DATA / "claude-1g"
CORPUS_10K = DATA / "claude-10k"
CORPUS_SINGLE = DATA / "claude-single"
CCUSAGE_DIR = DATA / "ccusage"
CCUSAGE_VERSION = "20.0.24"
ZAG = [sys.executable, "-m", "zag"]
# where the runs' HOME/ZAG_HOME go (--home-dir): in the user's home, as zag's own data (~/.local/share/zag).
# Each session's log is a new file, and on ext4 creating one in a crowded block group (here: /tmp, shared by
# every test run, or bench/.data next to the generated corpora) costs up to ~1.5 ms of kernel time against
# ~40 µs elsewhere: the figure printed tells which case a run is in.
HOMES = [Path.home() / ".cache" / "zag-bench"]
LEFTOVERS: list[Path] = []  # homes to remove at the end (see `discard`)


# --- set-up --------------------------------------------------------------------------------------
def ensure_corpus(out: Path, *args: str) -> None:
    if (out / "projects").exists():
        return
    print(f"generating {out} …", flush=True)
    subprocess.run([sys.executable, str(BENCH / "gen_claude_corpus.py"), "--out", str(out), *args], check=True)


def ensure_ccusage() -> Path | None:
    binary = CCUSAGE_DIR / "node_modules" / ".bin" / "ccusage"
    if binary.exists():
        return binary
    if not shutil.which("npm"):
        print("npm not found: ccusage skipped")
        return None
    print(f"installing ccusage@{CCUSAGE_VERSION} into {CCUSAGE_DIR} …", flush=True)
    CCUSAGE_DIR.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(CCUSAGE_DIR),
                           f"ccusage@{CCUSAGE_VERSION}"], capture_output=True, text=True, timeout=600)
    if done.returncode != 0 or not binary.exists():
        print(f"ccusage install failed: {done.stderr.strip()[-500:]}")
        return None
    return binary


def home_root() -> Path:
    HOMES[0].mkdir(parents=True, exist_ok=True)
    return HOMES[0]


def file_creation_cost(count: int = 300) -> float:
    """Kernel cost of creating a file where the logs go, in µs (ext4 on a crowded block group, e.g. a
    busy /tmp, can take ~1 ms per file where an uncrowded one takes ~30 µs: it weighs on the import)."""
    folder = Path(tempfile.mkdtemp(prefix="creat-", dir=home_root()))
    try:
        started = time.process_time()
        for number in range(count):
            os.close(os.open(folder / f"f{number}", os.O_WRONLY | os.O_CREAT, 0o600))
        return (time.process_time() - started) / count * 1e6
    finally:
        discard(folder)


def discard(folder: Path) -> None:
    """Removed when the benchmark ends, not now: for some seconds after many files are deleted, ext4
    skips their inodes one by one when it allocates new ones (~1.5 ms per created log instead of
    ~40 µs here), which would be charged to the next run."""
    LEFTOVERS.append(folder)


def corpus_bytes(root: Path) -> tuple[int, int]:
    files = list((root / "projects").rglob("*.jsonl"))
    return len(files), sum(path.stat().st_size for path in files)


def warm(root: Path) -> None:
    """Read the corpus into the page cache (before each run: this VM's memory manager pages out what
    has not been read for a minute, which would make a run read from disk)."""
    for path in (root / "projects").rglob("*.jsonl"):
        with open(path, "rb") as handle:
            while handle.read(1 << 20):
                pass


# --- measuring a command ---------------------------------------------------------------------------
class TreeRss:
    """Samples the summed RSS of a process and its descendants (Linux /proc), keeping the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_rss(self.pid))
            self._stop.wait(0.02)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def _tree_rss(root: int) -> int:
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


def measure(argv: list[str], env: Mapping[str, str]) -> dict[str, Any]:
    """Run a command; wall seconds, stdout, its peak RSS (largest of it and its descendants, from
    wait4) and the peak RSS of its whole process tree (sampled). The previous runs' writes are flushed
    first (`sync`): a gigabyte of logs still being written back (and a deleted home being discarded)
    takes CPU from the next run on a 2-core machine, which a single real run does not pay."""
    os.sync()
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sampler = TreeRss(proc.pid) if sys.platform.startswith("linux") else None
    captured: dict[str, bytes] = {}

    def drain(name: str, stream: Any) -> None:
        captured[name] = stream.read()

    readers = [threading.Thread(target=drain, args=(name, stream)) for name, stream in
               (("stdout", proc.stdout), ("stderr", proc.stderr))]
    for reader in readers:
        reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join()
    tree = sampler.stop() if sampler else 0
    stdout, stderr = captured.get("stdout", b""), captured.get("stderr", b"")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {stderr.decode(errors='replace')[-2000:]}")
    return {"seconds": seconds, "stdout": stdout, "stderr": stderr, "rss_single": usage.ru_maxrss * 1024,
            "rss_tree": tree, "cpu": usage.ru_utime + usage.ru_stime}


def base_env(corpus: Path, home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ZAG_", "CLAUDE_"))}
    env.update({"HOME": str(home), "CLAUDE_CONFIG_DIR": str(corpus), "ZAG_HOME": str(home / "zag"),
                "PYTHONPATH": str(REPO)})
    return env


# --- the figures -----------------------------------------------------------------------------------
def zag_import(corpus: Path, repeat: int, between: Any = None) -> tuple[list[dict[str, Any]], Path]:
    """`zag backfill` into fresh homes; the last home is kept for the re-run. `between()` runs before
    each import (ccusage: the two alternate, so a burst of load from elsewhere hits both alike)."""
    runs, home = [], None
    for _ in range(repeat):
        if between is not None:
            between()
        if home is not None:
            discard(home)
        home = Path(tempfile.mkdtemp(prefix="zag-bench-", dir=home_root()))
        warm(corpus)
        run = measure([*ZAG, "backfill", "--provider", "claude", "--json"], base_env(corpus, home))
        run["summary"] = json.loads(run["stdout"])["providers"][0]
        runs.append(run)
    assert home is not None
    return runs, home


def zag_rerun(corpus: Path, home: Path, repeat: int) -> list[dict[str, Any]]:
    runs = []
    for _ in range(repeat):
        warm(corpus)
        run = measure([*ZAG, "backfill", "--provider", "claude", "--json"], base_env(corpus, home))
        run["summary"] = json.loads(run["stdout"])["providers"][0]
        runs.append(run)
    return runs


def ccusage(binary: Path, corpus: Path, repeat: int) -> list[dict[str, Any]]:
    runs = []
    home = Path(tempfile.mkdtemp(prefix="ccusage-bench-", dir=home_root()))
    try:
        for _ in range(repeat):
            warm(corpus)
            run = measure([str(binary), "daily", "--json", "--offline"], base_env(corpus, home))
            json.loads(run["stdout"])  # it did produce its report
            runs.append(run)
    finally:
        discard(home)
    return runs


class TrivialReader:
    """One small event per line, no parsing: what the runner costs around any real parser."""

    def __init__(self, path: Path, cursor: Any) -> None:
        from zag.providers.tail import JsonlTail

        self.tail = JsonlTail(path, cursor)

    def read(self) -> Iterator[dict[str, Any]]:
        for line in self.tail.lines():
            yield {"type": "provider_status", "ts": "2026-09-01T08:00:00.000Z", "message": "line", "data": len(line)}

    def cursor(self) -> Any:
        return self.tail.cursor()

    def close(self) -> None:
        pass


class TrivialProvider:
    name = "claude"
    executable = "claude"
    install_hint = ""

    def discover(self, env: Mapping[str, str]) -> Iterator[Any]:
        from zag.providers.base import HistorySource
        from zag.providers.tail import fingerprint

        for path in sorted(Path(env["CLAUDE_CONFIG_DIR"], "projects").rglob("*.jsonl")):
            yield HistorySource(source_key=str(path), provider_session_id=path.stem, paths=(path,),
                                fingerprint=fingerprint((path,)))

    def open_reader(self, source: Any, cursor: Any) -> TrivialReader:
        return TrivialReader(source.paths[0], cursor)


def trivial_child(corpus: Path) -> None:
    """In this process: import `corpus` with the trivial reader into $ZAG_HOME; print the summary."""
    sys.path.insert(0, str(REPO))
    from zag.logs.backfill import run_backfill

    [summary] = run_backfill([TrivialProvider()], env={"CLAUDE_CONFIG_DIR": str(corpus)})
    print(json.dumps(summary.as_dict()))


def trivial_import(corpus: Path) -> dict[str, Any]:
    """The runner with the trivial reader (fresh ZAG_HOME, own process), then its no-change re-run."""
    home = Path(tempfile.mkdtemp(prefix="zag-bench-trivial-", dir=home_root()))
    try:
        argv = [sys.executable, str(Path(__file__).resolve()), "--trivial-child", str(corpus)]
        first = measure(argv, base_env(corpus, home))
        again = measure(argv, base_env(corpus, home))
        first["summary"] = json.loads(first["stdout"])
        again["summary"] = json.loads(again["stdout"])
        return {"first": first, "again": again}
    finally:
        discard(home)


def mb(nbytes: float) -> float:
    return nbytes / 1e6


def median(runs: list[dict[str, Any]], key: str = "seconds") -> float:
    return statistics.median(run[key] for run in runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median reported)")
    parser.add_argument("--skip-ccusage", action="store_true")
    parser.add_argument("--skip-trivial", action="store_true")
    parser.add_argument("--skip-10k", action="store_true")
    parser.add_argument("--skip-single", action="store_true")
    parser.add_argument("--home-dir", type=Path, default=HOMES[0],
                        help="where the runs' homes (and so the session logs) go; default ~/.cache/zag-bench")
    parser.add_argument("--trivial-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    HOMES[0] = args.home_dir.resolve()
    if args.trivial_child:
        trivial_child(args.trivial_child)
        return 0
    atexit.register(lambda: [shutil.rmtree(folder, ignore_errors=True) for folder in LEFTOVERS])

    ensure_corpus(CORPUS_1G, "--bytes", "1100000000")
    files, total = corpus_bytes(CORPUS_1G)
    print(f"corpus: {CORPUS_1G} — {files} files, {mb(total):.1f} MB; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} (figures are only comparable on an idle machine)")
    print(f"logs under {home_root()}: creating a file there costs {file_creation_cost():.0f} µs of kernel time")
    warm(CORPUS_1G)

    zag_rate = None
    binary = None if args.skip_ccusage else ensure_ccusage()
    runs_cc: list[dict[str, Any]] = []
    try:
        runs, home = zag_import(CORPUS_1G, args.repeat,
                                lambda: runs_cc.extend(ccusage(binary, CORPUS_1G, 1)) if binary else None)
    except RuntimeError as exc:
        print(f"zag backfill failed: {exc}")
        runs, home = [], None
    if runs:
        summary = runs[-1]["summary"]
        seconds = median(runs)
        zag_rate = mb(total) / seconds if summary["imported"] else None
        print(f"zag backfill (import):   {seconds:6.2f} s  {mb(total) / seconds:7.1f} MB/s  "
              f"cpu {median(runs, 'cpu'):.1f} s  "
              f"peak RSS {mb(max(r['rss_single'] for r in runs)):.0f} MB/process, "
              f"{mb(max(r['rss_tree'] for r in runs)):.0f} MB/tree  "
              f"(sessions seen {summary['sessions_seen']}, imported {summary['imported']}, "
              f"events {summary['events']}, warnings {summary['warnings']}; runs {[round(r['seconds'], 2) for r in runs]})")
        if summary["imported"] == 0:
            print("  ! the claude provider imported nothing: " + "; ".join(summary["warning_messages"][:3]))
        if runs_cc:
            cc_seconds = median(runs_cc)
            cc_rate = mb(total) / cc_seconds
            print(f"ccusage {CCUSAGE_VERSION} daily --json --offline: {cc_seconds:6.2f} s  {cc_rate:7.1f} MB/s  "
                  f"cpu {median(runs_cc, 'cpu'):.1f} s  "
                  f"peak RSS {mb(max(r['rss_tree'] for r in runs_cc)):.0f} MB  "
                  f"(runs {[round(r['seconds'], 2) for r in runs_cc]}, alternating with zag's)")
            if zag_rate and runs:
                print(f"ratio zag/ccusage: {zag_rate / cc_rate:.2f}× by wall time, "
                      f"{median(runs_cc, 'cpu') / median(runs, 'cpu'):.2f}× by CPU time  (goal ≥ 1.0×, and ≥ 100 MB/s)")
        rerun = zag_rerun(CORPUS_1G, home, args.repeat)
        print(f"zag backfill (no change, {files} files): {median(rerun):.3f} s  cpu {median(rerun, 'cpu'):.2f} s  "
              f"(imported {rerun[-1]['summary']['imported']}, unchanged {rerun[-1]['summary']['unchanged']})")
        discard(home)

    if not args.skip_10k:
        ensure_corpus(CORPUS_10K, "--sessions", "10000", "--small")
        files_10k, total_10k = corpus_bytes(CORPUS_10K)
        warm(CORPUS_10K)
        try:
            first, home = zag_import(CORPUS_10K, 1)
            rerun = zag_rerun(CORPUS_10K, home, args.repeat)
            print(f"zag backfill (no change, {files_10k} files, {mb(total_10k):.0f} MB): {median(rerun):.3f} s  "
                  f"cpu {median(rerun, 'cpu'):.2f} s  "
                  f"(first import {first[0]['seconds']:.1f} s, imported {first[0]['summary']['imported']}; "
                  f"re-run unchanged {rerun[-1]['summary']['unchanged']}, imported {rerun[-1]['summary']['imported']}) "
                  f"— goal ≤ 1 s")
            discard(home)
        except RuntimeError as exc:
            print(f"zag backfill on the 10k corpus failed: {exc}")


    if not args.skip_trivial:
        trivial = trivial_import(CORPUS_1G)
        first, again = trivial["first"], trivial["again"]
        print(f"runner overhead, trivial reader: {first['seconds']:.2f} s  {mb(total) / first['seconds']:.1f} MB/s  "
              f"cpu {first['cpu']:.1f} s  "
              f"({first['summary']['events']} events, imported {first['summary']['imported']}, "
              f"peak RSS {mb(first['rss_tree']):.0f} MB/tree); no-change re-run {again['seconds']:.3f} s")

    if not args.skip_single:
        ensure_corpus(CORPUS_SINGLE, "--bytes", "1000000000", "--single")
        _, single_total = corpus_bytes(CORPUS_SINGLE)
        warm(CORPUS_SINGLE)
        try:
            runs, home = zag_import(CORPUS_SINGLE, 1)
            run = runs[0]
            print(f"zag backfill, one {mb(single_total):.0f} MB transcript: {run['seconds']:.2f} s  cpu {run['cpu']:.1f} s  "
                  f"peak RSS {mb(run['rss_single']):.0f} MB/process, {mb(run['rss_tree']):.0f} MB/tree "
                  f"(imported {run['summary']['imported']}, events {run['summary']['events']}) — goal < 200 MB")
            discard(home)
        except RuntimeError as exc:
            print(f"zag backfill on the single transcript failed: {exc}")
        if not args.skip_trivial:
            trivial = trivial_import(CORPUS_SINGLE)["first"]
            print(f"  same with the trivial reader: {trivial['seconds']:.2f} s  cpu {trivial['cpu']:.1f} s  "
                  f"peak RSS {mb(trivial['rss_tree']):.0f} MB/tree ({trivial['summary']['events']} events)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
