"""Claude Code transcript lines → unified event bodies (and limit signals).

One `RecordMapper` per provider session (its main transcript and its subagent transcripts share it, so
usage replayed in a subagent file is not counted twice). Live tailing and backfill both use it.

Mapping:
- `user`: text/image blocks → one `user_message` (flags `is_meta`, `is_compact_summary`, `origin`); the
  TUI's slash-command records (`<command-name>/exit</command-name>…`, `<local-command-stdout>…`) are
  the CLI's bookkeeping, not a turn: `is_meta` plus `local_command` (the command) or
  `local_command_output`;
  `tool_result` blocks → `tool_result` (success from `is_error`, else from `toolUseResult`), the result
  content and the structured `toolUseResult` (`details`) passed through raw.
- `assistant`: `text` → `assistant_message`, `thinking`/`redacted_thinking` → `reasoning`, `tool_use` →
  `tool_call`; one API response written over several lines (same `message.id` + `requestId`) gives each
  block once and its `usage` once (the first line's, as ccusage counts it), and a sidechain line that
  replays an already counted `message.id` under another `requestId` adds no usage; API-error records add
  `api_error` and, when they are a usage limit, a structured `LimitSignal`.
- usage-only lines without `type` (1.0.x / ccusage fixtures) → `usage` (with legacy `costUSD`).
- legacy flat `tool_use` / `tool_result` lines → `tool_call` / `tool_result`.
- everything else (`system/*` incl. `compact_boundary` and `api_error`, `summary`, `attachment`,
  `progress`, `queue-operation`, `file-history-snapshot`, the metadata singletons, unknown types) →
  `provider_status` with the whole line kept as `data`.
- a line that is not a JSON object of the expected shape, or not UTF-8 → exactly one `parse_warning`.
- history a fork copied from its parent session (records with `forkedFrom` — `/branch`, the SDK's fork —
  or, read from the transcript's start, the burst of records older than the run's own first stamps —
  `--fork-session`, which keeps each copy's uuid, timestamp, message id and requestId): not logged again
  (the parent's session holds it) and its usage not counted again; each run of copies is one
  `provider_status` note (`data.kind: "copied_history"`). The records still prime the state.
"""

from __future__ import annotations

import re
import time
from hashlib import blake2b
from collections import deque
from collections.abc import Iterable
from typing import Any

import msgspec

from zag.logs import events
from zag.providers.base import Item
from zag.providers.claude import limits, schema
from zag.providers.claude.tools import tool_kind
from zag.providers.tail import after_zeros, zeros_warning

SYNTHETIC_MODEL = "<synthetic>"
_USAGE_KEYS_KEPT = 256      # (message.id, requestId) pairs remembered for usage dedupe
_TOOL_NAMES_KEPT = 4096     # tool_use id → name, to name tool results
_MESSAGES_KEPT = 64         # message ids whose emitted blocks are remembered
_BLOCK_MESSAGES_IN_STATE = 4  # the last messages' block keys kept in the cursor (a response over two reads)
_TOOLS_IN_STATE = 32       # recent tool_use ids kept in the cursor, to name results read by a later reader
_UUIDS_KEPT = 8192          # record uuids remembered, to skip records re-read after a file was replaced
_MARK_KEYS_MAX = 64         # (the reader keeps 64 uuids at a file's latest timestamp in its cursor)
COPY_SLACK_SECS = 0.5       # a copied record is older than the run's first stamps by more than this

