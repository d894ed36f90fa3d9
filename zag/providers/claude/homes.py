"""Where Claude Code keeps its files, from the environment mapping zag was given (never os.environ).

- Config root: `CLAUDE_CONFIG_DIR` when set, else `$HOME/.claude`. For discovery (backfill)
  `CLAUDE_CONFIG_DIR` may be a comma-separated list (as ccusage accepts); without it zag scans
  `$HOME/.claude` and the XDG detour of 1.0.30 (`$XDG_CONFIG_HOME/claude`, default `~/.config/claude`).
- Transcripts: `<root>/projects/<encoded cwd>/<sessionId>.jsonl`; subagents under
  `<root>/projects/<encoded cwd>/<sessionId>/subagents/`.
- Live-process registry: `<root>/sessions/<pid>.json` `{pid, sessionId, cwd, startedAt, …}`, rewritten
  when the session id changes (`--continue` resolves, `/clear`) and removed at exit (verified with 2.1.197).
"""

from __future__ import annotations

import json
import os
import pwd
from collections.abc import Mapping
from pathlib import Path

MAX_ENCODED = 200


def home_dir(env: Mapping[str, str]) -> Path:
    home = env.get("HOME")
    if home:
        return Path(home)
    try:
        return Path(pwd.getpwuid(os.getuid()).pw_dir)
    except (KeyError, OSError):
        return Path("/")


def live_root(env: Mapping[str, str]) -> Path:
    """The config root the CLI itself uses (a single directory)."""
    configured = env.get("CLAUDE_CONFIG_DIR", "").strip()
    if configured:
        if "," in configured and not os.path.isdir(configured):
            configured = configured.split(",", 1)[0].strip()
        return Path(os.path.expanduser(configured))
    return home_dir(env) / ".claude"


def settings_config_dir(root: Path, settings_arg: str | None, cwd: str) -> str | None:
    """A `CLAUDE_CONFIG_DIR` set in the `env` of `--settings <file or JSON>` or else of `<root>/settings.json`:
    claude 2.1.197 then writes its transcripts and registry under that folder (verified; the project's
    `.claude/settings*.json` do not move them)."""
    sources: list[str | Path] = [root / "settings.json"]
    if settings_arg:
        sources.insert(0, settings_arg if settings_arg.lstrip().startswith("{") else Path(cwd, settings_arg))
    for source in sources:
        try:
            data = json.loads(source.read_bytes() if isinstance(source, Path) else source)
        except (OSError, ValueError):
            continue
        env = data.get("env") if isinstance(data, dict) else None
        value = env.get("CLAUDE_CONFIG_DIR") if isinstance(env, dict) else None
        if isinstance(value, str) and value.strip():
            return value
    return None


def discovery_roots(env: Mapping[str, str]) -> list[Path]:
    """Every config root to scan for history, without duplicates, the CLI's own first."""
    roots: list[Path] = []
    configured = env.get("CLAUDE_CONFIG_DIR", "").strip()
    if configured:
        parts = [configured] if os.path.isdir(configured) else configured.split(",")
        candidates = [Path(os.path.expanduser(part.strip())) for part in parts if part.strip()]
    else:
        xdg = env.get("XDG_CONFIG_HOME", "").strip()
        xdg_root = Path(xdg) if xdg else home_dir(env) / ".config"
        candidates = [home_dir(env) / ".claude", xdg_root / "claude"]
    seen = set()
    for root in candidates:
        key = os.path.realpath(root)
        if key not in seen:
            seen.add(key)
            roots.append(root)
    return roots


def encode_cwd(cwd: str) -> str:
    """Claude's project folder name for `cwd`: every UTF-16 code unit that is not [A-Za-z0-9] → `-`.

    Names longer than 200 characters get a hash suffix that zag does not reproduce; use
    `project_dirs_for` (which globs) rather than this alone.
    """
    out = []
    for char in cwd:
        if char.isascii() and char.isalnum():
            out.append(char)
        else:
            out.append("--" if ord(char) > 0xFFFF else "-")
    return "".join(out)


def project_dirs_for(root: Path, cwd: str) -> list[Path]:
    """The existing project folders of `root` that may hold `cwd`'s sessions."""
    encoded = encode_cwd(cwd)
    projects = root / "projects"
    if len(encoded) <= MAX_ENCODED:
        candidate = projects / encoded
        return [candidate] if candidate.is_dir() else []
    prefix = encoded[:MAX_ENCODED]
    try:
        return [Path(entry.path) for entry in os.scandir(projects)
                if entry.name.startswith(prefix) and entry.is_dir()]
    except OSError:
        return []


def find_transcript(roots: list[Path], session_id: str, cwd: str | None = None, *, glob: bool = True) -> Path | None:
    """`<root>/projects/*/<session_id>.jsonl`: the cwd's folder first (one stat), then every project
    folder (`glob`), newest root first."""
    name = f"{session_id}.jsonl"
    if cwd:
        for root in roots:
            for folder in project_dirs_for(root, cwd):
                candidate = folder / name
                if candidate.is_file():
                    return candidate
    if not glob:
        return None
    for root in roots:
        try:
            entries = list(os.scandir(root / "projects"))
        except OSError:
            continue
        for entry in entries:
            candidate = Path(entry.path) / name
            if candidate.is_file():
                return candidate
    return None


def subagent_dir(transcript: Path, session_id: str) -> Path:
    return transcript.parent / session_id / "subagents"


def pid_registry(root: Path, pid: int) -> Path:
    return root / "sessions" / f"{pid}.json"
