"""Imports one provider session's new history into its zag session log (runs in a worker process).

A job names the source, the zag session its events go to and the reader cursor to start from. The
worker streams the reader's items into the log in batches (`write_many`; taken a list at a time from a
reader's `read_batches()` when it has one), never holding a session's events in memory, and reports
what the parent needs for the index: new cursor (JSON-encoded), event counts, the first/last
timestamps, model, last seq. `session_started` is written with the first batch: its time is the
earliest of that batch, its model the reader's first real model (`info["first_model"]`).

The records before the first dated one (claude `summary` lines, a codex `session_meta` without a time)
are held back until it comes (up to UNDATED_HEAD_EVENTS), so that they and `session_started` take its
time, not the time of the import nor a file's name or mtime (as `zag reindex` then reads it back).

An import is all or nothing: if the reader raises or the log cannot be written, whatever this job
appended is cut off again (a new session's log is written under a temporary name and only renamed
into place on success), so a cursor that is not advanced never leaves events behind that the next run
would write a second time.

Only a process that dies at once (SIGKILL, e.g. the OOM killer) cannot cut off what it appended, and
its parent cannot commit its cursor either; so each committed cursor carries the log's size once it
held everything up to that cursor (`ImportResult.log_size`). A continued import whose log has grown
beyond that size (a killed import's events, or the last second a live supervisor logged before its
cursor could no longer be updated, e.g. a full disk under the index) reads only that tail and skips
the reader's records up to the latest transcript timestamp there, as MODE_ADOPT does for a whole
log. A log smaller than recorded (cut by hand) is reported and continued from the cursor alone.

A new session's id is derived from (provider, source key) (`backfill_session_id`), and a MODE_NEW job
renames its temporary log over whatever log already has that name: a run killed after the rename but
before the parent committed the index row (SIGKILL, a full disk under the index) left that log, which
no cursor accounts for; the next run rewrites it in place instead of importing the source a second
time under another id.
"""

from __future__ import annotations

import errno
import os
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import msgspec

from zag import paths
from zag.logs import codec, events
from zag.logs.reader import read_events
from zag.logs.writer import SessionLogWriter
from zag.providers.base import HistorySource, LimitSignal, Provider

MODE_NEW = "new"            # first import: a new zag session
MODE_CONTINUE = "continue"  # a recorded cursor (an earlier import, or the live supervisor's)
MODE_ADOPT = "adopt"        # a zag session already holds this provider session, with no cursor

BATCH_EVENTS = 256              # events per write: bounds memory (a Claude tool result is ≤ ~100 KB);
                                # `session_started` waits for the first batch (its time, cwd and model)
UNDATED_HEAD_EVENTS = 16 * BATCH_EVENTS   # ... and, up to this many, for the first dated record (its time)
TEMP_SUFFIX = ".backfill-tmp"
VANISHED = "file vanished before it could be read"   # (deleted by its agent: nothing is left to import)
_SESSION_NAMESPACE = uuid.UUID("5abce7e6-61d3-4f2b-9ffc-e924d495eea5")  # fixed: ids must not change


def backfill_session_id(provider: str, source_key: str) -> str:
    """The zag session id a source's first import gets: the same on every run (see the docstring)."""
    return str(uuid.uuid5(_SESSION_NAMESPACE, f"{provider}\0{source_key}"))


class ImportFailed(Exception):
    """The log could not be written completely (e.g. disk full)."""


# errors only writing can give: the log, not the source, is at fault (the next run retries the source)
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})


@dataclass(frozen=True)
class ImportJob:
    provider: str
    source: HistorySource
    session_id: str
    cursor: Any
    mode: str
    size: int = 0     # bytes of the source's files when planned (for scheduling and progress)
    log_size: int | None = None   # MODE_CONTINUE: the log's size the cursor accounts for (None: unknown)


@dataclass
class ImportResult:
    provider: str
    source_key: str
    session_id: str
    mode: str
    fingerprint: str | None   # None: read the source again next time, even unchanged (see `_import`)
    bytes: int = 0
    cursor: Any = None         # the reader's new cursor, JSON-encoded (msgspec.Raw)
    events: int = 0            # lines appended to the log (session_started included)
    parse_warnings: int = 0
    created: bool = False      # this job wrote the session's first line
    first_ts: str | None = None
    last_ts: str | None = None
    model: str | None = None
    cwd: str | None = None
    provider_session_id: str | None = None
    last_seq: int = 0
    log_size: int | None = None   # the log's size after this job (stored with the cursor)
    error: str | None = None   # set: nothing was kept, the cursor must not advance
    unwritten: bool = False    # the error was that the log could not be written (a full disk)
    vanished: bool = False     # the error was that the source's file was deleted since it was listed
    warnings: list[str] = field(default_factory=list)  # about the job, not a record (for the summary)
    source_problem: str | None = None   # the reader's `problem`: a file it could not read in full (said once)
    notes: list[str] = field(default_factory=list)  # parse-warning messages (a few), for the summary


