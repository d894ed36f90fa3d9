"""The Claude Code provider: wires argv, live following, history, output scanning and keystrokes.

Only what launching needs (`argv`, `homes`) is imported up front: `zag run` spawns the agent right after
`plan_launch`, and the reader, live, history and scanner modules (~50 ms of imports: msgspec, the
limit wordings, zoneinfo) load afterwards, when the supervisor first asks for them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

from zag.providers import agent_env
from zag.providers.base import LaunchContext, LaunchPlan
from zag.providers.claude import argv, homes

if TYPE_CHECKING:
    from zag.providers.base import HistorySource, LiveSession, OutputScanner, SessionReader

_OFFSETS_KEPT = 200   # newest transcripts of the cwd whose sizes are noted for `--continue`


class ClaudeProvider:
    name = "claude"
    executable = "claude"
    install_hint = "npm install -g @anthropic-ai/claude-code"

    # -- launching --------------------------------------------------------------------------------
    def plan_launch(self, user_args: Sequence[str], ctx: LaunchContext) -> LaunchPlan:
        decision = argv.launch(user_args)
        notes: dict[str, Any] = dict(decision.notes)
        env = _agent_env(ctx, user_args)
        roots = _roots(env)
        if env.get("CLAUDE_CONFIG_DIR") != agent_env.as_agent_sees(ctx.env, ctx.cwd).get("CLAUDE_CONFIG_DIR"):
            notes["config_dir"] = env["CLAUDE_CONFIG_DIR"]
        if decision.session_id and not notes.get("session_id_chosen"):
            existing = homes.find_transcript(roots, decision.session_id, ctx.cwd)
            if existing is not None:
                notes["start_offsets"] = argv.start_offsets([existing])
        if notes.get("follow_cwd"):
            notes["start_offsets"] = argv.start_offsets(_cwd_transcripts(roots, ctx.cwd))
        return LaunchPlan(args=decision.args, provider_session_id=decision.session_id, model=decision.model,
                          notes=notes)

    def plan_resume(
        self, user_args: Sequence[str], provider_session_id: str | None, message: str, ctx: LaunchContext
    ) -> LaunchPlan:
        env = _agent_env(ctx, user_args)
        roots = _roots(env)
        transcript = None
        if provider_session_id and argv.is_uuid(provider_session_id):
            transcript = homes.find_transcript(roots, provider_session_id, ctx.cwd)
        if transcript is None:
            plan = self.plan_launch(user_args, ctx)
            plan.notes["resume_fallback"] = (
                f"no transcript for session {provider_session_id!r}: `claude --resume` would fail "
                "(No conversation found), so the original command runs again")
            return plan
        assert provider_session_id is not None
        args, model = argv.resume(user_args, provider_session_id, message, interactive=ctx.interactive)
        notes: dict[str, Any] = {"resume_of": provider_session_id, "start_offsets": argv.start_offsets([transcript])}
        if env.get("CLAUDE_CONFIG_DIR") != agent_env.as_agent_sees(ctx.env, ctx.cwd).get("CLAUDE_CONFIG_DIR"):
            notes["config_dir"] = env["CLAUDE_CONFIG_DIR"]
        return LaunchPlan(args=args, provider_session_id=provider_session_id, model=model, notes=notes)

    # -- following and scanning -------------------------------------------------------------------
    def open_live(self, plan: LaunchPlan, ctx: LaunchContext) -> LiveSession:
        from zag.providers.claude.live import ClaudeLiveSession

        return ClaudeLiveSession(plan, ctx)

    def output_scanner(self, ctx: LaunchContext) -> OutputScanner:
        from zag.providers.claude.scanner import ClaudeOutputScanner

        return ClaudeOutputScanner(ctx)

    # -- history ----------------------------------------------------------------------------------
    def discover(self, env: Mapping[str, str]) -> Iterator[HistorySource]:
        from zag.providers.claude import history

        return history.discover(env)

    def open_reader(self, source: HistorySource, cursor: Any) -> SessionReader:
        from zag.providers import tail
        from zag.providers.claude.reader import ClaudeSessionReader

        session_id = source.provider_session_id
        main: Path | None = Path(source.paths[0]) if source.paths else None
        subagents = None
        if main is not None and main.name == f"{session_id}.jsonl":
            subagents = homes.subagent_dir(main, session_id)
        elif main is not None and "subagents" in main.parts:
            parts = main.parts
            subagents = Path(*parts[:len(parts) - parts[::-1].index("subagents")])
            main = None  # the transcript is gone; its subagents are what is left
        return ClaudeSessionReader(session_id, main, cursor=cursor, subagents=subagents,
                                   settle_secs=tail.TORN_SETTLE_SECS)

    # -- interactive keystrokes -------------------------------------------------------------------
    def unblock_keys(self, screen: str) -> bytes | None:
        from zag.providers.claude import keys

        return keys.unblock_keys(screen)

    def resume_keys(self, message: str) -> bytes:
        from zag.providers.claude import keys

        return keys.resume_keys(message)


def _agent_env(ctx: LaunchContext, user_args: Sequence[str]) -> dict[str, str]:
    """The path variables as the claude child resolves them, with a CLAUDE_CONFIG_DIR its settings set."""
    env = agent_env.as_agent_sees(ctx.env, ctx.cwd)
    moved = homes.settings_config_dir(homes.live_root(env), argv.parse(user_args).value("--settings"), ctx.cwd)
    return agent_env.as_agent_sees({**env, "CLAUDE_CONFIG_DIR": moved}, ctx.cwd) if moved else env


def _roots(env: Mapping[str, str]) -> list[Path]:
    live = homes.live_root(env)
    return [live, *[root for root in homes.discovery_roots(env) if root != live]]


def _cwd_transcripts(roots: list[Path], cwd: str) -> list[Path]:
    found = []
    for root in roots:
        for folder in homes.project_dirs_for(root, cwd):
            try:
                entries = [entry for entry in os.scandir(folder) if entry.name.endswith(".jsonl")]
            except OSError:
                continue
            entries.sort(key=_mtime, reverse=True)
            found.extend(Path(entry.path) for entry in entries[:_OFFSETS_KEPT])
    return found


def _mtime(entry: os.DirEntry[str]) -> float:
    try:
        return entry.stat().st_mtime
    except OSError:
        return 0.0
