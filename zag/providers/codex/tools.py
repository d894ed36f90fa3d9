"""Codex tool names → unified `tool_kind`.

Codex's model-facing tools changed names over the releases: `shell` / `container.exec` / `local_shell`
(2025), `exec_command` + `write_stdin` (unified exec), `shell_command`, `apply_patch` (function or
freeform custom tool), `read_file`, `list_dir`, `grep_files`, `view_image`, `web_search`, multi-agent
`spawn_agent` & co, and MCP tools (`mcp__server__tool`, or a `namespace` on the call).
"""

from __future__ import annotations

from zag.logs import events

_KINDS = {
    "shell": events.TOOL_SHELL,
    "container.exec": events.TOOL_SHELL,
    "local_shell": events.TOOL_SHELL,
    "local_shell_call": events.TOOL_SHELL,
    "exec_command": events.TOOL_SHELL,
    "shell_command": events.TOOL_SHELL,
    "unified_exec": events.TOOL_SHELL,
    "write_stdin": events.TOOL_SHELL,
    "user_shell": events.TOOL_SHELL,
    "apply_patch": events.TOOL_FILE_EDIT,
    "edit": events.TOOL_FILE_EDIT,
    "edit_file": events.TOOL_FILE_EDIT,
    "write_file": events.TOOL_FILE_WRITE,
    "create_file": events.TOOL_FILE_WRITE,
    "read_file": events.TOOL_FILE_READ,
    "view_image": events.TOOL_FILE_READ,
    "list_dir": events.TOOL_SEARCH,
    "grep_files": events.TOOL_SEARCH,
    "grep": events.TOOL_SEARCH,
    "glob": events.TOOL_SEARCH,
    "find_files": events.TOOL_SEARCH,
    "web_search": events.TOOL_WEB,
    "web_search_preview": events.TOOL_WEB,
    "web_search_call": events.TOOL_WEB,
    "web.run": events.TOOL_WEB,
    "web_fetch": events.TOOL_WEB,
    "spawn_agent": events.TOOL_SUB_AGENT,
    "spawn_agents_on_csv": events.TOOL_SUB_AGENT,
    "send_input": events.TOOL_SUB_AGENT,
    "resume_agent": events.TOOL_SUB_AGENT,
    "close_agent": events.TOOL_SUB_AGENT,
    "wait": events.TOOL_SUB_AGENT,
    "wait_agent": events.TOOL_SUB_AGENT,
}


def tool_kind(name: str, namespace: str | None = None) -> str:
    """The unified kind of a Codex tool; MCP and unknown tools are `other`."""
    if namespace and namespace.startswith("mcp"):
        return events.TOOL_OTHER
    if name.startswith("mcp__"):
        return events.TOOL_OTHER
    kind = _KINDS.get(name)
    if kind is None and "." in name:  # e.g. `functions.exec_command`
        kind = _KINDS.get(name.rsplit(".", 1)[1])
    return kind or events.TOOL_OTHER
