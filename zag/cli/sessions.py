"""`zag sessions` (the index, newest first) and `zag events` (one session's events from its log)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import click

from zag import states
from zag.cli import render
from zag.cli.completions import complete_recent_sessions
from zag.cli.errors import Failure, UserError, user_errors
from zag.providers import NAMES

_SESSIONS_HELP = """List the sessions in the index, newest first: sessions zag ran and sessions
imported by `zag backfill`.

\b
FLAGS: B = backfilled from the agent's own history, R = resumed (zag continued it after a
       usage limit, or `zag resume` took it over), I = interactive (ran in a terminal).
EVENTS is the number of events in the session's log.

\b
Example:
  zag sessions --provider claude --limit 20
  zag sessions --json | jq -r '.[0].session_id'
"""


_SQLITE_MAX_INT = 2**63 - 1


@click.command("sessions", help=_SESSIONS_HELP, short_help="List sessions in the index, newest first.")
@click.option("--provider", type=click.Choice(NAMES), help="Only this agent's sessions.")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="At most N sessions.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document: a list of sessions with full ids.")
@user_errors
def sessions(provider: str | None, limit: int | None, as_json: bool) -> None:
    from zag.logs.index import Index

    limit = min(limit, _SQLITE_MAX_INT) if limit is not None else None  # `--limit 99999999999999999999`: all

    now = time.time()
    style = render.Style.for_stream()
    with Index() as index:
        if as_json:
            from zag.cli.listing import write_sessions_json

            write_sessions_json(index.iter_session_json(provider=provider, limit=limit), sys.stdout.buffer,
                                due=index.due_resumes())
            return
        # each row rendered as it is read: 100,000 sessions are never all held as rows
        rows = Counted(shown_states(index.iter_sessions(provider=provider, limit=limit), now,
                                    due=index.due_resumes()))
        text = sessions_table(rows, style, width=render.terminal_width(), now=now)
    if not rows.count:
        click.echo(empty_sessions_hint(provider), err=True)
        return
    # click.echo strips ANSI codes when stdout is not a terminal: `color=` keeps FORCE_COLOR's choice
    click.echo(text, color=style.enabled)


def shown_states(rows: Iterable[dict[str, Any]], now: float, *, silent: bool = False,
                 due: Mapping[str, float] | None = None) -> Iterator[dict[str, Any]]:
    """Each row with its effective state: a dead one's log says whether it ended after all (with the log's
    event count, see `take_logged_end`), else when `zag resume` resumes it (`due`: `Index.due_resumes`, see
    `take_due_resume`); with `silent`, a dead one also says whether its zag still runs (`silent_kind`, as
    `zag ps` shows it). A live one whose index row missed its heartbeats (a full disk) has `index_stale`."""
    from zag.cli.listing import take_due_resume, take_logged_end
    from zag.wrapper.liveness import effective_state, index_stale, silent_kind

    for row in rows:
        row["state"] = effective_state(row, now)
        if row["state"] in states.LIVE_STATES and index_stale(row, now):
            row["index_stale"] = True
        if row["state"] == states.DEAD and not take_logged_end(row):
            take_due_resume(row, due)
            if silent:
                row["silent"] = silent_kind(row)
        yield row


class Counted:
    """An iterable that counts what was taken from it."""

    def __init__(self, items: Iterable[Any]) -> None:
        self._items = items
        self.count = 0

    def __iter__(self) -> Iterator[Any]:
        for item in self._items:
            self.count += 1
            yield item


def empty_sessions_hint(provider: str | None) -> str:
    """What to say when the listing is empty: no sessions at all, or none of the provider asked for."""
    if provider:
        return (f"no {provider} sessions (`zag run {provider}` records one; "
                f"`zag backfill --provider {provider}` imports {provider}'s history)")
    logs = unindexed_logs_hint()
    if logs:
        return f"no sessions in the index, {logs}"
    return "no sessions yet (`zag run <agent>` records one; `zag backfill` imports history)"


def unindexed_logs_hint() -> str:
    """For an empty index: "but N session logs are on disk (…reindex…)" when there are logs (the index was
    deleted or replaced), else ""."""
    from zag import paths

    try:
        count = sum(1 for entry in os.scandir(paths.sessions_dir()) if entry.name.endswith(".jsonl"))
    except OSError:
        return ""
    if not count:
        return ""
    return f"but {count} session log(s) are on disk: `zag reindex` rebuilds the index from them"


def resolve_session(index: Any, text: str) -> str:
    """`index.resolve_session`, and when no indexed session matches but a log on disk does (the index
    was lost or replaced), an error that says so and how to get it back."""
    from zag.logs.index import UnknownSession

    try:
        return index.resolve_session(text)
    except UnknownSession:
        logs = _logs_matching(text.strip().lower())
        if not logs:
            raise
        which = "its log is" if len(logs) == 1 else f"{len(logs)} matching logs are"
        raise UnknownSession(f"no session in the index matches {text!r}, but {which} on disk: "
                             "`zag reindex` adds it to the index") from None


def _logs_matching(prefix: str) -> list[str]:
    """Names of session logs under the current ZAG_HOME whose session id starts with `prefix`."""
    from zag import paths
    from zag.logs.ids import is_session_id

    try:
        with os.scandir(paths.sessions_dir()) as entries:
            return [entry.name for entry in entries if entry.name.startswith(prefix)
                    and entry.name.endswith(".jsonl") and is_session_id(entry.name[:-6])]
    except OSError:
        return []


def flags(row: dict[str, Any]) -> str:
    marks = [letter for key, letter in (("backfilled", "B"), ("resumed", "R"), ("interactive", "I")) if row.get(key)]
    return "".join(marks) or "-"


def sessions_table(rows: Iterable[dict[str, Any]], style: render.Style, *, width: int = 0, now: float) -> str:
    headers = ("ID", "PROVIDER", "FLAGS", "STATE", "STARTED", "TOOK", "EVENTS", "MODEL", "PROVIDER SESSION", "CWD")
    return render.table(headers, (_session_line(row, now) for row in rows), style, width=width)


def _session_line(row: dict[str, Any], now: float) -> tuple[render.Cell, ...]:
    from zag.cli.ps import state_cell

    started, ended = row.get("started_at"), row.get("ended_at")
    if ended is not None and started is not None:
        took = render.duration(ended - started)
    elif started is not None and row.get("state") in ("running", "waiting"):
        took = render.duration(now - started)
    else:
        took = "-"
    return (
        (render.short_id(row["session_id"]), "bold"),
        row.get("provider") or "-",
        flags(row),
        state_cell(row, now),
        render.local_time(started),
        took,
        str(row.get("last_seq") or 0),
        render.clip(row.get("model") or "-", 24),
        row.get("provider_session_id") or "-",
        render.home_path(row.get("cwd")),
    )


# --- zag events ------------------------------------------------------------------------------------
_EVENTS_HELP = """Print one session's events from its log, oldest first.

