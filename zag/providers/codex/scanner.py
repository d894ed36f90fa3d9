"""Watching the Codex child's output (never changing it) for its thread id and usage-limit hits.

- stdout, `--json` lines: `thread.started.thread_id` → `SessionIdHint`; a `{"type":"error"}` line with the
  usage-limit wording is remembered and becomes a structured `LimitSignal` when `turn.failed` confirms it
  (an `error` line alone is not fatal: `Reconnecting… n/5` lines are errors too; a turn that completes
  after it discards it). Items and agent messages are never scanned for wordings (assistant prose).
  Plain stdout (`codex exec` without `--json`) is the assistant's final answer: only the user's
  `extra_patterns` are applied to it.
- stderr: the `session id: <uuid>` header of plain `exec` → `SessionIdHint`; `ERROR: You've hit your
  usage limit …` and the raw 429 body (`"type":"usage_limit_reached"`, reset from `resets_at`) →
  unstructured `LimitSignal`s (the supervisor confirms them: exit code, transcript).
- pty (the TUI): the same wording after the TUI's `■` glyph, possibly wrapped over screen lines. Text is
  scanned only around chunks mentioning "limit" (cheap on a busy terminal).
The same text seen again within `REPEAT_WINDOW_SECS` (Codex prints the error twice; TUIs redraw) is not
reported again.

stdout/stderr lines are read only when `prescan` says they may matter: every limit wording and body has
"limit", the header "session", the id line "thread.started". While an error waits for its `turn.failed`,
or with user `extra_patterns`, every line is read.
"""

from __future__ import annotations

import re
import time
from typing import Any

import msgspec

from zag.logs import events
from zag.providers.base import Item, LaunchContext, LimitSignal, SessionIdHint
from zag.providers.codex import limits
from zag.providers.codex.records import PROVIDER
from zag.providers.prescan import Gate, GatedLines, Prescan
from zag.providers.reset_time import Reset, read_reset
from zag.providers.text import strip_ansi

REPEAT_WINDOW_SECS = 30 * 60
PTY_KEEP = 8 * 1024
PTY_ARMED_BYTES = 16 * 1024
_UUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
_SESSION_HEADER = re.compile(rf"^session id:\s*({_UUID})\s*$", re.IGNORECASE)
_decoder = msgspec.json.Decoder()
_PRESCAN = {"stdout": Prescan([b"limit", b"thread.started"]), "stderr": Prescan([b"limit"]),
            "header": Prescan([b"limit", b"session"])}


