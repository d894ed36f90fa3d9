"""Rebuilding the index's sessions and scheduled resumes from the unified logs alone (`zag reindex`).

Each `sessions/<id>.jsonl` is streamed once, line by line (logs can be gigabytes): every line is decoded
only as far as its envelope (msgspec skips the rest without building it), and the few bookkeeping
events that carry row fields (`session_started`, `session_ended`, `usage_limit_*`) are decoded whole.

What a log says:
- `session_started`: provider, argv, cwd, model, flags, supervisor pid/start/host, heartbeat interval
  (the first one gives the start time; a later one, from a resume, updates the registry fields);
- `heartbeat`: the last heartbeat; `session_ended`: exit code, end time, end reason (its `reason`, e.g.
  `dismissed` by `zag dismiss`, or `cancelled`); zag's notes (wrapper `provider_status`) `agent_started`
  (`data.child_pid`: the agent run again, a resume) and `agent_exited` (`data.exit_code`: the agent's
  exit while the session waits on, for `zag resume` to end with) update the child pid (a later
  `session_started` from `zag resume` has none until it starts the agent) and the exit code; the provider session id is the
  last non-null `provider_session_id` of any line (its owner key, where the provider has one, zag's note
  `provider_session_owner`), the model the last `model` any event named (as the
  supervisor keeps it current); `last_seq` the last valid line's seq;
- `usage_limit_hit` with a `scheduled_resume_at` and no later `usage_limit_resumed` or `session_ended`:
  a pending resume, and the session is `waiting` until it; `usage_limit_resume_started` makes it
  `resuming` (the session `running`: the resumed agent runs; a later `session_started` puts it back to
  pending, as `zag resume` adopts it); a `usage_limit_resume_failed` moves it to its
  `next_resume_at`, or closes it (failed) when that is null (given up) or when the next attempt belongs to
  a new incident (`next_incident_id`: the limit was hit again); a later `usage_limit_hit` closes (failed)
  the older incidents it names in `supersedes` (hit again after their resume began), and its attempts
  go on from its `attempts` (resumes before it without progress) or from the incident it repeats
  (`repeat_of`); zag's
  note (a wrapper `provider_status`, `data.kind = "usage_limit_recovered"`) closes it as done (the agent
  continued by itself), and its note `data.kind = "usage_limit_cancelled"` as cancelled (`zag usage
  cancel`, or zag interrupted, while it waited: the session goes on `running` if the agent stays);
- several runs in one log (`zag resume` appends a `session_started` after a `session_ended`): the last
  one decides the state and the supervisor fields;
- `resumed`: zag continued the session — a `usage_limit_resumed`, or a `session_started` with
  `resumed: true` (a `zag resume` took it over).

The rebuilt rows replace the old ones in one transaction, which first reads what the logs gained since
they were read (supervisors log a change before they write it to the index, so none is undone); a row
that a live `zag resume`/`zag dismiss` claimed before logging keeps its claim. Rows of sessions without a log are dropped;
the `backfill_sources` cursors are kept. A resume the user cancelled in the index stays cancelled.

A ZAG_HOME copied with `cp -r` (or unpacked) has `sessions/` and its logs at the umask's modes: they are
tightened as a command that writes them would (`sessions/` 0700, each log it reads 0600), never through
a symlink.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from zag import paths, states
from zag.logs import codec, events
from zag.logs.ids import is_session_id
from zag.logs.index import DOC_COLUMNS, OWNER_KEY, RESUME_COLUMNS, SESSION_COLUMNS, Index, is_damaged
from zag.logs.reader import iter_complete_lines

# Types whose whole body is needed; every other line is read only as far as its envelope.
_DETAIL_TYPES = frozenset({
    events.SESSION_STARTED, events.SESSION_ENDED, events.USAGE_LIMIT_HIT, events.USAGE_LIMIT_RESUME_STARTED,
    events.USAGE_LIMIT_RESUMED, events.USAGE_LIMIT_RESUME_FAILED,
})
# zag's notes (wrapper `provider_status`, by `data.kind`) that close the pending incident they name
_NOTE_CLOSES = {events.NOTE_USAGE_LIMIT_RECOVERED: states.RESUME_DONE,
                events.NOTE_USAGE_LIMIT_CANCELLED: states.RESUME_CANCELLED}
_STARTED_FIELDS = (
    "cwd", "model", "hostname", "supervisor_pid", "supervisor_started", "child_pid", "heartbeat_secs",
)


class _Envelope(msgspec.Struct):
    seq: int | None = None
    ts: str | None = None
    session_id: str | None = None
    provider: str | None = None
    provider_session_id: str | None = None
    source: str | None = None
    type: str | None = None
    model: Any = None   # on the events that name one (messages, usage, session_started)


_envelope_decoder = msgspec.json.Decoder(_Envelope)


@dataclass
class Incident:
    """One usage-limit incident as the log tells it."""

    incident_id: str
    provider_session_id: str | None
    scope: str | None
    reset_at: float | None
    resume_at: float | None
    fallback_used: bool
    raw: str | None
    created_at: float
    updated_at: float
    attempts: int = 0
    failed: bool = False
    status: str = states.RESUME_PENDING


@dataclass
class ScannedSession:
    """What one log says about its session: the index row and its incidents."""

    row: dict[str, Any]
    incidents: list[Incident] = field(default_factory=list)
    bad_lines: int = 0
    torn_tail: bool = False


@dataclass
class ReindexReport:
    sessions: int = 0
    resumes: int = 0
    bad_lines: int = 0
    torn_tails: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why)
    dropped: int = 0  # index rows whose log is gone


def scan_log(path: Path) -> ScannedSession | None:
    """Read one unified log; None if it holds no valid event at all."""
    scan = _Scan(path)
    scan.read()
    return scan.scanned()


class _Scan:
    """The running state while one log is read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.first: _Envelope | None = None
        self.last_seq = 0
        self.last_ts: str | None = None
        self.provider_session_id: str | None = None
        self.model: str | None = None
        self.started_ts: str | None = None
        self.started: dict[str, Any] = {}
        self.resumed = False
        self.ended: dict[str, Any] | None = None
        self.exit_code: int | None = None  # the agent's last: `session_ended`, or zag's note while it waits
        self.ended_ts: str | None = None
        self.last_heartbeat: str | None = None
        self.heartbeat_secs: Any = None
        self.incidents: dict[str, Incident] = {}
        self.owners: dict[str, str] = {}  # provider session id → its owner key (zag's notes)
        self.bad_lines = 0
        self.end = 0  # where the lines read so far end
        self._scanned: tuple[int, ScannedSession | None] | None = None

    def read(self) -> None:
        """Read the lines completed since the last read."""
        for self.end, line in iter_complete_lines(self.path, self.end):
            self.feed(line)

    def scanned(self) -> ScannedSession | None:
        """What the lines read so far say (kept until more are read)."""
        if self._scanned is not None and self._scanned[0] == self.end:
            return self._scanned[1]
        result = self.result()
        if result is not None:
            try:
                result.torn_tail = self.path.stat().st_size > self.end
            except OSError:
                pass
        self._scanned = (self.end, result)
        return result

    def feed(self, line: bytes) -> None:
        try:
            env = _envelope_decoder.decode(line)
        except (msgspec.DecodeError, RecursionError):  # nesting too deep: msgspec raises RecursionError
            self.bad_lines += 1
            return
        if not env.type:
            self.bad_lines += 1
            return
        if self.first is None:
            self.first = env
        if env.seq is not None and env.seq > self.last_seq:
            self.last_seq = env.seq
        if env.ts and (self.last_ts is None or env.ts > self.last_ts):
            self.last_ts = env.ts   # the latest, as backfill takes it: transcript records are not always in order
        if env.provider_session_id:
            self.provider_session_id = env.provider_session_id
        if isinstance(env.model, str) and env.model:
            self.model = env.model
        if env.type == events.HEARTBEAT:
            self.last_heartbeat = env.ts
        elif env.type in _DETAIL_TYPES or (env.type == events.PROVIDER_STATUS
                                           and env.source == events.SOURCE_WRAPPER):  # zag's own notes
            try:
                event = codec.loads(line)
            except codec.DecodeError:  # pragma: no cover - the envelope decoded, so the line is JSON
                return
            self._detail(env, event)

    def _detail(self, env: _Envelope, event: dict[str, Any]) -> None:
        kind = env.type
        at = _epoch(env.ts)
        if kind == events.SESSION_STARTED:
            if self.started_ts is None:
                self.started_ts = env.ts
            self.started.update({k: v for k, v in event.items() if v is not None})
            self.started["child_pid"] = event.get("child_pid")  # null from `zag resume`: no child yet
            self.resumed = self.resumed or bool(event.get("resumed"))
            self.ended, self.ended_ts = None, None  # a later start (a resume) reopens the session
            for incident in self.incidents.values():
                if incident.status == states.RESUME_RESUMING:  # the attempt ended with the supervisor before
                    incident.status = states.RESUME_PENDING
        elif kind == events.SESSION_ENDED:
            self.ended, self.ended_ts = event, env.ts
            self.exit_code = _int(event.get("exit_code"))
            for incident in self.incidents.values():
                if incident.status in states.RESUME_OPEN_STATES:
                    cancelled = bool(event.get("cancelled")) or not incident.failed
                    incident.status = states.RESUME_CANCELLED if cancelled else states.RESUME_FAILED
                    incident.updated_at = at or incident.updated_at
        elif kind == events.USAGE_LIMIT_HIT:
            self._hit(env, event, at)
        elif kind == events.PROVIDER_STATUS:
            data = event.get("data")
            if not isinstance(data, dict):
                return
            note = data.get("kind")
            if note == events.NOTE_AGENT_STARTED:
                self.started["child_pid"] = data.get("child_pid")
            elif note == events.NOTE_AGENT_EXITED:
                self.exit_code = _int(data.get("exit_code"))
            elif note == events.NOTE_PROVIDER_OWNER:
                if isinstance(data.get("provider_session_id"), str) and isinstance(data.get("owner_key"), str):
                    self.owners[data["provider_session_id"]] = data["owner_key"]
            closes = _NOTE_CLOSES.get(note) if isinstance(note, str) else None
            if closes is not None:
                incident = self.incidents.get(str(data.get("incident_id")))
                if incident is not None and incident.status in states.RESUME_OPEN_STATES:
                    incident.status = closes
                    incident.updated_at = at or incident.updated_at
        else:
            incident = self.incidents.get(str(event.get("incident_id")))
            if incident is None:
                return
            attempt = event.get("attempt")
            if isinstance(attempt, int) and not isinstance(attempt, bool):
                incident.attempts = max(incident.attempts, attempt)
            incident.updated_at = at or incident.updated_at
            if kind == events.USAGE_LIMIT_RESUME_STARTED:
                if incident.status in states.RESUME_OPEN_STATES:
                    incident.status = states.RESUME_RESUMING
            elif kind == events.USAGE_LIMIT_RESUMED:
                incident.status = states.RESUME_DONE
                self.resumed = True  # zag continued the session after a usage limit
            else:
                incident.failed = True
                if "next_resume_at" in event and incident.status in states.RESUME_OPEN_STATES:
                    next_at = _epoch(event.get("next_resume_at"))
                    if next_at is None or event.get("next_incident_id"):  # given up, or goes on as another
                        incident.status = states.RESUME_FAILED
                    else:
                        incident.status, incident.resume_at = states.RESUME_PENDING, next_at

    def _hit(self, env: _Envelope, event: dict[str, Any], at: float | None) -> None:
        incident_id = event.get("incident_id")
        if not isinstance(incident_id, str) or not incident_id:
            return
        resume_at = _epoch(event.get("scheduled_resume_at"))
        raw = event.get("raw")
        superseded = event.get("supersedes")
        for old_id in superseded if isinstance(superseded, list) else ():
            old = self.incidents.get(old_id) if isinstance(old_id, str) else None
            if old is not None and old.status in states.RESUME_OPEN_STATES:
                old.status = states.RESUME_FAILED
                old.updated_at = at or old.updated_at
        repeated = self.incidents.get(event.get("repeat_of")) if isinstance(event.get("repeat_of"), str) else None
        self.incidents[incident_id] = Incident(
            incident_id=incident_id,
            provider_session_id=env.provider_session_id or self.provider_session_id,
            scope=event.get("scope"),
            reset_at=_epoch(event.get("reset_at")),
            resume_at=resume_at,
            fallback_used=bool(event.get("fallback_used")),
            raw=raw if isinstance(raw, str) or raw is None else codec.dumps(raw).decode(),
            created_at=at or time.time(),
            updated_at=at or time.time(),
            # attempts go on from the resumes before it that ended without progress (a repeat's included)
            attempts=max(_int(event.get("attempts")) or 0, repeated.attempts if repeated is not None else 0),
            # a hit that scheduled nothing (e.g. found in history by backfill) is not waiting
            status=states.RESUME_PENDING if resume_at is not None else states.RESUME_DONE,
        )

    def result(self) -> ScannedSession | None:
        if self.first is None:
            return None
        started = self.started
        session_id = self.path.stem
        provider = started.get("provider") or self.first.provider or "unknown"
        started_at = _epoch(self.started_ts) or _epoch(self.first.ts) or _mtime(self.path)
        backfilled = bool(started.get("backfilled"))
        pending = [i for i in self.incidents.values() if i.status == states.RESUME_PENDING]
        if self.ended is not None or backfilled:
            state = states.EXITED
        elif pending:
            state = states.WAITING
        else:
            state = states.RUNNING
        ended_at = _epoch(self.ended_ts) if self.ended is not None else None
        if ended_at is None and state == states.EXITED:
            ended_at = _epoch(self.last_ts)
        row: dict[str, Any] = {
            "session_id": session_id,
            "provider": provider,
            "provider_session_id": self.provider_session_id,
            "state": state,
            "argv": started.get("argv") if isinstance(started.get("argv"), list) else None,
            "started_at": started_at,
            "ended_at": ended_at,
            "updated_at": _epoch(self.last_ts) or started_at,
            "exit_code": self.exit_code,
            "end_reason": _end_reason(self.ended),
            "last_heartbeat": _epoch(self.last_heartbeat),
            "resume_at": min(i.resume_at for i in pending) if pending else None,  # type: ignore[type-var]
            "interactive": bool(started.get("interactive")),
            "resumed": self.resumed,
            "backfilled": backfilled,
            "last_seq": self.last_seq,
            "log_path": str(self.path),
            "provider_owner_key": self.owners.get(self.provider_session_id or ""),
        }
        for name in _STARTED_FIELDS:
            row[name] = started.get(name)
        row["model"] = self.model or started.get("model")
        for name in ("supervisor_pid", "child_pid"):
            row[name] = _int(row[name])
        incidents = [
            i for i in self.incidents.values() if i.status != states.RESUME_DONE or i.resume_at is not None
        ]
        return ScannedSession(row=row, incidents=incidents, bad_lines=self.bad_lines)


