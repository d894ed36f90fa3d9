"""Gemini CLI session files: names, the session id in a file's head, and the files of one session.

Main sessions: `chats/session-<YYYY-MM-DDTHH-MM>-<first 8 chars of the id>.jsonl` (UTC minute; `.json`
before v0.39; `--session-file` imports use epoch milliseconds instead of the minute). Subagents:
`chats/<parent session id>/<subagent session id>.jsonl`.

One session may own several main files: a legacy `.json` and the `.jsonl` its resume converted it to,
and — the resume bug of 0.6x — header-only `session-<later minute>-<id8>.jsonl` siblings. All of them
are read as one session, oldest first (the oldest holds the conversation).
"""

from __future__ import annotations

import os
import re
import stat
from calendar import timegm
from pathlib import Path

from zag.logs import codec, events
from zag.providers.tail import open_regular_file

PREFIX = "session-"
_NAME = re.compile(r"^session-(?P<stamp>\d{4}-\d{2}-\d{2}T\d{2}-\d{2}|\d{10,16})-(?P<short>.+)\.(?P<ext>jsonl?)$")
_JSON_SESSION_ID = re.compile(rb'"sessionId"\s*:\s*"((?:[^"\\]|\\.){1,200})"')
HEAD_BYTES = 64 * 1024


def is_session_file(name: str) -> bool:
    return name.startswith(PREFIX) and (name.endswith(".jsonl") or name.endswith(".json"))


def is_regular(path: Path) -> bool:
    """A regular file (never open a FIFO or device: that could block)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def short_id(session_id: str) -> str:
    return session_id[:8]


def name_short_id(name: str) -> str | None:
    """The first characters of the session id a session file's name ends with, or None."""
    match = _NAME.match(name)
    return match["short"] if match else None


def name_time(name: str) -> float | None:
    """Start time (epoch seconds) encoded in a session file name, or None."""
    match = _NAME.match(name)
    if not match:
        return None
    stamp = match["stamp"]
    if stamp.isdigit():
        value = int(stamp)
        return value / 1000.0 if value > 1e11 else float(value)
    try:
        return float(timegm((int(stamp[0:4]), int(stamp[5:7]), int(stamp[8:10]), int(stamp[11:13]),
                             int(stamp[14:16]), 0, 0, 0, 0)))
    except (ValueError, OverflowError):
        return None


def sort_key(path: Path) -> tuple[float, int, str]:
    """Oldest first; for the same name a legacy `.json` before its `.jsonl` conversion."""
    stamp = name_time(path.name)
    return (stamp if stamp is not None else float("inf"), 0 if path.suffix == ".json" else 1, path.name)


def head_session_id(path: Path) -> str | None:
    """The `sessionId` a session file declares in its head (first JSONL line / top of the document)."""
    try:
        handle = open_regular_file(path)
        if handle is None:
            return None
        with handle:
            head = handle.read(HEAD_BYTES)
    except OSError:
        return None
    if path.suffix == ".jsonl":
        first = head.split(b"\n", 1)[0]
        try:
            record = codec.loads(first)
        except ValueError:
            record = None
        if isinstance(record, dict) and isinstance(record.get("sessionId"), str):
            return record["sessionId"]
        return None
    match = _JSON_SESSION_ID.search(head)
    if not match:
        return None
    try:
        value = codec.loads(b'"' + match.group(1) + b'"')
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def main_files(chats_dir: Path, session_id: str) -> list[Path]:
    """The main session files of `session_id` in one `chats/` folder, oldest first."""
    suffixes = (f"-{short_id(session_id)}.json", f"-{short_id(session_id)}.jsonl")
    found = []
    try:
        names = os.listdir(chats_dir)
    except OSError:
        return []
    for name in names:
        if name.startswith(PREFIX) and name.endswith(suffixes):
            path = chats_dir / name
            if head_session_id(path) == session_id:  # (regular files only)
                found.append(path)
    return sorted(found, key=sort_key)


def subagent_files(chats_dir: Path, session_id: str) -> list[Path]:
    """Subagent transcripts `chats/<session id>/*.jsonl` (sorted by name)."""
    folder = chats_dir / session_id
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return [folder / name for name in sorted(names)
            if name.endswith((".jsonl", ".json")) and is_regular(folder / name)]


def session_files(chats_dir: Path, session_id: str) -> list[Path]:
    return main_files(chats_dir, session_id) + subagent_files(chats_dir, session_id)


def is_subagent_path(path: Path) -> bool:
    """`chats/<parent session id>/<subagent id>.jsonl`."""
    return path.parent.parent.name == "chats" and not path.name.startswith(PREFIX)


def file_key(path: Path) -> str:
    """A stable name for a session file inside its session: `name` or `sub/<name>` for subagents."""
    return f"sub/{path.name}" if is_subagent_path(path) else path.name


_HAS_TURN = re.compile(rb'"type"\s*:\s*"(?:user|gemini)"')
_START_TIME = re.compile(rb'"startTime"\s*:\s*"([^"\\]{1,64})"')
_KIND_SUBAGENT = re.compile(rb'"kind"\s*:\s*"subagent"')
_SCAN_CHUNK = 1024 * 1024
_SAME_START_SLACK = 120.0   # a name's minute vs its head's startTime


def resume_choice(chats_dirs: list[Path], which: str) -> str | None:
    """The session gemini's `--resume latest|<N>` picks, as gemini-cli's SessionSelector does: main
    sessions holding a user or gemini message, ordered by their head's `startTime` (oldest is 1, the
    newest is `latest`). None when it cannot be told (no sessions, an index out of range). For `latest`,
    files are looked at newest name first and only until older names cannot hold a later start."""
    paths = []
    for chats in chats_dirs:
        try:
            paths += [chats / name for name in os.listdir(chats) if is_session_file(name)]
        except OSError:
            continue
    paths.sort(key=lambda path: name_time(path.name) or float("inf"), reverse=True)
    started: dict[str, float] = {}
    for path in paths:
        named = name_time(path.name)
        if which == "latest" and started and named is not None and named < max(started.values()) - _SAME_START_SLACK:
            break
        entry = _resume_entry(path)
        if entry is not None:
            session_id, start = entry
            started[session_id] = min(start, started.get(session_id, start))
    ordered = [session_id for session_id, _ in sorted(started.items(), key=lambda item: item[1])]
    if not ordered:
        return None
    if which == "latest":
        return ordered[-1]
    if which.isdigit() and 1 <= int(which) <= len(ordered):
        return ordered[int(which) - 1]
    return None


def _resume_entry(path: Path) -> tuple[str, float] | None:
    """(session id, start time) of a main session file with a user or gemini message, else None."""
    session_id = head_session_id(path)
    handle = open_regular_file(path) if session_id else None
    if handle is None:
        return None
    try:
        with handle:
            data = handle.read(HEAD_BYTES)
            head = data.split(b"\n", 1)[0] if path.suffix == ".jsonl" else data
            if _KIND_SUBAGENT.search(head):
                return None
            match = _START_TIME.search(head)
            found = _HAS_TURN.search(data) is not None
            while not found:
                chunk = handle.read(_SCAN_CHUNK)
                if not chunk:
                    return None
                found = _HAS_TURN.search(data[-64:] + chunk) is not None
                data = chunk
    except OSError:
        return None
    normalized = events.normalize_ts(match.group(1).decode("utf-8", "replace")) if match else None
    start = events.parse_ts(normalized) if normalized else None
    if start is None:
        try:
            start = os.stat(path).st_mtime
        except OSError:
            return None
    return session_id, start
