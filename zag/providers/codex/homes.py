"""Where Codex keeps its files: `$CODEX_HOME` (else `~/.codex`), rollouts under `sessions/YYYY/MM/DD/` and
`archived_sessions/`, and what a rollout's file name says.

Paths come from the environment mapping handed in (never `os.environ` directly), so tests and the
supervisor can point Codex anywhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from zag.providers.reset_time import local_zone

SESSIONS = "sessions"
ARCHIVED = "archived_sessions"

_UUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
# rollout-2026-11-22T14-32-07-<uuid>.jsonl, paginated continuation `…-<uuid>_<rollout-id>.jsonl`, `.zst`
_ROLLOUT_RE = re.compile(
    rf"^rollout-(?P<ts>\d{{4}}-\d{{2}}-\d{{2}}T\d{{2}}-\d{{2}}-\d{{2}})-(?P<id>{_UUID})"
    r"(?:_(?P<part>[^./]+))?\.jsonl(?P<zst>\.zst)?$"
)
_LOOSE_RE = re.compile(r"^rollout-(?P<rest>.+?)\.jsonl(?P<zst>\.zst)?$")


def user_home(env: Mapping[str, str]) -> Path:
    home = env.get("HOME")
    return Path(home) if home else Path(os.path.expanduser("~"))


def codex_home(env: Mapping[str, str]) -> Path:
    """The home the Codex child uses: `$CODEX_HOME`, else `$HOME/.codex`."""
    override = env.get("CODEX_HOME")
    if override:
        if override == "~" or override.startswith("~/"):
            return user_home(env) / override[2:]
        return Path(override)
    return user_home(env) / ".codex"


def all_homes(env: Mapping[str, str]) -> list[Path]:
    """Every home worth importing: `$CODEX_HOME` and `~/.codex` (history may predate the variable)."""
    homes = [codex_home(env), user_home(env) / ".codex"]
    unique: list[Path] = []
    seen: set[str] = set()
    for home in homes:
        key = os.path.realpath(home)
        if key not in seen:
            seen.add(key)
            unique.append(home)
    return unique


@dataclass(frozen=True)
class RolloutName:
    """What a rollout file's name tells: the logical thread id, when it was created, which part it is."""

    thread_id: str
    created: str           # "2026-11-22T14-32-07" (local time of the machine that wrote it), or ""
    part: str | None       # paginated continuation suffix, None for the first file
    compressed: bool

    @property
    def plain_name(self) -> str:
        """The file name without `.zst` (a compressed file and its plain twin share it)."""
        suffix = f"_{self.part}" if self.part else ""
        if self.created:
            return f"rollout-{self.created}-{self.thread_id}{suffix}.jsonl"
        return f"rollout-{self.thread_id}{suffix}.jsonl"

    def sort_key(self) -> tuple[str, int, str]:
        return (self.created, 0 if self.part is None else 1, self.part or "")


def parse_rollout_name(name: str) -> RolloutName | None:
    """`RolloutName` for `rollout-*.jsonl[.zst]` file names, None for anything else."""
    match = _ROLLOUT_RE.match(name)
    if match:
        return RolloutName(match["id"].lower(), match["ts"], match["part"], bool(match["zst"]))
    loose = _LOOSE_RE.match(name)
    if loose:  # an id that is not a UUID (very old or foreign builds): the whole rest is the id
        return RolloutName(loose["rest"], "", None, bool(loose["zst"]))
    return None


def created_epoch(created: str) -> float | None:
    """Epoch seconds of a file-name timestamp (written in the local time of the machine)."""
    if not created:
        return None
    try:
        moment = datetime.strptime(created, "%Y-%m-%dT%H-%M-%S").replace(tzinfo=local_zone())
    except ValueError:
        return None
    return moment.timestamp()


def day_dirs(home: Path, start: float, end: float) -> list[Path]:
    """`sessions/YYYY/MM/DD` folders (local dates) that can hold rollouts created between two instants."""
    zone = local_zone()
    days = []
    moment = start - 86400.0
    while moment <= end + 86400.0:
        day = datetime.fromtimestamp(moment, zone)
        path = home / SESSIONS / f"{day.year:04d}" / f"{day.month:02d}" / f"{day.day:02d}"
        if path not in days:
            days.append(path)
        moment += 86400.0
    return days
