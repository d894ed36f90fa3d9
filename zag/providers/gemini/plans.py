"""Launch and resume plans for gemini.

New run: the user's args untouched; zag prepends `--session-id <uuid>` (gemini ≥ 0.41, or a version it
cannot tell) so it can find the chat file exactly — unless the user's args already decide the session
(`--resume/-r`, `--session-id`, `--session-file`) or the run is no chat (a subcommand, `--help`,
`--version`, `--list-sessions`, `--delete-session`, `--list-extensions`, ACP mode). Prepended, because
everything after a `--` is the prompt.

A user's own `--resume` continues a session whose earlier turns were logged (by the zag run that had them,
or by backfill): like zag's own resume, it logs only what the child adds (`skip_existing`).

Resume: `gemini --resume <id> -p <message> [the user's other flags]` (headless) or
`gemini --resume <id> [flags]` (interactive; zag types the message at the prompt), run in the original
cwd, since gemini looks sessions up per project. Dropped: the old prompt (positional, `-p`, `-i`) and the
session flags. A session whose only turn failed holds nothing gemini can resume (it rolled the prompt
back; `--resume` would exit 42), and one deleted meanwhile is gone: then the plan is the original command
again, as a new session (a user-chosen `--session-id` is replaced: gemini refuses an id that exists).
Interactive, that session's prompt is what zag types then (`dropped_prompt`: its chat file still holds
the rolled-back `user` record), never the resume message: a re-run without a prompt of its own is an empty
new chat (`notes["new_chat"]`), where zag types nothing when it has no dropped prompt.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from zag.providers.base import LaunchContext, LaunchPlan
from zag.providers.gemini import argv, files, homes, settings, version


def plan_launch(user_args: Sequence[str], ctx: LaunchContext) -> LaunchPlan:
    parsed = argv.parse(user_args)
    notes: dict[str, Any] = {"output_format": parsed.output_format}
    plan = LaunchPlan(args=list(user_args), model=parsed.model, notes=notes)
    if parsed.tracks_no_session:
        notes["no_session"] = True
        return plan
    session_id = parsed.value("--session-id")
    resume = parsed.resume
    if parsed.has("--session-file"):
        notes["session_file"] = parsed.value("--session-file")
    elif session_id:
        plan.provider_session_id = session_id
    elif resume is not None:
        notes["user_resume"] = resume or "latest"
        notes["skip_existing"] = True  # the earlier turns are in the log of the run that had them
        if argv.is_session_id(resume):
            plan.provider_session_id = resume
        else:  # latest / an index: which session gemini will take, looked up as gemini does (a preference)
            guess = files.resume_choice(homes.chats_dirs_for_cwd(ctx.cwd, ctx.env), notes["user_resume"])
            if guess:
                notes["resume_guess"] = guess
        warning = settings.retention_warning(ctx.cwd, ctx.env)
        if warning:
            notes["warnings"] = [warning]
    elif version.supports_session_id(ctx.env):
        plan.provider_session_id = str(uuid.uuid4())
        plan.args = ["--session-id", plan.provider_session_id, *user_args]
        notes["zag_session_id"] = True
    return plan


def plan_resume(user_args: Sequence[str], provider_session_id: str | None, message: str,
                ctx: LaunchContext) -> LaunchPlan:
    parsed = argv.parse(user_args)
    if parsed.tracks_no_session or not provider_session_id or not is_resumable(provider_session_id, ctx):
        return _rerun_original(user_args, parsed, provider_session_id, ctx)
    kept = parsed.without(argv.RESUME_DROPS, positionals=True)
    args = ["--resume", provider_session_id]
    if not ctx.interactive:
        args += argv.prompt_args(message)
    notes: dict[str, Any] = {"output_format": parsed.output_format, "skip_existing": True, "resumed": True}
    warning = settings.retention_warning(ctx.cwd, ctx.env)
    if warning:
        notes["warnings"] = [warning]
    return LaunchPlan(args=args + kept, provider_session_id=provider_session_id, model=parsed.model, notes=notes)


def is_resumable(provider_session_id: str, ctx: LaunchContext) -> bool:
    """Would `gemini --resume <id>` from `ctx.cwd` find a conversation to continue?"""
    return any(resumable for resumable, _ in _read_sessions(provider_session_id, ctx))


def dropped_prompt(provider_session_id: str | None, ctx: LaunchContext) -> str | None:
    """The prompt gemini rolled back when the session's only turn failed (its chat file still holds the
    `user` record before the `$set` that drops it): a resume types it again, since the resume message
    would reach a conversation that never saw it. None when the session has something to continue or
    no dropped prompt is found (no session id, chat file gone)."""
    if not provider_session_id:
        return None
    found = None
    for resumable, items in _read_sessions(provider_session_id, ctx):
        if resumable:
            return None
        found = _last_rolled_back(items) or found
    return found


def _read_sessions(provider_session_id: str, ctx: LaunchContext) -> Iterator[tuple[bool, list[Any]]]:
    """For each chat folder of `ctx.cwd` holding the session: whether it has something to resume, and
    what its chat files say."""
    for chats in homes.chats_dirs_for_cwd(ctx.cwd, ctx.env):
        paths = files.main_files(chats, provider_session_id)
        if not paths:
            continue
        from zag.providers.gemini.reader import GeminiReader  # only resumes need it: spare `zag run` the import

        reader = GeminiReader(provider_session_id, paths)
        items = list(reader.read())
        yield reader.conversation.has_resumable(reader.main_indexes()), items


def _last_rolled_back(items: list[Any]) -> str | None:
    """The text of the newest user prompt that a rollback removed."""
    prompts: dict[str, str] = {}
    removed: list[str] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "user_message" and isinstance(item.get("content"), str):
            prompts[str(item.get("message_id"))] = item["content"]
        data = item.get("data")
        if isinstance(data, dict) and data.get("kind") == "messages_removed" and data.get("reason") == "rollback":
            removed += [str(message_id) for message_id in data.get("message_ids") or ()]
    dropped = [prompts[message_id] for message_id in removed if prompts.get(message_id, "").strip()]
    return dropped[-1] if dropped else None


def _rerun_original(user_args: Sequence[str], parsed: argv.ParsedArgs, previous: str | None,
                    ctx: LaunchContext) -> LaunchPlan:
    if parsed.tracks_no_session:
        args, reason = list(user_args), "not a chat session"
    else:
        args = parsed.without(frozenset({"--resume", "--session-id"}), positionals=False)
        reason = "no session id" if not previous else "the session has nothing gemini can resume"
    plan = plan_launch(args, ctx)
    plan.notes.update({"rerun_original": True, "reason": reason})
    if ctx.interactive and not (parsed.tracks_no_session or parsed.has("--prompt-interactive") or parsed.positionals):
        plan.notes["new_chat"] = True   # an empty new chat: only a dropped prompt means anything typed there
    if previous:
        plan.notes["previous_session_id"] = previous
    if parsed.has("--session-id"):
        plan.notes["replaced_session_id"] = parsed.value("--session-id")
    return plan
