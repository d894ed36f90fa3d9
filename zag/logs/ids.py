"""Session ids: generation and validation of anything a user types before it touches a path."""

from __future__ import annotations

import re

_FULL_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_PREFIX = re.compile(r"^[0-9a-f-]{1,36}$")


class BadSessionId(ValueError):
    """A session id (or prefix) that is malformed, unknown or ambiguous. Its message is user-facing."""


def new_session_id() -> str:
    import uuid  # imported here: ~5 ms that read-only commands need not pay

    return str(uuid.uuid4())


def is_session_id(text: str) -> bool:
    return bool(_FULL_ID.match(text))


def check_prefix(text: str) -> str:
    """Return the lower-cased prefix, or raise `BadSessionId` for anything that is not hex and dashes."""
    candidate = text.strip().lower()
    if not candidate or not _PREFIX.match(candidate):
        raise BadSessionId(
            f"{text!r} is not a session id: use the id (or a unique prefix of it) shown by `zag sessions`"
        )
    return candidate
