"""Codex rollout lines → unified events (shared by live tailing and backfill).

Every rollout line is an envelope `{timestamp, [ordinal], type, payload}`; older files have bare Responses
items or `{role, content}` lines (handled as "legacy"). `RecordMapper.map_line` turns one line into items
(event bodies and `LimitSignal`s) and never raises: a line it cannot decode or map is exactly one
`parse_warning` with the raw text, an unknown record type one `provider_status` with the record whole.

Choices (why):
- One message per turn message. Codex writes the same text twice: as `response_item` (model history) and
  as a UI event (`event_msg` `user_message`/`agent_message`/`agent_reasoning` before 0.149;
  `event_msg.item_completed` `UserMessage`/`AgentMessage`/`Reasoning` in the paginated era — the real 0.169
  writes both the response item and `item_completed`, in either order). Whichever copy comes first is
  emitted; the other copies of the same role+text are matched against it and dropped (a small bounded
  window, so the same words in a later turn are a new message). User-role `response_item`s that are
  harness context (`<environment_context>`, `# AGENTS.md instructions …`) and `developer` messages are not
  user messages: they become `provider_status` (kept).
- Tool calls: the `response_item` (`function_call`, `custom_tool_call`, `local_shell_call`,
  `web_search_call`, …) and its `*_output` carry the call; UI events (`exec_command_end`,
  `patch_apply_end`, `mcp_tool_call_end`, `item_completed` `CommandExecution`/`FileChange`/…) repeat it.
  A `tool_call` / `tool_result` is emitted once per `call_id`, from whichever record comes first.
- Usage: `token_count.info.total_token_usage` is cumulative; a `usage` event is the difference from the
  previous total (`last_token_usage` when there is no total or the total went backwards). A repeated
  total (0.169 repeats the last snapshot after a failed turn) is no usage. `input_tokens` of the unified
  event excludes cached input (Codex counts cached inside input); `cache_read_tokens` is the cached part.
  `token_usage_record` (0.16x) repeats the same numbers and is not counted again.
- Forked / sub-agent rollouts (first `session_meta` with `forked_from_id`, `parent_thread_id` or
  `source.subagent`) start with a copy of the parent's history written in one burst — except a paginated
  fork (`history_base.thread_id` = the parent; real 0.169 `exec fork`), which copies nothing and whose
  token totals go on from the parent's: its first usage is that token_count's `last_token_usage`. Until the first
  ≥ 1 s gap between records, copied items are marked `replayed: true`, their token counts only move the
  baseline (never counted twice) and their limit errors are not signals. Copied `session_meta` lines
  never replace the first one, which owns the identity.
- Skipped on purpose: `ghost_snapshot` (undo snapshots), `turn_context` and `task_started` (state only:
  model, cwd, turn), encrypted reasoning (`encrypted_content` is never text), an image generation's base64
  result (its size is kept).
"""

from __future__ import annotations

import re
import time
import zlib
from collections import OrderedDict
from datetime import datetime
from typing import Any

import msgspec

from zag.logs import events
from zag.providers.base import Item, LimitSignal
from zag.providers.codex import limits
from zag.providers.codex.tools import tool_kind
from zag.providers.tail import after_zeros, zeros_warning

PROVIDER = "codex"
REPLAY_GAP_SECS = 1.0
WINDOW = 256  # bounded dedupe windows (messages, tool ids)


class _Envelope(msgspec.Struct):
    type: Any = None
    payload: msgspec.Raw = msgspec.Raw()
    timestamp: Any = None


class _Meta(msgspec.Struct):
    """`session_meta` payload: only what zag uses (base instructions and tool schemas are skipped)."""

    id: Any = None
    session_id: Any = None
    timestamp: Any = None
    cwd: Any = None
    originator: Any = None
    cli_version: Any = None
    source: Any = None
    thread_source: Any = None
    model_provider: Any = None
    forked_from_id: Any = None
    parent_thread_id: Any = None
    history_mode: Any = None
    history_base: Any = None
    agent_nickname: Any = None
    agent_role: Any = None
    git: Any = None


class _TurnContext(msgspec.Struct):
    turn_id: Any = None
    cwd: Any = None
    model: Any = None
    collaboration_mode: Any = None


class _Item(msgspec.Struct):
    """A `response_item` payload with only the fields zag maps (encrypted reasoning, metadata and
    passthrough blobs are skipped, not materialised); `get` mirrors dict access for the mapping code."""

    type: Any = None
    role: Any = None
    content: Any = None
    id: Any = None
    name: Any = None
    namespace: Any = None
    arguments: Any = None
    input: Any = None
    call_id: Any = None
    output: Any = None
    summary: Any = None
    action: Any = None
    status: Any = None
    tools: Any = None
    revised_prompt: Any = None

    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, None)
        return default if value is None else value


class _Usage(msgspec.Struct):
    input_tokens: Any = 0
    cached_input_tokens: Any = 0
    cache_write_input_tokens: Any = 0
    output_tokens: Any = 0
    reasoning_output_tokens: Any = 0
    total_tokens: Any = 0


class _TokenInfo(msgspec.Struct):
    total_token_usage: _Usage | None = None
    last_token_usage: _Usage | None = None
    model: Any = None


class _TokenCount(msgspec.Struct):
    type: Any = None
    info: _TokenInfo | None = None
    rate_limits: Any = None
    has_rate_limits: bool = False


