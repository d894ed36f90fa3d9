"""Incremental reader of one Gemini session: its JSONL file(s) and/or legacy JSON document(s).

Live tailing and backfill share it. JSONL files are read with `JsonlTail` (complete lines only, byte
offsets, shrink/replace noticed); a legacy `.json` document is re-parsed whenever its size/mtime/inode
changes (a half-written document — the CLI rewrites it in place — is retried on the next read while it is
fresh, and reported once as a parse_warning when it stays unreadable). All files of the session feed one
`Conversation`, which emits each message part once (see conversation.py).

History gemini loads into the conversation (`/chat resume <tag>`, `/restore`) is written again as new
message records, then a full message list naming exactly them: message records read together are held
back (bounded: `MAX_HELD`, `MAX_HELD_BYTES`) until the next other line, and when that is such a list they
are handed to `Conversation.absorb` instead (logged once, as history).

Cursor (JSON): `{"v": 1, "keys": [file keys in index order], "files": {key: per-file state},
"conv": conversation marks}`. File keys are names relative to the `chats/` folder, so a project folder
that Gemini moved (hash → slug migration) is read again from the start without duplicates.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

from zag.logs import events
from zag.providers.base import Item
from zag.providers.gemini import files
from zag.providers.gemini.conversation import Conversation, FileContext
from zag.providers.gemini.records import DECODE_ERRORS
from zag.providers.tail import JsonlTail, TornLine, open_regular_file, torn_warning

CURSOR_VERSION = 1
SETTLE_SECS = 2.0                     # a document this fresh that fails to parse is being rewritten
MAX_DOCUMENT_BYTES = 512 * 1024 * 1024
_TAIL_KEYS = ("offset", "ino", "mark", "inside_oversized", "partial")
_KEEP_OF_BAD_DOCUMENT = 64 * 1024


class Document(msgspec.Struct):
    sessionId: Any = None  # noqa: N815
    startTime: Any = None  # noqa: N815
    summary: Any = None
    kind: Any = None
    messages: msgspec.Raw = msgspec.Raw()
    history: msgspec.Raw = msgspec.Raw()


_DOCUMENT = msgspec.json.Decoder(Document)


class GeminiReader:
    """`SessionReader` over the files of one Gemini session."""

    def __init__(self, session_id: str | None, paths: Sequence[Path], cursor: Any = None, *,
                 settle_secs: float | None = None) -> None:
        """`settle_secs`: backfill's; a torn last line of a JSONL file not modified for that long is
        reported (see tail.py). Live readers leave it None: such a line waits for its newline."""
        self._settle_secs = settle_secs
        state = cursor if isinstance(cursor, dict) and cursor.get("v") == CURSOR_VERSION else {}
        self.conversation = Conversation(session_id, state.get("conv") if isinstance(state.get("conv"), dict) else None)
        self._keys: list[str] = [key for key in state.get("keys") or [] if isinstance(key, str)]
        saved = state.get("files") if isinstance(state.get("files"), dict) else {}
        self._saved: dict[str, dict[str, Any]] = {key: value for key, value in saved.items() if isinstance(value, dict)}
        self._paths: dict[str, Path] = {}
        self._tails: dict[str, JsonlTail] = {}
        self._contexts: dict[str, FileContext] = {}
        self.set_paths(paths)

    # -- files -------------------------------------------------------------------------------------
    @property
    def paths(self) -> list[Path]:
        return [self._paths[key] for key in self._order()]

    def set_paths(self, paths: Sequence[Path]) -> None:
        """Add files of this session (new resume siblings, subagents); known ones are kept."""
        for path in paths:
            key = files.file_key(Path(path))
            if key in self._paths:
                continue
            self._paths[key] = Path(path)
            if key not in self._keys:
                self._keys.append(key)
            saved = self._saved.get(key, {})
            subagent = key.startswith("sub/")
            self._contexts[key] = FileContext(
                index=self._keys.index(key), subagent=subagent,
                subagent_id=saved.get("sub") if subagent else None, after_header=bool(saved.get("hdr")),
            )
            if Path(path).suffix != ".json":
                self._tails[key] = JsonlTail(Path(path), saved, settle_secs=self._settle_secs)

    def main_indexes(self) -> set[int]:
        return {self._contexts[key].index for key in self._paths if not key.startswith("sub/")}

    def _order(self) -> list[str]:
        main = sorted((key for key in self._paths if not key.startswith("sub/")),
                      key=lambda key: files.sort_key(self._paths[key]))
        return main + sorted(key for key in self._paths if key.startswith("sub/"))

    # -- SessionReader -----------------------------------------------------------------------------
    def read(self) -> Iterator[Item]:
        for key in self._order():
            if key in self._tails:
                yield from self._read_jsonl(key)
            else:
                yield from self._read_document(key)

    @property
    def unsettled(self) -> bool:
        """The last read left a JSONL file's unterminated last line that has not settled yet."""
        return any(tail.unsettled for tail in self._tails.values())

    def changed(self) -> bool:
        """Cheap check (a stat per file) whether `read` may find something."""
        for key, path in self._paths.items():
            tail = self._tails.get(key)
            if tail is not None:
                if tail.size_changed() or (tail.ino is None and path.exists()):
                    return True
            elif _fingerprint(path) not in (None, self._saved.get(key, {}).get("fp"),
                                             self._saved.get(key, {}).get("bad")):
                return True
        return False

    def cursor(self) -> dict[str, Any]:
        state: dict[str, dict[str, Any]] = {}
        for key in self._keys:
            entry = dict(self._saved.get(key, {}))
            tail = self._tails.get(key)
            context = self._contexts.get(key)
            if tail is not None:
                for name in _TAIL_KEYS:   # the tail's own cursor says which of them still hold
                    entry.pop(name, None)
                entry.update(tail.cursor())
            if context is not None:
                entry["hdr"] = context.after_header
                if context.subagent_id:
                    entry["sub"] = context.subagent_id
            state[key] = entry
        return {"v": CURSOR_VERSION, "keys": list(self._keys), "files": state, "conv": self.conversation.dump()}

    def close(self) -> None:
        """Nothing stays open between reads."""

    # -- per format --------------------------------------------------------------------------------
    def _read_jsonl(self, key: str) -> Iterator[Item]:
        tail = self._tails[key]
        context = self._contexts[key]
        held = _Held()
        for line in tail.lines():
            if tail.restarted:
                yield from self._feed(held.take(), context)
                tail.restarted = False
                context.after_header = False
                yield self._body(events.provider_status(
                    "gemini chat file was truncated or replaced; reading it again from the start",
                    {"path": str(self._paths[key])}))
            if line.__class__ is TornLine:
                yield from self._feed(held.take(), context)
                yield self._body(torn_warning("gemini chat file", self._paths[key], line))
            elif context.subagent:
                yield from self.conversation.line(line, context)
            elif held.hold(line):
                if held.over():
                    yield from self._feed(held.overflow(), context)
            elif not held.lines:
                yield from self.conversation.line(line, context)
            else:
                if line.startswith(_SET_MESSAGES):
                    yield from self._history_load(held.take(), line, context)
                else:
                    yield from self._feed(held.take(), context)
                yield from self.conversation.line(line, context)
        if held.lines:
            yield from self._feed(held.take(), context)
        if tail.restarted:  # shrank to nothing new
            tail.restarted = False
            yield self._body(events.provider_status(
                "gemini chat file was truncated or replaced; reading it again from the start",
                {"path": str(self._paths[key])}))

    def _feed(self, lines: list[bytes], context: FileContext) -> Iterator[Item]:
        for line in lines:
            yield from self.conversation.line(line, context)

    def _history_load(self, held: list[bytes], set_line: bytes, context: FileContext) -> Iterator[Item]:
        """`held` read just before a full message list (`set_line`): when its last message records are new
        and exactly that list, gemini loaded history into the conversation (`/chat resume <tag>`, `/restore`:
        `setHistory` writes each loaded message again as a new record, then the list): they are taken as
        history, not logged again (one note says so). Otherwise `held` is read as it came."""
        loaded = _loaded_ids(set_line)
        records = [(index, _message_id(line)) for index, line in enumerate(held) if line.startswith(_MESSAGE)]
        tail = records[-len(loaded):] if loaded and len(loaded) <= len(records) else []
        if not tail or [message_id for _, message_id in tail] != loaded \
                or any(message_id in self.conversation.marks for message_id in loaded):
            yield from self._feed(held, context)
            return
        yield from self._feed(held[:tail[0][0]], context)
        yield from self.conversation.absorb(loaded, context, _timestamp(held[tail[0][0]]))

    def _read_document(self, key: str) -> Iterator[Item]:
        path = self._paths[key]
        state = self._saved.setdefault(key, {})
        fp = _fingerprint(path)
        if fp is None or fp in (state.get("fp"), state.get("bad")):
            return
        try:
            size = path.stat().st_size
            if size > MAX_DOCUMENT_BYTES:
                state["bad"] = fp
                yield events.parse_warning(f"gemini session document too large to read ({size} bytes)", str(path))
                return
            handle = open_regular_file(path)   # never a FIFO or device: that could block
            if handle is None:
                return
            with handle:
                data = handle.read()
        except OSError:
            return
        try:
            if not data.isascii():
                data.decode("utf-8")
            document = _DOCUMENT.decode(data)
        except (UnicodeDecodeError, *DECODE_ERRORS) as exc:
            if _age(path) < SETTLE_SECS:
                return
            state["bad"] = fp
            yield events.parse_warning(f"unreadable gemini session document {path.name}: {exc}",
                                       data[:_KEEP_OF_BAD_DOCUMENT])
            return
        state["fp"] = fp
        state.pop("bad", None)
        yield from self.conversation.document(document, self._contexts[key])

    def _body(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.conversation.session_id:
            body["provider_session_id"] = self.conversation.session_id
        return body


# What gemini (JSON.stringify, keys in its own order) writes first: a message record, a patch of its
# whole message list, a patch of its last-updated time. Only these are looked at before decoding.
_MESSAGE = b'{"id":"'
_SET_MESSAGES = b'{"$set":{"messages":['
_SET_UPDATED = b'{"$set":{"lastUpdated":'
MAX_HELD = 512                   # lines held back at most while they may be a loaded history, and
MAX_HELD_BYTES = 4 * 1024 * 1024  # bytes: older ones are read as they came (a larger load is logged)


class _Held:
    """Message records (and the last-updated patches between them) read just before a possible full
    message list, in order; bounded."""

    def __init__(self) -> None:
        self.lines: deque[bytes] = deque()
        self.size = 0

    def hold(self, line: bytes) -> bool:
        if line.startswith(_MESSAGE) or (self.lines and line.startswith(_SET_UPDATED)):
            self.lines.append(line)
            self.size += len(line)
            return True
        return False

    def over(self) -> bool:
        return len(self.lines) > MAX_HELD or self.size > MAX_HELD_BYTES

    def overflow(self) -> list[bytes]:
        """The oldest lines, beyond the bounds."""
        extra = []
        while self.lines and self.over():
            line = self.lines.popleft()
            self.size -= len(line)
            extra.append(line)
        return extra

    def take(self) -> list[bytes]:
        lines = list(self.lines)
        self.lines.clear()
        self.size = 0
        return lines


def _loaded_ids(set_line: bytes) -> list[str]:
    try:
        patch = msgspec.json.decode(set_line)
    except msgspec.DecodeError:
        return []
    messages = patch.get("$set", {}).get("messages") if isinstance(patch, dict) else None
    if not isinstance(messages, list):
        return []
    ids = [message.get("id") for message in messages if isinstance(message, dict)]
    return ids if ids and len(ids) == len(messages) and all(isinstance(i, str) for i in ids) else []


def _message_id(line: bytes) -> str | None:
    end = line.find(b'"', len(_MESSAGE))
    return line[len(_MESSAGE):end].decode("utf-8", "replace") if end > 0 else None


def _timestamp(line: bytes) -> str | None:
    try:
        record = msgspec.json.decode(line)
    except msgspec.DecodeError:
        return None
    stamp = record.get("timestamp") if isinstance(record, dict) else None
    return stamp if isinstance(stamp, str) else None


def _fingerprint(path: Path) -> str | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def _age(path: Path) -> float:
    try:
        return time.time() - os.stat(path).st_mtime
    except OSError:
        return float("inf")
