"""Following the running gemini child's own session file(s).

Finding it:
- with a known session id (zag passed `--session-id <uuid>`, the user passed `--session-id`/`--resume
  <uuid>`, or the CLI reported it: stream-json/json `session_id`, the TUI's `gemini --resume <uuid>`): the
  main files `session-*-<id8>.json[l]` whose head names that id, first in the project folders of the
  cwd (registry slug, old sha256 dir), and every `RESCAN_SECS` in all project folders;
- otherwise the chat file of this project modified after the child started, the newest first, that no
  other zag session follows or followed (`zag.providers.claims`: without it, concurrent runs of an older
  gemini in one folder all followed the first file to appear). A user's `--resume latest|<index>` is
  exempt: two of them continue the same session and write the same file; for it, the session gemini picks
  (`files.resume_choice`, plan note `resume_guess`) is waited for first, up to `GUESS_WAIT_SECS` (another
  gemini's new file in the folder, written first, used to be taken).
Until it appears, every poll looks again (the CLI writes its file ~2 s after start).

Following it: the `GeminiReader` of the session (all its files: the oldest holds the conversation;
header-only siblings from the resume bug and subagent transcripts are added as they appear). A poll costs
one stat per file and one of the session's folder when nothing changed; the folder is listed again when
it changed, and every `RESCAN_SECS` in any case.

Switching: `/clear` (`/new`) in the TUI starts a new session with a new file in the same folder; in an
interactive run a new main session file created there after ours was found is taken as that move and
reported as `session_cleared` (`/resume` of an older session inside the TUI is not noticed). A gemini the
user runs beside it in the same folder (another tab: `gemini -p …`) writes such a file too, and nothing in
it tells whose it is: while a gemini process outside the child's tree works in this folder, or did a moment
ago (`/proc`, looked at every `OTHERS_SCAN_SECS` while an interactive session is followed), a new file is
only noted (`provider_status`), and taken as this session's `/clear` once it grows by more bytes than any
of those processes wrote meanwhile (`/proc/<pid>/io`; a gemini idle in another tab writes nothing), or after
they have gone — read from its start then: nothing of it is lost. A zag-supervised neighbour's file
is told exactly (its claim). A reported session id different
from the followed one also switches. The old file is read to its end first.

Resuming: when zag resumes (plan note `skip_existing`), the conversation up to the child's start is
already in this log: the first read of the file emits only what is newer than the child's start (by
record time; everything after the first such event is kept).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zag import diag
from zag.logs import events
from zag.providers import agent_env, claims, proc_files
from zag.providers.base import Item, LaunchContext, LaunchPlan, SessionIdHint
from zag.providers.gemini import files, homes
from zag.providers.gemini.reader import GeminiReader

PROVIDER = "gemini"
RESCAN_SECS = 2.0
UNSETTLED_SECS = 10.0
OTHERS_SCAN_SECS = 1.0    # interactive: look for other geminis working in the folder at most this often
OTHERS_RECENT_SECS = 3.0  # a new file this soon after another gemini was seen here may be its own
GUESS_WAIT_SECS = 10.0
RECENT_SLACK_SECS = 2.0   # file mtimes vs the start time (coarse file-system clocks)
RESUME_SLACK_SECS = 0.0   # record times vs the start time: same clock, written after the child started


class GeminiLive:
    """`LiveSession` for gemini."""

    def __init__(self, plan: LaunchPlan, ctx: LaunchContext) -> None:
        self._env: Mapping[str, str] = agent_env.as_agent_sees({**dict(ctx.env), **plan.env}, ctx.cwd)
        self._ctx = ctx
        self._doubtful: dict[str, _Doubt] = {}   # new main files another gemini in the folder may have written
        self._others_seen: tuple[float, list[int]] = (0.0, [])  # when other geminis were last seen in the folder
        self._next_others_scan = 0.0
        self._cwd = ctx.cwd
        self._started = ctx.started_at
        self._interactive = ctx.interactive
        self._owner = ctx.zag_session_id
        self._claimed: set[str] = set()
        self._expected: str | None = plan.provider_session_id
        self._skip_existing = bool(plan.notes.get("skip_existing"))
        self._guess: str | None = plan.notes.get("resume_guess")
        self._disabled = bool(plan.notes.get("no_session"))
        self._pending: list[Item] = [events.provider_status(text, {"kind": "zag_note"})
                                     for text in plan.notes.get("warnings") or []]
        self._previous: str | None = plan.notes.get("previous_session_id")
        self._reader: GeminiReader | None = None
        self._chats_dir: Path | None = None
        self._known_names: set[str] = set()
        self._dir_mtime: int | None = None
        self._unsettled: dict[str, float] = {}   # new files not readable yet → when first seen
        self._next_full_search = 0.0
        self._next_rescan = 0.0
        self.provider_session_id: str | None = None
        self.source_key: str | None = None

    # -- LiveSession -------------------------------------------------------------------------------
    def poll(self) -> list[Item]:
        try:
            return self._poll()
        except Exception:  # noqa: BLE001 - an adapter error never stops the agent
            diag.exception("gemini live poll failed", session=self.provider_session_id)
            return []

    def hint(self, signal: SessionIdHint) -> None:
        if signal.provider_session_id != self.provider_session_id:
            self._expected = signal.provider_session_id
            self._next_full_search = 0.0

    def cursor(self) -> Any:
        return self._reader.cursor() if self._reader else None

    def close(self) -> None:
        if self._reader:
            self._reader.close()
        for session_id in self._claimed:  # kept as ended marks: a concurrent session's fallback skips them
            claims.release(PROVIDER, session_id, self._owner, keep=True)
        self._claimed.clear()

    # -- polling -----------------------------------------------------------------------------------
    def _poll(self) -> list[Item]:
        items, self._pending = self._pending, []
        if self._disabled:
            return items
        now = time.monotonic()
        if self._expected and self._expected != self.provider_session_id:
            found = self._find_by_id(self._expected, now)
            if found:
                items += self._attach(self._expected, *found)
        elif self._reader is None:
            found_any = self._find_recent()
            if found_any:
                items += self._attach(*found_any)
        if self._reader is None:
            return items
        if self._interactive:
            self._others_recently(now)
        items += self._rescan(now)
        if self._reader.changed():
            items += list(self._reader.read())
        return items

    def _attach(self, session_id: str, chats_dir: Path, paths: list[Path]) -> list[Item]:
        items: list[Item] = []
        if self._reader is not None:  # what the old session wrote last (between two polls) is still its own
            items += list(self._reader.read())
            self._reader.close()
        old = self.provider_session_id or self._previous
        self._previous = None
        if old and old != session_id:
            items.append(events.body(events.SESSION_CLEARED, old_session_id=old, new_session_id=session_id,
                                     provider_session_id=session_id))
        first = self._reader is None
        self._reader = GeminiReader(session_id, paths)
        self._chats_dir = chats_dir
        self.provider_session_id = session_id
        self.source_key = session_id
        self._expected = session_id
        self._known_names = set(_names(chats_dir))
        self._dir_mtime = _mtime_ns(chats_dir)
        self._next_rescan = time.monotonic() + RESCAN_SECS
        if first and self._skip_existing:
            items += self._newer_than_start(list(self._reader.read()))
        return items

    def _newer_than_start(self, read: list[Item]) -> list[Item]:
        """Drop what the resumed session held before this child started (already logged)."""
        kept: list[Item] = []
        keeping = False
        for item in read:
            if not keeping and isinstance(item, dict):
                stamp = events.normalize_ts(item.get("ts"))
                keeping = stamp is not None and events.parse_ts(stamp) >= self._started - RESUME_SLACK_SECS
            if keeping:
                kept.append(item)
        return kept

    # -- finding -----------------------------------------------------------------------------------
    def _find_by_id(self, session_id: str, now: float) -> tuple[Path, list[Path]] | None:
        own = homes.chats_dirs_for_cwd(self._cwd, self._env)
        for chats in own:
            found = files.main_files(chats, session_id)
            if found:
                return chats, found + files.subagent_files(chats, session_id)
        if now < self._next_full_search:
            return None
        self._next_full_search = now + RESCAN_SECS
        for chats in own:   # a file named otherwise (another short-id rule) whose head names the id
            for path in self._recent_files(chats):
                if files.head_session_id(path) == session_id:
                    return chats, [path] + files.subagent_files(chats, session_id)
        for project in homes.all_project_dirs(self._env):
            chats = project / "chats"
            found = files.main_files(chats, session_id)
            if found:
                return chats, found + files.subagent_files(chats, session_id)
        return None

    def _recent_files(self, chats: Path) -> list[Path]:
        """Session files of a folder modified since the child started, the newest first."""
        found = []
        for name in _names(chats):
            if files.is_session_file(name):
                mtime = _mtime(chats / name)
                if mtime is not None and mtime >= self._started - RECENT_SLACK_SECS:
                    found.append((mtime, chats / name))
        return [path for _, path in sorted(found, reverse=True)]

    def _find_recent(self) -> tuple[str, Path, list[Path]] | None:
        """The newest main chat file of this project modified since the child started that is free."""
        recent = [(_mtime(path) or 0.0, path) for chats in homes.chats_dirs_for_cwd(self._cwd, self._env)
                  for path in self._recent_files(chats)]
        waiting = self._guess is not None and time.time() < self._started + GUESS_WAIT_SECS
        for _, path in sorted(recent, key=lambda item: item[0], reverse=True):
            session_id = files.head_session_id(path)
            if waiting and session_id != self._guess:
                continue
            if session_id and self._take(session_id):
                return session_id, path.parent, files.session_files(path.parent, session_id)
        return None

    def _take(self, session_id: str) -> bool:
        """Claim a session found by recency alone, unless it is another zag session's."""
        if self._skip_existing:
            return True
        if not claims.claim(PROVIDER, session_id, self._owner, ended_too=True):
            return False
        self._claimed.add(session_id)
        return True

    def _rescan(self, now: float) -> list[Item]:
        """New files of the followed session (resume siblings, subagents); a `/clear` in the TUI. Looks
        when the folder changed (a file created just before the child exits is still found by the drain),
        and every `RESCAN_SECS` in any case. A new file whose head cannot be read yet (created, its first
        line not written) is looked at again at every poll for `UNSETTLED_SECS`: the folder will not change
        again for it, and taking it as known would miss that `/clear` for good."""
        assert self._reader is not None and self._chats_dir is not None and self.provider_session_id
        mtime = _mtime_ns(self._chats_dir)
        if mtime == self._dir_mtime and now < self._next_rescan and not self._unsettled:
            return []
        self._next_rescan = now + RESCAN_SECS
        self._reader.set_paths(files.session_files(self._chats_dir, self.provider_session_id))
        moved = self._settle_doubts(now) if self._doubtful else []
        if moved:
            return moved
        notes: list[Item] = []
        if mtime == self._dir_mtime and not self._unsettled:
            return notes
        self._dir_mtime = mtime
        names = set(_names(self._chats_dir))
        retry = {name for name, since in self._unsettled.items() if name in names and now - since < UNSETTLED_SECS}
        new = sorted(name for name in (names - self._known_names) | retry if files.is_session_file(name))
        self._known_names = names
        if not self._interactive:
            self._unsettled = {}
            return notes
        unsettled = {}
        for name in new:
            session_id = files.head_session_id(self._chats_dir / name)
            if session_id is None:
                unsettled[name] = self._unsettled.get(name, now)
            elif session_id != self.provider_session_id and name not in self._doubtful \
                    and _is_main(self._chats_dir / name):
                others = self._others_recently(now)
                if others:
                    notes.append(self._doubt(name, session_id, others))
                elif self._take(session_id):
                    self._unsettled = {}
                    return notes + self._attach(session_id, self._chats_dir,
                                                files.session_files(self._chats_dir, session_id))
        self._unsettled = unsettled
        return notes

    # -- a new file another gemini in the folder may have written ---------------------------------------
    def _other_geminis(self) -> list[int]:
        """gemini processes working in this folder outside the child's tree (none known without /proc or
        before the child's pid is)."""
        pid = self._ctx.child_pid
        if not pid or not proc_files.available():
            return []
        skip = {os.getpid(), *proc_files.process_tree(pid)}
        return proc_files.others_in_folder(self._cwd, skip, _looks_like_gemini)

    def _others_recently(self, now: float) -> list[int]:
        """Other geminis in this folder now or at a look less than `OTHERS_RECENT_SECS` ago (looked for every
        `OTHERS_SCAN_SECS`: a `gemini -p` may create its file and exit between two polls, but it runs for
        seconds before that — Node's start-up alone takes ~2 s)."""
        if now >= self._next_others_scan:
            self._next_others_scan = now + OTHERS_SCAN_SECS
            found = self._other_geminis()
            if found:
                self._others_seen = (now, found)
        seen_at, pids = self._others_seen
        return pids if now - seen_at <= OTHERS_RECENT_SECS else []

    def _doubt(self, name: str, session_id: str, others: list[int]) -> Item:
        assert self._chats_dir is not None
        self._doubtful[name] = _Doubt(session_id, _stamp(self._chats_dir / name), _written(others))
        return events.provider_status(
            f"gemini: new session {session_id} in this folder while another gemini runs here (pid "
            f"{', '.join(map(str, others))}): not taken as this session's /clear unless it is written to after "
            "that one ends", {"kind": "zag_note", "session_id": session_id, "other_pids": others})

    def _settle_doubts(self, now: float) -> list[Item]:
        """Take a doubtful file as this session's `/clear` once it grows by more than any other gemini here
        wrote meanwhile (`/proc/<pid>/io`: a gemini idle in another tab writes nothing), or while none has
        run here for a while."""
        assert self._chats_dir is not None
        others = self._others_recently(now)
        for name, doubt in list(self._doubtful.items()):
            stamp = _stamp(self._chats_dir / name)
            if stamp is None:
                del self._doubtful[name]
                continue
            if stamp != doubt.stamp and ((doubt.quiet and not others) or _none_wrote(doubt, stamp, others)):
                del self._doubtful[name]
                if self._take(doubt.session_id):  # else another zag session follows it: not ours
                    self._doubtful = {}
                    return self._attach(doubt.session_id, self._chats_dir,
                                        files.session_files(self._chats_dir, doubt.session_id))
                continue
            doubt.stamp, doubt.quiet, doubt.written = stamp, not others, _written(others)
        return []


