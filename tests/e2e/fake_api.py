"""A fake model API on 127.0.0.1 that speaks what the real agent CLIs call (see REAL_CLIS.md).

Three API families, one server:
  anthropic  `HEAD /` (preflight), `POST /v1/messages[?beta=true]` (SSE or JSON)       — Claude Code
  openai     `POST /v1/responses` (SSE)                                                — Codex CLI
  gemini     `POST /v1beta/models/<m>:generateContent` / `:streamGenerateContent?alt=sse` — Gemini CLI

Every request is classified by *kind*: the turn a user waits for is `main`; the CLIs' side calls are
`title` (claude/codex TUI session titles), `router` (gemini's complexity classifier) and `utility`
(other gemini generateContent calls, e.g. the session summary). Tests script replies per family and
kind (`queue`, `limit_next`), or make the whole family answer a limit until a time (`limit_until`,
`limit_for`); everything else gets a default answer ("hi from fake upstream"). Every request is recorded
with its parsed JSON body as soon as it arrives (`status` 0 while its answer is delayed).

Limit replies are built exactly as REAL_CLIS.md measured them (`claude_subscription_limit`,
`claude_api_key_limit`, `codex_usage_limit`, `gemini_quota`).
"""

from __future__ import annotations

import gzip
import itertools
import json
import socket
import sys
import threading
import time
import uuid
import zlib
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Union
from urllib.parse import parse_qs, urlsplit

DEFAULT_TEXT = "hi from fake upstream"
FAMILIES = ("anthropic", "openai", "gemini")
MAIN = "main"


# ----------------------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class Text:
    """A normal text answer. `headers` are added to the HTTP response (e.g. rate-limit headers)."""

    text: str = DEFAULT_TEXT
    headers: dict[str, str] = field(default_factory=dict)
    delay_secs: float = 0.0  # wait before answering (to catch a CLI mid-turn)


@dataclass(frozen=True)
class ToolCall:
    """A turn that asks the CLI to call one tool; `args` is the tool input (a JSON object).

    `freeform` (openai only) makes it a custom tool call whose input is that raw text — codex 0.169's
    only tool in its default "code mode" is the freeform `exec` (JavaScript that calls
    `tools.exec_command(...)` etc.); see `codex_shell`.
    """

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    freeform: str | None = None
    call_id: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay_secs: float = 0.0


@dataclass(frozen=True)
class HttpError:
    """A non-200 answer with a JSON body (limit responses are built by the functions below)."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    delay_secs: float = 0.0


Reply = Union[Text, ToolCall, HttpError]
ReplySource = Union[Reply, Callable[["Request"], Reply]]


def claude_bash(command: str) -> ToolCall:
    """Claude's Bash tool."""
    return ToolCall("Bash", {"command": command, "description": "Run a shell command"})


def claude_read(path: str) -> ToolCall:
    """Claude's Read tool (absolute path)."""
    return ToolCall("Read", {"file_path": path})


def codex_shell(command: str) -> ToolCall:
    """A shell command the way codex 0.169 runs one: code-mode `exec` calling `tools.exec_command`."""
    source = f"const r = await tools.exec_command({{cmd: {json.dumps(command)}}});\ntext(r.output);\n"
    return ToolCall("exec", freeform=source)


def gemini_read(path: str) -> ToolCall:
    """Gemini's read_file tool (available headless without approval)."""
    return ToolCall("read_file", {"file_path": path})


def gemini_shell(command: str) -> ToolCall:
    """Gemini's run_shell_command (offered headless only with --yolo / --approval-mode yolo)."""
    return ToolCall("run_shell_command", {"command": command, "description": "Run a shell command"})


def claude_subscription_limit(reset_at: float, claim: str = "five_hour") -> HttpError:
    """Claude OAuth (subscriber) limit: 429 + `anthropic-ratelimit-unified-*` (claim five_hour|seven_day)."""
    return HttpError(429, _anthropic_error("rate_limit_error", "Rate limited"), {
        "anthropic-ratelimit-unified-status": "rejected",
        "anthropic-ratelimit-unified-representative-claim": claim,
        "anthropic-ratelimit-unified-reset": str(int(reset_at)),
        "anthropic-ratelimit-unified-overage-status": "rejected",
        "anthropic-ratelimit-unified-overage-disabled-reason": "org_level_disabled",
        "retry-after": str(max(1, int(reset_at - time.time()))),
    })