def iter_logs(sessions_dir: Path) -> Iterator[Path]:
    """Every `<session id>.jsonl` in the folder (other files are not zag's)."""
    try:
        with os.scandir(sessions_dir) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except FileNotFoundError:
        return
    for entry in entries:  # DirEntry.is_file: no stat (rebuild's second pass runs with the index locked)
        path = Path(entry.path)
        if path.suffix == ".jsonl" and is_session_id(path.stem) and entry.is_file():
            yield path


def _make_folder_private(sessions_dir: Path) -> None:
    """`sessions/` 0700, if it is there (reindexing makes nothing): another user's symlink is left alone,
    its logs read all the same."""
    if sessions_dir.is_dir():
        try:
            paths.ensure_private_dir(sessions_dir)
        except OSError:
            pass


def _make_log_private(path: Path) -> None:
    """A log of ours 0600 (group and other bits taken away), unless it is a symlink (not followed)."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | paths.NOFOLLOW)
    except OSError:
        return
    try:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and info.st_mode & 0o077 and info.st_uid == os.geteuid():
            os.fchmod(fd, stat.S_IMODE(info.st_mode) & 0o600)
    except OSError:
        pass
    finally:
        os.close(fd)


def open_or_replace_index(path: Path | None = None) -> tuple[Index, Path | None]:
    """Open the index; if it is damaged beyond opening, move it aside and start a new one.

    Returns the index and where the damaged file went (None if it was fine). Any other error (a folder
    or index that is not writable, a locked index) is raised: moving a sound index aside would lose its
    backfill cursors for nothing.
    """
    import sqlite3

    path = path or paths.index_db()
    try:
        return Index(path), None
    except sqlite3.DatabaseError as exc:
        if not (is_damaged(exc) or (path.exists() and not path.is_file())):
            raise
    aside = move_aside(path)
    return Index(path), aside


def move_aside(path: Path) -> Path:
    """Move a damaged index (with its -wal and -shm files) to `<name>.damaged-<time>`; returns where."""
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    for suffix in ("-wal", "-shm"):
        sidecar = Path(str(path) + suffix)
        if sidecar.exists():
            sidecar.replace(Path(str(aside) + suffix))
    path.replace(aside)
    return aside


def reindex(path: Path | None = None, sessions_dir: Path | None = None) -> tuple[ReindexReport, Path | None]:
    """Rebuild the index at `path` from the logs; an index found damaged, whether on opening or only while
    rebuilding (it opens, but pages are corrupt), is moved aside (`move_aside`) and a new one built.
    Returns the report and where a damaged index went (None if it was sound)."""
    import sqlite3

    path = path or paths.index_db()
    index, damaged = open_or_replace_index(path)
    try:
        with index:
            return rebuild(index, sessions_dir), damaged
    except sqlite3.DatabaseError as exc:
        if damaged is not None or not is_damaged(exc):
            raise
    damaged = move_aside(path)
    with Index(path) as index:
        return rebuild(index, sessions_dir), damaged


def rebuild(index: Index, sessions_dir: Path | None = None) -> ReindexReport:
    """Replace the index's sessions and resumes with what the logs in `sessions_dir` say."""
    sessions_dir = sessions_dir or paths.sessions_dir()
    _make_folder_private(sessions_dir)
    scans: dict[Path, _Scan] = {}
    _read_logs(sessions_dir, scans)
    for scan in scans.values():
        scan.scanned()  # the rows, built now: in the transaction only those of logs grown since are built again
    with index.transaction() as conn:
        # Supervisors log a change before they write it to the index, and their index writes now wait
        # for this transaction: what they logged while the logs were read is read now (only the lines
        # and logs added since), so the swap below cannot undo an update they made meanwhile.
        report = _read_logs(sessions_dir, scans)
        scanned = [result for result in (scan.scanned() for scan in scans.values()) if result is not None]
        report.bad_lines = sum(result.bad_lines for result in scanned)
        report.torn_tails = sum(int(result.torn_tail) for result in scanned)
        report.skipped += [(path.name, "no valid event") for path, scan in scans.items() if scan.first is None]
        report.sessions = len(scanned)
        report.resumes = sum(len(s.incidents) for s in scanned)
        report.dropped = _replace(conn, scanned)
    return report


