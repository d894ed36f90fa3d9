"""Incremental readers of one goose session: a `sessions.db` row set, or a legacy `.jsonl` file.

Database (live and backfill alike): each read opens the database read-only (see `sqlite_ro`), takes
one snapshot, and returns the messages after the cursor's row id. goose's `replace_conversation`
(compaction, /clear, edits) DELETES every row of the session and INSERTS the new conversation, so row
ids change. The reader notices it (fewer rows at or below the cursor's row id than it consumed) and
then skips re-inserted rows it already emitted: known by `(role, created, content)` hash or
`message_id`, remembered for the last `KEEP_KEYS` messages; rows older than those count as seen. New
rows (the compaction summary, later turns) are emitted. State stays bounded and fits in the cursor.
A busy/locked or damaged database ends the read early (at the first row it cannot read; `problem` says
why, naming the database, for backfill to say once); the next read continues from the cursor.
A session read from its start whose leading rows are a fork's copies of another session (`_CopiedHead`)
logs them as one `copied_history` note: the parent's session holds them.

Legacy JSONL (goose ≤ 1.9, `<id>.jsonl`: a metadata line, then one message per line) is rewritten
whole on every save, so each read streams the file from the start and skips the messages it already
emitted (the cursor counts them).
"""

from __future__ import annotations

import sqlite3
import zlib
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from zag.logs import codec, events
from zag.providers import sqlite_ro
from zag.providers.base import Item
from zag.providers.goose import db, records, usage
from zag.providers.goose.records import JSON_ERRORS
from zag.providers.tail import JsonlTail, fingerprint

KEEP_KEYS = 512
CURSOR_VERSION = 1
# goose's own line between seconds and milliseconds in `created_timestamp` (session_manager.rs
# MILLISECOND_TIMESTAMP_THRESHOLD): some versions stored milliseconds, goose reads both.
MILLISECONDS_FROM = 10_000_000_000


def session_status(row: dict[str, Any], session_id: str, *, source: str) -> dict[str, Any]:
    """The `provider_status` that opens a session: name, description, provider, model, cwd."""
    data = {
        "id": session_id,
        "name": row.get("name"),
        "description": row.get("description"),
        "session_type": row.get("session_type"),
        "working_dir": row.get("working_dir"),
        "provider": row.get("provider_name"),
        "model": db.model_name(row),
        "created_at": row.get("created_at"),
        "schedule_id": row.get("schedule_id"),
        "parent_session_id": row.get("parent_session_id"),
        "source": source,
    }
    body = events.provider_status("goose session", {key: value for key, value in data.items() if value is not None})
    body["ts"] = db.epoch(row.get("created_at"))
    body["provider_session_id"] = session_id
    if isinstance(row.get("working_dir"), str) and row["working_dir"]:
        body["cwd"] = row["working_dir"]
    if data["model"]:
        body["model"] = data["model"]
    return body


class _Seen:
    """Keys of the last `KEEP_KEYS` emitted messages, and a floor below which all count as seen."""

    def __init__(self, saved: Any = None, floor: Any = 0) -> None:
        self.entries: deque[tuple[int, str, str]] = deque()
        self.keys: dict[str, int] = {}
        self.floor = int(floor) if isinstance(floor, (int, float)) else 0
        for entry in saved if isinstance(saved, list) else []:
            if isinstance(entry, list) and len(entry) == 3:
                self.add(int(entry[0]) if isinstance(entry[0], (int, float)) else 0, str(entry[1]), str(entry[2]))

    def add(self, created: int, key: str, mid: str) -> None:
        entries, keys = self.entries, self.keys
        entries.append((created, key, mid))
        keys[key] = keys.get(key, 0) + 1
        if mid:
            keys[mid] = keys.get(mid, 0) + 1
        if len(entries) > KEEP_KEYS:
            old_created, old_key, old_mid = entries.popleft()
            if old_created >= self.floor:
                self.floor = old_created + 1
            for name in (old_key, old_mid) if old_mid else (old_key,):
                count = keys.get(name, 0)
                if count > 1:
                    keys[name] = count - 1
                else:
                    keys.pop(name, None)

    def known(self, created: int, key: str, mid: str) -> bool:
        return created < self.floor or key in self.keys or (bool(mid) and mid in self.keys)

    def dump(self) -> list[list[Any]]:
        return [list(entry) for entry in self.entries]


