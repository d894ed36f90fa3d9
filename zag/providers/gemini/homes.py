"""Where Gemini CLI keeps its files, from the environment zag is given (never `os.environ` directly).

- Home: `$GEMINI_CLI_HOME` replaces `$HOME` (`.gemini` is appended either way).
- Per project: `~/.gemini/tmp/<project-id>/chats/` holds the session files, where `<project-id>` is the
  slug registered in `~/.gemini/projects.json` (≥ 0.29: `{"projects": {"<abs cwd>": "<slug>"}}`, each slug
  folder with a `.project_root` marker naming its owner) or the sha256 hex of the absolute project root
  (older versions). The record field `projectHash` is that sha256 in every version.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path

from zag.logs import codec
from zag.providers import agent_env

GEMINI_DIR = ".gemini"
PROJECT_ROOT_MARKER = ".project_root"
_HASH_DIR = re.compile(r"^[0-9a-f]{64}$")


def gemini_root(env: Mapping[str, str]) -> Path | None:
    """`<home>/.gemini` where home is GEMINI_CLI_HOME, else HOME; None when neither is set."""
    home = env.get("GEMINI_CLI_HOME") or env.get("HOME")
    if not home:
        return None
    return Path(home) / GEMINI_DIR


def tmp_root(env: Mapping[str, str]) -> Path | None:
    root = gemini_root(env)
    return root / "tmp" if root else None


def project_hash(project_root: str) -> str:
    """sha256 hex of the absolute project root, as Gemini CLI computes `projectHash`."""
    return hashlib.sha256(project_root.encode("utf-8")).hexdigest()


def normalize_cwd(cwd: str) -> str:
    return os.path.abspath(cwd)


def read_registry(env: Mapping[str, str]) -> dict[str, str]:
    """`projects.json` as {abs project path: slug}; {} when missing or unreadable.

    Accepts the real shape `{"projects": {...}}` and a flat `{path: slug}` map."""
    root = gemini_root(env)
    if root is None:
        return {}
    try:
        data = codec.loads(_read_regular(root / "projects.json"))
    except (OSError, ValueError):
        return {}
    if isinstance(data, dict) and isinstance(data.get("projects"), dict):
        data = data["projects"]
    if not isinstance(data, dict):
        return {}
    return {key: value for key, value in data.items() if isinstance(key, str) and isinstance(value, str)}


def read_marker(project_dir: Path) -> str | None:
    """The owning project path written in `<project dir>/.project_root`, if any."""
    try:
        text = _read_regular(project_dir / PROJECT_ROOT_MARKER).decode("utf-8", "replace").strip()
    except OSError:
        return None
    return text or None


def _read_regular(path: Path) -> bytes:
    """A small file's bytes; OSError when it is missing or no regular file (a FIFO named like it would
    block the reader for ever: a nightly backfill hung, holding its lock)."""
    from zag.providers.tail import open_regular_file

    handle = open_regular_file(path)
    if handle is None:
        raise FileNotFoundError(f"{path}: no regular file")
    with handle:
        return handle.read()


def candidate_project_ids(cwd: str, env: Mapping[str, str]) -> list[str]:
    """Project ids the CLI may use for `cwd`, most likely first (registry slug, then the old hash)."""
    normalized = normalize_cwd(cwd)
    registry = read_registry(env)
    ids: list[str] = []
    for path in (normalized, os.path.realpath(normalized)):
        slug = registry.get(path)
        if slug and slug not in ids:
            ids.append(slug)
    for path in (normalized, os.path.realpath(normalized)):
        digest = project_hash(path)
        if digest not in ids:
            ids.append(digest)
    return ids


def chats_dirs_for_cwd(cwd: str, env: Mapping[str, str]) -> list[Path]:
    """The `chats/` folders that may hold sessions of `cwd` (existing or not yet created); a relative
    GEMINI_CLI_HOME / HOME is taken as gemini running in `cwd` does."""
    env = agent_env.as_agent_sees(env, cwd)
    tmp = tmp_root(env)
    if tmp is None:
        return []
    return [tmp / project_id / "chats" for project_id in candidate_project_ids(cwd, env)]


def all_project_dirs(env: Mapping[str, str], problems: list[str] | None = None) -> list[Path]:
    """Every `tmp/<project-id>/` folder (sorted); `tmp/` existing but unreadable is noted in `problems`."""
    from zag.providers.tail import list_folder

    tmp = tmp_root(env)
    if tmp is None:
        return []
    entries = sorted(list_folder(tmp, problems if problems is not None else []), key=lambda entry: entry.name)
    return [Path(entry.path) for entry in entries if _is_dir(entry)]


def project_cwds(env: Mapping[str, str]) -> dict[str, str]:
    """{project id (slug or hash dir name): cwd} from the registry, the markers, and hashes of both."""
    mapping: dict[str, str] = {}
    known_paths: set[str] = set()
    for path, slug in read_registry(env).items():
        mapping.setdefault(slug, path)
        known_paths.add(path)
    root = gemini_root(env)
    for base in (root / "tmp", root / "history") if root else ():
        try:
            entries = list(os.scandir(base))
        except OSError:
            continue
        for entry in entries:
            if entry.name in mapping or not _is_dir(entry) or _HASH_DIR.match(entry.name):
                continue
            owner = read_marker(Path(entry.path))
            if owner:
                mapping[entry.name] = owner
                known_paths.add(owner)
    for path in known_paths:
        mapping.setdefault(project_hash(path), path)
    return mapping


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False