def import_source(provider: Provider, job: ImportJob) -> ImportResult:
    source = job.source
    result = ImportResult(
        provider=job.provider, source_key=source.source_key, session_id=job.session_id, mode=job.mode,
        fingerprint=source.fingerprint, bytes=job.size, cwd=source.cwd,
        provider_session_id=source.provider_session_id or None, model=source.model,
    )
    problem = unreadable(source.paths)
    if problem:
        result.error = problem
        result.vanished = problem.endswith(VANISHED)
        return result
    final = paths.session_log(job.session_id)
    # MODE_NEW: an existing log of this id is one the index does not know (the plan checked): replaced
    existed = job.mode != MODE_NEW and final.exists()
    target = final if existed else final.with_name(final.name + TEMP_SUFFIX)
    copier = _Copier(job, result, target)
    try:
        _import(provider, job, copier)
        if not existed:
            if target.exists():
                os.replace(target, final)
            elif job.mode == MODE_NEW:
                final.unlink(missing_ok=True)  # nothing to import now: no log the index does not know
        result.log_size = _log_size(final)
    except Exception as exc:  # noqa: BLE001 - one bad source must not stop the others
        copier.roll_back(existed)
        result.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        result.unwritten = isinstance(exc, ImportFailed) or (
            isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS)
        result.events = 0
        result.created = False
    except BaseException:  # Ctrl-C: leave no events behind that no saved cursor accounts for
        copier.roll_back(existed)
        raise
    return result


def unreadable(files: Iterable[Path]) -> str | None:
    """Why a source cannot be read (its main file gone, or a file we may not open), else None."""
    for position, path in enumerate(files):
        try:
            with open(path, "rb"):
                pass
        except FileNotFoundError:
            if position == 0:
                return f"{path}: {VANISHED}"
        except OSError as exc:
            return f"{path}: cannot read: {exc.strerror or exc}"
    return None


# --- the import ----------------------------------------------------------------------------------
def _import(provider: Provider, job: ImportJob, copier: _Copier) -> None:
    if job.mode == MODE_ADOPT:
        copier.watermark = _watermark(paths.session_log(job.session_id))
    elif job.mode == MODE_CONTINUE and job.log_size is not None:
        copier.watermark = _tail_watermark(paths.session_log(job.session_id), job.log_size, copier.result)
    reader = provider.open_reader(job.source, job.cursor)
    copier.reader = reader
    try:
        try:
            copier.run(_batches(reader))
        finally:
            copier.close()
        # encoded here, in the worker: the parent stores it as it is (and pickles bytes, not a tree)
        copier.result.cursor = msgspec.Raw(codec.dumps_lossless(reader.cursor()))
        problem = getattr(reader, "problem", None)
        if isinstance(problem, str) and problem:
            copier.result.source_problem = problem
        if getattr(reader, "unsettled", False):
            # a last line without its newline, written too recently to call torn: once the file has
            # settled the reader reports it, so the next run must read the source although unchanged
            copier.result.fingerprint = None
    finally:
        reader.close()


