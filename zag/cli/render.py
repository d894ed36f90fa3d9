"""Terminal rendering shared by zag's commands: the colour decision, styles, tables, times, event lines.

Nothing here knows a command; commands pass plain strings and style names. Colour is used only when
the stream is a terminal and `NO_COLOR` is unset (https://no-color.org), `TERM` is not `dumb`;
`FORCE_COLOR` / `CLICOLOR_FORCE` force it on (useful under `less -R`); `NO_COLOR` wins over them.
`colour_enabled` is the one place that decides; text styled here and printed with `click.echo` must
pass `color=style.enabled`, or click strips the codes whenever stdout is not a terminal. Imports stay
stdlib-only and small, because `zag ps` start-up time matters.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from zag.logs.events import (
    NOTE_AGENT_EXITED,
    NOTE_AGENT_STARTED,
    NOTE_USAGE_LIMIT_CANCELLED,
    NOTE_USAGE_LIMIT_RECOVERED,
    SOURCE_WRAPPER,
)

_CODES = {
    "bold": "1", "dim": "2", "italic": "3", "underline": "4",
    "red": "31", "green": "32", "yellow": "33", "blue": "34", "magenta": "35", "cyan": "36",
    "grey": "90", "bright_red": "91",
}

# A table cell: plain text, or (text, style) where style is a space-separated list of `_CODES` names.
Cell = str | tuple[str, str]


def colour_enabled(stream: TextIO | None = None, env: dict[str, str] | None = None) -> bool:
    """Whether to colour output written to `stream` (default stdout)."""
    env = os.environ if env is None else env
    if env.get("NO_COLOR"):
        return False
    if _forced(env.get("FORCE_COLOR")) or _forced(env.get("CLICOLOR_FORCE")):
        return True
    if env.get("TERM") == "dumb":
        return False
    stream = sys.stdout if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _forced(value: str | None) -> bool:
    """A FORCE_COLOR / CLICOLOR_FORCE value that forces colour: set, and not empty, `0` or `false`."""
    return value is not None and value.strip().lower() not in ("", "0", "false")


class Style:
    """Applies ANSI styles when enabled, and is the identity when not."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    @classmethod
    def for_stream(cls, stream: TextIO | None = None) -> Style:
        return cls(colour_enabled(stream))

    def __call__(self, text: str, style: str | None) -> str:
        if not self.enabled or not style or not text:
            return text
        codes = ";".join(_CODES[name] for name in style.split() if name in _CODES)
        return f"\x1b[{codes}m{text}\x1b[0m" if codes else text


def terminal_width(stream: TextIO | None = None, default: int = 0) -> int:
    """Columns of the terminal `stream` writes to; `default` (0 = unlimited) when it is not one."""
    stream = sys.stdout if stream is None else stream
    try:
        if not stream.isatty():
            return default
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return default


def text_width(text: str) -> int:
    """The columns `text` takes on a terminal: wide characters (CJK, most emoji) take two, combining
    marks none."""
    if text.isascii():
        return len(text)
    return sum(_char_width(char) for char in text)


def _char_width(char: str) -> int:
    import unicodedata  # C module, ~0.2 ms: only for text that is not ASCII

    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _head(text: str, width: int) -> str:
    """The longest start of `text` that fits in `width` columns."""
    if text.isascii():
        return text[:max(width, 0)]
    used = 0
    for end, char in enumerate(text):
        used += _char_width(char)
        if used > width:
            return text[:end]
    return text


def clip(text: str, width: int) -> str:
    """`text` on one line, cut to `width` columns with an ellipsis (width <= 0: no cut). Only the
    start of `text` is measured: a 10 MB tool output is cut as fast as a short one."""
    text = one_line(text)
    if width <= 0:
        return text
    head = _head(text, width)
    return text if len(head) == len(text) else _head(head, width - 1) + "…"


def clip_left(text: str, width: int) -> str:
    """Like `clip`, but keeps the end (for paths): `…/projects/zag`."""
    text = one_line(text)
    if width <= 0:
        return text
    tail = _head(text[::-1], width)
    return text if len(tail) == len(text) else "…" + _head(tail, width - 1)[::-1]


