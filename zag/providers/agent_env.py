"""The path variables of an agent's environment as the agent itself resolves them.

The CLIs take `HOME`, `CLAUDE_CONFIG_DIR`, `CODEX_HOME`, `GEMINI_CLI_HOME`, … literally: a relative value is
relative to the agent's working directory, and `~` is no home folder to them (claude 2.1.197 and codex 0.169
with `…='~/conf'`, as an env file or a quoted assignment leaves it, wrote into `<cwd>/~/conf/`; verified).
zag resolves them the same way, against the folder the child runs in — not zag's own, which differs under
`zag resume` — so it looks for the session files where the agent writes them. An empty `CLAUDE_CONFIG_DIR`
is such a relative path too: claude 2.1.197 then writes `<cwd>/projects/…` (verified; it does not fall back
to `~/.claude`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

# XDG_* are left out: a relative one is to be ignored (XDG Base Directory spec), not resolved
PATH_VARIABLES = ("HOME", "CLAUDE_CONFIG_DIR", "CODEX_HOME", "GEMINI_CLI_HOME")
# an empty HOME is no folder to Node/libuv (it asks the password database); empty CODEX_HOME and
# GEMINI_CLI_HOME were not measured and stay as zag always took them: unset
_EMPTY_IS_RELATIVE = frozenset({"CLAUDE_CONFIG_DIR"})


def as_agent_sees(env: Mapping[str, str], cwd: str) -> dict[str, str]:
    """`env` with each relative path variable joined to `cwd` (the agent's working directory)."""
    seen = dict(env)
    for name in PATH_VARIABLES:
        value = seen.get(name)
        if value is None or (not value.strip() and name not in _EMPTY_IS_RELATIVE):
            continue
        if not os.path.isabs(value.strip()):
            seen[name] = os.path.join(cwd, value)
    return seen
