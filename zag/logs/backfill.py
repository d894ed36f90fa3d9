"""The history backfill runner: imports every session the agents have on disk into unified logs.

Provider-agnostic: for each provider it lists the sessions (`discover`, stat only), compares each
source's fingerprint with the one stored in the index (all of a provider's fingerprints in one query),
skips unchanged sources without opening them, and imports the rest from their stored cursor. Workers
(one process per core, fed over pipes by the parent's main thread: `_Workers`) each parse one source
at a time and append to that source's own session log; the parent alone writes the index, in batched
transactions, and on Ctrl-C still commits what the workers finished.

Which zag session a source's events go to:
- a recorded cursor (an earlier backfill, or the cursor the live supervisor saved when it ended)
  → continue that session's log from that cursor: nothing is imported twice. The cursor's row also
  holds the log's size it accounts for: a log grown beyond it (a worker SIGKILLed mid-append, a live
  session whose last cursor update could not be written) is continued after the latest transcript
  timestamp of that tail only (see `backfill_worker`);
- no cursor, but a zag session already holds this provider session id and no other source feeds it
  (zag supervised it live and ended without saving a cursor, or the cursor table was lost) → append
  to that session, skipping every record up to the latest transcript timestamp it already holds. This
  favours no duplicates over completeness: a record stamped with exactly that last millisecond that
  the live log missed would be skipped;
- otherwise a new zag session (`session_started` with `backfilled: true`, state `exited`), whose id
  is derived from (provider, source key): a log an interrupted run left without its index row is
  rewritten by the next run, not duplicated (see `backfill_worker`). If the index already holds that
  id without a cursor (the cursor table was lost), the source is adopted into it (as above).
A session whose supervisor is running right now is left to its supervisor (counted as `live`).

Only one backfill runs at a time (a lock file next to the index). Stopping: on Ctrl-C (or SIGTERM/
SIGHUP, turned into `BackfillInterrupted` by `interrupt_on_signals`) the parent sends its workers
SIGTERM, they roll back the job they were in and send what they finished, the parent commits it. A
worker ignores the terminal's SIGINT/SIGHUP (its parent decides) and gets SIGTERM when its parent dies
(Linux PR_SET_PDEATHSIG; elsewhere it sees EOF on its pipe once idle), so a killed backfill leaves no
worker holding the lock.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from zag import paths, states
from zag.logs import codec, events
from zag.logs.backfill_worker import (
    MODE_ADOPT, MODE_CONTINUE, MODE_NEW, TEMP_SUFFIX, ImportJob, ImportResult, backfill_session_id,
    import_source,
)
from zag.logs.index import Index
from zag.providers.base import HistorySource, Provider, UnlistedSources

COMMIT_EVERY = 256            # results per index transaction
TASK_BYTES = 4 * 1024 * 1024  # small sessions travel to a worker together up to this size ...
TASK_GROUPS = 64              # ... or this many
COMMIT_INTERVAL_SECS = 1.0    # ... or this often, whichever comes first
TASKS_IN_FLIGHT = 2           # per worker process
WORKER_EXIT_SECS = 10.0       # for a worker to finish (or roll back) before it is terminated
MAX_LISTED_WARNINGS = 50      # per provider, in the summary (all of them go to the diagnostics log)


class BackfillBusy(Exception):
    """Another backfill holds the lock; the message is user-facing."""


class BackfillInterrupted(KeyboardInterrupt):
    """SIGTERM/SIGHUP while `interrupt_on_signals` is active: handled like Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP) if hasattr(signal, "SIGHUP") else (signal.SIGTERM,)


@contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """While active (main thread only), the first SIGTERM/SIGHUP raises `BackfillInterrupted`: the run
    stops as on Ctrl-C (workers stopped, what they finished committed); later ones are ignored."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if not fired:
            fired.append(signum)
            raise BackfillInterrupted(signum)

    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


class Progress(Protocol):
    """What the runner reports while it works (the CLI draws a bar from it)."""

    def start(self, provider: str, sources: int, total_bytes: int) -> None: ...

    def advance(self, sources: int, nbytes: int) -> None: ...

    def finish(self) -> None: ...


@dataclass
class ProviderSummary:
    provider: str
    sessions_seen: int = 0
    imported: int = 0        # new zag sessions
    updated: int = 0         # existing zag sessions that got new events
    unchanged: int = 0       # nothing new (fingerprint equal, or re-read and nothing new)
    live: int = 0            # supervised by a running zag right now: left to it
    not_written: int = 0     # not imported: its log could not be written (a full disk); retried next run
    failed: int = 0          # not imported: its files could not be read (or its reader failed); retried next run
    unlisted: int = 0        # folders or databases that could not be listed or read in full (each said once)
    events: int = 0
    warnings: int = 0
    bytes: int = 0           # size of the files of the sources that were read (each file once)
    seconds: float = 0.0
    warning_messages: list[str] = field(default_factory=list)
    said_unread: set[str] = field(default_factory=set, repr=False)   # `unread` lines said

    def unread(self, message: str, **context: Any) -> None:
        """A folder or database not listed or read in full: said and counted once, however many of its
        sessions (a goose database's) say the same."""
        if message not in self.said_unread:
            self.said_unread.add(message)
            self.warn(message, **context)
            self.unlisted += 1

    def warn(self, message: str, **context: Any) -> None:
        self.warnings += 1
        if len(self.warning_messages) < MAX_LISTED_WARNINGS:
            self.warning_messages.append(message)
        from zag import diag

        diag.warning("backfill_warning", provider=self.provider, message=message, **context)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["said_unread"]
        data["seconds"] = round(self.seconds, 3)
        return data


def default_jobs() -> int:
    """Worker processes: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def run_backfill(
    providers: Sequence[Provider],
    *,
    env: Mapping[str, str] | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
    index: Index | None = None,
    note: Callable[[str], None] | None = None,
) -> list[ProviderSummary]:
    """Import every provider's new history; one summary per provider (in the order given). `note`: told
    what the run did besides (an index rebuilt first)."""
    env = os.environ if env is None else env
    jobs = default_jobs() if jobs is None else max(1, jobs)
    own_index = index is None
    index = index or Index()
    try:
        with _exclusive():
            _remove_stale_temp_logs()
            _rebuild_a_lost_index(index, note)
            return [_run_provider(provider, env, jobs, progress, index) for provider in providers]
    finally:
        if own_index:
            index.close()


# --- one provider ----------------------------------------------------------------------------------
def _run_provider(
    provider: Provider, env: Mapping[str, str], jobs: int, progress: Progress | None, index: Index
) -> ProviderSummary:
    started = time.monotonic()
    summary = ProviderSummary(provider.name)
    sources = _discover(provider, env, summary)
    summary.sessions_seen = len(sources)
    known = index.backfill_fingerprints(provider.name)
    changed = []
    for source in sources:
        row = known.get(source.source_key)
        if row is not None and row[0] == source.fingerprint:
            summary.unchanged += 1
        else:
            changed.append(source)
    if changed:
        plan = _plan(provider.name, changed, known, index, summary)
        _execute(provider, plan, jobs, progress, index, summary)
    summary.seconds = time.monotonic() - started
    return summary


def _discover(provider: Provider, env: Mapping[str, str], summary: ProviderSummary) -> list[HistorySource]:
    """All sources, de-duplicated by key; a failing `discover` keeps what it listed before failing."""
    found: dict[str, HistorySource] = {}
    try:
        for source in provider.discover(env):
            source = _storable(source)
            found.setdefault(source.source_key, source)
    except UnlistedSources as exc:   # folders or databases it could not read: each said, naming it
        for problem in exc.problems:
            summary.unread(problem)
    except Exception as exc:  # noqa: BLE001 - one provider's failure must not stop the others
        summary.warn(f"cannot list {provider.name} sessions: {_describe(exc)}")
        summary.unlisted += 1
    return list(found.values())


def _storable(source: HistorySource) -> HistorySource:
    """The source with a key SQLite can store and uuid5 can hash: a file or folder name that is not
    UTF-8 (held as lone surrogates) is in some keys (a path, a file's stem); it becomes `\\xff` text,
    the same on every run."""
    key = codec.printable(source.source_key)
    return source if key is source.source_key else replace(source, source_key=key)


def _plan(
    provider: str,
    changed: list[HistorySource],
    known: dict[str, tuple[str | None, str]],
    index: Index,
    summary: ProviderSummary,
) -> list[list[ImportJob]]:
    """Decide each changed source's target session; group jobs that share a session (one writer)."""
    cursors = index.backfill_cursors(provider, [s.source_key for s in changed if s.source_key in known])
    fed_by_sources = {session_id for _, session_id in known.values()}
    owners = index.provider_session_owners(provider) if len(cursors) < len(changed) else {}
    groups: dict[str, list[ImportJob]] = {}
    live_cache: dict[str, bool] = {}
    from zag.providers import claims

    claimed = claims.listed(provider)
    derived = {source.source_key: backfill_session_id(provider, source.source_key)
               for source in changed if source.source_key not in cursors}
    indexed = index.existing_session_ids(derived.values())
    for source in changed:
        log_size = None
        if source.source_key in cursors:
            session_id, cursor, log_size = cursors[source.source_key]
            mode = MODE_CONTINUE
        else:
            owner = _adoptive_owner(provider, source, owners, fed_by_sources, index)
            if owner is not None:
                session_id, cursor, mode = owner, None, MODE_ADOPT
                if source.ownership != source.provider_session_id:   # ids repeat across homes: one is its
                    fed_by_sources.add(owner)
            else:
                session_id, cursor = derived[source.source_key], None
                mode = MODE_NEW if session_id not in indexed else MODE_ADOPT
        supervised = mode != MODE_NEW and _is_live(index, session_id, live_cache)
        if supervised or _claimed_live(provider, source, index, live_cache, claimed):
            summary.live += 1
            continue
        job = ImportJob(provider, source, session_id, cursor, mode, _source_bytes(source), log_size)
        groups.setdefault(session_id, []).append(job)
    ordered = list(groups.values())
    for group in ordered:
        group.sort(key=lambda job: (job.source.started_at or 0.0, job.source.source_key))
    # biggest first, so the last worker to finish is not the one that got the 1 GB transcript last
    ordered.sort(key=lambda group: -sum(job.size for job in group))
    return ordered


def _adoptive_owner(provider: str, source: HistorySource, owners: dict[str, str], fed: set[str],
                    index: Index) -> str | None:
    """The zag session (supervised, without cursor) that holds this source's provider session, if any.
    Where the provider says that id repeats across its homes (an `owner_key` of its own, e.g. goose's
    per-database ids) the session's recorded owner key must be the source's, or another home's session
    with the same id would be written into its log. A session recorded without one (by a zag before the
    key was kept) must have run in the source's folder (the newest such); its own key is never another's."""
    owner = owners.get(source.provider_session_id) if source.provider_session_id else None
    if not owner:
        return None
    if source.ownership == source.provider_session_id:
        return owner if owner not in fed else None
    holders = [holder for holder in index.provider_session_holders(provider, source.provider_session_id)
               if holder[0] not in fed]
    exact = next((session_id for session_id, _, key in holders if key == source.ownership), None)
    if exact is not None or not source.cwd:
        return exact
    return next((session_id for session_id, cwd, key in holders
                 if key is None and cwd and _same_folder(cwd, source.cwd)), None)


def _same_folder(one: str, other: str) -> bool:
    return one == other or os.path.realpath(one) == os.path.realpath(other)


def _claimed_live(provider: str, source: HistorySource, index: Index, cache: dict[str, bool],
                  claimed: frozenset[str] | None = None) -> bool:
    """A supervisor follows this agent session live, possibly before its index row exists (`claims`).
    Once the owner's row exists, its liveness (pid and start time) decides: a stale claim whose pid was
    reused holds nothing. `claimed`: the claim files listed before (`claims.listed`), None: unknown."""
    from zag.providers import claims

    if not source.provider_session_id or not claims.may_be_claimed(claimed, source.ownership):
        return False
    owner = claims.live_owner(provider, source.ownership)
    if owner is None:
        return False
    return _is_live(index, owner, cache) if index.get_session(owner) is not None else True


def _is_live(index: Index, session_id: str, cache: dict[str, bool]) -> bool:
    if session_id not in cache:
        row = index.get_session(session_id)
        live = False
        if row is not None:
            from zag.wrapper.liveness import effective_state

            live = effective_state(row) in states.LIVE_STATES
        cache[session_id] = live
    return cache[session_id]


def _execute(
    provider: Provider,
    plan: list[list[ImportJob]],
    jobs: int,
    progress: Progress | None,
    index: Index,
    summary: ProviderSummary,
) -> None:
    total_bytes = _files_bytes(job.source for group in plan for job in group)
    summary.bytes += total_bytes
    if progress is not None:
        progress.start(provider.name, sum(len(group) for group in plan), total_bytes)
    committer = _Committer(provider.name, index, summary)
    keep_freed_memory()   # (before the workers are forked: they inherit it)
    workers = _Workers(provider, _tasks(plan), min(jobs, len(plan))) if min(jobs, len(plan)) > 1 else None
    try:
        try:
            for results in workers if workers is not None else _serial_results(provider, plan):
                for result in results:
                    committer.add(result)
                    if progress is not None:
                        progress.advance(1, result.bytes)
        except KeyboardInterrupt:
            if workers is not None:  # keep what the workers finished before they stopped (their logs exist)
                workers.stop()
                for results in workers.drain():
                    for result in results:
                        committer.add(result)
            raise
    finally:
        if workers is not None:
            workers.close()
        committer.flush()
        if progress is not None:
            progress.finish()


# glibc's `mallopt` parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
KEPT_FREE_BYTES = 128 * 1024 * 1024   # freed heap kept for reuse, at most
OWN_MAPPING_BYTES = 32 * 1024 * 1024  # blocks at least this big get a mapping of their own (given back when freed)


def keep_freed_memory() -> None:
    """Let this process reuse the memory it frees rather than give it back to the kernel at once
    (glibc only; elsewhere nothing changes). An import allocates and frees a block of about a MiB
    for each chunk it reads and each batch it encodes; by default glibc returns the top of its heap
    to the kernel as soon as twice the biggest such block is free, and the kernel must then fault in
    and zero the pages again for the next one: ~0.4 CPU-s per GB imported, a tenth of the whole.
    The heap then stays at the import's peak (a few chunks and batches: tens of MB)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
        mallopt(_M_MMAP_THRESHOLD, OWN_MAPPING_BYTES)
        mallopt(_M_TRIM_THRESHOLD, KEPT_FREE_BYTES)
    except (OSError, AttributeError):   # no such C library function (musl)
        pass


def _serial_results(provider: Provider, plan: list[list[ImportJob]]) -> Iterable[list[ImportResult]]:
    """The groups run in this process, a job at a time (an interrupted group keeps its finished jobs)."""
    for group in plan:
        for job in group:
            yield [import_source(provider, job)]


def _tasks(plan: list[list[ImportJob]]) -> Iterable[list[list[ImportJob]]]:
    """Groups handed to workers together: a big one alone, small ones packed up to TASK_BYTES (fewer
    round trips with thousands of small sessions, and still an even split of the big ones)."""
    task: list[list[ImportJob]] = []
    task_bytes = 0
    for group in plan:
        size = sum(job.size for job in group)
        if task and (task_bytes + size > TASK_BYTES or len(task) >= TASK_GROUPS):
            yield task
            task, task_bytes = [], 0
        task.append(group)
        task_bytes += size
    if task:
        yield task


class _Workers:
    """Worker processes, each fed tasks over its own pipe by this thread alone; iterating gives the
    tasks' results as they come.

    Not `multiprocessing.Pool`: its worker-handler thread wakes up for every result waiting in the
    shared queue and spins until the result thread has read it (~0.5 CPU-s per GB imported, taken
    from the workers on a 2-core machine). Each worker holds TASKS_IN_FLIGHT tasks, so it never waits
    for this process. A worker that dies fails the jobs it held (no cursor advances for them: the
    next run imports them again). On Ctrl-C (`stop`: SIGTERM to each) the workers roll back the job
    they were in, send what they had finished, and stop (`drain`)."""

    def __init__(self, provider: Provider, tasks: Iterable[list[list[ImportJob]]], count: int) -> None:
        import multiprocessing

        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        self._todo: Iterator[list[list[ImportJob]]] = iter(tasks)
        self._held: dict[Any, deque[list[list[ImportJob]]]] = {}
        self._processes = []
        parent_pid = os.getpid()
        for _ in range(count):
            ours, theirs = context.Pipe()
            # the child closes its copies of the parent's ends: the parent's death must close its pipe
            process = context.Process(target=_worker_main, daemon=True,
                                      args=(provider, theirs, parent_pid, [*self._held, ours]))
            process.start()
            theirs.close()
            self._processes.append(process)
            self._held[ours] = deque()
            for _ in range(TASKS_IN_FLIGHT):
                self._feed(ours)

    def __iter__(self) -> Iterator[list[ImportResult]]:
        from multiprocessing.connection import wait

        held = self._held
        while any(held.values()):
            for conn in wait([conn for conn, queue in held.items() if queue]):
                message = self._receive(conn)
                if message is None:
                    yield from self._lost(conn)
                    continue
                task = held[conn].popleft()
                if len(message) < sum(len(group) for group in task):  # it stopped midway (Ctrl-C)
                    finished = {result.source_key for result in message}
                    message += [_lost(job) for group in task for job in group
                                if job.source.source_key not in finished]
                self._feed(conn)
                yield message

    def stop(self) -> None:
        """Ask every worker to stop after rolling back the job it is in (once: see `_StopRequest`)."""
        for process in self._processes:
            if process.pid is not None and process.exitcode is None:
                try:
                    os.kill(process.pid, signal.SIGTERM)
                except OSError:
                    pass

    def drain(self) -> Iterator[list[ImportResult]]:
        """After `stop`: what the workers still send before they stop."""
        from multiprocessing.connection import wait

        self._todo = iter(())
        deadline = time.monotonic() + WORKER_EXIT_SECS
        while self._held and time.monotonic() < deadline:
            for conn in wait(list(self._held), timeout=max(0.0, deadline - time.monotonic())):
                message = self._receive(conn)
                if message is None:
                    self._held.pop(conn)
                    conn.close()
                else:
                    yield message

    def close(self) -> None:
        for conn in self._held:
            try:
                conn.send(None)
            except (OSError, ValueError):
                pass
        for process in self._processes:
            process.join(WORKER_EXIT_SECS)
            if process.is_alive():
                process.terminate()
                process.join(WORKER_EXIT_SECS)
        for conn in self._held:
            conn.close()
        self._held = {}

    def _feed(self, conn: Any) -> None:
        task = next(self._todo, None)
        if task is not None:
            self._held[conn].append(task)  # held even if it cannot be sent: then it is reported lost
            try:
                conn.send(task)
            except OSError:
                pass

    def _receive(self, conn: Any) -> list[ImportResult] | None:
        try:
            return conn.recv()
        except (EOFError, OSError):
            return None

    def _lost(self, conn: Any) -> Iterator[list[ImportResult]]:
        for task in self._held.pop(conn):
            yield [_lost(job) for group in task for job in group]
        conn.close()


def _worker_main(provider: Provider, conn: Any, parent_pid: int, parent_ends: Sequence[Any]) -> None:
    """A worker process: run the tasks it is sent until it is sent None (or its pipe closes). When
    stopped (SIGTERM from the parent, or the parent's death), the results of the task's finished jobs
    are still sent (their logs are written)."""
    stop = _StopRequest()
    try:
        for end in parent_ends:
            end.close()
        signal.signal(signal.SIGTERM, stop)
        for signum in (signal.SIGINT, *STOP_SIGNALS[1:]):
            signal.signal(signum, signal.SIG_IGN)   # the terminal's Ctrl-C/hang-up: the parent decides
        if not _die_with_parent(parent_pid):
            return
        while not stop.requested:
            task = conn.recv()
            if task is None:
                return
            done: list[ImportResult] = []
            try:
                for group in task:
                    for job in group:
                        done.append(import_source(provider, job))
            except KeyboardInterrupt:
                stop.requested = True
            stop.guarded(conn.send, done)
    except (EOFError, OSError, KeyboardInterrupt):
        return  # the parent is gone or stopping
    finally:
        conn.close()


class _StopRequest:
    """A worker's SIGTERM handler: the first one raises KeyboardInterrupt (the job in progress rolls
    back), unless a result is being sent (then the worker stops after sending it); later ones do
    nothing, so a roll-back is never itself interrupted."""

    def __init__(self) -> None:
        self.requested = False
        self.armed = True

    def __call__(self, signum: int, frame: object) -> None:
        if not self.requested:
            self.requested = True
            if self.armed:
                raise KeyboardInterrupt

    def guarded(self, function: Callable[..., Any], *args: Any) -> None:
        self.armed = False
        try:
            function(*args)
        finally:
            self.armed = True


_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> bool:
    """Linux: SIGTERM this worker when its parent dies. False if the parent is already gone."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    return os.getppid() == parent_pid  # checked after prctl: a death in between is not missed


def _lost(job: ImportJob) -> ImportResult:
    return ImportResult(provider=job.provider, source_key=job.source.source_key, session_id=job.session_id,
                        mode=job.mode, fingerprint=job.source.fingerprint, bytes=job.size,
                        error="the worker process importing it ended unexpectedly")


class _Committer:
    """Turns worker results into summary counts and batched index writes."""

    def __init__(self, provider: str, index: Index, summary: ProviderSummary) -> None:
        self.provider = provider
        self.index = index
        self.summary = summary
        self.sessions: list[dict[str, Any]] = []
        self.cursors: list[tuple[str, str, Any, str | None, int | None]] = []
        self.last_commit = time.monotonic()
        self.sessions_dir = str(paths.sessions_dir())

    def add(self, result: ImportResult) -> None:
        summary = self.summary
        for message in result.warnings:
            summary.warn(f"{result.source_key}: {message}", source=result.source_key)
        if result.source_problem:   # a file several sources may share (a goose database)
            summary.unread(result.source_problem, source=result.source_key)
        if result.error:   # (it names the file; a key that is that file's path is not said twice)
            about = "" if result.error.startswith(f"{result.source_key}:") else f"{result.source_key}: "
            summary.warn(f"{about}{result.error}", source=result.source_key)
            if result.unwritten:
                summary.not_written += 1
            elif not result.vanished:   # (a vanished file is no failure: there is nothing left to import)
                summary.failed += 1
            return
        for note in result.notes:
            summary.warn(f"{result.source_key}: {note}", source=result.source_key)
        summary.warnings += max(0, result.parse_warnings - len(result.notes))
        summary.events += result.events
        if result.events == 0:
            summary.unchanged += 1
        elif result.created:
            summary.imported += 1
        else:
            summary.updated += 1
        if result.events:
            self.sessions.append(_session_row(result, self.sessions_dir))
        self.cursors.append((result.source_key, result.session_id, result.cursor, result.fingerprint,
                             result.log_size))
        if len(self.cursors) >= COMMIT_EVERY or time.monotonic() - self.last_commit >= COMMIT_INTERVAL_SECS:
            self.flush()

    def flush(self) -> None:
        if self.cursors:
            self.index.commit_backfill(self.provider, self.sessions, self.cursors)
        self.sessions, self.cursors = [], []
        self.last_commit = time.monotonic()


def _session_row(result: ImportResult, sessions_dir: str) -> dict[str, Any]:
    first, last = _epoch(result.first_ts), _epoch(result.last_ts)
    return {
        "session_id": result.session_id,
        "provider_session_id": result.provider_session_id,
        "cwd": result.cwd,
        "model": result.model,
        "started_at": first if first is not None else time.time(),
        "ended_at": last,
        "last_seq": result.last_seq,
        "log_path": os.path.join(sessions_dir, f"{result.session_id}.jsonl"),  # = paths.session_log(...)
    }


# --- helpers -------------------------------------------------------------------------------------
def _epoch(stamp: str | None) -> float | None:
    """Epoch seconds of a log timestamp; None when absent or impossible (e.g. hour 25 in a record)."""
    if not stamp:
        return None
    try:
        return events.parse_ts(stamp)
    except ValueError:
        return None


def _files_bytes(sources: Iterable[HistorySource]) -> int:
    """Size of the files behind these sources, each file once (sessions may share a database)."""
    seen: set[Path] = set()
    total = 0
    for source in sources:
        for path in source.paths:
            if path in seen:
                continue
            seen.add(path)
            total += _file_size(path)
    return total


def _source_bytes(source: HistorySource) -> int:
    return sum(_file_size(path) for path in source.paths)


def _file_size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0   # vanished since discovery: the reader reports it


def _describe(exc: BaseException) -> str:
    if isinstance(exc, NotImplementedError):
        return str(exc) or "not implemented"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _exclusive:
    """Holds `$ZAG_HOME/backfill.lock` (flock) for the run; `BackfillBusy` if another run has it."""

    def __enter__(self) -> None:
        self.fd = -1
        try:
            import fcntl
        except ImportError:  # no flock on this platform: run unguarded
            return
        path = paths.ensure_home() / "backfill.lock"
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | paths.NOFOLLOW, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            self.fd = -1
            raise BackfillBusy("another `zag backfill` is running; try again when it has finished") from None

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)


def _rebuild_a_lost_index(index: Index, note: Callable[[str], None] | None) -> None:
    """An index that holds nothing while session logs exist was lost (deleted, or moved aside and not
    rebuilt): it is rebuilt from the logs first, as `zag reindex` does. Backfill finds the sessions zag
    supervised, and what it imported before, through the index: without them every session zag ran
    would be imported a second time, as a new one."""
    if not index.holds_nothing() or not _any_log(paths.sessions_dir()):
        return
    from zag.logs.reindex import rebuild

    report = rebuild(index)
    if note is not None:
        note(f"the index held no sessions but {report.sessions} session logs exist: it was rebuilt from them "
             "first (as `zag reindex` does), so that no session is imported twice")


def _any_log(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            return any(entry.name.endswith(".jsonl") for entry in entries)
    except OSError:
        return False


def _remove_stale_temp_logs() -> None:
    """Half-written new logs of a backfill that was killed (we hold the lock: none is in use)."""
    folder = paths.sessions_dir()
    try:
        stale = [entry.path for entry in os.scandir(folder) if entry.name.endswith(TEMP_SUFFIX)]
    except OSError:
        return
    for path in stale:
        try:
            os.unlink(path)
        except OSError:
            pass


def summaries_document(summaries: Iterable[ProviderSummary]) -> dict[str, Any]:
    """The `--json` document."""
    return {"providers": [summary.as_dict() for summary in summaries]}

