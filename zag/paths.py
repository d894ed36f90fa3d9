"""Every on-disk location zag uses, in one place.

`ZAG_HOME` overrides the root; otherwise platformdirs decides (user data dir for state, user config dir
for `config.toml`). Folders are created 0700 on demand, with every missing parent; nothing here touches a
path a user typed without validating it first (see `zag.logs.ids`).

A `ZAG_HOME` the user made keeps its mode (it may be a folder they use for more than zag): zag's own
folders in it are 0700 and its files 0600 either way. If other users can write to it, or it belongs to
another user, they could put their own files or symlinks where zag writes: zag says so once per process
(`ensure_home`), and opens the files it writes without following symlinks (`NOFOLLOW`).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

APP_NAME = "zag"
HOME_ENV = "ZAG_HOME"
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # for every file zag opens to write: a planted symlink is refused

_home_checked: set[Path] = set()


def home() -> Path:
    """The root of zag's state (`$ZAG_HOME`, else the platform's user data dir). A relative `ZAG_HOME` is
    taken from the current folder, made absolute: the index records each log's path, which must name it from
    any folder."""
    override = _override()
    if override:
        path = Path(override).expanduser()
        if not path.is_absolute():
            try:
                path = Path(os.getcwd(), path)
            except OSError:  # the current folder was deleted: the relative path fails as it would anyway
                pass
        return path
    import platformdirs  # imported lazily: ~40 ms, and not needed when ZAG_HOME is set

    return _platform_folder(platformdirs.user_data_path)


def _override() -> str | None:
    """`$ZAG_HOME`, or None when it is unset, empty or only blanks (`ZAG_HOME=" "` named a folder "  " in
    each folder zag ran from, as ZAG_<NAME>_BIN of blanks names no executable)."""
    value = os.environ.get(HOME_ENV)
    return value if value and value.strip() else None


def environ_for_agent() -> dict[str, str]:
    """zag's environment, as the agent gets it: a relative `ZAG_HOME` made absolute, so that the `zag` its
    hooks and tools run in other folders (`zag events "$ZAG_SESSION_ID"`) finds the same home."""
    env = dict(os.environ)
    if _override():
        env[HOME_ENV] = str(home())
    return env


def config_file() -> Path:
    """`$ZAG_HOME/config.toml` when ZAG_HOME is set, else the platform's user config dir."""
    if _override():
        return home() / "config.toml"
    import platformdirs

    return _platform_folder(platformdirs.user_config_path) / "config.toml"


class NoHome(FileNotFoundError):
    """Neither ZAG_HOME nor a home folder: HOME unset (or relative) for a user without a passwd entry
    (`env -i` as a uid with no passwd entry). An OSError, so that zag's commands say it in one line as they
    say a folder they cannot use; `zag run` runs the agent without zag (`runner`)."""


def _platform_folder(locate: Any) -> Path:
    try:
        return locate(APP_NAME)
    except RuntimeError as exc:  # platformdirs: "could not determine the home directory"
        raise NoHome(errno.ENOENT, "no home folder to keep zag's state in (HOME is not set, and this user has "
                     "none); set ZAG_HOME or HOME", "~") from exc


def sessions_dir() -> Path:
    """Folder of unified session logs."""
    return home() / "sessions"


def session_log(session_id: str) -> Path:
    """The unified JSONL log of one session (the id must already be validated); `BadSessionId` (a
    ValueError) for an id that would name a file outside `sessions/` (a crafted index row: never a path)."""
    if not session_id or "/" in session_id or "\0" in session_id or session_id in (".", ".."):
        from zag.logs.ids import BadSessionId

        raise BadSessionId(f"{session_id!r} is not a session id (a damaged index? `zag reindex` rebuilds it)")
    return sessions_dir() / f"{session_id}.jsonl"


def index_db() -> Path:
    """The SQLite index (sessions, live registry, scheduled resumes, backfill cursors)."""
    return home() / "index.sqlite"


def diagnostics_log() -> Path:
    """zag's own diagnostics (structlog JSON lines); never mixed into session logs."""
    return home() / "zag.log"


def ensure_home() -> Path:
    """`home()`, created 0700 (with its missing parents) if missing. A `ZAG_HOME` that already exists is
    the user's: its mode is left alone, but one that other users can write to, or that another user owns,
    is said once per process on stderr (they could replace or plant files where zag writes). The
    platform's default folder is zag's own, tightened as `ensure_private_dir` does."""
    path = home()
    if not _override() or not path.is_dir():
        return ensure_private_dir(path)
    if path not in _home_checked:
        _home_checked.add(path)
        _warn_if_exposed(path)
    return path


def _warn_if_exposed(path: Path) -> None:
    import stat
    import sys

    try:
        info = path.stat()
    except OSError:
        return
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid != os.geteuid():
        problem = "belongs to another user"
    elif mode & 0o002 or (mode & 0o020 and _group_has_others(info.st_gid)):
        problem = f"is writable by other users (mode {mode:04o})"
    else:
        return
    try:
        sys.stderr.write(f"zag: warning: ZAG_HOME {path} {problem}: they could replace zag's files there; "
                         "make it yours and `chmod go-w` it, or set ZAG_HOME to a private folder\n")
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):
        pass


def _group_has_others(gid: int) -> bool:
    """Whether group `gid` may hold users other than us: not our own user-private group (umask 002 makes
    group-writable folders, harmless when the group is ours alone, as on Debian and Ubuntu)."""
    try:
        import grp
        import pwd

        user = pwd.getpwuid(os.geteuid())
        members = grp.getgrgid(gid).gr_mem
    except (ImportError, KeyError):
        return True
    return gid != user.pw_gid or any(member != user.pw_name for member in members)


def refuse_foreign_symlink(path: Path) -> None:
    """PermissionError if `path` is a symlink another user made (as the kernel's protected_symlinks does
    in sticky folders): in a folder others can write to (see `ensure_home`), following it would make zag
    write into, or chmod, whatever they chose, e.g. a root zag chmodding /etc. A user's own symlink (a
    `sessions/` moved to another disk) is followed."""
    import errno
    import stat

    try:
        info = os.lstat(path)
    except OSError:
        return
    if stat.S_ISLNK(info.st_mode) and info.st_uid != os.geteuid():
        raise PermissionError(errno.EPERM, "a symlink that belongs to another user; zag does not follow it",
                              str(path))


def ensure_private_dir(path: Path) -> Path:
    """Create `path` with mode 0700 if missing, and each missing parent 0700 too (mkdir's `parents` makes
    them with the umask's mode, 0777 under umask 000); tighten an existing `path` we own.

    Tightening only takes group/other bits away: a folder its owner made read-only stays read-only.
    """
    refuse_foreign_symlink(path)
    if not path.is_dir():
        missing = [folder for folder in (path, *path.parents) if not folder.exists()]
        for folder in reversed(missing):
            folder.mkdir(mode=0o700, exist_ok=True)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777
        if mode & 0o077:
            path.chmod(mode & 0o700)
    except OSError:
        pass
    return path