def one_line(text: str) -> str:
    """Collapse newlines and tabs so a value fits a table cell or an event line, and make it safe to
    print: escape sequences in it (a tool's coloured output, a title or clipboard OSC, a screen clear)
    are dropped, other control characters shown as `^X` (they would recolour, move or clear what the
    terminal shows), bidirectional overrides as `<202e>`."""
    if text.isascii() and text.isprintable():  # most text: nothing to do (listings make many cells)
        return text
    if "\n" in text or "\r" in text or "\t" in text:
        text = " ".join(text.split())
    if _CONTROL.search(text):
        text = _CONTROL.sub(_shown_control, _ESCAPE_SEQUENCE.sub("", text))
    return text


# CSI (colours, cursor moves), OSC (titles, clipboard, links; ended by BEL or ST), other ESC sequences
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -/]*[0-~]|\x9b[0-?]*[ -/]*[@-~]")
# + the bidirectional overrides, embeddings and isolates: on a terminal that orders right-to-left text
# they turn the rest of the line around, so an agent's text could show one command and hold another
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


# In a log line (JSON): C1 controls and bidirectional overrides, which JSON keeps as raw UTF-8 (C2 80-9F,
# E2 80 AA-AE, E2 81 A6-A9); ESC and the other C0 controls are already written as \u escapes.
_RAW_CONTROLS = re.compile(rb"\xc2[\x80-\x9f]|\xe2\x80[\xaa-\xae]|\xe2\x81[\xa6-\xa9]")


def is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def terminal_safe_json(line: bytes) -> bytes:
    """A log line for `--json` on a terminal: the same JSON, with the controls a terminal may obey
    (U+009B is CSI for some) written as JSON escapes instead of raw."""
    if not _RAW_CONTROLS.search(line):
        return line
    return _RAW_CONTROLS.sub(lambda match: b"\\u%04x" % ord(match.group().decode()), line)


def _shown_control(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return "^" + chr(code + 0x40)
    return "^?" if code == 0x7F else f"<{code:02x}>"


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    style: Style,
    *,
    width: int = 0,
    gap: str = "  ",
) -> str:
    """Left-aligned columns; when `width` > 0 each line fits in it: the last column is cut first, and
    on a terminal too narrow even for the other columns, each line is cut at the width.

    `rows` is read once, each row kept as its shown text as it comes (the caller may hand out rows from a
    cursor: with tens of thousands of sessions, their dicts are not all held at once)."""
    kept: list[tuple[tuple[str, ...], tuple[str | None, ...]]] = []
    looks: dict[tuple[str | None, ...], tuple[str | None, ...]] = {}  # rows share their styles' tuple
    widths = [len(h) for h in headers]
    for row in rows:
        texts, marks = _cells(row)
        for column in range(len(texts) - 1):
            columns = text_width(texts[column])
            if columns > widths[column]:
                widths[column] = columns
        kept.append((texts, looks.setdefault(marks, marks)))
    lead = sum(widths[:-1]) + len(gap) * (len(headers) - 1)
    last_width = max(width - lead, 8) if width > 0 else 0
    paint = style if style.enabled else None
    final = len(headers) - 1

    def line(texts: tuple[str, ...], marks: tuple[str | None, ...]) -> str:
        parts = []
        room = width if width > 0 else None  # columns left on the line
        for column, text in enumerate(texts):
            if column == final:
                shown = clip(text, last_width) if last_width else text
            else:
                shown = text + " " * (widths[column] - text_width(text))
            if room is not None:
                room -= len(gap) if column else 0
                if room <= 0:
                    break
                if text_width(shown) > room:
                    shown, room = clip(shown.rstrip(), room), 0
                else:
                    room -= text_width(shown)
            mark = marks[column]
            parts.append(paint(shown, mark) if paint and mark else shown)
        return gap.join(parts).rstrip()

    out = [line(*_cells([(header, "bold") for header in headers]))]
    out.extend(line(texts, marks) for texts, marks in kept)
    return "\n".join(out)


