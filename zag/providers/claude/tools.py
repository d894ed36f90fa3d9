"""Claude Code tool names → zag tool kinds."""

from __future__ import annotations

from zag.logs import events

_KINDS = {
    "bash": events.TOOL_SHELL,
    "bashoutput": events.TOOL_SHELL,
    "killbash": events.TOOL_SHELL,
    "killshell": events.TOOL_SHELL,
    "powershell": events.TOOL_SHELL,
    "read": events.TOOL_FILE_READ,
    "write": events.TOOL_FILE_WRITE,
    "edit": events.TOOL_FILE_EDIT,
    "multiedit": events.TOOL_FILE_EDIT,
    "grep": events.TOOL_SEARCH,
    "glob": events.TOOL_SEARCH,
    "ls": events.TOOL_SEARCH,
    "task": events.TOOL_SUB_AGENT,
    "agent": events.TOOL_SUB_AGENT,
    "webfetch": events.TOOL_WEB,
    "websearch": events.TOOL_WEB,
    "notebookedit": events.TOOL_NOTEBOOK,
    "notebookread": events.TOOL_NOTEBOOK,
}


_BY_NAME: dict[str, str] = {}   # names as spelt → kind: a bounded memo (a backfill asks hundreds of thousands of times)
_MEMO_SIZE = 4096


def tool_kind(name: str | None) -> str:
    """The kind of a tool by its name (case-insensitive); `mcp__*`, TodoWrite, Skill … are `other`."""
    if not name:
        return events.TOOL_OTHER
    kind = _BY_NAME.get(name)
    if kind is None:
        kind = _KINDS.get(name.lower(), events.TOOL_OTHER)
        if len(_BY_NAME) < _MEMO_SIZE:
            _BY_NAME[name] = kind
    return kind
