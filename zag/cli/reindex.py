"""`zag reindex`: rebuild the index's sessions and scheduled resumes from the session logs."""

from __future__ import annotations

import json

import click

from zag.cli.errors import user_errors

_HELP = """Rebuild the index (sessions and scheduled resumes) from the session logs alone.

The logs under $ZAG_HOME/sessions are the source of truth; the index is a cache of them. Run this
after deleting or damaging index.sqlite, or after copying logs from another machine. Backfill
cursors are kept, so `zag backfill` stays incremental.

\b
Example:
  zag reindex
  zag reindex --json
"""


@click.command("reindex", help=_HELP, short_help="Rebuild the index from the session logs.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as one JSON document.")
@user_errors
def reindex(as_json: bool) -> None:
    import sqlite3

    from zag import paths
    from zag.cli.errors import Failure, index_trouble
    from zag.logs.reindex import reindex as rebuild_index

    try:
        report, damaged = rebuild_index(paths.index_db(), paths.sessions_dir())
    except sqlite3.DatabaseError as exc:  # not damage it could repair: e.g. a folder it cannot write
        raise Failure(index_trouble(exc, rebuilding=True)) from None
    if damaged is not None:
        click.echo(f"zag: the index was damaged; it was moved to {damaged} and rebuilt "
                   "(its backfill cursors are lost: the next `zag backfill` re-reads the agents' history)",
                   err=True)
    if as_json:
        click.echo(json.dumps({
            "damaged_index_moved_to": str(damaged) if damaged else None,
            "sessions": report.sessions,
            "resumes": report.resumes,
            "bad_lines": report.bad_lines,
            "torn_tails": report.torn_tails,
            "dropped": report.dropped,
            "skipped": [{"file": name, "reason": why} for name, why in report.skipped],
        }))
        return
    click.echo(f"reindexed {report.sessions} session(s), {report.resumes} usage-limit incident(s) "
               f"from {paths.sessions_dir()}")
    if report.dropped:
        click.echo(f"removed {report.dropped} index row(s) whose log no longer exists")
    if report.bad_lines or report.torn_tails:
        click.echo(f"ignored {report.bad_lines} unreadable line(s) and {report.torn_tails} torn last line(s)",
                   err=True)
    for name, why in report.skipped:
        click.echo(f"zag: skipped {name}: {why}", err=True)
