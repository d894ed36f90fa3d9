"""Claude Code: everything zag knows about this agent CLI (argv, session files, limit wordings, TUI keys).

Modules: `argv` (the CLI's options, launch/resume argv), `homes` (where its files live), `schema` (typed
transcript/stream shapes), `records` (lines → unified events), `reader` (incremental session reader, live
and backfill), `live` (finding and following the running child's transcript), `history` (backfill
discovery), `limits` (limit shapes and wordings), `scanner` (stdout/stderr/PTY watching), `keys` (TUI
keystrokes), `tools` (tool kinds), `provider` (the `Provider` itself).
"""

from __future__ import annotations

from zag.providers.claude.provider import ClaudeProvider

PROVIDER = ClaudeProvider()

__all__ = ["PROVIDER", "ClaudeProvider"]
