"""`zag listen`: print a session's events as they are written, until the session ends.

Existing events come first, then new ones as their lines complete (checked every 0.1 s). Following
stops after `session_ended`, or when the index says the session can no longer write (its supervisor is
gone, or it ended without a `session_ended` line), once the log has been read to its end. A supervisor
that is silent but still runs (stopped, or a machine just woken up) may write again: it is followed on.
A session that `zag resume` continues has several runs in one log: following goes on across them while
a new supervisor holds the session.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from zag import states
from zag.cli import render
from zag.cli.completions import complete_live_sessions
from zag.cli.errors import Failure, UserError, user_errors

if TYPE_CHECKING:
    from zag.logs.index import Index

POLL_SECS = 0.1
LIVENESS_SECS = 1.0

_HELP = """Print a session's events as they are written, following until the session ends.

SESSION is a session id or a unique prefix of one. --latest picks the newest live session (running or
waiting, also an older one `zag resume` took up), else the newest session zag ran, else the newest
imported one. On a terminal events are shown one per line, coloured; --json prints the log's lines
unchanged (NDJSON), for tools. Waits for the log if the session has not written it yet.

\b
Example:
  zag listen --latest
  zag listen 3f2a --json --since 120 | jq -c 'select(.type == "tool_call")'
"""


@click.command("listen", help=_HELP, short_help="Print a session's events as they are written.")
@click.argument("session", required=False, shell_complete=complete_live_sessions)
@click.option("--latest", is_flag=True, help="Listen to the newest live session, else the newest one zag ran.")
@click.option("--json", "as_json", is_flag=True, help="Print raw log lines (NDJSON).")
@click.option("--since", type=click.IntRange(min=0), default=0, metavar="SEQ",
              help="Only events after sequence number SEQ.")
@click.option("--no-follow", is_flag=True, help="Print the events written so far and exit.")
@user_errors
def listen(session: str | None, latest: bool, as_json: bool, since: int, no_follow: bool) -> None:
    from zag.logs.index import Index

    if (session is not None) == latest:
        raise UserError("name a session (id or unique prefix) or use --latest, not both"
                        if latest else "name a session (id or unique prefix), or use --latest")
    index = Index()
    try:
        session_id = _resolve(index, session)
        row = index.get_session(session_id) or {}
        from zag.cli.sessions import log_path_of

        path = log_path_of(session_id, row)
        if no_follow and not path.exists():
            raise Failure(f"session {session_id} has no log at {path}")
        code = _follow(index, session_id, path, as_json=as_json, since=since, follow=not no_follow)
    finally:
        index.close()
    if code:
        raise SystemExit(code)


def _resolve(index: Index, session: str | None) -> str:
    from zag.cli.sessions import resolve_session, unindexed_logs_hint

    if session is not None:
        return resolve_session(index, session)
    latest = index.latest_session_id()
    if latest is None:
        logs = unindexed_logs_hint()
        raise UserError(f"there are no sessions in the index, {logs}" if logs
                        else "there are no sessions yet (see `zag run --help`)")
    return latest


def _follow(index: Index, session_id: str, path: Path, *, as_json: bool, since: int, follow: bool) -> int:
    """Print events until the follower stops; the exit code (1 when the supervisor died, 130 on Ctrl-C)."""
    from zag.logs.follower import STOP_ASKED, STOP_ENDED, STOP_NOT_LIVE, EventFollower

    liveness = _Liveness(index, session_id)
    out = sys.stdout
    with _CtrlC() as ctrl_c:
        follower = EventFollower(
            path,
            since_seq=since,
            follow=follow,
            not_live=liveness,
            taken_over=lambda started: _taken_over(liveness.row(), started),
            poll_secs=POLL_SECS,
            liveness_secs=LIVENESS_SECS,
            stopped=ctrl_c.pressed,
            # what was read is flushed once the log is caught up with, not line by line: a write(2) per
            # event made the backlog of a 3,000,000-event log cost 6 s of system time
            caught_up=lambda: _flush(out, as_json),
            whole=not as_json,   # --json passes the lines on as they are
        )
        style = render.Style.for_stream(out)
        terminal = render.is_terminal(out)
        raw = render.terminal_safe_json if terminal else bytes
        try:
            for line in follower:
                if as_json:
                    out.buffer.write(raw(line.raw))
                else:
                    # the width now: a terminal resized while following (a tmux pane) gets lines that fit
                    width = render.terminal_width(out) if terminal else 0
                    out.write(render.format_event(line.event, style, width=width) + "\n")
            _flush(out, as_json)
        finally:
            liveness.close()
    if follower.stop_reason == STOP_ASKED:
        return 130
    if follower.stop_reason != STOP_ENDED and not path.exists():  # an end read from a log removed since counts
        state = f" (its state: {follower.not_live_reason})" if follower.not_live_reason else ""
        raise Failure(f"session {session_id} has no log at {path}{state}")
    if follower.bad_lines:
        click.echo(f"zag: skipped {follower.bad_lines} unreadable line(s) in {path}", err=True)
    if follower.stop_reason == STOP_NOT_LIVE and follower.not_live_reason == states.DEAD:
        click.echo(
            f"zag: session {session_id[:8]} stopped without ending: its supervisor is gone (dead); "
            "`zag resume` can pick it up",
            err=True,
        )
        return 1
    if follower.stop_reason == STOP_NOT_LIVE and follower.not_live_reason == "missing":
        click.echo(f"zag: session {session_id[:8]} is no longer in the index; stopped", err=True)
        return 1
    return 0


def _flush(out: Any, as_json: bool) -> None:
    if as_json:
        out.buffer.flush()
    else:
        out.flush()


class _CtrlC:
    """While following, Ctrl-C (SIGINT) is a request the follower sees at its next pause (≤ POLL_SECS),
    not a KeyboardInterrupt that could land anywhere (in a finaliser, it would be swallowed and
    `listen` would go on following). A second Ctrl-C interrupts at once (e.g. a write to a stuck pipe)."""

    def __init__(self) -> None:
        self._pressed = False
        self._previous: Any = None

    def pressed(self) -> bool:
        return self._pressed

    def __enter__(self) -> _CtrlC:
        import signal

        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        signal.signal(signal.SIGINT, self._previous)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self._pressed:
            raise KeyboardInterrupt
        self._pressed = True


def _taken_over(row: dict[str, Any] | None, started: dict[str, Any] | None) -> bool:
    """After a `session_ended`: does a supervisor other than the one that started the last run hold the
    session (its index `row`) now (`zag resume`)? Then its `session_started` is about to follow."""
    from zag.wrapper.liveness import effective_state

    if row is None or not row.get("resumed") or effective_state(row) not in states.LIVE_STATES:
        return False
    started = started or {}
    return (row.get("supervisor_pid"), row.get("supervisor_started")) != (
        started.get("supervisor_pid"), started.get("supervisor_started"))


class _Liveness:
    """Asked by the follower: None while the session may still write to its log; otherwise its state
    (`dead`, `exited`, or `missing` from the index).

    A supervisor whose heartbeats stopped but whose process still runs here (stopped with Ctrl-Z or
    SIGSTOP, a machine just woken from suspend) is silent, not gone: `zag ps` shows it dead, but it
    may go on writing, and `zag resume` refuses it, so following goes on (said once on stderr)."""

    def __init__(self, index: Index, session_id: str) -> None:
        self.index = index
        self.session_id = session_id
        self.noted = False
        self._reopened: Index | None = None

    def row(self) -> dict[str, Any] | None:
        """The session's index row. Once the index file was replaced (`rm index.sqlite*; zag reindex`),
        this connection still reads the old one, where the heartbeats stopped: the row comes from the
        new one as soon as it holds the session (a running supervisor re-adds its row at its next write)."""
        if self.index.replaced() and self.index.path.exists():
            row = self._reopen()
            if row is not None:
                return row
        return self.index.get_session(self.session_id)

    def _reopen(self) -> dict[str, Any] | None:
        from zag.logs.index import Index

        try:
            fresh = Index(self.index.path, timeout=LIVENESS_SECS)
        except Exception:  # noqa: BLE001 - sqlite3.Error, OSError (being rebuilt): keep reading the one open
            return None
        try:
            row = fresh.get_session(self.session_id)
        except Exception:  # noqa: BLE001
            row = None
        if row is None:
            fresh.close()
            return None
        self.close()
        self.index = self._reopened = fresh
        return row

    def close(self) -> None:
        """Close the connection this opened (the first one is its caller's)."""
        if self._reopened is not None:
            self._reopened.close()
            self._reopened = None

    def __call__(self) -> str | None:
        from zag.wrapper.liveness import effective_state, silent_but_running

        row = self.row()
        if row is None:
            return "missing"
        state = effective_state(row)
        if state == states.DEAD and silent_but_running(row):
            self._note_silent(row)
            return None
        return None if state in states.LIVE_STATES else state

    def _note_silent(self, row: dict[str, Any]) -> None:
        if self.noted:
            return
        self.noted = True
        pid = row.get("supervisor_pid")
        click.echo(f"zag: session {self.session_id[:8]}: no heartbeat from its supervisor (pid {pid}) for a "
                   "while, but it still runs (stopped, or the machine just woke up?); still following", err=True)
