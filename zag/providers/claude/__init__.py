"""Claude Code: everything zag knows about this agent CLI (argv, session files, limit wordings).

SKELETON: identity only; the rest is being implemented (see issue 3/4).
"""

from __future__ import annotations

from typing import Any


class _Skeleton:
    name = "claude"
    executable = "claude"
    install_hint = "npm install -g @anthropic-ai/claude-code"

    def __getattr__(self, attribute: str) -> Any:
        raise NotImplementedError(f"{self.name} provider: {attribute} is not implemented yet")


PROVIDER: Any = _Skeleton()