def message_key(role: Any, created: Any, content: bytes) -> str:
    """A short key of a stored message: role, created, CRC-32 and length of its content. Keys are only
    compared with those of the last `KEEP_KEYS` messages of the same session, so this is collision-safe
    enough, and several times faster than a cryptographic hash over tool output."""
    return f"{role}{created}:{zlib.crc32(content):x}:{len(content):x}"


class DbSessionReader:
    """Reads one session of a goose `sessions.db` from a cursor."""

    def __init__(self, db_path: Path | str, session_id: str, cursor: Any = None, *,
                 skip_before: float | None = None, source: str = events.SOURCE_PROVIDER_FILE,
                 find_copies: bool = False, timeout: float = sqlite_ro.DEFAULT_TIMEOUT) -> None:
        self.db_path = Path(db_path)
        self.timeout = timeout   # for a busy database (backfill waits longer than a live poll)
        self.problem: str | None = None   # why the last read stopped short (see `SessionReader`)
        self.find_copies = find_copies   # live `--fork`: look for the copied head despite `skip_before`
        self.session_id = session_id
        self.source = source
        self.last_error: str | None = None
        self.rewritten = False
        self._signature: Any = None
        state = cursor if isinstance(cursor, dict) and cursor.get("v") == CURSOR_VERSION else {}
        self.rowid = _int(state.get("rowid"))
        self.rows = _int(state.get("rows"))
        self.meta = bool(state.get("meta"))
        self.usage = state.get("usage") if isinstance(state.get("usage"), list) else None
        self.baseline = bool(state.get("baseline")) if state else skip_before is not None
        self.skip_before = state.get("skip_before", skip_before)
        self.seen = _Seen(state.get("seen"), state.get("floor", 0))
        self.tools = records.ToolNames(state.get("tools"))

    # -- protocol ----------------------------------------------------------------------------------
    def cursor(self) -> dict[str, Any]:
        return {"v": CURSOR_VERSION, "rowid": self.rowid, "rows": self.rows, "meta": self.meta,
                "usage": self.usage, "baseline": self.baseline, "skip_before": self.skip_before,
                "floor": self.seen.floor, "seen": self.seen.dump(), "tools": self.tools.dump()}

    def close(self) -> None:
        pass

    def changed(self) -> bool:
        """Cheap (two stats): may the database hold something new since the last read?"""
        return sqlite_ro.signature(self.db_path) != self._signature

    @property
    def unsettled(self) -> bool:
        """The last read stopped short: backfill must read this session again, although unchanged."""
        return self.problem is not None

    def read(self) -> Iterator[Item]:
        """What is new. A read that meets a damaged page goes on once more without the messages' indexes
        (a damaged index: the rows are still there by row id), from where it stopped."""
        signature = sqlite_ro.signature(self.db_path)
        self.problem = None
        for indexed in (True, False):
            try:
                connection = sqlite_ro.connect(self.db_path, timeout=self.timeout)
            except sqlite3.Error as exc:
                self._failed(exc)
                return
            try:
                yield from self._read(connection, indexed)
                self._signature = signature
                self.last_error = None
                return
            except sqlite3.Error as exc:
                if indexed and _damaged(exc):
                    continue
                self._failed(exc)
                if not sqlite_ro.is_transient(exc):
                    from zag import diag

                    diag.warning("goose_db_read_failed", db=str(self.db_path), session=self.session_id,
                                 error=str(exc))
                return
            finally:
                if connection.in_transaction:
                    connection.rollback()
                connection.close()

    def _failed(self, exc: sqlite3.Error) -> None:
        self.last_error = str(exc)
        self.problem = unreadable_database(self.db_path, exc)

    # -- reading -----------------------------------------------------------------------------------
    def _read(self, connection: sqlite3.Connection, indexed: bool = True) -> Iterator[Item]:
        schema = db.Schema(connection)
        if not schema.ready:
            return
        connection.execute("BEGIN")
        row = db.get_session(connection, schema, self.session_id)
        if row is None:
            return
        if not self.meta:
            self.meta = True
            if not self.baseline:
                yield session_status(row, self.session_id, source=self.source)
        yield from self._rewrite_check(connection, schema, indexed)
        copies = _CopiedHead(connection, schema, row, self.session_id) if self._from_start() else None
        for values in db.messages_after(connection, schema, self.session_id, self.rowid, indexed=indexed):
            if copies is not None and not copies.take(values):
                yield from copies.note()
                copies = None
            items = self._message(values)
            rowid = values[0] if type(values[0]) is int else _int(values[0])
            if rowid > self.rowid:
                self.rowid = rowid
            self.rows += 1
            if items and copies is None:   # a copy only primes the state (seen keys, tool names)
                yield from items
        if copies is not None:
            yield from copies.note()
        yield from self._usage(row)
        self.baseline = False
        connection.execute("COMMIT")

    def _from_start(self) -> bool:
        """Reading the session's first rows with nothing to skip (backfill's first import): where a fork's
        copied history can be."""
        return self.rowid == 0 and self.rows == 0 and (
            self.find_copies or (self.skip_before is None and not self.baseline))

    def _rewrite_check(self, connection: sqlite3.Connection, schema: db.Schema, indexed: bool) -> Iterator[Item]:
        """Rows at or below the cursor vanished (goose rewrote the conversation), or appeared (an
        earlier read saw an inconsistent file, or ids were reused): compare, then re-diff by key."""
        self.rewritten = False
        if not self.rowid:
            return
        kept = db.count_messages(connection, self.session_id, self.rowid, indexed=indexed)
        if kept > self.rows:
            self.rewritten = True
            for values in db.messages_after(connection, schema, self.session_id, 0, self.rowid, indexed=indexed):
                yield from self._message(values)
            self.rewritten = False
            self.rows = kept
            return
        if kept == self.rows:
            return
        self.rewritten = True
        now = db.count_messages(connection, self.session_id, indexed=indexed)
        data = {"rows_before": self.rows, "rows_kept": kept, "rows_now": now}
        if now == 0:
            yield events.body(events.SESSION_CLEARED, old_session_id=self.session_id,
                              new_session_id=self.session_id, provider_session_id=self.session_id, **data)
        else:
            status = events.provider_status("goose replaced the conversation (compaction or edit)", data)
            yield {**status, "provider_session_id": self.session_id}
        self.rows = kept

    def _message(self, values: tuple[Any, ...]) -> list[Item]:
        _, message_id, role, content, created, metadata, inserted = values
        if type(role) is bytes:
            role = role.decode("utf-8", "replace")
        content_bytes = content if type(content) is bytes else str(content).encode()
        created_int = seconds(created if type(created) is int else _int(created))
        key = message_key(role, created, content_bytes)
        if message_id:
            mid = f"#{zlib.crc32(message_id if type(message_id) is bytes else str(message_id).encode()):x}"
            message_id = db.text(message_id)
        else:
            mid = ""
        if self.rewritten and self.seen.known(created_int, key, mid):
            return []
        self.seen.add(created_int, key, mid)
        if self.skip_before is not None and isinstance(self.skip_before, (int, float)) \
                and created_int < int(self.skip_before) and not self._inserted_since(created, inserted):
            return []
        return decode_message(role, content_bytes, created, message_id, metadata,
                              session_id=self.session_id, tools=self.tools, source=self.source)

    def _inserted_since(self, created: Any, inserted: Any) -> bool:
        """A row stamped in milliseconds but inserted after `skip_before`: new, whatever its stamp says.
        After milliseconds rows goose stamps each new message with the newest stored time (insert_message
        takes the max; aaif-goose/goose#12003), which is before the launch."""
        if not (isinstance(created, int) and created > MILLISECONDS_FROM) or inserted is None:
            return False
        at = db.epoch(inserted)
        return at is not None and at >= int(self.skip_before)

    def _usage(self, row: dict[str, Any]) -> Iterator[Item]:
        current = usage.snapshot(row)
        if self.baseline:
            self.usage = current
            return
        body = usage.usage_event(self.usage, current, ts=db.epoch(row.get("updated_at")),
                                 model=db.model_name(row), session_id=self.session_id)
        self.usage = current
        if body is not None:
            yield body


