"""Files a process tree holds open, from Linux `/proc` (an exact "this child writes that file" signal).

Agent CLIs are often wrappers (an npm `node` script that spawns the native binary), so the whole tree
under the child is looked at. Elsewhere (no `/proc`), `available()` is False and callers fall back to
their heuristics.
"""

from __future__ import annotations

import os
from collections.abc import Callable

MAX_PROCESSES = 256


def available() -> bool:
    return os.path.isdir("/proc/self/fd")


def alive(pid: int | None) -> bool:
    return bool(pid) and os.path.exists(f"/proc/{pid}")


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (breadth first, bounded)."""
    found = [pid]
    index = 0
    while index < len(found) and len(found) < MAX_PROCESSES:
        current = found[index]
        index += 1
        found.extend(child for child in _children(current) if child not in found)
    return found


def _children(pid: int) -> list[int]:
    children: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return children
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", "rb") as handle:
                children.extend(int(part) for part in handle.read().split())
        except (OSError, ValueError):
            continue
    return children


def open_files(pid: int, wanted: Callable[[str], bool]) -> list[str]:
    """Paths of regular files open in `pid`'s tree that `wanted(path)` accepts (deduplicated)."""
    seen: list[str] = []
    for process in process_tree(pid):
        folder = f"/proc/{process}/fd"
        try:
            fds = os.listdir(folder)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"{folder}/{fd}")
            except OSError:
                continue
            if target.startswith("/") and target not in seen and wanted(target):
                seen.append(target)
    return seen


def others_in_folder(folder: str, skip: set[int], matches: Callable[[list[str]], bool]) -> list[int]:
    """Processes (not in `skip`) whose working directory is `folder` and whose argv `matches` (Linux; the
    user's own processes: others' are not readable)."""
    try:
        wanted = os.path.realpath(folder)
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []
    found = []
    for pid in pids:
        if pid in skip:
            continue
        try:
            if os.readlink(f"/proc/{pid}/cwd") != wanted:
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if matches([os.fsdecode(word) for word in argv if word]):
            found.append(pid)
    return found


def written_bytes(pid: int) -> int | None:
    """How many bytes `pid` has written so far (`wchar` of `/proc/<pid>/io`: files, pipes and terminals
    alike); None when it is gone or not ours to read."""
    try:
        with open(f"/proc/{pid}/io", "rb") as handle:
            for line in handle:
                if line.startswith(b"wchar:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None
