"""Incremental reader of one logical Codex session (live and backfill alike).

A session is one or more rollout files: the first `rollout-<ts>-<id>.jsonl` and, in the paginated era,
continuation files `rollout-<ts>-<id>_<rollout-id>.jsonl`, read in order. The cursor is
`{"v": 1, "files": {<plain file name>: {"offset", "ino", ["mark"]}}, "state": <RecordMapper state>}`: keyed
by file name (not path) so a session archived between two backfills (moved to `archived_sessions/`)
continues where it stopped, and the mapper state (usage baseline, model, dedupe windows) makes the next
read continue exactly.

A file's optional `mark` is `[latest record timestamp read from it, keys of up to 64 lines at it]` (a key
is a short hash of the raw line: Codex records have no id of their own). When the file shrank or was
replaced it is read again from its start: records before the mark, and records at it whose line was read
before, were imported by an earlier read and are skipped; later ones are imported. A cursor without a mark
(written before marks existed) reads such a file again in full, as it always did.

Compressed `.jsonl.zst` rollouts (Codex's off-by-default `local_thread_store_compression`) are read when a
zstd decoder is importable (`compression.zstd` on Python ≥ 3.14, or the `zstandard` package if the user
has it); zag does not depend on one, so otherwise each such file is reported once as a `parse_warning`
("skipped") and left for a later run. A compressed file whose plain twin was already read continues at
the same decompressed offset.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from zag.logs import events
from zag.providers.base import Item
from zag.providers.codex.homes import parse_rollout_name
from zag.providers.codex.records import RecordMapper
from zag.providers.tail import CHUNK_BYTES, MAX_LINE_BYTES, JsonlTail, TornLine, open_regular_file, torn_warning

CURSOR_VERSION = 1
MARK_KEYS = 64       # keys of the lines at a file's latest imported timestamp kept in its cursor
# the record's own timestamp leads every rollout line (`created_at` in the oldest, bare-item files)
_LINE_STAMP = re.compile(rb'\s*\{\s*"(?:timestamp|created_at)"\s*:\s*"([^"\\]{1,64})"')


class RolloutReader:
    """`SessionReader` over the ordered rollout files of one session."""

    def __init__(self, paths: Sequence[Path], cursor: Any = None, *, skip_before: float | None = None,
                 settle_secs: float | None = None) -> None:
        """`settle_secs`: backfill's; a torn last line of a file not modified for that long is reported
        (see tail.py). Live readers leave it None: such a line waits for its newline."""
        self._settle_secs = settle_secs
        cursor = cursor if isinstance(cursor, dict) and cursor.get("v") == CURSOR_VERSION else {}
        files = cursor.get("files")
        self._entries: dict[str, dict[str, Any]] = dict(files) if isinstance(files, dict) else {}
        self._tails: dict[str, JsonlTail] = {}
        self.mapper = RecordMapper(cursor.get("state") if isinstance(cursor.get("state"), dict) else None)
        self.mapper.skip_before = skip_before
        self.paths: list[Path] = []
        self.set_paths(paths)

    # -- files ----------------------------------------------------------------------------------
    def set_paths(self, paths: Sequence[Path]) -> None:
        """The session's files (a continuation may appear later); kept in rollout order."""
        def order(path: Path) -> tuple[Any, ...]:
            name = parse_rollout_name(path.name)
            return name.sort_key() if name else ("", 0, path.name)

        self.paths = sorted((Path(p) for p in paths), key=order)

    @staticmethod
    def key(path: Path) -> str:
        name = parse_rollout_name(path.name)
        return name.plain_name if name else path.name.removesuffix(".zst")

    @property
    def unsettled(self) -> bool:
        """The last read left a file's unterminated last line that has not settled yet, or skipped a
        compressed file for want of a decoder: either way backfill must read the source again next
        time, although unchanged (the warning says to install a decoder to import it)."""
        return any(tail.unsettled for tail in self._tails.values()) or any(
            isinstance(entry, dict) and entry.get("skipped") for entry in self._entries.values())

    def changed(self) -> bool:
        """Cheap (one stat): may the last file have grown since the last read?"""
        if not self.paths:
            return False
        last = self.paths[-1]
        tail = self._tails.get(self.key(last))
        if tail is None or last.name.endswith(".zst"):
            return True
        return tail.size_changed()

    # -- SessionReader --------------------------------------------------------------------------
    def read(self) -> Iterator[Item]:
        for path in self.paths:
            if path.name.endswith(".zst"):
                yield from self._read_compressed(path)
            else:
                yield from self._read_plain(path)

    def cursor(self) -> dict[str, Any]:
        files = dict(self._entries)
        for key, tail in self._tails.items():
            files[key] = tail.cursor()
        return {"v": CURSOR_VERSION, "files": files, "state": self.mapper.state()}

    def close(self) -> None:
        self._tails.clear()

    # -- plain and compressed files -------------------------------------------------------------
    def _read_plain(self, path: Path) -> Iterator[Item]:
        key = self.key(path)
        tail = self._tails.get(key)
        if tail is None or tail.path != path:
            entry = tail.cursor() if tail is not None else self._entries.get(key)
            if isinstance(entry, dict) and entry.get("zst"):
                # decompressed back to plain (Codex does that before appending): same bytes, same offset
                entry = {"offset": int(entry.get("offset", 0) or 0)}
            tail = JsonlTail(path, entry if isinstance(entry, dict) else None, settle_secs=self._settle_secs)
            self._tails[key] = tail
            self._entries.pop(key, None)
        mapper = self.mapper
        mark = _Mark(tail.mark)
        try:
            for line in tail.lines():
                if tail.restarted and not mark.replaying:
                    mark.replay()   # read again from the start: what was imported up to the mark is skipped
                if line.__class__ is TornLine:
                    yield torn_warning("codex rollout", path, line)
                elif mark.admit(line):
                    yield from mapper.map_line(line)
        finally:
            tail.mark = mark.saved()
        if tail.restarted:
            tail.restarted = False
            yield mapper._status("rollout file shrank or was replaced; read again from its start",
                                 {"path": str(path)})

    def _read_compressed(self, path: Path) -> Iterator[Item]:
        key = self.key(path)
        entry = self._entries.get(key)
        entry = entry if isinstance(entry, dict) else {}
        try:
            size = os.stat(path).st_size
        except OSError:
            return
        opener = _zstd_opener()
        if opener is None:
            if not entry.get("skipped"):
                self._entries[key] = {"skipped": True, "size": size, "zst": True,
                                      "offset": int(entry.get("offset", 0) or 0)}
                yield events.parse_warning(
                    "codex: compressed rollout skipped (no zstd decoder installed; "
                    "`pip install zstandard` to import it)", str(path))
            return
        if entry.get("zst") and not entry.get("skipped") and entry.get("size") == size:
            return  # read completely before, unchanged
        offset = int(entry.get("offset", 0) or 0)
        try:
            raw = open_regular_file(path)   # never a FIFO or device: that could block
            if raw is None:
                return
            with raw, opener(raw) as stream:
                for line, end in _lines(stream, offset):
                    offset = end
                    self._entries[key] = {"offset": offset, "zst": True, "size": -1}
                    yield from self.mapper.map_line(line)
        except Exception as exc:  # noqa: BLE001 - corrupt archive: keep what was read, say so once
            self._entries[key] = {"offset": offset, "zst": True, "size": size}
            yield events.parse_warning(f"codex: compressed rollout unreadable ({exc})", str(path))
            return
        self._entries[key] = {"offset": offset, "zst": True, "size": size}


