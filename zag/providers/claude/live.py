"""Following the running claude child's own transcript.

Which session is the child's, in order of trust:
1. the id zag chose (`--session-id`) or the id the user resumes (`--resume <id>` without a fork);
2. the id the agent reports: stream-json `session_id` (hints), and claude's own live registry
   `<config>/sessions/<child pid>.json`, which 2.1.197 rewrites when the session changes (`--continue`
   resolving to the latest session, `/clear` starting a new one) — verified with the real binary; when zag
   started a wrapper (shell script, npx), the registry of the claude process below it. A registry file
   last written before the child started is not its own (a killed claude's, whose pid was reused);
3. for `--continue`/`--resume` without an id, when neither of the above has spoken: the transcript in
   this cwd's project folder that grew after the start.
A reported id is only followed once its transcript exists (the registry first shows a placeholder id
under `--continue`). Moving from one session to another emits `session_cleared`; the old transcript
is read to its end first. A transcript that existed before this child started is read from where it
ended then (`plan.notes["start_offsets"]`), so a resumed session's history is not logged again; nor is
the history a fork (`--fork-session`, `/branch`) copies into its new transcript (see records.py), nor that
of an older session the TUI moves to (`/resume <id>`, also back to one this child left by `/clear`: the
registry changing to it is trusted, an output hint naming a left session is not): after a switch, records
at the head of the new transcript older than the poll before the move was noticed are history.
"""

from __future__ import annotations

import os
import time
from collections import deque
from pathlib import Path
from typing import Any

import msgspec

from zag import diag
from zag.logs import events
from zag.providers import agent_env
from zag.providers.base import Item, LaunchContext, LaunchPlan, SessionIdHint
from zag.providers.claude import homes, schema
from zag.providers.claude.reader import ClaudeSessionReader

GLOB_EVERY_SECS = 1.0        # full `projects/*/<id>.jsonl` search at most this often
FALLBACK_EVERY_SECS = 0.5    # cwd-folder scan for a grown transcript at most this often
REGISTRY_SCAN_SECS = 1.0     # look for a descendant's registry file (zag started a wrapper) at most this often
REGISTRY_SLACK_SECS = 2.0    # a registry file written before the child started is a dead process's (pid reuse)
_LEFT_KEPT = 32


