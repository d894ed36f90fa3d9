"""Codex CLI: everything zag knows about this agent CLI (argv, session files, limit wordings).

SKELETON: identity only; the rest is being implemented (see issue 3/4).
"""

from __future__ import annotations

from typing import Any


class _Skeleton:
    name = "codex"
    executable = "codex"
    install_hint = "npm install -g @openai/codex"

    def __getattr__(self, attribute: str) -> Any:
        raise NotImplementedError(f"{self.name} provider: {attribute} is not implemented yet")


PROVIDER: Any = _Skeleton()
