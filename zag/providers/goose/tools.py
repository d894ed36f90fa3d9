"""goose tool names → unified `tool_kind`.

goose prefixes every tool with its extension: `<extension>__<tool>`. The built-in `developer`
extension is mapped tool by tool (old: `shell`, `text_editor` with a `command` argument, `list_windows`,
`screen_capture`, `image_processor`; new: `shell`, `edit`, `write`, `tree`, `read_image`); sub-agent,
web and notebook tools by what they do; everything else is `other`.
"""

from __future__ import annotations

from typing import Any

from zag.logs import events

_TEXT_EDITOR_COMMANDS = {
    "view": events.TOOL_FILE_READ,
    "write": events.TOOL_FILE_WRITE,
    "create": events.TOOL_FILE_WRITE,
    "str_replace": events.TOOL_FILE_EDIT,
    "insert": events.TOOL_FILE_EDIT,
    "edit": events.TOOL_FILE_EDIT,
    "undo_edit": events.TOOL_FILE_EDIT,
}
_DEVELOPER = {
    "shell": events.TOOL_SHELL,
    "bash": events.TOOL_SHELL,
    "edit": events.TOOL_FILE_EDIT,
    "str_replace": events.TOOL_FILE_EDIT,
    "write": events.TOOL_FILE_WRITE,
    "read": events.TOOL_FILE_READ,
    "view": events.TOOL_FILE_READ,
    "read_image": events.TOOL_FILE_READ,
    "image_processor": events.TOOL_FILE_READ,
    "analyze": events.TOOL_FILE_READ,
    "tree": events.TOOL_SEARCH,
    "search": events.TOOL_SEARCH,
    "glob": events.TOOL_SEARCH,
    "grep": events.TOOL_SEARCH,
    "rg": events.TOOL_SEARCH,
    "list_windows": events.TOOL_OTHER,
    "screen_capture": events.TOOL_OTHER,
}
_SUB_AGENT = ("subagent", "delegate", "dynamic_task", "execute_task", "create_task", "sub_recipe")
_WEB = ("web_search", "web_scrape", "web_fetch", "fetch", "search_web", "browse", "fetchcontent")
_WEB_EXTENSIONS = ("fetch", "search", "web", "tavily")
_CODE = {"execute", "execute_code"}


def tool_kind(name: Any, arguments: Any = None) -> str:
    """The unified kind of a goose tool call."""
    if not isinstance(name, str) or not name:
        return events.TOOL_OTHER
    extension, _, tool = name.rpartition("__")
    tool_lower = tool.lower()
    extension = extension.lower()
    if tool_lower == "text_editor":
        command = arguments.get("command") if isinstance(arguments, dict) else None
        return _TEXT_EDITOR_COMMANDS.get(command, events.TOOL_FILE_EDIT)
    if extension in ("", "developer") and tool_lower in _DEVELOPER:
        return _DEVELOPER[tool_lower]
    if tool_lower in _CODE:
        return events.TOOL_SHELL
    if any(word in tool_lower for word in _SUB_AGENT) or extension in ("subagent", "dynamic_task"):
        return events.TOOL_SUB_AGENT
    if "notebook" in name.lower() or "jupyter" in name.lower():
        return events.TOOL_NOTEBOOK
    if any(word in tool_lower for word in _WEB) or any(word in extension for word in _WEB_EXTENSIONS):
        return events.TOOL_WEB
    if extension == "computercontroller" and tool_lower in ("automation_script", "computer_control"):
        return events.TOOL_SHELL
    return events.TOOL_OTHER