class _ItemEnvelope(msgspec.Struct):
    type: Any = None
    payload: _Item | None = None
    timestamp: Any = None


class _TokenCountEnvelope(msgspec.Struct):
    type: Any = None
    payload: _TokenCount | None = None
    timestamp: Any = None


_envelope_decoder = msgspec.json.Decoder(_Envelope)
_item_envelope_decoder = msgspec.json.Decoder(_ItemEnvelope)
_token_count_envelope_decoder = msgspec.json.Decoder(_TokenCountEnvelope)
_ITEM_MARK = b'"type":"response_item","payload":{"type":"'
_TOKEN_COUNT_MARK = b'"type":"event_msg","payload":{"type":"token_count"'
_item_decoder = msgspec.json.Decoder(_Item)
_token_count_decoder = msgspec.json.Decoder(_TokenCount)
_TOKEN_COUNT_PREFIX = b'{"type":"token_count"'
TYPED_ITEMS = frozenset({"message", "reasoning", "function_call", "function_call_output", "custom_tool_call",
                         "custom_tool_call_output", "local_shell_call", "web_search_call", "ghost_snapshot"})
_meta_decoder = msgspec.json.Decoder(_Meta)
_turn_decoder = msgspec.json.Decoder(_TurnContext)
_any_decoder = msgspec.json.Decoder()

RESPONSE_ITEM_TYPES = frozenset({
    "message", "reasoning", "function_call", "function_call_output", "custom_tool_call",
    "custom_tool_call_output", "local_shell_call", "web_search_call", "tool_search_call",
    "tool_search_output", "image_generation_call", "ghost_snapshot", "compaction", "agent_message",
    "additional_tools",
})
_CONTEXT_TAG = re.compile(r"^\s*<([A-Za-z_][\w\- ]*)>")
_CONTEXT_PREFIXES = ("# AGENTS.md instructions", "# agents.md instructions")
_EXIT_CODE = re.compile(r"(?:^|\n)\s*(?:Exit code:|Process exited with code)\s*(-?\d+)")


class MapError(ValueError):
    """A line whose JSON is valid but whose shape is not a Codex record (wrong types)."""


