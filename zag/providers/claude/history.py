"""Finding every Claude Code session on disk, cheaply (directory listings and stats, no parsing).

Under each discovery root (`homes.discovery_roots`): `projects/<folder>/<sid>.jsonl` is a session; its
subagent transcripts `projects/<folder>/<sid>/subagents/**/agent-*.jsonl` belong to it (they carry the
parent's session id). Other `.jsonl` files deeper in `projects/` (older or third-party layouts) are
sessions of their own, keyed by their path. The same session id under two roots (a copied config dir)
is one source: the bigger transcript wins, the other is listed in `extra["duplicates"]`. Folders that
exist but cannot be read are raised as `UnlistedSources` once everything else is listed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from zag.providers.base import HistorySource, UnlistedSources
from zag.providers.claude import homes
from zag.providers.claude.reader import _agent_files
from zag.providers.tail import SeenFiles, fingerprint, list_folder, unreadable_folder

_SKIP_DIRS = frozenset({"tool-results", "memory", "subagents"})
_NESTED_PREFIX = "file:"


def discover(env: Mapping[str, str]) -> Iterator[HistorySource]:
    found: dict[str, tuple[int, HistorySource]] = {}
    duplicates: dict[str, list[str]] = {}
    seen = SeenFiles()   # one source per real file, however many links (or roots) lead to it
    problems: list[str] = []   # folders that could not be read: reported once the rest is listed
    for root in homes.discovery_roots(env):
        for source, size in _sessions_under(root, seen, problems):
            previous = found.get(source.source_key)
            if previous is None:
                found[source.source_key] = (size, source)
                continue
            keep, drop = (source, previous[1]) if size > previous[0] else (previous[1], source)
            duplicates.setdefault(source.source_key, []).append(str(drop.paths[0]))
            found[source.source_key] = (max(size, previous[0]), keep)
    for key, (_size, source) in found.items():
        if key in duplicates:
            extra = dict(source.extra)
            extra["duplicates"] = duplicates[key]
            source = HistorySource(source.source_key, source.provider_session_id, source.paths,
                                   source.fingerprint, source.cwd, source.started_at, source.ended_at,
                                   source.model, extra)
        yield source
    if problems:
        raise UnlistedSources(problems)


def source_for(transcript: Path, session_id: str) -> HistorySource:
    """The `HistorySource` of one transcript (and its subagents), as discovery would list it."""
    paths = [transcript, *_agent_files(homes.subagent_dir(transcript, session_id))]
    return _source(session_id, session_id, paths, str(transcript.parent))


def _sessions_under(root: Path, seen: SeenFiles, problems: list[str]) -> Iterator[tuple[HistorySource, int]]:
    folders = [entry for entry in list_folder(root / "projects", problems) if _is_dir(entry)]
    for folder in folders:
        entries = list_folder(folder.path, problems)
        base = Path(folder.path)  # children are made from it: far cheaper than parsing each full path
        transcripts = {}
        session_dirs = {}
        for entry in entries:
            try:
                if entry.name.endswith(".jsonl"):
                    if seen.first(entry.path, entry.stat()):   # regular files only, each real file once
                        transcripts[entry.name[:-len(".jsonl")]] = entry
                elif entry.is_dir(follow_symlinks=False) and entry.name not in _SKIP_DIRS:
                    session_dirs[entry.name] = entry   # a directory symlink leads to files listed elsewhere
            except OSError:
                continue
        for session_id, entry in transcripts.items():
            subagents = [path for path in _agent_files(Path(session_dirs[session_id].path) / "subagents")
                         if seen.first(path)] if session_id in session_dirs else []
            if subagents:
                yield _source(session_id, session_id, [base / entry.name, *subagents], folder.path), _size(entry)
            else:
                yield _single(session_id, entry, base / entry.name, folder.path)
        for name, entry in session_dirs.items():
            subagents = [path for path in _agent_files(Path(entry.path) / "subagents") if seen.first(path)] \
                if name not in transcripts else []
            if subagents:
                yield _source(name, name, subagents, folder.path), 0  # transcript gone, subagents left
            yield from _nested(Path(entry.path), root, seen, problems)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _nested(directory: Path, root: Path, seen: SeenFiles, problems: list[str]) -> Iterator[tuple[HistorySource, int]]:
    """`.jsonl` files below a session folder that are not subagent transcripts (other layouts).
    Directory symlinks are not followed (os.walk's default); files are regular ones, each once."""
    def unreadable(exc: OSError) -> None:
        if not isinstance(exc, FileNotFoundError):
            problems.append(unreadable_folder(exc.filename or directory, exc))

    for current, dirs, files in os.walk(directory, onerror=unreadable):
        dirs[:] = [name for name in dirs if name not in _SKIP_DIRS]
        for name in files:
            if not name.endswith(".jsonl") or name == "journal.jsonl":
                continue
            path = Path(current) / name
            if not seen.first(path):
                continue
            relative = path.relative_to(root / "projects").as_posix()
            yield _source(_NESTED_PREFIX + relative, path.stem, [path], current), _size_of(path)


def _single(session_id: str, entry: os.DirEntry[str], path: Path, folder: str) -> tuple[HistorySource, int]:
    """A session of one file, from its directory entry (one stat; the usual case, kept cheap)."""
    try:
        st = entry.stat()
    except OSError:
        return _source(session_id, session_id, [path], folder), 0
    return HistorySource(
        source_key=session_id, provider_session_id=session_id, paths=(path,),
        fingerprint=f"{st.st_size}:{st.st_mtime_ns}",  # what tail.fingerprint gives for this one file
        ended_at=st.st_mtime, extra={"project_dir": folder},
    ), st.st_size


def _source(key: str, session_id: str, paths: list[Path], folder: str) -> HistorySource:
    mtimes = []
    for path in paths:
        try:
            mtimes.append(os.stat(path).st_mtime)
        except OSError:
            continue
    return HistorySource(
        source_key=key,
        provider_session_id=session_id,
        paths=tuple(paths),
        fingerprint=fingerprint(paths),
        ended_at=max(mtimes) if mtimes else None,
        extra={"project_dir": folder},
    )


def _size(entry: os.DirEntry[str]) -> int:
    try:
        return entry.stat().st_size
    except OSError:
        return 0


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
