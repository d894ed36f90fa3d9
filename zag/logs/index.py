"""The SQLite index (`$ZAG_HOME/index.sqlite`, WAL): sessions, live registry, resumes, backfill cursors.

The unified logs are the source of truth; this is a cache that `zag reindex` rebuilds from them. Many
zag processes use it at once: every write is one short `BEGIN IMMEDIATE` transaction that updates only
the columns it owns (no read-modify-write), so concurrent writers never lose each other's updates.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from zag import paths, states
from zag.logs.ids import BadSessionId, check_prefix

SCHEMA_VERSION = 7  # 2, 3: the `session_json` cache (see `_JSON_CACHE_SCHEMA`); 4: `backfill_sources.log_size`;
# 5: fingerprints stored before it are forgotten (see `_migrate`); 6: `sessions.provider_owner_key`; 7: that key
# moved to `session_owner_keys` (see `_move_owner_keys`)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    session_id          TEXT PRIMARY KEY,
    provider            TEXT NOT NULL,
    provider_session_id TEXT,
    state               TEXT NOT NULL,
    cwd                 TEXT,
    argv                TEXT,            -- JSON list: the agent's argv as the user gave it
    model               TEXT,
    started_at          REAL NOT NULL,   -- epoch seconds
    ended_at            REAL,
    updated_at          REAL NOT NULL,
    exit_code           INTEGER,
    end_reason          TEXT,            -- e.g. "cancelled" when a wait was cancelled
    hostname            TEXT,
    supervisor_pid      INTEGER,
    supervisor_started  TEXT,            -- the pid's start time, to tell a reused pid apart
    child_pid           INTEGER,
    last_heartbeat      REAL,
    heartbeat_secs      REAL,
    resume_at           REAL,            -- while waiting: when the resume is due
    interactive         INTEGER NOT NULL DEFAULT 0,
    resumed             INTEGER NOT NULL DEFAULT 0,
    backfilled          INTEGER NOT NULL DEFAULT 0,
    last_seq            INTEGER NOT NULL DEFAULT 0,
    log_path            TEXT
);
CREATE INDEX IF NOT EXISTS sessions_by_start ON sessions(started_at DESC);
CREATE INDEX IF NOT EXISTS sessions_by_state ON sessions(state);
CREATE INDEX IF NOT EXISTS sessions_by_provider_id ON sessions(provider, provider_session_id);

CREATE TABLE IF NOT EXISTS resumes (
    incident_id         TEXT PRIMARY KEY,
    session_id          TEXT NOT NULL,
    provider            TEXT NOT NULL,
    provider_session_id TEXT,
    scope               TEXT,
    reset_at            REAL,
    resume_at           REAL NOT NULL,
    fallback_used       INTEGER NOT NULL DEFAULT 0,
    status              TEXT NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 0,
    raw                 TEXT,
    created_at          REAL NOT NULL,
    updated_at          REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS resumes_by_session ON resumes(session_id);
CREATE INDEX IF NOT EXISTS resumes_by_status ON resumes(status);

CREATE TABLE IF NOT EXISTS backfill_sources (
    provider    TEXT NOT NULL,
    source_key  TEXT NOT NULL,           -- stable id of one provider session's files
    session_id  TEXT NOT NULL,           -- the zag session its events go to
    fingerprint TEXT,                    -- sizes/mtimes when last read: equal means unchanged
    cursor      TEXT,                    -- JSON: where the provider's reader stopped
    updated_at  REAL NOT NULL,
    log_size    INTEGER,                 -- bytes of the session log this cursor accounts for (NULL: unknown)
    PRIMARY KEY (provider, source_key)
);
"""
# The provider's `owner_key` of a session's provider session id, where it is not the id (goose's). Not a
# column of `sessions`: a released zag (schema 5) reads a row with `SELECT *` and writes it back checking each
# name against its own list (`zag resume` adopting a row), so any column added there breaks it.
_OWNER_KEYS_SCHEMA = """
CREATE TABLE IF NOT EXISTS session_owner_keys (
    session_id  TEXT PRIMARY KEY,
    owner_key   TEXT NOT NULL
);
"""
_SCHEMA += _OWNER_KEYS_SCHEMA

