"""Which zag session follows which agent session file, so two supervisors never follow the same one.

When an agent gives zag no exact way to tell its own session file (no id chosen up front, no id printed,
no open-file table to look at), a supervisor picks the likeliest new file; a claim makes that pick
exclusive: the first live zag session to claim a key owns it until it releases it or its process dies.
A claim is a small file `$ZAG_HOME/claims/<provider>/<key>` holding the owner's session id and pid,
created atomically (O_EXCL). Every supervisor also claims its agent's session id as soon as it knows it
(before the agent starts when zag chose the id), so `zag backfill` leaves a session alone that is
supervised live but not in the index yet.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from zag import paths

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def _claim_path(provider: str, key: str) -> Path:
    return paths.home() / "claims" / provider / _SAFE.sub("_", key)[:200]


def claim(provider: str, key: str, owner: str) -> bool:
    """Claim `key` for `owner` (a zag session id). True if it is ours now (or already was)."""
    path = _claim_path(provider, key)
    try:
        paths.ensure_private_dir(path.parent)
    except OSError:
        return True  # no state dir: nothing to coordinate with, do not block following
    record = json.dumps({"owner": owner, "pid": os.getpid()}).encode()
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            holder = _holder(path)
            if holder is None or holder.get("owner") == owner:
                return holder is not None or _replace(path, record)
            if _alive(holder.get("pid")):
                return False
            if not _replace(path, record):
                return False
            return True
        except OSError:
            return True
        with os.fdopen(fd, "wb") as handle:
            handle.write(record)
        return True
    return False


def claimed_by_other(provider: str, key: str, owner: str) -> bool:
    """Is `key` claimed by another zag session whose process still runs?"""
    holder = _holder(_claim_path(provider, key))
    return holder is not None and holder.get("owner") != owner and _alive(holder.get("pid"))


def live_owner(provider: str, key: str) -> str | None:
    """The zag session that claimed `key`, if the process that claimed it still runs (or a process with
    its pid: a caller that knows the owner's session can check it more closely)."""
    holder = _holder(_claim_path(provider, key))
    if holder is None or not _alive(holder.get("pid")):
        return None
    owner = holder.get("owner")
    return owner if isinstance(owner, str) and owner else None


def release(provider: str, key: str, owner: str) -> None:
    path = _claim_path(provider, key)
    holder = _holder(path)
    if holder is not None and holder.get("owner") == owner:
        try:
            path.unlink()
        except OSError:
            pass


def _holder(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_bytes() or b"{}")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _replace(path: Path, record: bytes) -> bool:
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        temp.write_bytes(record)
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