SESSION is a session id or a unique prefix of one (see `zag sessions`). --type keeps only the
given event types; repeat it or separate types with commas. --json prints the log's lines unchanged
(NDJSON).

\b
Example:
  zag events 3f2a --type tool_call,tool_result
  zag events 3f2a --json | jq -c 'select(.type == "usage")'
"""


@click.command("events", help=_EVENTS_HELP, short_help="Print one session's events.")
@click.argument("session", shell_complete=complete_recent_sessions)
@click.option("--type", "-t", "types", multiple=True, metavar="T", shell_complete=lambda c, p, i: complete_types(i),
              help="Only events of type T (repeatable or comma-separated).")
@click.option("--json", "as_json", is_flag=True, help="Print the raw log lines (NDJSON).")
@user_errors
def events_command(session: str, types: tuple[str, ...], as_json: bool) -> None:
    wanted = parse_types(types)
    from zag.logs.index import Index

    with Index() as index:
        session_id = resolve_session(index, session)
        row = index.get_session(session_id) or {}
    path = log_path_of(session_id, row)
    if not path.exists():
        raise Failure(f"session {session_id} has no log at {path}")
    bad = print_events(path, wanted, as_json)
    if bad:
        click.echo(f"zag: skipped {bad} unreadable line(s) in {path}", err=True)


def parse_types(values: Iterable[str]) -> frozenset[str] | None:
    """The event types asked for (`--type a,b --type c`), validated; None when no filter was given."""
    from zag.logs.events import EVENT_TYPES

    wanted = {part.strip() for value in values for part in value.split(",") if part.strip()}
    unknown = sorted(wanted - set(EVENT_TYPES))
    if unknown:
        raise UserError(f"unknown event type {', '.join(unknown)}; choose from: {', '.join(EVENT_TYPES)}")
    return frozenset(wanted) if wanted else None


def complete_types(incomplete: str) -> list[Any]:
    """Event type names for `--type`, continuing a comma-separated list."""
    from click.shell_completion import CompletionItem

    from zag.logs.events import EVENT_TYPES

    head, _, last = incomplete.rpartition(",")
    lead = head + "," if head else ""
    return [CompletionItem(lead + name) for name in EVENT_TYPES if name.startswith(last)]


def log_path_of(session_id: str, row: dict[str, Any]) -> Path:
    """Where a session's unified log is: `<id>.jsonl` under the current ZAG_HOME (so a copied or moved
    ZAG_HOME reads its own logs, not the ones the recorded absolute path still names); the path the
    index recorded only when that file is missing; else the standard place, where the log will be."""
    from zag import paths

    standard = paths.session_log(session_id)
    if standard.exists():
        return standard
    recorded = row.get("log_path")
    if recorded and Path(recorded).exists():
        return Path(recorded)
    return standard


def print_events(path: Path, wanted: frozenset[str] | None, as_json: bool) -> int:
    """Stream the log's complete lines to stdout (rendered, or raw with `as_json`); return bad lines."""
    from zag.logs import codec
    from zag.logs.reader import iter_complete_lines

    out = sys.stdout
    style = render.Style.for_stream(out)
    width = render.terminal_width(out)
    raw = render.terminal_safe_json if render.is_terminal(out) else bytes
    bad = 0
    for _, line in iter_complete_lines(path):
        try:
            if as_json or wanted is not None:  # a line passed on unchanged, or not shown, is not decoded whole
                kind = codec.loads_type(line)
                if wanted is not None and kind not in wanted:
                    continue
                if as_json:
                    out.buffer.write(raw(line))
                    continue
            event = codec.loads(line)
        except codec.DecodeError:
            bad += 1
            continue
        if not isinstance(event, dict):
            bad += 1
            continue
        out.write(render.format_event(event, style, width=width) + "\n")
    out.flush()
    return bad