class ClaudeLiveSession:
    """`LiveSession` for one claude child."""

    def __init__(self, plan: LaunchPlan, ctx: LaunchContext) -> None:
        self._ctx = ctx
        notes = plan.notes or {}
        env = agent_env.as_agent_sees(ctx.env, ctx.cwd)
        if notes.get("config_dir"):  # claude's settings move it (see homes.settings_config_dir)
            env["CLAUDE_CONFIG_DIR"] = notes["config_dir"]
        self._root = homes.live_root(env)
        self._roots = [self._root, *[root for root in homes.discovery_roots(env) if root != self._root]]
        self._start_offsets: dict[str, int] = {
            str(path): int(size) for path, size in (notes.get("start_offsets") or {}).items()
            if isinstance(size, int)}
        self._wanted: str | None = plan.provider_session_id
        self._scan_cwd = bool(notes.get("follow_cwd"))
        # records older than the start, in a transcript read from its beginning, can only be a fork's
        # copies when the user chose the session (`--fork-session`, `--continue`, `--resume`)
        self._copies_before = ctx.started_at if notes.get("user_chose_session") else None
        self._pending: deque[str] = deque(maxlen=8)
        self._noted_at: dict[str, float] = {}   # candidate id -> the start of the poll before it was noted
        self._poll_wall = self._prev_poll_wall = ctx.started_at
        self._left: deque[str] = deque(maxlen=_LEFT_KEPT)
        self._registry_stamp: tuple[int, int] | None = None
        self._registry_path: Path | None = None
        self._registry_id: str | None = None
        self._last_registry_scan = 0.0
        self._last_glob = 0.0
        self._last_fallback = 0.0
        self._reader: ClaudeSessionReader | None = None
        self._error_said: str | None = None
        self.provider_session_id: str | None = None
        self.source_key: str | None = None

    # -- LiveSession --------------------------------------------------------------------------------
    def hint(self, signal: SessionIdHint) -> None:
        self._note_candidate(signal.provider_session_id)

    def poll(self) -> list[Item]:
        items: list[Item] = []
        self._prev_poll_wall, self._poll_wall = self._poll_wall, time.time()
        try:
            self._read_registry()
            target = self._choose_target()
            if target is not None:
                items.extend(self._switch(*target))
            if self._reader is not None:
                items.extend(self._reader.read())
        except Exception as exc:  # noqa: BLE001 - following the transcript must never take the supervisor down
            # An error that recurs at every poll (a config folder zag may not read: `sudo -u` keeping HOME) is
            # said once; a warning per poll also kept the after-exit drain polling, ~15,000 warnings a second.
            message = f"claude live session: internal error while reading: {exc}"
            if message != self._error_said:
                self._error_said = message
                diag.exception("claude_live_poll_failed", error=str(exc))
                items.append(events.parse_warning(message, None))
        return items

    def cursor(self) -> Any:
        return self._reader.cursor() if self._reader is not None else None

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()

    # -- which session ----------------------------------------------------------------------------
    def _note_candidate(self, session_id: str | None, returning: bool = False) -> None:
        """`returning`: the registry itself changed to this id, so a session left earlier is current again
        (the TUI's `/resume` back to it after a `/clear`); an output hint naming a left session is stale."""
        if not session_id or not _plausible_id(session_id):
            return
        if session_id == self.provider_session_id or (session_id in self._left and not returning):
            return
        if session_id in self._left:
            self._left.remove(session_id)
        if session_id in self._pending:
            self._pending.remove(session_id)
        else:  # the move happened after the previous poll read the registry (or the output said otherwise)
            self._noted_at[session_id] = self._prev_poll_wall
        self._pending.append(session_id)

    def _read_registry(self) -> None:
        """claude's `<config>/sessions/<pid>.json` for the child — or, when zag started a wrapper (a shell
        script, npx), for the claude process below it (looked for at most every REGISTRY_SCAN_SECS)."""
        pid = self._ctx.child_pid
        if not pid:
            return
        path = self._registry_path or homes.pid_registry(self._root, pid)
        try:
            st = os.stat(path)
        except OSError:
            if self._registry_path is not None or not self._find_descendant_registry(pid):
                return
            path = self._registry_path
            try:
                st = os.stat(path)
            except OSError:
                return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._registry_stamp:
            return
        self._registry_stamp = stamp
        if st.st_mtime < self._ctx.started_at - REGISTRY_SLACK_SECS:
            return  # left by an earlier claude with the same pid (killed before it removed it): not ours
        try:
            entry = schema.pid_registry_decoder.decode(path.read_bytes())
        except (OSError, msgspec.MsgspecError):
            return
        moved, self._registry_id = entry.sessionId != self._registry_id, entry.sessionId
        self._note_candidate(entry.sessionId, returning=moved)

    def _find_descendant_registry(self, pid: int) -> bool:
        now = time.monotonic()
        if now - self._last_registry_scan < REGISTRY_SCAN_SECS:
            return False
        self._last_registry_scan = now
        try:
            names = [entry.name for entry in os.scandir(self._root / "sessions") if entry.name.endswith(".json")]
        except OSError:
            return False
        for name in names:
            stem = name[:-len(".json")]
            if stem.isdigit() and _descends_from(int(stem), pid):
                self._registry_path = self._root / "sessions" / name
                return True
        return False

    def _choose_target(self) -> tuple[str, Path] | None:
        """A session to follow now, if it differs from the current one and its transcript exists."""
        now = time.monotonic()
        allow_glob = now - self._last_glob >= GLOB_EVERY_SECS
        for session_id in reversed(self._pending):
            path = self._locate(session_id, allow_glob)
            if path is not None:
                newer = list(self._pending)[list(self._pending).index(session_id) + 1:]
                self._pending = deque(newer, maxlen=self._pending.maxlen)
                return session_id, path
        if self._reader is None and self._wanted is not None:
            path = self._locate(self._wanted, allow_glob)
            if path is not None:
                return self._wanted, path
        if allow_glob:
            self._last_glob = now
        if self._reader is None and self._wanted is None and self._scan_cwd:
            return self._grown_in_cwd(now)
        return None

    def _locate(self, session_id: str, allow_glob: bool) -> Path | None:
        return homes.find_transcript(self._roots, session_id, self._ctx.cwd, glob=allow_glob)

    def _grown_in_cwd(self, now: float) -> tuple[str, Path] | None:
        if now - self._last_fallback < FALLBACK_EVERY_SECS:
            return None
        self._last_fallback = now
        best: tuple[float, Path] | None = None
        for root in self._roots:
            for folder in homes.project_dirs_for(root, self._ctx.cwd):
                try:
                    entries = list(os.scandir(folder))
                except OSError:
                    continue
                for entry in entries:
                    if not entry.name.endswith(".jsonl"):
                        continue
                    try:
                        st = entry.stat()
                    except OSError:
                        continue
                    before = self._start_offsets.get(entry.path)
                    grew = st.st_size > before if before is not None else st.st_mtime >= self._ctx.started_at - 1
                    if grew and (best is None or st.st_mtime > best[0]):
                        best = (st.st_mtime, Path(entry.path))
        if best is None:
            return None
        return best[1].name[:-len(".jsonl")], best[1]

    def _switch(self, session_id: str, path: Path) -> list[Item]:
        items: list[Item] = []
        old = self.provider_session_id
        if self._reader is not None:
            items.extend(self._reader.read())  # the old session to its end first
            self._reader.close()
        if old is not None and old != session_id:
            self._left.append(old)
            items.append(events.body(events.SESSION_CLEARED, old_session_id=old, new_session_id=session_id,
                                     provider_session_id=session_id))
        noted_at = self._noted_at.pop(session_id, self._prev_poll_wall)
        self._noted_at = {key: value for key, value in self._noted_at.items() if key in self._pending}
        self._reader = ClaudeSessionReader(
            session_id, path, subagents=homes.subagent_dir(path, session_id),
            start_offset=self._start_offsets.get(str(path)),
            # after a move (`/resume <older id>` in the TUI) the head of an older transcript is history
            started_at=noted_at if old is not None else self._copies_before,
        )
        self.provider_session_id = session_id
        self.source_key = session_id
        return items


def _descends_from(pid: int, ancestor: int, depth: int = 8) -> bool:
    """True when `pid` is `ancestor` or below it (Linux /proc; False where that cannot be told)."""
    for _ in range(depth):
        if pid == ancestor:
            return True
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            return False
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) < 2 or not fields[1].isdigit():
            return False
        pid = int(fields[1])
        if pid <= 1:
            return False
    return False


def _plausible_id(value: str) -> bool:
    return 8 <= len(value) <= 128 and "/" not in value and "\\" not in value and not value.startswith(".")
