"""Every goose session on disk, for backfill: database sessions and legacy JSONL files.

One `HistorySource` per session that has messages, in every `sessions.db` goose may have written
(`homes.database_paths`), plus one per legacy `<id>.jsonl` (pre-database goose) unless a database
already holds that session id (goose imports legacy files into its database once, and leaves them on
disk). Listing is cheap: one query per database (sessions with their message count and id range,
which makes a per-session fingerprint that changes whenever the session does), and a stat plus the
first line of each legacy file.

`source_key` is `<real path of sessions.db>#<session id>` (the live session uses the same key) or the
real path of the legacy file. goose numbers sessions per database (`20261207_1`), so the bare id does not
name one session: ownership (claims, a supervised session's adoption) compares `owner_key`, the id and
a hash of its folder's `sessions.db`.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from zag.logs import codec
from zag.providers import sqlite_ro
from zag.providers.base import HistorySource, UnlistedSources
from zag.providers.goose import db, homes
from zag.providers.goose.reader import unreadable_database
from zag.providers.goose.records import JSON_ERRORS
from zag.providers.tail import SeenFiles, fingerprint, list_folder, open_regular_file

KIND_DB = "db"
KIND_JSONL = "jsonl"
FIRST_LINE_BYTES = 64 * 1024
LIST_TIMEOUT_SECS = 2.0   # a database goose holds busy (a checkpoint, a migration): waited for this long


def db_source_key(db_path: Path | str, session_id: str) -> str:
    return f"{os.path.realpath(db_path)}#{session_id}"


def owner_key(db_path: Path | str, session_id: str) -> str:
    """The session's id and its database: gooses run with their own GOOSE_PATH_ROOT (or XDG_DATA_HOME)
    share ids that are not the same session. (The path is hashed: a claim's file name is cut at 200
    characters; fsencode: a folder name that is not UTF-8.) A legacy `<id>.jsonl` is keyed by the
    `sessions.db` of its folder."""
    digest = hashlib.sha1(os.fsencode(os.path.realpath(db_path)), usedforsecurity=False).hexdigest()[:16]
    return f"{session_id}@{digest}"


class UnreadableDatabase(UnlistedSources):
    """A goose database or sessions folder could not be listed (raised after everything else was listed)."""


def discover(env: Mapping[str, str]) -> Iterator[HistorySource]:
    database_ids: set[str] = set()
    problems: list[str] = []
    notes: list[str] = []   # databases listed in part (damaged): their sessions are known
    for db_path in homes.database_paths(env):
        for source in _database_sources(db_path, problems, notes):
            database_ids.add(source.provider_session_id)
            yield source
    seen = SeenFiles()   # one source per real file (regular files only), however many links lead to it
    legacy = [path for folder in homes.session_dirs(env) for path in _jsonl_files(folder, seen, problems)]
    if problems and legacy:
        # goose imported legacy files into its database: one it could not read may hold them, and
        # importing them now would import those sessions a second time once the database can be read
        problems[-1] += (f"; {len(legacy)} legacy goose session files (<id>.jsonl) wait until it can be read "
                         "(goose may have copied them into it)")
        legacy = []
    seen_stems: set[str] = set()
    for path in legacy:
        stem = path.stem
        if stem in database_ids or stem in seen_stems:
            continue
        seen_stems.add(stem)
        yield _jsonl_source(path)
    if problems or notes:
        raise UnreadableDatabase(problems + notes)


def _database_sources(db_path: Path, problems: list[str], notes: list[str]) -> list[HistorySource]:
    """The sessions of one database. A damaged one (bad pages: the listing of all its messages fails)
    is listed session by session from what can be read (noted in `notes`, or in `problems` when some
    session rows cannot be read, with the line its readers say about what they cannot read, so that
    backfill says it once)."""
    try:
        connection = sqlite_ro.connect(db_path, timeout=LIST_TIMEOUT_SECS)
    except sqlite3.Error as exc:
        problems.append(f"cannot read {db_path}: {exc}")
        return []
    try:
        schema = db.Schema(connection)
        if not schema.ready:
            if schema.sessions or schema.messages:   # (no table at all: goose is creating it)
                problems.append(f"cannot read {db_path}: its tables are not goose's as zag knows them "
                                f"(sessions: {_names(schema.sessions)}; messages: {_names(schema.messages)}); "
                                "a goose newer than zag, or one changing them right now")
            return []
        try:
            rows = db.list_sessions(connection, schema)
        except sqlite3.Error as exc:
            if _busy(exc):
                raise
            rows, complete = db.list_sessions_one_by_one(connection, schema)
            # (some session rows unread: legacy files wait, as for a database not read at all)
            (notes if complete else problems).append(unreadable_database(db_path, exc))
    except sqlite3.Error as exc:
        problems.append(f"cannot read {db_path}: {exc}")
        return []
    finally:
        connection.close()
    return [_db_source(db_path, row) for row in rows if isinstance(row.get("id"), str)]


def _busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _names(columns: set[str]) -> str:
    return ", ".join(sorted(columns)) if columns else "no such table"


def _db_source(db_path: Path, row: dict[str, Any]) -> HistorySource:
    session_id = row["id"]
    fingerprint_parts = (row.get("updated_at"), row.get("message_count"), row.get("max_message_id"),
                   row.get("min_message_id"), row.get("accumulated_total_tokens"), row.get("total_tokens"))
    return HistorySource(
        source_key=db_source_key(db_path, session_id),
        provider_session_id=session_id,
        paths=(db_path,),
        fingerprint="db:" + "|".join("" if part is None else str(part) for part in fingerprint_parts),
        cwd=row.get("working_dir") or None,
        started_at=db.epoch(row.get("created_at")),
        ended_at=db.epoch(row.get("updated_at")),
        model=db.model_name(row),
        owner_key=owner_key(db_path, session_id),
        extra={"kind": KIND_DB, "name": row.get("name"), "description": row.get("description"),
               "session_type": row.get("session_type"), "provider": row.get("provider_name")},
    )


def _jsonl_files(folder: Path, seen: SeenFiles, problems: list[str]) -> list[Path]:
    """Legacy `<id>.jsonl` files of a folder (a folder that exists but cannot be read: noted in `problems`;
    it may hold a `sessions.db` too)."""
    paths = (Path(entry.path) for entry in list_folder(folder, problems))
    candidates = sorted((path for path in paths if path.suffix == ".jsonl"),
                        key=lambda path: (path.is_symlink(), path.name))   # a real file before a link to it
    return [path for path in candidates if seen.first(path)]


def _jsonl_source(path: Path) -> HistorySource:
    metadata = _first_line(path)
    try:
        ended: float | None = path.stat().st_mtime
    except OSError:
        ended = None
    cwd = metadata.get("working_dir") if metadata else None
    return HistorySource(
        source_key=os.path.realpath(path),
        provider_session_id=path.stem,
        paths=(path,),
        fingerprint=fingerprint([path]),
        cwd=cwd if isinstance(cwd, str) and cwd else None,
        started_at=_legacy_id_time(path.stem),
        ended_at=ended,
        owner_key=owner_key(path.parent / homes.DB_NAME, path.stem),
        extra={"kind": KIND_JSONL, "description": (metadata or {}).get("description")},
    )


def _first_line(path: Path) -> dict[str, Any] | None:
    try:
        handle = open_regular_file(path)   # never a FIFO or device: that could block
        if handle is None:
            return None
        with handle:
            line = handle.readline(FIRST_LINE_BYTES)
    except OSError:
        return None
    try:
        value = codec.loads(line)
    except JSON_ERRORS:
        return None
    return value if isinstance(value, dict) and "role" not in value else None


def _legacy_id_time(stem: str) -> float | None:
    """Legacy session ids are the local start time, `YYYYMMDD_HHMMSS`."""
    from datetime import datetime

    try:
        return datetime.strptime(stem, "%Y%m%d_%H%M%S").timestamp()
    except ValueError:
        return None
