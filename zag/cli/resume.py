"""`zag resume SESSION`: continue a session whose supervisor is gone, under a new supervisor.

The same zag session goes on (same log, its seq continues after a `session_started` with
`resumed: true`; the same index row, taken over). With a pending resume (the supervisor died while
waiting for a usage-limit reset) it waits if the reset is still ahead, then resumes the agent as
`zag run` would have; without one it continues the agent's session at once with the configured resume
message. Refused (exit 2) while a live zag still supervises the session (its process still runs, even
if its heartbeats stopped), or when zag never learnt the agent's own session id.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from zag import states
from zag.cli.completions import COMPLETION_LIMIT, session_completer
from zag.cli.errors import UserError, user_errors

_HELP = """Resume SESSION under a new supervisor (SESSION: an id or a unique prefix).

For a session whose supervisor died while waiting for a usage-limit reset (`zag ps` shows it dead),
zag waits for the scheduled time if it is still ahead, then resumes the agent. For any other ended
session, zag continues the agent's own session right away with the configured resume message.
Interactive when stdin and stdout are terminals. Exits with the agent's exit code.

\b
Example:
  zag ps
  zag resume 3f2a
"""


@click.command("resume", help=_HELP, short_help="Resume a session whose supervisor is gone.")
@click.argument("session", shell_complete=session_completer(states.DEAD, states.EXITED, limit=COMPLETION_LIMIT,
                                                             takeover=True))
@click.option("-v", "--verbose", is_flag=True, help="Print the session id and log path to stderr.")
@user_errors
def resume(session: str, verbose: bool) -> None:
    from zag import config, paths, providers
    from zag.logs.index import Index

    with Index() as index:
        session_id = index.resolve_session(session)
        row = index.get_session(session_id) or {}
        scheduled = bool(index.list_resumes(open_only=True, session_id=session_id))
    if isinstance(row.get("cwd"), str):
        row["cwd"] = _folder_as_named(row["cwd"])
    _check_resumable(row, scheduled=scheduled)
    provider = providers.get(row["provider"])
    from zag.wrapper.executable import MissingExecutable, find_executable

    env = paths.environ_for_agent()
    try:
        executable = find_executable(row["provider"], provider.executable, provider.install_hint, env)
    except MissingExecutable as exc:
        click.echo(f"zag: {exc}", err=True)
        sys.exit(exc.exit_code)
    settings = config.load()
    for problem in settings.problems:
        click.echo(f"zag: config: {problem}", err=True)
    sys.exit(_continue(provider, row, executable, settings, verbose, env))


def _check_resumable(row: dict[str, Any], *, scheduled: bool = False) -> None:
    """Refuse (UserError) what cannot be resumed; `scheduled`: the index holds an open resume of it."""
    from zag.wrapper.liveness import effective_state, silent_but_running, supervisor_alive

    short = row["session_id"][:8]
    state = effective_state(row)
    if state in states.LIVE_STATES:
        alive = supervisor_alive(row.get("supervisor_pid"), row.get("supervisor_started"), row.get("hostname"))
        where = f" on {row.get('hostname')}" if alive is None else f" (pid {row.get('supervisor_pid')})"
        hint = " (`zag usage list` shows its scheduled resume)" if scheduled else ""
        raise UserError(f"session {short} is still supervised by zag{where}, state {state}; nothing to resume{hint}")
    if state == states.DEAD and silent_but_running(row):
        # silent, not gone (stopped with Ctrl-Z, or the machine just woke up): a takeover would run a
        # second supervisor, and both would resume the agent
        pid = row["supervisor_pid"]
        raise UserError(f"session {short} has not heard from its supervisor (pid {pid}) for a while, but that "
                        f"zag still runs (stopped, or the machine just woke up?); nothing to resume: let it go on "
                        f"(`fg`, `kill -CONT {pid}`) or end it (`kill {pid}`) first")
    if not row.get("provider_session_id"):
        raise UserError(f"session {short} has no {row['provider']} session id to resume: {row['provider']} never "
                        "reported one while zag watched it (e.g. it ended before starting a conversation)")
    cwd = row.get("cwd")
    if not cwd or not os.path.isdir(cwd):
        shown = "".join(char if char.isprintable() else repr(char)[1:-1] for char in cwd or "")  # one line
        raise UserError(f"session {short} ran in {shown or 'an unknown directory'}, which no longer exists; "
                        f"{row['provider']} looks its sessions up by directory")


def _folder_as_named(cwd: str) -> str:
    """The session's folder as the file system names it. The log and index keep bytes that are not UTF-8
    as `\\xff` text (`codec.printable`), which names no folder: they are turned back into those bytes when
    that names one."""
    if "\\x" not in cwd or os.path.isdir(cwd):
        return cwd
    import re

    raw = re.sub(rb"\\x([0-9a-f]{2})", lambda match: bytes([int(match.group(1), 16)]), cwd.encode("utf-8"))
    folder = os.fsdecode(raw)
    return folder if os.path.isdir(folder) else cwd


def _continue(provider: Any, row: dict[str, Any], executable: str, settings: Any, verbose: bool,
              env: dict[str, str]) -> int:
    from zag.wrapper.supervisor import RunRequest, Supervisor, TakeoverRefused

    argv = row.get("argv") if isinstance(row.get("argv"), list) else None
    user_args = [str(part) for part in argv[1:]] if argv else []
    if any("[REDACTED:" in part for part in user_args):  # the index keeps argv as the log does
        click.echo("zag: secrets in this session's arguments were redacted when it was logged; "
                   f"{row['provider']} is resumed with them as logged ([REDACTED:…])", err=True)
    interactive = _is_tty(0) and _is_tty(1)
    request = RunRequest(row["provider"], user_args, executable, interactive, verbose, env, cwd=row["cwd"])
    supervisor = Supervisor(provider, request, settings, session_id=row["session_id"])
    try:
        return supervisor.continue_session(row)
    except TakeoverRefused as exc:
        raise UserError(str(exc)) from None


def _is_tty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False