class CodexOutputScanner:
    def __init__(self, ctx: LaunchContext) -> None:
        self._assemblers = {"stdout": GatedLines(), "stderr": GatedLines()}
        self._extra = _compile(ctx.extra_limit_patterns)
        self._prescans: dict[str, Prescan] | None = None if self._extra else _PRESCAN
        self._hinted: set[str] = set()
        self._header_seen = False
        self._pending_error: str | None = None
        self._recent: dict[str, float] = {}
        self._pty_raw = b""
        self._pty_armed = 0

    # -- OutputScanner --------------------------------------------------------------------------
    def feed(self, stream: str, data: bytes) -> list[Item]:
        try:
            if stream == "pty":
                return self._feed_pty(data)
            assembler = self._assemblers.get(stream)
            if assembler is None:
                return []
            gate = self._gate(stream)
            items: list[Item] = []
            for line in assembler.feed(data, gate):
                items.extend(self._line(stream, line))
            return items
        except Exception:  # noqa: BLE001 - watching must never disturb the child's output
            return []

    def finish(self) -> list[Item]:
        items: list[Item] = []
        try:
            for stream, assembler in self._assemblers.items():
                for line in assembler.flush():
                    items.extend(self._line(stream, line))
            if self._pending_error is not None:  # the run ended on the limit error without `turn.failed`
                items.extend(self._signal("stdout", self._pending_error, structured=True))
                self._pending_error = None
            if self._pty_raw:
                items.extend(self._scan_pty(final=True))
        except Exception:  # noqa: BLE001
            pass
        return items

    def _gate(self, stream: str) -> Gate | None:
        if self._prescans is None or self._pending_error is not None:
            return None
        return self._prescans["header" if stream == "stderr" and not self._header_seen else stream].may_matter

    # -- lines ----------------------------------------------------------------------------------
    def _line(self, stream: str, line: str) -> list[Item]:
        stripped = line.strip()
        if stream == "stdout" and stripped.startswith("{"):
            return self._json_line(stripped)
        text = strip_ansi(line)
        items: list[Item] = []
        if stream == "stderr":
            if not self._header_seen:
                header = _SESSION_HEADER.match(text.strip())
                if header:
                    self._header_seen = True
                    items.extend(self._hint(header.group(1), "stderr"))
            now = time.time()
            reading = limits.search_raw_body(text, now) or limits.search_text(text, now)
            if reading is not None:
                items.extend(self._signal(stream, reading.raw, reset=reading.reset))
        items.extend(self._extra_hits(stream, text))
        return items

    def _json_line(self, line: str) -> list[Item]:
        try:
            record = _decoder.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return []
        if not isinstance(record, dict):
            return []
        kind = record.get("type")
        if kind == "thread.started" and isinstance(record.get("thread_id"), str):
            return self._hint(record["thread_id"], "stdout")
        if kind == "error":
            message = record.get("message")
            if isinstance(message, str) and limits.read_message(message, time.time()) is not None:
                self._pending_error = message
            return []
        if kind == "turn.failed":
            error = record.get("error")
            message = error.get("message") if isinstance(error, dict) else None
            pending, self._pending_error = self._pending_error, None
            if isinstance(message, str) and limits.read_message(message, time.time()) is not None:
                return self._signal("stdout", message, structured=True)
            if pending is not None:
                return self._signal("stdout", pending, structured=True)
            return []
        if kind in ("turn.completed", "turn.started") or (isinstance(kind, str) and kind.startswith("item.")):
            if kind != "turn.started":
                self._pending_error = None
        return []

    def _hint(self, session_id: str, source: str) -> list[Item]:
        session_id = session_id.lower()
        if session_id in self._hinted:
            return []
        self._hinted.add(session_id)
        return [SessionIdHint(session_id, source=source)]

    # -- the TUI --------------------------------------------------------------------------------
    def _feed_pty(self, data: bytes) -> list[Item]:
        self._pty_raw = (self._pty_raw + data)[-PTY_KEEP:]
        window = self._pty_raw[-(len(data) + 16):].lower()
        if b"limit" in window or b"usage" in window:
            self._pty_armed = PTY_ARMED_BYTES
        elif self._pty_armed > 0:
            self._pty_armed -= len(data)
        items: list[Item] = []
        if self._pty_armed > 0:
            items.extend(self._scan_pty())
        if self._extra:
            for line in strip_ansi(data.decode("utf-8", errors="replace")).splitlines():
                items.extend(self._extra_hits("pty", line))
        return items

    def _scan_pty(self, final: bool = False) -> list[Item]:
        text = strip_ansi(self._pty_raw.decode("utf-8", errors="replace"))
        reading = limits.search_text(text, time.time())
        if reading is None:
            return []
        self._pty_armed = 0
        return self._signal("pty", reading.raw, reset=reading.reset)

    # -- signals --------------------------------------------------------------------------------
    def _signal(self, stream: str, raw: str, *, structured: bool = False, reset: Reset | None = None,
                extra: bool = False) -> list[Item]:
        now = time.time()
        key = " ".join(raw.split())
        seen = self._recent.get(key)
        if seen is not None and now - seen < REPEAT_WINDOW_SECS:
            return []
        self._recent[key] = now
        if len(self._recent) > 256:
            self._recent = {k: v for k, v in self._recent.items() if now - v < REPEAT_WINDOW_SECS}
        if reset is None and not extra:
            reading = limits.read_message(raw, now) or limits.search_text(raw, now)
            reset = reading.reset if reading else None
        return [LimitSignal(
            provider=PROVIDER, source=stream, raw=raw, structured=structured,
            scope=events.SCOPE_UNKNOWN, reset_at=reset.at if reset else None, observed_at=now,
            reset_relative=bool(reset and reset.relative),
        )]

    def _extra_hits(self, stream: str, text: str) -> list[Item]:
        items: list[Item] = []
        for pattern in self._extra:
            match = pattern.search(text)
            if match is None:
                continue
            reset = None
            if "reset" in pattern.groupindex and match.group("reset"):
                reset = read_reset(match.group("reset"), time.time())
            items.extend(self._signal(stream, match.group(0), reset=reset, extra=True))
        return items


def _compile(patterns: Any) -> list[Any]:
    from zag.user_patterns import compile_all  # a time budget per search: see there

    return compile_all(patterns)
