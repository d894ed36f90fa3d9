"""Every Gemini session on disk, for backfill (cheap: directory listings, stats, a session file's head).

Sources: `<home>/.gemini/tmp/*/chats/session-*.json[l]` grouped by the session id in each file's head
(legacy `.json`, its `.jsonl` conversion and resume-bug siblings form one session), subagent
transcripts `chats/<session id>/*.jsonl` with their parent, and — for sessions whose chat files are
gone — the prompts in the project's `logs.json`. A project folder maps to its cwd through the registry,
`.project_root` markers and sha256 of the known paths (see homes.py). Folders that exist but cannot be
read are raised as `UnlistedSources` once everything else is listed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from zag.providers.base import HistorySource, UnlistedSources
from zag.providers.gemini import files, homes, promptlog
from zag.providers.tail import SeenFiles, fingerprint, list_folder

KIND_CHAT = "chat"
KIND_PROMPT_LOG = "prompt_log"


@dataclass
class _Group:
    project_id: str
    main: list[Path] = field(default_factory=list)
    subagents: list[Path] = field(default_factory=list)


def discover(env: Mapping[str, str]) -> Iterator[HistorySource]:
    cwds = homes.project_cwds(env)
    groups: dict[str, _Group] = {}
    unread: set[str] = set()   # short ids of chat files that could not be read (their session unknown)
    logs: list[tuple[str, Path]] = []
    seen = SeenFiles()   # one source per real file, however many links lead to it
    problems: list[str] = []   # folders that could not be read: reported once the rest is listed
    for project in homes.all_project_dirs(env, problems):
        listed = _scan_chats(project, groups, seen, problems, unread)
        # (a chats folder that cannot be read: its sessions' prompts wait for it, or they would be
        # imported as prompts only now and as a chat next time, twice)
        if listed and (project / "logs.json").is_file():
            logs.append((project.name, project / "logs.json"))
    for session_id, group in groups.items():
        main = sorted(group.main, key=files.sort_key)
        paths = tuple(main + sorted(group.subagents))
        yield HistorySource(
            source_key=session_id,
            provider_session_id=session_id,
            paths=paths,
            fingerprint=fingerprint(paths),
            cwd=cwds.get(group.project_id),
            started_at=_started(main or list(paths)),
            ended_at=_latest_mtime(paths),
            extra={"kind": KIND_CHAT, "project_id": group.project_id},
        )
    for project_id, log in logs:
        for session_id in promptlog.session_ids(log):
            if session_id in groups or files.short_id(session_id) in unread:
                continue   # (imported from its chat file, or it waits for that file to be readable)
            groups[session_id] = _Group(project_id)
            yield HistorySource(
                source_key=session_id,
                provider_session_id=session_id,
                paths=(log,),
                fingerprint=fingerprint((log,)),
                cwd=cwds.get(project_id),
                extra={"kind": KIND_PROMPT_LOG, "project_id": project_id},
            )
    if problems:
        raise UnlistedSources(problems)


def _scan_chats(project: Path, groups: dict[str, _Group], seen: SeenFiles, problems: list[str],
                unread: set[str]) -> bool:
    """Group the project's chat files by session; False when its chats folder exists but cannot be read.
    A chat file that cannot be read adds the short id its name ends with to `unread`: its session's
    prompts in logs.json must wait for it, or they would be imported alone now and again from the
    chat file once it can be read."""
    chats = project / "chats"
    before = len(problems)
    entries = list_folder(chats, problems)
    for entry in entries:
        path = Path(entry.path)
        try:
            is_dir = entry.is_dir(follow_symlinks=False)   # a directory symlink is no subagent folder
        except OSError:
            continue
        if is_dir:
            subagents = [sub for sub in files.subagent_files(chats, entry.name) if seen.first(sub)]
            if subagents:
                groups.setdefault(entry.name, _Group(project.name)).subagents.extend(subagents)
        elif files.is_session_file(entry.name) and seen.first(path):   # (regular files only)
            session_id = files.head_session_id(path)
            if session_id is None and _unreadable(path):
                unread.add(files.name_short_id(entry.name) or "")
            session_id = session_id or entry.name.rsplit(".", 1)[0]
            groups.setdefault(session_id, _Group(project.name)).main.append(path)
    return len(problems) == before


def _unreadable(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    os.close(fd)
    return False


def _started(paths: list[Path]) -> float | None:
    stamps = [stamp for stamp in (files.name_time(path.name) for path in paths) if stamp is not None]
    return min(stamps) if stamps else None


def _latest_mtime(paths: tuple[Path, ...]) -> float | None:
    latest = None
    for path in paths:
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            continue
        latest = mtime if latest is None else max(latest, mtime)
    return latest