def _damaged(exc: sqlite3.Error) -> bool:
    return "malformed" in str(exc).lower()


def unreadable_database(db_path: Path | str, exc: BaseException) -> str:
    """One line about a goose database zag cannot read (in full): the same for each of its sessions."""
    return (f"cannot read all of {db_path} ({exc}): its sessions are imported up to what can be read, "
            "the rest once it can be read")


class _CopiedHead:
    """The history a fork copied from its parent, at the head of a session read from its start.

    `goose session --resume --fork` (and `goose run --resume --fork`) copies the session into a new one
    (`copy_session`: `replace_conversation` on a new row): every message keeps its `message_id`, role,
    content and `created_timestamp`, so the copies are older than the new session and held by another
    session too; the token counters are not copied (the fork's count only its own turns). The leading
    rows that are such copies of one other session are not logged again (its session holds them): they
    become one `provider_status` note (`data.kind: "copied_history"`, `forked_from`)."""

    def __init__(self, connection: sqlite3.Connection, schema: db.Schema, row: dict[str, Any],
                 session_id: str) -> None:
        self.connection = connection
        self.schema = schema
        self.session = {**row, "id": session_id}
        created = db.epoch(row.get("created_at"))
        self.created_at = int(created) if created is not None else None
        self.parents: list[str] | None = None   # the sessions holding every copy so far
        self.count = 0
        self.first_ts: Any = None
        self.last_ts: Any = None

    def take(self, values: tuple[Any, ...]) -> bool:
        """Is this row (the next one) still part of the copied head?"""
        created = values[4]
        created_int = seconds(created if type(created) is int else _int(created))
        if self.created_at is None or created_int >= self.created_at:   # a copy predates the fork's row
            return False
        holders = db.sessions_holding(self.connection, self.schema, values, self.parents, self.session)
        if not holders:
            return False
        self.parents = holders
        self.count += 1
        ts = records._epoch(created)
        self.first_ts = self.first_ts or ts
        self.last_ts = ts or self.last_ts
        return True

    def note(self) -> Iterator[Item]:
        if not self.count or not self.parents:
            return
        parent = self.parents[0]   # the oldest session holding them all
        data = {"kind": "copied_history", "forked_from": parent, "messages": self.count,
                "first_ts": self.first_ts, "last_ts": self.last_ts}
        body = events.provider_status(
            f"history copied from session {parent} (goose --fork): not logged again, its usage not counted again",
            data)
        body["ts"] = self.created_at   # when goose copied them (the copies keep their own times)
        body["provider_session_id"] = self.session["id"]
        yield body