# A \uD800-\uDFFF escape that is not part of a surrogate pair (JS can write those; msgspec refuses them).
_LONE_SURROGATE = re.compile(
    rb"(\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2})|(?<!\\)\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


ASSISTANT_MESSAGE, TOOL_CALL, REASONING = events.ASSISTANT_MESSAGE, events.TOOL_CALL, events.REASONING
TOOL_RESULT, USAGE = events.TOOL_RESULT, events.USAGE
_NO_USAGE = schema.Usage()
_DECODE = schema.record_decoder.decode


class _Recent:
    """A bounded map in two generations: cheap to fill, forgets the older half when full."""

    __slots__ = ("_new", "_old", "_cap")

    def __init__(self, cap: int) -> None:
        self._new: dict[Any, Any] = {}
        self._old: dict[Any, Any] = {}
        self._cap = cap

    def __contains__(self, key: Any) -> bool:
        return key in self._new or key in self._old

    def get(self, key: Any) -> Any:
        value = self._new.get(key)
        return self._old.get(key) if value is None else value

    def put(self, key: Any, value: Any) -> None:
        new = self._new
        new[key] = value
        if len(new) > self._cap:
            self._old = new
            self._new = {}

    def last(self, count: int) -> list[Any]:
        """The `count` most recently added keys, oldest first."""
        keys = list(self._new)[-count:]
        if len(keys) < count:
            keys = [key for key in list(self._old)[-(count - len(keys)):] if key not in self._new] + keys
        return keys


class RecordMapper:
    """Maps the lines of one provider session to event bodies; keeps small bounded state."""

    def __init__(self, provider_session_id: str, state: dict[str, Any] | None = None) -> None:
        self.sid = provider_session_id
        state = state or {}
        self._usage_seen = _Recent(_USAGE_KEYS_KEPT)
        # message ids whose usage was counted, for sidechain replays under a new requestId (see _usage)
        self._usage_ids = _Recent(_UUIDS_KEPT)
        for key in state.get("usage", ()):
            if _pair(key):
                self._usage_seen.put(tuple(key), True)
                self._usage_ids.put(key[0], True)
        self._tool_names = _Recent(_TOOL_NAMES_KEPT)
        self._recent_tools: deque[tuple[str, str | None]] = deque(maxlen=_TOOLS_IN_STATE)
        for pair in state.get("tools", ()):
            if _pair(pair) or (isinstance(pair, (list, tuple)) and len(pair) == 2 and isinstance(pair[0], str)
                               and pair[1] is None):
                self._tool_names.put(pair[0], pair[1])
                self._recent_tools.append((pair[0], pair[1]))
        self._message_blocks = _Recent(_MESSAGES_KEPT)
        for entry in state.get("blocks", ()):
            if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str) and isinstance(entry[1], list):
                keys = {tuple(key) for key in entry[1] if isinstance(key, list) and len(key) == 4}
                self._message_blocks.put(entry[0], keys)
        self._last_flat_tool: tuple[str | None, str | None] = (None, None)
        self._uuids = _Recent(_UUIDS_KEPT)
        head = state.get("head")
        # [latest stamp of the run's own lines, not-before] while the main transcript's head is read
        self._head: list[float | None] | None = (
            [_epoch_or_none(part) for part in head] if isinstance(head, list) and len(head) == 2 else None)
        copying = state.get("copying")  # while copies are read: their parent session ("" when unknown)
        self._copying: str | None = copying if isinstance(copying, str) else None
        self.skip_seen_records = False  # set by the reader after a file shrank or was replaced
        # Set by the reader around one file's read: `track` = [latest str timestamp, uuids at it] of that
        # file (kept in its cursor); `replay` = the mark before the file was read again from the start
        # (shrank or replaced): records up to it were imported by an earlier reader and are skipped.
        self.track: list[Any] | None = None
        self.replay: tuple[str, frozenset[str]] | None = None
        self.lines_done = 0             # see `map_lines`
        self._need_cwd = True
        self.last_ts: Any = state.get("last_ts")
        self._info: dict[str, Any] = {}   # cwd, model, first_model
        self._model: str | None = None
        self._first_ts: Any = None

    @property
    def info(self) -> dict[str, Any]:
        """What the lines read so far told about the session: cwd (the first), model (the latest real
        one), first_model, first_ts, last_ts."""
        return {**self._info, "first_ts": self._first_ts, "last_ts": self.last_ts}

    def state(self) -> dict[str, Any]:
        """What must survive in a cursor so that a later read does not count usage twice."""
        state = {"usage": [list(key) for key in self._usage_seen.last(64)], "last_ts": self.last_ts,
                 "tools": [list(pair) for pair in self._recent_tools],
                 "blocks": [[message_id, [list(key) for key in self._message_blocks.get(message_id) or ()]]
                            for message_id in self._message_blocks.last(_BLOCK_MESSAGES_IN_STATE)]}
        if self._head is not None:   # the transcript's head is still being read (a fork's copies may follow)
            state["head"] = self._head
        if self._copying is not None:
            state["copying"] = self._copying
        return state

    # -- lines ----------------------------------------------------------------------------------------
    def map_line(self, line: bytes | memoryview, extra: dict[str, Any] | None = None,
                 utf8_checked: bool = False) -> list[Item]:
        """Events of one line (bytes, or a view into a larger buffer; `utf8_checked` when the caller
        has validated it as UTF-8 already)."""
        return self.map_lines((line,), extra, utf8_checked)

    def map_lines(self, lines: Iterable[bytes | memoryview], extra: dict[str, Any] | None = None,
                  utf8_checked: bool = False, out: list[Item] | None = None) -> list[Item]:
        """Events of many lines, in order, appended to `out` (or a new list) and returned. Each line
        gives what `map_line` gives for it; `lines_done` then tells how many lines were mapped (so a
        caller can tell where an unforeseen exception stopped it)."""
        items: list[Item] = [] if out is None else out
        append = items.append
        decode = _DECODE
        map_record = self._map
        done = 0
        try:
            for line in lines:
                if line:
                    try:
                        if not utf8_checked:
                            str(line, "utf-8")
                        record = decode(line)
                    except (UnicodeDecodeError, msgspec.DecodeError, RecursionError) as exc:
                        record = _decode_slowly(line, exc) if bytes(line).strip() else None
                        if record.__class__ is str:
                            record, line = _after_zeros(line, record, items)
                    if record is not None:
                        mark = len(items)
                        try:
                            map_record(record, line, extra, items)
                        except (TypeError, ValueError, AttributeError, msgspec.MsgspecError) as exc:
                            del items[mark:]  # a shape we did not foresee: the line is one warning
                            append(events.parse_warning(f"claude transcript: unexpected record shape: {exc}", line))
                done += 1
        finally:
            self.lines_done = done
        return items

    def _map(self, rec: schema.Record, line: bytes, extra: dict[str, Any] | None, out: list[Item]) -> None:
        uuid = rec.uuid
        if uuid is not None:
            seen = self._uuids
            if self.skip_seen_records and uuid in seen:
                return
            recent = seen._new
            recent[uuid] = True
            if len(recent) > _UUIDS_KEPT:
                seen._old, seen._new = recent, {}
        ts = rec.timestamp
        track = self.track
        if track is not None:
            if self.replay is None and ts.__class__ is str:   # `_track`'s common case, inline
                latest = track[0]
                if latest is None or ts > latest:
                    track[0] = ts
                    track[1] = [uuid] if uuid is not None else []
                elif ts == latest and uuid is not None and len(track[1]) < 4 * _MARK_KEYS_MAX:
                    track[1].append(uuid)
            elif not self._track(ts, uuid):
                return
        if rec.forkedFrom or (self._head is not None and extra is None and self._copied_head(rec, ts, uuid)):
            self._copy(rec, ts, line, extra, out)
            return
        if uuid is not None:
            self._copying = None
        if ts is not None:
            self.last_ts = ts
            if self._first_ts is None:
                self._first_ts = ts
        else:
            ts = self.last_ts
        if self._need_cwd and rec.cwd:
            self._need_cwd = False
            self._info["cwd"] = rec.cwd
        self._dispatch(rec, ts, line, extra, out)

    def _dispatch(self, rec: schema.Record, ts: Any, line: bytes, extra: dict[str, Any] | None,
                  out: list[Item]) -> None:
        if rec.isSidechain is True:
            extra = dict(extra or ())
            extra["is_sidechain"] = True
            if rec.agentId and "agent_id" not in extra:
                extra["agent_id"] = rec.agentId
        kind = rec.type
        if kind == "assistant":
            self._assistant(rec, ts, line, extra, out)
        elif kind == "user":
            self._user(rec, ts, line, extra, out)
        elif kind is None and rec.message is not None and rec.message.role == "user":
            self._user(rec, ts, line, extra, out)
        elif kind is None and rec.message is not None and (rec.message.role == "assistant"
                                                            or rec.message.usage is not None):
            self._assistant(rec, ts, line, extra, out)
        elif kind == "tool_use" and rec.message is None:
            out.append(self._flat_tool_use(rec, ts, extra))
        elif kind == "tool_result" and rec.message is None:
            out.append(self._flat_tool_result(rec, ts, extra))
        else:
            out.append(self._status(_status_message(rec), line, ts, extra))

    # -- history copied from another session ------------------------------------------------------
    def watch_head(self, not_before: float | None) -> None:
        """The main transcript is read from its start: look for a copied history at its head (see
        `_copied_head`). `not_before`: when the live child started (records older are not its own)."""
        self._head = [None, not_before]

    def _copied_head(self, rec: schema.Record, ts: Any, uuid: str | None) -> bool:
        """Whether a record at the head of the main transcript is history `--fork-session` (or a 1.0.x
        resume) copied from the parent: such copies keep the parent's uuid, timestamp, message id and
        requestId (only `sessionId` changes) and are written in one burst before the first record of the
        new run, after the run's own first stamped lines (`-p`: queue-operation; TUI: the
        file-history-snapshot of the new prompt). A record with a uuid older than those stamps (or than
        the live child's start) is a copy; the first one that is not ends the head."""
        head = self._head
        if uuid is None:
            stamp = _epoch_or_none(ts if ts is not None else _snapshot_ts(rec))
            if stamp is not None and (head[0] is None or stamp > head[0]):
                head[0] = stamp
            return False
        refs = [ref for ref in head if ref is not None]
        moment = _epoch_or_none(ts) if refs else None
        if moment is not None and moment < max(refs) - COPY_SLACK_SECS:
            return True
        self._head = None
        return False

    def _copy(self, rec: schema.Record, ts: Any, line: bytes, extra: dict[str, Any] | None,
              out: list[Item]) -> None:
        """A record copied from another session: it only primes the state (tool names, the usage keys
        its parent counted); the first of a run of copies is logged as one note."""
        self._dispatch(rec, ts, line, extra, [])
        parent = _forked_from(rec.forkedFrom)
        if self._copying == (parent or ""):
            return
        self._copying = parent or ""
        what = f"from session {parent}" if parent else "from an earlier session (--fork-session / resume)"
        data = {"kind": "copied_history", "forked_from": parent, "first_uuid": rec.uuid, "first_ts": ts}
        out.append(self._body(events.PROVIDER_STATUS, ts, extra, data=data,
                              message=f"history copied {what}: not logged again, its usage not counted again"))

    def _track(self, ts: Any, uuid: str | None) -> bool:
        """Notes the file's latest timestamp; False for a record imported before a re-read (at or before
        the replay mark: earlier, or at it with a uuid already imported or without a uuid)."""
        if ts.__class__ is not str:
            return True
        replay = self.replay
        if replay is not None and (ts < replay[0] or (ts == replay[0] and (uuid is None or uuid in replay[1]))):
            return False
        track = self.track
        assert track is not None
        latest = track[0]
        if latest is None or ts > latest:
            track[0] = ts
            track[1] = [uuid] if uuid is not None else []
        elif ts == latest and uuid is not None and len(track[1]) < 4 * _MARK_KEYS_MAX:
            track[1].append(uuid)
        return True

    # -- assistant --------------------------------------------------------------------------------
    def _assistant(self, rec: schema.Record, ts: Any, line: bytes, extra: dict[str, Any] | None,
                   out: list[Item]) -> None:
        """The record's blocks, each once per API response (several lines may repeat one `message.id`),
        then its usage, once per (message.id, requestId). The hot path of a backfill: the bounded
        maps are used directly rather than through `_Recent`'s methods."""
        msg = rec.message
        if msg is None:
            out.append(self._status("assistant record without message", line, ts, extra))
            return
        mark = len(out)
        model = msg.model
        synthetic = False
        if model:
            if model == SYNTHETIC_MODEL:  # claude's own message (an API error, "No response requested.")
                synthetic = True
                model = None
            elif model != self._model:
                self._model = model
                info = self._info
                info["model"] = model
                if "first_model" not in info:
                    info["first_model"] = model
        msg_id = msg.id
        message_id = msg_id or rec.uuid
        sid = self.sid
        error = rec.error
        api_error = None
        if rec.isApiErrorMessage is True or (error is not None and error.__class__ is str and error):
            api_error = {"error": error, "status": rec.apiErrorStatus}
        content = msg.content
        blocks = self._message_blocks
        seen_before = None
        if msg_id:
            seen_before = blocks._new.get(msg_id)
            if seen_before is None:
                seen_before = blocks._old.get(msg_id)
        emitted: set[Any] | None = None
        texts: list[str] | None = [] if api_error is not None else None
        unknown = False
        if content.__class__ is str:
            content = [schema.Block(type="text", text=content)]
        for block in content or ():
            kind = block.type
            if kind == "text":
                text = block.text or ""
                if texts is not None:
                    texts.append(text)
                key = ("text", len(text), _fingerprint(text), "")
                if seen_before is not None and key in seen_before:
                    continue
                body = {"type": ASSISTANT_MESSAGE, "ts": ts, "provider_session_id": sid, "content": text,
                        "message_id": message_id, "model": model}
                if api_error is not None:
                    body["api_error"] = api_error
                if synthetic:
                    body["synthetic"] = True
            elif kind == "tool_use":
                tool_id = block.id
                if tool_id:
                    key = ("tool", tool_id, 0, "")
                else:
                    key = ("tool", "", len(block.input), _fingerprint(bytes(block.input)))
                if seen_before is not None and key in seen_before:
                    continue
                name = block.name
                if tool_id:
                    names = self._tool_names
                    new = names._new
                    new[tool_id] = name
                    if len(new) > _TOOL_NAMES_KEPT:
                        names._old, names._new = new, {}
                    self._recent_tools.append((tool_id, name))
                body = {"type": TOOL_CALL, "ts": ts, "provider_session_id": sid, "tool_name": name,
                        "tool_kind": tool_kind(name), "tool_id": tool_id,
                        "input": block.input or None, "message_id": message_id}
            elif kind == "thinking":
                thought = block.thinking or ""
                key = ("thinking", len(thought), _fingerprint(thought), "")
                if seen_before is not None and key in seen_before:
                    continue
                body = {"type": REASONING, "ts": ts, "provider_session_id": sid, "content": thought,
                        "message_id": message_id}
            elif kind == "redacted_thinking":
                key = ("redacted", len(block.data), bytes(block.data)[:48].hex(), "")
                if seen_before is not None and key in seen_before:
                    continue
                body = {"type": REASONING, "ts": ts, "provider_session_id": sid, "content": "", "redacted": True,
                        "data": block.data or None, "message_id": message_id}
            else:
                unknown = True
                continue
            if emitted is None:
                emitted = {key}
            else:
                emitted.add(key)
            if extra:
                body.update(extra)
            out.append(body)
        if unknown:
            out.append(self._status(f"assistant content block not mapped ({_block_types(content)})", line, ts,
                                    extra))
        if emitted is not None and msg_id:
            if seen_before is None:
                new = blocks._new
                new[msg_id] = emitted
                if len(new) > _MESSAGES_KEPT:
                    blocks._old, blocks._new = new, {}
            else:
                seen_before.update(emitted)
        if msg.usage is not None or rec.costUSD is not None:
            usage = self._usage(rec, msg, ts, extra, message_id)
            if usage is not None:
                out.append(usage)
        if api_error is not None:
            signal = self._limit(rec, "\n".join(texts or ()), ts)
            if signal is not None:
                out.append(signal)
        if len(out) == mark and not content:
            out.append(self._status("assistant record without content", line, ts, extra))

    def _usage(self, rec: schema.Record, msg: schema.Message, ts: Any, extra: dict[str, Any] | None,
               message_id: str | None) -> dict[str, Any] | None:
        msg_id = msg.id
        if msg_id:
            key = (msg_id, rec.requestId or "")
            seen = self._usage_seen
            if key in seen._new or key in seen._old:
                return None
            ids = self._usage_ids
            if (msg_id in ids._new or msg_id in ids._old) and extra is not None and extra.get("is_sidechain") is True:
                # a sidechain (a subagent or /btw file) replays a response already counted, under a new
                # requestId and with its own usage numbers (ccusage #913): not a new API call
                return None
            new = seen._new
            new[key] = True
            if len(new) > _USAGE_KEYS_KEPT:
                seen._old, seen._new = new, {}
            new = ids._new
            new[msg_id] = True
            if len(new) > _UUIDS_KEPT:
                ids._old, ids._new = new, {}
        usage = msg.usage or _NO_USAGE
        input_tokens = usage.input_tokens
        output_tokens = usage.output_tokens
        cache_read = usage.cache_read_input_tokens
        cache_creation = usage.cache_creation_input_tokens
        cost = rec.costUSD
        if not (input_tokens or output_tokens or cache_read or cache_creation or cost):
            return None  # claude's own error/"no response" messages carry all-zero usage
        body = {"type": USAGE, "ts": ts, "provider_session_id": self.sid, "input_tokens": input_tokens or 0,
                "output_tokens": output_tokens or 0, "cache_read_tokens": cache_read or 0,
                "cache_creation_tokens": cache_creation or 0, "model": msg.model, "message_id": message_id,
                "request_id": rec.requestId}
        if extra:
            body.update(extra)
        if cost is not None:
            body["total_cost_usd"] = cost
        return body

    def _limit(self, rec: schema.Record, text: str, ts: Any) -> Any:
        quota = None
        if rec.quotaLimits:
            try:
                head = schema.quota_decoder.decode(rec.quotaLimits)
                quota = (head.status, head.resetsAt, head.rateLimitType)
            except msgspec.MsgspecError:
                quota = None
        return limits.limit_from_error_record(
            error=rec.error, status=rec.apiErrorStatus, text=text, quota=quota, now=_epoch_of(ts),
            source=events.SOURCE_PROVIDER_FILE, provider_session_id=self.sid,
        )

    # -- user -------------------------------------------------------------------------------------
    def _user(self, rec: schema.Record, ts: Any, line: bytes, extra: dict[str, Any] | None,
              out: list[Item]) -> None:
        msg = rec.message
        if msg is None:
            out.append(self._status("user record without message", line, ts, extra))
            return
        content = msg.content
        flags = _user_flags(rec)
        if isinstance(content, str) or content is None:
            if content and content[0] == "<":
                flags.update(_local_command_flags(content))
            out.append(self._body(events.USER_MESSAGE, ts, extra, content=content or "", message_id=rec.uuid,
                                  **flags))
            return
        items: list[Item] = []
        texts: list[str] = []
        images: list[dict[str, Any]] = []
        message_at = None
        unknown = False
        details_used = False
        for block in content:
            kind = block.type
            if kind == "tool_result":
                items.append(self._tool_result(rec, block, ts, extra, with_details=not details_used))
                details_used = True
            elif kind == "text":
                texts.append(block.text or "")
                message_at = len(items) if message_at is None else message_at
            elif kind == "image":
                source = block.source
                images.append({"media_type": source.media_type if source else None,
                               "source_type": source.type if source else None, "data": "omitted"})
                message_at = len(items) if message_at is None else message_at
            else:
                unknown = True
        if message_at is not None:
            text = "\n\n".join(texts)
            if text and text[0] == "<":
                flags.update(_local_command_flags(text))
            body = self._body(events.USER_MESSAGE, ts, extra, content=text, message_id=rec.uuid, **flags)
            if images:
                body["images"] = images
            items.insert(message_at, body)
        if unknown:
            items.append(self._status(f"user content block not mapped ({_block_types(content)})", line, ts,
                                      extra))
        if not items:
            items.append(self._body(events.USER_MESSAGE, ts, extra, content="", message_id=rec.uuid, **flags))
        out.extend(items)

    def _tool_result(self, rec: schema.Record, block: schema.Block, ts: Any, extra: dict[str, Any] | None,
                     *, with_details: bool) -> dict[str, Any]:
        tool_id = block.tool_use_id
        name = self._tool_names.get(tool_id) if tool_id else None
        details = rec.toolUseResult if (with_details and rec.toolUseResult) else None
        failed = block.is_error
        sub_agent = name is not None and tool_kind(name) == events.TOOL_SUB_AGENT
        # The structured result is only looked into when it says something the block does not.
        head = _tool_use_result_head(details) if details is not None and (failed is None or sub_agent) else None
        if failed is None:
            failed = head is not None and (head.is_error is True or head.interrupted is True
                                           or head.status in ("error", "failed"))
        output = block.content or None
        body = {"type": TOOL_RESULT, "ts": ts, "provider_session_id": self.sid, "tool_id": tool_id,
                "tool_name": name, "success": not failed, "output": None if failed else output,
                "error": output if failed else None}
        if details is not None:
            body["details"] = details
        if head is not None and head.agentId and sub_agent:
            body["agent_id"] = head.agentId
        if extra:
            body.update(extra)
        return body

    # -- legacy flat tool lines --------------------------------------------------------------------
    def _flat_tool_use(self, rec: schema.Record, ts: Any, extra: dict[str, Any] | None) -> dict[str, Any]:
        tool_id = rec.id or rec.tool_use_id or rec.uuid
        self._last_flat_tool = (tool_id, rec.name)
        if tool_id:
            self._tool_names.put(tool_id, rec.name)
            self._recent_tools.append((tool_id, rec.name))
        return self._body(events.TOOL_CALL, ts, extra, tool_name=rec.name, tool_kind=tool_kind(rec.name),
                          tool_id=tool_id, input=rec.input if rec.input else None, message_id=rec.uuid)

    def _flat_tool_result(self, rec: schema.Record, ts: Any, extra: dict[str, Any] | None) -> dict[str, Any]:
        tool_id = rec.tool_use_id
        if tool_id is None and self._last_flat_tool[1] == rec.name:
            tool_id = self._last_flat_tool[0]
        failed = rec.is_error is True
        output = rec.output if rec.output else None
        return self._body(events.TOOL_RESULT, ts, extra, tool_id=tool_id, tool_name=rec.name,
                          success=not failed, output=None if failed else output,
                          error=output if failed else None)

    # -- helpers ----------------------------------------------------------------------------------
    def _body(self, event_type: str, ts: Any, extra: dict[str, Any] | None, **fields: Any) -> dict[str, Any]:
        body = {"type": event_type, "ts": ts, "provider_session_id": self.sid}
        body.update(fields)
        if extra:
            body.update(extra)
        return body

    def _status(self, message: str, line: bytes, ts: Any, extra: dict[str, Any] | None) -> dict[str, Any]:
        return self._body(events.PROVIDER_STATUS, ts, extra, message=message, data=msgspec.Raw(line))


