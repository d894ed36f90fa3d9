"""`zag ps --json` and `zag sessions --json` without click: scripts poll these, so they skip the ~40 ms
click costs to import. `zag.cli.main` recognises the plain forms (`parse_listing`); anything else
(other options, help, errors) goes through the click commands, which write the same JSON with
`write_sessions_json`.

A session shown dead (its supervisor gone) is checked against its log's last complete event
(`take_logged_end`): ended after all, or dead with the log's event count (`last_seq`; a supervisor
stores it in the index only at heartbeats, so the index's is stale by what it logged since its last beat).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from zag import states

_FORMS = {
    ("ps", "--json"): states.LIVE_STATES,
    ("ps", "--all", "--json"): None,
    ("ps", "--json", "--all"): None,
    ("sessions", "--json"): None,
}


def parse_listing(args: list[str]) -> tuple[tuple[str, ...] | None] | None:
    """`(states wanted,)` (None: all) when `args` is a plain JSON listing zag answers without click;
    None for any other command line."""
    key = tuple(args)
    return (_FORMS[key],) if key in _FORMS else None


def print_listing(states_in: Iterable[str] | None) -> int | None:
    """Write the listing to stdout; the exit code, or None when it failed before writing anything (the
    caller then runs the click command, which reports the problem in its usual words)."""
    out = _Output(sys.stdout.buffer)
    try:
        from zag.logs.index import Index

        with Index() as index:
            write_sessions_json(index.iter_session_json(states_in=states_in), out, states_in=states_in,
                                due=index.due_resumes())
    except BrokenPipeError:  # `zag ps --json | head`: the reader left
        return 0
    except Exception as exc:  # noqa: BLE001 - e.g. an unreadable index
        if not out.written:
            return None
        print(f"zag: the listing stopped: {exc}", file=sys.stderr)
        return 1
    return 0


class _Output:
    """stdout's buffer, remembering whether anything was written to it."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.written = False

    def write(self, data: bytes) -> int:
        self.written = True
        return self._raw.write(data)

    def flush(self) -> None:
        self._raw.flush()


def write_sessions_json(rows: Iterable[tuple[str, bytes]], out: BinaryIO | _Output,
                        now: float | None = None, *, states_in: Iterable[str] | None = None,
                        due: Mapping[str, float] | None = None) -> None:
    """Write a JSON array of sessions (from `Index.iter_session_json`, which selected `states_in`) with
    each row's effective state; a dead one's `resume_at` from `due` (`Index.due_resumes`, see
    `take_due_resume`).

    Rows stored as exited are final and pass through as SQLite rendered them; only running/waiting rows
    are decoded, checked and re-encoded. Written in chunks, so memory stays flat.
    """
    from zag.wrapper.liveness import effective_state, index_stale

    now = time.time() if now is None else now
    wanted = None if states_in is None else frozenset(states_in)
    separator = b"[\n"
    chunk: list[bytes] = []
    for stored, doc in rows:
        if stored in states.LIVE_STATES:
            row = json.loads(doc)
            shown = effective_state(row, now)
            if shown == states.DEAD and take_logged_end(row):
                shown = states.EXITED
                if wanted is not None and shown not in wanted:
                    continue
            stale = shown in states.LIVE_STATES and index_stale(row, now)
            if shown == states.DEAD:
                take_due_resume(row, due)
            elif stale:
                row["index_stale"] = True
            if shown != stored or stale:
                row["state"] = shown
                doc = json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode()
        chunk.append(separator)
        chunk.append(doc)
        separator = b",\n"
        if len(chunk) >= 512:
            out.write(b"".join(chunk))
            chunk.clear()
    chunk.append(b"[]\n" if separator == b"[\n" else b"\n]\n")
    out.write(b"".join(chunk))
    out.flush()


def take_due_resume(row: dict[str, Any], due: Mapping[str, float] | None) -> None:
    """For a session shown dead: its `resume_at` is when `zag resume` will resume it (`due`, from
    `Index.due_resumes`). Its row has one only if its zag died while waiting; one that died while a resume
    attempt ran (stored running, its incident `resuming`) is resumed as well, and reads so."""
    if row.get("resume_at") is None and due:
        row["resume_at"] = due.get(str(row.get("session_id")))


def take_logged_end(row: dict[str, Any]) -> bool:
    """For a session shown dead: True, and the row made to say so, when its log ends with `session_ended`.
    Its supervisor ended it and left before the index said so: the row was read just before its last
    write, or the index was locked at its exit (`zag dismiss` and `zag reindex` read it as ended too).
    Otherwise its `last_seq` is taken from the log: the index's is as of the last heartbeat (a SIGKILLed
    zag's is often 1). What `zag backfill` appended after the end does not hide it (as for `zag reindex`).
    One read from the end of the log (`zag.logs.lastseq`), bounded."""
    from zag.logs.lastseq import last_complete_event

    path = _log_path(row)
    last = last_complete_event(path) if path is not None else None
    if last is None:
        return False
    row["last_seq"] = last["seq"]
    if last.get("source") == "backfill":  # the agent went on without zag after the end: `zag backfill` appended it
        last = last_complete_event(path, passing_over="backfill") or last
    if last["type"] != "session_ended":  # events.SESSION_ENDED (zag.logs.events is not imported: ~4 ms)
        return False
    code = last.get("exit_code")
    row.update(state=states.EXITED, exit_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
               ended_at=_epoch(last.get("ts")), resume_at=None, end_reason=last.get("reason") or (
                   "cancelled" if last.get("cancelled") else None))
    return True


def _epoch(stamp: Any) -> float | None:
    from zag.logs.events import parse_ts

    try:
        return parse_ts(stamp) if isinstance(stamp, str) else None
    except ValueError:
        return None


def _log_path(row: dict[str, Any]) -> Path | None:
    from zag import paths

    try:
        path = paths.session_log(str(row.get("session_id") or ""))
    except ValueError:  # a damaged row's id: never a path
        return None
    recorded = row.get("log_path")
    if recorded and not path.exists():
        path = Path(recorded)
    return path