def decode_message(role: Any, content: bytes, created: Any, message_id: Any, metadata: Any, *,
                   session_id: str | None, tools: records.ToolNames, source: str) -> list[Item]:
    """A stored message (content as JSON bytes) → items; a bad one → exactly one `parse_warning`."""
    try:
        decoded = codec.loads(content)
    except JSON_ERRORS as exc:
        return [_warning(f"unreadable goose message content: {exc}", content, created, session_id)]
    if not isinstance(decoded, list):
        return [_warning("goose message content is not a list", content, created, session_id)]
    meta = None
    if metadata:
        try:
            meta = codec.loads(metadata)
        except JSON_ERRORS:
            meta = None
    return records.message_items(role, decoded, created=created, message_id=message_id, metadata=meta,
                                 session_id=session_id, tools=tools, source=source)


def _warning(message: str, raw: Any, created: Any, session_id: str | None) -> dict[str, Any]:
    body = events.parse_warning(message, raw)
    ts = records._epoch(created)
    if ts is not None:
        body["ts"] = ts
    if session_id:
        body["provider_session_id"] = session_id
    return body


def seconds(created: int) -> int:
    """A `created_timestamp` / `created` in seconds, whether goose stored seconds or milliseconds."""
    return created // 1000 if created > MILLISECONDS_FROM else created


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, (bytes, str)):
        try:
            return int(float(value))
        except ValueError:
            return 0
    return 0


