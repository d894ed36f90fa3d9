"""Gemini CLI (`@google/gemini-cli`): everything zag knows about this agent CLI.

Modules: `homes` (where its files live), `files` (session file names and heads), `argv` (its command
line), `plans` (launch/resume argv), `records` + `conversation` (chat records → events, each once),
`reader` (incremental reader of one session), `live` (the running child's session), `history`
(backfill discovery), `promptlog` (prompts of deleted sessions), `limits` + `scanner` (usage-limit
wordings and output watching), `dialogs` (TUI keystrokes), `settings` (reading its settings),
`version` (installed version without running it).

Only `plans` (what launching needs) is imported up front; the others load when first asked for, after
`zag run` has spawned the agent.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zag.providers.base import LaunchContext, LaunchPlan
from zag.providers.gemini import plans

if TYPE_CHECKING:
    from zag.providers.base import HistorySource, LiveSession, OutputScanner, SessionReader


class GeminiProvider:
    name = "gemini"
    executable = "gemini"
    install_hint = "npm install -g @google/gemini-cli"

    def plan_launch(self, user_args: Sequence[str], ctx: LaunchContext) -> LaunchPlan:
        return plans.plan_launch(user_args, ctx)

    def plan_resume(self, user_args: Sequence[str], provider_session_id: str | None, message: str,
                    ctx: LaunchContext) -> LaunchPlan:
        return plans.plan_resume(user_args, provider_session_id, message, ctx)

    def dropped_prompt(self, provider_session_id: str | None, ctx: LaunchContext) -> str | None:
        return plans.dropped_prompt(provider_session_id, ctx)

    def open_live(self, plan: LaunchPlan, ctx: LaunchContext) -> LiveSession:
        from zag.providers.gemini.live import GeminiLive

        return GeminiLive(plan, ctx)

    def output_scanner(self, ctx: LaunchContext) -> OutputScanner:
        from zag.providers.gemini.scanner import GeminiScanner

        return GeminiScanner(ctx)

    def discover(self, env: Mapping[str, str]) -> Iterator[HistorySource]:
        from zag.providers.gemini import history

        return history.discover(env)

    def open_reader(self, source: HistorySource, cursor: Any) -> SessionReader:
        from zag.providers.gemini import history

        if source.extra.get("kind") == history.KIND_PROMPT_LOG:
            from zag.providers.gemini.promptlog import PromptLogReader

            return PromptLogReader(source.provider_session_id, Path(source.paths[0]), cursor)
        from zag.providers import tail
        from zag.providers.gemini.reader import GeminiReader

        return GeminiReader(source.provider_session_id, [Path(path) for path in source.paths], cursor,
                            settle_secs=tail.TORN_SETTLE_SECS)

    def unblock_keys(self, screen: str) -> bytes | None:
        from zag.providers.gemini import dialogs

        return dialogs.unblock_keys(screen)

    def resume_keys(self, message: str) -> bytes:
        from zag.providers.gemini import dialogs

        return dialogs.resume_keys(message)


PROVIDER = GeminiProvider()
