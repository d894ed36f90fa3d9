"""Following the running goose's own session while `zag run goose` supervises it.

The session row is found exactly, in the `sessions.db` this goose writes (`homes.goose_home`):
- by id, when known (`--resume --session-id`, legacy `--path`, or reported on goose's output);
- by the name zag gave it (`--name zag-…`) or the user's `--name`, created after the launch;
- `--resume --name X`: the most recently updated session named X (or with id X);
- bare `--resume`: the session updated after the launch (goose resumes the most recent one);
- bare `goose` (cannot be named): the session created after the launch in this working directory;
- `--resume --fork`: the copy goose creates at start-up (the newest session created after the launch).
A row found by name, time and folder alone (bare `goose`, `--fork`, a user's `--name` without `--resume`) is
claimed (`zag.providers.claims`): concurrent runs in one folder, or with one name, each take a row no other
zag session follows or followed (they all took the newest). Resumes are not: two resumes of one session
write to the same row.
Until it exists (goose creates the database and the row at start-up) each poll looks again, but only
when the database changed (two stats). Then the shared `DbSessionReader` follows it. A resumed or
forked session skips the messages written before this launch (an earlier run logged them); a fork's
copies of its parent's history are one `copied_history` note.
Pre-database goose (≤ 1.9) is followed through `<data>/sessions/<name>.jsonl` instead.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from zag.logs import events
from zag.providers import claims, sqlite_ro
from zag.providers.base import Item, LaunchContext, LaunchPlan, SessionIdHint
from zag.providers.goose import db, homes
from zag.providers.goose.argv import KIND_DEFAULT
from zag.providers.goose.history import db_source_key, owner_key
from zag.providers.goose.reader import DbSessionReader, LegacyJsonlReader
from zag.providers.goose.records import PROVIDER

CLOCK_SLACK_SECS = 2.0   # sessions.created_at has whole seconds
# a database zag cannot read for this long (damaged, locked, tables zag does not know) is said, once; a
# shorter spell is goose at work (a checkpoint, a migration) and the next polls read on
TROUBLE_SAY_SECS = 5.0


class GooseLiveSession:
    def __init__(self, plan: LaunchPlan, ctx: LaunchContext) -> None:
        notes = plan.notes or {}
        home = homes.goose_home(ctx.env)
        self.db_path: Path = home.db_path
        self.sessions_dir: Path = home.sessions_dir
        self.cwd = ctx.cwd
        self.started_at = ctx.started_at
        self.kind = notes.get("kind", KIND_DEFAULT)
        self.name: str | None = notes.get("name")
        self.fork = bool(notes.get("fork"))
        self.resume = bool(notes.get("resume")) or self.fork
        self.records = notes.get("records", True)
        # `--fork` copies the named session into a new one: the id given is not the one goose writes to
        self.target_id: str | None = None if self.fork else plan.provider_session_id or notes.get("session_id")
        self.owner = ctx.zag_session_id
        self.claimed: set[str] = set()
        self.provider_session_id: str | None = None
        self.source_key: str | None = None
        self.reader: DbSessionReader | LegacyJsonlReader | None = None
        self._pending: list[Item] = []
        self._locate_stamp: Any = None
        self._locate_error: str | None = None
        self._trouble_since: float | None = None   # when reading the database began to fail
        self._trouble_said = False

    # -- protocol ----------------------------------------------------------------------------------
    def poll(self) -> list[Item]:
        try:
            return self._poll()
        except Exception as exc:  # noqa: BLE001 - following the transcript must never stop the agent
            from zag import diag

            diag.exception("goose_live_poll_failed", error=str(exc))
            return self._take_pending()

    def hint(self, signal: SessionIdHint) -> None:
        new_id = signal.provider_session_id
        if not new_id or new_id == self.provider_session_id or new_id == self.target_id:
            return
        if self.reader is not None and self.provider_session_id:
            self._pending.append(events.body(
                events.SESSION_CLEARED, old_session_id=self.provider_session_id, new_session_id=new_id,
                provider_session_id=new_id))
            self.reader = None
        self.target_id = new_id
        self._locate_stamp = None

    def cursor(self) -> Any:
        return self.reader.cursor() if self.reader is not None else None

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
        for key in self.claimed:  # kept as ended marks: a concurrent session's search skips them
            claims.release(PROVIDER, key, self.owner, keep=True)
        self.claimed.clear()
        sqlite_ro.remove_snapshots()   # (`zag run` leaves with os._exit: no clean-up at exit)

    # -- work --------------------------------------------------------------------------------------
    def _take_pending(self) -> list[Item]:
        pending, self._pending = self._pending, []
        return pending

    def _poll(self) -> list[Item]:
        out = self._take_pending()
        trouble = None
        if self.reader is None and self.records:
            trouble = self._locate()
        if self.reader is not None and self.reader.changed():
            out.extend(self.reader.read())
            trouble = self.reader.last_error if isinstance(self.reader, DbSessionReader) else None
        elif self.reader is not None:
            return out
        out.extend(self._trouble(trouble))
        return out

    def _trouble(self, error: str | None) -> list[Item]:
        """One note when goose's database cannot be read for a while (zag follows the session up to there),
        one when it can be again (zag went on from where it stopped)."""
        if error is None:
            self._trouble_since = None
            if not self._trouble_said:
                return []
            self._trouble_said = False
            return [events.provider_status(f"goose: {self.db_path} can be read again; following the session on",
                                           {"db": str(self.db_path)})]
        now = time.monotonic()
        if self._trouble_since is None:
            self._trouble_since = now
        if self._trouble_said or now - self._trouble_since < TROUBLE_SAY_SECS:
            return []
        self._trouble_said = True
        return [events.provider_status(
            f"goose: cannot read {self.db_path} ({error}); zag follows the session up to what it could read "
            "and goes on once it can be read (what goose writes meanwhile is kept there)",
            {"db": str(self.db_path), "error": error})]

    def _locate(self) -> str | None:
        """Look for the session (when the database or the legacy folder changed). Returns why the database
        could not be searched, if it could not."""
        stamp = (sqlite_ro.signature(self.db_path), _mtime(self.sessions_dir))
        if stamp == self._locate_stamp:
            return self._locate_error
        error = None
        if self.db_path.is_file():
            error, session_id = self._find_in_database()
            if session_id:
                self._follow_database(session_id)
                return None
        if error is None:   # a busy or half-created database is asked again at the next poll
            self._locate_stamp = stamp
        self._locate_error = error
        self._find_legacy_file()
        return error

    def _find_in_database(self) -> tuple[str | None, str | None]:
        """(why the database could not be searched, the session's id)."""
        try:
            connection = sqlite_ro.connect(self.db_path)
        except Exception as exc:  # noqa: BLE001 - not there yet / busy: next poll
            return str(exc), None
        try:
            schema = db.Schema(connection)
            if not schema.ready:
                return "its tables are not goose's as zag knows them (yet)", None
            return None, self._query(connection, schema)
        except Exception as exc:  # noqa: BLE001 - busy or half-created: next poll
            return str(exc), None
        finally:
            connection.close()

    def _query(self, connection: Any, schema: db.Schema) -> str | None:
        after = self.started_at - CLOCK_SLACK_SECS
        if self.fork and not self.target_id:
            rows = db.find_sessions(connection, schema, "1 = 1", ())
            return self._free(row for row in rows if (db.epoch(row.get("created_at")) or 0) >= after)
        if self.target_id:
            rows = db.find_sessions(connection, schema, "id = ?", (self.target_id,))
            return rows[0]["id"] if rows else None
        if self.name and not self.resume:
            rows = db.find_named(connection, schema, self.name, description=True)
            return self._free(row for row in rows if (db.epoch(row.get("created_at")) or 0) >= after)
        if self.name:
            rows = db.find_named(connection, schema, self.name, description=False)
            return rows[0]["id"] if rows else None
        rows = db.find_sessions(connection, schema, "1 = 1", ())
        if self.resume:
            return _first(row for row in rows if (db.epoch(row.get("updated_at")) or 0) >= after)
        return self._free(row for row in rows if (db.epoch(row.get("created_at")) or 0) >= after
                          and _same_dir(row.get("working_dir"), self.cwd))

    def _free(self, rows: Any) -> str | None:
        """The first of `rows` (newest first) that this session could claim: no other zag session follows
        it, nor followed it since."""
        for row in rows:
            session_id = row.get("id")
            if not isinstance(session_id, str):
                continue
            key = owner_key(self.db_path, session_id)
            if claims.claim(PROVIDER, key, self.owner, ended_too=True):
                self.claimed.add(key)
                return session_id
        return None

    def _follow_database(self, session_id: str) -> None:
        skip = int(self.started_at) if self.resume else None
        self.reader = DbSessionReader(self.db_path, session_id, skip_before=skip, find_copies=self.fork)
        self.provider_session_id = session_id
        self.source_key = db_source_key(self.db_path, session_id)

    def _find_legacy_file(self) -> None:
        """goose ≤ 1.9: `<data>/sessions/<name or id>.jsonl`, or the newest one written since launch."""
        candidates = [self.target_id, self.name]
        path = next((self.sessions_dir / f"{stem}.jsonl" for stem in candidates
                     if stem and (self.sessions_dir / f"{stem}.jsonl").is_file()), None)
        if path is None and not any(candidates):
            path = _newest_jsonl(self.sessions_dir, self.started_at - CLOCK_SLACK_SECS)
        if path is None:
            return
        skip = int(self.started_at) if self.resume else None
        self.reader = LegacyJsonlReader(path, path.stem, skip_before=skip)
        self.provider_session_id = path.stem
        self.source_key = os.path.realpath(path)


def _first(rows: Any) -> str | None:
    for row in rows:
        return row.get("id")
    return None


def _same_dir(working_dir: Any, cwd: str) -> bool:
    if not isinstance(working_dir, str) or not working_dir:
        return False
    return os.path.realpath(working_dir) == os.path.realpath(cwd)


def _mtime(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def _newest_jsonl(folder: Path, after: float) -> Path | None:
    newest: tuple[float, Path] | None = None
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return None
    for entry in entries:
        if not entry.name.endswith(".jsonl"):
            continue
        try:
            mtime = entry.stat().st_mtime
        except OSError:
            continue
        if mtime >= after and (newest is None or mtime > newest[0]):
            newest = (mtime, Path(entry.path))
    return newest[1] if newest else None

