"""The goose `Provider`: wires argv planning, the live session, the output scanner and backfill.

Only `argv` (what launching needs) is imported up front; the others load when first asked for, after
`zag run` has spawned the agent.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zag.providers.base import KeySequence, LaunchContext, LaunchPlan
from zag.providers.goose import argv

if TYPE_CHECKING:
    from zag.providers.base import HistorySource, SessionReader
    from zag.providers.goose.live import GooseLiveSession
    from zag.providers.goose.scanner import GooseOutputScanner

BRACKETED_PASTE_START = b"\x1b[200~"
BRACKETED_PASTE_END = b"\x1b[201~"


class GooseProvider:
    name = "goose"
    executable = "goose"
    install_hint = ("see https://block.github.io/goose/docs/getting-started/installation "
                    "(brew install block-goose-cli, or the install script)")

    # -- launching ---------------------------------------------------------------------------------
    def plan_launch(self, user_args: Sequence[str], ctx: LaunchContext) -> LaunchPlan:
        command = argv.parse(user_args)
        args = list(user_args)
        notes: dict[str, Any] = {"kind": command.kind, "resume": command.resume,
                                 "fork": command.has("--fork"), "records": command.records}
        if command.has("--no-session"):
            notes["no_transcript"] = "goose run --no-session keeps no session: there is no transcript to follow"
        name = command.name
        session_id = command.session_id
        if (command.kind in (argv.KIND_RUN, argv.KIND_SESSION) and command.records
                and not name and not session_id and not command.resume):
            name = argv.zag_session_name(ctx.zag_session_id)
            args = [args[0], "--name", name, *args[1:]]
            notes["zag_named"] = True
        if name:
            notes["name"] = name
        if session_id:
            notes["session_id"] = session_id
        known = None if command.has("--fork") else session_id   # a fork writes to a new copy
        return LaunchPlan(args=args, provider_session_id=known, model=command.value("--model"), notes=notes)

    def plan_resume(self, user_args: Sequence[str], provider_session_id: str | None, message: str,
                    ctx: LaunchContext) -> LaunchPlan:
        command = argv.parse(user_args)
        name = command.name
        if not name and command.kind in (argv.KIND_RUN, argv.KIND_SESSION) and not command.resume:
            name = argv.zag_session_name(ctx.zag_session_id)
        if provider_session_id:
            identifier = ["--session-id", provider_session_id]
        elif name and command.records:
            identifier = ["--name", name]
        else:
            plan = self.plan_launch(user_args, ctx)
            plan.notes["rerun_original"] = True
            plan.notes["reason"] = "no goose session to resume (none was recorded): running the original command again"
            return plan
        if ctx.interactive:
            args = ["session", "--resume", *identifier, *argv.kept_options(command, target=argv.KIND_SESSION)]
            kind = argv.KIND_SESSION
        else:
            args = ["run", "--resume", *identifier, *argv.kept_options(command, target=argv.KIND_RUN),
                    *argv.text_option(message)]
            kind = argv.KIND_RUN
        notes: dict[str, Any] = {"kind": kind, "resume": True, "records": True}
        if provider_session_id:
            notes["session_id"] = provider_session_id
        if name:
            notes["name"] = name
        model = command.value("--model") if not ctx.interactive else None
        return LaunchPlan(args=args, provider_session_id=provider_session_id, model=model, notes=notes)

    def open_live(self, plan: LaunchPlan, ctx: LaunchContext) -> GooseLiveSession:
        from zag.providers.goose.live import GooseLiveSession

        return GooseLiveSession(plan, ctx)

    def output_scanner(self, ctx: LaunchContext) -> GooseOutputScanner:
        from zag.providers.goose.scanner import GooseOutputScanner

        return GooseOutputScanner(ctx)

    # -- history -----------------------------------------------------------------------------------
    def discover(self, env: Mapping[str, str]) -> Iterator[HistorySource]:
        from zag.providers.goose import history

        return history.discover(env)

    def owner_key(self, provider_session_id: str, env: Mapping[str, str]) -> str:
        """goose numbers sessions per database: the id qualified by the database a goose run with `env`
        writes (`HistorySource.owner_key` of its source, the live session's claims)."""
        from zag.providers.goose import history, homes

        return history.owner_key(homes.goose_home(env).db_path, provider_session_id)

    def open_reader(self, source: HistorySource, cursor: Any) -> SessionReader:
        from zag.providers.goose import history
        from zag.providers.goose.reader import DbSessionReader, LegacyJsonlReader

        path = Path(source.paths[0])
        kind = (source.extra or {}).get("kind")
        if kind == history.KIND_DB or (kind is None and path.name.endswith(".db")):
            return DbSessionReader(path, source.provider_session_id, cursor, source="provider_file",
                                   timeout=history.LIST_TIMEOUT_SECS)
        return LegacyJsonlReader(path, source.provider_session_id or path.stem, cursor, source="provider_file")

    # -- interactive -------------------------------------------------------------------------------
    def unblock_keys(self, screen: str) -> bytes | None:
        """goose opens no dialog after a limit hit: the error is printed and the prompt returns."""
        return None

    def resume_keys(self, message: str) -> bytes:
        """The message, then Enter (`\\r`), written as two chunks a short pause apart. goose's prompt is
        rustyline, which reads keys in order (Enter accepts the line), so the pause is only a margin
        for builds that treat a fast burst as a paste. A multi-line message goes as a bracketed paste
        (rustyline supports it off Windows) so its newlines do not submit it early."""
        text = message.replace("\r\n", "\n").encode("utf-8")
        if b"\n" in text:
            text = BRACKETED_PASTE_START + text + BRACKETED_PASTE_END
        return KeySequence([text, b"\r"], pause=0.1)