class RecordMapper:
    """Stateful mapping of one logical session's rollout lines (state is JSON-serialisable)."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        state = state or {}
        self.session_id: str | None = state.get("session_id")
        self.cwd: str | None = state.get("cwd")
        self.model: str | None = state.get("model")
        self.parent_id: str | None = state.get("parent_id")
        self.prev_total: list[int] | None = state.get("prev_total")
        self.replay: bool = bool(state.get("replay", False))
        self.total_inherited: bool = bool(state.get("total_inherited", False))
        self.last_ts: float | None = state.get("last_ts")
        self.rate_limits: Any = state.get("rate_limits")
        self.rate_limits_at: float = float(state.get("rate_limits_at") or 0.0)
        self.turn_signalled: bool = bool(state.get("turn_signalled", False))
        self._messages = _SeenWindow(state.get("messages"))
        self._tool_calls = _IdWindow(state.get("tool_calls"))
        self._tool_results = _IdWindow(state.get("tool_results"))
        self.skip_before: float | None = None  # live: records older than this only update state
        self._skipping = False
        self._ts_text: str | None = None
        self._ts: float | None = None
        self._stamp: Any = None
        self._ts_known = True

    def state(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id, "cwd": self.cwd, "model": self.model, "parent_id": self.parent_id,
            "prev_total": self.prev_total, "replay": self.replay, "total_inherited": self.total_inherited,
            "last_ts": self.last_ts,
            "rate_limits": self.rate_limits, "rate_limits_at": self.rate_limits_at,
            "turn_signalled": self.turn_signalled, "messages": self._messages.dump(),
            "tool_calls": self._tool_calls.dump(), "tool_results": self._tool_results.dump(),
        }

    # -- entry point ----------------------------------------------------------------------------
    def map_line(self, line: bytes) -> list[Item]:
        """Items for one complete line (without its newline). Never raises."""
        if not line.strip():
            return []
        try:
            if not line.isascii():
                line.decode("utf-8")  # msgspec does not check the bytes of fields it skips
            fast = self._fast_path(line)
            if fast is not None:
                return [] if self._skipping else fast
            envelope = _envelope_decoder.decode(line)
        except Exception as exc:  # noqa: BLE001 - invalid JSON/UTF-8, wrong shape, nesting too deep
            split = after_zeros(line)
            if split is not None:   # a crash's zeros, then the record codex appended after restarting
                return [zeros_warning("codex rollout", split[0]), *self.map_line(split[1])]
            return [events.parse_warning(f"codex: unreadable rollout line ({_short(exc)})", line)]
        try:
            items = self._map(envelope, line)
        except Exception as exc:  # noqa: BLE001 - wrong types inside a valid JSON line: one warning
            return [events.parse_warning(f"codex: rollout record not understood ({_short(exc)})", line)]
        if self._skipping:
            return []
        return items

    def _fast_path(self, line: bytes) -> list[Item] | None:
        """One typed decoding pass for the bulk of a rollout (response items, token counts): the
        envelope's type sits near the start of every line Codex writes. None: use the general path."""
        head = line[:120]
        if _ITEM_MARK in head:
            envelope = _item_envelope_decoder.decode(line)
            item = envelope.payload
            if envelope.type != "response_item" or item is None or item.type not in TYPED_ITEMS:
                return None
            self._set_time(envelope.timestamp)
            return self._response_item(item)
        if _TOKEN_COUNT_MARK in head:
            count_envelope = _token_count_envelope_decoder.decode(line)
            count = count_envelope.payload
            if count_envelope.type != "event_msg" or count is None:
                return None
            self._set_time(count_envelope.timestamp)
            return self._token_count(count.info, count.rate_limits, b'"rate_limits"' in line)
        return None

    def _map(self, envelope: _Envelope, line: bytes) -> list[Item]:
        self._set_time(envelope.timestamp)
        kind = envelope.type
        if not len(envelope.payload):
            return self._legacy(_any_decoder.decode(line))
        if not isinstance(kind, str):
            raise MapError("record type is not a string")
        if kind == "session_meta":
            return self._session_meta(_meta_decoder.decode(envelope.payload), envelope.payload)
        if kind == "turn_context":
            self._turn_context(_turn_decoder.decode(envelope.payload))
            return []
        if kind == "token_usage_record":
            return []
        if kind == "response_item":
            item = _item_decoder.decode(envelope.payload)
            if item.type in TYPED_ITEMS:
                return self._response_item(item)
            return self._response_item(_object(_any_decoder.decode(envelope.payload)))
        if kind == "event_msg" and memoryview(envelope.payload)[:len(_TOKEN_COUNT_PREFIX)] == _TOKEN_COUNT_PREFIX:
            count = _token_count_decoder.decode(envelope.payload)
            return self._token_count(count.info, count.rate_limits, b'"rate_limits"' in bytes(envelope.payload))
        payload = _any_decoder.decode(envelope.payload)
        if kind == "event_msg":
            return self._event(_object(payload))
        if kind == "compacted":
            return [self._status("compacted", _compacted(_object(payload)))]
        return [self._status(kind, payload)]

    # -- time, identity, state ------------------------------------------------------------------
    def _set_time(self, stamp: Any) -> None:
        # the epoch is only needed while replaying a fork's copied history or skipping pre-launch records
        # (and, lazily, for limit signals): parsing every timestamp would cost ~10 % of the read time
        self._stamp = stamp
        self._ts_known = False
        if isinstance(stamp, str) and len(stamp) == 24 and stamp[-1] == "Z" and stamp[10] == "T":
            self._ts_text = stamp
        else:
            self._ts_text = events.normalize_ts(stamp) if stamp is not None else None
        if not self.replay and self.skip_before is None:
            return
        moment = self._moment()
        if moment is not None:
            if self.replay and self.last_ts is not None and moment - self.last_ts >= REPLAY_GAP_SECS:
                self.replay = False
            self.last_ts = moment
        if self.skip_before is not None:
            if moment is not None:
                self._skipping = moment < self.skip_before
                if not self._skipping:
                    self.skip_before = None
            else:
                self._skipping = True

    def _moment(self) -> float | None:
        """Epoch seconds of the current record (parsed on first use)."""
        if not self._ts_known:
            self._ts = epoch_of(self._stamp)
            self._ts_known = True
        return self._ts

    def _session_meta(self, meta: _Meta, raw: msgspec.Raw) -> list[Item]:
        meta_id = _str(meta.id) or _str(meta.session_id)
        if self.session_id is None and meta_id:
            self.session_id = meta_id
            self.cwd = _str(meta.cwd) or self.cwd
            parent = _str(meta.forked_from_id) or _str(meta.parent_thread_id) or spawn_parent(meta.source)
            self.parent_id = parent
            # a paginated fork (0.146+) copies nothing: its `history_base` points into the parent's rollout.
            # Its cumulative token totals go on from the parent's, so its first usage is `last_token_usage`.
            referenced = parent is not None and _history_in(meta, parent)
            self.replay = parent is not None and not referenced
            self.total_inherited = referenced
            if self.replay:
                self.last_ts = self._moment()
            data = _meta_data(meta)
            data["base_instructions_chars"] = _instructions_chars(raw)
            body = self._status("session_meta", data)
            if self.cwd:
                body["cwd"] = self.cwd
            if parent:
                body["parent_session_id"] = parent
            return [body]
        if meta_id == self.session_id:  # a paginated continuation file restating the identity
            return [self._status("session_meta (continuation)", _meta_data(meta))]
        return [self._status("session_meta (copied from another session)", _meta_data(meta))]

    def _turn_context(self, context: _TurnContext) -> None:
        model = _str(context.model) or _collaboration_model(context.collaboration_mode)
        if model:
            self.model = model
        cwd = _str(context.cwd)
        if cwd and not self.cwd:
            self.cwd = cwd

    def _body(self, event_type: str, **fields: Any) -> dict[str, Any]:
        body = events.body(event_type, **fields)
        if self._ts_text:
            body["ts"] = self._ts_text
        if self.session_id:
            body["provider_session_id"] = self.session_id
        if self.replay:
            body["replayed"] = True
        return body

    def _status(self, message: str, data: Any) -> dict[str, Any]:
        body = events.provider_status(message, data)
        if self._ts_text:
            body["ts"] = self._ts_text
        if self.session_id:
            body["provider_session_id"] = self.session_id
        if self.replay:
            body["replayed"] = True
        return body

    # -- response items -------------------------------------------------------------------------
    def _response_item(self, item: dict[str, Any]) -> list[Item]:
        kind = item.get("type")
        if kind == "message":
            return self._response_message(item)
        if kind == "reasoning":
            parts = _texts(item.get("summary")) or _texts(item.get("content"))
            return [b for part in parts if (b := self._reasoning(part, "response"))]
        if kind in ("function_call", "custom_tool_call"):
            name = _str(item.get("name")) or "unknown"
            namespace = _str(item.get("namespace"))
            raw_input = item.get("arguments") if kind == "function_call" else item.get("input")
            call_id = _str(item.get("call_id")) or _str(item.get("id"))
            extra = {"namespace": namespace} if namespace else {}
            return self._tool_call(call_id, name, tool_kind(name, namespace), _maybe_json(raw_input), **extra)
        if kind in ("function_call_output", "custom_tool_call_output"):
            call_id = _str(item.get("call_id")) or _str(item.get("id"))
            output, success = _tool_output(item.get("output"))
            return self._tool_result(call_id, success, output)
        if kind == "local_shell_call":
            call_id = _str(item.get("call_id")) or _str(item.get("id"))
            return self._tool_call(call_id, "local_shell", events.TOOL_SHELL, item.get("action"))
        if kind == "web_search_call":
            call_id = _str(item.get("id")) or _str(item.get("call_id"))
            return self._tool_call(call_id, "web_search", events.TOOL_WEB, item.get("action"))
        if kind == "tool_search_call":
            call_id = _str(item.get("call_id")) or _str(item.get("id"))
            return self._tool_call(call_id, "tool_search", events.TOOL_OTHER, item.get("arguments"))
        if kind == "tool_search_output":
            call_id = _str(item.get("call_id")) or _str(item.get("id"))
            tools = item.get("tools")
            return self._tool_result(call_id, item.get("status") != "failed", {"tools": tools})
        if kind == "image_generation_call":
            call_id = _str(item.get("id")) or _str(item.get("call_id"))
            return self._tool_call(call_id, "image_generation", events.TOOL_OTHER,
                                   {"revised_prompt": item.get("revised_prompt"), "status": item.get("status")})
        if kind == "ghost_snapshot":
            return []
        if kind == "additional_tools":
            return [self._status("additional_tools", {"tools": _tool_names(item.get("tools"))})]
        return [self._status(f"response_item {kind}", item)]

    def _response_message(self, item: dict[str, Any]) -> list[Item]:
        role = _str(item.get("role")) or "unknown"
        text, images = _content_text(item.get("content"))
        message_id = _str(item.get("id"))
        if role == "assistant":
            return self._message(events.ASSISTANT_MESSAGE, text, "response", message_id, images)
        if role == "user":
            if _is_context(text):
                return [self._status("context", {"role": role, "text": text})]
            return self._message(events.USER_MESSAGE, text, "response", message_id, images)
        return [self._status(f"{role} message", {"role": role, "text": text, "id": message_id})]

    # -- UI events ------------------------------------------------------------------------------
    def _event(self, event: dict[str, Any]) -> list[Item]:
        kind = event.get("type")
        handler = _EVENT_HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is not None:
            return handler(self, event)
        if isinstance(kind, str) and kind.endswith("_end") and self._tool_calls.has(_call_id(event)):
            return []  # the UI echo of a call the response items already carry
        return [self._status(f"event {kind}", event)]

    def _ev_user_message(self, event: dict[str, Any]) -> list[Item]:
        images = _count(event.get("images")) + _count(event.get("local_images"))
        return self._message(events.USER_MESSAGE, _str(event.get("message")) or "", "event", None, images)

    def _ev_agent_message(self, event: dict[str, Any]) -> list[Item]:
        return self._message(events.ASSISTANT_MESSAGE, _str(event.get("message")) or "", "event", None, 0)

    def _ev_reasoning(self, event: dict[str, Any]) -> list[Item]:
        body = self._reasoning(_str(event.get("text")) or "", "event")
        return [body] if body else []

    def _ev_token_count(self, event: dict[str, Any]) -> list[Item]:
        """A token_count that did not come through the typed fast path (unusual key order)."""
        count = msgspec.convert(event, _TokenCount, strict=False)
        return self._token_count(count.info, count.rate_limits, "rate_limits" in event)

    def _token_count(self, info: _TokenInfo | None, rate_limits: Any, has_rate_limits: bool) -> list[Item]:
        if has_rate_limits and rate_limits is not None:
            self.rate_limits = rate_limits
            moment = self._moment()
            self.rate_limits_at = moment if moment is not None else time.time()
        if info is None:
            return []
        model = _str(info.model)
        if model:
            self.model = model
        delta = self._usage_delta(_usage_vector(info.total_token_usage), _usage_vector(info.last_token_usage))
        if delta is None or self.replay or not any(delta):
            return []
        input_tokens, cached, cache_write, output, reasoning, total = delta
        return [self._body(
            events.USAGE, input_tokens=max(input_tokens - cached, 0), output_tokens=output,
            cache_read_tokens=cached, cache_creation_tokens=cache_write,
            reasoning_output_tokens=reasoning, total_tokens=total, model=self.model,
        )]

    def _usage_delta(self, total: list[int] | None, last: list[int] | None) -> list[int] | None:
        if total is None:
            return last
        previous, self.prev_total = self.prev_total, total
        if previous is None:
            return last if self.total_inherited and last is not None else total
        delta = [now - before for now, before in zip(total, previous)]
        if any(value < 0 for value in delta):
            return last if last is not None else total
        return delta

    def _ev_task_started(self, event: dict[str, Any]) -> list[Item]:
        self.turn_signalled = False
        return []

    def _ev_task_complete(self, event: dict[str, Any]) -> list[Item]:
        error = event.get("error")
        if not isinstance(error, dict):
            return []
        message = _str(error.get("message")) or ""
        items: list[Item] = [self._status(f"turn failed: {message}", error)]
        signal = self._limit_signal(message, error.get("codex_error_info"))
        if signal is not None:
            items.append(signal)
        return items

    def _ev_error(self, event: dict[str, Any]) -> list[Item]:
        message = _str(event.get("message")) or ""
        items: list[Item] = [self._status(f"error: {message}", event)]
        signal = self._limit_signal(message, event.get("codex_error_info"))
        if signal is not None:
            items.append(signal)
        return items

    def _limit_signal(self, message: str, info: Any) -> LimitSignal | None:
        moment = self._moment()
        now = moment if moment is not None else time.time()
        reading = limits.read_message(message, now)
        if not limits.is_limit_code(info) and reading is None:
            return None
        if self.replay or self.turn_signalled:
            return None
        self.turn_signalled = True
        text_reset = reading.reset if reading else None
        scope, reset = limits.scope_and_reset_of(self.rate_limits, self.rate_limits_at or now, text_reset)
        return LimitSignal(
            provider=PROVIDER, source=events.SOURCE_PROVIDER_FILE, raw=message or str(info), structured=True,
            scope=scope, reset_at=reset.at if reset else None, observed_at=time.time(),
            provider_session_id=self.session_id, reset_relative=bool(reset and reset.relative),
        )

    def _ev_thread_settings(self, event: dict[str, Any]) -> list[Item]:
        settings = event.get("thread_settings")
        if isinstance(settings, dict) and _str(settings.get("model")):
            self.model = settings["model"]
        return [self._status("thread_settings_applied", event)]

    def _ev_exec_end(self, event: dict[str, Any]) -> list[Item]:
        call_id = _call_id(event)
        source = _str(event.get("source")) or ""
        name = "user_shell" if "user" in source else "exec_command"
        exit_code = event.get("exit_code")
        output = _first_str(event, "aggregated_output", "formatted_output", "stdout")
        success = exit_code == 0 if isinstance(exit_code, int) else event.get("status") != "failed"
        error = None if success else (_str(event.get("stderr")) or f"exit code {exit_code}")
        items = self._tool_call(call_id, name, events.TOOL_SHELL,
                                {"command": event.get("command"), "cwd": event.get("cwd")})
        return items + self._tool_result(call_id, success, output, error=error, exit_code=exit_code)

    def _ev_patch_end(self, event: dict[str, Any]) -> list[Item]:
        call_id = _call_id(event)
        changes = event.get("changes")
        files = list(changes) if isinstance(changes, dict) else changes
        success = bool(event.get("success", event.get("status") == "completed"))
        output = _first_str(event, "stdout") or ""
        items = self._tool_call(call_id, "apply_patch", events.TOOL_FILE_EDIT, {"files": files})
        return items + self._tool_result(call_id, success, output,
                                         error=None if success else _str(event.get("stderr")))

    def _ev_mcp_end(self, event: dict[str, Any]) -> list[Item]:
        call_id = _call_id(event)
        invocation = event.get("invocation") if isinstance(event.get("invocation"), dict) else {}
        name = f"mcp__{invocation.get('server')}__{invocation.get('tool')}"
        result = event.get("result")
        success, output, error = True, result, None
        if isinstance(result, dict) and "Err" in result:
            success, output, error = False, None, _str(result.get("Err")) or "error"
        elif isinstance(result, dict) and isinstance(result.get("Ok"), dict):
            output = result["Ok"]
            success = not output.get("isError", False)
        items = self._tool_call(call_id, name, events.TOOL_OTHER, invocation.get("arguments"))
        return items + self._tool_result(call_id, success, output, error=error)

    def _ev_web_search_end(self, event: dict[str, Any]) -> list[Item]:
        call_id = _call_id(event)
        items = self._tool_call(call_id, "web_search", events.TOOL_WEB,
                                event.get("action") or {"query": event.get("query")})
        output = {"query": event.get("query"), "results": event.get("results")}
        return items + self._tool_result(call_id, True, output)

    def _ev_view_image(self, event: dict[str, Any]) -> list[Item]:
        return self._tool_call(_call_id(event), "view_image", events.TOOL_FILE_READ, {"path": event.get("path")})

    def _ev_dynamic_request(self, event: dict[str, Any]) -> list[Item]:
        name = _str(event.get("tool")) or "dynamic_tool"
        return self._tool_call(_call_id(event), name, tool_kind(name), event.get("arguments"),
                               namespace=event.get("namespace"))

    def _ev_dynamic_response(self, event: dict[str, Any]) -> list[Item]:
        success = bool(event.get("success"))
        return self._tool_result(_call_id(event), success, event.get("content_items"),
                                 error=None if success else (_str(event.get("error")) or "failed"))

    def _ev_image_end(self, event: dict[str, Any]) -> list[Item]:
        call_id = _call_id(event)
        result = event.get("result")
        output = {key: value for key, value in event.items() if key not in ("type", "result")}
        if isinstance(result, str):
            output["result_chars"] = len(result)
        items = self._tool_call(call_id, "image_generation", events.TOOL_OTHER,
                                {"revised_prompt": event.get("revised_prompt")})
        return items + self._tool_result(call_id, event.get("status") not in ("failed", "error"), output)

    def _ev_item_completed(self, event: dict[str, Any]) -> list[Item]:
        item = event.get("item")
        if not isinstance(item, dict):
            raise MapError("item_completed without an item object")
        kind = item.get("type")
        item_id = _str(item.get("id"))
        if kind == "UserMessage":
            text, images = _content_text(item.get("content"))
            return self._message(events.USER_MESSAGE, text, "item", None, images)
        if kind == "AgentMessage":
            text, images = _content_text(item.get("content"))
            return self._message(events.ASSISTANT_MESSAGE, text, "item", item_id, images)
        if kind == "Reasoning":
            parts = _texts(item.get("summary_text")) or _texts(item.get("raw_content"))
            return [b for part in parts if (b := self._reasoning(part, "item"))]
        if kind == "CommandExecution":
            exit_code = item.get("exit_code")
            success = exit_code == 0 if isinstance(exit_code, int) else item.get("status") != "failed"
            output = _first_str(item, "aggregated_output", "formatted_output", "stdout")
            calls = self._tool_call(item_id, "exec_command", events.TOOL_SHELL,
                                    {"command": item.get("command"), "cwd": item.get("cwd")})
            return calls + self._tool_result(item_id, success, output, exit_code=exit_code,
                                             error=None if success else (_str(item.get("stderr")) or "failed"))
        if kind == "FileChange":
            changes = item.get("changes")
            success = item.get("status") not in ("failed", "declined")
            calls = self._tool_call(item_id, "apply_patch", events.TOOL_FILE_EDIT,
                                    {"files": list(changes) if isinstance(changes, dict) else changes})
            return calls + self._tool_result(item_id, success, _first_str(item, "stdout"),
                                             error=None if success else _str(item.get("stderr")))
        if kind == "McpToolCall":
            result = item.get("result")
            success = not (isinstance(result, dict) and result.get("isError")) and item.get("status") != "failed"
            name = f"mcp__{item.get('server')}__{item.get('tool')}"
            calls = self._tool_call(item_id, name, events.TOOL_OTHER, item.get("arguments"))
            return calls + self._tool_result(item_id, success, result,
                                             error=None if success else _str(item.get("error")) or "failed")
        if kind in ("WebSearch", "Extension") and "action" in item:
            calls = self._tool_call(item_id, "web_search", events.TOOL_WEB, item.get("action"))
            return calls + self._tool_result(item_id, True, {"query": item.get("query"),
                                                             "results": item.get("results")})
        if item_id and self._tool_calls.has(item_id):
            return []
        return [self._status(f"item_completed {kind}", item)]

    # -- messages, reasoning, tools (dedupe) ----------------------------------------------------
    def _message(self, event_type: str, text: str, source: str, message_id: str | None,
                 images: int) -> list[Item]:
        if not text and not images:
            return []
        if self._messages.seen_elsewhere((event_type, text), source):
            return []
        fields: dict[str, Any] = {"content": text}
        if message_id:
            fields["message_id"] = message_id
        if images:
            fields["images"] = images
        if event_type == events.ASSISTANT_MESSAGE and self.model:
            fields["model"] = self.model
        return [self._body(event_type, **fields)]

    def _reasoning(self, text: str, source: str) -> dict[str, Any] | None:
        if not text.strip() or self._messages.seen_elsewhere((events.REASONING, text), source):
            return None
        return self._body(events.REASONING, content=text)

    def _tool_call(self, call_id: str | None, name: str, kind: str, tool_input: Any,
                   **extra: Any) -> list[Item]:
        if call_id and not self._tool_calls.add(call_id, name):
            return []
        return [self._body(events.TOOL_CALL, tool_name=name, tool_kind=kind, tool_id=call_id,
                           input=tool_input, **{k: v for k, v in extra.items() if v})]

    def _tool_result(self, call_id: str | None, success: bool, output: Any, *, error: str | None = None,
                     **extra: Any) -> list[Item]:
        if call_id and not self._tool_results.add(call_id, ""):
            return []
        name = self._tool_calls.get(call_id) if call_id else None
        fields: dict[str, Any] = {"tool_id": call_id, "success": bool(success), "output": output,
                                  "error": error}
        if name:
            fields["tool_name"] = name
        fields.update({k: v for k, v in extra.items() if v is not None})
        return [self._body(events.TOOL_RESULT, **fields)]

    # -- pre-envelope lines ---------------------------------------------------------------------
    def _legacy(self, record: Any) -> list[Item]:
        record = _object(record)
        self._set_time(record.get("timestamp") or record.get("created_at"))
        kind = record.get("type")
        if isinstance(kind, str) and kind in RESPONSE_ITEM_TYPES and not isinstance(record.get("function"), dict):
            return self._response_item(record)
        if kind is None and "role" in record:
            content = record.get("content", record.get("message"))
            return self._response_item({"type": "message", "role": record.get("role"), "content": content})
        if kind == "function_call" or kind == "tool_call":
            function = record.get("function") if isinstance(record.get("function"), dict) else {}
            name = _str(function.get("name")) or _str(record.get("name")) or "unknown"
            return self._tool_call(_str(record.get("call_id")), name, tool_kind(name), record.get("arguments"))
        if kind in ("function_result", "tool_result"):
            name = _str(record.get("name"))
            bodies = self._tool_result(_str(record.get("call_id")), True, record.get("result"))
            for body in bodies:
                if name:
                    body.setdefault("tool_name", name)
            return bodies
        if kind is None and "id" in record and self.session_id is None:
            self.session_id = _str(record.get("id"))
            return [self._status("session header (legacy)", record)]
        return [self._status(f"legacy record {kind or record.get('record_type')}", record)]