def _read_logs(sessions_dir: Path, scans: dict[Path, _Scan]) -> ReindexReport:
    """Read every log in the folder on from where `scans` stopped (a log seen first: from its start)."""
    report = ReindexReport()
    listed = set()
    for path in iter_logs(sessions_dir):
        if path not in scans:
            _make_log_private(path)
        scan = scans.get(path) or _Scan(path)
        try:
            size = path.stat().st_size
            if size < scan.end:  # rewritten meanwhile: read it again
                scan = _Scan(path)
            if scan.end == 0 or size != scan.end:
                scan.read()
        except OSError as exc:
            report.skipped.append((path.name, exc.strerror or str(exc)))
            continue
        scans[path] = scan
        listed.add(path)
    for path in set(scans) - listed:  # gone, or unreadable now
        del scans[path]
    return report


def _replace(conn: Any, scanned: list[ScannedSession]) -> int:
    """Swap in the rebuilt rows (in the caller's transaction); return how many old rows had no log any more."""
    session_rows = [_session_values(s.row) for s in scanned]
    resume_rows = [_resume_values(s.row, incident) for s in scanned for incident in s.incidents]
    kept_ids = {s.row["session_id"] for s in scanned}
    old = {row[0]: row[1:] for row in conn.execute(f"SELECT session_id, {', '.join(_CLAIMED)} FROM sessions")}
    closed = {
        row[0]: row[1]
        for row in conn.execute(
            "SELECT incident_id, status FROM resumes WHERE status IN (?, ?, ?)",
            (states.RESUME_CANCELLED, states.RESUME_DONE, states.RESUME_FAILED),
        )
    }
    session_rows = [_keep_live_fields(values, old.get(values[0])) for values in session_rows]
    resume_rows = [_keep_closed(values, closed.get(values[0])) for values in resume_rows]
    conn.execute("DELETE FROM sessions")
    conn.execute("DELETE FROM resumes")
    conn.execute("DELETE FROM session_owner_keys")
    conn.executemany(
        f"INSERT INTO sessions ({', '.join(DOC_COLUMNS)}) VALUES ({', '.join('?' for _ in DOC_COLUMNS)})",
        (values[:_OWNER_KEY] + values[_OWNER_KEY + 1:] for values in session_rows),
    )
    conn.executemany("INSERT INTO session_owner_keys (session_id, owner_key) VALUES (?, ?)",
                     ((values[0], values[_OWNER_KEY]) for values in session_rows if values[_OWNER_KEY] is not None))
    conn.executemany(
        f"INSERT OR REPLACE INTO resumes ({', '.join(RESUME_COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in RESUME_COLUMNS)})",
        resume_rows,
    )
    return len(set(old) - kept_ids)


