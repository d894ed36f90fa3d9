"""Turning expected failures into one clear line on stderr and an exit code, never a traceback.

`user_errors` wraps a command body: a bad, unknown or ambiguous session id (or an unknown provider)
exits 2; an unreadable index exits 1 with a hint; a closed pipe (`zag events … | head`) and Ctrl-C end
quietly.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
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
            raise Failure(
                f"cannot read the index ({exc}); `zag reindex` rebuilds it from the session logs"
            ) from None
        except OSError as exc:  # e.g. ZAG_HOME not writable, a log not readable
            where = f" {exc.filename}" if exc.filename else ""
            raise Failure(f"cannot access{where}: {exc.strerror or exc}") from None

    return wrapper  # type: ignore[return-value]


def _database_errors() -> type[Exception]:
    import sqlite3

    return sqlite3.DatabaseError


def quiet_broken_pipe() -> None:
    """The reader went away: stop writing without Python's 'Exception ignored' noise at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    raise SystemExit(0)
