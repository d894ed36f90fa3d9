"""Soak: many `zag run`s at once for a while (an overnight batch sped up), watching what grows.

N headless `zag run`s of the stand-in agent (claude/codex/gemini/goose in turn) share one ZAG_HOME with a
short heartbeat. Each agent appends records to its transcript in its provider's real format (limits_rig's
shapes) for the whole run; every second agent first hits a usage limit and is resumed (short fallback and
jitter). Meanwhile loops run `zag ps --json`, `zag sessions --json`, a periodic `zag backfill`, and a few
long-lived `zag listen --latest --json`. Every `--every` seconds it samples, per supervisor and listener,
RSS, open fds, threads and CPU seconds, and the sizes of index.sqlite, its -wal, the session logs and
zag.log. At the end: every log parses with seq 1..n and no duplicates, each agent's records are all in its
session's log, `zag reindex` into a copy agrees with the live index, and no live session shows dead.

    /work/venv/bin/python bench/bench_soak.py [--agents 12] [--minutes 12] [--heartbeat 0.5] [--every 10]

Prints one line per sample and, at the end, each figure's first/last value and its growth per hour
(least-squares slope over the second half of the samples, after the start-up transient).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration import limits_rig as L  # noqa: E402
from tests.integration.helpers import read_jsonl  # noqa: E402

CONFIG = L.CONFIG.replace("heartbeat_secs = 0.5", "heartbeat_secs = {heartbeat}")  # the limits rig's, any beat
PROVIDERS = ("claude", "codex", "gemini", "goose")
ARGS = {"claude": L.CLAUDE_HEADLESS_ARGS, "codex": L.CODEX_HEADLESS_ARGS, "gemini": L.GEMINI_HEADLESS_ARGS,
        "goose": L.GOOSE_HEADLESS_ARGS}


# --- the agents' scripts ---------------------------------------------------------------------------------
def _ticks(rig: L.Rig, count: int, pause: float) -> list[dict[str, Any]]:
    """`count` turns, each appending one user and one assistant record in the provider's format, `pause`
    seconds apart; each turn's texts carry its number (t<k>) so the end check can find them in zag's log."""
    actions: list[dict[str, Any]] = []
    for turn in range(count):
        actions += _turn(rig, turn)
        actions.append({"sleep": pause})
    return actions


def _turn(rig: L.Rig, turn: int) -> list[dict[str, Any]]:
    ask, answer = f"ask t{turn}", f"answer t{turn}"
    if rig.provider == "claude":
        return [{"append": L.claude_transcript(rig), "lines": [L.claude_user(rig, ask), L.claude_assistant(rig, answer)]}]
    if rig.provider == "codex":
        return [{"append": L.codex_rollout(rig, rig.thread_id), "lines": [
            L._codex_line("event_msg", {"type": "task_started"}),
            L._codex_line("event_msg", {"type": "user_message", "message": ask}),
            L._codex_line("response_item", {"type": "message", "role": "assistant",
                                            "content": [{"type": "output_text", "text": answer}]}),
            L._codex_line("event_msg", {"type": "task_complete", "last_agent_message": answer})]}]
    if rig.provider == "gemini":
        g = L.geminilib
        return [{"append": L.gemini_chat(rig), "lines": [
            L._gemini(g.user(f"u{turn + 2}", ask, "{now}")),
            L._gemini(g.gemini(f"a{turn + 2}", answer, "{now}", tokens=g.tokens()))]}]
    return L.goose_resumed_actions(rig, answer)  # goose: the user message is MESSAGE, the answer is numbered


def _start(rig: L.Rig) -> list[dict[str, Any]]:
    """The run's opening: what makes the provider's session exist (and its first output)."""
    if rig.provider == "claude":
        return [{"out": json.dumps({"type": "system", "subtype": "init", "session_id": "{session_id}"}) + "\n"}]
    if rig.provider == "codex":
        return [{"out": json.dumps({"type": "thread.started", "thread_id": rig.thread_id}) + "\n"},
                {"append": L.codex_rollout(rig, rig.thread_id), "lines": [L._codex_line("session_meta", {
                    "id": rig.thread_id, "cwd": str(rig.cwd), "timestamp": "{now}", "source": "exec",
                    "originator": "codex_exec", "cli_version": "0.169.0", "model_provider": "openai"})]}]
    if rig.provider == "gemini":
        return L.gemini_headless_rerun(rig)[:2]
    return L.goose_hit_actions(rig)[:2]  # the database and the session row


def _hit(rig: L.Rig) -> list[dict[str, Any]]:
    reset = time.time() + 20
    if rig.provider == "claude":
        return L.claude_headless_hit(rig, reset)
    if rig.provider == "codex":
        return L.codex_headless_hit(rig, rig.thread_id, reset)
    if rig.provider == "gemini":
        return L.gemini_headless_rerun(rig)[:-1] + [{"err": L.GEMINI_QUOTA + "\n"}, {"exit": 1}]
    return L.goose_headless_hit(rig)


def make_rig(root: Path, zag_home: Path, number: int, heartbeat: float, turns: int, pause: float) -> L.Rig:
    provider = PROVIDERS[number % len(PROVIDERS)]
    rig = L.Rig(root / f"{provider}-{number}", zag_home, provider, CONFIG.format(heartbeat=heartbeat))
    rig.thread_id = str(uuid.uuid4())  # type: ignore[attr-defined]
    # every second agent hits its limit first (gemini stays plain: its chat of a failed-only turn has
    # nothing to resume); the resumed run goes on in the session the hit created
    limited = number % 2 == 1 and provider != "gemini"
    opening = [] if limited and provider == "goose" else _start(rig)
    long_run = [*opening, *_ticks(rig, turns, pause), {"exit": 0}]
    rig.limited = limited  # type: ignore[attr-defined]
    rig.turns = turns  # type: ignore[attr-defined]
    rig.script(*([_hit(rig), long_run] if limited else [long_run]))
    return rig


# --- sampling ------------------------------------------------------------------------------------------------
def proc_figures(pid: int) -> dict[str, float] | None:
    """RSS (kB), open fds, threads and CPU seconds of `pid`, or None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    if fields.get("State", "").strip().startswith("Z"):
        return None
    ticks = stat[stat.rfind(")") + 2:].split()
    cpu = (int(ticks[11]) + int(ticks[12])) / os.sysconf("SC_CLK_TCK")
    return {"rss_kb": float(fields["VmRSS"].split()[0]), "fds": float(fds), "threads": float(fields["Threads"]),
            "cpu_s": cpu}


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


