"""Incremental reader of one Claude Code session: its transcript plus its subagent transcripts.

Files: `<project>/<sid>.jsonl` and `<project>/<sid>/subagents/agent-<id>.jsonl` (also
`subagents/workflows/<wf>/agent-<id>.jsonl`), each tailed from its own byte offset. Subagent events carry
`agent_id`, `is_sidechain: true`, `agent_type` and `parent_tool_id` (the parent's Task/Agent `tool_use`
id, from `agent-<id>.meta.json` `toolUseId`, when claude wrote it). The main transcript is read first,
then each subagent file, so within one `read()` events are grouped by file. Files are read a chunk
(~1 MiB) at a time and a chunk's lines mapped together (`read_batches`, what backfill uses).

Cursor (JSON): `{"v": 1, "files": {"main": {offset, ino}, "subagents/agent-x.jsonl": {…}},
"state": {"usage": [[message_id, request_id], …], "last_ts": …}}` — the usage keys (bounded) keep a
response whose lines straddle two reads from being counted twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from zag.logs import events
from zag.providers.base import Item
from zag.providers.claude import schema
from zag.providers.claude.records import RecordMapper
from zag.providers.tail import (KEEP_OF_OVERSIZED, MAX_LINE_BYTES, JsonlTail, completed_line, glued_record,
                                naming, open_regular_file, torn_warning, whole_record)

CURSOR_VERSION = 1
MAIN = "main"
_META_RETRIES = 20   # reads during which a missing subagent .meta.json is looked for again
CHUNK_BYTES = 1024 * 1024
MARK_KEYS = 64       # uuids of the records at a file's latest imported timestamp kept in its cursor
_TORN = "torn"       # `_chunks`: a torn last line (see tail.py), handed out alone


@dataclass
class _SubFile:
    tail: JsonlTail
    extra: dict[str, Any]
    meta_path: Path
    meta_tries: int = 0
    meta_done: bool = False


@dataclass
class _DirWatch:
    path: Path
    mtime_ns: int | None = None
    children: dict[str, int] = field(default_factory=dict)


class ClaudeSessionReader:
    """`SessionReader` for one provider session (live and backfill)."""

    def __init__(
        self,
        session_id: str,
        main: Path | None,
        *,
        cursor: Any = None,
        subagents: Path | None = None,
        start_offset: int | None = None,
        settle_secs: float | None = None,
        started_at: float | None = None,
    ) -> None:
        """`settle_secs`: backfill's; a torn last line of a file not modified for that long is reported
        (see tail.py). Live readers leave it None: such a line waits for its newline. `started_at`
        (live): when the child started; a transcript read from its start whose first records are older
        holds history copied from another session (`--fork-session`), which is not logged again."""
        cursor = cursor if isinstance(cursor, dict) and cursor.get("v") == CURSOR_VERSION else {}
        files = cursor.get("files") if isinstance(cursor.get("files"), dict) else {}
        self.session_id = session_id
        self.mapper = RecordMapper(session_id, cursor.get("state") if isinstance(cursor.get("state"), dict) else None)
        main_cursor = _file_cursor(files.get(MAIN))
        if main_cursor is None and start_offset:
            main_cursor = {"offset": int(start_offset), "ino": None}
        if main_cursor is None and main is not None:
            self.mapper.watch_head(started_at)
        self._settle_secs = settle_secs
        self._main = JsonlTail(main, main_cursor, settle_secs=settle_secs) if main is not None else None
        self._subagents = subagents
        self._subs: dict[str, _SubFile] = {}
        self._watch: _DirWatch | None = _DirWatch(subagents) if subagents is not None else None
        for name, value in files.items():
            if name != MAIN and subagents is not None and _safe_relative(name):
                self._add_sub(name, _file_cursor(value))

    @property
    def info(self) -> dict[str, Any]:
        """What was learnt while reading: cwd, model, first_ts, last_ts (for the backfill index)."""
        return self.mapper.info

    @property
    def unsettled(self) -> bool:
        """The last read left a file's unterminated last line that has not settled yet."""
        tails = [sub.tail for sub in self._subs.values()]
        return any(tail.unsettled for tail in ([self._main] if self._main is not None else []) + tails)

    @property
    def main_path(self) -> Path | None:
        return self._main.path if self._main is not None else None

    def read(self) -> Iterator[Item]:
        for items in self.read_batches():
            yield from items

    def read_batches(self) -> Iterator[list[Item]]:
        """What `read` yields, a list per chunk read from a file (cheaper for consumers that take
        many items at once, like backfill). A file's offset advances a chunk at a time."""
        if self._main is not None:
            yield from self._read_tail(self._main, None)
        self._scan_subagents()
        for sub in list(self._subs.values()):
            if not sub.meta_done:
                self._load_meta(sub)
            yield from self._read_tail(sub.tail, sub.extra)

    def cursor(self) -> dict[str, Any]:
        files = {}
        if self._main is not None:
            files[MAIN] = self._main.cursor()
        for name, sub in self._subs.items():
            files[name] = sub.tail.cursor()
        return {"v": CURSOR_VERSION, "files": files, "state": self.mapper.state()}

    def close(self) -> None:
        """Nothing is held open between reads."""

    def changed(self) -> bool:
        """Cheap check (a few stats) whether `read()` may find anything."""
        if self._main is not None and _may_have_news(self._main):
            return True
        if self._watch is not None and self._dir_changed(self._watch, remember=False):
            return True
        return any(_may_have_news(sub.tail) for sub in self._subs.values())

    # -- internals --------------------------------------------------------------------------------
    def _read_tail(self, tail: JsonlTail, extra: dict[str, Any] | None) -> Iterator[list[Item]]:
        if not _may_have_news(tail):
            return
        tail.restarted = False
        announced = False
        mapper = self.mapper
        before = tail.mark   # [latest timestamp imported from this file, uuids of the records at it]
        mapper.track = [before[0], list(before[1])] if before else [None, []]
        try:
            yield from self._read_chunks(tail, extra, before)
        except OSError as exc:
            raise naming(exc, tail.path)
        finally:
            track = mapper.track
            if track[0] is not None:
                tail.mark = [track[0], track[1][-MARK_KEYS:]]
            mapper.track = None
            mapper.replay = None

    def _read_chunks(self, tail: JsonlTail, extra: dict[str, Any] | None, before: Any) -> Iterator[list[Item]]:
        announced = False
        mapper = self.mapper
        for lines, checked, start in _chunks(tail):
            items: list[Item] = []
            if tail.restarted and not announced:
                announced = True
                if before:  # read again from the start: what was imported up to the mark is skipped
                    mapper.replay = (before[0], frozenset(before[1]))
                items.append(self._restart_notice(tail, extra))
            if checked is None:
                items.append(events.parse_warning(
                    f"claude transcript: line longer than {MAX_LINE_BYTES} bytes, cut ({tail.path.name})", lines[0]))
            elif checked == _TORN:
                items.append(torn_warning("claude transcript", tail.path, lines[0]))
            else:
                try:
                    mapper.map_lines(lines, extra, checked, items)
                except BaseException:
                    # as when reading line by line: the offset stays just past the line that failed
                    tail.offset = start + sum(len(line) + 1 for line in lines[:mapper.lines_done + 1])
                    raise
            yield items
        if tail.restarted and not announced:
            yield [self._restart_notice(tail, extra)]

    def _restart_notice(self, tail: JsonlTail, extra: dict[str, Any] | None) -> dict[str, Any]:
        self.mapper.skip_seen_records = True
        body = events.provider_status(
            f"claude transcript {tail.path.name} shrank or was replaced; read again from the start "
            "(records already seen are skipped)", {"path": str(tail.path)})
        body["provider_session_id"] = self.session_id
        if extra:
            body.update(extra)
        return body

    def _scan_subagents(self) -> None:
        watch = self._watch
        if watch is None or not self._dir_changed(watch):
            return
        base = watch.path
        for path in _agent_files(base):
            name = "subagents/" + path.relative_to(base).as_posix()
            if name not in self._subs:
                self._add_sub(name, None)

    def _dir_changed(self, watch: _DirWatch, *, remember: bool = True) -> bool:
        try:
            mtime = os.stat(watch.path).st_mtime_ns
        except OSError:
            return False
        changed = mtime != watch.mtime_ns
        if not remember:
            return changed or self._workflows_changed(watch)
        watch.mtime_ns = mtime
        workflows = watch.path / "workflows"
        try:
            entries = list(os.scandir(workflows)) if changed or watch.children else []
        except OSError:
            entries = []
        for entry in entries:
            try:
                child_mtime = entry.stat().st_mtime_ns
            except OSError:
                continue
            if watch.children.get(entry.name) != child_mtime:
                watch.children[entry.name] = child_mtime
                changed = True
        return changed

    def _workflows_changed(self, watch: _DirWatch) -> bool:
        try:
            entries = list(os.scandir(watch.path / "workflows")) if watch.children else []
        except OSError:
            return False
        for entry in entries:
            try:
                if watch.children.get(entry.name) != entry.stat().st_mtime_ns:
                    return True
            except OSError:
                continue
        return False

    def _add_sub(self, name: str, cursor: dict[str, Any] | None) -> None:
        assert self._subagents is not None
        path = self._subagents.parent / name
        agent_id = path.stem[len("agent-"):] if path.stem.startswith("agent-") else path.stem
        extra = {"agent_id": agent_id, "is_sidechain": True}
        self._subs[name] = _SubFile(JsonlTail(path, cursor, settle_secs=self._settle_secs), extra,
                                    path.with_name(path.stem + ".meta.json"))

    def _load_meta(self, sub: _SubFile) -> None:
        sub.meta_tries += 1
        try:
            handle = open_regular_file(sub.meta_path)   # never a FIFO named like it: that would block
            if handle is None:
                raise FileNotFoundError(sub.meta_path)
            with handle:
                data = handle.read()
        except OSError:
            sub.meta_done = sub.meta_tries >= _META_RETRIES
            return
        sub.meta_done = True
        try:
            meta = schema.subagent_meta_decoder.decode(data)
        except msgspec.MsgspecError:
            return
        if meta.agentType:
            sub.extra["agent_type"] = meta.agentType
        if meta.toolUseId:
            sub.extra["parent_tool_id"] = meta.toolUseId


