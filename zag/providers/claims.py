"""Which zag session follows which agent session file, so two supervisors never follow the same one.

When an agent gives zag no exact way to tell its own session file (no id chosen up front, no id printed,
no open-file table to look at), a supervisor picks the likeliest new file; a claim makes that pick
exclusive: the first live zag session to claim a key owns it until it releases it or its process dies.
A claim is a small file `$ZAG_HOME/claims/<provider>/<key>` holding the owner's session id and pid,
taken under an exclusive lock of the provider's claims folder (`flock` on `.lock`), so the check of the
holder and the write are one step: two supervisors claiming the same key at the same instant never both
get it (a bare O_EXCL create left a moment where the other saw an empty file, took the holder for dead
and replaced it); a claim file is written whole (temporary file, rename). Every supervisor also claims its agent's session id as soon as it knows it
(before the agent starts when zag chose the id), so `zag backfill` leaves a session alone that is
supervised live but not in the index yet.

A pick that others must not repeat after its owner ended (codex's "newest unclaimed rollout" fallback:
a concurrent session that looks after this one finished must not take this file too) is released with
`keep=True`: the claim stays as an ended mark (`ended` time) for `KEEP_ENDED_SECS`. Ended marks block only
callers that ask for them (`ended_too`); they never make a session look supervised to backfill.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from zag import paths

_SAFE = re.compile(r"[^A-Za-z0-9._-]")
KEEP_ENDED_SECS = 24 * 3600
LOCK_WAIT_SECS = 2.0


def _claim_path(provider: str, key: str) -> Path:
    return paths.home() / "claims" / provider / _claim_name(key)


def _claim_name(key: str) -> str:
    return _SAFE.sub("_", key)[:200]


def listed(provider: str) -> frozenset[str] | None:
    """The names of `provider`'s claim files, from one listing of its folder (backfill asks about
    thousands of keys, of which hardly any is claimed); None when the folder cannot be listed."""
    try:
        return frozenset(os.listdir(paths.home() / "claims" / provider))
    except FileNotFoundError:
        return frozenset()
    except OSError:
        return None


def may_be_claimed(names: frozenset[str] | None, key: str) -> bool:
    """False when `key` had no claim file in the listing `names` (`listed`), so `live_owner` is None."""
    return names is None or _claim_name(key) in names


def claim(provider: str, key: str, owner: str, *, ended_too: bool = False) -> bool:
    """Claim `key` for `owner` (a zag session id). True if it is ours now (or already was). With
    `ended_too`, another session's ended mark (see `release`) also refuses it."""
    path = _claim_path(provider, key)
    try:
        paths.ensure_private_dir(path.parent.parent)  # claims/ itself: tightened if an older zag left it loose
        paths.ensure_private_dir(path.parent)
    except OSError:
        return True  # no state dir: nothing to coordinate with, do not block following
    with _locked(path.parent):
        holder = _holder(path)
        if holder is not None and holder.get("owner") == owner:
            return True
        if holder is not None and _blocks(holder, ended_too):
            return False
        record = json.dumps({"owner": owner, "pid": os.getpid()}).encode()
        return _replace(path, record) or not path.exists()  # unwritable and unheld: nothing to coordinate


def claimed_by_other(provider: str, key: str, owner: str, *, ended_too: bool = False) -> bool:
    """Is `key` claimed by another zag session whose process still runs (or, `ended_too`, that ended
    with `keep=True` less than `KEEP_ENDED_SECS` ago)?"""
    holder = _holder(_claim_path(provider, key))
    return holder is not None and holder.get("owner") != owner and _blocks(holder, ended_too)


def live_owner(provider: str, key: str) -> str | None:
    """The zag session that claimed `key`, if the process that claimed it still runs (or a process with
    its pid: a caller that knows the owner's session can check it more closely)."""
    holder = _holder(_claim_path(provider, key))
    if holder is None or "ended" in holder or not _alive(holder.get("pid")):
        return None
    owner = holder.get("owner")
    return owner if isinstance(owner, str) and owner else None


def release(provider: str, key: str, owner: str, *, keep: bool = False) -> None:
    """Give `key` up. `keep`: leave an ended mark instead (see the module docstring); a key already
    marked ended stays marked."""
    path = _claim_path(provider, key)
    if not path.parent.is_dir():
        return
    with _locked(path.parent):
        holder = _holder(path)
        if holder is None or holder.get("owner") != owner or "ended" in holder:
            return
        if keep:
            _replace(path, json.dumps({"owner": owner, "pid": os.getpid(), "ended": time.time()}).encode())
            return
        try:
            path.unlink()
        except OSError:
            pass
    if keep:
        _prune_ended(path.parent)


def _blocks(holder: dict, ended_too: bool) -> bool:
    ended = holder.get("ended")
    if ended is not None:
        return ended_too and isinstance(ended, (int, float)) and time.time() - ended < KEEP_ENDED_SECS
    return _alive(holder.get("pid"))


def _prune_ended(folder: Path) -> None:
    """Remove ended marks older than `KEEP_ENDED_SECS` (so the folder does not grow for ever)."""
    cutoff = time.time() - KEEP_ENDED_SECS
    try:
        entries = [entry for entry in os.scandir(folder) if not entry.name.startswith(".")]
    except OSError:
        return
    for entry in entries:
        try:
            if entry.stat().st_mtime < cutoff:
                holder = _holder(Path(entry.path))
                if holder is not None and "ended" in holder:
                    os.unlink(entry.path)
        except OSError:
            continue


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold the claims folder's lock (a claim takes microseconds; waited for at most `LOCK_WAIT_SECS`,
    so a holder stopped with Ctrl-Z inside it never stalls another agent's start). Without a lock file
    (a read-only folder), without locking (ENOLCK) or after that wait, go on unlocked: `_replace` is
    still atomic, only the race is back."""
    try:
        fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | paths.NOFOLLOW, 0o600)
    except OSError:
        yield
        return
    try:
        deadline = time.monotonic() + LOCK_WAIT_SECS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.002)
            except OSError:
                break  # no locks here (some network file systems)
        yield
    finally:
        os.close(fd)  # releases the lock


def _holder(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_bytes() or b"{}")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _replace(path: Path, record: bytes) -> bool:
    """Write `record` to `path` whole: a 0600 temporary file (created anew, never through a symlink
    left under its name), renamed over it."""
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        temp.unlink(missing_ok=True)  # left by a process that had our pid before
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | paths.NOFOLLOW, 0o600)
        try:
            os.write(fd, record)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except OSError:
        return False
    return True


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