# --- legacy JSONL -------------------------------------------------------------------------------
class LegacyJsonlReader:
    """Reads a pre-database goose session file (`<id>.jsonl`) from a cursor."""

    def __init__(self, path: Path | str, session_id: str, cursor: Any = None, *,
                 skip_before: float | None = None, source: str = events.SOURCE_PROVIDER_FILE) -> None:
        self.path = Path(path)
        self.session_id = session_id
        self.source = source
        state = cursor if isinstance(cursor, dict) and cursor.get("v") == CURSOR_VERSION else {}
        self.tools = records.ToolNames(state.get("tools"))
        self.messages = _int(state.get("messages"))
        self.meta = bool(state.get("meta"))
        self.usage = state.get("usage") if isinstance(state.get("usage"), list) else None
        self.skip_before = state.get("skip_before", skip_before)
        self.baseline = bool(state.get("baseline")) if state else skip_before is not None
        self.stamp = state.get("stamp")

    def cursor(self) -> dict[str, Any]:
        return {"v": CURSOR_VERSION, "messages": self.messages, "meta": self.meta, "usage": self.usage,
                "skip_before": self.skip_before, "baseline": self.baseline, "stamp": self.stamp,
                "tools": self.tools.dump()}

    def close(self) -> None:
        pass

    def changed(self) -> bool:
        return fingerprint([self.path]) != self.stamp

    def read(self) -> Iterator[Item]:
        stamp = fingerprint([self.path])
        if stamp == self.stamp:
            return
        skip, count, first = self.messages, 0, True
        pending: dict[str, Any] | None = None   # the session status, stamped with the first message's time
        metadata: dict[str, Any] | None = None
        last_ts: Any = None
        for line in JsonlTail(self.path).lines():
            if not line.strip():
                continue
            if first:
                first = False
                metadata = _legacy_metadata(line)
                if metadata is not None:
                    pending = self._status(metadata)
                    continue
            count += 1
            if count <= skip:
                continue
            self.messages = count
            items = self._line(line)
            for item in items:
                if isinstance(item, dict) and item.get("ts") is not None:
                    last_ts = item["ts"]
            if pending is not None and items:
                pending["ts"] = last_ts
                self.meta = True
                yield pending
                pending = None
            yield from items
        if count < skip:   # the file lost messages (rewritten shorter): count afresh
            self.messages = count
        if metadata is not None and self.messages:
            yield from self._usage(metadata, last_ts)
        self.stamp = stamp
        self.baseline = False

    def _status(self, metadata: dict[str, Any]) -> dict[str, Any] | None:
        """The session status, emitted just before the first message (stamped with its time)."""
        if self.meta:
            return None
        if self.baseline:
            self.meta = True
            return None
        row = {"name": self.session_id, "description": metadata.get("description"),
               "working_dir": metadata.get("working_dir"), "schedule_id": metadata.get("schedule_id")}
        body = session_status(row, self.session_id, source=self.source)
        body["ts"] = None
        return body

    def _usage(self, metadata: dict[str, Any], ts: Any) -> Iterator[Item]:
        current = usage.snapshot(metadata)
        if self.baseline:
            self.usage = current
            return
        body = usage.usage_event(self.usage, current, ts=ts, model=None, session_id=self.session_id)
        self.usage = current
        if body is not None:
            yield body

    def _line(self, line: bytes) -> list[Item]:
        try:
            message = codec.loads(line)
        except JSON_ERRORS as exc:
            return [_warning(f"unreadable goose session line: {exc}", line, None, self.session_id)]
        if not isinstance(message, dict) or not isinstance(message.get("content"), list):
            return [_warning("goose session line is not a message", line, None, self.session_id)]
        created = message.get("created")
        if isinstance(self.skip_before, (int, float)) and seconds(_int(created)) < int(self.skip_before):
            return []
        return records.message_items(
            message.get("role"), message["content"], created=created, message_id=message.get("id"),
            metadata=message.get("metadata"), session_id=self.session_id, tools=self.tools, source=self.source)


def _legacy_metadata(line: bytes) -> dict[str, Any] | None:
    """The session metadata of a legacy file's first line (an object that is not a message)."""
    try:
        value = codec.loads(line)
    except JSON_ERRORS:
        return None
    if isinstance(value, dict) and "role" not in value and "content" not in value:
        return value
    return None
