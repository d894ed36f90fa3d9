"""`zag dismiss SESSION... | --dead`: end dead sessions one does not want to continue.

A dead session (its supervisor went away without ending it) stays in `zag ps` until it is resumed or
dismissed. Dismissing records the end in the session's log (so `zag reindex` keeps it) and in the index,
and cancels a resume still scheduled for it (`zag.wrapper.dismiss`). The log and the session stay:
`zag sessions`, `zag events` and `zag resume` still work on it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from zag import states
from zag.cli.completions import session_completer
from zag.cli.errors import EXIT_USAGE, Failure, UserError, user_errors

_HELP = """Dismiss dead sessions you do not want to continue (SESSION: an id or a unique prefix).

A session is dead when its supervisor went away without ending it (killed, crashed, machine rebooted):
`zag ps` lists it until it is resumed or dismissed. Dismissing ends it in its log and in the index
(`zag ps --all` shows it `dismissed`), and cancels a usage-limit resume still due for it. Its log and
events are kept; `zag resume` can still continue it later.

Refused (exit 2) for a session that is not dead: still supervised, already ended, or silent but still
running (a zag stopped with Ctrl-Z, a machine just woken up). With several sessions the others are still
dismissed.

\b
Example:
  zag ps                      # 3f2a1b2c  claude  dead …
  zag dismiss 3f2a
  zag dismiss --dead          # every dead session
"""


@click.command("dismiss", help=_HELP, short_help="Dismiss dead sessions you will not resume.")
@click.argument("sessions", nargs=-1, metavar="[SESSION]...",
                shell_complete=session_completer(states.DEAD, takeover=True))
@click.option("--dead", "all_dead", is_flag=True,
              help="Dismiss every dead session (those whose supervisor still runs, or that `zag resume` "
                   "took over meanwhile, are left alone).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document: a list of results.")
@user_errors
def dismiss(sessions: tuple[str, ...], all_dead: bool, as_json: bool) -> None:
    if all_dead == bool(sessions):
        raise UserError("name the dead sessions to dismiss, or give --dead for all of them (not both); "
                        "`zag ps` shows which are dead")
    from zag.logs.index import Index

    with Index() as index:
        rows = _dead_rows(index) if all_dead else _named_rows(index, sessions)
        results = [_dismiss_one(index, row, skip_silent=all_dead) for row in rows]
    _report(results, as_json, all_dead)
    if any(result["status"] == "failed" for result in results):
        sys.exit(Failure.exit_code)
    if any(result["status"] == "refused" for result in results):
        sys.exit(EXIT_USAGE)


def _named_rows(index: Any, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """The rows of the named sessions, each once, in the order given; unknown or ambiguous: exit 2 before
    anything is dismissed."""
    from zag.cli.sessions import resolve_session

    rows: dict[str, dict[str, Any]] = {}
    for name in names:
        session_id = resolve_session(index, name)
        rows.setdefault(session_id, index.get_session(session_id) or {"session_id": session_id})
    return list(rows.values())


def _dead_rows(index: Any) -> list[dict[str, Any]]:
    from zag.wrapper.dismiss import dead_sessions

    return dead_sessions(index)


def _dismiss_one(index: Any, row: dict[str, Any], *, skip_silent: bool) -> dict[str, Any]:
    """Dismiss one session; what happened, as `--json` shows it."""
    from zag.wrapper import dismiss as dismissing
    from zag.wrapper.liveness import silent_but_running

    result: dict[str, Any] = {"session_id": row["session_id"], "provider": row.get("provider"),
                              "status": "dismissed", "cancelled_incidents": [], "message": None}
    if skip_silent and silent_but_running(row):
        result.update(status="skipped", message=f"session {row['session_id'][:8]}: its supervisor (pid "
                      f"{row.get('supervisor_pid')}) is silent but still runs (stopped?); left alone")
        return result
    try:
        done = dismissing.dismiss(index, row)
    except dismissing.TakenOver as exc:
        # with --dead, a session `zag resume` took over since the listing is no longer dead: not an error
        result.update(status="skipped" if skip_silent else "refused", message=str(exc))
    except dismissing.Refused as exc:
        result.update(status="refused", message=str(exc))
    except dismissing.LogUnwritable as exc:
        result.update(status="failed", message=str(exc))
    else:
        result["cancelled_incidents"] = [resume["incident_id"] for resume in done.cancelled]
        if done.ended_before is not None:
            code = done.ended_before.get("exit_code")
            result.update(status="already_ended", message=(
                f"session {row['session_id'][:8]} ({row.get('provider')}) had ended in its log "
                f"({'exit ' + str(code) if code is not None else 'no exit code'}), but its supervisor was gone "
                "before the index said so: now the index says so too; nothing was written to the log"))
    return result


def _report(results: list[dict[str, Any]], as_json: bool, all_dead: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(results, ensure_ascii=False, indent=1) + "\n")
    for result in results:
        if result["status"] in ("refused", "skipped", "failed"):
            click.echo(f"zag: {result['message']}", err=True)
        elif as_json:
            continue
        elif result["status"] == "already_ended":
            click.echo(result["message"])
        else:
            click.echo(_dismissed_line(result))
    if all_dead and not results:
        click.echo("no dead sessions to dismiss", err=True)


def _dismissed_line(result: dict[str, Any]) -> str:
    line = f"dismissed session {result['session_id'][:8]} ({result['provider']})"
    cancelled = result["cancelled_incidents"]
    if cancelled:
        line += "; cancelled its scheduled resume" + ("s " if len(cancelled) > 1 else " ")
        line += ", ".join(incident[:8] for incident in cancelled)
    return line
