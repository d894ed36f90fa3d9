"""Where goose keeps its files, from the environment mapping zag is given (never `os.environ`).

goose resolves its folders with `etcetera`'s XDG strategy on Linux and macOS: data
`$XDG_DATA_HOME/goose` (else `~/.local/share/goose`), config `$XDG_CONFIG_HOME/goose` (else
`~/.config/goose`), state `$XDG_STATE_HOME/goose`. An absolute `GOOSE_PATH_ROOT=R` overrides all three
(`R/data`, `R/config`, `R/state`); a relative one is ignored, as goose ignores it.

Sessions live in `<data>/sessions/sessions.db` (SQLite, since goose 1.10); older builds wrote one
`<data>/sessions/<id>.jsonl` per session, and older still `~/.config/goose/sessions/` (≤ 1.0) and
`~/.goose/sessions/` (0.x). Backfill also probes the places other tools found goose databases in:
`~/.local/share/Block/goose/sessions/sessions.db`, `~/Library/Application Support/goose/sessions/`,
and on Windows `%APPDATA%\\Block\\goose\\{data\\,}sessions\\sessions.db`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DB_NAME = "sessions.db"
SESSIONS_FOLDER = "sessions"


@dataclass(frozen=True)
class GooseHome:
    """The folders goose itself uses with this environment (the ones a running goose writes to)."""

    data: Path
    config: Path
    state: Path

    @property
    def sessions_dir(self) -> Path:
        return self.data / SESSIONS_FOLDER

    @property
    def db_path(self) -> Path:
        return self.sessions_dir / DB_NAME


def _home_dir(env: Mapping[str, str]) -> Path:
    home = env.get("HOME") or env.get("USERPROFILE")
    return Path(home) if home else Path.home()


def _xdg(env: Mapping[str, str], name: str, default: Path) -> Path:
    value = env.get(name, "")
    return Path(value) if value and os.path.isabs(value) else default


def path_root(env: Mapping[str, str]) -> Path | None:
    """`GOOSE_PATH_ROOT` when it is an absolute path, else None (goose ignores relative values)."""
    value = env.get("GOOSE_PATH_ROOT", "")
    return Path(value) if value and os.path.isabs(value) else None


def xdg_home(env: Mapping[str, str]) -> GooseHome:
    """The XDG folders (what goose uses when `GOOSE_PATH_ROOT` is not set)."""
    home = _home_dir(env)
    return GooseHome(
        data=_xdg(env, "XDG_DATA_HOME", home / ".local" / "share") / "goose",
        config=_xdg(env, "XDG_CONFIG_HOME", home / ".config") / "goose",
        state=_xdg(env, "XDG_STATE_HOME", home / ".local" / "state") / "goose",
    )


def goose_home(env: Mapping[str, str]) -> GooseHome:
    """The folders a goose started with `env` reads and writes."""
    root = path_root(env)
    if root is not None:
        return GooseHome(data=root / "data", config=root / "config", state=root / "state")
    return xdg_home(env)


def _unique(paths: list[Path]) -> list[Path]:
    seen: set[str] = set()
    result = []
    for path in paths:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            result.append(path)
    return result


def session_dirs(env: Mapping[str, str]) -> list[Path]:
    """Every folder that may hold goose sessions (database or legacy JSONL), most current first."""
    home = _home_dir(env)
    dirs = [goose_home(env).sessions_dir, xdg_home(env).sessions_dir,
            home / ".local" / "share" / "goose" / SESSIONS_FOLDER,
            home / ".local" / "share" / "Block" / "goose" / SESSIONS_FOLDER,
            home / "Library" / "Application Support" / "goose" / SESSIONS_FOLDER]
    appdata = env.get("APPDATA")
    if appdata:
        dirs += [Path(appdata) / "Block" / "goose" / "data" / SESSIONS_FOLDER,
                 Path(appdata) / "Block" / "goose" / SESSIONS_FOLDER]
    dirs += legacy_dirs(env)
    return _unique(dirs)


def legacy_dirs(env: Mapping[str, str]) -> list[Path]:
    """Folders of pre-database goose versions (`.jsonl` per session)."""
    home = _home_dir(env)
    return _unique([
        xdg_home(env).config / SESSIONS_FOLDER,
        home / ".config" / "goose" / SESSIONS_FOLDER,
        home / ".goose" / SESSIONS_FOLDER,
    ])


def database_paths(env: Mapping[str, str]) -> list[Path]:
    """Every `sessions.db` that exists, most current first (each real file once)."""
    return [folder / DB_NAME for folder in session_dirs(env) if (folder / DB_NAME).is_file()]
