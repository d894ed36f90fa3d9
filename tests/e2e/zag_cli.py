"""Phase 2 helpers: zag itself, run around the real CLIs (`zag run <cli> …`) and asked about them
(`zag sessions/events/ps/backfill/resume --json`), plus readers for zag's unified logs.

Every zag process runs through the test's `CliEnv` (same environment, same network jail, same marker for
the leftover-process check); `zag_home=` points one call at another ZAG_HOME (a fresh one for backfill).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Callable

from .clis import CliEnv, Result

ZAG_TIMEOUT = 60.0  # a zag query (ps, sessions, events, backfill) under load
RUN_TIMEOUT = 150.0  # a whole `zag run` of a headless CLI turn (gemini alone starts in ~2–6 s)

Event = dict[str, Any]


# ---------------------------------------------------------------------------------------- running zag


def zag(env: CliEnv, *args: str, zag_home: Path | None = None, timeout: float = ZAG_TIMEOUT,
        check: bool = True) -> Result:
    """`zag <args>` in the CLI's environment (and jail); `check`: exit 0 required."""
    extra = {"ZAG_HOME": str(zag_home)} if zag_home is not None else None
    result = env.run(argv=env.zag_argv(*args), extra_env=extra, timeout=timeout)
    if check:
        assert result.returncode == 0, result.describe()
    return result


def zag_json(env: CliEnv, *args: str, zag_home: Path | None = None) -> Any:
    """A zag command's `--json` document (one JSON value on stdout)."""
    result = zag(env, *args, "--json", zag_home=zag_home)
    try:
        return json.loads(result.stdout)
    except ValueError:
        raise AssertionError(f"not one JSON document:\n{result.describe()}") from None


def zag_ndjson(env: CliEnv, *args: str, zag_home: Path | None = None) -> list[Event]:
    """A zag command's `--json` NDJSON stream."""
    result = zag(env, *args, "--json", zag_home=zag_home)
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def zag_run(env: CliEnv, *cli_args: str, timeout: float = RUN_TIMEOUT,
            extra_env: dict[str, str] | None = None) -> Result:
    """`zag run <this CLI> <cli_args>` to completion (pipes: headless)."""
    return env.run(argv=env.zag_argv("run", env.name, *cli_args), timeout=timeout, extra_env=extra_env)


def zag_home_of(env: CliEnv) -> Path:
    """The ZAG_HOME the env's zag processes use (the test's private one)."""
    return Path(env.env["ZAG_HOME"])


def write_config(zag_home: Path, heartbeat_secs: float | None = None, **usage_limits: Any) -> Path:
    """Write `$ZAG_HOME/config.toml` (top-level heartbeat, `[usage_limits]` keys)."""
    lines = []
    if heartbeat_secs is not None:
        lines.append(f"heartbeat_secs = {heartbeat_secs}")
    if usage_limits:
        lines.append("[usage_limits]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in usage_limits.items()]
    zag_home.mkdir(parents=True, exist_ok=True)
    path = zag_home / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------- reading logs


def session_logs(zag_home: Path) -> dict[str, list[Event]]:
    """Every unified log under `zag_home`: session id -> its events (complete lines only)."""
    logs = {}
    for path in sorted((zag_home / "sessions").glob("*.jsonl")):
        logs[path.stem] = read_log(path)
    return logs


def read_log(path: Path) -> list[Event]:
    data = path.read_bytes()
    complete = data[:data.rfind(b"\n") + 1]
    return [json.loads(line) for line in complete.splitlines() if line.strip()]


def only_log(zag_home: Path) -> tuple[str, list[Event]]:
    """The one session log under `zag_home` (fails if there is not exactly one)."""
    logs = session_logs(zag_home)
    assert len(logs) == 1, f"expected one session log, found {sorted(logs)}"
    return next(iter(logs.items()))


def of_type(log: list[Event], *types: str) -> list[Event]:
    return [event for event in log if event["type"] in types]


def kinds(log: list[Event], skip: tuple[str, ...] = ("provider_status", "heartbeat", "parse_warning")) -> list[str]:
    """The event types of a log, in order, without the noise."""
    return [event["type"] for event in log if event["type"] not in skip]


def conversation(log: list[Event], typed_only: bool = False) -> list[tuple[str, Any]]:
    """(type, content) of the user and assistant messages, in order. `typed_only` leaves out what the CLI
    wrote by itself (claude resuming an interrupted turn: an `is_meta` "Continue from where you left off."
    and a `synthetic` "No response requested.")."""
    return [(event["type"], event.get("content")) for event in of_type(log, "user_message", "assistant_message")
            if not (typed_only and (event.get("is_meta") or event.get("synthetic")))]


def tool_events(log: list[Event]) -> list[tuple[str, Any, Any]]:
    """(type, tool_id, tool_kind-or-success) of the tool events, in order."""
    out = []
    for event in of_type(log, "tool_call", "tool_result"):
        detail = event.get("tool_kind") if event["type"] == "tool_call" else event.get("success")
        out.append((event["type"], event.get("tool_id"), detail))
    return out


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout}s")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------- the CLI's stdout


def cli_session_id(name: str, result: Result) -> str:
    """The CLI's own session id, as its headless JSON output states it."""
    for line in result.json_lines():
        if name == "claude" and line.get("session_id"):
            return line["session_id"]
        if name == "codex" and line.get("type") == "thread.started":
            return line["thread_id"]
        if name == "gemini" and line.get("type") == "init":
            return line["session_id"]
    raise AssertionError(f"no session id in the output\n{result.describe()}")


def assistant_text(name: str, stdout: str) -> str:
    """The assistant's words in the CLI's headless JSON output (gemini streams them as deltas)."""
    lines = []
    for line in stdout.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            lines.append(value)
    if name == "claude":
        return "".join(block.get("text", "") for line in lines if line.get("type") == "assistant"
                       for block in line["message"]["content"])
    if name == "codex":
        return "".join(line["item"].get("text", "") for line in lines if line.get("type") == "item.completed"
                       and line["item"].get("type") == "agent_message")
    return "".join(line["content"] for line in lines if line.get("type") == "message"
                   and line.get("role") == "assistant")


_VOLATILE_STRINGS = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"\b(msg|req|toolu|call|resp|fc|ctc)_fake_[0-9a-zA-Z]+"), r"<\1_id>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z?"), "<ts>"),
    (re.compile(r"read_file__read_file_\d+_\d+"), "<gemini_tool_id>"),
]
_VOLATILE_NUMBER = re.compile(r"(_ms|Ms|duration|latency|Latency)$")


def comparable_stdout(stdout: str) -> list[Any]:
    """The CLI's stdout with what differs run to run (ids, timestamps, durations) masked: JSON lines become
    masked objects, other lines masked strings. Two runs of the same command against the same fake answer
    compare equal."""
    out: list[Any] = []
    for line in stdout.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            out.append(_mask_string(line))
            continue
        out.append(_mask(value))
    return out


def _mask(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _mask(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, key) for v in value]
    if isinstance(value, str):
        return _mask_string(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and _VOLATILE_NUMBER.search(key):
        return "<n>"
    return value


def _mask_string(text: str) -> str:
    for pattern, replacement in _VOLATILE_STRINGS:
        text = pattern.sub(replacement, text)
    return text
