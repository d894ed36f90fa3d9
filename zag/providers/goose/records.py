"""One goose message → unified event bodies (shared by the database, legacy JSONL and stream-json).

A goose message is `{id?, role, created, content: [MessageContent…], metadata?}`; each content item
is tagged by a camelCase `type`: `text`, `image`, `toolRequest`, `toolResponse`,
`toolConfirmationRequest`, `actionRequired`, `frontendToolRequest`, `thinking`, `redactedThinking`,
`systemNotification`, `error` (newest builds), plus legacy `reasoning`, `contextLengthExceeded`,
`summarizationRequested`, `conversationCompacted` and the 0.x Python shapes `Text`/`ToolUse`/`ToolResult`.

Adjacent text items become one `user_message`/`assistant_message`; tool requests and responses become
`tool_call`/`tool_result` (the result's tool name is remembered from its request); thinking becomes
`reasoning`; everything else is kept whole as `provider_status`. A message goose wrote to report a
provider error is a `provider_status` ("goose error"), never an assistant message, plus a
`LimitSignal` when the error is a usage limit (see `limits`).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from zag.logs import events
from zag.providers.base import Item, LimitSignal
from zag.providers.goose import limits
from zag.providers.goose.tools import tool_kind

PROVIDER = "goose"
# What decoding untrusted JSON may raise (msgspec: DecodeError is a ValueError; deep nesting: RecursionError).
JSON_ERRORS = (ValueError, TypeError, RecursionError)
TOOL_NAMES_KEPT = 256


class ToolNames:
    """tool id → name of requests still waiting for their result (bounded; JSON-able for cursors)."""

    def __init__(self, saved: Any = None, limit: int = TOOL_NAMES_KEPT) -> None:
        self._names: OrderedDict[str, str] = OrderedDict()
        self._limit = limit
        if isinstance(saved, dict):
            for tool_id, name in saved.items():
                self.remember(tool_id, name)

    def remember(self, tool_id: Any, name: Any) -> None:
        if isinstance(tool_id, str) and isinstance(name, str):
            self._names[tool_id] = name
            if len(self._names) > self._limit:
                self._names.popitem(last=False)

    def get(self, tool_id: Any) -> str | None:
        """The name of the request `tool_id` answers (forgotten once its result is seen)."""
        return self._names.pop(tool_id, None) if isinstance(tool_id, str) else None

    def dump(self) -> dict[str, str]:
        return dict(self._names)


def message_items(
    role: Any,
    content: list[Any],
    *,
    created: Any,
    message_id: Any,
    metadata: Any,
    session_id: str | None,
    tools: ToolNames,
    source: str = "provider_file",
) -> list[Item]:
    """The events (and limit signals) of one goose message whose content is already a list."""
    common: dict[str, Any] = {"ts": _epoch(created)}
    if session_id:
        common["provider_session_id"] = session_id
    if isinstance(message_id, str) and message_id:
        common["message_id"] = message_id
    visibility = _visibility(metadata)
    if visibility:
        common["visibility"] = visibility
    record = limits.error_record(role, content, metadata) if role == "assistant" else None
    if record is not None:
        return _error_items(record, common, session_id, source)
    if role not in ("user", "assistant"):
        data = {"role": role, "content": content, "metadata": metadata}
        return [{**events.provider_status(f"goose message with role {role!r}", data), **common}]
    mapper = _Mapper(role, common, _model(metadata), tools)
    for item in content:
        mapper.add(item)
    return mapper.finish()


class _Mapper:
    __slots__ = ("role", "common", "model", "tools", "out", "texts")

    def __init__(self, role: str, common: dict[str, Any], model: str | None, tools: ToolNames) -> None:
        self.role = role
        self.common = common
        self.model = model
        self.tools = tools
        self.out: list[Item] = []
        self.texts: list[str] = []

    def emit(self, body: dict[str, Any]) -> None:
        if self.texts:
            self.flush_text()
        body.update(self.common)
        self.out.append(body)

    def flush_text(self) -> None:
        if not self.texts:
            return
        text = self.texts[0] if len(self.texts) == 1 else "\n".join(self.texts)
        self.texts = []
        if self.role == "user":
            body = {"type": events.USER_MESSAGE, "content": text}
        else:
            body = {"type": events.ASSISTANT_MESSAGE, "content": text}
            if self.model:
                body["model"] = self.model
        body.update(self.common)
        self.out.append(body)

    def finish(self) -> list[Item]:
        self.flush_text()
        return self.out

    def add(self, item: Any) -> None:
        if not isinstance(item, dict):
            self.emit(events.provider_status("goose content item that is not an object", item))
            return
        kind = item.get("type")
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            self.emit(events.provider_status(f"goose content type {kind!r}", item))
        else:
            handler(self, item)

    # -- handlers ---------------------------------------------------------------------------------
    def text(self, item: dict[str, Any]) -> None:
        value = item.get("text")
        if isinstance(value, str):
            if value:
                self.texts.append(value)
        else:
            self.emit(events.provider_status("goose text item without text", item))

    def tool_request(self, item: dict[str, Any], *, frontend: bool = False) -> None:
        tool_id = item.get("id")
        call = item.get("toolCall")
        value = call.get("value") if isinstance(call, dict) else None
        if isinstance(call, dict) and call.get("status") == "success" and isinstance(value, dict):
            name, arguments = value.get("name"), value.get("arguments")
            self.tools.remember(tool_id, name)
            body = events.body(events.TOOL_CALL, tool_name=name, tool_kind=tool_kind(name, arguments),
                               tool_id=tool_id, input=arguments)
        else:
            error = call.get("error") if isinstance(call, dict) else None
            body = events.body(events.TOOL_CALL, tool_name=None, tool_kind=events.TOOL_OTHER,
                               tool_id=tool_id, input=None, error=error if error is not None else call)
        if frontend:
            body["frontend"] = True
        self.emit(body)

    def frontend_tool_request(self, item: dict[str, Any]) -> None:
        self.tool_request(item, frontend=True)

    def tool_response(self, item: dict[str, Any]) -> None:
        tool_id = item.get("id")
        success, output, error = _tool_result(item.get("toolResult"))
        self.emit({"type": events.TOOL_RESULT, "tool_id": tool_id, "tool_name": self.tools.get(tool_id),
                   "success": success, "output": output, "error": error})

    def thinking(self, item: dict[str, Any]) -> None:
        value = item.get("thinking", item.get("text"))
        if isinstance(value, str):
            self.emit(events.body(events.REASONING, content=value))
        else:
            self.emit(events.provider_status("goose thinking item without text", item))

    def redacted_thinking(self, item: dict[str, Any]) -> None:
        self.emit(events.body(events.REASONING, content="", redacted=True, data=item.get("data")))

    def status(self, item: dict[str, Any]) -> None:
        self.emit(events.provider_status(_STATUS_MESSAGES.get(item.get("type"), "goose record"), item))

    def system_notification(self, item: dict[str, Any]) -> None:
        kind = item.get("notificationType")
        self.emit(events.provider_status(f"goose system notification: {kind}", item))

    # -- goose 0.x (Python exchange) shapes ----------------------------------------------------
    def python_tool_use(self, item: dict[str, Any]) -> None:
        tool_id, name, arguments = item.get("id"), item.get("name"), item.get("parameters")
        self.tools.remember(tool_id, name)
        self.emit(events.body(events.TOOL_CALL, tool_name=name, tool_kind=tool_kind(name, arguments),
                              tool_id=tool_id, input=arguments))

    def python_tool_result(self, item: dict[str, Any]) -> None:
        tool_id = item.get("tool_use_id")
        output = item.get("output")
        output = output if isinstance(output, str) else ("" if output is None else str(output))
        failed = bool(item.get("is_error"))
        self.emit(events.body(events.TOOL_RESULT, tool_id=tool_id, tool_name=self.tools.get(tool_id),
                              success=not failed, output=output, error=output if failed else None))


_STATUS_MESSAGES = {
    "image": "goose image",
    "toolConfirmationRequest": "goose tool confirmation request",
    "actionRequired": "goose action required",
    "error": "goose error",
    "contextLengthExceeded": "goose context length exceeded",
    "summarizationRequested": "goose summarization requested",
    "conversationCompacted": "goose conversation compacted",
}
_HANDLERS: dict[str, Any] = {
    "text": _Mapper.text,
    "Text": _Mapper.text,
    "toolRequest": _Mapper.tool_request,
    "frontendToolRequest": _Mapper.frontend_tool_request,
    "toolResponse": _Mapper.tool_response,
    "thinking": _Mapper.thinking,
    "reasoning": _Mapper.thinking,
    "redactedThinking": _Mapper.redacted_thinking,
    "systemNotification": _Mapper.system_notification,
    "ToolUse": _Mapper.python_tool_use,
    "ToolResult": _Mapper.python_tool_result,
    **{name: _Mapper.status for name in _STATUS_MESSAGES},
}


def _tool_result(result: Any) -> tuple[bool, str, str | None]:
    """(success, output, error) of a `toolResult` (`value` = CallToolResult, or older: a list)."""
    if not isinstance(result, dict):
        return False, "", f"unreadable tool result: {result!r}"[:2000]
    if result.get("status") == "error":
        error = result.get("error")
        return False, "", error if isinstance(error, str) else str(error)
    value = result.get("value")
    is_error = False
    if isinstance(value, dict):
        contents = value.get("content")
        is_error = bool(value.get("isError"))
    else:
        contents = value
    output = content_text(contents)
    if is_error:
        return False, output, output or "tool reported an error"
    return True, output, None


def content_text(contents: Any) -> str:
    """The text of MCP content items, preferring those meant for the assistant (goose's tools often
    return one copy for the assistant and one for the user)."""
    if isinstance(contents, str):
        return contents
    if not isinstance(contents, list):
        return "" if contents is None else str(contents)
    for_assistant = [item for item in contents if _audience_ok(item)]
    parts = [_item_text(item) for item in (for_assistant or contents)]
    return "\n".join(part for part in parts if part)


def _audience_ok(item: Any) -> bool:
    if not isinstance(item, dict):
        return True
    annotations = item.get("annotations")
    audience = annotations.get("audience") if isinstance(annotations, dict) else None
    return not isinstance(audience, list) or "assistant" in audience


def _item_text(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    kind = item.get("type")
    if kind == "text" and isinstance(item.get("text"), str):
        return item["text"]
    if kind == "image":
        return f"[image {item.get('mimeType', '')}]".replace(" ]", "]")
    if kind == "resource" and isinstance(item.get("resource"), dict):
        resource = item["resource"]
        text = resource.get("text")
        return text if isinstance(text, str) else f"[resource {resource.get('uri')}]"
    if kind == "resource_link":
        return f"[resource link {item.get('uri')}]"
    return f"[{kind} content]"


def _error_items(record: limits.ErrorRecord, common: dict[str, Any], session_id: str | None,
                 source: str) -> list[Item]:
    data = {"text": record.text, "error": record.error, "kind": record.kind}
    items: list[Item] = [{**events.provider_status("goose error", data), **common}]
    at = common["ts"] if isinstance(common["ts"], (int, float)) else time.time()
    limit = limits.record_limit(record, at)
    if limit is not None:
        items.append(LimitSignal(provider=PROVIDER, source=source, raw=record.text, structured=True,
                                 scope=limit.scope, reset_at=limit.reset_at, observed_at=at,
                                 provider_session_id=session_id, reset_relative=limit.reset_relative))
    return items


def _epoch(created: Any) -> float | None:
    if isinstance(created, bool) or not isinstance(created, (int, float)):
        return None
    value = float(created)
    if value > 1e11:
        value /= 1000.0
    return value if 0 < value < 1e10 else None


def _visibility(metadata: Any) -> dict[str, bool] | None:
    if not isinstance(metadata, dict):
        return None
    user, agent = metadata.get("userVisible", True), metadata.get("agentVisible", True)
    if user is False or agent is False:
        return {"user": bool(user), "agent": bool(agent)}
    return None


def _model(metadata: Any) -> str | None:
    inference = metadata.get("inference") if isinstance(metadata, dict) else None
    if isinstance(inference, dict):
        for key in ("resolvedModel", "requestedModel", "model"):
            if isinstance(inference.get(key), str):
                return inference[key]
    return None