def claude_allowed_headers(reset_at: float, utilization: float | None = None) -> dict[str, str]:
    """200 headers of an OAuth turn: `allowed`, or `allowed_warning` when `utilization` (0..1) is given."""
    if utilization is None:
        return {"anthropic-ratelimit-unified-status": "allowed",
                "anthropic-ratelimit-unified-reset": str(int(reset_at)),
                "anthropic-ratelimit-unified-representative-claim": "five_hour"}
    return {"anthropic-ratelimit-unified-status": "allowed_warning",
            "anthropic-ratelimit-unified-reset": str(int(reset_at)),
            "anthropic-ratelimit-unified-representative-claim": "five_hour",
            "anthropic-ratelimit-unified-5h-utilization": str(utilization),
            "anthropic-ratelimit-unified-5h-reset": str(int(reset_at)),
            "anthropic-ratelimit-unified-5h-surpassed-threshold": "0.9"}


def claude_api_key_limit(retry_after: int = 3600) -> HttpError:
    """Claude API-key rate limit: 429 `rate_limit_error` with `retry-after` (> 60 s: no CLI retries)."""
    message = "This request would exceed your account's rate limit. Please try again later."
    return HttpError(429, _anthropic_error("rate_limit_error", message), {"retry-after": str(retry_after)})


def codex_usage_limit(resets_at: float, plan_type: str = "plus") -> HttpError:
    """Codex (ChatGPT plan) usage limit: 429 `usage_limit_reached` + `x-codex-*` window headers."""
    resets_at = int(resets_at)
    body = {"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached",
                      "plan_type": plan_type, "resets_at": resets_at,
                      "resets_in_seconds": max(0, resets_at - int(time.time()))}}
    return HttpError(429, body, codex_rate_headers(100.0, resets_at))


def codex_rate_limited(retry_after: int = 1) -> HttpError:
    """A plain (retryable) Responses-API rate limit: codex prints `Reconnecting... 1/1 …` and retries."""
    body = {"error": {"type": "rate_limit_exceeded", "code": "rate_limit_exceeded",
                      "message": "Rate limit reached. Please try again later."}}
    return HttpError(429, body, {"retry-after": str(retry_after)})


def codex_rate_headers(primary_used: float, primary_resets_at: float,
                       secondary_used: float = 40.0, secondary_resets_at: float | None = None) -> dict[str, str]:
    """The `x-codex-primary-*` / `x-codex-secondary-*` headers (5 h and weekly windows)."""
    secondary_resets_at = secondary_resets_at or primary_resets_at + 86400
    return {"x-codex-primary-used-percent": str(primary_used),
            "x-codex-primary-window-minutes": "300",
            "x-codex-primary-reset-at": str(int(primary_resets_at)),
            "x-codex-secondary-used-percent": str(secondary_used),
            "x-codex-secondary-window-minutes": "10080",
            "x-codex-secondary-reset-at": str(int(secondary_resets_at))}


def gemini_quota(per_day: bool = True, retry_delay_secs: int = 3600, model: str = "gemini-3.8-flash") -> HttpError:
    """Gemini 429 RESOURCE_EXHAUSTED with QuotaFailure (PerDay or PerMinute quota id) and RetryInfo."""
    quota_id = ("GenerateRequestsPerDayPerProjectPerModel-FreeTier" if per_day
                else "GenerateRequestsPerMinutePerProjectPerModel-FreeTier")
    metric = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
    body = {"error": {
        "code": 429,
        "message": ("You exceeded your current quota, please check your plan and billing details. "
                    f"Please retry in {retry_delay_secs}s."),
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
             "violations": [{"quotaMetric": metric, "quotaId": quota_id,
                             "quotaDimensions": {"location": "global", "model": model},
                             "quotaValue": "250" if per_day else "10"}]},
            {"@type": "type.googleapis.com/google.rpc.Help",
             "links": [{"description": "Learn more about Gemini API quotas",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_delay_secs}s"},
        ]}}
    return HttpError(429, body)


def _anthropic_error(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message},
            "request_id": f"req_fake_{uuid.uuid4().hex[:12]}"}


# ----------------------------------------------------------------------------------------- records


