"""Appends events to one unified session log.

Guarantees: `seq` runs 1, 2, 3 … with no gap or repeat (continuing an existing log after its last valid
line); every line is encoded, redacted and handed to the kernel in one `write` of a complete line
(O_APPEND, unbuffered), so a reader never sees half an event unless the machine dies mid-write; a torn
last line left by a crash is repaired when the log is opened again. Files are 0600, folders 0700.

If the disk is full (or any write fails), the lines are kept in memory (bounded) and retried on the
next write; the failure is told once (`tell`: stderr unless the owner says otherwise) and written to
zag's diagnostics, never raised into the supervisor, so the user's agent keeps running. Past the bound
(`MAX_PENDING_BYTES` held) further events are dropped before they get a seq, so the log keeps its seq
run without a gap: once the held lines are written, a `provider_status` note (`data.kind`
`events_dropped`: count, bytes, per type, first and last time) takes the next seq and the loss is told
with its counts. The live follower waits instead while there is no room (`has_room`): what the agent
writes to its own files is read once the log can be written again, not dropped. Lines still unwritten
when the writer is closed are lost, and that is told too.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zag import paths
from zag.logs import codec, events
from zag.logs.redact import Redactor, default_redactor

MAX_PENDING_BYTES = 64 * 1024 * 1024
_TAIL_CHUNK = 64 * 1024


def stderr_line(message: str) -> None:
    """One line on stderr, never raising: how a writer tells the user unless its owner knows better."""
    try:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):  # no stderr at all (None), or a closed one
        pass


class SessionLogWriter:
    """The single writer of one session's log (one per supervisor or backfill import at a time)."""

    def __init__(
        self,
        session_id: str,
        provider: str,
        *,
        path: Path | None = None,
        provider_session_id: str | None = None,
        redactor: Redactor | None = None,
        tell: Callable[[str], None] | None = stderr_line,
    ) -> None:
        """`tell`: says a line to the user (a write failure, once; events lost at `close`); None: only
        zag's diagnostics hear of it (backfill, whose summary reports it)."""
        self.session_id = session_id
        self.provider = provider
        self.provider_session_id = provider_session_id
        self.path = path or paths.session_log(session_id)
        self._redactor = redactor or default_redactor()
        self._lock = threading.Lock()
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0
        self._dropped = 0  # events dropped unstamped past the bound, this writer's life long
        self._dropped_noted = 0  # of which the log has a note
        self._dropped_types: dict[str, int] = {}
        self._dropped_bytes = 0
        self._dropped_span: tuple[str | None, str | None] = (None, None)
        self._reported_failure = False
        self._tell = tell
        self.last_error: str | None = None  # why the last failed write failed (e.g. "No space left on device")
        self._fd = _open_private(self.path)
        self.last_seq = _repair_and_find_last_seq(self._fd, self.path)

    # -- writing ---------------------------------------------------------------------------------
    def write(self, body: dict[str, Any], source: str = events.SOURCE_WRAPPER) -> dict[str, Any]:
        """Stamp `body` with the envelope, append it, and return the full event."""
        with self._lock:
            # the agent's records are held past the bound: its follower stops reading there (`has_room`),
            # so they pass it by one read at most, and the rest of a record read (its usage) is not lost
            if source != events.SOURCE_PROVIDER_FILE and self._over_bound():
                self._drop(body)
                return self._unstamped(body, source)
            event = self._envelope(body, source)
            self._append(self._encode(event))
            return event

    def write_many(self, bodies: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
        """Append several events in one write (each still a whole line); used by backfill. Past the bound
        of held lines none is stamped and [] is returned (as `write`, see the module's docstring).

        The block is encoded in one go and redacted once (`Redactor.redact_lines`): same bytes as
        line by line, without the per-line overhead that dominates on hundreds of thousands of events.
        """
        with self._lock:
            if bodies and self._over_bound():
                for body in bodies:
                    self._drop(body)
                return []
            stamped = self._envelope_many(bodies, source)
            if stamped:
                try:
                    block = codec.dumps_lines(stamped)
                except (TypeError, ValueError, OverflowError):  # one bad value: per event, with fallback
                    block = b"".join(self._encode_unredacted(event) for event in stamped)
                self._append(self._redactor.redact_lines(block))
            return stamped

    @property
    def complete(self) -> bool:
        """Every event so far is in the file (none held back by a failed write, none dropped)."""
        return not self._pending and not self._dropped and self._fd >= 0

    def has_room(self) -> bool:
        """False while the held lines are at their bound and still cannot be written: a reader that can
        wait (the live follower: the agent's files keep its records) should not read more meanwhile."""
        with self._lock:
            return not self._over_bound()

    def flush_pending(self) -> bool:
        """Retry lines held back by an earlier failure; True when nothing is pending any more."""
        with self._lock:
            if self._drain_pending():
                self._note_dropped()
            return not self._pending

    def close(self) -> bool:
        """Write what is pending and close; True when every event reached the file. Lost events are told
        (even after the first failure was: that one said they were being held)."""
        with self._lock:
            if self._drain_pending():
                self._note_dropped()
            lost = len(self._pending) + self._dropped
            if lost:
                message = (f"{lost} events could not be written to {self.path} "
                           f"({self.last_error or 'write failed'}) and are lost")
                from zag import diag

                diag.error("session_log_events_lost", path=str(self.path), lost=lost, error=self.last_error)
                self._say(f"zag: {message}")
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            return not lost

    def __enter__(self) -> SessionLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------------
    def _envelope(self, body: dict[str, Any], source: str) -> dict[str, Any]:
        fields = dict(body)
        event_type = fields.pop("type")
        ts = events.normalize_ts(fields.pop("ts", None)) or events.now_rfc3339()
        if "provider_session_id" in fields:
            provider_session_id = fields.pop("provider_session_id")
            if provider_session_id and not self.provider_session_id:
                self.provider_session_id = provider_session_id
        else:
            provider_session_id = self.provider_session_id
        self.last_seq += 1
        return {
            "seq": self.last_seq,
            "ts": ts,
            "session_id": self.session_id,
            "provider": self.provider,
            "provider_session_id": provider_session_id,
            "source": source,
            "type": event_type,
            **fields,
        }

    def _envelope_many(self, bodies: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
        """`_envelope` for each body, in one loop (the backfill hot path): the same events, each a
        copy of an envelope template updated with the body (keys of the body that are envelope keys
        take the envelope's places, as `{**envelope, **fields}` does), its `ts` normalised."""
        stamped = []
        append = stamped.append
        seq = self.last_seq
        template = {"seq": seq, "ts": None, "session_id": self.session_id, "provider": self.provider,
                    "provider_session_id": self.provider_session_id, "source": source, "type": None}
        copy = template.copy
        normalize = events.normalize_ts
        try:
            for body in bodies:
                body["type"]  # noqa: B018 - a body without a type is refused, as by `_envelope`
                ts = body.get("ts")
                event = copy()
                event.update(body)
                if not (ts.__class__ is str and len(ts) == 24 and ts[10] == "T" and ts[19] == "."
                        and ts[23] == "Z" and not ts[0].isspace()):  # else not ours yet
                    ts = normalize(ts) or events.now_rfc3339()
                    event["ts"] = ts
                provider_session_id = body.get("provider_session_id")
                if provider_session_id and not self.provider_session_id:
                    self.provider_session_id = template["provider_session_id"] = provider_session_id
                seq += 1
                event["seq"] = seq
                append(event)
        finally:
            self.last_seq = seq
        return stamped

    def _encode(self, event: dict[str, Any]) -> bytes:
        return self._redactor.redact(self._encode_unredacted(event))

    def _encode_unredacted(self, event: dict[str, Any]) -> bytes:
        try:
            return codec.dumps_line(event)
        except UnicodeEncodeError:  # a cwd or argument that is not UTF-8: keep the event, escape those bytes
            return codec.dumps_line(codec.printable(event))
        except (TypeError, ValueError, OverflowError) as exc:  # unencodable value from a parser
            safe = {key: event[key] for key in events.ENVELOPE_FIELDS}
            safe.update(events.parse_warning(f"event could not be encoded: {exc}", repr(event)[:65536]))
            safe["type"] = events.PARSE_WARNING
            return codec.dumps_line(safe)

    def _over_bound(self) -> bool:
        """True when the held lines are at their bound and still cannot be written: the next event is
        dropped unstamped. Once they can, the dropped ones are noted (`_note_dropped`) first."""
        if self._pending_bytes < MAX_PENDING_BYTES or self._drain_pending():
            if not self._pending:  # else the note waits until the held lines are all written
                self._note_dropped()
            return False
        return True

    def _drop(self, body: dict[str, Any]) -> None:
        self._dropped += 1
        kind = str(body.get("type"))
        self._dropped_types[kind] = self._dropped_types.get(kind, 0) + 1
        self._dropped_bytes += len(repr(body))  # about its size: encoding it costs what holding it would
        ts = events.normalize_ts(body.get("ts")) or events.now_rfc3339()
        self._dropped_span = (self._dropped_span[0] or ts, ts)

    def _unstamped(self, body: dict[str, Any], source: str) -> dict[str, Any]:
        """What `write` returns for a dropped event: its envelope without a seq (it has none in the log)."""
        fields = dict(body)
        return {"seq": None, "ts": events.normalize_ts(fields.pop("ts", None)) or events.now_rfc3339(),
                "session_id": self.session_id, "provider": self.provider,
                "provider_session_id": fields.pop("provider_session_id", self.provider_session_id),
                "source": source, "type": fields.pop("type"), **fields}

    def _note_dropped(self) -> None:
        """The held lines are written: say what was dropped since the last note, in the log and to the user."""
        count = self._dropped - self._dropped_noted
        if not count:
            return
        self._dropped_noted = self._dropped
        first, last = self._dropped_span
        data = {"kind": events.NOTE_EVENTS_DROPPED, "count": count, "bytes": self._dropped_bytes,
                "types": dict(sorted(self._dropped_types.items())), "first_ts": first, "last_ts": last,
                "error": self.last_error}
        self._dropped_types, self._dropped_bytes, self._dropped_span = {}, 0, (None, None)
        bound = (f"{MAX_PENDING_BYTES // (1024 * 1024)} MiB" if MAX_PENDING_BYTES >= 1024 * 1024
                 else f"{MAX_PENDING_BYTES} bytes")
        kinds = ", ".join(f"{kind} {number}" for kind, number in data["types"].items())
        message = (f"{count} events ({kinds}) from {first} to {last} are not in {self.path}: more than "
                   f"{bound} waited while it could not be written ({self.last_error or 'write failed'})")
        from zag import diag

        diag.error("session_log_events_dropped", path=str(self.path), **data)
        self._say(f"zag: {message}")
        note = self._envelope(events.body(events.PROVIDER_STATUS, message=message, data=data), events.SOURCE_WRAPPER)
        self._append(self._encode(note))

    def _append(self, data: bytes) -> None:
        if self._pending and not self._drain_pending():
            self._hold(data)
            return
        if not self._write_whole(data):
            self._hold(data)

    def _write_whole(self, data: bytes) -> bool:
        """Write all of `data`; on failure cut any partial write back off so no torn line remains."""
        start = os.lseek(self._fd, 0, os.SEEK_END)
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            return True
        except OSError as exc:
            try:
                os.ftruncate(self._fd, start)
            except OSError:
                pass
            self.last_error = exc.strerror or str(exc)
            self._report(f"cannot write session log {self.path}: {exc.strerror or exc}; "
                         "holding events in memory and retrying")
            return False

    def _hold(self, data: bytes) -> None:
        self._pending.append(data)
        self._pending_bytes += len(data)

    def _drain_pending(self) -> bool:
        while self._pending:
            if not self._write_whole(self._pending[0]):
                return False
            self._pending_bytes -= len(self._pending.popleft())
        return True

    def _report(self, message: str) -> None:
        from zag import diag

        diag.error("session_log_write_failed", path=str(self.path), message=message)
        if not self._reported_failure:
            self._reported_failure = True
            self._say(f"zag: {message}")

    def _say(self, line: str) -> None:
        if self._tell is not None:
            try:
                self._tell(line)
            except Exception:  # noqa: BLE001 - telling the user must not fail a write
                pass


_ready_dirs: set[Path] = set()   # folders this process has made private already (a backfill opens thousands of logs)


def _open_private(path: Path) -> int:
    """Open (creating) a log for appending, 0600 in a 0700 folder; the folder is checked once per process
    (and again if it has vanished), the file's mode only changed when it is not private already (a
    chmod is a metadata write the filesystem journals)."""
    folder = path.parent
    if folder not in _ready_dirs:
        paths.ensure_private_dir(folder)
        _ready_dirs.add(folder)
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | paths.NOFOLLOW  # a symlink is refused (ELOOP)
    try:
        fd = os.open(path, flags, 0o600)
    except FileNotFoundError:
        paths.ensure_private_dir(folder)
        fd = os.open(path, flags, 0o600)
    if os.fstat(fd).st_mode & 0o077:
        os.fchmod(fd, 0o600)
    return fd


def _repair_and_find_last_seq(fd: int, path: Path) -> int:
    """Fix a torn last line (complete JSON gets its newline back, garbage is cut) and return the last seq."""
    size = os.lseek(fd, 0, os.SEEK_END)
    if size == 0:
        return 0
    tail_start, tail = _last_line(fd, size)
    if not tail.endswith(b"\n"):
        try:
            codec.loads(tail)
            os.write(fd, b"\n")
        except codec.DecodeError:
            os.ftruncate(fd, tail_start)
            size = tail_start
    return _last_seq(fd, size)


def _last_line(fd: int, end: int) -> tuple[int, bytes]:
    """(offset, bytes) of the last line ending at `end` (the line may lack its newline)."""
    pos = end
    chunks: list[bytes] = []
    skip_final_newline = True
    while pos > 0:
        step = min(_TAIL_CHUNK, pos)
        pos -= step
        chunk = os.pread(fd, step, pos)
        search_end = len(chunk)
        if skip_final_newline and chunk.endswith(b"\n") and not chunks:
            search_end -= 1
        skip_final_newline = False
        cut = chunk.rfind(b"\n", 0, search_end)
        if cut >= 0:
            chunks.append(chunk[cut + 1:])
            return pos + cut + 1, b"".join(reversed(chunks))
        chunks.append(chunk)
    return 0, b"".join(reversed(chunks))


def _last_seq(fd: int, end: int) -> int:
    """The seq of the last parseable line before `end`, scanning backwards past damaged lines."""
    while end > 0:
        start, line = _last_line(fd, end)
        try:
            value = codec.loads(line)
            if isinstance(value, dict) and isinstance(value.get("seq"), int):
                return value["seq"]
        except codec.DecodeError:
            pass
        end = start
    return 0
