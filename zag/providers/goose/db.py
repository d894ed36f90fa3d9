"""goose's `sessions.db`, read-only: session rows and their messages, whatever the schema version.

Schema (CURRENT_SCHEMA_VERSION 13, session/migrations.rs): `sessions(id 'YYYYMMDD_N', name,
description, user_set_name, session_type, working_dir, created_at, updated_at, extension_data,
total/input/output_tokens (last turn), accumulated_total/input/output_tokens, accumulated_cost (v13),
schedule_id, recipe_json, user_recipe_values_json, provider_name + model_config_json (v6), goose_mode
(v8), thread_id (v10), archived_at + project_id (v12))` and `messages(id INTEGER PK AUTOINCREMENT,
message_id (v7), session_id, role, content_json, created_timestamp (unix s; milliseconds in rows some
versions wrote), timestamp (insert time), tokens, metadata_json (v3))`. Columns are looked up first: one an older version lacks reads as NULL, extra
columns of newer builds (cache token counters, parent_session_id) are used when present.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

from zag.logs import codec, events
from zag.providers import sqlite_ro
from zag.providers.goose.records import JSON_ERRORS

SESSION_COLUMNS = (
    "id", "name", "description", "user_set_name", "session_type", "working_dir", "created_at",
    "updated_at", "total_tokens", "input_tokens", "output_tokens", "accumulated_total_tokens",
    "accumulated_input_tokens", "accumulated_output_tokens", "accumulated_cost", "cache_read_tokens",
    "cache_write_tokens", "accumulated_cache_read_tokens", "accumulated_cache_write_tokens",
    "provider_name", "model_config_json", "schedule_id", "recipe_json", "goose_mode", "thread_id",
    "project_id", "parent_session_id", "archived_at",
)
MESSAGE_COLUMNS = ("id", "message_id", "role", "content_json", "created_timestamp", "metadata_json", "timestamp")
_RAW_COLUMNS = {"content_json", "metadata_json"}   # kept as bytes: decoded by msgspec where needed


class Schema:
    """The columns this database has (read once per connection)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.sessions = sqlite_ro.columns(connection, "sessions")
        self.messages = sqlite_ro.columns(connection, "messages")

    @property
    def ready(self) -> bool:
        return {"id", "working_dir"} <= self.sessions and {"id", "session_id", "content_json"} <= self.messages

    def session_select(self, alias: str = "") -> str:
        prefix = f"{alias}." if alias else ""
        return ", ".join(f"{prefix}{name}" if name in self.sessions else f"NULL AS {name}"
                         for name in SESSION_COLUMNS)

    def message_select(self) -> str:
        return ", ".join(name if name in self.messages else f"NULL AS {name}" for name in MESSAGE_COLUMNS)


