"""Gemini chat records → unified event bodies (pure mapping; what to emit *when* is `conversation.py`).

Records are decoded with msgspec into a struct that keeps the heavy parts (content, thoughts, tool
calls and their results) as raw JSON: a message is re-appended on every update, and most re-appends
carry nothing new, so their payloads are never decoded.

Message record (`type`): `user` → user_message (or provider_status for the CLI's own
`<session_context>`/`<hook_context>` preamble), `gemini` (and legacy `model`) → reasoning (`thoughts`),
assistant_message (`content`), tool_call + tool_result (`toolCalls[]`), usage (`tokens`); `info`,
`error`, `warning` and unknown types → provider_status with the record kept whole.
"""

from __future__ import annotations

from typing import Any

import msgspec

from zag.logs import codec, events

# --- decoding -------------------------------------------------------------------------------------
_EMPTY = msgspec.Raw()


class Line(msgspec.Struct):
    """Any line of a chat file (metadata, message, `$set`, `$rewindTo`) or a message of a snapshot."""

    id: Any = None
    type: Any = None
    timestamp: Any = None
    content: msgspec.Raw = _EMPTY
    displayContent: msgspec.Raw = _EMPTY  # noqa: N815 - the CLI's field names
    parts: msgspec.Raw = _EMPTY
    model: Any = None
    tokens: Any = None
    thoughts: msgspec.Raw = _EMPTY
    toolCalls: msgspec.Raw = _EMPTY  # noqa: N815
    sessionId: Any = None  # noqa: N815
    projectHash: Any = None  # noqa: N815
    startTime: Any = None  # noqa: N815
    kind: Any = None
    role: Any = None
    ts: Any = None
    set: msgspec.Raw = msgspec.field(default=_EMPTY, name="$set")
    rewindTo: Any = msgspec.field(default=None, name="$rewindTo")  # noqa: N815


class ToolCall(msgspec.Struct):
    id: Any = None
    name: Any = None
    args: Any = None
    result: msgspec.Raw = _EMPTY
    status: Any = None
    timestamp: Any = None
    resultDisplay: msgspec.Raw = _EMPTY  # noqa: N815
    displayName: Any = None  # noqa: N815
    agentId: Any = None  # noqa: N815


LINE_DECODER = msgspec.json.Decoder(Line)
_TOOL_CALLS = msgspec.json.Decoder(list[ToolCall])
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_RAW_MAP = msgspec.json.Decoder(dict[str, msgspec.Raw])

DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, RecursionError, ValueError, TypeError)


def raw_value(raw: msgspec.Raw) -> Any:
    """The decoded value of a raw field (None when absent)."""
    if not raw:
        return None
    return codec.loads(raw)


def raw_list(raw: msgspec.Raw) -> list[msgspec.Raw]:
    """A raw JSON array as raw elements (raises a DECODE_ERROR when it is not an array)."""
    return _RAW_LIST.decode(raw) if raw else []


def raw_map(raw: msgspec.Raw) -> dict[str, msgspec.Raw]:
    return _RAW_MAP.decode(raw) if raw else {}


def tool_calls(raw: msgspec.Raw) -> list[ToolCall]:
    return _TOOL_CALLS.decode(raw) if raw else []


def is_message(rec: Line) -> bool:
    return isinstance(rec.id, str)


def is_metadata(rec: Line) -> bool:
    return isinstance(rec.sessionId, str) and isinstance(rec.projectHash, str) and not is_message(rec)


# --- content ---------------------------------------------------------------------------------------
CONTEXT_PREFIXES = ("<session_context>", "<hook_context>")
ASSISTANT_TYPES = ("gemini", "model", "assistant")
STATUS_TYPES = ("info", "error", "warning")


def text_and_parts(value: Any) -> tuple[str, list[Any]]:
    """A PartListUnion → (its text, the parts that are not text: images, function calls…)."""
    if value is None:
        return "", []
    if isinstance(value, str):
        return value, []
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return "", [value]
    texts: list[str] = []
    others: list[Any] = []
    for part in value:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and isinstance(part.get("text"), str) and not part.get("thought"):
            texts.append(part["text"])
        else:
            others.append(part)
    return "".join(texts), others


def split_function_parts(parts: list[Any]) -> tuple[list[dict], list[dict], list[Any]]:
    """Non-text parts → (functionCall objects, functionResponse objects, everything else)."""
    calls: list[dict] = []
    responses: list[dict] = []
    others: list[Any] = []
    for part in parts:
        if isinstance(part, dict) and isinstance(part.get("functionCall"), dict):
            calls.append(part["functionCall"])
        elif isinstance(part, dict) and isinstance(part.get("functionResponse"), dict):
            responses.append(part["functionResponse"])
        else:
            others.append(part)
    return calls, responses, others


def response_fields(response: dict[str, Any]) -> dict[str, Any]:
    """`success`, `output`, `error` of a functionResponse (`response: {output}` or `{error}`)."""
    payload = response.get("response")
    if isinstance(payload, dict) and ("output" in payload or "error" in payload):
        error = payload.get("error")
        return {"success": error is None, "output": payload.get("output"), "error": error}
    return {"success": True, "output": payload, "error": None}


