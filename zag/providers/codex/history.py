"""Every Codex session on disk, found cheaply (directory listings and stat, no parsing).

Looks in `$CODEX_HOME` and `~/.codex` (history written before the variable was set): live rollouts under
`sessions/YYYY/MM/DD/` and archived ones under `archived_sessions/`. Files are grouped by the thread id in
their name (the logical session: paginated continuation files join their first file). When the same file
name exists twice, the active copy wins over the archived one and a plain `.jsonl` over its `.jsonl.zst`.
Folders that exist but cannot be read are raised as `UnlistedSources` once everything else is listed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from zag.providers.base import HistorySource, UnlistedSources
from zag.providers.codex.homes import (
    ARCHIVED, SESSIONS, RolloutName, all_homes, created_epoch, parse_rollout_name,
)
from zag.providers.tail import SeenFiles, fingerprint, list_folder


@dataclass
class _File:
    path: Path
    name: RolloutName
    archived: bool


def discover(env: Mapping[str, str]) -> Iterator[HistorySource]:
    sessions: dict[str, dict[str, _File]] = {}
    seen = SeenFiles()   # one source per real file, however many links lead to it
    problems: list[str] = []   # folders that could not be read: reported once the rest is listed
    for home in all_homes(env):
        for root, archived in ((home / SESSIONS, False), (home / ARCHIVED, True)):
            for path in _rollout_files(root, seen=seen, problems=problems):
                name = parse_rollout_name(path.name)
                if name is None:
                    continue
                files = sessions.setdefault(name.thread_id, {})
                current = files.get(name.plain_name)
                candidate = _File(path, name, archived)
                if current is None or _better(candidate, current):
                    files[name.plain_name] = candidate
    for thread_id, files in sessions.items():
        yield _source(thread_id, sorted(files.values(), key=lambda f: f.name.sort_key()))
    if problems:
        raise UnlistedSources(problems)


def session_files(home: Path, thread_id: str) -> list[Path]:
    """The files of one session in one home (active copies preferred), in rollout order."""
    found: dict[str, _File] = {}
    seen = SeenFiles()
    for root, archived in ((home / SESSIONS, False), (home / ARCHIVED, True)):
        for path in _rollout_files(root, thread_id, seen=seen):
            name = parse_rollout_name(path.name)
            if name is None or name.thread_id != thread_id.lower():
                continue
            current = found.get(name.plain_name)
            candidate = _File(path, name, archived)
            if current is None or _better(candidate, current):
                found[name.plain_name] = candidate
    return [f.path for f in sorted(found.values(), key=lambda f: f.name.sort_key())]


def _better(candidate: _File, current: _File) -> bool:
    """Active beats archived; then plain beats compressed."""
    if candidate.archived != current.archived:
        return not candidate.archived
    return current.name.compressed and not candidate.name.compressed


def _source(thread_id: str, files: list[_File]) -> HistorySource:
    paths = tuple(f.path for f in files)
    ended = None
    for path in paths:
        try:
            ended = max(ended or 0.0, os.stat(path).st_mtime)
        except OSError:
            continue
    return HistorySource(
        source_key=thread_id,
        provider_session_id=thread_id,
        paths=paths,
        fingerprint=fingerprint(paths),
        started_at=created_epoch(files[0].name.created) if files else None,
        ended_at=ended,
        extra={
            "archived": all(f.archived for f in files),
            "compressed_files": sum(1 for f in files if f.name.compressed),
            "parts": len(files),
        },
    )


def _rollout_files(root: Path, thread_id: str | None = None, *, seen: SeenFiles | None = None,
                   problems: list[str] | None = None) -> Iterator[Path]:
    """`rollout-*.jsonl[.zst]` regular files under `root` (any depth; directory symlinks are not
    followed), optionally only those of one thread, each real file once per `seen`; folders that
    cannot be read are noted in `problems`."""
    seen = seen if seen is not None else SeenFiles()
    problems = problems if problems is not None else []
    needle = thread_id.lower() if thread_id else None
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        entries = list_folder(folder, problems)
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                    continue
            except OSError:
                continue
            name = entry.name
            if not name.startswith("rollout-") or not (name.endswith(".jsonl") or name.endswith(".jsonl.zst")):
                continue
            if needle is not None and needle not in name.lower():
                continue
            if seen.first(entry.path):   # regular files only: a FIFO named like a rollout would block
                yield Path(entry.path)