def _cells(row: Sequence[Cell]) -> tuple[tuple[str, ...], tuple[str | None, ...]]:
    """A row's cells as their one-line texts and their styles."""
    texts, marks = [], []
    for cell in row:
        text, mark = (cell, None) if isinstance(cell, str) else cell
        texts.append(one_line(text))
        marks.append(mark)
    return tuple(texts), tuple(marks)


# --- times ---------------------------------------------------------------------------------------
def local_time(epoch: float | None, *, with_date: bool = True) -> str:
    """`2026-12-06 23:54` (or `23:54:07` when `with_date` is False) in local time; `-` when unknown."""
    if epoch is None:
        return "-"
    stamp = time.localtime(epoch)
    return time.strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M:%S", stamp)


def when(epoch: float | None, now: float | None = None) -> str:
    """A moment near now, shortly: `14:05` today, `Dec 07 14:05` another day; `-` when unknown."""
    if epoch is None:
        return "-"
    now = time.time() if now is None else now
    stamp, today = time.localtime(epoch), time.localtime(now)
    if stamp[:3] == today[:3]:
        return time.strftime("%H:%M", stamp)
    return time.strftime("%b %d %H:%M", stamp)


def duration(seconds: float | None) -> str:
    """`45s`, `12m`, `3h05m`, `4d02h`; `-` when unknown."""
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def event_clock(ts: Any) -> str:
    """An event's RFC 3339 `ts` as local `HH:MM:SS`; the raw value if it cannot be read."""
    epoch = epoch_of(ts)
    return local_time(epoch, with_date=False) if epoch is not None else one_line(str(ts or "-"))


_EPOCH_MIN, _EPOCH_MAX = -62135596800, 253402300799  # 0001-01-01, 9999-12-31T23:59:59 UTC


def epoch_of(value: Any) -> float | None:
    """Epoch seconds from an epoch number or an RFC 3339 string; None if neither (or a number no clock
    shows: NaN, beyond the year 9999, which `time.localtime` refuses)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) if _EPOCH_MIN <= value <= _EPOCH_MAX else None
    if isinstance(value, str):
        from datetime import datetime, timezone

        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.timestamp()
    return None


# --- small value formatting ------------------------------------------------------------------------
def short_id(session_id: str | None, length: int = 8) -> str:
    return (session_id or "-")[:length]


def command_line(argv: Any) -> str:
    """An argv list as the shell would show it (`-` when unknown)."""
    if isinstance(argv, (list, tuple)) and argv:
        return shlex.join(str(part) for part in argv)
    return "-"


@functools.cache
def _homes() -> tuple[str, ...]:
    """The user's home as HOME names it and, when that goes through a symlink (`/home` -> `/data/home`),
    as the kernel does: the cwd zag records is the latter (getcwd)."""
    home = os.path.expanduser("~")
    if home in ("", "/"):
        return ()
    real = os.path.realpath(home)
    return (home,) if real in (home, "/") else (home, real)


def home_path(path: str | None) -> str:
    """A path with the user's home shown as `~`."""
    if not path or not isinstance(path, str):
        return "-" if not path else str(path)
    for home in _homes():
        if path == home or path.startswith(home + os.sep):
            return "~" + path[len(home):]
    return path


# --- event lines -----------------------------------------------------------------------------------
_ENVELOPE = ("seq", "ts", "session_id", "provider", "provider_session_id", "source", "type")

