"""Watching goose's output (never changing it): limit hits and the session id.

Structured first: `--output-format stream-json` lines `{"type":"error","error":"…"}` and
`{"type":"message","message":{…}}` (the message is checked like a transcript record: only goose's own
error message counts, not an assistant reply quoting it), and the `--output-format json` document
`{"messages":[…],"metadata":{…}}` (one line, or pretty-printed over several). Then text: a line that
starts with goose's `Ran into this error: <error>` (ANSI stripped, a TUI glyph allowed before it) is a
text signal when the error is a limit (see `limits`); user `extra_patterns` likewise. Text signals are
`structured=False`: the supervisor confirms them.

Session id: goose prints it when a session starts (`session id: 20251108_1` in older builds; newer
ones draw an ASCII goose and put the id beside its body, `   \\____)    20251108_1 · <cwd>`, also
before stream-json output); stream-json itself carries none.

Lines are read only when `prescan` says they may matter: every limit error has "limit", "quota" or
"exhausted", a session id line "session" or "·", a JSON document starts with a `{` line. While a
document is open, or with user `extra_patterns`, every line is read.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from zag.logs import codec
from zag.providers import reset_time
from zag.providers.base import Item, LaunchContext, LimitSignal, SessionIdHint
from zag.providers.goose import limits
from zag.providers.goose.records import JSON_ERRORS
from zag.providers.prescan import GatedLines, Prescan
from zag.providers.text import strip_ansi

PROVIDER = "goose"
MAX_DOCUMENT_BYTES = 32 * 1024 * 1024
SESSION_ID_LINES = (
    re.compile(r"^\s*session id:\s*(?P<id>\d{8}_\d{1,6})\s*$", re.IGNORECASE),
    re.compile(r"^\s*(?:\\_+\)\s+)?(?P<id>\d{8}_\d{1,6})\s+·\s+\S"),   # after the goose's ` \____)`
)
_PRESCAN = Prescan([b"limit", b"quota", b"exhausted", b"session", "·".encode()], brace_lines=True)


class GooseOutputScanner:
    def __init__(self, ctx: LaunchContext, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.extra = limits.compile_patterns(ctx.extra_limit_patterns)
        self._prescan: Prescan | None = None if self.extra else _PRESCAN
        self._lines: dict[str, GatedLines] = {}
        self._documents: dict[str, list[str]] = {}
        self._document_size: dict[str, int] = {}
        self._ids: set[str] = set()

    def feed(self, stream: str, data: bytes) -> list[Item]:
        assembler = self._lines.get(stream)
        if assembler is None:
            assembler = self._lines[stream] = GatedLines()
        gate = None if self._prescan is None or stream in self._documents else self._prescan.may_matter
        items: list[Item] = []
        for line in assembler.feed(data, gate):
            items.extend(self._line(stream, line))
        return items

    def finish(self) -> list[Item]:
        items: list[Item] = []
        for stream, assembler in self._lines.items():
            for line in assembler.flush():
                items.extend(self._line(stream, line))
        for stream in list(self._documents):
            items.extend(self._end_document(stream))
        return items

    # -- one line ----------------------------------------------------------------------------------
    def _line(self, stream: str, raw: str) -> list[Item]:
        line = strip_ansi(raw)
        if stream in self._documents:
            return self._document_line(stream, line)
        stripped = line.strip()
        if stripped == "{" and line.startswith("{"):
            self._documents[stream] = [line]
            self._document_size[stream] = len(line)
            return []
        if stripped.startswith("{") and stripped.endswith("}"):
            try:
                value = codec.loads(stripped)
            except JSON_ERRORS:
                value = None
            if isinstance(value, dict):
                return self._json(stream, value)
        return self._text(stream, line)

    def _document_line(self, stream: str, line: str) -> list[Item]:
        self._documents[stream].append(line)
        self._document_size[stream] += len(line)
        if line.rstrip() == "}" or self._document_size[stream] > MAX_DOCUMENT_BYTES:
            return self._end_document(stream)
        return []

    def _end_document(self, stream: str) -> list[Item]:
        lines = self._documents.pop(stream, [])
        self._document_size.pop(stream, None)
        try:
            value = codec.loads("\n".join(lines))
        except JSON_ERRORS:
            items: list[Item] = []
            for line in lines:
                items.extend(self._text(stream, line))
            return items
        return self._json(stream, value) if isinstance(value, dict) else []

    # -- machine output ------------------------------------------------------------------------------
    def _json(self, stream: str, value: dict[str, Any]) -> list[Item]:
        kind = value.get("type")
        now = self.clock()
        if kind == "error":
            error = value.get("error")
            text = error if isinstance(error, str) else codec.dumps(error).decode()
            inner = text
            match = limits.ERROR_TEMPLATE.match(text)
            if match:
                inner = match.group("error")
            elif inner.startswith("Ran into this error: "):
                inner = inner[len("Ran into this error: "):]
            limit = limits.classify(inner, now)
            return [self._signal(stream, text, limit, structured=True)] if limit else []
        if kind == "message":
            return self._message(stream, value.get("message"), now)
        messages = value.get("messages")
        if isinstance(messages, list):
            for message in reversed(messages):
                items = self._message(stream, message, now)
                if items:
                    return items
        return []

    def _message(self, stream: str, message: Any, now: float) -> list[Item]:
        if not isinstance(message, dict):
            return []
        record = limits.error_record(message.get("role"), message.get("content"), message.get("metadata"))
        if record is None:
            return []
        limit = limits.record_limit(record, now)
        return [self._signal(stream, record.text, limit, structured=True)] if limit else []

    # -- text --------------------------------------------------------------------------------------
    def _text(self, stream: str, line: str) -> list[Item]:
        for pattern in SESSION_ID_LINES:
            match = pattern.match(line)
            if match:
                session_id = match.group("id")
                if session_id in self._ids:
                    return []
                self._ids.add(session_id)
                return [SessionIdHint(session_id, source=stream)]
        match = limits.TEXT_LINE.match(line) or limits.ERROR_LINE.match(line)
        now = self.clock()
        if match:
            limit = limits.classify(match.group("error"), now)
            if limit:
                return [self._signal(stream, line.strip(), limit, structured=False)]
        for pattern in self.extra:
            match = pattern.search(line)
            if match:
                phrase = match.groupdict().get("reset")
                reset = reset_time.read_reset(phrase, now) if phrase else None
                return [LimitSignal(provider=PROVIDER, source=stream, raw=match.group(0), structured=False,
                                    reset_at=reset.at if reset else None, observed_at=now,
                                    reset_relative=bool(reset and reset.relative))]
        return []

    def _signal(self, stream: str, raw: str, limit: limits.Limit, *, structured: bool) -> LimitSignal:
        return LimitSignal(provider=PROVIDER, source=stream, raw=raw, structured=structured,
                           scope=limit.scope, reset_at=limit.reset_at, observed_at=self.clock(),
                           reset_relative=limit.reset_relative)
