"""`zag ps --json` and `zag sessions --json` without click: scripts poll these, so they skip the ~40 ms
click costs to import. `zag.cli.main` recognises the plain forms (`parse_listing`); anything else
(other options, help, errors) goes through the click commands, which write the same JSON with
`write_sessions_json`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from typing import BinaryIO

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
            write_sessions_json(index.iter_session_json(states_in=states_in), out)
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
                        now: float | None = None) -> None:
    """Write a JSON array of sessions (from `Index.iter_session_json`) with each row's effective state.

    Rows stored as exited are final and pass through as SQLite rendered them; only running/waiting rows
    are decoded, checked and re-encoded. Written in chunks, so memory stays flat.
    """
    from zag.wrapper.liveness import effective_state

    now = time.time() if now is None else now
    separator = b"[\n"
    chunk: list[bytes] = []
    for stored, doc in rows:
        if stored in states.LIVE_STATES:
            row = json.loads(doc)
            shown = effective_state(row, now)
            if shown != stored:
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
