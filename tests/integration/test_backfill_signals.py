"""`zag backfill` stopped by SIGTERM/SIGHUP or killed (SIGKILL): no worker survives it (none keeps the
lock), what was imported is kept, and the next run plus `zag reindex` give the same sessions and
events as an uninterrupted import. Real processes over a generated Claude corpus (bench generator)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
AGENT_HOME_VARS = ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "CODEX_SQLITE_HOME", "GEMINI_CLI_HOME", "GOOSE_PATH_ROOT",
                   "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME")
# `zag backfill` with each job slowed down after its log is written (so it can be stopped midway, and
# mostly in the window between a log's rename and its index row); each finished job is noted in a file
THROTTLED = """
import pathlib, sys, time
from zag.logs import backfill
real, marker = backfill.import_source, pathlib.Path(sys.argv[1])
def slow(provider, job):
    result = real(provider, job)
    with open(marker, "a") as out:
        out.write(job.source.source_key + "\\n")
    time.sleep(0.05)
    return result
backfill.import_source = slow
backfill.default_jobs = lambda: 2  # two workers however many cores this process may use (taskset, 1 CPU)
from zag.cli import main
main(["backfill", "--json"])
"""
WAIT_SECS = 30.0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("agents")
    subprocess.run([sys.executable, str(REPO / "bench" / "gen_claude_corpus.py"), "--out", str(home / ".claude"),
                    "--bytes", "30000000"], check=True, capture_output=True, timeout=120)
    return home


def _env(home: Path, zag_home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in AGENT_HOME_VARS}
    env.update(HOME=str(home), ZAG_HOME=str(zag_home))
    return env


def _zag(home: Path, zag_home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "zag", *args], env=_env(home, zag_home), capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL, cwd=home)


def _children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for(check: object, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECS
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _result(zag_home: Path) -> tuple[Counter[tuple[str, int]], int]:
    """(provider session id, last seq) of every indexed session, and the number of logs on disk."""
    with sqlite3.connect(zag_home / "index.sqlite") as conn:
        rows = Counter(conn.execute("SELECT provider_session_id, last_seq FROM sessions").fetchall())
    return rows, len(list((zag_home / "sessions").glob("*.jsonl")))


@pytest.fixture(scope="module")
def clean(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Counter[tuple[str, int]], int]:
    zag_home = tmp_path_factory.mktemp("clean-zag")
    done = _zag(corpus, zag_home, "backfill", "--json")
    assert done.returncode == 0, done.stderr
    rows, logs = _result(zag_home)
    assert len(rows) == logs > 20
    return rows, logs


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_a_stopped_or_killed_backfill_leaves_no_worker_and_the_next_run_completes_it(
    corpus: Path, clean: tuple[Counter[tuple[str, int]], int], tmp_path: Path, signum: int
) -> None:
    zag_home, marker = tmp_path / "zag", tmp_path / "done-jobs"
    workers: set[int] = set()
    with open(tmp_path / "stderr", "w+") as stderr:   # a file, not a pipe: a surviving worker would hold it
        process = subprocess.Popen([sys.executable, "-c", THROTTLED, str(marker)], env=_env(corpus, zag_home),
                                   cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            _wait_for(lambda: marker.exists() and len(marker.read_text().splitlines()) >= 6, "jobs to finish")
            workers = _children(process.pid)
            assert len(workers) >= 2
            process.send_signal(signum)
            process.wait(WAIT_SECS)
            _wait_for(lambda: not any(_alive(pid) for pid in workers), "the workers to end")
        finally:
            for pid in [process.pid, *workers]:   # only if the test failed
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
            process.wait(WAIT_SECS)
        stderr.seek(0)
        err = stderr.read()
    if signum == signal.SIGKILL:
        assert process.returncode == -signum
    else:
        assert process.returncode == 128 + signum, err
        assert "what was imported is kept" in err
        with sqlite3.connect(zag_home / "index.sqlite") as conn:   # what the workers finished was committed
            assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] > 0
    assert len(marker.read_text().splitlines()) < clean[1]          # it was stopped midway

    again = _zag(corpus, zag_home, "backfill", "--json")             # not "another backfill is running"
    assert again.returncode == 0, again.stderr
    assert _result(zag_home) == clean
    assert not list((zag_home / "sessions").glob("*.backfill-tmp"))
    reindexed = _zag(corpus, zag_home, "reindex")
    assert reindexed.returncode == 0, reindexed.stderr
    assert _result(zag_home) == clean