def _agent_files(base: Path) -> list[Path]:
    found: list[Path] = []
    try:
        entries = sorted(os.scandir(base), key=lambda entry: entry.name)
    except OSError:
        return found
    for entry in entries:
        if entry.name.endswith(".jsonl") and entry.name.startswith("agent-") and entry.is_file():
            found.append(Path(entry.path))
        elif entry.name == "workflows" and entry.is_dir(follow_symlinks=False):  # (symlinks: files listed twice)
            try:
                workflows = sorted(os.scandir(entry.path), key=lambda item: item.name)
            except OSError:
                continue
            for workflow in workflows:
                if not workflow.is_dir(follow_symlinks=False):
                    continue
                try:
                    files = sorted(os.scandir(workflow.path), key=lambda item: item.name)
                except OSError:
                    continue
                found.extend(Path(item.path) for item in files
                             if item.name.startswith("agent-") and item.name.endswith(".jsonl") and item.is_file())
    return found


def _chunks(tail: JsonlTail) -> Iterator[tuple[list[Any], bool | str | None, int]]:
    """New complete lines of `tail`'s file, a list per chunk read: `(lines, utf8_checked, start)`, with
    `JsonlTail`'s cursor semantics (shrink/replace → `restarted` and read from 0, over-long lines cut,
    a torn last line handed out once settled and completed later: `partial`).
    `tail.offset` is past the lines when they are handed out; `start` is where they began. A chunk
    that is valid UTF-8 as a whole spares its lines the check (`utf8_checked`); the head of a cut
    over-long line comes alone, with `utf8_checked` None, a torn last line alone with `_TORN`. Chunks
    are read at an offset (`pread`), so a line that straddles two chunks is read again rather than
    copied onto the next chunk; a line longer than a chunk doubles the read until it fits (up to
    MAX_LINE_BYTES)."""
    handle = open_regular_file(tail.path, buffering=0)   # never a FIFO or device: that could block
    if handle is None:
        return
    with handle:
        fd = handle.fileno()
        st = os.fstat(fd)
        if (tail.ino is not None and st.st_ino != tail.ino) or st.st_size < tail.offset:
            tail.restart()
        tail.ino = st.st_ino
        tail.unsettled = False
        chunk_bytes = CHUNK_BYTES
        if tail.inside_oversized and st.st_size > tail.offset:  # the rest of a cut line, written since
            tail.offset, tail.inside_oversized = _skip_line(fd, tail.offset, chunk_bytes)
        remaining = st.st_size - tail.offset
        if remaining <= 0:
            return
        settled = tail.settled(st)
        head = os.pread(fd, tail.partial, tail.offset - tail.partial) if tail.partial else None
        want = remaining + 1 if remaining < chunk_bytes else chunk_bytes  # small: all of it, and see the end
        offset = tail.offset
        while True:
            chunk = os.pread(fd, want, offset)
            size = len(chunk)
            end = chunk.rfind(b"\n")
            if end < 0:
                if size < want:  # the end of the file, in the middle of a line
                    yield from _unterminated(tail, chunk, offset, settled)
                    return
                if size > MAX_LINE_BYTES:
                    head, tail.partial = None, 0   # the torn head's line is the one cut
                    tail.oversized_lines += 1
                    start = offset
                    offset, tail.inside_oversized = _skip_line(fd, offset + size, chunk_bytes)
                    tail.offset = offset
                    yield [chunk[:KEEP_OF_OVERSIZED]], None, start
                    want = chunk_bytes
                else:
                    want = min(2 * want, MAX_LINE_BYTES + 1)
                continue
            view = memoryview(chunk)
            lines = _split(chunk, view, end)  # what follows the last newline is read again with the next chunk
            checked = chunk.isascii() or _utf8(view[:end])
            start, offset = offset, offset + end + 1
            tail.offset = offset
            if tail.torn_seen is not None:   # a live read saw this line unterminated
                glued = _glued(tail, bytes(lines[0]), start)
                if glued:
                    yield from glued
                    start += len(lines[0]) + 1
                    lines = lines[1:]
            if head is not None:   # the end of a torn line handed out before
                first = completed_line(head, bytes(lines[0]))
                head, tail.partial = None, 0
                if first is not None:
                    yield [first], False, start + len(lines[0]) - len(first)
                start += len(lines[0]) + 1
                lines = lines[1:]
            if end > MAX_LINE_BYTES:
                yield from _cut_over_long(lines, checked, start, tail)
            elif lines:
                yield lines, checked, start
            if size < want:
                yield from _unterminated(tail, chunk[end + 1:], offset, settled)
                return
            want = chunk_bytes