_EVENT_HANDLERS = {
    "user_message": RecordMapper._ev_user_message,
    "agent_message": RecordMapper._ev_agent_message,
    "agent_reasoning": RecordMapper._ev_reasoning,
    "agent_reasoning_raw_content": RecordMapper._ev_reasoning,
    "token_count": RecordMapper._ev_token_count,
    "task_started": RecordMapper._ev_task_started,
    "task_complete": RecordMapper._ev_task_complete,
    "error": RecordMapper._ev_error,
    "thread_settings_applied": RecordMapper._ev_thread_settings,
    "exec_command_end": RecordMapper._ev_exec_end,
    "patch_apply_end": RecordMapper._ev_patch_end,
    "mcp_tool_call_end": RecordMapper._ev_mcp_end,
    "web_search_end": RecordMapper._ev_web_search_end,
    "view_image_tool_call": RecordMapper._ev_view_image,
    "dynamic_tool_call_request": RecordMapper._ev_dynamic_request,
    "dynamic_tool_call_response": RecordMapper._ev_dynamic_response,
    "image_generation_end": RecordMapper._ev_image_end,
    "item_completed": RecordMapper._ev_item_completed,
}


# --- bounded dedupe windows ------------------------------------------------------------------
class _SeenWindow:
    """Recently emitted texts and which sources (response/event/item) have shown each one.

    A text arriving from a source that has not shown an equal emitted text yet is that text's copy
    (dropped); otherwise it is new. Keys are crc32+length, so the state stays small and serialisable."""

    def __init__(self, dumped: Any = None) -> None:
        self._order: list[list[Any]] = []           # [key, sources] oldest first
        self._by_key: dict[str, list[list[Any]]] = {}
        if isinstance(dumped, list):
            for entry in dumped:
                if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], list):
                    self._append([str(entry[0]), [str(s) for s in entry[1]]])

    @staticmethod
    def _key(kind_text: tuple[str, str]) -> str:
        kind, text = kind_text
        data = text.strip().encode("utf-8", "surrogatepass")
        return f"{kind}:{zlib.crc32(data):08x}:{len(data)}"

    def _append(self, entry: list[Any]) -> None:
        self._order.append(entry)
        self._by_key.setdefault(entry[0], []).append(entry)
        if len(self._order) > WINDOW:
            old = self._order.pop(0)
            same = self._by_key.get(old[0])
            if same:
                same.remove(old)
                if not same:
                    del self._by_key[old[0]]

    def seen_elsewhere(self, kind_text: tuple[str, str], source: str) -> bool:
        key = self._key(kind_text)
        for entry in self._by_key.get(key, ()):
            if source not in entry[1]:
                entry[1].append(source)
                return True
        self._append([key, [source]])
        return False

    def dump(self) -> list[list[Any]]:
        return self._order[-64:]