SESSION_COLUMNS = (
    "session_id", "provider", "provider_session_id", "state", "cwd", "argv", "model", "started_at",
    "ended_at", "updated_at", "exit_code", "end_reason", "hostname", "supervisor_pid",
    "supervisor_started", "child_pid", "last_heartbeat", "heartbeat_secs", "resume_at",
    "interactive", "resumed", "backfilled", "last_seq", "log_path", "provider_owner_key",
)
OWNER_KEY = "provider_owner_key"   # kept in `session_owner_keys`, not in `sessions` (see `_SCHEMA`)
# the columns of the `sessions` table, and what `zag sessions --json` and the other listings show: not the
# owner key (bookkeeping for backfill)
DOC_COLUMNS = tuple(name for name in SESSION_COLUMNS if name != OWNER_KEY)
RESUME_COLUMNS = (
    "incident_id", "session_id", "provider", "provider_session_id", "scope", "reset_at", "resume_at",
    "fallback_used", "status", "attempts", "raw", "created_at", "updated_at",
)


class UnknownSession(BadSessionId):
    """No session matches what the user typed."""


class AmbiguousSession(BadSessionId):
    """More than one session matches the prefix the user typed."""


_PAGE_ROWS = 2000  # sessions read per read transaction by the listings (see Index._pages)