# --- module helpers ------------------------------------------------------------------------------
def _fingerprint(content: str | bytes) -> str:
    """What tells a block from another of the same message and length: a digest of its first and last
    48 characters. Not the characters themselves: the keys are kept in backfill cursors in the index,
    which must not hold what the session log has redacted."""
    head, tail = content[:48], content[-48:]
    if isinstance(content, str):
        head, tail = head.encode("utf-8", "surrogatepass"), tail.encode("utf-8", "surrogatepass")
    return blake2b(head + b"\0" + tail, digest_size=12).hexdigest()


def _after_zeros(line: bytes | memoryview, reason: str, items: list[Item]) -> tuple[Any, Any]:
    """A line that is no record: one parse_warning, and the record a crash's zeros hid at its end (see
    `tail.after_zeros`) with that record's bytes, else None."""
    split = after_zeros(line)
    if split is not None:
        try:
            record = _DECODE(split[1])
        except (msgspec.DecodeError, RecursionError):
            split = None
    if split is None:
        items.append(events.parse_warning(f"claude transcript: {reason}", line))
        return None, line
    items.append(zeros_warning("claude transcript", split[0]))
    return record, split[1]


def _decode_slowly(line: bytes | memoryview, error: BaseException) -> schema.Record | str:
    """After the fast decode failed: repair lone UTF-16 surrogate escapes (JavaScript writes them,
    msgspec refuses them) and try again; else a short reason why the line is not a record."""
    if isinstance(error, UnicodeDecodeError):
        return "line is not valid UTF-8"
    if isinstance(error, RecursionError):
        return "JSON nested too deeply"
    if isinstance(error, msgspec.ValidationError):
        return f"not a transcript record ({error})"
    line = bytes(line)
    if b"\\u" in line:
        repaired = _LONE_SURROGATE.sub(lambda m: m.group(1) or rb"\ufffd", line)
        if repaired != line:
            try:
                return _DECODE(repaired)
            except (msgspec.DecodeError, RecursionError):
                pass
    return f"malformed JSON ({error})"


