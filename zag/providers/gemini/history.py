"""Every Gemini session on disk, for backfill (cheap: directory listings, stats, a session file's head).

Sources: `<home>/.gemini/tmp/*/chats/session-*.json[l]` grouped by the session id in each file's head
(legacy `.json`, its `.jsonl` conversion and resume-bug siblings form one session), subagent
transcripts `chats/<session id>/*.jsonl` with their parent, and — for sessions whose chat files are
gone — the prompts in the project's `logs.json`. A project folder maps to its cwd through the registry,
`.project_root` markers and sha256 of the known paths (see homes.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from zag.providers.base import HistorySource
from zag.providers.gemini import files, homes, promptlog
from zag.providers.tail import SeenFiles, fingerprint

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
    logs: list[tuple[str, Path]] = []
    seen = SeenFiles()   # one source per real file, however many links lead to it
    for project in homes.all_project_dirs(env):
        _scan_chats(project, groups, seen)
        if (project / "logs.json").is_file():
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
            if session_id in groups:
                continue
            groups[session_id] = _Group(project_id)
            yield HistorySource(
                source_key=session_id,
                provider_session_id=session_id,
                paths=(log,),
                fingerprint=fingerprint((log,)),
                cwd=cwds.get(project_id),
                extra={"kind": KIND_PROMPT_LOG, "project_id": project_id},
            )


def _scan_chats(project: Path, groups: dict[str, _Group], seen: SeenFiles) -> None:
    chats = project / "chats"
    try:
        entries = list(os.scandir(chats))
    except OSError:
        return
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
            session_id = files.head_session_id(path) or entry.name.rsplit(".", 1)[0]
            groups.setdefault(session_id, _Group(project.name)).main.append(path)


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

