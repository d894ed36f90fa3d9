"""The agent CLIs zag supervises. Each lives in its own module exposing `PROVIDER` (see `base.Provider`).

Modules are imported on first use, so a command pays only for the providers it touches.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zag.providers.base import Provider

NAMES = ("claude", "codex", "gemini", "goose")


class UnknownProvider(ValueError):
    """A provider name zag does not know; the message is user-facing."""


def get(name: str) -> Provider:
    """The provider called `name` (one of `NAMES`)."""
    if name not in NAMES:
        raise UnknownProvider(f"unknown agent {name!r}: choose one of {', '.join(NAMES)}")
    module = importlib.import_module(f"zag.providers.{name}")
    return module.PROVIDER


def all_providers() -> list[Provider]:
    return [get(name) for name in NAMES]