def _pair(key: Any) -> bool:
    return isinstance(key, (list, tuple)) and len(key) == 2 and all(isinstance(part, str) for part in key)


def _user_flags(rec: schema.Record) -> dict[str, Any]:
    flags: dict[str, Any] = {}
    if rec.isMeta is True:
        flags["is_meta"] = True
    if rec.isCompactSummary is True:
        flags["is_compact_summary"] = True
    origin = rec.origin
    kind = origin.kind if isinstance(origin, schema.Origin) else origin
    if kind and kind != "human":
        flags["origin"] = kind
    return flags


_COMMAND_NAME = re.compile(r"<command-name>\s*([^<]*?)\s*</command-name>")
_COMMAND_OUTPUT = ("<local-command-stdout>", "<local-command-stderr>")


def _local_command_flags(text: str) -> dict[str, Any]:
    """A user record that is the TUI's slash-command bookkeeping (the command, or its output): flags for
    consumers to tell it from a prompt; {} for anything else."""
    if text.startswith(_COMMAND_OUTPUT):
        return {"is_meta": True, "local_command_output": True}
    if text.startswith(("<command-name>", "<command-message>")):
        match = _COMMAND_NAME.search(text)
        return {"is_meta": True, "local_command": match.group(1) if match else ""}
    return {}