# type -> (label, style of the label)
_EVENT_LOOK = {
    "session_started": ("started", "bold cyan"),
    "user_message": ("user", "bold green"),
    "assistant_message": ("assistant", "bold blue"),
    "reasoning": ("thinking", "magenta"),
    "tool_call": ("tool", "yellow"),
    "tool_result": ("result", "yellow"),
    "usage": ("usage", "grey"),
    "provider_status": ("status", "grey"),
    "parse_warning": ("warning", "red"),
    "session_cleared": ("cleared", "cyan"),
    "heartbeat": ("heartbeat", "dim"),
    "usage_limit_hit": ("LIMIT HIT", "bold red"),
    "usage_limit_resume_started": ("resuming", "bold yellow"),
    "usage_limit_resumed": ("resumed", "bold green"),
    "usage_limit_resume_failed": ("resume failed", "bold red"),
    "session_ended": ("ended", "bold cyan"),
}
# zag's own notes (a wrapper `provider_status`), by `data.kind`: (label, style)
_NOTE_LOOK = {
    NOTE_USAGE_LIMIT_CANCELLED: ("cancelled", "bold yellow"),
    NOTE_USAGE_LIMIT_RECOVERED: ("recovered", "bold green"),
    NOTE_AGENT_EXITED: ("exited", "bold yellow"),
    NOTE_AGENT_STARTED: ("relaunched", "bold cyan"),
}
_LABEL_WIDTH = 13
_INPUT_KEYS = ("command", "cmd", "file_path", "path", "notebook_path", "pattern", "query", "url",
               "description", "prompt")


def format_event(event: dict[str, Any], style: Style, *, width: int = 0) -> str:
    """One readable line for an event: local time, provider, what happened, a content summary."""
    event_type = str(event.get("type", "?"))
    note = _zag_note(event)
    label, label_style = _NOTE_LOOK[note] if note else _EVENT_LOOK.get(event_type, (one_line(event_type), "grey"))
    head = f"{event_clock(event.get('ts'))} {one_line(str(event.get('provider') or '-')):<6} "
    summary = _NOTE_SUMMARIES[note](event) if note else _summary(event_type, event)
    if width > 0:  # a label longer than the column (a type this zag does not know) pushes the summary right
        summary = clip(summary, max(width - text_width(head) - max(text_width(label), _LABEL_WIDTH) - 1, 10))
    else:
        summary = one_line(summary)
    if event_type == "heartbeat":
        return style(f"{head}{label:<{_LABEL_WIDTH}} {summary}".rstrip(), "dim")
    return f"{style(head, 'dim')}{style(f'{label:<{_LABEL_WIDTH}}', label_style)} {summary}".rstrip()


def _zag_note(event: dict[str, Any]) -> str | None:
    """The `data.kind` of one of zag's own notes that has a look of its own; None for any other event."""
    data = event.get("data")
    if event.get("type") != "provider_status" or event.get("source") != SOURCE_WRAPPER or not isinstance(data, dict):
        return None
    kind = data.get("kind")
    return kind if isinstance(kind, str) and kind in _NOTE_LOOK else None


def _summary(event_type: str, event: dict[str, Any]) -> str:
    handler = _SUMMARIES.get(event_type)
    if handler is not None:
        return handler(event)
    extra = {key: value for key, value in event.items() if key not in _ENVELOPE}
    return compact_json(extra) if extra else ""


def text_of(value: Any) -> str:
    """The readable text in a message value: a string, or the text parts of a list of blocks.

    Walked with a stack of its own, not by recursion: a tool's output nested hundreds of lists deep
    (what an MCP server returns is the agent's to log) must not end `zag listen` with a RecursionError."""
    if isinstance(value, str):
        return value
    parts: list[str] = []
    pending = [value]
    while pending:
        item = pending.pop()
        if item is None:
            continue
        if isinstance(item, str):
            if item:
                parts.append(item)
        elif isinstance(item, list):
            pending.extend(reversed(item))
        elif isinstance(item, dict):
            key = next((key for key in ("text", "content", "message", "thinking") if key in item), None)
            if key is not None:
                pending.append(item[key])
        else:
            parts.append(str(item))
    return " ".join(parts)


def compact_json(value: Any) -> str:
    import json

    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    except RecursionError:
        return "(nested too deeply to show)"
    except (TypeError, ValueError):
        return repr(value)


def _message(event: dict[str, Any]) -> str:
    for key in ("content", "text", "message", "thinking"):
        if event.get(key) is not None:
            return text_of(event[key])
    return ""