class _Copier:
    """Moves reader items into the log: bodies as they are, limit signals as `usage_limit_hit`."""

    def __init__(self, job: ImportJob, result: ImportResult, target: Path) -> None:
        self.job = job
        self.result = result
        self.target = target
        self.watermark: str | None = None
        self.writer: SessionLogWriter | None = None
        self.start_offset: int | None = None   # log size once opened (after any torn-line repair)
        self.reader: Any = None  # may offer `info` (cwd, model learnt while reading): see `_learn`
        self.body_model: str | None = None   # the first `model` an event carried
        self.last_model: str | None = None   # the latest one (for the index row)
        self.batch: list[dict[str, Any]] = []
        self.started = False     # session_started written (or not needed)
        self.last_ts: str | None = None   # the time of the latest dated item
        self.run_started = time.time()   # a signal stamped later was stamped by the reader, not a record

    def run(self, batches: Iterable[list[Any]]) -> None:
        for items in batches:
            self._take(items)
        self.flush()
        self._learn(final=True)
        if self.result.model is None:
            self.result.model = self.body_model

    def _take(self, items: list[Any]) -> None:
        """Stamp each item's time (its own, normalised, else the time of the records before it),
        note first/last times and warnings, and write every BATCH_EVENTS bodies."""
        result = self.result
        batch = self.batch
        last_ts = self.last_ts
        first_ts = result.first_ts
        max_ts = result.last_ts
        watermark = self.watermark
        last_model = self.last_model
        normalize = events.normalize_ts
        parse_warning = events.PARSE_WARNING
        for item in items:
            if item.__class__ is dict:
                body = item
            elif isinstance(item, dict):
                body = item
            elif isinstance(item, LimitSignal):
                # in history, the time of the records around it, not when this run saw it
                body = _limit_body(item, last_ts, self.run_started)
            else:
                continue  # SessionIdHint: the source already names its session
            ts = body.get("ts")
            if ts.__class__ is not str or len(ts) != 24 or ts[19] != "." or ts[23] != "Z":  # not ours yet
                ts = last_ts if ts is None else normalize(ts) or last_ts
                body["ts"] = ts
            if watermark is not None:
                if ts is None or ts <= watermark:
                    continue  # the live session already logged this (see MODE_ADOPT in backfill.py)
                watermark = self.watermark = None
            if ts is not None:
                last_ts = ts
                if first_ts is None or ts < first_ts:
                    first_ts = result.first_ts = ts
                if max_ts is None or ts > max_ts:
                    max_ts = result.last_ts = ts
            model = body.get("model")
            if model.__class__ is str and model:
                last_model = model
            if body.get("type") == parse_warning:
                result.parse_warnings += 1
                if len(result.notes) < 3:
                    result.notes.append(str(body.get("message") or "unreadable record"))
            batch.append(body)
            if len(batch) >= BATCH_EVENTS and (first_ts is not None or self.started
                                               or len(batch) >= UNDATED_HEAD_EVENTS):
                self.last_ts = last_ts
                self.flush()
                batch = self.batch
        self.last_ts = last_ts
        self.last_model = last_model

    def _look(self, bodies: list[dict[str, Any]]) -> None:
        """Before `session_started` is written: the first model and cwd its events carry."""
        if self.body_model is None:
            self.body_model = next((model for body in bodies if (model := _text(body.get("model")))), None)
        if self.result.cwd is None:
            self.result.cwd = next((cwd for body in bodies if (cwd := _text(body.get("cwd")))), None)

    def _learn(self, final: bool = False) -> None:
        """cwd and model: the source's, else the reader's optional `info` mapping (what it learnt from
        records, e.g. Claude's per-record `cwd`, or the model of real responses, not placeholders:
        its `first_model` for `session_started`, which may be written after the reader has read
        ahead), else the first an event carried. At the end the reader's latest model, else the latest
        an event carried, wins (for the index row, as reindex and the live supervisor keep it)."""
        info = getattr(self.reader, "info", None)
        info = info if isinstance(info, Mapping) else {}
        result = self.result
        if result.cwd is None:
            result.cwd = _text(info.get("cwd"))
        model = _text(info.get("model") if final else info.get("first_model") or info.get("model"))
        if final and not model:
            model = self.last_model
        if model and (result.model is None or (final and not self.job.source.model)):
            result.model = model

    def flush(self) -> None:
        if not self.batch:
            return
        writer = self._writer()
        if not self.started:
            self.started = True
            self._look(self.batch)
            self._learn()
            self._date_undated_head()
            if self.result.model is None:
                self.result.model = self.body_model
            if writer.last_seq == 0:
                self.result.created = True
                self.batch.insert(0, self._session_started())
        writer.write_many(self.batch, events.SOURCE_BACKFILL)
        self.result.events += len(self.batch)
        self.batch = []

    def _date_undated_head(self) -> None:
        """Records before the first dated one (e.g. a title line) take the first known time, not now."""
        stamp = self.result.first_ts or self._source_time()
        if stamp is None:
            return
        for body in self.batch:
            if body.get("ts") is not None:
                break
            body["ts"] = stamp

    def _source_time(self) -> str | None:
        """When the source says it started, else when its files were last written (its mtime)."""
        source = self.job.source
        stamp = source.started_at if source.started_at is not None else source.ended_at
        return events.normalize_ts(stamp) if stamp is not None else None

    def close(self) -> None:
        if self.writer is None:
            return
        try:
            if not self.writer.flush_pending() or not self.writer.complete:  # complete: none dropped either
                raise ImportFailed(f"could not write {self.writer.path}: {self.writer.last_error or 'failed'}")
            self.result.last_seq = self.writer.last_seq
            if self.writer.provider_session_id and not self.result.provider_session_id:
                self.result.provider_session_id = self.writer.provider_session_id
        finally:
            self.writer.close()

    def _writer(self) -> SessionLogWriter:
        if self.writer is None:
            self.writer = SessionLogWriter(
                self.job.session_id, self.job.provider, path=self.target,
                provider_session_id=self.job.source.provider_session_id or None,
                tell=None,  # a failure is in the summary (once per source), not on stderr from every worker
            )
            self.start_offset = os.path.getsize(self.target)
        return self.writer

    def roll_back(self, existed: bool) -> None:
        """Remove what this job appended (the writer is closed by then)."""
        if self.start_offset is None:
            return
        try:
            if existed:
                os.truncate(self.target, self.start_offset)
            else:
                self.target.unlink(missing_ok=True)
        except OSError:
            pass

    def _session_started(self) -> dict[str, Any]:
        source = self.job.source
        result = self.result
        started = result.first_ts
        if started is None:
            # no dated record (e.g. a rollout zag cannot decompress, a transcript of claude `summary`
            # lines only): the source's own time, for the index row too (it took the time of the import,
            # listing a years-old file as started today)
            started = result.first_ts = self._source_time()
        return events.body(
            events.SESSION_STARTED,
            ts=started,
            provider_session_id=source.provider_session_id or None,
            argv=None,
            cwd=result.cwd,
            model=result.model,
            resumed=False,
            backfilled=True,
        )