_CHILD_PID = SESSION_COLUMNS.index("child_pid")
_OWNER_KEY = SESSION_COLUMNS.index(OWNER_KEY)   # (its own table: see `zag.logs.index`)
_LAST_HEARTBEAT = SESSION_COLUMNS.index("last_heartbeat")
_STATUS = RESUME_COLUMNS.index("status")


# what `zag resume` (and `zag dismiss`) set when they claim a session's row, before they write its log
_CLAIMED = ("state", "hostname", "supervisor_pid", "supervisor_started", "child_pid", "last_heartbeat",
            "heartbeat_secs", "interactive", "resumed", "ended_at", "end_reason", "resume_at")
_SUPERVISOR = ("supervisor_pid", "supervisor_started", "hostname")


def _keep_live_fields(values: tuple[Any, ...], old: tuple[Any, ...] | None) -> tuple[Any, ...]:
    """A running supervisor may have updated its row after its log was read: keep the newer values. A live
    process that claimed the row and has not logged its start yet keeps its claim (else the session
    would look dead again, and a second `zag resume` could take it too)."""
    if old is None:
        return values
    merged = list(values)
    was = dict(zip(_CLAIMED, old))
    if _claimed_since(values, was):
        for name, value in was.items():
            merged[SESSION_COLUMNS.index(name)] = value
        return tuple(merged)
    old_child, old_beat = was["child_pid"], was["last_heartbeat"]
    if merged[_CHILD_PID] is None and old_child is not None:
        merged[_CHILD_PID] = old_child
    if old_beat is not None and (merged[_LAST_HEARTBEAT] is None or old_beat > merged[_LAST_HEARTBEAT]):
        merged[_LAST_HEARTBEAT] = old_beat
    return tuple(merged)


