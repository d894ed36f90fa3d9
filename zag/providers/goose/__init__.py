"""Goose: everything zag knows about this agent CLI (argv, session database, limit wordings).

Modules: `argv` (command lines), `homes` (where goose keeps its files), `db` (its `sessions.db`),
`records` (message → events), `tools` (tool kinds), `usage` (token counters → usage events), `reader`
(incremental readers, live and backfill), `history` (discover), `live` (the running child's session),
`limits` (limit wordings), `scanner` (output watching), `provider` (the `Provider`).
"""

from __future__ import annotations

from zag.providers.goose.provider import GooseProvider

PROVIDER = GooseProvider()

__all__ = ["PROVIDER", "GooseProvider"]