class _IdWindow:
    """Recently seen tool ids (and their tool names), bounded."""

    def __init__(self, dumped: Any = None) -> None:
        self._ids: OrderedDict[str, str] = OrderedDict()
        if isinstance(dumped, dict):
            for key, value in dumped.items():
                self._ids[str(key)] = str(value)

    def add(self, call_id: str, name: str) -> bool:
        if call_id in self._ids:
            return False
        self._ids[call_id] = name
        if len(self._ids) > WINDOW:
            self._ids.popitem(last=False)
        return True

    def has(self, call_id: str | None) -> bool:
        return bool(call_id) and call_id in self._ids

    def get(self, call_id: str) -> str | None:
        return self._ids.get(call_id) or None

    def dump(self) -> dict[str, str]:
        return dict(list(self._ids.items())[-64:])


# --- small helpers ---------------------------------------------------------------------------
def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "…"


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MapError(f"expected an object, got {type(value).__name__}")
    return value


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _first_str(record: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = record.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _call_id(event: dict[str, Any]) -> str | None:
    return _str(event.get("call_id")) or _str(event.get("callId")) or _str(event.get("id"))


def _count(value: Any) -> int:
    return len(value) if isinstance(value, list) else 0


def epoch_of(stamp: Any) -> float | None:
    if isinstance(stamp, str) and len(stamp) >= 19 and stamp[4] == "-":
        try:
            return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    if isinstance(stamp, (int, float)) and not isinstance(stamp, bool) and stamp > 0:
        return stamp / 1000.0 if stamp > 1e11 else float(stamp)
    return None


def _texts(parts: Any) -> list[str]:
    """Texts of a list of `{type, text}` parts (or plain strings)."""
    if isinstance(parts, str):
        return [parts] if parts else []
    if not isinstance(parts, list):
        return []
    found = []
    for part in parts:
        if isinstance(part, str) and part:
            found.append(part)
        elif isinstance(part, dict) and isinstance(part.get("text"), str) and part["text"]:
            found.append(part["text"])
    return found


def _content_text(content: Any) -> tuple[str, int]:
    """(text, number of images) of message content: a string or a list of typed parts."""
    if isinstance(content, str):
        return content, 0
    if not isinstance(content, list):
        return "", 0
    texts, images = [], 0
    for part in content:
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, dict):
            continue
        kind = str(part.get("type", "")).lower()
        if "image" in kind:
            images += 1
        elif isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part.get("refusal"), str):
            texts.append(part["refusal"])
    return "\n".join(texts), images