class _Mark:
    """One file's mark while it is read: the latest record timestamp and the lines at it (hashed only
    when saved), and during a re-read from the start the mark of the earlier reads."""

    def __init__(self, saved: Any) -> None:
        valid = (isinstance(saved, list) and len(saved) == 2 and isinstance(saved[0], str)
                 and isinstance(saved[1], list) and all(isinstance(key, str) for key in saved[1]))
        self.ts: str | None = saved[0] if valid else None
        self.keys: list[str] = list(saved[1][-MARK_KEYS:]) if valid else []
        self.lines: deque[bytes] = deque(maxlen=MARK_KEYS)  # read now, at `ts`
        self.replaying = False
        self._before: tuple[str, frozenset[str]] | None = None
        self._in_old_part = False

    def replay(self) -> None:
        self.replaying = True
        if self.ts is not None:
            self._before = (self.ts, frozenset(self.keys))
            self._in_old_part = True

    def admit(self, line: bytes) -> bool:
        """Notes the line's timestamp; False for a record imported before the re-read (earlier than the
        mark, or at it with the same line; an undated line while still before the mark)."""
        found = _LINE_STAMP.match(line)
        ts = _stamp(found.group(1)) if found else None
        if ts is None:
            return not self._in_old_part
        before = self._before
        if before is not None and ts <= before[0] and (ts < before[0] or _line_key(line) in before[1]):
            return False
        self._in_old_part = False
        if self.ts is None or ts > self.ts:
            self.ts = ts
            self.keys = []
            self.lines.clear()
            self.lines.append(line)
        elif ts == self.ts:
            self.lines.append(line)
        return True

    def saved(self) -> list[Any] | None:
        if self.ts is None:
            return None
        keys = self.keys + [_line_key(line) for line in self.lines]
        return [self.ts, keys[-MARK_KEYS:]]


def _stamp(raw: bytes) -> str | None:
    """A line's timestamp in one comparable form (ours, `YYYY-MM-DDTHH:MM:SS.mmmZ`), or None."""
    text = raw.decode("utf-8", "replace")
    if len(text) == 24 and text[10] == "T" and text[19] == "." and text[23] == "Z":
        return text
    return events.normalize_ts(text)


def _line_key(line: bytes) -> str:
    return hashlib.blake2b(line.strip(), digest_size=8).hexdigest()


def _zstd_opener() -> Any:
    """A function wrapping a binary file in a zstd-decompressing reader, or None if none is available."""
    try:
        from compression import zstd  # type: ignore[import-not-found]  # Python 3.14+

        return lambda handle: zstd.ZstdFile(handle, "rb")
    except ImportError:
        pass
    try:
        import zstandard  # type: ignore[import-not-found]

        return lambda handle: zstandard.ZstdDecompressor().stream_reader(handle)
    except ImportError:
        return None


def _lines(stream: BinaryIO, skip: int) -> Iterator[tuple[bytes, int]]:
    """Complete lines of a decompressed stream after `skip` bytes, with the offset after each."""
    position = 0
    carry = b""
    while True:
        chunk = stream.read(CHUNK_BYTES)
        if not chunk:
            break
        if position + len(chunk) <= skip:
            position += len(chunk)
            continue
        if position < skip:
            chunk = chunk[skip - position:]
            position = skip
        data = carry + chunk
        start = 0
        while True:
            newline = data.find(b"\n", start)
            if newline < 0:
                break
            line = data[start:newline]
            position += newline + 1 - start
            start = newline + 1
            yield line[:MAX_LINE_BYTES], position
        carry = data[start:]
    if carry:
        yield carry[:MAX_LINE_BYTES], position + len(carry)
