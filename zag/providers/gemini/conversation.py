"""One Gemini conversation as it unfolds in its chat file(s): emit each message's parts exactly once.

Gemini ≥ 0.39 appends a message record again every time it changes (tool calls added, their results,
token counts), `{"$set": {"messages": [...]}}` replaces the whole list (at start-up, on resume, when a
failed turn is rolled back, when history is edited) and `{"$rewindTo": id}` drops a message and all
after it. Older files are one JSON document rewritten in place (handled as a full-list snapshot).

So the unit of bookkeeping is the message id. For each id a `Mark` remembers what was emitted: the
user/info text (or the assistant text once it is non-empty), how many thoughts, which tool calls and
which tool results (by tool-call id), and whether its usage was counted. Whatever a later occurrence of
the id adds is emitted then; nothing is emitted twice. The marks are part of the reader's cursor,
bounded to the newest `MAX_MARKS` ids (an id older than that which reappears in a full-list snapshot
before any id still known is taken as already emitted).

History gemini loads into the conversation (`/chat resume <tag>`, `/restore`) is written again as new
records followed by a full list naming exactly them: the reader hands those to `absorb` (one
`provider_status` with `data.kind == "history_loaded"`), as history, not new messages.

Removals (`$rewindTo`, or a snapshot that leaves out ids this file had) become one `provider_status`
with `data.kind == "messages_removed"` — the transcript lost those messages (a rolled-back turn after an
API/quota error, `/rewind`), but they were real and stay in the log; `session_cleared` is kept for a
move to another session. A snapshot written right after a metadata line is the start-up state of a
(new or resuming) process, not a rollback, so it only adds.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import msgspec

from zag.logs import events
from zag.providers.base import Item, LimitSignal
from zag.providers.gemini import limits
from zag.providers.gemini.records import (
    ASSISTANT_TYPES,
    DECODE_ERRORS,
    LINE_DECODER,
    STATUS_TYPES,
    Line,
    is_context_text,
    is_message,
    is_metadata,
    message_text,
    raw_list,
    raw_map,
    raw_value,
    response_fields,
    split_function_parts,
    text_and_parts,
    thought_fields,
    tool_calls,
    tool_is_finished,
    tool_kind,
    tool_result_fields,
    usage_fields,
    whole_record,
)
from zag.providers.tail import after_zeros, zeros_warning

PROVIDER = "gemini"
MAX_MARKS = 4096
MAX_LISTED_IDS = 1000
# `$set` keys that carry nothing for the log (timestamps, ids, internal state).
QUIET_SET_KEYS = frozenset({"lastUpdated", "sessionId", "memoryScratchpad", "directories", "projectHash",
                            "startTime", "kind", "messages", "summary"})

BASE = 1        # user/status text emitted, or the assistant's non-empty text
USAGE = 2       # usage emitted
REMOVED = 4     # dropped from the transcript (removal already reported)
DONE = 8        # assumed emitted long ago: ignore
RESUMABLE = 16  # Gemini would count it as resumable content


class Mark:
    __slots__ = ("file", "flags", "thoughts", "calls", "results")

    def __init__(self, file: int, flags: int = 0, thoughts: int = 0,
                 calls: list[str] | None = None, results: list[str] | None = None) -> None:
        self.file = file
        self.flags = flags
        self.thoughts = thoughts
        self.calls = calls or []
        self.results = results or []

    def dump(self, message_id: str) -> list[Any]:
        row: list[Any] = [message_id, self.file, self.flags, self.thoughts, self.calls, self.results]
        while len(row) > 3 and not row[-1]:
            row.pop()
        return row


@dataclass
class FileContext:
    """Per-file reading state the conversation needs."""

    index: int
    subagent: bool = False
    subagent_id: str | None = None
    after_header: bool = False


class Conversation:
    def __init__(self, session_id: str | None, state: dict[str, Any] | None = None) -> None:
        self.session_id = session_id
        self.marks: OrderedDict[str, Mark] = OrderedDict()
        self.evicted = 0
        self.summary: str | None = None
        self.model: str | None = None
        self.started: str | None = None
        self._problem: str | None = None
        # Tool ids emitted (counted over the marks that hold them): a call or result may be recorded in
        # several places (toolCalls, functionCall/functionResponse parts of other records).
        self._calls: dict[str, int] = {}
        self._results: dict[str, int] = {}
        if state:
            self._load(state)

    # -- cursor ------------------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        return {
            "marks": [mark.dump(message_id) for message_id, mark in self.marks.items()],
            "evicted": self.evicted,
            "summary": self.summary,
            "model": self.model,
            "started": self.started,
        }

    def _load(self, state: dict[str, Any]) -> None:
        for row in state.get("marks") or []:
            if isinstance(row, list) and len(row) >= 3 and isinstance(row[0], str):
                padded = list(row) + [0, [], []][len(row) - 3:]
                self.marks[row[0]] = Mark(int(padded[1]), int(padded[2]), int(padded[3]),
                                          list(padded[4] or []), list(padded[5] or []))
        for mark in self.marks.values():
            _count(self._calls, mark.calls, 1)
            _count(self._results, mark.results, 1)
        self.evicted = int(state.get("evicted") or 0)
        self.summary = state.get("summary")
        self.model = state.get("model")
        self.started = state.get("started")

    # -- questions ---------------------------------------------------------------------------------
    def has_resumable(self, main_files: set[int]) -> bool:
        """Would Gemini's `--resume` find something to continue (a real prompt, answer or tool call)?"""
        if self.evicted:
            return True
        return any(mark.flags & RESUMABLE and not mark.flags & REMOVED and mark.file in main_files
                   for mark in self.marks.values())

    # -- JSONL lines -------------------------------------------------------------------------------
    def line(self, raw: bytes, fctx: FileContext) -> list[Item]:
        """One line of a JSONL chat file → events."""
        if not raw.strip():
            return []
        try:
            if not raw.isascii():
                raw.decode("utf-8")   # msgspec does not check bytes it skips; gemini writes valid UTF-8
            rec = LINE_DECODER.decode(raw)
        except (UnicodeDecodeError, *DECODE_ERRORS) as exc:
            split = after_zeros(raw)
            if split is not None:   # a crash's zeros, then the record gemini appended after restarting
                return [zeros_warning("gemini chat file", split[0]), *self.line(split[1], fctx)]
            fctx.after_header = False
            return [events.parse_warning(f"unreadable gemini chat record: {_reason(exc)}", raw)]
        after_header, fctx.after_header = fctx.after_header, False
        self._problem = None
        if is_message(rec):
            items = self.message(rec, raw, fctx)
        elif isinstance(rec.rewindTo, str):
            items = self.rewind(rec.rewindTo, fctx)
        elif rec.set:
            items = self._patch(rec.set, fctx, init=after_header)
        elif is_metadata(rec):
            items = self._metadata(rec, raw, fctx)
        else:
            items = [events.provider_status("gemini chat record of an unknown kind", whole_record(raw))]
        if self._problem:
            items.append(events.parse_warning(f"gemini chat record partly unreadable: {self._problem}", raw))
        return items

    # -- legacy single-document files --------------------------------------------------------------
    def document(self, doc: Any, fctx: FileContext) -> list[Item]:
        """A whole legacy `ConversationRecord` (or pre-0.2 `{history: [...]}`) document → events."""
        self._problem = None
        items: list[Item] = []
        if isinstance(doc.sessionId, str) and fctx.subagent:
            fctx.subagent_id = doc.sessionId
        if isinstance(doc.startTime, str) and not self.started:
            self.started = doc.startTime
        entries: list[tuple[Line, bytes]] = []
        for raw in self._try(raw_list, doc.messages) or []:
            rec = self._try(LINE_DECODER.decode, raw)
            if rec is not None:
                entries.append((rec, bytes(raw)))
        for index, raw in enumerate(self._try(raw_list, doc.history) or []):
            rec = self._try(LINE_DECODER.decode, raw)
            if rec is None:
                continue
            rec.id = rec.id if isinstance(rec.id, str) else f"history-{index}"
            if rec.type is None:
                rec.type = "user" if rec.role == "user" else "gemini" if isinstance(rec.role, str) else None
            if rec.timestamp is None:
                rec.timestamp = rec.ts
            entries.append((rec, bytes(raw)))
        items += self.snapshot(entries, fctx, init=False, reason="document rewritten")
        if isinstance(doc.summary, str):
            items += self._summary(doc.summary, fctx)
        if self._problem:
            items.append(events.parse_warning(f"gemini session document partly unreadable: {self._problem}",
                                              None))
        return items

    # -- records -----------------------------------------------------------------------------------
    def message(self, rec: Line, raw: bytes, fctx: FileContext) -> list[Item]:
        mark = self.marks.get(rec.id)
        if mark is None:
            mark = Mark(fctx.index)
            self.marks[rec.id] = mark
            self._evict()
        else:
            mark.file = fctx.index
            mark.flags &= ~REMOVED
        if mark.flags & DONE:
            return []
        if isinstance(rec.model, str):
            self.model = rec.model
        if rec.type == "user":
            return self._user(rec, raw, mark, fctx)
        if rec.type in ASSISTANT_TYPES:
            return self._assistant(rec, mark, fctx)
        if mark.flags & BASE:
            return []
        mark.flags |= BASE
        if rec.type in STATUS_TYPES:
            return self._status(rec, raw, fctx)
        return [self._body(events.provider_status(f"gemini message of unknown type {rec.type!r}",
                                                  whole_record(raw)), fctx, rec.timestamp)]

    def absorb(self, ids: list[str], fctx: FileContext, ts: Any) -> list[Item]:
        """Messages gemini wrote again as new records when it loaded earlier history into the conversation
        (`/chat resume <tag>`, `/restore`): known from now on, not emitted; one note says so."""
        for message_id in ids:
            self.marks[message_id] = Mark(fctx.index, DONE | RESUMABLE)
            self.marks.move_to_end(message_id)
        self._evict()
        data = {"kind": "history_loaded", "count": len(ids), "message_ids": ids[:MAX_LISTED_IDS]}
        message = f"gemini loaded {len(ids)} earlier message(s) into the conversation (/chat resume, /restore): " \
                  "not logged again"
        return [self._body(events.provider_status(message, data), fctx, ts)]

    def rewind(self, target: str, fctx: FileContext) -> list[Item]:
        live = [message_id for message_id, mark in self.marks.items()
                if mark.file == fctx.index and not mark.flags & (REMOVED | DONE)]
        removed = live[live.index(target):] if target in live else live
        return self._remove(removed, fctx, reason="rewind", extra={"rewind_to": target})

    def snapshot(self, entries: list[tuple[Line, bytes]], fctx: FileContext, *, init: bool,
                 reason: str) -> list[Item]:
        """A full message list. `init`: the start-up state of a process (adds only, no removals)."""
        items: list[Item] = []
        present: list[str] = []
        seen_known = False
        for rec, raw in entries:
            if not is_message(rec):
                items.append(self._body(events.provider_status("gemini snapshot entry without an id",
                                                               whole_record(raw)), fctx, None))
                continue
            present.append(rec.id)
            known = rec.id in self.marks
            if not known and self.evicted and not seen_known and not init:
                self.marks[rec.id] = Mark(fctx.index, DONE)
                self._evict()
                continue
            seen_known = seen_known or known
            items += self.message(rec, raw, fctx)
        if init:
            return items
        keep = set(present)
        for message_id in present:
            if message_id in self.marks:
                self.marks.move_to_end(message_id)
        gone = [message_id for message_id, mark in self.marks.items()
                if mark.file == fctx.index and not mark.flags & (REMOVED | DONE) and message_id not in keep]
        return items + self._remove(gone, fctx, reason=reason)

    # -- helpers -----------------------------------------------------------------------------------
    def _user(self, rec: Line, raw: bytes, mark: Mark, fctx: FileContext) -> list[Item]:
        if mark.flags & BASE:
            return []
        mark.flags |= BASE
        text, parts = self._try(message_text, rec) or ("", [])
        if is_context_text(text):
            return [self._body(events.provider_status("gemini context preamble", whole_record(raw)),
                               fctx, rec.timestamp)]
        calls, responses, others = split_function_parts(parts)
        # 0.61 records the tool results it sends back as a `user` message of functionResponse parts (and a
        # resume snapshot repeats them under new ids): they are tool results, emitted once by tool id.
        items = self._function_responses(rec, mark, fctx, responses)
        if not text.strip() and not others and not calls:
            return items
        stripped = text.strip()
        if stripped and not stripped.startswith(("/", "?")):
            mark.flags |= RESUMABLE
        body = events.body(events.USER_MESSAGE, content=text, message_id=rec.id)
        display, _ = text_and_parts(self._try(raw_value, rec.displayContent))
        if display and display != text:
            body["display_content"] = display
        if others or calls:
            body["parts"] = others + [{"functionCall": call} for call in calls]
        return [self._body(body, fctx, rec.timestamp)] + items

    def _assistant(self, rec: Line, mark: Mark, fctx: FileContext) -> list[Item]:
        items: list[Item] = []
        ts = rec.timestamp
        if rec.thoughts and bytes(rec.thoughts) not in (b"[]", b"null"):
            thoughts = self._try(raw_list, rec.thoughts) or []
            for raw in thoughts[mark.thoughts:]:
                fields = thought_fields(self._try(raw_value, raw))
                if fields:
                    thought_ts = fields.pop("ts", ts)
                    body = events.body(events.REASONING, message_id=rec.id, **fields)
                    items.append(self._body(body, fctx, thought_ts))
            if thoughts:
                mark.flags |= RESUMABLE
            mark.thoughts = max(mark.thoughts, len(thoughts))
        if not mark.flags & BASE or rec.content:
            text, parts = self._try(message_text, rec) or ("", [])
            calls, responses, others = split_function_parts(parts)
            if not mark.flags & BASE and (text.strip() or others):
                mark.flags |= BASE | RESUMABLE
                body = events.body(events.ASSISTANT_MESSAGE, content=text, message_id=rec.id)
                if isinstance(rec.model, str):
                    body["model"] = rec.model
                if others:
                    body["parts"] = others
                items.append(self._body(body, fctx, ts))
            items += self._function_calls(rec, mark, fctx, calls)
            items += self._function_responses(rec, mark, fctx, responses)
        if rec.toolCalls and bytes(rec.toolCalls) not in (b"[]", b"null"):
            items += self._tools(rec, mark, fctx)
        if not mark.flags & USAGE:
            fields = usage_fields(rec.tokens, rec.model)
            if fields is not None:
                mark.flags |= USAGE
                items.append(self._body(events.body(events.USAGE, message_id=rec.id, **fields), fctx, ts))
        return items

    def _tools(self, rec: Line, mark: Mark, fctx: FileContext) -> list[Item]:
        calls = self._try(tool_calls, rec.toolCalls)
        if not calls:
            return []
        mark.flags |= RESUMABLE
        items: list[Item] = []
        for index, call in enumerate(calls):
            tool_id = call.id if isinstance(call.id, str) and call.id else f"{rec.id}#{index}"
            ts = call.timestamp or rec.timestamp
            name = call.name if isinstance(call.name, str) else None
            if tool_id not in mark.calls and tool_id not in self._calls:
                self._note(self._calls, mark.calls, tool_id)
                body = events.body(events.TOOL_CALL, tool_name=name, tool_kind=tool_kind(name), tool_id=tool_id,
                                   input=call.args, message_id=rec.id)
                if isinstance(call.displayName, str) and call.displayName != name:
                    body["display_name"] = call.displayName
                items.append(self._body(body, fctx, ts))
            if tool_id not in mark.results and tool_id not in self._results and tool_is_finished(call):
                fields = self._try(tool_result_fields, call)
                if fields is None:
                    continue
                self._note(self._results, mark.results, tool_id)
                body = events.body(events.TOOL_RESULT, tool_id=tool_id, tool_name=name, message_id=rec.id,
                                   **fields)
                items.append(self._body(body, fctx, ts))
        return items

    def _function_calls(self, rec: Line, mark: Mark, fctx: FileContext, calls: list[dict]) -> list[Item]:
        items: list[Item] = []
        for index, call in enumerate(calls):
            tool_id = call.get("id") if isinstance(call.get("id"), str) else f"{rec.id}#call{index}"
            if tool_id in mark.calls or tool_id in self._calls:
                continue
            self._note(self._calls, mark.calls, tool_id)
            name = call.get("name") if isinstance(call.get("name"), str) else None
            items.append(self._body(events.body(events.TOOL_CALL, tool_name=name, tool_kind=tool_kind(name),
                                                tool_id=tool_id, input=call.get("args"), message_id=rec.id),
                                    fctx, rec.timestamp))
        return items

    def _function_responses(self, rec: Line, mark: Mark, fctx: FileContext, responses: list[dict]) -> list[Item]:
        items: list[Item] = []
        for index, response in enumerate(responses):
            tool_id = response.get("id") if isinstance(response.get("id"), str) else f"{rec.id}#result{index}"
            if tool_id in mark.results or tool_id in self._results:
                continue
            self._note(self._results, mark.results, tool_id)
            name = response.get("name") if isinstance(response.get("name"), str) else None
            items.append(self._body(events.body(events.TOOL_RESULT, tool_id=tool_id, tool_name=name,
                                                message_id=rec.id, **response_fields(response)),
                                    fctx, rec.timestamp))
        return items

    @staticmethod
    def _note(counter: dict[str, int], emitted: list[str], tool_id: str) -> None:
        emitted.append(tool_id)
        counter[tool_id] = counter.get(tool_id, 0) + 1

    def _status(self, rec: Line, raw: bytes, fctx: FileContext) -> list[Item]:
        text, _ = self._try(message_text, rec) or ("", [])
        body = self._body(events.provider_status(text or f"gemini {rec.type}", whole_record(raw)), fctx,
                          rec.timestamp)
        body["level"] = rec.type
        items: list[Item] = [body]
        if text:
            written = _epoch(rec.timestamp) or time.time()
            quota = limits.classify(text, written)
            if quota is not None:
                items.append(LimitSignal(
                    provider=PROVIDER, source=events.SOURCE_PROVIDER_FILE, raw=text,
                    structured=rec.type == "error", scope=quota.scope, reset_at=quota.reset_at,
                    observed_at=time.time(), provider_session_id=self.session_id, reset_relative=quota.reset_relative,
                ))
        return items

    def _patch(self, raw_set: msgspec.Raw, fctx: FileContext, *, init: bool) -> list[Item]:
        patch = self._try(raw_map, raw_set)
        if patch is None:
            return []
        items: list[Item] = []
        if "messages" in patch:
            entries: list[tuple[Line, bytes]] = []
            for raw in self._try(raw_list, patch["messages"]) or []:
                rec = self._try(LINE_DECODER.decode, raw)
                if rec is not None:
                    entries.append((rec, bytes(raw)))
            items += self.snapshot(entries, fctx, init=init, reason="rollback")
        if "summary" in patch:
            summary = self._try(raw_value, patch["summary"])
            if isinstance(summary, str):
                items += self._summary(summary, fctx)
        other = {key: self._try(raw_value, value) for key, value in patch.items() if key not in QUIET_SET_KEYS}
        if other:
            items.append(self._body(events.provider_status("gemini session metadata update", other), fctx, None))
        return items

    def _metadata(self, rec: Line, raw: bytes, fctx: FileContext) -> list[Item]:
        fctx.after_header = True
        if fctx.subagent:
            fctx.subagent_id = rec.sessionId
            return []
        if isinstance(rec.startTime, str) and not self.started:
            self.started = rec.startTime
        if self.session_id and rec.sessionId != self.session_id:
            return [self._body(events.provider_status("gemini chat file names another session",
                                                      whole_record(raw)), fctx, rec.startTime)]
        return []

    def _summary(self, summary: str, fctx: FileContext) -> list[Item]:
        if summary == self.summary:
            return []
        self.summary = summary
        return [self._body(events.provider_status("gemini session summary", {"summary": summary}), fctx, None)]

    def _remove(self, ids: list[str], fctx: FileContext, *, reason: str,
                extra: dict[str, Any] | None = None) -> list[Item]:
        if not ids:
            return []
        for message_id in ids:
            self.marks[message_id].flags |= REMOVED
        data: dict[str, Any] = {"kind": "messages_removed", "reason": reason, "count": len(ids),
                                "message_ids": ids[:MAX_LISTED_IDS]}
        data.update(extra or {})
        message = f"gemini dropped {len(ids)} message(s) from the conversation ({reason})"
        return [self._body(events.provider_status(message, data), fctx, None)]

    def _body(self, body: dict[str, Any], fctx: FileContext, ts: Any) -> dict[str, Any]:
        if isinstance(ts, (str, int, float)) and not isinstance(ts, bool) and "ts" not in body:
            body["ts"] = ts
        if self.session_id:
            body["provider_session_id"] = self.session_id
        if fctx.subagent:
            body["subagent_session_id"] = fctx.subagent_id
        return body

    def _evict(self) -> None:
        while len(self.marks) > MAX_MARKS:
            _, mark = self.marks.popitem(last=False)
            _count(self._calls, mark.calls, -1)
            _count(self._results, mark.results, -1)
            self.evicted += 1

    def _try(self, function: Any, *args: Any) -> Any:
        """Run a decoding step; a failure marks the line as partly unreadable (one parse_warning)."""
        try:
            return function(*args)
        except DECODE_ERRORS as exc:
            self._problem = self._problem or _reason(exc)
            return None


def _count(counter: dict[str, int], ids: list[str], step: int) -> None:
    for tool_id in ids:
        value = counter.get(tool_id, 0) + step
        if value > 0:
            counter[tool_id] = value
        else:
            counter.pop(tool_id, None)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, UnicodeDecodeError):
        return "invalid UTF-8"
    return str(exc) or type(exc).__name__


def _epoch(value: Any) -> float | None:
    stamp = events.normalize_ts(value)
    return events.parse_ts(stamp) if stamp else None