def _is_context(text: str) -> bool:
    """Harness-injected user-role items (environment, AGENTS.md, instructions), not typed by the user."""
    if text.startswith(_CONTEXT_PREFIXES):
        return True
    match = _CONTEXT_TAG.match(text)
    if not match:
        return False
    return text.rstrip().endswith(f"</{match.group(1)}>")


def _maybe_json(value: Any) -> Any:
    """Tool arguments are a JSON string in function calls; decode them when they are JSON."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return _any_decoder.decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return value
    return value


def _tool_output(output: Any) -> tuple[Any, bool]:
    """(output, success) of a function/custom tool output in its many shapes."""
    success = True
    if isinstance(output, dict):
        if "success" in output and isinstance(output["success"], bool):
            success = output["success"]
        if isinstance(output.get("content"), (str, list)):
            output = output["content"]
        elif isinstance(output.get("text"), str):
            output = output["text"]
    if isinstance(output, list):
        text, images = _content_text(output)
        output = text if not images else {"text": text, "images": images}
    if isinstance(output, str):
        if output.startswith('{"output"'):
            decoded = _maybe_json(output)
            if isinstance(decoded, dict) and "output" in decoded:
                metadata = decoded.get("metadata")
                if isinstance(metadata, dict) and isinstance(metadata.get("exit_code"), int):
                    success = success and metadata["exit_code"] == 0
                return decoded.get("output"), success
        match = _EXIT_CODE.search(output[:600])
        if match:
            success = success and int(match.group(1)) == 0
    return output, success


def _usage_vector(usage: _Usage | None) -> list[int] | None:
    if usage is None:
        return None
    return [_int(usage.input_tokens), _int(usage.cached_input_tokens), _int(usage.cache_write_input_tokens),
            _int(usage.output_tokens), _int(usage.reasoning_output_tokens), _int(usage.total_tokens)]


def _int(value: Any) -> int:
    return value if type(value) is int else (int(value) if type(value) is float else 0)


def _collaboration_model(mode: Any) -> str | None:
    if not isinstance(mode, dict):
        return None
    settings = mode.get("settings")
    if isinstance(settings, dict) and _str(settings.get("model")):
        return settings["model"]
    return _str(mode.get("model"))


def spawn_parent(source: Any) -> str | None:
    """`source.subagent.thread_spawn.parent_thread_id` of a sub-agent rollout."""
    if not isinstance(source, dict):
        return None
    subagent = source.get("subagent")
    if isinstance(subagent, dict):
        spawn = subagent.get("thread_spawn")
        if isinstance(spawn, dict):
            return _str(spawn.get("parent_thread_id"))
    return None


def _history_in(meta: _Meta, parent: str) -> bool:
    """Whether the rollout refers to its parent's history (`history_base.thread_id`) instead of copying it."""
    base = meta.history_base
    return isinstance(base, dict) and base.get("thread_id") == parent


