"""Goose: everything zag knows about this agent CLI (argv, session files, limit wordings).

SKELETON: identity only; the rest is being implemented (see issue 3/4).
"""

from __future__ import annotations

from typing import Any


class _Skeleton:
    name = "goose"
    executable = "goose"
    install_hint = "see https://block.github.io/goose/docs/getting-started/installation (brew install block-goose-cli, or the install script)"

    def __getattr__(self, attribute: str) -> Any:
        raise NotImplementedError(f"{self.name} provider: {attribute} is not implemented yet")


PROVIDER: Any = _Skeleton()