def _split(chunk: bytes, view: memoryview, end: int) -> list[memoryview]:
    """The lines of `chunk` up to its newline at `end`, as views (`find` runs at memchr speed, where
    `bytes.split` looks at each byte; views copy nothing)."""
    find = chunk.find
    lines = []
    append = lines.append
    position = 0
    while position <= end:
        newline = find(b"\n", position, end + 1)
        append(view[position:newline])
        position = newline + 1
    return lines


def _skip_line(fd: int, offset: int, chunk_bytes: int) -> tuple[int, bool]:
    """The offset just past the end of the line going on at `offset`, or the end of the file and True
    when the line goes on past it (its newline is not written yet)."""
    while True:
        chunk = os.pread(fd, chunk_bytes, offset)
        if not chunk:
            return offset, True
        newline = chunk.find(b"\n")
        if newline >= 0:
            return offset + newline + 1, False
        offset += len(chunk)


def _cut_over_long(lines: list[memoryview], checked: bool, start: int,
                   tail: JsonlTail) -> Iterator[tuple[list[Any], bool | None, int]]:
    """A chunk's lines with each line longer than MAX_LINE_BYTES handed out alone, cut."""
    run: list[memoryview] = []
    run_start = position = start
    for line in lines:
        if len(line) > MAX_LINE_BYTES:
            if run:
                yield run, checked, run_start
                run = []
            tail.oversized_lines += 1
            yield [line[:KEEP_OF_OVERSIZED]], None, position
            run_start = position + len(line) + 1
        else:
            run.append(line)
        position += len(line) + 1
    if run:
        yield run, checked, run_start