@dataclass
class Request:
    """One request as the fake saw it, and what it answered."""

    method: str
    path: str  # without the query string
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or None
    raw_body: bytes
    family: str  # anthropic / openai / gemini / unknown
    kind: str  # main / title / router / utility / preflight / unknown
    at: float
    status: int = 0
    reply: str = ""  # short description of the answer

    def text(self) -> str:
        """The whole JSON body as text (handy for `"earlier words" in request.text()`)."""
        return json.dumps(self.body, ensure_ascii=False) if self.body is not None else ""


@dataclass
class _Window:
    until: float | None  # None: starts at the next request of the family
    reply: ReplySource | None = None
    seconds: float = 0.0
    build: Callable[[int], Reply] | None = None


class FakeAPI:
    """The fake server. Use as a context manager or call `start()` / `stop()`."""

    def __init__(self, listen_socket: socket.socket | None = None) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queues: dict[tuple[str, str], deque[ReplySource]] = {}
        self._windows: dict[str, _Window] = {}
        self._requests: list[Request] = []
        self._stopping = threading.Event()
        self._socket = listen_socket
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ids = itertools.count(1)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "FakeAPI":
        server = _Server(("127.0.0.1", 0), _Handler, bind_and_activate=self._socket is None)
        if self._socket is not None:
            server.socket.close()
            server.socket = self._socket
            server.server_address = self._socket.getsockname()
        server.fake = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="fake-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "FakeAPI":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the fake first"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ scripting

    def queue(self, family: str, *replies: ReplySource, kind: str = MAIN) -> None:
        """Answer the next requests of `family`/`kind` with `replies`, in order, then the default."""
        _check_family(family)
        with self._lock:
            self._queues.setdefault((family, kind), deque()).extend(replies)

    def limit_next(self, family: str, count: int, reply: ReplySource) -> None:
        """The next `count` main requests of `family` get `reply` (a limit), then normal answers."""
        self.queue(family, *([reply] * count))

    def limit_until(self, family: str, until: float, reply: ReplySource) -> None:
        """Every request of `family` (side calls included, as upstream would) gets `reply` until `until`."""
        _check_family(family)
        with self._lock:
            self._windows[family] = _Window(until, reply)

    def limit_for(self, family: str, seconds: float, build: Callable[[int], Reply]) -> None:
        """From the next request of `family` on, every request (side calls too) is answered
        `build(reset_at)` for `seconds`, where reset_at = that first request's time + seconds; then
        normal answers. E.g. `limit_for("anthropic", 3, claude_subscription_limit)`."""
        _check_family(family)
        with self._lock:
            self._windows[family] = _Window(None, seconds=seconds, build=build)

    def limit_reset_at(self, family: str) -> float | None:
        """When the current limit window of `family` ends (None: no window, or not started yet)."""
        with self._lock:
            window = self._windows.get(family)
            return window.until if window else None

    def clear(self, family: str | None = None) -> None:
        """Drop scripted replies and limit windows (of one family, or all)."""
        with self._lock:
            for key in [k for k in self._queues if family in (None, k[0])]:
                del self._queues[key]
            for key in [k for k in self._windows if family in (None, k)]:
                del self._windows[key]

    def pending(self, family: str, kind: str = MAIN) -> int:
        """How many scripted replies are still waiting."""
        with self._lock:
            return len(self._queues.get((family, kind), ()))

    # ------------------------------------------------------------------ inspection

    def requests(self, family: str | None = None, kind: str | None = None) -> list[Request]:
        """Recorded requests, oldest first, optionally filtered."""
        with self._lock:
            return [r for r in self._requests
                    if family in (None, r.family) and kind in (None, r.kind)]

    def unexpected(self) -> list[Request]:
        """Requests the fake did not recognise (answered 404): a CLI called something new."""
        return self.requests(family="unknown")

    def wait_for(self, predicate: Callable[[list[Request]], bool], timeout: float = 30.0) -> list[Request]:
        """Block until `predicate(all requests)` holds; return the requests. Raises TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(list(self._requests)):
                left = deadline - time.monotonic()
                if left <= 0:
                    summary = [f"{r.method} {r.path} {r.kind} -> {r.status}" for r in self._requests]
                    raise TimeoutError(f"fake API: condition not met within {timeout}s; saw {summary}")
                self._changed.wait(min(left, 0.2))
            return list(self._requests)

    def wait_requests(self, family: str, count: int, kind: str = MAIN, timeout: float = 30.0) -> list[Request]:
        """Block until at least `count` requests of `family`/`kind` arrived."""
        self.wait_for(lambda rs: sum(r.family == family and r.kind == kind for r in rs) >= count, timeout)
        return self.requests(family, kind)

    # ------------------------------------------------------------------ used by the handler

    def _record(self, request: Request) -> None:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()

    def _answered(self, request: Request, status: int, reply: str) -> None:
        with self._changed:
            request.status, request.reply = status, reply
            self._changed.notify_all()

    def _choose(self, family: str, kind: str) -> ReplySource | None:
        with self._lock:
            window = self._windows.get(family)
            if window is not None:
                now = time.time()
                if window.until is None:
                    window.until = now + window.seconds
                    window.reply = window.build(int(window.until)) if window.build else window.reply
                if now < window.until:
                    return window.reply
                del self._windows[family]
            queue = self._queues.get((family, kind))
            if queue:
                return queue.popleft()
        return None

    def _next_id(self) -> int:
        return next(self._ids)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"unknown API family {family!r}; one of {FAMILIES}")


# ----------------------------------------------------------------------------------------- HTTP


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeAPI

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)  # a CLI killed mid-request is no error


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # the recorded requests are the log

    def do_HEAD(self) -> None:
        request = self._read_request()
        request.family, request.kind = ("anthropic", "preflight") if request.path == "/" else ("unknown", "unknown")
        status = 200 if request.family == "anthropic" else 404
        self.server.fake._record(request)
        self._finish(request, status, "preflight")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        request = self._read_request()
        self._answer_unknown(request)

    def do_POST(self) -> None:
        request = self._read_request()
        fake = self.server.fake
        family, kind = _classify(request)
        request.family, request.kind = family, kind
        if family == "unknown":
            self._answer_unknown(request)
            return
        fake._record(request)  # visible at once, even while a delayed answer is pending
        source = fake._choose(family, kind) or _default_reply(family, kind)
        reply = source(request) if callable(source) else source
        fake._sleep(reply.delay_secs)
        if isinstance(reply, HttpError):
            self._finish(request, reply.status, f"error {reply.body.get('error', {}).get('type') or reply.status}")
            self._send(reply.status, json.dumps(reply.body).encode(), "application/json", reply.headers)
            return
        encoder = {"anthropic": _anthropic_reply, "openai": _openai_reply, "gemini": _gemini_reply}[family]
        body, content_type = encoder(request, reply, fake._next_id())
        self._finish(request, 200, _describe(reply))
        self._send(200, body, content_type, reply.headers)

    # -- helpers

    def _read_request(self) -> Request:
        split = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        raw = self._read_body(headers)
        body: Any = None
        if raw:
            try:
                body = json.loads(_decode_body(raw, headers.get("content-encoding", "")))
            except (ValueError, OSError, zlib.error):
                body = None
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        return Request(self.command, split.path, query, headers, body, raw, "unknown", "unknown", time.time())

    def _read_body(self, headers: dict[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _finish(self, request: Request, status: int, reply: str) -> None:
        self.server.fake._answered(request, status, reply)

    def _answer_unknown(self, request: Request) -> None:
        request.family = request.kind = "unknown"
        self.server.fake._record(request)
        self._finish(request, 404, "unknown endpoint")
        body = json.dumps({"error": {"type": "not_found_error", "message": f"fake API: no {request.path}"}})
        self._send(404, body.encode(), "application/json", {})

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("request-id", f"req_fake_{uuid.uuid4().hex[:12]}")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the CLI went away (killed mid-turn): nothing to answer


def _decode_body(raw: bytes, encoding: str) -> bytes:
    encoding = encoding.lower()
    if encoding == "gzip":
        return gzip.decompress(raw)
    if encoding == "deflate":
        return zlib.decompress(raw)
    if encoding == "zstd":
        import zstandard  # only if a CLI ever compresses its request bodies

        return zstandard.ZstdDecompressor().decompress(raw, max_output_size=64 << 20)
    return raw


def _classify(request: Request) -> tuple[str, str]:
    path, body = request.path, request.body if isinstance(request.body, dict) else {}
    if path == "/v1/messages":
        return "anthropic", MAIN if body.get("tools") else "title"
    if path == "/v1/responses":
        metadata = request.headers.get("x-codex-turn-metadata", "")
        return "openai", "title" if "thread_title" in metadata else MAIN
    if path.startswith("/v1beta/models/") and ":" in path:
        method = path.rsplit(":", 1)[1]
        if method == "streamGenerateContent":
            return "gemini", MAIN
        if method == "generateContent":
            schema = json.dumps(body.get("generationConfig", {}).get("responseJsonSchema") or {})
            return "gemini", "router" if "complexity_score" in schema else "utility"
    return "unknown", "unknown"


def _default_reply(family: str, kind: str) -> Reply:
    if family == "gemini" and kind == "router":
        return Text(json.dumps({"complexity_reasoning": "A greeting: trivial.", "complexity_score": 1}))
    if kind == "title":  # claude and codex both ask for a JSON schema {"title": ...}
        return Text(json.dumps({"title": "Say hi"}))
    return Text()


def _describe(reply: Reply) -> str:
    if isinstance(reply, ToolCall):
        return f"tool_call {reply.name}"
    return "text"


def _words(text: str) -> list[str]:
    """Split an answer into a few stream deltas (as a real model streams it)."""
    if len(text) <= 10:
        return [text]
    return [text[i:i + 10] for i in range(0, len(text), 10)]


def _model_from_path(path: str) -> str:
    return path.rsplit("/", 1)[-1].split(":", 1)[0]


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


# ------------------------------------------------------------------------------- anthropic encoding


def _anthropic_reply(request: Request, reply: Reply, n: int) -> tuple[bytes, str]:
    body = request.body if isinstance(request.body, dict) else {}
    model = body.get("model", "claude-fake")
    message_id = f"msg_fake_{uuid.uuid4().hex[:16]}"
    blocks: list[dict[str, Any]]
    if isinstance(reply, ToolCall):
        tool_id = reply.call_id or f"toolu_fake_{n:04d}{uuid.uuid4().hex[:8]}"
        blocks = [{"type": "tool_use", "id": tool_id, "name": reply.name, "input": reply.args}]
        stop_reason = "tool_use"
        output_text = json.dumps(reply.args)
    else:
        blocks = [{"type": "text", "text": reply.text}]
        stop_reason = "end_turn"
        output_text = reply.text
    usage = {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
             "output_tokens": _tokens(output_text)}
    if not body.get("stream"):
        message = {"id": message_id, "type": "message", "role": "assistant", "model": model, "content": blocks,
                   "stop_reason": stop_reason, "stop_sequence": None, "usage": usage}
        return json.dumps(message).encode(), "application/json"
    events = [("message_start", {"type": "message_start", "message": {
        "id": message_id, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {**usage, "output_tokens": 1}}})]
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                                   "content_block": {"type": "text", "text": ""}}))
            events += [("content_block_delta", {"type": "content_block_delta", "index": index,
                                                "delta": {"type": "text_delta", "text": piece}})
                       for piece in _words(block["text"])]
        else:
            events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                                   "content_block": {**block, "input": {}}}))
            events.append(("content_block_delta", {"type": "content_block_delta", "index": index,
                                                   "delta": {"type": "input_json_delta",
                                                             "partial_json": json.dumps(block["input"])}}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                     "usage": {"output_tokens": usage["output_tokens"]}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return _sse(events), "text/event-stream"


def _sse(events: Iterable[tuple[str | None, dict[str, Any]]]) -> bytes:
    out = []
    for name, data in events:
        head = f"event: {name}\n" if name else ""
        out.append(f"{head}data: {json.dumps(data)}\n\n")
    return "".join(out).encode()


# ---------------------------------------------------------------------------------- openai encoding


def _openai_reply(request: Request, reply: Reply, n: int) -> tuple[bytes, str]:
    body = request.body if isinstance(request.body, dict) else {}
    model = body.get("model", "gpt-fake")
    response_id = f"resp_fake_{uuid.uuid4().hex[:16]}"
    seq = itertools.count()
    events: list[tuple[str | None, dict[str, Any]]] = []

    def emit(event_type: str, **fields: Any) -> None:
        events.append((event_type, {"type": event_type, "sequence_number": next(seq), **fields}))

    shell = {"id": response_id, "object": "response", "created_at": int(time.time()), "status": "in_progress",
             "model": model, "output": []}
    emit("response.created", response=shell)
    emit("response.in_progress", response=shell)
    if isinstance(reply, ToolCall) and reply.freeform is not None:
        item_id = f"ctc_fake_{uuid.uuid4().hex[:12]}"
        call_id = reply.call_id or f"call_fake_{n:04d}{uuid.uuid4().hex[:8]}"
        item = {"id": item_id, "type": "custom_tool_call", "status": "in_progress", "call_id": call_id,
                "name": reply.name, "input": ""}
        emit("response.output_item.added", output_index=0, item=item)
        emit("response.custom_tool_call_input.delta", item_id=item_id, output_index=0, delta=reply.freeform)
        emit("response.custom_tool_call_input.done", item_id=item_id, output_index=0, input=reply.freeform)
        done_item = {**item, "status": "completed", "input": reply.freeform}
        output_text = reply.freeform
    elif isinstance(reply, ToolCall):
        item_id = f"fc_fake_{uuid.uuid4().hex[:12]}"
        call_id = reply.call_id or f"call_fake_{n:04d}{uuid.uuid4().hex[:8]}"
        arguments = json.dumps(reply.args)
        item = {"id": item_id, "type": "function_call", "status": "in_progress", "call_id": call_id,
                "name": reply.name, "arguments": ""}
        emit("response.output_item.added", output_index=0, item=item)
        emit("response.function_call_arguments.delta", item_id=item_id, output_index=0, delta=arguments)
        emit("response.function_call_arguments.done", item_id=item_id, output_index=0, arguments=arguments)
        done_item = {**item, "status": "completed", "arguments": arguments}
        output_text = arguments
    else:
        item_id = f"msg_fake_{uuid.uuid4().hex[:16]}"
        item = {"id": item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}
        part = {"type": "output_text", "text": "", "annotations": []}
        emit("response.output_item.added", output_index=0, item=item)
        emit("response.content_part.added", item_id=item_id, output_index=0, content_index=0, part=part)
        for piece in _words(reply.text):
            emit("response.output_text.delta", item_id=item_id, output_index=0, content_index=0, delta=piece,
                 logprobs=[])
        emit("response.output_text.done", item_id=item_id, output_index=0, content_index=0, text=reply.text,
             logprobs=[])
        full_part = {**part, "text": reply.text}
        emit("response.content_part.done", item_id=item_id, output_index=0, content_index=0, part=full_part)
        done_item = {**item, "status": "completed", "content": [full_part]}
        output_text = reply.text
    emit("response.output_item.done", output_index=0, item=done_item)
    usage = {"input_tokens": 12, "input_tokens_details": {"cached_tokens": 0},
             "output_tokens": _tokens(output_text), "output_tokens_details": {"reasoning_tokens": 0},
             "total_tokens": 12 + _tokens(output_text)}
    emit("response.completed", response={**shell, "status": "completed", "output": [done_item], "usage": usage})
    return _sse(events), "text/event-stream"


# ---------------------------------------------------------------------------------- gemini encoding


def _gemini_reply(request: Request, reply: Reply, n: int) -> tuple[bytes, str]:
    model = _model_from_path(request.path)
    if isinstance(reply, ToolCall):
        parts_seq = [[{"functionCall": {"name": reply.name, "args": reply.args,
                                        **({"id": reply.call_id} if reply.call_id else {})}}]]
        output_text = json.dumps(reply.args)
    else:
        output_text = reply.text
        pieces = [reply.text] if request.kind != MAIN else _words(reply.text)
        parts_seq = [[{"text": piece}] for piece in pieces]
    usage = {"promptTokenCount": 12, "candidatesTokenCount": _tokens(output_text),
             "totalTokenCount": 12 + _tokens(output_text)}
    chunks = []
    for i, parts in enumerate(parts_seq):
        last = i == len(parts_seq) - 1
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if last:
            candidate["finishReason"] = "STOP"
        chunk: dict[str, Any] = {"candidates": [candidate], "modelVersion": model,
                                 "responseId": f"fake-{n}-{uuid.uuid4().hex[:8]}"}
        if last:
            chunk["usageMetadata"] = usage
        chunks.append(chunk)
    if request.path.endswith(":streamGenerateContent"):
        if request.query.get("alt") != "sse":  # without alt=sse the API streams one JSON array
            return json.dumps(chunks).encode(), "application/json"
        return "".join(f"data: {json.dumps(c)}\r\n\r\n" for c in chunks).encode(), "text/event-stream"
    merged = {**chunks[-1], "candidates": [{**chunks[-1]["candidates"][0], "content": {
        "role": "model", "parts": [p for parts in parts_seq for p in parts]}}]}
    return json.dumps(merged).encode(), "application/json"
