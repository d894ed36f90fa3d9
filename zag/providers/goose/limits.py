"""goose's usage-limit wordings: which error records are limit hits, their scope and reset time.

goose is provider-agnostic. It retries HTTP 429s itself and, when it gives up, ends the turn with an
assistant message built from the provider error (agents/agent.rs):

    Ran into this error: Rate limit exceeded: <details>.\\n\\nPlease retry if you think this is a transient or recoverable error.

Newest builds also put `{"type": "error", "kind": "other"}` in that message's content (a rate limit is
not told apart from other errors there, so the text decides). Other provider errors read `Credits
exhausted: …`, `Insufficient balance: …`, `Context length exceeded: …`, `Server error: …`, `Request
failed: …`, `Execution error: …`. When goose drives Claude Code / Codex / Gemini CLI as its model
("CLI providers"), that CLI's own limit text ends up inside `<details>`; its reset phrase is parsed.

Decisions:
- `Rate limit exceeded` is a usage-limit hit (scope and reset from the details when they say).
- `Credits exhausted` / `Insufficient balance` are NOT: a prepaid balance has no reset to wait for,
  so scheduling resumes would only burn attempts; they stay visible as `provider_status` records.
- `Context length exceeded` is not a limit either (goose compacts and carries on).
- Any other error is a hit only when its details carry a known limit wording of a wrapped CLI.
- Only goose's own error records count: the whole text must be the template above (a model quoting it
  inside a longer reply, or a user pasting it, is not a hit), the role must be assistant, and a
  message that carries model-inference metadata was written by the model, not by goose.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from zag.logs import events
from zag.providers import reset_time

ERROR_TEMPLATE = re.compile(
    r"\ARan into this error(?P<compact> trying to compact)?: (?P<error>.*)\.\n\n"
    r"Please retry if you think this is a transient or recoverable error\.\s*\Z",
    re.DOTALL,
)
# The same sentence on a terminal (plain text or TUI, ANSI already stripped): anchored at line start.
TEXT_LINE = re.compile(
    r"^\s*(?:[⎿●■✕✗×•*>│|\-]+\s*)?(?:error:\s*)?"
    r"Ran into this error(?: trying to compact)?: (?P<error>\S.*?)\s*$"
)
# goose's own `error: <provider error>` line (output::render_error, when the agent stream itself fails).
ERROR_LINE = re.compile(
    r"^\s*(?:[⎿●■✕✗×•*>│|\-]+\s*)?[Ee]rror:\s+(?P<error>Rate limit exceeded: .*?)\s*$")

RATE_LIMIT_PREFIX = "Rate limit exceeded"
NOT_LIMIT_PREFIXES = ("Credits exhausted", "Insufficient balance", "Context length exceeded",
                      "Authentication error")

# Limit wordings of the CLIs goose can run as its model (details of a wrapped provider's error).
_WRAPPED_LIMIT = re.compile(
    r"you(?:'|’)ve hit your (?:\w+ )?limit"
    r"|usage limit (?:reached|exceeded)"
    r"|\b\d+-hour limit reached"
    r"|exhausted your (?:\w+ )?quota"
    r"|RESOURCE_EXHAUSTED|TerminalQuotaError|RetryableQuotaError"
    r"|usage_limit_exceeded|usage_limit_reached|rate_limit_error",
    re.IGNORECASE,
)
_SCOPES = (
    (events.SCOPE_WEEKLY, re.compile(r"weekly|7-day|seven[_ ]day", re.IGNORECASE)),
    (events.SCOPE_DAILY, re.compile(r"daily|per ?day|\bday\b", re.IGNORECASE)),
    (events.SCOPE_SESSION, re.compile(r"session limit|\b5-hour|five[_ ]hour", re.IGNORECASE)),
)
_PHRASE_END = r"(?=\s*(?:[·∙|;\n]|\.(?:\s|$)|$))"
_EPOCH_PATTERNS = (
    re.compile(r"\|(\d{10}(?:\d{3})?)\b"),                      # Claude AI usage limit reached|<epoch>
    re.compile(r"resets?_?at\W{0,3}(\d{10}(?:\d{3})?)\b", re.IGNORECASE),
)
_PHRASE_PATTERNS = (
    re.compile(r"\bresets?(?:\s+at)?\s+(?P<p>[^·∙|;\n]+?)" + _PHRASE_END, re.IGNORECASE),
    re.compile(r"\btry again (?:at|in)\s+(?P<p>[^·∙|;\n]+?)" + _PHRASE_END, re.IGNORECASE),
    re.compile(r"\bretry (?:in|after)\s+(?P<p>[^·∙|;\n]+?)" + _PHRASE_END, re.IGNORECASE),
    re.compile(r"retryDelay\W{1,4}(?P<p>\d+(?:\.\d+)?s)", re.IGNORECASE),
)
_RETRY_AFTER_SECS = re.compile(r"retry[-_ ]after\W{1,3}(?P<p>\d+(?:\.\d+)?)\b(?!\s*[a-z])", re.IGNORECASE)


@dataclass(frozen=True)
class Limit:
    """What an error text says about a usage limit."""

    scope: str
    reset_at: float | None
    reset_relative: bool = False  # a delay (`retry in 41s`, `retry-after: 30`), not an instant


def is_limit_error(error: str) -> bool:
    """Whether a goose provider-error text (`Rate limit exceeded: …`, …) is a usage-limit hit."""
    if error.startswith(RATE_LIMIT_PREFIX):
        return True
    if error.startswith(NOT_LIMIT_PREFIXES):
        return False
    return _WRAPPED_LIMIT.search(error) is not None


def classify(error: str, now: float) -> Limit | None:
    """The limit an error text describes (scope, reset from its details), or None if it is none."""
    if not is_limit_error(error):
        return None
    reset = read_reset_of(error, now)
    return Limit(scope=scope_of(error), reset_at=reset.at if reset else None,
                 reset_relative=bool(reset and reset.relative))


def scope_of(text: str) -> str:
    for scope, pattern in _SCOPES:
        if pattern.search(text):
            return scope
    return events.SCOPE_UNKNOWN


def reset_of(text: str, now: float) -> float | None:
    """The reset instant a limit text names (epoch, clock time, date, delay), else None."""
    reset = read_reset_of(text, now)
    return reset.at if reset is not None else None


def read_reset_of(text: str, now: float) -> reset_time.Reset | None:
    """The reset a limit text names: an instant (epoch, clock time, date) or a delay (relative), else None."""
    for pattern in _EPOCH_PATTERNS:
        match = pattern.search(text)
        if match:
            value = reset_time.from_epoch(match.group(1))
            if value is not None:
                return reset_time.Reset(value)
    for pattern in _PHRASE_PATTERNS:
        for match in pattern.finditer(text):
            reset = _read_leading(match.group("p"), now)
            if reset is not None:
                return reset
    match = _RETRY_AFTER_SECS.search(text)
    if match:
        return reset_time.after(now, float(match.group("p")))
    return None


def _read_leading(phrase: str, now: float) -> reset_time.Reset | None:
    """`read_reset` on the phrase, dropping trailing words until it is understood (a few tries)."""
    words = phrase.strip().split()
    for end in range(len(words), max(0, len(words) - 6), -1):
        reset = reset_time.read_reset(" ".join(words[:end]), now)
        if reset is not None:
            return reset
    return None


# --- goose error records -----------------------------------------------------------------------
@dataclass(frozen=True)
class ErrorRecord:
    """An error message goose itself wrote (not model prose)."""

    text: str                 # the whole message text
    error: str                # the provider error inside the template (`Rate limit exceeded: …`)
    kind: str | None          # the `error` content item's kind, when the build writes one


def error_record(role: Any, content: Any, metadata: Any) -> ErrorRecord | None:
    """The goose error record a message is, or None for any ordinary message."""
    if role != "assistant" or not isinstance(content, list) or not content:
        return None
    first = content[0]
    if not isinstance(first, dict) or first.get("type") not in ("text", "error") or (
            first.get("type") == "text" and not str(first.get("text", "")).startswith("Ran into this error")
            and not any(isinstance(item, dict) and item.get("type") == "error" for item in content)):
        return None  # the common case, decided cheaply: not goose's error message
    if isinstance(metadata, dict) and metadata.get("inference"):
        return None  # written by the model
    texts: list[str] = []
    kind: str | None = None
    has_error_item = False
    for item in content:
        if not isinstance(item, dict):
            return None
        item_type = item.get("type")
        if item_type == "text" and isinstance(item.get("text"), str):
            texts.append(item["text"])
        elif item_type == "error":
            has_error_item = True
            kind = item.get("kind") if isinstance(item.get("kind"), str) else kind
            detail = _error_item_text(item)
            if detail and not texts:
                texts.append(detail)
        else:
            return None
    text = "\n".join(texts)
    match = ERROR_TEMPLATE.match(text)
    if match:
        return ErrorRecord(text=text, error=match.group("error"), kind=kind)
    if has_error_item:
        prefix = "Ran into this error: "
        error = text[len(prefix):] if text.startswith(prefix) else text
        return ErrorRecord(text=text, error=error.split("\n\nPlease retry", 1)[0].rstrip("."), kind=kind)
    return None


def _error_item_text(item: dict[str, Any]) -> str:
    for key in ("message", "msg", "text", "details", "error"):
        value = item.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def record_limit(record: ErrorRecord, now: float) -> Limit | None:
    """The limit an error record describes (kind `creditsExhausted` etc. never is one)."""
    if record.kind in ("creditsExhausted", "contextLengthExceeded", "authentication"):
        return None
    return classify(record.error, now)


def compile_patterns(patterns: Iterable[str]) -> list[Any]:
    """User `extra_patterns` (bad regexes are skipped: config validation reports them)."""
    from zag.user_patterns import compile_all  # a time budget per search: see there

    return compile_all(patterns)