_HEAD_KEYS = (b'"is_error"', b'"interrupted"', b'"status"', b'"agentId"')
_NO_HEAD = schema.ToolUseResultHead()


def _tool_use_result_head(raw: msgspec.Raw) -> schema.ToolUseResultHead | None:
    """The few fields zag reads of a structured tool result. Decoding skims the whole result (often
    the tool's whole output again), so it is skipped when none of the keys is even written in it
    (a substring search runs at memory speed; Claude writes keys as they are, unescaped)."""
    text = bytes(raw)
    if text[:1] != b"{":
        if text[:1] == b'"' and text[1:7].lower() in (b"error:", b"error "):
            return schema.ToolUseResultHead(is_error=True)
        return None
    if not any(key in text for key in _HEAD_KEYS):
        return _NO_HEAD
    try:
        return schema.tool_use_result_decoder.decode(text)
    except msgspec.MsgspecError:
        return None


def _status_message(rec: schema.Record) -> str:
    kind = rec.type
    if kind is None:
        return "record without type"
    if kind == "system":
        return f"system/{rec.subtype}" if rec.subtype else "system"
    if kind == "attachment" and rec.attachment is not None and rec.attachment.type:
        return f"attachment/{rec.attachment.type}"
    if kind == "summary" and rec.summary:
        return f"summary: {rec.summary[:200]}"
    return kind