def _meta_data(meta: _Meta) -> dict[str, Any]:
    fields = ("id", "session_id", "timestamp", "cwd", "originator", "cli_version", "source", "thread_source",
              "model_provider", "forked_from_id", "parent_thread_id", "history_mode", "history_base",
              "agent_nickname", "agent_role", "git")
    return {name: getattr(meta, name) for name in fields if getattr(meta, name) is not None}


class _Instructions(msgspec.Struct):
    base_instructions: Any = None


_instructions_decoder = msgspec.json.Decoder(_Instructions)


def _instructions_chars(raw: msgspec.Raw) -> int:
    try:
        value = _instructions_decoder.decode(raw).base_instructions
    except (msgspec.DecodeError, msgspec.ValidationError):
        return 0
    if isinstance(value, dict):
        value = value.get("text")
    return len(value) if isinstance(value, str) else 0


def _compacted(payload: dict[str, Any]) -> dict[str, Any]:
    """A compaction record without its replacement history (a copy of messages already logged)."""
    data = {key: value for key, value in payload.items() if key != "replacement_history"}
    history = payload.get("replacement_history")
    if isinstance(history, list):
        data["replacement_history_items"] = len(history)
    return data


def _tool_names(tools: Any) -> list[Any]:
    if not isinstance(tools, list):
        return []
    names = []
    for tool in tools:
        if isinstance(tool, dict):
            nested = tool.get("tools")
            names.append({"name": tool.get("name"), "tools": _tool_names(nested)} if nested else tool.get("name"))
    return names