def message_text(rec: Line) -> tuple[str, list[Any]]:
    content = rec.content if rec.content else rec.parts
    return text_and_parts(raw_value(content))


def is_context_text(text: str) -> bool:
    return text.lstrip().startswith(CONTEXT_PREFIXES)


# --- tools -----------------------------------------------------------------------------------------
_TOOL_KINDS = {
    "run_shell_command": events.TOOL_SHELL,
    "shell": events.TOOL_SHELL,
    "read_file": events.TOOL_FILE_READ,
    "read_many_files": events.TOOL_FILE_READ,
    "write_file": events.TOOL_FILE_WRITE,
    "replace": events.TOOL_FILE_EDIT,
    "edit": events.TOOL_FILE_EDIT,
    "smart_edit": events.TOOL_FILE_EDIT,
    "glob": events.TOOL_SEARCH,
    "search_file_content": events.TOOL_SEARCH,
    "grep": events.TOOL_SEARCH,
    "grep_search": events.TOOL_SEARCH,
    "list_directory": events.TOOL_SEARCH,
    "ls": events.TOOL_SEARCH,
    "web_fetch": events.TOOL_WEB,
    "google_web_search": events.TOOL_WEB,
    "web_search": events.TOOL_WEB,
    "delegate_to_agent": events.TOOL_SUB_AGENT,
    "codebase_investigator": events.TOOL_SUB_AGENT,
}
TERMINAL_STATUSES = ("success", "error", "cancelled", "canceled", "errored", "failed")


def tool_kind(name: Any) -> str:
    if not isinstance(name, str):
        return events.TOOL_OTHER
    kind = _TOOL_KINDS.get(name)
    if kind:
        return kind
    if name.endswith("_agent") or name.startswith("agent_"):
        return events.TOOL_SUB_AGENT
    return events.TOOL_OTHER


def tool_is_finished(call: ToolCall) -> bool:
    if isinstance(call.status, str):
        return call.status.lower() in TERMINAL_STATUSES
    return bool(call.result) and bytes(call.result) != b"null"


def tool_result_fields(call: ToolCall) -> dict[str, Any]:
    """`success`, `output`, `error` (and extra non-text parts) of a finished tool call."""
    result = raw_value(call.result)
    output: Any = None
    error: Any = None
    extra: list[Any] = []
    for part in result if isinstance(result, list) else ([result] if result is not None else []):
        response = part.get("functionResponse") if isinstance(part, dict) else None
        if isinstance(response, dict):
            payload = response.get("response")
            if isinstance(payload, dict) and ("output" in payload or "error" in payload):
                if "output" in payload:
                    output = payload["output"] if output is None else f"{output}\n{payload['output']}"
                if "error" in payload:
                    error = payload["error"]
            else:
                output = payload if output is None else output
        else:
            extra.append(part)
    if output is None and call.resultDisplay:
        output = raw_value(call.resultDisplay)
    status = call.status.lower() if isinstance(call.status, str) else None
    success = status == "success" if status else error is None
    if not success and error is None:
        error = output if isinstance(output, str) and output else (status or "failed")
    fields: dict[str, Any] = {"success": success, "output": output, "error": error}
    if status:
        fields["status"] = status
    if extra:
        fields["parts"] = extra
    return fields


# --- usage -----------------------------------------------------------------------------------------
def usage_fields(tokens: Any, model: Any) -> dict[str, Any] | None:
    """Gemini `tokens{input, output, cached, thoughts, tool, total}` → usage fields.

    Gemini's `input` (promptTokenCount) includes the cached tokens; `input_tokens` here is the uncached
    part, `cache_read_tokens` the cached part (as other providers report them)."""
    if not isinstance(tokens, dict):
        return None
    def number(key: str) -> int:
        value = tokens.get(key)
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0
    prompt, cached = number("input"), number("cached")
    fields: dict[str, Any] = {
        "input_tokens": max(prompt - cached, 0),
        "output_tokens": number("output"),
        "cache_read_tokens": cached,
        "cache_creation_tokens": 0,
        "reasoning_tokens": number("thoughts"),
        "tool_tokens": number("tool"),
        "total_tokens": number("total"),
        "total_cost_usd": None,
    }
    if isinstance(model, str):
        fields["model"] = model
    return fields


def thought_fields(thought: Any) -> dict[str, Any] | None:
    if isinstance(thought, str):
        return {"content": thought} if thought else None
    if not isinstance(thought, dict):
        return None
    subject = thought.get("subject") if isinstance(thought.get("subject"), str) else None
    description = thought.get("description") if isinstance(thought.get("description"), str) else None
    content = description or subject
    if not content:
        return None
    fields: dict[str, Any] = {"content": content}
    if subject and description:
        fields["subject"] = subject
    if thought.get("timestamp"):
        fields["ts"] = thought["timestamp"]
    return fields


def whole_record(raw: bytes | msgspec.Raw | None) -> Any:
    """A record decoded whole (for provider_status)."""
    if not raw:
        return None
    try:
        return codec.loads(raw)
    except DECODE_ERRORS:
        return bytes(raw).decode("utf-8", errors="replace")
