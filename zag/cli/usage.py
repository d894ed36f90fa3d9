"""`zag usage list` / `zag usage cancel`: the resumes zag scheduled after agents hit usage limits.

A resume lives in the index (`resumes` table) from the hit until it is done, cancelled or given up.
Cancelling sets its status; a live supervisor waiting on it polls the index about once a second and
stops waiting; for a dead supervisor (`zag ps` shows the session `dead`) only the row changes.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from zag import states
from zag.cli import render
from zag.cli.completions import complete_open_incidents
from zag.cli.errors import UserError, user_errors

_LIST_HELP = """List scheduled resumes (usage-limit incidents waiting for their reset).

\b
Example:
  zag usage list
  zag usage list --json | jq -r '.[] | "\\(.incident_id) \\(.resume_at)"'
"""

_CANCEL_HELP = """Cancel a scheduled resume. INCIDENT is an incident id or a unique prefix of one
(see `zag usage list`).

The supervisor waiting on it (if alive) stops waiting within about a second: a session whose agent
has exited ends with the agent's last exit code; an interactive agent still on screen keeps running.
A resume that is no longer scheduled (done, cancelled or failed) cannot be cancelled: exit 2.

\b
Example:
  zag usage cancel 1a2b3c
"""


@click.group("usage", short_help="Scheduled resumes after usage limits: list, cancel.")
def usage() -> None:
    """Scheduled resumes after usage limits: list them, cancel one.

    \b
    Example:
      zag usage list
      zag usage cancel 1a2b3c
    """


@usage.command("list", help=_LIST_HELP, short_help="List scheduled resumes.")
@click.option("--all", "show_all", is_flag=True, help="Include done, cancelled and failed resumes.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document: a list of resumes.")
@user_errors
def list_command(show_all: bool, as_json: bool) -> None:
    from zag.logs.index import Index

    now = time.time()
    with Index() as index:
        found = [(row, index.get_session(row["session_id"])) for row in index.list_resumes(open_only=not show_all)]
    rows = [describe(row, session, now) for row, session in found]
    if as_json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
        return
    _mark_silent(rows, [session for _, session in found])
    if not rows:
        click.echo("no scheduled resumes" + ("" if show_all else " (`zag usage list --all` shows past ones)"),
                   err=True)
        return
    style = render.Style.for_stream()
    click.echo(resumes_table(rows, style, width=render.terminal_width(), now=now), color=style.enabled)


@usage.command("cancel", help=_CANCEL_HELP, short_help="Cancel a scheduled resume.")
@click.argument("incident", shell_complete=complete_open_incidents)
@user_errors
def cancel(incident: str) -> None:
    from zag.logs.index import Index

    from zag.logs.ids import BadSessionId, check_prefix

    try:
        check_prefix(incident)  # incident ids are UUIDs too; only the wording differs
    except BadSessionId:
        raise UserError(f"{incident!r} is not an incident id: use the id (or a unique prefix of it) shown by "
                        "`zag usage list`") from None
    with Index() as index:
        incident_id = index.resolve_incident(incident)
        row = index.get_resume(incident_id) or {}
        if row.get("status") not in states.RESUME_OPEN_STATES or not index.update_resume_if(
                incident_id, states.RESUME_OPEN_STATES, status=states.RESUME_CANCELLED):
            raise UserError(_not_scheduled(incident_id, (index.get_resume(incident_id) or {}).get("status")))
        session = index.get_session(row["session_id"])
        silent = False  # `dead` by its heartbeats, but its process runs (stopped, or just woke from suspend)
        if session is not None and supervisor_state(session) == "dead":
            from zag.wrapper.limits import record_cancel_without_supervisor
            from zag.wrapper.liveness import silent_but_running

            silent = silent_but_running(session)
            record_cancel_without_supervisor(index, session, row)
            session = index.get_session(row["session_id"])
    supervisor = supervisor_state(session)
    what = f"cancelled the resume of session {row['session_id'][:8]} ({row.get('provider')})"
    if supervisor == "alive":
        click.echo(f"{what}; its supervisor stops waiting")
    elif silent:
        click.echo(f"{what}; its supervisor (pid {(session or {}).get('supervisor_pid')}) is silent but still runs: it "
                   "stops waiting once it goes on")
    elif supervisor == "dead":
        click.echo(f"{what}; its supervisor is gone (`zag resume {row['session_id'][:8]}` would continue the "
                   "agent's session without waiting)")
    else:
        click.echo(what)


def _not_scheduled(incident_id: str, status: str | None) -> str:
    """Why a resume cannot be cancelled: it is over (or was cancelled already)."""
    why = {states.RESUME_CANCELLED: "it is already cancelled",
           states.RESUME_DONE: "its resume is already done",
           states.RESUME_FAILED: "its resume already failed"}.get(status or "", f"it is {status or 'gone'}")
    return (f"usage-limit incident {incident_id[:8]} is not scheduled any more ({why}); nothing to cancel "
            "(`zag usage list` shows the scheduled ones)")


def supervisor_state(session: dict[str, Any] | None) -> str:
    """`alive`, `dead` (the session claims to be live but its supervisor is gone), `ended`, `elsewhere`
    (supervised on another host) or `unknown` (no session row)."""
    if session is None:
        return "unknown"
    from zag.wrapper.liveness import effective_state, supervisor_alive

    state = effective_state(session)
    if state == states.DEAD:
        return "dead"
    if state not in states.LIVE_STATES:
        return "ended"
    alive = supervisor_alive(session.get("supervisor_pid"), session.get("supervisor_started"),
                             session.get("hostname"))
    return "elsewhere" if alive is None else "alive"


def describe(row: dict[str, Any], session: dict[str, Any] | None, now: float) -> dict[str, Any]:
    """One resume as `--json` shows it: full ids, RFC 3339 times, what is left, the supervisor."""
    resume_at = render.epoch_of(row.get("resume_at"))
    attempts = row.get("attempts")
    return {
        "incident_id": _text(row["incident_id"]),
        "session_id": _text(row["session_id"]),
        "provider": _text(row.get("provider")),
        "provider_session_id": _text(row.get("provider_session_id")),
        "scope": _text(row.get("scope")),
        "reset_at": _stamp(row.get("reset_at")),
        "resume_at": _stamp(resume_at),
        "resume_in_secs": int(round(resume_at - now)) if resume_at is not None and _open(row) else None,
        "fallback_used": bool(row.get("fallback_used")),
        "status": _text(row.get("status")),
        "attempts": attempts if isinstance(attempts, int) else 0,
        "raw": _text(row.get("raw")),
        "created_at": _stamp(row.get("created_at")),
        "updated_at": _stamp(row.get("updated_at")),
        "supervisor": supervisor_state(session),
    }


def _stamp(value: Any) -> str | None:
    """A time column as RFC 3339; None when it holds no time a clock shows (a damaged row: a string, NaN,
    a number beyond the year 9999), so one bad row does not stop the listing."""
    from zag.logs.events import format_ts

    epoch = render.epoch_of(value)
    return format_ts(epoch) if epoch is not None else None


def _text(value: Any) -> str | None:
    """A text column as text (a damaged row may hold a number or a blob there)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _mark_silent(rows: list[dict[str, Any]], sessions: list[dict[str, Any] | None]) -> None:
    """A `dead` supervisor whose process still runs (a Ctrl-Z'd job: `fg` continues it; or unresponsive)
    is shown as `zag ps` shows it, `dead (zag stopped)`: `zag resume` would refuse it."""
    from zag.wrapper.liveness import silent_kind

    for row, session in zip(rows, sessions):
        if row["supervisor"] == "dead" and session is not None:
            row["silent"] = silent_kind(session)


