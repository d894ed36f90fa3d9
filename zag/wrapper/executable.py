"""Finding an agent's executable: `ZAG_<NAME>_BIN` when set, else the provider's executable on PATH.

As in a shell: nothing there is "not found" (exit 127, with the install hint); a file that is there but
may not be run is "permission denied" (exit 126).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping

NOT_FOUND = 127
NOT_EXECUTABLE = 126


class MissingExecutable(Exception):
    """The agent CLI cannot be run; the message is one user-facing line, `exit_code` 127 or 126."""

    def __init__(self, message: str, exit_code: int = NOT_FOUND) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def override_variable(provider_name: str) -> str:
    """The environment variable that names the executable, e.g. `ZAG_CLAUDE_BIN`."""
    return f"ZAG_{provider_name.upper()}_BIN"


def find_executable(provider_name: str, executable: str, install_hint: str, env: Mapping[str, str]) -> str:
    """The absolute path of the agent's executable, or `MissingExecutable` saying how to install it."""
    variable = override_variable(provider_name)
    override = env.get(variable, "").strip()
    search_path = env.get("PATH", os.defpath)
    found, unrunnable = _resolve(override or executable, search_path)
    if found is not None:
        return found
    if unrunnable is not None:
        raise MissingExecutable(
            f"{provider_name}: {unrunnable} is not executable (permission denied)"
            + (f", named by {variable}" if override else "") + "; make it executable or reinstall it with: "
            + install_hint,
            NOT_EXECUTABLE,
        )
    if override and os.sep not in override:
        raise MissingExecutable(
            f"{provider_name}: `{override}` (named by {variable}) not found on PATH; "
            f"install {provider_name} with: {install_hint}"
        )
    if override:
        raise MissingExecutable(
            f"{provider_name}: {variable}={override} is not an executable file; "
            f"install {provider_name} with: {install_hint}"
        )
    raise MissingExecutable(
        f"{provider_name}: `{executable}` not found on PATH (or set {variable}); install it with: {install_hint}"
    )


def _resolve(name: str, search_path: str) -> tuple[str | None, str | None]:
    """(the executable file `name` names, None), or (None, a file of that name that may not be run)."""
    if os.sep in name:
        path = os.path.abspath(os.path.expanduser(name))
        if not _is_file(path):
            return None, None
        return (path, None) if os.access(path, os.X_OK) else (None, path)
    return _which(name, search_path)


def _which(name: str, search_path: str) -> tuple[str | None, str | None]:
    """`shutil.which(name, path=search_path)` on POSIX, without importing shutil (~5 ms of the agent's
    start: bz2, lzma, fnmatch); also the first file of that name that may not be run, as a shell
    reports it when no folder has a runnable one."""
    seen: set[str] = set()
    unrunnable = None
    for folder in search_path.split(os.pathsep) if search_path else ():
        if folder in seen:
            continue
        seen.add(folder)
        candidate = os.path.join(folder, name)
        if not _is_file(candidate):
            continue
        if os.access(candidate, os.X_OK):
            return os.path.abspath(candidate), None
        unrunnable = unrunnable or os.path.abspath(candidate)
    return None, unrunnable


def _is_file(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def not_found_reason(path: str, strerror: str | None) -> str:
    """Why running the file `path` failed with "No such file or directory" although it is there: the
    interpreter its `#!` line names is missing (the kernel's ENOENT names neither), e.g. a script
    edited on Windows, whose `#!/bin/sh\\r` names no file. `strerror` when that is not the case."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(256)
    except OSError:
        return strerror or "not found"
    if not head.startswith(b"#!"):
        return strerror or "not found"
    line = head[2:].split(b"\n", 1)[0]
    words = line.split()
    interpreter = words[0].decode("utf-8", "replace") if words else ""
    if line.rstrip(b" \t").endswith(b"\r"):
        return (f"its #! line ends in a carriage return, so its interpreter {interpreter!r} is not found "
                "(Windows line endings: convert it with dos2unix)")
    return f"its interpreter {interpreter or '(none)'} (named on its #! line) is not found"
