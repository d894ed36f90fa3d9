"""Prompts of deleted Gemini sessions, from the project's prompt log `tmp/<project>/logs.json`.

The CLI keeps every prompt typed in a project in `logs.json` (a JSON array, rewritten whole):
`{sessionId, messageId, timestamp, type: "user", message}`. When a session's chat file is gone (deleted
by the CLI's retention cleanup, e.g. after the resume bug), this is all that is left of it; backfill
imports those prompts as user messages. A cursor left by the chat-file reader means the session was
imported from its chat file, which is richer: then nothing is emitted here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from zag.logs import events
from zag.providers.base import Item
from zag.providers.gemini.records import DECODE_ERRORS

MAX_LOG_BYTES = 64 * 1024 * 1024


class Entry(msgspec.Struct):
    sessionId: Any = None  # noqa: N815
    messageId: Any = None  # noqa: N815
    timestamp: Any = None
    type: Any = None
    message: Any = None


_ENTRIES = msgspec.json.Decoder(list[msgspec.Raw])
_ENTRY = msgspec.json.Decoder(Entry)


def read_entries(path: Path) -> list[Entry]:
    """The readable entries of a `logs.json` ([] when missing, too large or unreadable)."""
    try:
        if path.stat().st_size > MAX_LOG_BYTES:
            return []
        raws = _ENTRIES.decode(path.read_bytes())
    except (OSError, *DECODE_ERRORS):
        return []
    entries = []
    for raw in raws:
        try:
            entries.append(_ENTRY.decode(raw))
        except DECODE_ERRORS:
            continue
    return entries


def session_ids(path: Path) -> list[str]:
    seen: dict[str, None] = {}
    for entry in read_entries(path):
        if isinstance(entry.sessionId, str) and entry.sessionId:
            seen.setdefault(entry.sessionId)
    return list(seen)


class PromptLogReader:
    """`SessionReader` of one deleted session's prompts."""

    def __init__(self, session_id: str, path: Path, cursor: Any = None) -> None:
        self.session_id = session_id
        self.path = path
        state = cursor if isinstance(cursor, dict) else {}
        self._from_chat_file = "conv" in state
        log_state = state.get("prompt_log") if isinstance(state.get("prompt_log"), dict) else {}
        self._seen: list[str] = [key for key in log_state.get("seen") or [] if isinstance(key, str)]
        self._state = state

    def read(self) -> Iterator[Item]:
        if self._from_chat_file:
            return
        seen = set(self._seen)
        for entry in read_entries(self.path):
            if entry.sessionId != self.session_id:
                continue
            key = f"{entry.messageId}|{entry.timestamp}"
            if key in seen:
                continue
            seen.add(key)
            self._seen.append(key)
            content = entry.message if isinstance(entry.message, str) else ""
            body = events.body(events.USER_MESSAGE, content=content, message_id=f"prompt-log-{entry.messageId}",
                               provider_session_id=self.session_id, from_prompt_log=True)
            if isinstance(entry.timestamp, str):
                body["ts"] = entry.timestamp
            yield body

    def cursor(self) -> dict[str, Any]:
        if self._from_chat_file:
            return self._state
        return {"v": 1, "prompt_log": {"seen": self._seen}}

    def close(self) -> None:
        """Nothing stays open."""
