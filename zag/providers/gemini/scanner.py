"""Watching Gemini CLI's output (never changing it): session ids and usage-limit signals.

Structured first — JSON on any stream:
- `-o stream-json` lines: `init{session_id}` → SessionIdHint; `result{status:"error", error{type, message}}`
  and `error{severity:"error", message}` → LimitSignal(structured=True) when the error is a quota error
  (`error.type` TerminalQuotaError/RetryableQuotaError, code 429, or a quota wording in the message);
- `-o json`: one pretty-printed document (on stdout, or on *stderr* when it failed) assembled from the
  lines between a `{` and a `}` at column 0: `session_id` → hint, `error{type, message, code}` as above.
Assistant text inside JSON (`message`/`response`) is never scanned.

Then anchored text, ANSI stripped, on stderr and the PTY (stdout text in headless mode is the model's
answer, so it is not scanned for built-in wordings):
- `TerminalQuotaError: …` / `RetryableQuotaError: …` (the CLI's classification in its error report);
- `[API Error: …]` with a quota wording inside (TUI `✕ [API Error: …]`);
- a quota wording at the start of the line (after TUI glyphs ✕ ⚡ ℹ ⚠ or a dialog border │);
- the quota dialogs `Usage limit reached for <model|all Pro models>.` / `We are currently experiencing
  high demand for <model>.`, confirmed by the dialog's next lines (`/stats model for usage details`,
  `Access resets at <time>.`, …), which also give the reset.
The session id the TUI shows (`gemini --resume <uuid>` at `/quit`, `Session ID: <uuid>` in the stats box
of `/stats` and `/quit`) → SessionIdHint: after `/clear` or `/resume` it names the session the user is in.
`Attempt N failed: … Retrying after …` (a retry the CLI makes by itself) is never a signal. User
`extra_patterns` apply to every non-JSON line. One line yields at most one signal, and the same text is
not reported again within `REPEAT_SECS` (the TUI redraws dialogs).

Lines are read only when `prescan` says they may matter: every quota wording has "quota", "exhausted",
"demand" or "limit" (a forced one "quota", or `"code"` and "429"), a session id "--resume" or "Session
ID:", a JSON document starts with a `{` line, a JSON line matters when it names another session id. While
a document or a dialog is open, or with user `extra_patterns`, every line is read.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import tzinfo
from typing import Any

from zag.logs import codec, events
from zag.providers import reset_time
from zag.providers.base import Item, LaunchContext, LimitSignal, SessionIdHint
from zag.providers.gemini import limits
from zag.providers.prescan import GatedLines, Prescan
from zag.providers.text import strip_ansi

PROVIDER = "gemini"
REPEAT_SECS = 60.0
MAX_DOCUMENT_LINES = 5000
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
DIALOG_WINDOW_LINES = 6
_MAX_JSON_LINE = 1024 * 1024

_GLYPHS = "✕✖×⚡ℹ⚠!"
_BORDERS = "│┃║|╭╮╰╯─"
# A signal line starts at column 0 or 1, or after a TUI status glyph (the assistant's own text is
# indented by two and led by ✦, which is not one of them).
_LEAD = rf"^(?:\s*[{_GLYPHS}]\s*| ?)"
_CLASS_LINE = re.compile(r"^(?:.*Full report available at: \S+\s+)?(?P<cls>TerminalQuotaError|RetryableQuotaError):\s*(?P<msg>.+)$")
_API_ERROR = re.compile(rf"{_LEAD}(?:Error:?\s*)?\[API Error:\s*(?P<msg>.+?)\]?\s*$")
_LEADING_QUOTA = re.compile(
    rf"{_LEAD}(?P<msg>(?:You have exhausted your (?:daily quota|capacity)|You exceeded your current quota"
    r"|Resource (?:has been )?exhausted|Quota exceeded for quota metric|You have reached your daily\b"
    r"|Usage limit reached for\b|We are currently experiencing high demand for\b).*)$",
    re.IGNORECASE,
)
_DIALOG_HEAD = re.compile(r"^(?:Usage limit reached for|We are currently experiencing high demand)", re.IGNORECASE)
_DIALOG_LINES = re.compile(
    r"^(?:/stats model for usage details|/model to switch models|Access resets at|/auth to switch"
    r"|We apologize and appreciate your patience|How would you like to proceed)", re.IGNORECASE)
# `Access resets at 3:45 PM PST.` wrapped by a narrow dialog: its sentence ends with "." (and is short)
_UNFINISHED_RESET = re.compile(r"^Access resets at\b(?!.*\.$).{0,40}$", re.IGNORECASE)
# What every line of interest has: a quota wording (`limits._INDICATORS`, `_LEADING_QUOTA`), a JSON error
# forced by its code (`"code": 429`), a resume hint; JSON documents and new session ids are let through apart.
_PRESCAN = Prescan([b"quota", b"exhausted", b"demand", b"limit", b"--resume", b"Session ID:", (b'"code"', b"429")],
                   brace_lines=True, id_key=b'"session_id"')
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_RESUME_HINT = re.compile(rf"gemini --resume (?P<id>{_UUID})")
# the stats box of `/stats` and `/quit`: `│  Session ID:   <uuid>   │` (in its borders: not the model's text)
_STATS_ID = re.compile(rf"^\s*[│┃]\s*Session ID:\s+(?P<id>{_UUID})\s*[│┃]\s*$")


class _Pending:
    """A dialog head line waiting for the dialog's next lines."""

    def __init__(self, text: str) -> None:
        self.lines = [text]
        self.left = DIALOG_WINDOW_LINES
        self.confirmed = False