def _claimed_since(values: tuple[Any, ...], was: dict[str, Any]) -> bool:
    """The index names another supervisor than the log's last start, and that process runs."""
    from zag.wrapper.liveness import supervisor_alive

    pid, started, host = (was[name] for name in _SUPERVISOR)
    logged = tuple(values[SESSION_COLUMNS.index(name)] for name in _SUPERVISOR)
    if (pid, started, host) == logged or not pid or not started:
        return False
    return supervisor_alive(pid, started, host) is True


def _keep_closed(values: tuple[Any, ...], old_status: str | None) -> tuple[Any, ...]:
    """Never reopen a resume the index already closed (e.g. cancelled while its supervisor was dead)."""
    if old_status is None or values[_STATUS] not in states.RESUME_OPEN_STATES:
        return values
    merged = list(values)
    merged[_STATUS] = old_status
    return tuple(merged)


def _session_values(row: dict[str, Any]) -> tuple[Any, ...]:
    values = dict(row)
    if values.get("argv") is not None:
        values["argv"] = codec.dumps(values["argv"]).decode()
    for flag in ("interactive", "resumed", "backfilled"):
        values[flag] = int(bool(values.get(flag)))
    # printable: a ZAG_HOME whose name is not UTF-8 is in every log_path (SQLite refuses lone surrogates)
    return tuple(codec.printable(values.get(name)) for name in SESSION_COLUMNS)


