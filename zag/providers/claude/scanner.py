"""Watching claude's stdout/stderr/PTY output (never changing it) for its session id and limit hits.

- stdout lines that are stream-json objects are read as such, never as text: `session_id` on any line →
  `SessionIdHint`; `rate_limit_event` with status `rejected`, an API-error `assistant` that is a rate
  limit, a `result` with `api_error_status: 429` (or `is_error` with a limit wording) → structured
  `LimitSignal`. `allowed`/`allowed_warning` events and `system/api_retry` (claude retries by itself)
  are not hits, nor is an ordinary assistant message that quotes a limit text.
- every other line (plain `-p` output, stderr, the TUI screen with ANSI stripped) → anchored wording
  patterns (`limits.match_text`) and the user's `extra_patterns` → unconfirmed `LimitSignal`
  (`structured=False`); `claude --resume <id>` (printed on exit) → `SessionIdHint`.
- the TUI redraws the same text many times: one line's hit is reported once per `REPEAT_SECS`.

Lines are read only when `prescan` says they may matter (every wording above has "limit", "extra" or
"(429)", a stream-json limit "limit" or "api_error_status", a resume line "claude" and "-r"; a
stream-json line matters when it names another session id), so ordinary output costs one C-speed pass.
User `extra_patterns` may match anything: with them every line is read.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from typing import Any

import msgspec

from zag import diag
from zag.logs import events
from zag.providers.base import Item, LaunchContext, LimitSignal, SessionIdHint
from zag.providers.claude import limits, schema
from zag.providers.prescan import Gate, Prescan, joined
from zag.providers.text import strip_ansi

MAX_LINE = 256 * 1024        # longer lines (big tool output) are skipped: no limit message is that long
REPEAT_SECS = 300.0
_SPLIT = re.compile(rb"\r\n|\n|\r")
_RESUME_LINE = re.compile(r"^\s*claude\s+(?:--resume|-r)\s+([0-9a-fA-F]{8}-[0-9a-fA-F-]{27})\s*$")
# What every line of interest has: the wordings (`limits._patterns`), a stream-json limit (`rate_limit…`,
# `api_error_status`), a resume line; stream-json lines naming a new session id are let through apart.
_PRESCAN = Prescan([b"limit", b"extra", b"(429)", b"api_error_status", (b"claude", b"-r")],
                   id_key=b'"session_id"')


class _Lines:
    """Complete lines from chunks of bytes; over-long lines are dropped whole, in bounded memory."""

    def __init__(self, cap: int) -> None:
        self._buffer = bytearray()
        self._skipping = False
        self._cap = cap

    def feed(self, data: bytes, gate: Gate | None = None) -> list[bytes]:
        """The lines `data` completes; those of a run of complete lines the gate rejects are dropped."""
        end = max(data.rfind(b"\n"), data.rfind(b"\r"))
        if end < 0:
            self._keep(data)
            return []
        if gate is not None and not gate(joined(bytearray() if self._skipping else self._buffer, data, end + 1)):
            self._skipping = False
            self._buffer.clear()
            self._keep(data[end + 1:])
            return []
        parts = _SPLIT.split(data)
        lines = []
        for part in parts[:-1]:
            if self._skipping:
                self._skipping = False
            else:
                self._buffer += part
                lines.append(bytes(self._buffer))
            self._buffer.clear()
        self._keep(parts[-1])
        return lines

    def _keep(self, rest: bytes) -> None:
        """Buffer the start of the next line (dropping it once it is over-long)."""
        if not self._skipping:
            self._buffer += rest
            if len(self._buffer) > self._cap:
                self._buffer.clear()
                self._skipping = True

    def flush(self) -> list[bytes]:
        rest = bytes(self._buffer)
        self._buffer.clear()
        self._skipping = False
        return [rest] if rest else []


class ClaudeOutputScanner:
    """`OutputScanner` for one claude child."""

    def __init__(self, ctx: LaunchContext) -> None:
        self._extra = limits.compile_extra(ctx.extra_limit_patterns)
        self._prescan: Prescan | None = None if self._extra else _PRESCAN
        self._lines: dict[str, _Lines] = {}
        self._last_id: str | None = None
        self._recent: OrderedDict[tuple[str, str], float] = OrderedDict()

    def feed(self, stream: str, data: bytes) -> list[Item]:
        try:
            assembler = self._lines.get(stream)
            if assembler is None:
                assembler = self._lines[stream] = _Lines(MAX_LINE)
            return self._scan(stream, assembler.feed(data, self._may_matter if self._prescan else None))
        except Exception as exc:  # noqa: BLE001 - watching output must never disturb the relay
            diag.exception("claude_scanner_failed", error=str(exc))
            return []

    def finish(self) -> list[Item]:
        items: list[Item] = []
        for stream, assembler in self._lines.items():
            try:
                items.extend(self._scan(stream, assembler.flush()))
            except Exception as exc:  # noqa: BLE001
                diag.exception("claude_scanner_failed", error=str(exc))
        return items

    def _may_matter(self, region: bytes) -> bool:
        assert self._prescan is not None
        return self._prescan.may_matter(region, self._last_id)

    # -- lines ------------------------------------------------------------------------------------
    def _scan(self, stream: str, lines: list[bytes]) -> list[Item]:
        items: list[Item] = []
        for raw in lines:
            if not raw:
                continue
            text = raw.decode("utf-8", errors="replace")
            if stream == "stdout" and text.lstrip().startswith("{"):
                machine = self._machine(text.strip())
                if machine is not None:
                    items.extend(machine)
                    continue
            if "\x1b" in text or stream == "pty":
                text = strip_ansi(text)
            for piece in text.split("\n"):
                items.extend(self._text(stream, piece.rstrip()))
        return items

    def _machine(self, line: str) -> list[Item] | None:
        """A stream-json line → items; None when the line is not one."""
        try:
            event = schema.stream_decoder.decode(line)
        except msgspec.MsgspecError:
            return None
        if not event.type:
            return None
        items: list[Item] = []
        if event.session_id and event.session_id != self._last_id:
            self._last_id = event.session_id
            items.append(SessionIdHint(event.session_id, source=events.SOURCE_STDOUT))
        signal = self._machine_limit(event, line)
        if signal is not None:
            items.append(signal)
        return items

    def _machine_limit(self, event: schema.StreamEvent, line: str) -> LimitSignal | None:
        now = time.time()
        kind = event.type
        if kind == "rate_limit_event":
            info = event.rate_limit_info
            if info is None or info.status != "rejected":
                return None
            return LimitSignal(
                provider=limits.PROVIDER, source=events.SOURCE_STDOUT, raw=line, structured=True,
                scope=limits.scope_from_rate_limit_type(info.rateLimitType), reset_at=limits.epoch(info.resetsAt),
                observed_at=now, provider_session_id=event.session_id,
            )
        if kind == "assistant":
            api_error = event.is_api_error_message is True or event.isApiErrorMessage is True
            if not limits.is_api_error_record(api_error or None, event.error):
                return None
            return limits.limit_from_error_record(
                error=event.error, status=event.api_error_status, text=_texts(event.message), quota=None, now=now,
                source=events.SOURCE_STDOUT, provider_session_id=event.session_id,
            )
        if kind == "result":
            text = event.result if isinstance(event.result, str) else ""
            hit = limits.match_text(text.strip(), now) if text and event.is_error is True else None
            if event.api_error_status != 429 and hit is None:
                return None
            return LimitSignal(
                provider=limits.PROVIDER, source=events.SOURCE_STDOUT, raw=text or line, structured=True,
                scope=hit.scope if hit is not None else limits.scope_from_words(text),
                reset_at=hit.reset_at if hit is not None else None, observed_at=now,
                provider_session_id=event.session_id, reset_relative=hit is not None and hit.reset_relative,
            )
        return None

    def _text(self, stream: str, line: str) -> list[Item]:
        if not line or len(line) > 4000:
            return []
        resumed = _RESUME_LINE.match(line)
        if resumed:
            session_id = resumed.group(1)
            if session_id != self._last_id:
                self._last_id = session_id
                return [SessionIdHint(session_id, source=stream)]
            return []
        now = time.time()
        hit = limits.match_text(line, now) or limits.match_extra(line, self._extra, now)
        if hit is None or self._repeated(stream, hit.raw, now):
            return []
        return [LimitSignal(
            provider=limits.PROVIDER, source=stream, raw=hit.raw, structured=False, scope=hit.scope,
            reset_at=hit.reset_at, observed_at=now, reset_relative=hit.reset_relative,
        )]

    def _repeated(self, stream: str, raw: str, now: float) -> bool:
        key = (stream, raw)
        seen = self._recent.get(key)
        if seen is not None and now - seen < REPEAT_SECS:
            return True
        self._recent[key] = now
        self._recent.move_to_end(key)
        while len(self._recent) > 64:
            self._recent.popitem(last=False)
        return False


def _texts(message: Any) -> str:
    if message is None:
        return ""
    content = message.content
    if isinstance(content, str):
        return content
    return "\n".join(block.text for block in content or () if block.type == "text" and block.text)