def _unterminated(tail: JsonlTail, data: bytes, offset: int, settled: bool) -> Iterator[tuple[list[Any], Any, int]]:
    """The file ends in the middle of a line (`data`, from `offset`): a whole record is handed out at once
    (hand-made files; claude writes a record and its newline together), a torn one once the file
    settled; else it waits (`unsettled`). Either way `tail.partial` remembers it (see tail.py)."""
    if not data:
        return
    whole = whole_record(data)
    if not (whole or settled):
        tail.unsettled = True
        tail.torn_seen = (offset, len(data))
        return
    tail.offset = offset + len(data)
    tail.partial += len(data)
    yield [data], (False if whole else _TORN), offset


def _glued(tail: JsonlTail, line: bytes, start: int) -> list[tuple[list[Any], Any, int]]:
    """The torn head and the record of a line that completed the unterminated line a live read saw at
    `start`, when its writer appended a record after a failed write (see tail.py); else nothing."""
    seen_at, seen_length = tail.torn_seen or (-1, 0)
    tail.torn_seen = None
    glued = glued_record(line, seen_length) if seen_at == start else None
    if glued is None:
        return []
    head, record = glued
    return [([head], _TORN, start), ([record], False, start + len(head))]


def _utf8(view: memoryview) -> bool:
    """True when the whole view is valid UTF-8 (so its lines need no check of their own)."""
    try:
        str(view, "utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _may_have_news(tail: JsonlTail) -> bool:
    return tail.size_changed()


def _file_cursor(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    offset = value.get("offset")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        return None
    ino = value.get("ino")
    found = {"offset": offset, "ino": ino if isinstance(ino, int) and not isinstance(ino, bool) else None}
    mark = value.get("mark")
    if (isinstance(mark, list) and len(mark) == 2 and isinstance(mark[0], str) and isinstance(mark[1], list)
            and all(isinstance(key, str) for key in mark[1])):
        found["mark"] = mark
    if value.get("inside_oversized") is True:
        found["inside_oversized"] = True
    partial = value.get("partial")
    if isinstance(partial, int) and not isinstance(partial, bool) and 0 < partial <= offset:
        found["partial"] = partial
    return found


def _safe_relative(name: str) -> bool:
    return (isinstance(name, str) and name.startswith("subagents/") and ".." not in name.split("/")
            and name.endswith(".jsonl"))