def _resume_values(row: dict[str, Any], incident: Incident) -> tuple[Any, ...]:
    values = {
        "incident_id": incident.incident_id,
        "session_id": row["session_id"],
        "provider": row["provider"],
        "provider_session_id": incident.provider_session_id,
        "scope": incident.scope,
        "reset_at": incident.reset_at,
        "resume_at": incident.resume_at if incident.resume_at is not None else incident.created_at,
        "fallback_used": int(incident.fallback_used),
        "status": incident.status,
        "attempts": incident.attempts,
        "raw": incident.raw,
        "created_at": incident.created_at,
        "updated_at": incident.updated_at,
    }
    return tuple(values[name] for name in RESUME_COLUMNS)


def _epoch(value: Any) -> float | None:
    """Epoch seconds from our RFC 3339 timestamps (or a number); None when absent or unreadable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return events.parse_ts(value)
        except ValueError:
            return None
    return None


def _end_reason(ended: dict[str, Any] | None) -> str | None:
    """`reason` of the last `session_ended` (`dismissed`: `zag dismiss` wrote it), else `cancelled` when a
    wait was cancelled."""
    if ended is None:
        return None
    reason = ended.get("reason")
    if isinstance(reason, str) and reason:
        return reason
    return "cancelled" if ended.get("cancelled") else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()
