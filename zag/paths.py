"""Every on-disk location zag uses, in one place.

`ZAG_HOME` overrides the root; otherwise platformdirs decides (user data dir for state, user config dir
for `config.toml`). Folders are created 0700 on demand; nothing here touches a path a user typed
without validating it first (see `zag.logs.ids`).
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "zag"
HOME_ENV = "ZAG_HOME"


def home() -> Path:
    """The root of zag's state (`$ZAG_HOME`, else the platform's user data dir)."""
    override = os.environ.get(HOME_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs  # imported lazily: ~40 ms, and not needed when ZAG_HOME is set

    return platformdirs.user_data_path(APP_NAME)


def config_file() -> Path:
    """`$ZAG_HOME/config.toml` when ZAG_HOME is set, else the platform's user config dir."""
    if os.environ.get(HOME_ENV):
        return home() / "config.toml"
    import platformdirs

    return platformdirs.user_config_path(APP_NAME) / "config.toml"


def sessions_dir() -> Path:
    """Folder of unified session logs."""
    return home() / "sessions"


def session_log(session_id: str) -> Path:
    """The unified JSONL log of one session (the id must already be validated)."""
    return sessions_dir() / f"{session_id}.jsonl"


def index_db() -> Path:
    """The SQLite index (sessions, live registry, scheduled resumes, backfill cursors)."""
    return home() / "index.sqlite"


def diagnostics_log() -> Path:
    """zag's own diagnostics (structlog JSON lines); never mixed into session logs."""
    return home() / "zag.log"


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) with mode 0700 if missing; tighten an existing one we own.

    Tightening only takes group/other bits away: a folder its owner made read-only stays read-only.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777
        if mode & 0o077:
            path.chmod(mode & 0o700)
    except OSError:
        pass
    return path
