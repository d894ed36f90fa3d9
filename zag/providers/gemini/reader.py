"""Incremental reader of one Gemini session: its JSONL file(s) and/or legacy JSON document(s).

Live tailing and backfill share it. JSONL files are read with `JsonlTail` (complete lines only, byte
offsets, shrink/replace noticed); a legacy `.json` document is re-parsed whenever its size/mtime/inode
changes (a half-written document — the CLI rewrites it in place — is retried on the next read while it is
fresh, and reported once as a parse_warning when it stays unreadable). All files of the session feed one
`Conversation`, which emits each message part once (see conversation.py).

Cursor (JSON): `{"v": 1, "keys": [file keys in index order], "files": {key: per-file state},
"conv": conversation marks}`. File keys are names relative to the `chats/` folder, so a project folder
that Gemini moved (hash → slug migration) is read again from the start without duplicates.
"""

from __future__ import annotations

import os
import time
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
        for line in tail.lines():
            if tail.restarted:
                tail.restarted = False
                context.after_header = False
                yield self._body(events.provider_status(
                    "gemini chat file was truncated or replaced; reading it again from the start",
                    {"path": str(self._paths[key])}))
            if line.__class__ is TornLine:
                yield self._body(torn_warning("gemini chat file", self._paths[key], line))
            else:
                yield from self.conversation.line(line, context)
        if tail.restarted:  # shrank to nothing new
            tail.restarted = False
            yield self._body(events.provider_status(
                "gemini chat file was truncated or replaced; reading it again from the start",
                {"path": str(self._paths[key])}))

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
