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

Switching (interactive runs; each move is reported as `session_cleared`, the old file read to its end
first). gemini 0.61.0 holds no chat file open (it appends with open-write-close: `/proc/<pid>/fd` shows
none), and its TUI prints the session id only in `/stats` and at `/quit`; what it writes tells the moves:
- `/clear` (`/new`) starts a new session: a new main file in the same folder, read from its start;
- `/resume` (the session browser) continues an older session in its own file: gemini appends
  `{"$set":{"sessionId":<its id>}}` and the restored history to that file, then the new turns. A file of
  another session that grows after ours was found and holds that mark in what it grew by is taken as that
  move; only records newer than the last look at the file before it grew are logged (the rest is that
  session's history). (A new file of a session that has an older file — the stray of a resume in a later
  minute — is a resume too.) `/chat resume <tag>` (a checkpoint) stays in the same file and session
  (the history it writes there again is told apart by the reader, see reader.py);
- a session id gemini reports (`/stats`' `Session ID:`, the `gemini --resume <id>` of `/quit`, stream-json)
  that differs from the followed one switches to it; a file that existed before is then logged from what
  it got after the child started (or after this run last left it).
A gemini the user runs beside it in the same folder (another tab: `gemini -p …`, another TUI) writes such
files too, and nothing in them tells whose they are: while a gemini process outside the child's tree works
in this folder, or did a moment ago (`/proc`, looked at every `OTHERS_SCAN_SECS` while an interactive
session is followed), a new or resumed file is only noted (`provider_status`), and taken as this session's
move once it grows by more bytes than any of those processes wrote meanwhile (`/proc/<pid>/io`; a gemini
idle in another tab writes nothing), or after they have gone — nothing of it is lost — or when gemini
reports that session id. Two TUIs both busy in one folder stay undecided until then. A zag-supervised
neighbour's file is told exactly (its claim).

Resuming: when zag resumes (plan note `skip_existing`), the conversation up to the child's start is
already in this log: the first read of the file emits only what is newer than the child's start (by
record time; everything after the first such event is kept).
"""

from __future__ import annotations

import os
import re
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
from zag.providers.tail import open_regular_file

PROVIDER = "gemini"
RESCAN_SECS = 2.0
UNSETTLED_SECS = 10.0
OTHERS_SCAN_SECS = 1.0    # interactive: look for other geminis working in the folder at most this often
OTHERS_RECENT_SECS = 3.0  # a new file this soon after another gemini was seen here may be its own
GUESS_WAIT_SECS = 10.0
RECENT_SLACK_SECS = 2.0   # file mtimes vs the start time (coarse file-system clocks)
RESUME_SLACK_SECS = 0.0   # record times vs the start time: same clock, written after the child started
MARK_SCAN_BYTES = 256 * 1024   # of what another session's file grew by: where a resume's mark is looked for
# what gemini appends first to the file of a session it resumes (ChatRecordingService.initialize)
_RESUME_MARK = re.compile(rb'(?:^|\n)\{\s*"\$set"\s*:\s*\{\s*"sessionId"\s*:')


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
        self._sizes: dict[str, int] = {}          # other sessions' main files → size at the last look
        self._sizes_at = ctx.started_at           # when that look was (wall clock)
        self._left_at: dict[str, float] = {}      # sessions this run moved away from → when
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
                since = None if self._reader is None else self._left_at.get(self._expected, self._started)
                items += self._attach(self._expected, *found, since=since)
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

    def _attach(self, session_id: str, chats_dir: Path, paths: list[Path], *,
                since: float | None = None) -> list[Item]:
        """Follow `session_id` from now on. `since`: what its files hold from before then (wall clock) is
        history, not logged (a session moved to that existed before)."""
        items: list[Item] = []
        if self._reader is not None:  # what the old session wrote last (between two polls) is still its own
            items += list(self._reader.read())
            self._reader.close()
        old = self.provider_session_id or self._previous
        self._previous = None
        if old and old != session_id:
            items.append(events.body(events.SESSION_CLEARED, old_session_id=old, new_session_id=session_id,
                                     provider_session_id=session_id))
            if self.provider_session_id:
                self._left_at[self.provider_session_id] = time.time()
        first = self._reader is None
        self._reader = GeminiReader(session_id, paths)
        self._chats_dir = chats_dir
        self.provider_session_id = session_id
        self.source_key = session_id
        self._expected = session_id
        self._known_names = set(_names(chats_dir))
        self._dir_mtime = _mtime_ns(chats_dir)
        self._next_rescan = time.monotonic() + RESCAN_SECS
        if self._interactive:
            self._take_sizes()
        if first and self._skip_existing:
            since = self._started - RESUME_SLACK_SECS
        if since is not None:
            items += _newer_than(list(self._reader.read()), since)
        return items

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

    def _take(self, session_id: str, *, resumed: bool = False) -> bool:
        """Claim a session found by recency alone, unless it is another zag session's (`resumed`: an older
        session moved to; an ended zag run that followed it before does not keep it)."""
        if self._skip_existing:
            return True
        if not claims.claim(PROVIDER, session_id, self._owner, ended_too=not resumed):
            return False
        self._claimed.add(session_id)
        return True

    def _rescan(self, now: float) -> list[Item]:
        """New files of the followed session (resume siblings, subagents); in an interactive run, a move
        to another session (`/clear`, `/resume`). Looks when the folder changed (a file created just before
        the child exits is still found by the drain), and every `RESCAN_SECS` in any case (a resumed file
        grows without changing the folder). A new file whose head cannot be read yet (created, its first
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
        if mtime != self._dir_mtime or self._unsettled:
            notes, moved = self._new_files(mtime, now)
            if moved:
                return notes + moved
        if self._interactive:
            notes += self._resumed_files(now)
        return notes

    def _new_files(self, mtime: int | None, now: float) -> tuple[list[Item], list[Item]]:
        """(notes, items of a move) for the files created in the folder since the last look."""
        assert self._chats_dir is not None
        self._dir_mtime = mtime
        names = set(_names(self._chats_dir))
        retry = {name for name, since in self._unsettled.items() if name in names and now - since < UNSETTLED_SECS}
        new = sorted(name for name in (names - self._known_names) | retry if files.is_session_file(name))
        self._known_names = names
        notes: list[Item] = []
        if not self._interactive:
            self._unsettled = {}
            return notes, []
        unsettled = {}
        for name in new:
            session_id = files.head_session_id(self._chats_dir / name)
            if session_id is None:
                unsettled[name] = self._unsettled.get(name, now)
            elif session_id != self.provider_session_id and name not in self._doubtful \
                    and _is_main(self._chats_dir / name):
                # a session with an older file is resumed (the stray of a later minute), not a /clear
                older = len(files.main_files(self._chats_dir, session_id)) > 1
                since = max(self._sizes_at, self._since(session_id)) if older else None
                others = self._others_recently(now)
                if others:
                    notes.append(self._doubt(name, session_id, others, since))
                elif self._take(session_id, resumed=older):
                    self._unsettled = {}
                    return notes, self._attach(session_id, self._chats_dir,
                                               files.session_files(self._chats_dir, session_id), since=since)
        self._unsettled = unsettled
        return notes, []

    # -- /resume of an older session in the TUI ---------------------------------------------------------
    def _take_sizes(self) -> None:
        """Remember the size of every other main file of the folder (a resume makes one grow); one
        `stat` each (measured: 4 ms every `RESCAN_SECS` for 500 chat files)."""
        assert self._chats_dir is not None
        short = files.short_id(self.provider_session_id or "")
        ours = (f"-{short}.json", f"-{short}.jsonl")
        sizes: dict[str, int] = {}
        try:
            with os.scandir(self._chats_dir) as entries:
                for entry in entries:
                    name = entry.name
                    if files.is_session_file(name) and not name.endswith(ours) and name not in self._doubtful:
                        try:
                            sizes[name] = entry.stat().st_size
                        except OSError:
                            continue
        except OSError:
            pass
        self._sizes, self._sizes_at = sizes, time.time()

    def _resumed_files(self, now: float) -> list[Item]:
        """A main file of another session that grew since the last look with a resume's mark in what it
        grew by: this TUI's `/resume` of that session (or another gemini's, when one works here)."""
        assert self._chats_dir is not None
        before, looked_at = self._sizes, self._sizes_at
        self._take_sizes()
        notes: list[Item] = []
        for name, size in self._sizes.items():
            old = before.get(name)
            if old is None or size <= old or not _resume_mark(self._chats_dir / name, old):
                continue
            session_id = files.head_session_id(self._chats_dir / name)
            if not session_id or session_id == self.provider_session_id or name in self._doubtful:
                continue
            since = max(looked_at, self._since(session_id))
            others = self._others_recently(now)
            if others:
                notes.append(self._doubt(name, session_id, others, since))
            elif self._take(session_id, resumed=True):
                return notes + self._attach(session_id, self._chats_dir,
                                            files.session_files(self._chats_dir, session_id), since=since)
        return notes

    def _since(self, session_id: str) -> float:
        """What a session moved to holds from before this is history: the child's start, or when this run
        last left that session."""
        return self._left_at.get(session_id, self._started)

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

    def _doubt(self, name: str, session_id: str, others: list[int], since: float | None) -> Item:
        """Note a new (`since` None) or resumed file that another gemini here may have written."""
        assert self._chats_dir is not None
        self._doubtful[name] = _Doubt(session_id, _stamp(self._chats_dir / name), _written(others), since=since)
        what, move = ("new session", "/clear") if since is None else ("resumed session", "/resume")
        return events.provider_status(
            f"gemini: {what} {session_id} in this folder while another gemini runs here (pid "
            f"{', '.join(map(str, others))}): not taken as this session's {move} unless it is written to after "
            "that one ends or gemini reports that session id (/stats, /quit)",
            {"kind": "zag_note", "session_id": session_id, "other_pids": others, "move": move})

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
                # else another zag session follows it: not ours
                if self._take(doubt.session_id, resumed=doubt.since is not None):
                    self._doubtful = {}
                    return self._attach(doubt.session_id, self._chats_dir,
                                        files.session_files(self._chats_dir, doubt.session_id), since=doubt.since)
                continue
            doubt.stamp, doubt.quiet, doubt.written = stamp, not others, _written(others)
        return []


@dataclass
class _Doubt:
    """A new or resumed main file seen while another gemini ran in the folder: its (mtime, size) when last
    looked at, what the other geminis had written by then, whether none ran then (growth after such a look
    is ours), and for a resumed one when its history ends."""

    session_id: str
    stamp: tuple[int, int] | None
    written: dict[int, int | None]   # bytes each other gemini had written then
    quiet: bool = False
    since: float | None = None       # a resumed session's records before this are its history


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


def _newer_than(read: list[Item], since: float) -> list[Item]:
    """What was read from the first event stamped at or after `since` on (before it: history, or what this
    log holds already)."""
    kept: list[Item] = []
    keeping = False
    for item in read:
        if not keeping and isinstance(item, dict):
            stamp = events.normalize_ts(item.get("ts"))
            keeping = stamp is not None and events.parse_ts(stamp) >= since
        if keeping:
            kept.append(item)
    return kept


def _resume_mark(path: Path, offset: int) -> bool:
    """Does what `path` got after `offset` hold a resume's `{"$set":{"sessionId":…}}` line?"""
    try:
        handle = open_regular_file(path)   # never a FIFO or device: that could block
        if handle is None:
            return False
        with handle:
            handle.seek(max(0, offset - 1))   # from the newline that ended the last line seen
            grown = handle.read(MARK_SCAN_BYTES + 1)
    except OSError:
        return False
    return _RESUME_MARK.search(grown) is not None


def _looks_like_gemini(argv: list[str]) -> bool:
    """The gemini CLI: `gemini …`, `node …/gemini.js` or `node …/gemini-cli/…` (npm's bin and older dist),
    also behind interpreter options: 0.61.0 runs its work in a child it relaunches as `node
    --max-old-space-size=… …/bin/gemini`, the process that writes the chat file."""
    script = next((word for word in argv[1:] if not word.startswith("-")), None)
    words = [*argv[:2], script] if script else argv[:2]
    return any(os.path.basename(word) in ("gemini", "gemini.js") or "/gemini-cli/" in word for word in words)


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