def _block_types(content: Any) -> str:
    if not isinstance(content, list):
        return type(content).__name__
    return ", ".join(sorted({str(block.type) for block in content}))


def _epoch_or_none(ts: Any) -> float | None:
    normalized = events.normalize_ts(ts)
    if normalized is None:
        return None
    try:
        return events.parse_ts(normalized)
    except ValueError:
        return None


def _snapshot_ts(rec: schema.Record) -> Any:
    if not rec.snapshot:
        return None
    try:
        snapshot = schema.any_decoder.decode(rec.snapshot)
    except msgspec.DecodeError:
        return None
    return snapshot.get("timestamp") if isinstance(snapshot, dict) else None


def _forked_from(raw: msgspec.Raw) -> str | None:
    """The parent session of a `/branch` copy (`forkedFrom: {sessionId, messageUuid}`), or None."""
    if not raw:
        return None
    try:
        value = schema.any_decoder.decode(raw)
    except msgspec.DecodeError:
        return None
    parent = value.get("sessionId") if isinstance(value, dict) else None
    return parent if isinstance(parent, str) and parent else None


def _epoch_of(ts: Any) -> float:
    normalized = events.normalize_ts(ts)
    if normalized is not None:
        try:
            return events.parse_ts(normalized)
        except ValueError:
            pass
    return time.time()