class GeminiScanner:
    """`OutputScanner` for gemini."""

    def __init__(self, ctx: LaunchContext, *, clock: Callable[[], float] = time.time,
                 zone: tzinfo | None = None) -> None:
        self._clock = clock
        self._zone = zone
        self._assemblers: dict[str, GatedLines] = {}
        self._documents: dict[str, list[str]] = {}
        self._document_bytes: dict[str, int] = {}
        self._pending: dict[str, _Pending] = {}
        self._reported: dict[str, float] = {}
        self._session_id: str | None = None
        self._extra = _compile(ctx.extra_limit_patterns)
        self._prescan: Prescan | None = None if self._extra else _PRESCAN

    # -- OutputScanner -----------------------------------------------------------------------------
    def feed(self, stream: str, data: bytes) -> list[Item]:
        assembler = self._assemblers.get(stream)
        if assembler is None:
            assembler = self._assemblers[stream] = GatedLines(max_line=_MAX_JSON_LINE)
        gated = self._prescan is not None and stream not in self._documents and stream not in self._pending
        items: list[Item] = []
        for line in assembler.feed(data, self._may_matter if gated else None):
            items += self._line(stream, line)
        return items

    def _may_matter(self, region: bytes) -> bool:
        assert self._prescan is not None
        return self._prescan.may_matter(region, self._session_id)

    def finish(self) -> list[Item]:
        items: list[Item] = []
        for stream, assembler in self._assemblers.items():
            for line in assembler.flush():
                items += self._line(stream, line)
        for stream, lines in list(self._documents.items()):
            self._documents.pop(stream)
            items += self._document(stream, lines)
        for stream, pending in list(self._pending.items()):
            self._pending.pop(stream)
            if pending.confirmed:
                items += self._dialog_signal(stream, pending)
        return items

    # -- lines -------------------------------------------------------------------------------------
    def _line(self, stream: str, raw_line: str) -> list[Item]:
        # Cursor moves inside one output line become newlines when stripped: each part is a screen line.
        items: list[Item] = []
        for line in strip_ansi(raw_line).split("\n"):
            items += self._screen_line(stream, line.rstrip("\r"))
        return items

    def _screen_line(self, stream: str, line: str) -> list[Item]:
        if stream in self._documents:
            return self._collect(stream, line)
        if line.rstrip() == "{":
            self._documents[stream] = [line]
            self._document_bytes[stream] = len(line)
            return []
        stripped = line.strip()
        if stripped.startswith("{") and stripped.endswith("}"):
            parsed = _json(stripped)
            if isinstance(parsed, dict):
                return self._json(stream, parsed)
        return self._text(stream, line)

    def _collect(self, stream: str, line: str) -> list[Item]:
        lines = self._documents[stream]
        lines.append(line)
        self._document_bytes[stream] += len(line) + 1
        if line.rstrip() == "}":
            self._documents.pop(stream)
            return self._document(stream, lines)
        if len(lines) > MAX_DOCUMENT_LINES or self._document_bytes[stream] > MAX_DOCUMENT_BYTES:
            self._documents.pop(stream)   # not a document we know; give up on it
        return []

    def _document(self, stream: str, lines: list[str]) -> list[Item]:
        parsed = _json("\n".join(lines))
        return self._json(stream, parsed) if isinstance(parsed, dict) else []

    # -- JSON --------------------------------------------------------------------------------------
    def _json(self, stream: str, obj: dict[str, Any]) -> list[Item]:
        items: list[Item] = []
        kind = obj.get("type")
        session_id = obj.get("session_id")
        if isinstance(session_id, str) and session_id and (kind in (None, "init", "result")):
            items += self._hint(stream, session_id)
        error = obj.get("error")
        if kind == "result" and obj.get("status") == "error" or kind is None and isinstance(error, dict):
            items += self._structured_error(stream, error)
        elif kind == "error" and obj.get("severity") == "error":
            items += self._structured_error(stream, {"message": obj.get("message")})
        return items

    def _structured_error(self, stream: str, error: Any) -> list[Item]:
        if isinstance(error, str):
            error = {"message": error}
        if not isinstance(error, dict):
            return []
        message = error.get("message") if isinstance(error.get("message"), str) else ""
        error_type = error.get("type")
        code = error.get("code")
        force = error_type in limits.QUOTA_ERROR_CLASSES or code in (429, "429")
        quota = limits.classify(message, self._clock(), zone=self._zone, force=force)
        if quota is None:
            return []
        raw = message or codec.dumps(error).decode("utf-8", errors="replace")
        return self._signal(stream, raw, quota, structured=True)

    # -- text --------------------------------------------------------------------------------------
    def _text(self, stream: str, line: str) -> list[Item]:
        text = _unbox(line)
        items: list[Item] = []
        pending = self._pending.get(stream)
        if pending is not None:
            items += self._advance(stream, pending, text)
        hint = _RESUME_HINT.search(text) or _STATS_ID.match(line)
        if hint:
            items += self._hint(stream, hint["id"])
        signal = self._builtin(stream, text) if stream != events.SOURCE_STDOUT else []
        if not signal:
            signal = self._extra_patterns(stream, text)
        return items + signal

    def _builtin(self, stream: str, text: str) -> list[Item]:
        if not text or limits.is_transient_retry(text):
            return []
        now = self._clock()
        match = _CLASS_LINE.search(text)
        if match:
            quota = limits.classify(match["msg"], now, zone=self._zone, force=True)
            return self._signal(stream, f"{match['cls']}: {match['msg']}", quota, structured=False) if quota else []
        match = _API_ERROR.match(text)
        if match:
            quota = limits.classify(match["msg"], now, zone=self._zone)
            return self._signal(stream, text.strip(" " + _GLYPHS), quota, structured=False) if quota else []
        match = _LEADING_QUOTA.match(text)
        if not match:
            return []
        message = match["msg"].strip()
        if _DIALOG_HEAD.match(message):
            self._pending[stream] = _Pending(message)
            return []
        quota = limits.classify(message, now, zone=self._zone)
        return self._signal(stream, message, quota, structured=False) if quota else []

    def _advance(self, stream: str, pending: _Pending, text: str) -> list[Item]:
        """Dialog lines after the head: `Access resets at …` / `We apologize …` confirm and are kept; a
        `/stats`, `/model` or `/auth` line closes the message part of the dialog."""
        stripped = text.strip()
        if not stripped:
            return []
        if pending.lines and _UNFINISHED_RESET.match(pending.lines[-1]) and not _DIALOG_LINES.match(stripped):
            pending.lines[-1] += " " + stripped  # a narrow dialog wrapped `Access resets at 3:45` / `PM PST.`
            return []
        pending.left -= 1
        closing = False
        if _DIALOG_LINES.match(stripped):
            pending.confirmed = True
            pending.lines.append(stripped)
            closing = stripped.startswith("/")
        if not closing and pending.left > 0:
            return []
        self._pending.pop(stream, None)
        return self._dialog_signal(stream, pending) if pending.confirmed else []

    def _dialog_signal(self, stream: str, pending: _Pending) -> list[Item]:
        raw = "\n".join(pending.lines)
        quota = limits.classify(raw, self._clock(), zone=self._zone)
        return self._signal(stream, raw, quota, structured=False) if quota else []

    def _extra_patterns(self, stream: str, text: str) -> list[Item]:
        for pattern in self._extra:
            match = pattern.search(text)
            if not match:
                continue
            now = self._clock()
            phrase = match.groupdict().get("reset")
            reset = reset_time.read_reset(phrase, now, self._zone) if phrase else None
            if reset is None:
                reset = limits.read_reset_in_text(text, now, zone=self._zone)
            quota = limits.Quota(events.SCOPE_UNKNOWN, reset.at if reset else None, bool(reset and reset.relative))
            return self._signal(stream, match.group(0), quota, structured=False)
        return []

    # -- results -----------------------------------------------------------------------------------
    def _signal(self, stream: str, raw: str, quota: limits.Quota, *, structured: bool) -> list[Item]:
        now = self._clock()
        key = f"{structured}:{raw}"
        last = self._reported.get(key)
        if last is not None and now - last < REPEAT_SECS:
            return []
        self._reported[key] = now
        if len(self._reported) > 256:
            self._reported = {k: v for k, v in self._reported.items() if now - v < REPEAT_SECS}
        return [LimitSignal(provider=PROVIDER, source=stream, raw=raw, structured=structured,
                            scope=quota.scope, reset_at=quota.reset_at, observed_at=now,
                            provider_session_id=self._session_id, reset_relative=quota.reset_relative)]

    def _hint(self, stream: str, session_id: str) -> list[Item]:
        if session_id == self._session_id:
            return []
        self._session_id = session_id
        return [SessionIdHint(provider_session_id=session_id, source=stream)]


def _unbox(line: str) -> str:
    """A screen line without the TUI's dialog borders (`│ text   │`); other lines keep their indent."""
    stripped = line.lstrip()
    if stripped[:1] in _BORDERS:
        return stripped.strip(_BORDERS + " ")
    return line.rstrip()


def _json(text: str) -> Any:
    try:
        return codec.loads(text)
    except (ValueError, RecursionError):
        return None


def _compile(patterns: tuple[str, ...]) -> list[Any]:
    """Case-insensitive, as for every agent (README)."""
    from zag.user_patterns import compile_all  # a time budget per search: see there

    return compile_all(patterns)
