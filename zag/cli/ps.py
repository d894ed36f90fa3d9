"""`zag ps`: supervised sessions and their state (running, waiting, exited, dead).

An exited session that `zag dismiss` ended is shown `dismissed` (stored `exited`, `end_reason` dismissed).

The stored state comes from the index; `dead` is derived here for sessions that claim to be live but
whose supervisor is gone (`zag.wrapper.liveness.effective_state`). Only what a listing needs is
imported: `zag ps --json` must answer fast with tens of thousands of sessions.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import Any

import click

from zag import states
from zag.cli import render
from zag.cli.errors import user_errors

_PS_HELP = """Show supervised sessions and their state.

By default: live sessions (running, waiting for a usage-limit reset) and dead ones (the supervisor
went away without ending the session; `zag dismiss` ends those you will not resume). --all adds
exited sessions (and dismissed ones).

\b
Example:
  zag ps
  zag ps --all --json | jq -r '.[] | select(.state == "dead") | .session_id'
"""


@click.command("ps", help=_PS_HELP, short_help="Show supervised sessions and their state.")
@click.option("--all", "show_all", is_flag=True, help="Include exited sessions.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document: a list of sessions with full ids.")
@user_errors
def ps(show_all: bool, as_json: bool) -> None:
    from zag.logs.index import Index

    wanted = None if show_all else states.LIVE_STATES
    now = time.time()
    style = render.Style.for_stream()
    with Index() as index:
        if as_json:
            from zag.cli.listing import write_sessions_json

            write_sessions_json(index.iter_session_json(states_in=wanted), sys.stdout.buffer, states_in=wanted,
                                due=index.due_resumes())
            return
        from zag.cli.sessions import Counted, shown_states

        # each row rendered as it is read: `ps --all` with 100,000 sessions never holds them all as rows
        due = index.due_resumes()
        rows = Counted(row for row in shown_states(index.iter_sessions(states_in=wanted), now, silent=True, due=due)
                       if wanted is None or row["state"] != states.EXITED)
        text = ps_table(rows, style, width=render.terminal_width(), now=now)
    if not rows.count:
        click.echo(_empty_message(show_all), err=True)
        return
    # click.echo strips ANSI codes when stdout is not a terminal: `color=` keeps FORCE_COLOR's choice
    click.echo(text, color=style.enabled)


def state_cell(row: dict[str, Any], now: float) -> render.Cell:
    """The STATE column: the state, with the resume time when waiting and the code when exited."""
    state = row.get("state") or "?"
    if row.get("index_stale") and state in states.LIVE_STATES:  # its zag beats on, the index cannot take it
        text, color = state_cell({**row, "index_stale": False}, now)
        return f"{text} (index stale)", color
    if state == states.WAITING:
        resume_at = row.get("resume_at")
        text = f"waiting → {render.when(resume_at, now)}" if resume_at else "waiting"
        return text, "yellow"
    if state == states.EXITED:
        if row.get("end_reason") == "dismissed":  # `zag dismiss` ended it: no exit code is known
            return "dismissed", "dim"
        code = row.get("exit_code")
        text = "exited" if code is None else f"exited {code}"
        return text, "dim" if code in (0, None) else "red"
    if state == states.DEAD:
        if row.get("silent"):  # no heartbeats, but its zag still runs: `fg` / `kill -CONT`, not `zag resume`
            return f"dead (zag {row['silent']})", "yellow"
        # it died waiting for a usage-limit reset, or resuming after one: `zag resume` picks it up
        resume_at = row.get("resume_at")
        return (f"dead, resume due {render.when(resume_at, now)}" if resume_at else "dead"), "bold red"
    if state == states.RUNNING:
        return "running", "green"
    return state, ""


def _empty_message(show_all: bool) -> str:
    if not show_all:
        return "no live sessions (`zag ps --all` includes exited ones)"
    from zag.cli.sessions import unindexed_logs_hint

    logs = unindexed_logs_hint()
    return f"no sessions in the index, {logs}" if logs else "no live sessions"


def ps_table(rows: Iterable[dict[str, Any]], style: render.Style, *, width: int = 0, now: float) -> str:
    headers = ("ID", "PROVIDER", "STATE", "PID", "CHILD", "AGE", "CWD", "COMMAND")
    lines = (
        (
            (render.short_id(row["session_id"]), "bold"),
            row.get("provider") or "-",
            state_cell(row, now),
            str(row.get("supervisor_pid") or "-"),
            str(row.get("child_pid") or "-"),
            render.duration(now - row["started_at"]) if row.get("started_at") else "-",
            render.clip_left(render.home_path(row.get("cwd")), 40),
            render.command_line(row.get("argv")),
        )
        for row in rows
    )
    return render.table(headers, lines, style, width=width)
