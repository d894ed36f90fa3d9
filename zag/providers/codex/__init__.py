"""Codex CLI (`@openai/codex`): everything zag knows about this agent CLI.

argv (`argv`), where its files live (`homes`), rollout records → unified events (`records`), the
incremental reader (`reader`), history discovery (`history`), following the running child (`live`),
output watching (`scanner`), limit wordings (`limits`) and TUI keystrokes (`keys`).

Only `argv` is imported up front (what launching needs); the others load when first asked for, after
`zag run` has spawned the agent.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from zag.providers.base import LaunchContext, LaunchPlan
from zag.providers.codex import argv

if TYPE_CHECKING:
    from zag.providers.base import HistorySource, LiveSession, OutputScanner, SessionReader


class CodexProvider:
    name = "codex"
    executable = "codex"
    install_hint = "npm install -g @openai/codex"

    def plan_launch(self, user_args: Sequence[str], ctx: LaunchContext) -> LaunchPlan:
        """The user's args untouched: Codex cannot be given a session id, so zag adds nothing."""
        args = list(user_args)
        parsed = argv.parse(args)
        notes: dict[str, Any] = {"command": parsed.command or "tui", "headless": parsed.headless}
        resuming = parsed.command == "resume" or (parsed.command in ("exec", "e") and parsed.subcommand == "resume")
        if resuming and argv.resume_id_of(parsed) is None:
            notes["resume_pick"] = "all" if parsed.has("--all") else "cwd"   # `--last` or the picker
        if parsed.has("--ephemeral"):
            notes["ephemeral"] = True
            notes["warning"] = "codex --ephemeral writes no session files: zag has no transcript to follow or resume"
        return LaunchPlan(args=args, provider_session_id=argv.resume_id_of(parsed), model=argv.model_of(args),
                          notes=notes)

    def plan_resume(
        self, user_args: Sequence[str], provider_session_id: str | None, message: str, ctx: LaunchContext
    ) -> LaunchPlan:
        parsed = argv.parse(user_args)
        model = argv.model_of(user_args)
        if not provider_session_id or parsed.has("--ephemeral"):
            reason = "no rollout to resume (--ephemeral)" if provider_session_id else "no codex thread id known"
            return LaunchPlan(args=list(user_args), model=model,
                              notes={"rerun_original": True, "reason": f"{reason}: running the original command again",
                                     "command": parsed.command or "tui", "ephemeral": parsed.has("--ephemeral")})
        if ctx.interactive:
            args = argv.interactive_resume(user_args, provider_session_id)
        else:
            args = argv.headless_resume(user_args, provider_session_id, message)
        return LaunchPlan(args=args, provider_session_id=provider_session_id, model=model,
                          notes={"resumed": True, "command": "resume" if ctx.interactive else "exec resume"})

    def open_live(self, plan: LaunchPlan, ctx: LaunchContext) -> LiveSession:
        from zag.providers.codex.live import CodexLiveSession

        return CodexLiveSession(plan, ctx)

    def output_scanner(self, ctx: LaunchContext) -> OutputScanner:
        from zag.providers.codex.scanner import CodexOutputScanner

        return CodexOutputScanner(ctx)

    def discover(self, env: Mapping[str, str]) -> Iterator[HistorySource]:
        from zag.providers.codex import history

        return history.discover(env)

    def open_reader(self, source: HistorySource, cursor: Any) -> SessionReader:
        from zag.providers import tail
        from zag.providers.codex.reader import RolloutReader

        return RolloutReader(source.paths, cursor, settle_secs=tail.TORN_SETTLE_SECS)

    def unblock_keys(self, screen: str) -> bytes | None:
        from zag.providers.codex import keys

        return keys.unblock_keys(screen)

    def resume_keys(self, message: str) -> bytes:
        from zag.providers.codex import keys

        return keys.resume_keys(message)


PROVIDER = CodexProvider()
