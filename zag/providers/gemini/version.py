"""Which Gemini CLI version is installed, without running it (`gemini --version` costs ~2 s of Node start).

The npm package's `bin/gemini` links to `<pkg>/bundle/gemini.js`; its `package.json` names the version.
An executable whose package cannot be found (a wrapper script, a test stand-in) has an unknown version.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from zag.logs import codec

PACKAGE = "@google/gemini-cli"
SESSION_ID_SINCE = (0, 41)   # `--session-id <id>` starts a new session with that id
_cache: dict[tuple[str, int], tuple[int, ...] | None] = {}


def executable(env: Mapping[str, str]) -> str | None:
    override = env.get("ZAG_GEMINI_BIN")
    if override:
        return override
    return shutil.which("gemini", path=env.get("PATH"))


def installed_version(env: Mapping[str, str]) -> tuple[int, ...] | None:
    """(major, minor, patch) of the gemini the environment would run, or None when unknown."""
    exe = executable(env)
    if not exe:
        return None
    try:
        real = os.path.realpath(exe)
        key = (real, os.stat(real).st_mtime_ns)
    except OSError:
        return None
    if key not in _cache:
        _cache[key] = _package_version(Path(real))
    return _cache[key]


def supports_session_id(env: Mapping[str, str]) -> bool:
    """Whether to pass `--session-id`: known versions ≥ 0.41, and unknown ones (today's CLI is 0.6x;
    a too-old CLI is the rarer case, and yargs' strict mode would reject the flag there)."""
    version = installed_version(env)
    return version is None or version >= SESSION_ID_SINCE


def parse_version(text: str) -> tuple[int, ...] | None:
    core = text.strip().lstrip("v").split("-", 1)[0].split("+", 1)[0]
    try:
        return tuple(int(part) for part in core.split("."))
    except ValueError:
        return None


def _package_version(script: Path) -> tuple[int, ...] | None:
    for folder in list(script.parents)[:5]:
        manifest = folder / "package.json"
        try:
            data = codec.loads(manifest.read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("name") == PACKAGE and isinstance(data.get("version"), str):
            return parse_version(data["version"])
    return None
