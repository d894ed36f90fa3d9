"""Turning expected failures into one clear line on stderr and an exit code, never a traceback.

`user_errors` wraps a command body: a bad, unknown or ambiguous session id (or an unknown provider)
exits 2; an unusable index exits 1 with the hint that fits (`index_trouble`); a closed pipe
(`zag events … | head`) and Ctrl-C end quietly.
"""

from __future__ import annotations

import errno
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USAGE = 2


class UserError(click.ClickException):
    """A problem with what the user asked for: printed as `zag: <message>`, exit 2."""

    exit_code = EXIT_USAGE

    def show(self, file: Any = None) -> None:
        click.echo(f"zag: {self.format_message()}", err=True)


class Failure(UserError):
    """Something zag could not do (unreadable index, unreadable log): exit 1."""

    exit_code = 1


def user_errors(func: F) -> F:
    """Decorator for command callbacks: map zag's user-facing exceptions to clean exits."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from zag.logs.ids import BadSessionId
        from zag.providers import UnknownProvider

        try:
            return func(*args, **kwargs)
        except (BadSessionId, UnknownProvider) as exc:
            raise UserError(str(exc)) from None
        except BrokenPipeError:
            quiet_broken_pipe()
        except KeyboardInterrupt:
            raise SystemExit(130) from None
        except _database_errors() as exc:
            raise Failure(index_trouble(exc)) from None
        except OSError as exc:  # e.g. ZAG_HOME not writable, a log not readable
            raise Failure(os_trouble(exc)) from None

    return wrapper  # type: ignore[return-value]


def index_trouble(exc: Exception, *, rebuilding: bool = False) -> str:
    """One line on an error from the index, with the hint that fits it.

    `zag reindex` is suggested only when it can help: a damaged index is rebuilt from the session logs,
    or, with none, moved aside for a new one. A folder or index zag cannot write is named as such
    (reindex would fail the same way); `rebuilding` is set by `zag reindex` itself, which must not
    suggest itself.
    """
    import sqlite3

    from zag import paths
    from zag.logs.index import is_damaged

    index, home, logs = paths.index_db(), paths.home(), paths.sessions_dir()
    if isinstance(exc, sqlite3.Error) and is_damaged(exc):
        if rebuilding:
            return (f"the index {index} is damaged ({exc}); move it away (with its -wal and -shm files) "
                    "and run it again to start a new one")
        if _has_logs(logs):
            return f"the index {index} is damaged ({exc}); `zag reindex` rebuilds it from the session logs"
        return (f"the index {index} is damaged ({exc}), and there are no session logs in {logs} to rebuild it "
                "from; `zag reindex` moves it aside and starts a new, empty one")
    if index.exists() and not index.is_file():
        return f"the index {index} is not a file ({exc}); `zag reindex` moves it aside and starts a new one"
    blocked = _not_writable(home, index, exc)
    if blocked == home:
        return (f"zag's folder {home} is not writable ({exc}); "
                "make it writable or set ZAG_HOME to a folder you can write")
    if blocked is not None:
        return f"the index {index} is not writable ({exc}); make it (and its -wal and -shm files) writable"
    full = disk_full(home)
    if full is not None:  # SQLite says "disk I/O error" when it cannot make its -shm file on a full disk
        return f"cannot open the index {index} ({exc}): {full}"
    return f"cannot open the index {index} ({exc})"


def os_trouble(exc: OSError) -> str:
    """One line on an OSError from zag's own files; a file where zag keeps a folder (ZAG_HOME itself, its
    `sessions/`) is named as such, with what to do ("File exists" alone said neither)."""
    from zag import paths

    if isinstance(exc, paths.NoHome):
        return str(exc.strerror)
    if exc.filename is None and exc.errno in _OUTPUT_LOST:  # no file named: the write to stdout failed
        return f"cannot write the output: {exc.strerror}"
    if isinstance(exc, (FileExistsError, NotADirectoryError)) and exc.filename:
        blocker = _file_in_the_way(paths.home(), Path(os.fsdecode(exc.filename)))
        if blocker is not None:
            return (f"{blocker} is a file, where zag keeps a folder; move it away or set ZAG_HOME "
                    "to another folder")
    where = f" {exc.filename}" if exc.filename else ""
    return f"cannot access{where}: {exc.strerror or exc}"


def _file_in_the_way(home: Path, path: Path) -> Path | None:
    """The first of `path` and its folders, from ZAG_HOME down, that exists but is not a folder."""
    for candidate in (*reversed(path.parents), path):
        if candidate != home and home not in candidate.parents:
            continue
        if candidate.exists() and not candidate.is_dir():
            return candidate
    return None


_OUTPUT_LOST = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)
FULL_BELOW_BYTES = 1024 * 1024  # SQLite needs 32 KB for the -shm file alone, a log line a few KB


def disk_full(folder: Path) -> str | None:
    """"the disk that holds FOLDER is full …" when the file system under `folder` has (almost) no
    space left for this user: the likely cause of an I/O error writing there. None otherwise."""
    try:
        stat = os.statvfs(folder)
    except OSError:
        return None
    free = (stat.f_bfree if os.geteuid() == 0 else stat.f_bavail) * stat.f_frsize
    if free >= FULL_BELOW_BYTES:
        return None
    return f"the disk that holds {folder} is full ({free // 1024} KB free); free some space and run it again"


_SQLITE_READONLY = 8


def _not_writable(home: Path, index: Path, exc: Exception) -> Path | None:
    """The folder or index file zag cannot write (None if both look writable and SQLite did not say
    read-only)."""
    if not os.access(home, os.W_OK | os.X_OK):
        return home
    if index.exists() and not os.access(index, os.W_OK):
        return index
    code = getattr(exc, "sqlite_errorcode", None)
    return index if code is not None and code & 0xFF == _SQLITE_READONLY else None


def _has_logs(folder: Path) -> bool:
    """Whether `folder` holds at least one readable `<session id>.jsonl` log (stops at the first)."""
    from zag.logs.ids import is_session_id

    try:
        with os.scandir(folder) as entries:
            return any(entry.name.endswith(".jsonl") and is_session_id(entry.name[:-6])
                       and os.access(entry.path, os.R_OK) for entry in entries)
    except OSError:
        return False


def _database_errors() -> type[Exception]:
    import sqlite3

    return sqlite3.DatabaseError


def output_failed(exc: OSError) -> None:
    """Writing the output failed outside a command's own handling (`--help`, `zag completions bash > file`
    on a full disk): one line, exit 1, and nothing left for the interpreter to flush at exit."""
    try:
        os.write(2, f"zag: {os_trouble(exc)}\n".encode("utf-8", "replace"))
    except OSError:
        pass
    _stdout_to_devnull()
    raise SystemExit(1)


def quiet_broken_pipe() -> None:
    """The reader went away: stop writing without Python's 'Exception ignored' noise at exit."""
    _stdout_to_devnull()
    raise SystemExit(0)


def _stdout_to_devnull() -> None:
    """What is still buffered for stdout goes nowhere (flushing it at exit would fail again)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
