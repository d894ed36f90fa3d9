"""Finding an agent's executable: `ZAG_<NAME>_BIN` when set, else the provider's executable on PATH."""

from __future__ import annotations

import os
from collections.abc import Mapping


class MissingExecutable(Exception):
    """The agent CLI cannot be found; the message is one user-facing line."""


def override_variable(provider_name: str) -> str:
    """The environment variable that names the executable, e.g. `ZAG_CLAUDE_BIN`."""
    return f"ZAG_{provider_name.upper()}_BIN"


def find_executable(provider_name: str, executable: str, install_hint: str, env: Mapping[str, str]) -> str:
    """The absolute path of the agent's executable, or `MissingExecutable` saying how to install it."""
    variable = override_variable(provider_name)
    override = env.get(variable, "").strip()
    search_path = env.get("PATH", os.defpath)
    if override:
        found = _resolve(override, search_path)
        if found is None:
            raise MissingExecutable(
                f"{provider_name}: {variable}={override} is not an executable file; "
                f"install {provider_name} with: {install_hint}"
            )
        return found
    found = _resolve(executable, search_path)
    if found is None:
        raise MissingExecutable(
            f"{provider_name}: `{executable}` not found on PATH (or set {variable}); "
            f"install it with: {install_hint}"
        )
    return found


def _resolve(name: str, search_path: str) -> str | None:
    if os.sep in name:
        path = os.path.abspath(os.path.expanduser(name))
        return path if os.path.isfile(path) and os.access(path, os.X_OK) else None
    found = _which(name, search_path)
    return os.path.abspath(found) if found else None


def _which(name: str, search_path: str) -> str | None:
    """`shutil.which(name, path=search_path)` on POSIX, without importing shutil (~5 ms of the agent's
    start: bz2, lzma, fnmatch)."""
    seen: set[str] = set()
    for folder in search_path.split(os.pathsep) if search_path else ():
        if folder in seen:
            continue
        seen.add(folder)
        candidate = os.path.join(folder, name)
        if os.path.exists(candidate) and os.access(candidate, os.F_OK | os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None