@dataclass
class _Doubt:
    """A new main file seen while another gemini ran in the folder: its (mtime, size) when last looked at,
    what the other geminis had written by then, and whether none ran then (growth after such a look is
    ours)."""

    session_id: str
    stamp: tuple[int, int] | None
    written: dict[int, int | None]   # bytes each other gemini had written then
    quiet: bool = False


def _written(pids: list[int]) -> dict[int, int | None]:
    return {pid: proc_files.written_bytes(pid) for pid in pids}


def _none_wrote(doubt: _Doubt, stamp: tuple[int, int], others: list[int]) -> bool:
    """No other gemini (then or now) can have written what the file grew by since the last look."""
    before = doubt.stamp[1] if doubt.stamp is not None else 0
    grown = stamp[1] - before if stamp[1] > before else stamp[1]
    if grown <= 0:
        return False
    for pid in {*doubt.written, *others}:
        then, now = doubt.written.get(pid), proc_files.written_bytes(pid)
        if then is None or now is None or now - then >= grown:
            return False
    return True


def _looks_like_gemini(argv: list[str]) -> bool:
    """The gemini CLI: `gemini …`, `node …/gemini.js` or `node …/gemini-cli/…` (npm's bin and older dist)."""
    return any(os.path.basename(word) in ("gemini", "gemini.js") or "/gemini-cli/" in word for word in argv[:2])


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _is_main(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return b'"kind":"subagent"' not in head.replace(b" ", b"")


def _names(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def _mtime(path: Path) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def _mtime_ns(path: Path) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None