def text(value: Any) -> Any:
    """bytes from the connection → str (invalid UTF-8 replaced); other values unchanged."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def session_row(values: tuple[Any, ...]) -> dict[str, Any]:
    return {name: (value if name in _RAW_COLUMNS else text(value)) for name, value in zip(SESSION_COLUMNS, values)}


def get_session(connection: sqlite3.Connection, schema: Schema, session_id: str) -> dict[str, Any] | None:
    row = connection.execute(
        f"SELECT {schema.session_select()} FROM sessions WHERE id = ?", (session_id,)).fetchone()
    return session_row(row) if row else None


def _messages(indexed: bool) -> str:
    """The messages table, through its indexes or not (a damaged index: the rows by row id alone)."""
    return "messages" if indexed else "messages NOT INDEXED"


def count_messages(connection: sqlite3.Connection, session_id: str, up_to_id: int | None = None, *,
                   indexed: bool = True) -> int:
    table = _messages(indexed)
    if up_to_id is None:
        sql, args = f"SELECT COUNT(*) FROM {table} WHERE session_id = ?", (session_id,)
    else:
        sql, args = f"SELECT COUNT(*) FROM {table} WHERE session_id = ? AND id <= ?", (session_id, up_to_id)
    return int(connection.execute(sql, args).fetchone()[0])


def messages_after(connection: sqlite3.Connection, schema: Schema, session_id: str, after_id: int,
                   up_to_id: int | None = None, *, indexed: bool = True) -> Iterator[tuple[Any, ...]]:
    """(id, message_id, role, content_json, created_timestamp, metadata_json, timestamp) rows in insertion
    order, one at a time (a row can be megabytes of tool output: memory stays bounded). `timestamp` is
    when the row was inserted (CURRENT_TIMESTAMP, UTC text)."""
    upper, args = "", (session_id, after_id)
    if up_to_id is not None:
        upper, args = " AND id <= ?", (session_id, after_id, up_to_id)
    yield from connection.execute(f"SELECT {schema.message_select()} FROM {_messages(indexed)} "
                                  f"WHERE session_id = ? AND id > ?{upper} ORDER BY id", args)


def sessions_holding(connection: sqlite3.Connection, schema: Schema, values: tuple[Any, ...],
                     among: list[str] | None, session: dict[str, Any]) -> list[str]:
    """The other sessions (of `among`, if given) that hold a copy of message row `values` (as
    `messages_after` gives it) of `session`: the same `message_id` (a copy keeps it), else, for a row
    whose id goose made up in the copy (`msg_<session>_…`: the original had none, goose ≤ v6) or a
    database without ids, the same role, created_timestamp and content in a session of the same
    working_dir (a copy keeps it; the messages index serves that, not a scan of every message).
    Oldest session first."""
    _, message_id, role, content, created, _, _ = values
    if among is not None and not among:
        return []
    but = session["id"]
    if message_id and "message_id" in schema.messages:
        found = _holding(connection, schema, "m.message_id = CAST(? AS TEXT)", [message_id], among, but)
        if found or not text(message_id).startswith(f"msg_{but}_"):
            return found
    if among is None:
        newest = " ORDER BY created_at DESC" if "created_at" in schema.sessions else ""
        among = [text(row[0]) for row in connection.execute(   # the newest 500: a fork copies a recent one
            f"SELECT id FROM sessions WHERE working_dir = ? AND id != ?{newest} LIMIT 500",
            (session.get("working_dir"), but))]
        if not among:
            return []
    # (the values come as bytes: read back as the TEXT they were)
    return _holding(connection, schema, "m.role = CAST(? AS TEXT) AND m.created_timestamp = ? "
                    "AND m.content_json = CAST(? AS TEXT)", [role, created, content], among, but)


def _holding(connection: sqlite3.Connection, schema: Schema, where: str, args: list[Any],
             among: list[str] | None, but: str) -> list[str]:
    if among is not None:
        where += f" AND m.session_id IN ({', '.join('?' for _ in among)})"
        args = [*args, *among]
    order = "s.created_at, s.id" if "created_at" in schema.sessions else "s.id"
    rows = connection.execute(
        f"SELECT DISTINCT m.session_id, s.created_at FROM messages m JOIN sessions s ON s.id = m.session_id "
        f"WHERE {where} AND m.session_id != ? ORDER BY {order} LIMIT 50", (*args, but)).fetchall()
    return [text(row[0]) for row in rows]


def list_sessions(connection: sqlite3.Connection, schema: Schema) -> list[dict[str, Any]]:
    """Every session with at least one message, with message count and id range (for fingerprints)."""
    rows = connection.execute(
        f"SELECT {schema.session_select('s')}, COUNT(m.id), MAX(m.id), MIN(m.id) "
        "FROM sessions s JOIN messages m ON m.session_id = s.id GROUP BY s.id"
    ).fetchall()
    result = []
    for row in rows:
        session = session_row(row[:len(SESSION_COLUMNS)])
        session["message_count"], session["max_message_id"], session["min_message_id"] = row[len(SESSION_COLUMNS):]
        result.append(session)
    return result


def list_sessions_one_by_one(connection: sqlite3.Connection, schema: Schema) -> tuple[list[dict[str, Any]], bool]:
    """`list_sessions` of a damaged database: the session rows that can be read (all at once, else one by
    one through the ids of the sessions' primary key index), each with the count and id range of its
    messages where they can be read (through the messages' session index), else unknown (None). Sessions
    with no messages are left out, as `list_sessions` does. Returns them and whether every session row could
    be read. Raises when not one session can be read."""
    complete = True
    try:
        rows = connection.execute(f"SELECT {schema.session_select()} FROM sessions").fetchall()
    except sqlite3.Error:
        rows, complete = _session_rows_one_by_one(connection, schema)
    result = []
    for row in rows:
        session = session_row(row)
        try:
            count, high, low = connection.execute(
                "SELECT COUNT(*), MAX(id), MIN(id) FROM messages WHERE session_id = ?", (session["id"],)).fetchone()
        except sqlite3.Error:
            count, high, low = None, None, None   # (read by row id, `DbSessionReader` finds out)
        if count == 0:
            continue
        session["message_count"], session["max_message_id"], session["min_message_id"] = count, high, low
        result.append(session)
    return result, complete


def _session_rows_one_by_one(connection: sqlite3.Connection, schema: Schema) -> tuple[list[tuple[Any, ...]], bool]:
    ids = [text(row[0]) for row in connection.execute("SELECT id FROM sessions").fetchall()]
    rows = []
    for session_id in ids:
        try:
            row = connection.execute(f"SELECT {schema.session_select()} FROM sessions WHERE id = ?",
                                     (session_id,)).fetchone()
        except sqlite3.Error:
            continue
        if row is not None:
            rows.append(row)
    if ids and not rows:
        raise sqlite3.DatabaseError("database disk image is malformed (no session row can be read)")
    return rows, len(rows) == len(ids)


def find_sessions(connection: sqlite3.Connection, schema: Schema, where: str,
                  args: tuple[Any, ...]) -> list[dict[str, Any]]:
    """Sessions matching a WHERE clause (newest first)."""
    order = "updated_at DESC, created_at DESC" if "updated_at" in schema.sessions else "rowid DESC"
    rows = connection.execute(
        f"SELECT {schema.session_select()} FROM sessions WHERE {where} ORDER BY {order} LIMIT 50", args
    ).fetchall()
    return [session_row(row) for row in rows]


def find_named(connection: sqlite3.Connection, schema: Schema, name: str, *,
               description: bool) -> list[dict[str, Any]]:
    """Sessions whose name (or id, or with `description`, description) is `name`, newest first. The first
    databases (schema ≤ 3) have no `name` column: there the description is the session's name."""
    columns = ["name", "description"] if description else ["name"]
    if "name" not in schema.sessions:
        columns = ["description"]
    columns = [column for column in columns if column in schema.sessions] + ["id"]
    where = " OR ".join(f"{column} = ?" for column in columns)
    return find_sessions(connection, schema, where, (name,) * len(columns))


def epoch(value: Any) -> float | None:
    """A sessions timestamp (`YYYY-MM-DD HH:MM:SS` UTC, RFC 3339, or epoch) → epoch seconds."""
    normalized = events.normalize_ts(text(value))
    return events.parse_ts(normalized) if normalized else None


def model_name(session: dict[str, Any]) -> str | None:
    """`model_config_json.model_name` of a session row."""
    raw = session.get("model_config_json")
    if not raw:
        return None
    try:
        config = codec.loads(raw)
    except JSON_ERRORS:
        return None
    name = config.get("model_name") if isinstance(config, dict) else None
    return name if isinstance(name, str) and name else None
