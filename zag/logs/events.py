"""The unified event schema (DESIGN.md, "The unified event").

Every line of a session log is one JSON object: the envelope (`seq`, `ts`, `session_id`, `provider`,
`provider_session_id`, `source`, `type`) followed by the fields of its type. Events travel through zag
as plain dicts: providers build the type-specific part ("body", with `type`), the writer adds the
envelope. A body may carry `ts` (the record's own time, RFC 3339 or epoch) and `provider_session_id`;
the writer normalises and honours them.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from typing import Any

# --- event types -----------------------------------------------------------------------------
SESSION_STARTED = "session_started"
USER_MESSAGE = "user_message"
ASSISTANT_MESSAGE = "assistant_message"
REASONING = "reasoning"
TOOL_CALL = "tool_call"
TOOL_RESULT = "tool_result"
USAGE = "usage"
PROVIDER_STATUS = "provider_status"
PARSE_WARNING = "parse_warning"
SESSION_CLEARED = "session_cleared"
HEARTBEAT = "heartbeat"
USAGE_LIMIT_HIT = "usage_limit_hit"
USAGE_LIMIT_RESUME_STARTED = "usage_limit_resume_started"
USAGE_LIMIT_RESUMED = "usage_limit_resumed"
USAGE_LIMIT_RESUME_FAILED = "usage_limit_resume_failed"
SESSION_ENDED = "session_ended"

EVENT_TYPES = (
    SESSION_STARTED, USER_MESSAGE, ASSISTANT_MESSAGE, REASONING, TOOL_CALL, TOOL_RESULT, USAGE,
    PROVIDER_STATUS, PARSE_WARNING, SESSION_CLEARED, HEARTBEAT, USAGE_LIMIT_HIT, USAGE_LIMIT_RESUME_STARTED,
    USAGE_LIMIT_RESUMED, USAGE_LIMIT_RESUME_FAILED, SESSION_ENDED,
)

# Types that come from the agent's transcript (as opposed to zag's own bookkeeping).
TRANSCRIPT_TYPES = (
    USER_MESSAGE, ASSISTANT_MESSAGE, REASONING, TOOL_CALL, TOOL_RESULT, USAGE, PROVIDER_STATUS,
    PARSE_WARNING, SESSION_CLEARED,
)

# --- sources ---------------------------------------------------------------------------------
SOURCE_WRAPPER = "wrapper"
SOURCE_PROVIDER_FILE = "provider_file"
SOURCE_STDOUT = "stdout"
SOURCE_STDERR = "stderr"
SOURCE_BACKFILL = "backfill"
SOURCES = (SOURCE_WRAPPER, SOURCE_PROVIDER_FILE, SOURCE_STDOUT, SOURCE_STDERR, SOURCE_BACKFILL)

# --- tool kinds ------------------------------------------------------------------------------
TOOL_SHELL = "shell"
TOOL_FILE_READ = "file_read"
TOOL_FILE_WRITE = "file_write"
TOOL_FILE_EDIT = "file_edit"
TOOL_SEARCH = "search"
TOOL_SUB_AGENT = "sub_agent"
TOOL_WEB = "web"
TOOL_NOTEBOOK = "notebook"
TOOL_OTHER = "other"
TOOL_KINDS = (
    TOOL_SHELL, TOOL_FILE_READ, TOOL_FILE_WRITE, TOOL_FILE_EDIT, TOOL_SEARCH, TOOL_SUB_AGENT,
    TOOL_WEB, TOOL_NOTEBOOK, TOOL_OTHER,
)

# --- usage-limit scopes ----------------------------------------------------------------------
SCOPE_SESSION = "session"
SCOPE_WEEKLY = "weekly"
SCOPE_DAILY = "daily"
SCOPE_UNKNOWN = "unknown"
SCOPES = (SCOPE_SESSION, SCOPE_WEEKLY, SCOPE_DAILY, SCOPE_UNKNOWN)

ENVELOPE_FIELDS = ("seq", "ts", "session_id", "provider", "provider_session_id", "source", "type")

# `data.kind` of zag's own `provider_status` notes (source `wrapper`) that readers act on
NOTE_USAGE_LIMIT_RECOVERED = "usage_limit_recovered"  # `data.incident_id` closed (done): the agent continued alone
NOTE_USAGE_LIMIT_CANCELLED = "usage_limit_cancelled"  # `data.incident_id` closed (cancelled): no resume
NOTE_AGENT_STARTED = "agent_started"    # zag ran the agent again in the session: `data.child_pid`
NOTE_AGENT_EXITED = "agent_exited"      # the agent exited, the session waits on: `data.exit_code`
# the provider's `owner_key` of the agent's session (`data.provider_session_id`, `data.owner_key`), where its
# ids repeat across the agent's homes (goose): kept in the index, so backfill gives a session without cursor
# exactly its own agent session
NOTE_PROVIDER_OWNER = "provider_session_owner"
# events the session log could not hold while it could not be written (`data.count`, `bytes`, `types`,
# `first_ts`, `last_ts`, `error`): not in the log (the agent's records are not dropped: zag waits to read them)
NOTE_EVENTS_DROPPED = "events_dropped"


def now_rfc3339() -> str:
    """The current UTC time as RFC 3339 with milliseconds (`2026-12-06T10:11:12.345Z`)."""
    return format_ts(time.time())


def format_ts(epoch: float) -> str:
    """Epoch seconds → RFC 3339 UTC with milliseconds."""
    stamp = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


# Our own format exactly: a record's text that only looks like it (the right length, `T`, `.`, `Z` in
# place) may hold anything else, e.g. an escape sequence that `zag events` would print to the terminal.
_OURS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")


def normalize_ts(value: Any) -> str | None:
    """A provider timestamp (RFC 3339 string, epoch seconds or milliseconds) → our format, or None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds = value / 1000.0 if value > 1e11 else float(value)
        try:
            return format_ts(seconds)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value:
        text = value.strip()
        if len(text) == 24 and _OURS.fullmatch(text):
            return text  # already ours: YYYY-MM-DDTHH:MM:SS.mmmZ
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return format_ts(parsed.timestamp())
    return None


def parse_ts(value: str) -> float:
    """Our RFC 3339 timestamp → epoch seconds."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def body(event_type: str, **fields: Any) -> dict[str, Any]:
    """An event body: `{"type": event_type, **fields}`."""
    return {"type": event_type, **fields}


def parse_warning(message: str, raw: str | bytes | None) -> dict[str, Any]:
    """The body for a line zag could not understand; `raw` is kept (decoded leniently)."""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        raw = bytes(raw).decode("utf-8", errors="replace")
    return {"type": PARSE_WARNING, "message": message, "raw": raw}


def provider_status(message: str, data: Any) -> dict[str, Any]:
    """The body for a provider record zag does not map to a richer type (kept whole in `data`)."""
    return {"type": PROVIDER_STATUS, "message": message, "data": data}