class Index:
    """One connection to the index. Cheap to open; open one per process (or thread)."""

    def __init__(self, path: Path | None = None, *, timeout: float = 30.0) -> None:
        self.path = path or paths.index_db()
        if self.path.parent == paths.home():
            paths.ensure_home()
        else:
            paths.ensure_private_dir(self.path.parent)
        paths.refuse_foreign_symlink(self.path)  # SQLite follows one: it would write the index where it points
        _make_private(self.path)
        self._conn = sqlite3.connect(
            self.path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._migrate(timeout)
        self._file = _file_identity(self.path)

    def close(self) -> None:
        self._conn.close()

    def replaced(self) -> bool:
        """Whether the file at `path` is no longer the one this connection has open (moved aside or
        removed, e.g. by `zag reindex`): a long-lived writer then opens a new connection, or what it
        writes is never seen again."""
        return _file_identity(self.path) != self._file

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------------
    def _migrate(self, timeout: float) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version >= SCHEMA_VERSION:
            return
        self._use_wal(timeout)
        self._add_missing_columns()
        self._move_owner_keys()
        # A zag before 5 stored a source's fingerprint even when its reader stopped short of a torn last
        # line, which was then skipped as unchanged for good: each source is read once more from its cursor.
        forget = "UPDATE backfill_sources SET fingerprint = NULL;" if version < 5 else ""
        self._conn.executescript(
            f"BEGIN IMMEDIATE; {_SCHEMA} {_JSON_CACHE_SCHEMA} {forget} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        )

    def _use_wal(self, timeout: float) -> None:
        """Switch a new index to WAL. Several processes opening a new index at once (the first `zag run`s of a
        batch, a `zag ps` beside them) race for that switch, and SQLite answers the losers "database is
        locked" at once, without waiting `busy_timeout` (a wait could deadlock): they try again, bounded, and
        are done once another one switched it."""
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                if self._conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    self._conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def _add_missing_columns(self) -> None:
        """Columns added to existing tables since they were created (checked inside the transaction: two
        processes may migrate at once)."""
        with self.transaction() as conn:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(backfill_sources)")}
            if columns and "log_size" not in columns:
                conn.execute("ALTER TABLE backfill_sources ADD COLUMN log_size INTEGER")

    def _move_owner_keys(self) -> None:
        """A schema 6 index kept the owner key as a column of `sessions`, which broke a released zag's
        `zag resume` on it: the keys move to their table and the column goes (where SQLite can drop one)."""
        with self.transaction() as conn:
            if OWNER_KEY not in {row[1] for row in conn.execute("PRAGMA table_info(sessions)")}:
                return
            conn.execute(_OWNER_KEYS_SCHEMA)
            conn.execute(f"INSERT OR REPLACE INTO session_owner_keys (session_id, owner_key) "
                         f"SELECT session_id, {OWNER_KEY} FROM sessions WHERE {OWNER_KEY} IS NOT NULL")
            if sqlite3.sqlite_version_info >= (3, 35, 0):
                conn.execute(f"ALTER TABLE sessions DROP COLUMN {OWNER_KEY}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front (`BEGIN IMMEDIATE`), so it never fails half way."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        else:
            self._conn.execute("COMMIT")

    def _update(self, table: str, key: str, key_value: Any, fields: dict[str, Any], *, nested: bool = False) -> int:
        """`nested`: inside the caller's transaction."""
        if not fields:
            return 0
        columns = DOC_COLUMNS if table == "sessions" else RESUME_COLUMNS
        unknown = set(fields) - set(columns)
        if unknown:
            raise ValueError(f"unknown {table} columns: {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        sql = f"UPDATE {table} SET {assignments} WHERE {key} = ?"
        if nested:
            return _execute(self._conn, sql, [*fields.values(), key_value]).rowcount
        with self.transaction() as conn:
            return _execute(conn, sql, [*fields.values(), key_value]).rowcount

    # -- sessions -------------------------------------------------------------------------------
    def add_session(self, **fields: Any) -> None:
        """Insert a session row (or replace it wholesale, as `reindex` does)."""
        now = time.time()
        fields.setdefault("updated_at", now)
        fields.setdefault("started_at", now)
        _redact_columns(fields)
        if isinstance(fields.get("argv"), (list, tuple)):
            fields["argv"] = _argv_json(fields["argv"])
        unknown = set(fields) - set(SESSION_COLUMNS)
        if unknown:
            raise ValueError(f"unknown sessions columns: {sorted(unknown)}")
        owner_key = fields.pop(OWNER_KEY, None)
        names = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        with self.transaction() as conn:
            _execute(conn, f"INSERT OR REPLACE INTO sessions ({names}) VALUES ({marks})", list(fields.values()))
            _set_owner_key(conn, fields["session_id"], owner_key)

    def update_session(self, session_id: str, **fields: Any) -> bool:
        """Set the given columns of one session (and `updated_at`); False if no such session."""
        fields.setdefault("updated_at", time.time())
        _redact_columns(fields)
        if isinstance(fields.get("argv"), (list, tuple)):
            fields["argv"] = _argv_json(fields["argv"])
        if OWNER_KEY not in fields:
            return self._update("sessions", "session_id", session_id, fields) > 0
        owner_key = fields.pop(OWNER_KEY)
        with self.transaction():
            updated = self._update("sessions", "session_id", session_id, fields, nested=True) > 0
            if updated:
                _set_owner_key(self._conn, session_id, owner_key)
        return updated

    def heartbeat(self, session_id: str, last_seq: int, *, at: float | None = None) -> None:
        at = at or time.time()
        self._update("sessions", "session_id", session_id,
                     {"last_heartbeat": at, "last_seq": last_seq, "updated_at": at})

    def get_session(self, session_id: str) -> dict[str, Any] | None:
        row = self._conn.execute(
            f"SELECT {', '.join('s.' + name for name in DOC_COLUMNS)}, k.owner_key AS {OWNER_KEY} FROM sessions s "
            "LEFT JOIN session_owner_keys k ON k.session_id = s.session_id WHERE s.session_id = ?",
            (session_id,)).fetchone()
        return _session_dict(row) if row else None

    def list_sessions(
        self,
        *,
        provider: str | None = None,
        states_in: Iterable[str] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Sessions, newest first."""
        where, params = _session_filter(provider, states_in)
        sql = f"SELECT * FROM sessions{where} ORDER BY started_at DESC, session_id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [_session_dict(row) for row in self._conn.execute(sql, params)]

    def iter_sessions(
        self,
        *,
        provider: str | None = None,
        states_in: Iterable[str] | None = None,
        prefix: str = "",
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """`list_sessions`, also by id prefix (lower-case), read as the caller goes: a caller that stops
        after a few reads a few, one that renders each row as it comes never holds them all."""
        where, params = _session_filter(provider, states_in)
        if prefix:
            where += (" AND " if where else " WHERE ") + "session_id >= ? AND session_id < ?"
            params.extend((prefix, prefix + "\uffff"))
        for row in self._pages("SELECT * FROM sessions", where, params, limit):
            yield _session_dict(row)

    def iter_session_json(
        self,
        *,
        provider: str | None = None,
        states_in: Iterable[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[tuple[str, bytes]]:
        """`(stored state, UTF-8 JSON object)` per session, newest first (ties by session id).

        The rows of `list_sessions`, streamed (a page at a time) from the `session_json` cache that triggers
        keep current, so `zag ps --json` and `zag sessions --json` have no Python object per column, even
        with tens of thousands of sessions. The object has every column, `argv` as a list (null if
        unreadable) and the flags as booleans.
        """
        where, params = _session_filter(provider, states_in)
        if states_in is not None:
            # the live few through `sessions_by_state`: session_json has no index on state, and scanning it
            # read every session's document (`zag ps --json` with 80,000 sessions, none live: 0.2 s)
            where, params = _session_filter(provider, None)
            wanted = list(states_in)
            where += (" AND " if where else " WHERE ") + (
                f"session_id IN (SELECT session_id FROM sessions WHERE state IN ({', '.join('?' for _ in wanted)}))")
            params.extend(wanted)
        select = "SELECT state, CAST(doc AS BLOB), started_at, session_id FROM session_json"
        return ((row[0], row[1]) for row in self._pages(select, where, params, limit))

    def _pages(self, select: str, where: str, params: list[Any], limit: int | None) -> Iterator[sqlite3.Row]:
        """The rows of `select` + `where` (which must select started_at and session_id), newest first (ties
        by session id), read `_PAGE_ROWS` at a time, each page fetched whole. One statement stepped as the
        caller goes kept a read transaction open for as long as the caller took: `zag sessions --json |
        less` left open overnight pinned the WAL, which no checkpoint could then reset while every
        supervisor's heartbeat grew it. Between pages no transaction is open."""
        after: tuple[float, str] | None = None
        left = None if limit is None else int(limit)
        while left is None or left > 0:
            size = _PAGE_ROWS if left is None else min(_PAGE_ROWS, left)
            clause, values = where, list(params)
            if after is not None:
                clause += (" AND " if clause else " WHERE ") + (
                    "started_at <= ? AND NOT (started_at = ? AND session_id <= ?)")
                values += [after[0], after[0], after[1]]
            rows = self._conn.execute(f"{select}{clause} ORDER BY started_at DESC, session_id LIMIT ?",
                                      [*values, size]).fetchall()
            yield from rows
            if len(rows) < size:
                return
            after = (rows[-1]["started_at"], rows[-1]["session_id"])
            if left is not None:
                left -= len(rows)

    def resolve_session(self, text: str) -> str:
        """A full session id from an id or unique prefix; `BadSessionId` (user-facing) otherwise."""
        prefix = check_prefix(text)
        rows = self._conn.execute(
            "SELECT session_id FROM sessions WHERE session_id >= ? AND session_id < ? LIMIT 6",
            (prefix, prefix + "\uffff"),
        ).fetchall()
        if not rows:
            raise UnknownSession(f"no session matches {text!r} (see `zag sessions`)")
        if len(rows) > 1:
            shown = ", ".join(row[0][:13] for row in rows[:5])
            raise AmbiguousSession(f"{text!r} matches several sessions ({shown}…); type more of the id")
        return rows[0][0]

    def latest_session_id(self, now: float | None = None) -> str | None:
        """The session `--latest` names: the newest live one (running or waiting, its heartbeat fresh: a
        session `zag resume` took up is live again however old), else the newest zag ran, else the newest
        imported one. A supervisor silent for `DEAD_AFTER_HEARTBEATS` heartbeats does not count as live."""
        now = time.time() if now is None else now
        # three questions, each answered through an index (one ORDER BY over all of them sorted every session)
        for sql, params in (
            ("SELECT session_id FROM sessions WHERE state IN (?, ?) "
             "AND last_heartbeat >= ? - ? * COALESCE(heartbeat_secs, 10.0) - 1.0 "
             "ORDER BY backfilled ASC, started_at DESC LIMIT 1",
             (*states.LIVE_STATES, now, states.DEAD_AFTER_HEARTBEATS)),
            ("SELECT session_id FROM sessions WHERE backfilled = 0 ORDER BY started_at DESC LIMIT 1", ()),
            ("SELECT session_id FROM sessions ORDER BY started_at DESC LIMIT 1", ()),
        ):
            row = self._conn.execute(sql, params).fetchone()
            if row:
                return row[0]
        return None

    def find_by_provider_session(self, provider: str, provider_session_id: str) -> str | None:
        """The zag session that holds a provider session (the newest, if several)."""
        row = self._conn.execute(
            "SELECT session_id FROM sessions WHERE provider = ? AND provider_session_id = ? "
            "ORDER BY started_at DESC LIMIT 1",
            (provider, provider_session_id),
        ).fetchone()
        return row[0] if row else None

    def provider_session_holders(self, provider: str,
                                 provider_session_id: str) -> list[tuple[str, str | None, str | None]]:
        """`(session_id, cwd, provider_owner_key)` of every zag session that holds a provider session,
        newest first."""
        return [(row[0], row[1], row[2]) for row in self._conn.execute(
            "SELECT s.session_id, s.cwd, k.owner_key FROM sessions s "
            "LEFT JOIN session_owner_keys k ON k.session_id = s.session_id WHERE s.provider = ? "
            "AND s.provider_session_id = ? ORDER BY s.started_at DESC", (provider, provider_session_id))]

    def existing_session_ids(self, session_ids: Iterable[str]) -> set[str]:
        """Which of `session_ids` the index holds, in a few queries (not one per id)."""
        wanted = list(session_ids)
        found: set[str] = set()
        for start in range(0, len(wanted), 500):   # (SQLite's limit on bound parameters is 999 on old builds)
            part = wanted[start:start + 500]
            found.update(session_id for (session_id,) in self._conn.execute(
                f"SELECT session_id FROM sessions WHERE session_id IN ({','.join('?' * len(part))})", part))
        return found

    def provider_session_owners(self, provider: str) -> dict[str, str]:
        """`{provider_session_id: session_id}` for one provider, in one query (the newest session, as
        `find_by_provider_session` answers), for callers that would otherwise ask per id."""
        owners: dict[str, str] = {}
        for provider_session_id, session_id in self._conn.execute(
            "SELECT provider_session_id, session_id FROM sessions WHERE provider = ? "
            "AND provider_session_id IS NOT NULL ORDER BY started_at ASC",
            (provider,),
        ).fetchall():
            owners[provider_session_id] = session_id
        return owners

    def holds_nothing(self) -> bool:
        """No session and no backfill cursor: a new index (or a lost one, created again)."""
        row = self._conn.execute(
            "SELECT EXISTS (SELECT 1 FROM sessions) OR EXISTS (SELECT 1 FROM backfill_sources)").fetchone()
        return not row[0]

    def delete_all_sessions(self) -> None:
        """Used by `reindex` before it rebuilds from the logs (cursors and resumes are kept)."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM sessions")
            conn.execute("DELETE FROM session_owner_keys")

    # -- scheduled resumes ----------------------------------------------------------------------
    def add_resume(self, **fields: Any) -> None:
        now = time.time()
        fields.setdefault("created_at", now)
        fields.setdefault("updated_at", now)
        fields.setdefault("status", states.RESUME_PENDING)
        _redact_columns(fields)
        names = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        with self.transaction() as conn:
            conn.execute(f"INSERT OR REPLACE INTO resumes ({names}) VALUES ({marks})", list(fields.values()))

    def update_resume(self, incident_id: str, **fields: Any) -> bool:
        fields.setdefault("updated_at", time.time())
        _redact_columns(fields)
        return self._update("resumes", "incident_id", incident_id, fields) > 0

    def update_resume_if(self, incident_id: str, statuses: Iterable[str], **fields: Any) -> bool:
        """Set columns of a resume only while its status is one of `statuses` (so a supervisor never
        reopens a resume the user cancelled meanwhile); False if it is not."""
        fields.setdefault("updated_at", time.time())
        _redact_columns(fields)
        unknown = set(fields) - set(RESUME_COLUMNS)
        if unknown:
            raise ValueError(f"unknown resumes columns: {sorted(unknown)}")
        wanted = list(statuses)
        assignments = ", ".join(f"{name} = ?" for name in fields)
        marks = ", ".join("?" for _ in wanted)
        with self.transaction() as conn:
            cursor = conn.execute(
                f"UPDATE resumes SET {assignments} WHERE incident_id = ? AND status IN ({marks})",
                [*fields.values(), incident_id, *wanted],
            )
            return cursor.rowcount > 0

    def claim_session(self, session_id: str, previous_pid: Any, previous_started: Any, **fields: Any) -> bool:
        """Take a session over from the supervisor recorded in its row (`zag resume`): the row's columns
        are set only if that supervisor is still the one recorded, so two takeovers cannot both win."""
        fields.setdefault("updated_at", time.time())
        unknown = set(fields) - set(DOC_COLUMNS)
        if unknown:
            raise ValueError(f"unknown sessions columns: {sorted(unknown)}")
        _redact_columns(fields)
        if isinstance(fields.get("argv"), (list, tuple)):
            fields["argv"] = _argv_json(fields["argv"])
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self.transaction() as conn:
            cursor = conn.execute(
                f"UPDATE sessions SET {assignments} WHERE session_id = ? "
                "AND supervisor_pid IS ? AND supervisor_started IS ?",
                [*fields.values(), session_id, previous_pid, previous_started],
            )
            return cursor.rowcount > 0

    def get_resume(self, incident_id: str) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT * FROM resumes WHERE incident_id = ?", (incident_id,)).fetchone()
        return dict(row) if row else None

    def list_resumes(self, *, open_only: bool = True, session_id: str | None = None) -> list[dict[str, Any]]:
        clauses, params = [], []
        if open_only:
            clauses.append(f"status IN ({', '.join('?' for _ in states.RESUME_OPEN_STATES)})")
            params.extend(states.RESUME_OPEN_STATES)
        if session_id:
            clauses.append("session_id = ?")
            params.append(session_id)
        sql = "SELECT * FROM resumes"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY resume_at"
        return [dict(row) for row in self._conn.execute(sql, params)]

    def due_resumes(self) -> dict[str, float]:
        """Session id → when its resume is due, for each session with an open (pending or resuming)
        incident: the newest one's time, the incident `zag resume` adopts. A session whose zag died while
        a resume attempt ran reads `dead, resume due …` from it, as one whose zag died while waiting."""
        wanted = ", ".join("?" for _ in states.RESUME_OPEN_STATES)
        due: dict[str, float] = {}
        for session_id, resume_at in self._conn.execute(
                f"SELECT session_id, resume_at FROM resumes WHERE status IN ({wanted}) ORDER BY created_at",
                states.RESUME_OPEN_STATES):
            due[session_id] = resume_at   # the newest last
        return due

    def resolve_incident(self, text: str) -> str:
        """A full incident id from an id or unique prefix; `BadSessionId` (user-facing) otherwise."""
        prefix = check_prefix(text)
        rows = self._conn.execute(
            "SELECT incident_id FROM resumes WHERE incident_id >= ? AND incident_id < ? LIMIT 2",
            (prefix, prefix + "\uffff"),
        ).fetchall()
        if not rows:
            raise UnknownSession(f"no usage-limit incident matches {text!r} (see `zag usage list`)")
        if len(rows) > 1:
            raise AmbiguousSession(f"{text!r} matches several incidents; type more of the id")
        return rows[0][0]

    # -- backfill cursors -----------------------------------------------------------------------
    def backfill_fingerprints(self, provider: str) -> dict[str, tuple[str | None, str]]:
        """`{source_key: (fingerprint, session_id)}` for one provider, in one query."""
        cursor = self._conn.cursor()
        cursor.row_factory = None   # plain tuples: this runs over every source on each backfill
        cursor.execute(
            "SELECT source_key, fingerprint, session_id FROM backfill_sources WHERE provider = ?", (provider,)
        )
        return {key: (fingerprint, session_id) for key, fingerprint, session_id in cursor}

    def backfill_cursor(self, provider: str, source_key: str) -> tuple[str, Any] | None:
        """`(session_id, cursor)` recorded for a source, or None if never imported."""
        row = self._conn.execute(
            "SELECT session_id, cursor FROM backfill_sources WHERE provider = ? AND source_key = ?",
            (provider, source_key),
        ).fetchone()
        if not row:
            return None
        return row[0], json.loads(row[1]) if row[1] else None

    def save_backfill_cursor(
        self, provider: str, source_key: str, session_id: str, cursor: Any, fingerprint: str | None,
        *, log_size: int | None = None,
    ) -> None:
        """Record a source's cursor; `log_size`: the session log's size in bytes once it held every event
        up to that cursor (None: unknown; see `backfill_cursors`)."""
        from zag.logs.codec import printable

        source_key = printable(source_key)   # as backfill stores it: a path that is not UTF-8 (goose)
        with self.transaction() as conn:
            conn.execute(
                _CURSOR_UPSERT,
                (provider, source_key, session_id, fingerprint, _cursor_json(cursor), time.time(), log_size),
            )

    def forget_backfill_cursor(self, provider: str, source_key: str, session_id: str) -> None:
        """Remove `session_id`'s cursor for a source (another session's is left alone)."""
        from zag.logs.codec import printable

        source_key = printable(source_key)
        with self.transaction() as conn:
            conn.execute("DELETE FROM backfill_sources WHERE provider = ? AND source_key = ? AND session_id = ?",
                         (provider, source_key, session_id))

    def backfill_cursors(
        self, provider: str, source_keys: Iterable[str]
    ) -> dict[str, tuple[str, Any, int | None]]:
        """`{source_key: (session_id, cursor, log_size)}` for the given sources of one provider (those
        recorded). `log_size` is the session log's size when the cursor was saved: a log grown beyond
        it holds events no saved cursor accounts for (a killed import, a live session's last second
        before a full disk); None for cursors saved before it was recorded."""
        wanted = list(source_keys)
        found: dict[str, tuple[str, Any, int | None]] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            for row in self._conn.execute(
                f"SELECT source_key, session_id, cursor, log_size FROM backfill_sources "
                f"WHERE provider = ? AND source_key IN ({marks})",
                (provider, *chunk),
            ):
                found[row[0]] = (row[1], json.loads(row[2]) if row[2] else None, row[3])
        return found

    def commit_backfill(
        self,
        provider: str,
        sessions: Iterable[dict[str, Any]],
        cursors: Iterable[tuple[str, str, Any, str | None, int | None]],
    ) -> None:
        """One transaction for a batch of imported sources (the backfill runner batches its writes).

        `sessions`: rows with `session_id, provider_session_id, cwd, model, started_at, ended_at,
        last_seq, log_path`. A new session is inserted as `exited` and `backfilled`; an existing one
        (a grown import, or a session zag supervised live) keeps its state and only gains: `last_seq`
        and `ended_at` grow, missing `provider_session_id`/`cwd` are filled in, `model` becomes the
        latest one the import saw (as `zag reindex` would give it).
        `cursors`: `(source_key, session_id, cursor, fingerprint, log_size)` (see `backfill_cursors`).
        """
        from zag.logs.codec import printable

        now = time.time()
        # printable: a ZAG_HOME whose name is not UTF-8 is in every log_path (SQLite refuses lone surrogates)
        session_rows = [printable(_redact_columns({**row, "provider": provider, "updated_at": now}))
                        for row in sessions]
        cursor_rows = [
            (provider, key, session_id, fingerprint, _cursor_json(cursor), now, log_size)
            for key, session_id, cursor, fingerprint, log_size in cursors
        ]
        with self.transaction() as conn:
            conn.executemany(_BACKFILL_SESSION_UPSERT, session_rows)
            conn.executemany(_CURSOR_UPSERT, cursor_rows)


_CURSOR_UPSERT = (
    "INSERT INTO backfill_sources (provider, source_key, session_id, fingerprint, cursor, updated_at, log_size) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(provider, source_key) DO UPDATE SET "
    "session_id = excluded.session_id, fingerprint = excluded.fingerprint, "
    "cursor = excluded.cursor, updated_at = excluded.updated_at, log_size = excluded.log_size"
)


_BACKFILL_SESSION_UPSERT = f"""
INSERT INTO sessions (session_id, provider, provider_session_id, state, cwd, model, started_at, ended_at,
                      updated_at, backfilled, last_seq, log_path)
VALUES (:session_id, :provider, :provider_session_id, '{states.EXITED}', :cwd, :model, :started_at, :ended_at,
        :updated_at, 1, :last_seq, :log_path)
ON CONFLICT(session_id) DO UPDATE SET
    provider_session_id = COALESCE(sessions.provider_session_id, excluded.provider_session_id),
    cwd = COALESCE(sessions.cwd, excluded.cwd),
    model = COALESCE(excluded.model, sessions.model),
    ended_at = CASE WHEN excluded.ended_at IS NULL THEN sessions.ended_at
                    WHEN sessions.ended_at IS NULL THEN excluded.ended_at
                    ELSE MAX(sessions.ended_at, excluded.ended_at) END,
    last_seq = MAX(sessions.last_seq, excluded.last_seq),
    log_path = COALESCE(sessions.log_path, excluded.log_path),
    updated_at = excluded.updated_at
"""


def _json_row(row: str) -> str:
    """SQL for one session row (`NEW`, `OLD` or the table name) as a JSON object: every column,
    `argv` decoded (NULL when it is not valid JSON), the flags as booleans."""
    special = {
        "argv": f"iif(json_valid({row}.argv), json({row}.argv), NULL)",
        **{flag: f"iif({row}.{flag}, json('true'), json('false'))" for flag in ("interactive", "resumed", "backfilled")},
    }
    return "json_object(" + ", ".join(f"'{name}', {special.get(name, f'{row}.{name}')}" for name in DOC_COLUMNS) + ")"


# Each session's JSON rendering, kept current by triggers so listings need no per-column work. Built
# from SESSION_COLUMNS: a schema change must bump SCHEMA_VERSION, which re-creates and refills it.
# The triggers delete before they insert: an outer statement's conflict policy (an upsert's) would
# override an `OR REPLACE` written inside a trigger.
_JSON_CACHE_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS session_json (
    session_id  TEXT PRIMARY KEY,
    provider    TEXT NOT NULL,
    state       TEXT NOT NULL,
    started_at  REAL NOT NULL,
    doc         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS session_json_by_start ON session_json(started_at DESC);
DROP TRIGGER IF EXISTS session_json_insert;
DROP TRIGGER IF EXISTS session_json_update;
DROP TRIGGER IF EXISTS session_json_delete;
CREATE TRIGGER session_json_insert AFTER INSERT ON sessions BEGIN
    DELETE FROM session_json WHERE session_id = NEW.session_id;
    INSERT INTO session_json VALUES
        (NEW.session_id, NEW.provider, NEW.state, NEW.started_at, {_json_row("NEW")});
END;
CREATE TRIGGER session_json_update AFTER UPDATE ON sessions BEGIN
    DELETE FROM session_json WHERE session_id IN (OLD.session_id, NEW.session_id);
    INSERT INTO session_json VALUES
        (NEW.session_id, NEW.provider, NEW.state, NEW.started_at, {_json_row("NEW")});
END;
CREATE TRIGGER session_json_delete AFTER DELETE ON sessions BEGIN
    DELETE FROM session_json WHERE session_id = OLD.session_id;
END;
DELETE FROM session_json;
INSERT INTO session_json SELECT session_id, provider, state, started_at, {_json_row("sessions")} FROM sessions;
"""


_REDACTED_COLUMNS = ("argv", "cwd", "model", "raw")


def _redact_columns(fields: dict[str, Any]) -> dict[str, Any]:
    """Redact, in place, the columns that hold text from the user or the agent as the session log does:
    the index is rebuilt from the logs (`zag reindex`) and must not hold more than they do."""
    from zag.logs.redact import default_redactor

    for name in _REDACTED_COLUMNS:
        value = fields.get(name)
        if isinstance(value, str):
            fields[name] = default_redactor().redact_text(value)
        elif isinstance(value, (list, tuple)):
            fields[name] = [default_redactor().redact_text(item) if isinstance(item, str) else item
                            for item in value]
    return fields


def _cursor_json(cursor: Any) -> str:
    """A backfill cursor as stored: redacted, as what a reader keeps of the transcript (a session's cwd,
    the mark of the last record read) can quote it."""
    from zag.logs import codec
    from zag.logs.redact import default_redactor

    return default_redactor().redact(codec.dumps_lossless(cursor)).decode()   # a file name not UTF-8 kept


def _argv_json(argv: Iterable[Any]) -> str:
    """The `argv` column: a JSON list, arguments that are not UTF-8 escaped as `codec.printable` does."""
    from zag.logs.codec import printable

    return json.dumps(printable(list(argv)))


def _execute(conn: sqlite3.Connection, sql: str, values: list[Any]) -> sqlite3.Cursor:
    """`conn.execute`, with text that is not UTF-8 (a cwd in another encoding) escaped rather than refused:
    the session's row is still written."""
    try:
        return conn.execute(sql, values)
    except UnicodeEncodeError:
        from zag.logs.codec import printable

        return conn.execute(sql, printable(values))


def _file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at `path`; None when there is none."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def _make_private(path: Path) -> None:
    """Create the index file 0600 before SQLite opens it, and tighten an existing one (and its -wal and
    -shm): SQLite gives the -wal and -shm files it creates the database file's mode, so a database
    created with the umask's 0644 and chmodded afterwards leaves them readable by everyone."""
    import os
    import stat

    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        return
    except FileExistsError:
        pass
    except OSError:
        return  # e.g. a read-only folder: SQLite reports the problem in its own words
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            info = name.stat()
            if stat.S_ISREG(info.st_mode) and info.st_mode & 0o077:
                name.chmod(stat.S_IMODE(info.st_mode) & 0o600)
        except OSError:
            pass


_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26


def is_damaged(exc: sqlite3.Error) -> bool:
    """Whether an error from the index means its file is damaged (not a database, corrupt, tables
    missing): what `zag reindex` repairs, unlike an index that is not writable, locked or unopenable."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return True
    text = str(exc)
    return "malformed" in text or "no such table" in text or "no such column" in text


def _session_filter(provider: str | None, states_in: Iterable[str] | None) -> tuple[str, list[Any]]:
    """` WHERE …` (or "") and its parameters for the session listing filters."""
    clauses: list[str] = []
    params: list[Any] = []
    if provider:
        clauses.append("provider = ?")
        params.append(provider)
    if states_in is not None:
        wanted = list(states_in)
        clauses.append(f"state IN ({', '.join('?' for _ in wanted)})")
        params.extend(wanted)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _set_owner_key(conn: sqlite3.Connection, session_id: str, owner_key: str | None) -> None:
    """Record (or, with None, forget) a session's owner key, in the caller's transaction."""
    if owner_key is None:
        conn.execute("DELETE FROM session_owner_keys WHERE session_id = ?", (session_id,))
    else:
        conn.execute("INSERT OR REPLACE INTO session_owner_keys (session_id, owner_key) VALUES (?, ?)",
                     (session_id, owner_key))


def _session_dict(row: sqlite3.Row) -> dict[str, Any]:
    data = dict(row)
    if data.get("argv"):
        try:
            data["argv"] = json.loads(data["argv"])
        except ValueError:
            data["argv"] = None
    for flag in ("interactive", "resumed", "backfilled"):
        data[flag] = bool(data.get(flag))
    return data