def resumes_table(rows: list[dict[str, Any]], style: render.Style, *, width: int = 0, now: float) -> str:
    headers = ("INCIDENT", "SESSION", "PROVIDER", "SCOPE", "RESET", "RESUME", "STATUS", "TRIES", "SUPERVISOR")
    lines = []
    for row in rows:
        resume_at = render.epoch_of(row["resume_at"])
        resume = "-"
        if resume_at is not None and _open(row):
            left = resume_at - now
            resume = f"{render.when(resume_at, now)} ({'in ' + render.duration(left) if left > 0 else 'due'})"
        elif resume_at is not None:  # done, cancelled or given up: when it was due, no countdown
            resume = render.when(resume_at, now)
        status = row["status"] or "?"
        status_style = "yellow" if _open(row) else "dim"
        supervisor = row["supervisor"]
        if row.get("silent"):
            supervisor = f"{supervisor} (zag {row['silent']})"
        lines.append((
            (render.short_id(row["incident_id"]), "bold"),
            render.short_id(row["session_id"]),
            row["provider"] or "-",
            row["scope"] or "-",
            render.when(render.epoch_of(row["reset_at"]), now) if row["reset_at"] else "-",
            resume,
            (status, status_style),
            str(row["attempts"]),
            (supervisor, "bold red" if row["supervisor"] == "dead" and not row.get("silent") else ""),
        ))
    return render.table(headers, lines, style, width=width)


def _open(row: dict[str, Any]) -> bool:
    """Still ahead (pending or resuming), as opposed to done, cancelled or failed."""
    return row.get("status") in states.RESUME_OPEN_STATES