def _batches(reader: Any) -> Iterator[list[Any]]:
    """The reader's items in lists: its own `read_batches()` when it has one (fewer round trips
    through generators), else `read()` cut into lists of BATCH_EVENTS."""
    read_batches = getattr(reader, "read_batches", None)
    if callable(read_batches):
        yield from read_batches()
        return
    items = iter(reader.read())
    while True:
        batch = list(islice(items, BATCH_EVENTS))
        if not batch:
            return
        yield batch


def _limit_body(signal: LimitSignal, record_ts: str | None, run_started: float) -> dict[str, Any]:
    """A usage-limit hit found in history: logged, never scheduled."""
    return events.body(
        events.USAGE_LIMIT_HIT,
        # no record before it: the signal's own time, unless a reader stamped it while this run read it
        # (then none: it takes the first dated record's time, not the time of the import)
        ts=record_ts or (signal.observed_at if 0 < signal.observed_at < run_started else None),
        scope=signal.scope,
        reset_at=events.format_ts(signal.reset_at) if signal.reset_at else None,
        scheduled_resume_at=None,
        fallback_used=False,
        incident_id=str(uuid.uuid4()),
        raw=signal.raw,
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _tail_watermark(log: Path, recorded: int, result: ImportResult) -> str | None:
    """The latest transcript timestamp in the part of the log no saved cursor accounts for (beyond
    `recorded` bytes); None when there is none. Equal size: nothing is read."""
    size = _log_size(log)
    if size is None or size == recorded:
        return None
    if size < recorded:
        result.warnings.append(f"session log {log} is smaller ({size} bytes) than when the cursor was saved "
                               f"({recorded} bytes; cut by hand?): continuing from the cursor")
        return None
    return _watermark(log, offset=recorded)


def _log_size(log: Path) -> int | None:
    """The log's size in bytes (0: there is none), or None when it cannot be told."""
    try:
        return os.stat(log).st_size
    except FileNotFoundError:
        return 0
    except OSError:
        return None


def _watermark(log: Path, offset: int = 0) -> str | None:
    """The latest transcript timestamp a zag session already holds, from byte `offset` on (None: it
    holds none there)."""
    latest: str | None = None
    if not log.exists():
        return None
    for event in read_events(log, offset=offset):
        if event.get("type") in events.TRANSCRIPT_TYPES and event.get("source") != events.SOURCE_WRAPPER:
            ts = event.get("ts")
            if isinstance(ts, str) and (latest is None or ts > latest):
                latest = ts
    return latest