def _tool_call(event: dict[str, Any]) -> str:
    name = event.get("tool_name") or "?"
    kind = event.get("tool_kind")
    tool_input = event.get("input")
    if isinstance(tool_input, dict):
        shown = next((tool_input[k] for k in _INPUT_KEYS if isinstance(tool_input.get(k), str)), None)
        argv = tool_input.get("command", tool_input.get("cmd"))
        if shown is None and isinstance(argv, list) and argv and all(isinstance(part, str) for part in argv):
            shown = command_line(argv)  # codex's shell calls: ["bash", "-lc", "ls -la"]
        detail = shown if shown is not None else compact_json(tool_input)
    elif tool_input is None:
        detail = ""
    else:
        detail = text_of(tool_input) if isinstance(tool_input, (str, list)) else compact_json(tool_input)
    kind_text = f" [{kind}]" if kind else ""
    return f"{name}{kind_text} {detail}".rstrip()


def _tool_result(event: dict[str, Any]) -> str:
    success = event.get("success")
    verdict = "ok" if success is True else "failed" if success is False else "done"
    body = text_of(event.get("error")) if success is False and event.get("error") else text_of(event.get("output"))
    return f"{verdict}: {body}" if body else verdict


def _usage(event: dict[str, Any]) -> str:
    parts = []
    for key, value in event.items():
        if key in _ENVELOPE or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if "token" in key:
            parts.append(f"{key.replace('_tokens', '').replace('_', ' ')} {value:,}")
        elif "cost" in key:
            parts.append(f"${value:.4f}")
    if event.get("model"):
        parts.append(str(event["model"]))
    return " · ".join(parts) or compact_json({k: v for k, v in event.items() if k not in _ENVELOPE})


def _limit_hit(event: dict[str, Any]) -> str:
    scope = event.get("scope") or "usage"
    text = f"{scope} limit hit; resets {when(epoch_of(event.get('reset_at')))}"
    resume = epoch_of(event.get("scheduled_resume_at"))
    if resume is not None:
        text += f", resume at {when(resume)}"
    if event.get("fallback_used"):
        text += " (reset time not stated: fallback)"
    superseded = event.get("supersedes")
    if isinstance(superseded, list) and superseded:
        text += f"; supersedes incident {', '.join(str(old)[:8] for old in superseded)} (failed)"
    return text


def _limit_resumed(event: dict[str, Any]) -> str:
    text = f"resumed after usage limit (attempt {event.get('attempt', '?')})"
    if event.get("resume_message"):
        text += f": {text_of(event['resume_message'])}"
    return text


def _limit_failed(event: dict[str, Any]) -> str:
    text = f"resume attempt {event.get('attempt', '?')} failed: {text_of(event.get('error')) or 'unknown error'}"
    if "next_resume_at" in event:
        retry = epoch_of(event.get("next_resume_at"))
        text += f"; next attempt at {when(retry)}" if retry is not None else "; no further attempt"
    return text


def _heartbeat(event: dict[str, Any]) -> str:
    text = f"every {event.get('interval_secs', '?')}s"
    if event.get("state") == "waiting":
        left = event.get("remaining_secs")
        text += f"; waiting for the usage-limit reset, resume at {when(epoch_of(event.get('resume_at')))}"
        if isinstance(left, (int, float)) and not isinstance(left, bool):
            text += f" (in {duration(left)})"
    return text


def _started(event: dict[str, Any]) -> str:
    text = f"{command_line(event.get('argv'))} in {home_path(event.get('cwd'))}"
    flags = [name for name in ("resumed", "backfilled", "interactive") if event.get(name)]
    if event.get("model"):
        text += f" (model {event['model']})"
    if flags:
        text += " [" + ", ".join(flags) + "]"
    return text


