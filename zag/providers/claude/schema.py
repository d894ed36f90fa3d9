"""Typed shapes of Claude Code transcript lines, decoding only the fields zag maps.

msgspec skips every field not declared here without building Python objects for it, and `Raw` fields
(tool inputs, tool results, structured `toolUseResult`) are kept as the exact JSON bytes they were: they
are passed through to the unified log without being decoded or re-encoded. The structs are not tracked
by the garbage collector (`gc=False`: decoded data holds no reference cycles), which makes the hundreds
of thousands decoded in a backfill cheaper to create and free. Fields whose JSON type
varies between CLI versions are typed loosely (`Any`, unions) so that schema drift does not turn a real
record into a parse warning.
"""

from __future__ import annotations

from typing import Any, Union

import msgspec

RAW_NONE = msgspec.Raw()  # an absent Raw field (len 0)

Number = Union[int, float]


class Usage(msgspec.Struct, omit_defaults=True, gc=False):
    input_tokens: Union[Number, None] = None
    cache_creation_input_tokens: Union[Number, None] = None
    cache_read_input_tokens: Union[Number, None] = None
    output_tokens: Union[Number, None] = None


class ImageSource(msgspec.Struct, gc=False):
    type: Union[str, None] = None
    media_type: Union[str, None] = None   # the base64 `data` itself is skipped


class Block(msgspec.Struct, gc=False):
    """One content block of a message (all block types share this loose shape)."""

    type: Union[str, None] = None
    text: Union[str, None] = None          # text
    thinking: Union[str, None] = None      # thinking
    data: msgspec.Raw = RAW_NONE           # redacted_thinking (opaque)
    id: Union[str, None] = None            # tool_use
    name: Union[str, None] = None          # tool_use
    input: msgspec.Raw = RAW_NONE          # tool_use (passed through)
    tool_use_id: Union[str, None] = None   # tool_result
    content: msgspec.Raw = RAW_NONE        # tool_result (string or blocks; passed through)
    is_error: Union[bool, None] = None     # tool_result
    source: Union[ImageSource, None] = None  # image


class Message(msgspec.Struct, gc=False):
    model: Union[str, None] = None   # (in the order of Claude's keys, as in `Record`)
    id: Union[str, None] = None
    role: Union[str, None] = None
    content: Union[str, list[Block], None] = None
    usage: Union[Usage, None] = None


class Origin(msgspec.Struct, gc=False):
    kind: Union[str, None] = None


class Attachment(msgspec.Struct, gc=False):
    type: Union[str, None] = None


class Record(msgspec.Struct, gc=False):
    """One transcript line (any `type`; unknown types keep only what is common).

    The fields are in the order Claude writes its keys: msgspec looks a key up from the field after
    the last one it matched, so that order finds each at the first try."""

    isSidechain: Union[bool, None] = None
    cwd: Union[str, None] = None
    type: Union[str, None] = None
    subtype: Union[str, None] = None
    message: Union[Message, None] = None
    isMeta: Union[bool, None] = None
    isCompactSummary: Union[bool, None] = None
    requestId: Union[str, None] = None
    isApiErrorMessage: Union[bool, None] = None
    error: Any = None                       # "rate_limit" on assistants, an object on system/api_error
    apiErrorStatus: Union[int, None] = None
    quotaLimits: msgspec.Raw = RAW_NONE
    uuid: Union[str, None] = None
    timestamp: Union[str, Number, None] = None
    toolUseResult: msgspec.Raw = RAW_NONE
    agentId: Union[str, None] = None
    costUSD: Union[Number, None] = None
    origin: Union[Origin, str, None] = None
    attachment: Union[Attachment, None] = None
    summary: Union[str, None] = None
    # legacy flat tool records (pre-1.0 drift: {"type":"tool_use","name","input"} / {"type":"tool_result","output"})
    name: Union[str, None] = None
    input: msgspec.Raw = RAW_NONE
    output: msgspec.Raw = RAW_NONE
    id: Union[str, None] = None
    tool_use_id: Union[str, None] = None
    is_error: Union[bool, None] = None
    # a record copied from another session by `/branch` or the SDK's fork (not by `--fork-session`)
    forkedFrom: msgspec.Raw = RAW_NONE
    snapshot: msgspec.Raw = RAW_NONE        # file-history-snapshot: `timestamp` is when it was taken


class ToolUseResultHead(msgspec.Struct, gc=False):
    """What zag reads of a structured `toolUseResult` (the rest stays raw)."""

    is_error: Union[bool, None] = None
    interrupted: Union[bool, None] = None
    agentId: Union[str, None] = None
    status: Union[str, None] = None


class QuotaLimits(msgspec.Struct, gc=False):
    status: Union[str, None] = None
    resetsAt: Union[Number, str, None] = None
    rateLimitType: Union[str, None] = None


class SubagentMeta(msgspec.Struct, gc=False):
    agentType: Union[str, None] = None
    description: Union[str, None] = None
    toolUseId: Union[str, None] = None
    spawnDepth: Union[int, None] = None


class PidRegistry(msgspec.Struct, gc=False):
    """`<config>/sessions/<pid>.json`, claude's own live-process registry (verified in 2.1.197)."""

    pid: Union[int, None] = None
    sessionId: Union[str, None] = None
    cwd: Union[str, None] = None
    startedAt: Union[Number, None] = None


record_decoder = msgspec.json.Decoder(Record)
tool_use_result_decoder = msgspec.json.Decoder(ToolUseResultHead)
quota_decoder = msgspec.json.Decoder(QuotaLimits)
subagent_meta_decoder = msgspec.json.Decoder(SubagentMeta)
pid_registry_decoder = msgspec.json.Decoder(PidRegistry)
any_decoder = msgspec.json.Decoder()  # `forkedFrom`, `snapshot`: read only when needed


# --- stream-json output (`-p --output-format stream-json --verbose`) -----------------------------
class RateLimitInfo(msgspec.Struct, gc=False):
    status: Union[str, None] = None
    resetsAt: Union[Number, str, None] = None
    rateLimitType: Union[str, None] = None


class StreamMessage(msgspec.Struct, gc=False):
    model: Union[str, None] = None
    content: Union[str, list[Block], None] = None


class StreamEvent(msgspec.Struct, gc=False):
    """One stream-json line, reduced to what identifies the session and a limit."""

    type: Union[str, None] = None
    subtype: Union[str, None] = None
    session_id: Union[str, None] = None
    rate_limit_info: Union[RateLimitInfo, None] = None
    message: Union[StreamMessage, None] = None
    error: Any = None
    is_api_error_message: Union[bool, None] = None
    isApiErrorMessage: Union[bool, None] = None
    api_error_status: Union[int, None] = None
    is_error: Union[bool, None] = None
    result: Any = None


stream_decoder = msgspec.json.Decoder(StreamEvent)
