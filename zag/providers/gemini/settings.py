"""Reading (never writing) Gemini CLI settings that matter to zag.

`general.sessionRetention.enabled` (default true in 0.61.0) makes the CLI's start-up cleanup delete a
session whose short id also names a header-only file — which is what resuming in a later minute leaves
behind (REAL_CLIS.md, "Bug (data loss)"). zag does not edit the user's settings; it warns in the session
log when it plans a resume while retention is on (see `retention_warning`).

Precedence (highest first): system settings (`GEMINI_CLI_SYSTEM_SETTINGS_PATH` or
/etc/gemini-cli/settings.json), workspace `<cwd>/.gemini/settings.json`, user `~/.gemini/settings.json`,
system defaults (`GEMINI_CLI_SYSTEM_DEFAULTS_PATH` or `system-defaults.json` beside the system file).
Files may hold comments (JSONC).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zag.logs import codec
from zag.providers.gemini import homes

DEFAULT_SYSTEM_SETTINGS = "/etc/gemini-cli/settings.json"
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
RETENTION_ADVICE = 'set "general": {"sessionRetention": {"enabled": false}} in ~/.gemini/settings.json'


def settings_files(cwd: str, env: Mapping[str, str]) -> list[Path]:
    system = Path(env.get("GEMINI_CLI_SYSTEM_SETTINGS_PATH") or DEFAULT_SYSTEM_SETTINGS)
    defaults = Path(env.get("GEMINI_CLI_SYSTEM_DEFAULTS_PATH") or system.parent / "system-defaults.json")
    found = [system, Path(cwd) / homes.GEMINI_DIR / "settings.json"]
    root = homes.gemini_root(env)
    if root is not None:
        found.append(root / "settings.json")
    found.append(defaults)
    return found


def setting(cwd: str, env: Mapping[str, str], *path: str) -> Any:
    """The effective value of a nested setting (None when no file sets it)."""
    for file in settings_files(cwd, env):
        value: Any = load(file)
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            return value
    return None


def retention_enabled(cwd: str, env: Mapping[str, str]) -> bool:
    value = setting(cwd, env, "general", "sessionRetention", "enabled")
    return value if isinstance(value, bool) else True


def retention_warning(cwd: str, env: Mapping[str, str]) -> str | None:
    """The warning zag logs before resuming a Gemini session while session retention is on."""
    if not retention_enabled(cwd, env):
        return None
    return ("gemini session retention is on: resuming in a later minute leaves a header-only chat file "
            "that gemini's next start-up cleanup treats as invalid, deleting the whole session (its "
            "events already in this log stay). To keep gemini's own copy, " + RETENTION_ADVICE)


def load(file: Path) -> dict[str, Any]:
    try:
        if not os.path.isfile(file):
            return {}
        text = file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    try:
        data = codec.loads(strip_comments(text))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def strip_comments(text: str) -> str:
    """JSONC → JSON: drop `// …` and `/* … */` outside strings, and trailing commas."""
    out: list[str] = []
    index, length = 0, len(text)
    in_string = False
    while index < length:
        char = text[index]
        if in_string:
            out.append(char)
            if char == "\\" and index + 1 < length:
                out.append(text[index + 1])
                index += 2
                continue
            if char == '"':
                in_string = False
            index += 1
        elif char == '"':
            in_string = True
            out.append(char)
            index += 1
        elif text.startswith("//", index):
            end = text.find("\n", index)
            index = length if end < 0 else end
        elif text.startswith("/*", index):
            end = text.find("*/", index + 2)
            index = length if end < 0 else end + 2
        else:
            out.append(char)
            index += 1
    return _drop_trailing_commas("".join(out))


def _drop_trailing_commas(text: str) -> str:
    return _TRAILING_COMMA.sub(r"\1", text)