def _ended(event: dict[str, Any]) -> str:
    code = event.get("exit_code")
    reason = event.get("reason")
    if reason == "dismissed" and code is None:
        text = "dismissed with `zag dismiss`"
    else:
        text = f"exit {code}" if code is not None else "ended"
        if isinstance(reason, str):
            text += f" ({reason})"
    if event.get("cancelled"):
        text += " (cancelled)"
    if event.get("error"):
        text += f": {text_of(event['error'])}"
    return text


def _status(event: dict[str, Any]) -> str:
    message = text_of(event.get("message"))
    if event.get("type") == "parse_warning" and event.get("raw"):
        return f"{message}: {text_of(event['raw'])}" if message else text_of(event["raw"])
    return message or compact_json(event.get("data"))


def _cleared(event: dict[str, Any]) -> str:
    """The agent went on in another session of its own (`/clear`, `/new`, a rerun that started anew)."""
    new, old = event.get("new_session_id"), event.get("old_session_id")
    if not new:
        return "conversation cleared"
    return f"now in {_agent(event)} session {str(new)[:8]}" + (f" (was {str(old)[:8]})" if old else "")


def _resume_started(event: dict[str, Any]) -> str:
    return f"starting resume attempt {event.get('attempt', '?')} after the usage limit{_incident(event)}"


def _incident(fields: dict[str, Any]) -> str:
    """` (incident 0a1b2c3d)`, or nothing when `fields` names none."""
    incident = fields.get("incident_id")
    return f" (incident {incident[:8]})" if isinstance(incident, str) and incident else ""


def _agent(event: dict[str, Any]) -> str:
    return str(event.get("provider") or "the agent")


def _agent_exited(event: dict[str, Any]) -> str:
    data = event["data"]
    signal, code = data.get("signal"), data.get("exit_code")
    if isinstance(signal, str) and signal:
        how = f"was killed by {signal}"
    else:
        how = f"exited with code {code}" if code is not None else "exited"
    return f"{_agent(event)} {how}; waiting to resume it after the usage limit{_incident(data)}"


def _agent_started(event: dict[str, Any]) -> str:
    data = event["data"]
    pid = data.get("child_pid")
    text = f"{_agent(event)} runs again" + (f" (pid {pid})" if pid is not None else "")
    argv = command_line(data.get("final_argv"))
    return text + (f": {argv}" if argv != "-" else "")


_CANCEL_CAUSES = {"usage_cancel": "with `zag usage cancel`", "interrupted": "(zag was interrupted)",
                  "terminal_hangup": "(the terminal hung up)",
                  "dismissed": "(the dead session was dismissed with `zag dismiss`)"}


def _limit_note(event: dict[str, Any]) -> str:
    """A usage-limit note: its message (zag writes a sentence); said from its data if it has none."""
    message = text_of(event.get("message"))
    if message:
        return message
    data = event["data"]
    if data["kind"] == NOTE_USAGE_LIMIT_RECOVERED:
        return f"{_agent(event)} continued by itself after the usage limit; no resume needed{_incident(data)}"
    cause = _CANCEL_CAUSES.get(str(data.get("cause")), "")
    return f"resume cancelled {cause}".rstrip() + _incident(data)


# zag's own notes, by `data.kind`
_NOTE_SUMMARIES = {
    NOTE_USAGE_LIMIT_CANCELLED: _limit_note,
    NOTE_USAGE_LIMIT_RECOVERED: _limit_note,
    NOTE_AGENT_EXITED: _agent_exited,
    NOTE_AGENT_STARTED: _agent_started,
}

_SUMMARIES = {
    "session_started": _started,
    "user_message": _message,
    "assistant_message": _message,
    "reasoning": _message,
    "tool_call": _tool_call,
    "tool_result": _tool_result,
    "usage": _usage,
    "provider_status": _status,
    "parse_warning": _status,
    "session_cleared": _cleared,
    "heartbeat": _heartbeat,
    "usage_limit_hit": _limit_hit,
    "usage_limit_resume_started": _resume_started,
    "usage_limit_resumed": _limit_resumed,
    "usage_limit_resume_failed": _limit_failed,
    "session_ended": _ended,
}
