"""Following the running Codex child's own rollout.

Codex cannot be told a session id up front and creates its rollout only at the first turn, so the
`LiveSession` keeps looking, in this order of exactness:
1. a known id: the thread zag resumes (`LaunchPlan.provider_session_id`) or the one the child reported
   (`thread.started.thread_id` on `--json` stdout, `session id:` on plain stderr) → its files by name;
2. the rollout the child's process tree holds open (`/proc/<pid>/fd`; verified on codex 0.169: the native
   binary, a child of the npm `node` wrapper, keeps its rollout open from the first turn until it exits,
   also while the TUI idles). Sub-agent rollouts the same process opens are recognised by their
   `session_meta.source.subagent` and not followed;
3. without either (no `/proc`, or the child already exited): the rollout created after start whose
   `session_meta` cwd is ours and that no other zag session claims (`zag.providers.claims`), nor followed
   and ended meanwhile (its claim is kept as an ended mark: a concurrent run finishing first released it).
   `resume --last` / the resume picker continue an older rollout: then also one written to after start
   (any cwd with `--all`), the most recently written first (all rollout folders, every `FULL_SCAN_SECS`).
Records older than the launch (a resumed rollout's earlier turns) only prime the reader's state.

While following, a rollout of another thread that the child opens (TUI `/new`, `/clear`, `/resume`, `/fork`)
moves the session: `session_cleared{old_session_id, new_session_id}` and the new file is followed, its
records from before the move left out (a resumed thread's history). The TUI keeps the rollouts of every
thread it had open, so a `/resume` of one of them (back to the session before a `/new`) opens no file: a
held rollout other than the current one that grows moves the session too. `poll()` costs
one stat when nothing changed; the open-file check runs at most every `SWITCH_CHECK_SECS`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import msgspec

from zag.logs import events
from zag.providers import agent_env, claims, proc_files
from zag.providers.base import Item, LaunchContext, LaunchPlan, SessionIdHint
from zag.providers.codex.history import session_files
from zag.providers.codex.homes import SESSIONS, codex_home, created_epoch, day_dirs, parse_rollout_name
from zag.providers.codex.reader import RolloutReader
from zag.providers.codex.records import PROVIDER, epoch_of, spawn_parent

LOCATE_SECS = 0.2
FULL_SCAN_SECS = 2.0
SWITCH_CHECK_SECS = 1.0
CLOCK_SLACK_SECS = 0.002   # rollout timestamps are truncated to the millisecond
FIRST_LINE_LIMIT = 4 * 1024 * 1024


class _Meta(msgspec.Struct):
    id: Any = None
    session_id: Any = None
    timestamp: Any = None
    cwd: Any = None
    source: Any = None
    forked_from_id: Any = None


class _FirstLine(msgspec.Struct):
    type: Any = None
    payload: _Meta | None = None


_first_line_decoder = msgspec.json.Decoder(_FirstLine)


class CodexLiveSession:
    def __init__(self, plan: LaunchPlan, ctx: LaunchContext) -> None:
        self._ctx = ctx
        self._home = codex_home(agent_env.as_agent_sees(ctx.env, ctx.cwd))
        self._sessions_root = os.path.realpath(self._home / SESSIONS)
        self._target: str | None = plan.provider_session_id
        self._notes = plan.notes
        self._resume_pick: str | None = plan.notes.get("resume_pick")
        self.provider_session_id: str | None = None
        self.source_key: str | None = None
        self._reader: RolloutReader | None = None
        self._next_locate = 0.0
        self._next_full_scan = 0.0
        self._next_switch_check = 0.0
        self._last_check_wall = ctx.started_at
        self._first_lines: dict[str, _Meta | None] = {}
        self._claimed: set[str] = set()
        self._open_before: set[str] = set()
        self._open_sizes: dict[str, int] = {}
        self._announced = False
        self._last_error: str | None = None

    # -- LiveSession ----------------------------------------------------------------------------
    def poll(self) -> list[Item]:
        try:
            return self._poll()
        except Exception as exc:  # noqa: BLE001 - following must never break the supervisor
            message = f"codex: following the rollout failed: {exc}"
            if message == self._last_error:
                return []
            self._last_error = message
            return [events.provider_status(message, {"error": repr(exc)})]

    def hint(self, signal: SessionIdHint) -> None:
        session_id = signal.provider_session_id.lower()
        if self._reader is None:
            self._target = session_id
        elif session_id != self.provider_session_id:
            self._target = session_id
            self._next_switch_check = 0.0

    def cursor(self) -> Any:
        return self._reader.cursor() if self._reader is not None else None

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        for key in self._claimed:  # kept as ended marks: a concurrent session's fallback must not take them
            claims.release(PROVIDER, key, self._ctx.zag_session_id, keep=True)
        self._claimed.clear()

    # -- polling --------------------------------------------------------------------------------
    def _poll(self) -> list[Item]:
        items: list[Item] = []
        if not self._announced:
            self._announced = True
            if self._notes.get("ephemeral"):
                items.append(events.provider_status(
                    "codex runs with --ephemeral: it writes no rollout, so there is no transcript to follow",
                    {"ephemeral": True}))
        now = time.monotonic()
        if self._reader is None:
            # while the child runs, look every LOCATE_SECS; once it exited (supervisor draining) or when
            # an id is known, at every poll: the drain stops after a couple of quiet polls
            child_running = proc_files.alive(self._ctx.child_pid) if proc_files.available() else True
            if now >= self._next_locate or self._target or not child_running:
                self._next_locate = now + LOCATE_SECS
                found = self._locate(now)
                if found is not None:
                    self._adopt(*found, skip_before=self._ctx.started_at - CLOCK_SLACK_SECS)
        elif now >= self._next_switch_check:
            self._next_switch_check = now + SWITCH_CHECK_SECS
            items.extend(self._check_switch(now))
        if self._reader is not None and self._reader.changed():
            items.extend(self._reader.read())
        return items

    def _adopt(self, thread_id: str, paths: list[Path], *, skip_before: float) -> None:
        self._reader = RolloutReader(paths, None, skip_before=skip_before)
        self.provider_session_id = thread_id
        self.source_key = thread_id
        if claims.claim(PROVIDER, thread_id, self._ctx.zag_session_id):
            self._claimed.add(thread_id)

    # -- finding the rollout --------------------------------------------------------------------
    def _locate(self, now: float) -> tuple[str, list[Path]] | None:
        if self._target:
            paths = self._files_of(self._target, now)
            if paths:
                return self._target, paths
        pid = self._ctx.child_pid
        if pid and proc_files.available() and proc_files.alive(pid):
            opened = self._opened_main_rollouts(pid)
            self._open_before = {thread_id for thread_id, _ in opened}
            self._open_sizes = {thread_id: _size(paths[-1]) for thread_id, paths in opened}
            if opened:
                return opened[-1]
            return None
        if self._target:
            return None
        return self._newest_unclaimed_rollout()

    def _files_of(self, thread_id: str, now: float) -> list[Path]:
        recent = [p for folder in day_dirs(self._home, self._ctx.started_at, time.time())
                  for p in _listing(folder) if thread_id in p.name.lower()]
        if recent:
            return session_files(self._home, thread_id)
        if now >= self._next_full_scan:
            self._next_full_scan = now + FULL_SCAN_SECS
            return session_files(self._home, thread_id)
        return []

    def _opened_main_rollouts(self, pid: int) -> list[tuple[str, list[Path]]]:
        """Main (non-sub-agent) rollouts open in the child's tree, oldest first, as (thread id, files)."""
        opened = proc_files.open_files(pid, self._is_our_rollout)
        found: dict[str, list[Path]] = {}
        for target in opened:
            name = parse_rollout_name(os.path.basename(target))
            if name is None or self._kind(target) != "main":
                continue
            found.setdefault(name.thread_id, [])
        result = []
        for thread_id in found:
            paths = session_files(self._home, thread_id) or [Path(t) for t in opened if thread_id in t]
            result.append((thread_id, paths))
        result.sort(key=lambda item: _mtime(item[1][-1]))
        return result

    def _is_our_rollout(self, target: str) -> bool:
        base = os.path.basename(target)
        return base.startswith("rollout-") and base.endswith(".jsonl") and \
            os.path.realpath(target).startswith(self._sessions_root + os.sep)

    def _kind(self, path: str) -> str | None:
        """"main" or "subagent" from the rollout's `session_meta`; None while it is not written yet."""
        meta = self._meta(path)
        if meta is None:
            return None
        if spawn_parent(meta.source) is not None or (isinstance(meta.source, dict) and "subagent" in meta.source):
            return "subagent"
        return "main"

    def _meta(self, path: str) -> _Meta | None:
        meta = self._first_lines.get(path)
        if meta is None:
            meta = _read_meta(path)
            if meta is not None:
                if len(self._first_lines) > 1024:
                    self._first_lines.clear()
                self._first_lines[path] = meta
        return meta

    def _newest_unclaimed_rollout(self) -> tuple[str, list[Path]] | None:
        """Fallback: a rollout created after start, with our cwd, not followed by another zag session."""
        if self._resume_pick and time.monotonic() >= self._next_full_scan:
            self._next_full_scan = time.monotonic() + FULL_SCAN_SECS
            resumed = self._resumed_rollout()
            if resumed is not None:
                return resumed
        started = self._ctx.started_at
        cwd = os.path.realpath(self._ctx.cwd)
        candidates = []
        for folder in day_dirs(self._home, started, time.time()):
            for path in _listing(folder):
                name = parse_rollout_name(path.name)
                if name is None or name.part is not None:
                    continue
                created = created_epoch(name.created)
                if created is not None and created < started - 1.0:
                    continue
                meta = self._meta(str(path))
                if meta is None or not isinstance(meta.cwd, str) or os.path.realpath(meta.cwd) != cwd:
                    continue
                meta_time = epoch_of(meta.timestamp)
                if meta_time is not None and meta_time < started - 1.0:
                    continue
                if self._kind(str(path)) != "main":
                    continue
                if claims.claimed_by_other(PROVIDER, name.thread_id, self._ctx.zag_session_id, ended_too=True):
                    continue
                candidates.append((meta_time or created or 0.0, name.thread_id))
        for _, thread_id in sorted(candidates):
            if claims.claim(PROVIDER, thread_id, self._ctx.zag_session_id, ended_too=True):
                self._claimed.add(thread_id)
                return thread_id, session_files(self._home, thread_id)
        return None

    def _resumed_rollout(self) -> tuple[str, list[Path]] | None:
        """`resume --last` / picker: the main rollout written to since start (our cwd unless `--all`) that
        no other zag session follows, the most recently written first."""
        cwd = os.path.realpath(self._ctx.cwd)
        written = []
        for path in _all_rollouts(self._home):
            name = parse_rollout_name(path.name)
            mtime = _mtime(path)
            if name is None or name.part is not None or mtime < self._ctx.started_at - CLOCK_SLACK_SECS:
                continue
            meta = self._meta(str(path))
            if meta is None or self._kind(str(path)) != "main":
                continue
            if self._resume_pick != "all" and (not isinstance(meta.cwd, str) or os.path.realpath(meta.cwd) != cwd):
                continue
            written.append((mtime, name.thread_id))
        for _, thread_id in sorted(written, reverse=True):  # an earlier run's ended mark does not count
            if claims.claim(PROVIDER, thread_id, self._ctx.zag_session_id):
                self._claimed.add(thread_id)
                return thread_id, session_files(self._home, thread_id)
        return None

    # -- while following ------------------------------------------------------------------------
    def _check_switch(self, now: float) -> list[Item]:
        assert self._reader is not None
        current = self.provider_session_id or ""
        paths = session_files(self._home, current) if self._has_new_part(current) else None
        if paths:
            self._reader.set_paths(paths)
        check_wall = time.time()
        since, self._last_check_wall = self._last_check_wall, check_wall
        new: tuple[str, list[Path]] | None = None
        if self._target and self._target != current:
            found = self._files_of(self._target, now)
            if found:
                new = (self._target, found)
        pid = self._ctx.child_pid
        if new is None and pid and proc_files.available() and proc_files.alive(pid):
            opened = self._opened_main_rollouts(pid)
            before, self._open_before = self._open_before, {thread_id for thread_id, _ in opened}
            grown = self._grown_elsewhere(opened, current)
            fresh = [item for item in opened if item[0] != current and item[0] not in before]
            if fresh:
                new = fresh[-1]
            elif grown:
                new = grown[-1]
        if new is None:
            return []
        items = list(self._reader.read())  # what the old session still had
        self._reader.close()
        self._adopt(new[0], new[1], skip_before=min(since, check_wall) - 0.5)
        self._target = None
        cleared = events.body(events.SESSION_CLEARED, old_session_id=current or None, new_session_id=new[0],
                              provider_session_id=new[0])
        return items + [cleared]

    def _grown_elsewhere(self, opened: list[tuple[str, list[Path]]], current: str) -> list[tuple[str, list[Path]]]:
        """The rollouts, other than the current one, that the child holds open and that grew since the last
        check, oldest first. The TUI keeps every thread it had open (codex 0.169, verified): `/resume` of the
        one before a `/new` opens no new file, codex only writes that thread's next turns into it again."""
        sizes = {thread_id: _size(paths[-1]) for thread_id, paths in opened}
        before, self._open_sizes = self._open_sizes, sizes
        return [item for item in opened
                if item[0] != current and item[0] in before and sizes[item[0]] > before[item[0]]]

    def _has_new_part(self, thread_id: str) -> bool:
        """A paginated continuation file of the current thread appeared in today's folders."""
        if self._reader is None or not thread_id:
            return False
        known = {p.name for p in self._reader.paths}
        for folder in day_dirs(self._home, self._ctx.started_at, time.time())[-2:]:
            for path in _listing(folder):
                if thread_id in path.name.lower() and path.name not in known:
                    return True
        return False


def _listing(folder: Path) -> list[Path]:
    try:
        return [folder / name for name in os.listdir(folder) if name.startswith("rollout-")]
    except OSError:
        return []


def _all_rollouts(home: Path) -> list[Path]:
    """Every file in `sessions/YYYY/MM/DD/` named like a rollout."""
    found: list[Path] = []
    for year in _subdirs(home / SESSIONS):
        for month in _subdirs(year):
            for day in _subdirs(month):
                found.extend(_listing(day))
    return found


def _subdirs(folder: Path) -> list[Path]:
    try:
        return [Path(entry.path) for entry in os.scandir(folder) if entry.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def _mtime(path: Path) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _read_meta(path: str) -> _Meta | None:
    """The `session_meta` payload on a rollout's first line (None if not there yet or not one)."""
    try:
        with open(path, "rb") as handle:
            line = handle.readline(FIRST_LINE_LIMIT)
    except OSError:
        return None
    if not line.endswith(b"\n"):
        return None
    try:
        first = _first_line_decoder.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if first.type != "session_meta" or first.payload is None:
        return None
    return first.payload