class Loop(threading.Thread):
    """Runs `command` again and again until stopped, `pause` seconds apart; counts failures."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], cwd: Path, pause: float) -> None:
        super().__init__(name=name, daemon=True)
        self.command, self.env, self.cwd, self.pause = command, env, cwd, pause
        self.runs = self.failures = 0
        self.errors: list[str] = []
        self.durations: list[float] = []
        self.shown_dead = 0  # rows `ps`/`sessions` showed dead (no supervisor is killed here: each is wrong)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            began = time.monotonic()
            result = subprocess.run(self.command, env=self.env, cwd=self.cwd, capture_output=True, timeout=300,
                                    stdin=subprocess.DEVNULL)
            self.durations.append(time.monotonic() - began)
            self.runs += 1
            ok = result.returncode == 0
            if ok and "--json" in self.command:
                try:
                    rows = json.loads(result.stdout)
                except ValueError:
                    ok = False
                else:
                    self.shown_dead += sum(1 for row in rows if row.get("state") == "dead")
            if not ok:
                self.failures += 1
                self.errors.append(result.stderr.decode(errors="replace")[-300:])
            self.stop.wait(self.pause)


class Listener(threading.Thread):
    """A `zag listen --latest --json` restarted whenever it ends; its current pid is sampled."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], cwd: Path) -> None:
        super().__init__(name=name, daemon=True)
        self.command, self.env, self.cwd = command, env, cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.bad_lines = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.proc = subprocess.Popen(self.command, env=self.env, cwd=self.cwd, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
            self.starts += 1
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                try:
                    json.loads(line)
                except ValueError:
                    self.bad_lines += 1
            self.proc.wait()
            self.stop.wait(1)

    def halt(self) -> None:
        self.stop.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (t, value) over the second half of the points, per hour."""
    half = points[len(points) // 2:]
    if len(half) < 2:
        return 0.0
    mean_t = sum(t for t, _ in half) / len(half)
    mean_v = sum(v for _, v in half) / len(half)
    var = sum((t - mean_t) ** 2 for t, _ in half)
    return 0.0 if var == 0 else sum((t - mean_t) * (v - mean_v) for t, v in half) / var * 3600


# --- the end checks ------------------------------------------------------------------------------------------
def check_logs(zag_home: Path, rigs: list[L.Rig]) -> list[str]:
    problems: list[str] = []
    texts: dict[str, str] = {}
    for path in sorted((zag_home / "sessions").glob("*.jsonl")):
        try:
            events = read_jsonl(path)
        except ValueError as exc:
            problems.append(f"{path.name}: does not parse: {exc}")
            continue
        seqs = [event["seq"] for event in events]
        if seqs != list(range(1, len(seqs) + 1)):
            problems.append(f"{path.name}: seq not 1..n (duplicates or gaps)")
        if not events or events[0]["type"] != "session_started" or events[-1]["type"] != "session_ended":
            problems.append(f"{path.name}: not started..ended")
        texts[path.name] = path.read_text(encoding="utf-8")
    for rig in rigs:
        ours = [name for name, text in texts.items() if str(rig.cwd) in text]
        body = "".join(texts[name] for name in ours)
        written = sorted(_written_turns(rig))
        counts = {turn: body.count(f"answer t{turn}\"") for turn in written}
        missing = [turn for turn, count in counts.items() if count == 0]
        twice = [turn for turn, count in counts.items() if count > 1]
        if missing:
            problems.append(f"{rig.provider} {rig.cwd.parent.name}: {len(missing)} turns missing from zag's logs "
                            f"(first t{missing[0]})")
        if twice:
            problems.append(f"{rig.provider} {rig.cwd.parent.name}: {len(twice)} turns logged more than once "
                            f"(first t{twice[0]})")
    return problems


def _written_turns(rig: L.Rig) -> set[int]:
    """The turn numbers of the answers the agent wrote to its own files (transcripts, chats, database)."""
    import re

    found: set[int] = set()
    for path in rig.cwd.parent.rglob("*"):
        if path.is_file() and path.parent != rig.cwd:
            found.update(int(m) for m in re.findall(rb"answer t(\d+)", path.read_bytes()))
    return found


def check_reindex(zag_home: Path, rig: L.Rig, scratch: Path) -> list[str]:
    copy = scratch / "reindexed"
    shutil.copytree(zag_home / "sessions", copy / "sessions")
    live = json.loads(L.zag_in(rig, zag_home, "sessions", "--json").stdout)
    L.zag_in(rig, copy, "reindex")
    rebuilt = json.loads(L.zag_in(rig, copy, "sessions", "--json").stdout)
    keep = ("session_id", "provider", "state", "provider_session_id", "exit_code", "last_seq")
    live_rows = {row["session_id"]: {k: row.get(k) for k in keep} for row in live}
    rebuilt_rows = {row["session_id"]: {k: row.get(k) for k in keep} for row in rebuilt}
    problems = []
    for session_id in sorted(set(live_rows) | set(rebuilt_rows)):
        if live_rows.get(session_id) != rebuilt_rows.get(session_id):
            problems.append(f"reindex differs for {session_id[:8]}: live {live_rows.get(session_id)} "
                            f"rebuilt {rebuilt_rows.get(session_id)}")
    return problems


# --- main ----------------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=12)
    parser.add_argument("--minutes", type=float, default=12.0)
    parser.add_argument("--heartbeat", type=float, default=0.5)
    parser.add_argument("--every", type=float, default=10.0)
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between an agent's turns")
    parser.add_argument("--listeners", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    options = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="zag-soak-"))
    zag_home = scratch / "zaghome"
    turns = max(1, int(options.minutes * 60 / (options.pause + 0.05)))
    rigs = [make_rig(scratch, zag_home, n, options.heartbeat, turns, options.pause) for n in range(options.agents)]
    print(f"scratch {scratch}; {options.agents} agents, {turns} turns each, heartbeat {options.heartbeat}s",
          flush=True)
    runs = [(rig, rig.start("run", rig.provider, *ARGS[rig.provider])) for rig in rigs]
    base = rigs[0]
    env, cwd = base.env(), base.cwd
    zag = base.agent.command
    loops = [Loop("ps", zag("ps", "--json"), env, cwd, 1.0),
             Loop("sessions", zag("sessions", "--json"), env, cwd, 2.0),
             Loop("backfill", zag("backfill"), env, cwd, 30.0)]
    listeners = [Listener(f"listen{n}", zag("listen", "--latest", "--json"), env, cwd)
                 for n in range(options.listeners)]
    for thread in [*loops, *listeners]:
        thread.start()

    series: dict[str, list[tuple[float, float]]] = {}

    def record(name: str, t: float, value: float) -> None:
        series.setdefault(name, []).append((t, value))

    cpu_seen: dict[tuple[str, int], tuple[float, float]] = {}  # (label, pid) -> (t, cpu s) at the last sample

    def cpu_rate(label: str, t: float, pids_figures: list[tuple[int, dict[str, float]]]) -> None:
        rates = []
        for pid, figures in pids_figures:
            previous = cpu_seen.get((label, pid))
            cpu_seen[(label, pid)] = (t, figures["cpu_s"])
            if previous is not None and t > previous[0]:
                rates.append((figures["cpu_s"] - previous[1]) / (t - previous[0]) * 100)
        if rates:
            record(f"{label} max cpu %", t, max(rates))
            record(f"{label} mean cpu %", t, sum(rates) / len(rates))

    start = time.monotonic()
    end = start + options.minutes * 60
    while time.monotonic() < end and any(proc.poll() is None for _, proc in runs):
        t = time.monotonic() - start
        sup = [(proc.pid, proc_figures(proc.pid)) for _, proc in runs if proc.poll() is None]
        lis = [(l.proc.pid, proc_figures(l.proc.pid)) for l in listeners if l.proc is not None and l.proc.poll() is None]
        by_provider = [(f"sup {rig.provider}", [(proc.pid, proc_figures(proc.pid))]) for rig, proc in runs
                       if proc.poll() is None]
        for label, pairs in by_provider:  # per provider: CPU % only (a cost growing with history is a bug)
            cpu_rate(label, t, [(p, f) for p, f in pairs if f])
        for label, pairs in (("sup", [(p, f) for p, f in sup if f]), ("lis", [(p, f) for p, f in lis if f])):
            figures = [f for _, f in pairs]
            cpu_rate(label, t, pairs)
            for key in ("rss_kb", "fds", "threads", "cpu_s"):
                if figures:
                    record(f"{label} max {key}", t, max(f[key] for f in figures))
                    record(f"{label} sum {key}", t, sum(f[key] for f in figures))
        record("index.sqlite B", t, size(zag_home / "index.sqlite"))
        record("index.sqlite-wal B", t, size(zag_home / "index.sqlite-wal"))
        record("session logs B", t, sum(size(p) for p in (zag_home / "sessions").glob("*.jsonl")))
        record("zag.log B", t, size(zag_home / "zag.log"))
        line = "  ".join(f"{name}={values[-1][1]:.0f}" for name, values in series.items()
                         if values[-1][0] == t and ("max" in name or name.endswith(" B")))
        print(f"t={t:5.0f}s live={sum(1 for _, p in runs if p.poll() is None)} {line}", flush=True)
        time.sleep(options.every)

    for thread in loops:
        thread.stop.set()
    for rig, proc in runs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    failures = []
    for rig, proc in runs:
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if proc.returncode not in (0, 130):
            failures.append(f"{rig.provider} exit {proc.returncode}: {err.decode(errors='replace')[-200:]}")
    for listener in listeners:
        listener.halt()
    for thread in [*loops, *listeners]:
        thread.join(timeout=60)

    print("\nfigure: first -> last, growth per hour (slope over the second half)")
    for name, values in series.items():
        print(f"  {name:24s} {values[0][1]:>14.1f} -> {values[-1][1]:>14.1f}   {slope_per_hour(values):+14.1f}/h")
    for thread in loops:
        tenth = max(1, len(thread.durations) // 10)
        first, last = thread.durations[:tenth], thread.durations[-tenth:]
        print(f"loop {thread.name}: {thread.runs} runs, {thread.failures} failed {thread.errors[:2]}, "
              f"{thread.shown_dead} rows shown dead; "
              f"mean duration first tenth {sum(first) / len(first):.2f}s, last tenth {sum(last) / len(last):.2f}s")
    for listener in listeners:
        print(f"{listener.name}: {listener.starts} starts, {listener.bad_lines} bad lines")
    problems = failures + [f"zag {thread.name} showed {thread.shown_dead} live sessions dead" for thread in loops
                           if thread.shown_dead]
    problems += check_logs(zag_home, rigs) + check_reindex(zag_home, base, scratch)
    rows = json.loads(L.zag_in(base, zag_home, "ps", "--all", "--json").stdout)
    problems += [f"{row['session_id'][:8]} shows {row['state']} after its zag ended" for row in rows
                 if row["state"] in ("running", "waiting")]
    print("\n" + ("\n".join(problems) if problems else "end checks: all passed"))
    if not options.keep:
        shutil.rmtree(scratch, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
