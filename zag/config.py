"""`config.toml` loading, with the defaults from DESIGN.md.

Layout:

    heartbeat_secs = 10
    [usage_limits]
    enabled = true
    resume_message = "Continue"
    fallback_secs = 3600
    jitter_secs = 30
    max_wait_secs = 86400
    max_attempts = 12
    retry_secs = 300               # after a resume that did not continue the session, try again this much later
    verify_secs = 120              # how long an interactive resume may take to show a new assistant message
    extra_patterns = []            # regexes; a named group `reset` may capture the reset phrase
    [usage_limits.providers.claude]
    resume_message = "Please continue"
    [redaction]
    extra_patterns = []            # regexes whose matches are redacted from session logs

A missing file means defaults; a broken one is reported once (clear message, defaults used) rather than
crashing a user's agent.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zag import paths

DEFAULT_HEARTBEAT_SECS = 10.0
MAX_SECS = 366 * 86400.0  # the longest wait a setting may ask for (a year; `inf` is not one)
MIN_HEARTBEAT_SECS = 0.1  # each heartbeat is an event in the log and a write to the index
MAX_FILE_BYTES = 1 << 20

LIMIT_DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "resume_message": "Continue",
    "fallback_secs": 3600,
    "jitter_secs": 30,
    "max_wait_secs": 86400,
    "max_attempts": 12,
    "retry_secs": 300,
    "verify_secs": 120,
    "extra_patterns": [],
}


class ConfigError(Exception):
    """The config file exists but cannot be used."""


@dataclass(frozen=True)
class LimitSettings:
    """Usage-limit settings for one provider (global values with the provider's overrides applied)."""

    enabled: bool
    resume_message: str
    fallback_secs: float
    jitter_secs: float
    max_wait_secs: float
    max_attempts: int
    extra_patterns: tuple[str, ...]
    retry_secs: float = 300.0
    verify_secs: float = 120.0


@dataclass(frozen=True)
class Config:
    heartbeat_secs: float = DEFAULT_HEARTBEAT_SECS
    usage_limits: dict[str, Any] = field(default_factory=dict)
    redaction_patterns: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()  # human-readable reasons parts of the file were ignored

    def limits_for(self, provider: str) -> LimitSettings:
        """Global `[usage_limits]` merged with `[usage_limits.providers.<provider>]` over the defaults."""
        merged = dict(LIMIT_DEFAULTS)
        merged.update({k: v for k, v in self.usage_limits.items() if k in LIMIT_DEFAULTS})
        override = self.usage_limits.get("providers", {}).get(provider, {})
        if isinstance(override, dict):
            merged.update({k: v for k, v in override.items() if k in LIMIT_DEFAULTS})
        patterns = tuple(self.usage_limits.get("extra_patterns", []) or ())
        if isinstance(override, dict) and override.get("extra_patterns"):
            patterns = patterns + tuple(override["extra_patterns"])
        return LimitSettings(
            enabled=bool(merged["enabled"]),
            resume_message=str(merged["resume_message"]),
            fallback_secs=float(merged["fallback_secs"]),
            jitter_secs=float(merged["jitter_secs"]),
            max_wait_secs=float(merged["max_wait_secs"]),
            max_attempts=int(merged["max_attempts"]),
            extra_patterns=tuple(str(p) for p in patterns),
            retry_secs=float(merged["retry_secs"]),
            verify_secs=float(merged["verify_secs"]),
        )


def load(path: Path | None = None) -> Config:
    """Read the config file; never raises for a bad file (the problems are listed in `Config.problems`)."""
    try:
        path = path or paths.config_file()
        raw = _read_file(path)
    except (FileNotFoundError, NotADirectoryError):  # no such file (ZAG_HOME a file: said by what writes there)
        return Config()
    except OSError as exc:
        return Config(problems=(f"cannot read {path}: {exc.strerror or exc}; using defaults",))
    import tomllib  # imported here: ~15 ms that `zag run` without a config file does not pay

    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))  # -sig: the BOM Windows editors (Notepad) put first
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as exc:  # Recursion: `x = [[[[…`
        return Config(problems=(f"{path} is not valid TOML ({exc}); using defaults",))
    try:
        return _from_dict(data, path)
    except Exception as exc:  # noqa: BLE001 - a value no check foresaw: defaults, never a stopped agent
        return Config(problems=(f"{path} could not be used ({type(exc).__name__}: {exc}); using defaults",))


def _read_file(path: Path) -> bytes:
    """The bytes of the regular file `path`. Anything else is refused without reading it: a FIFO would
    block `zag run` (and with it the user's agent) until something wrote to it, a device such as
    /dev/zero, or a file far larger than any config, would never be read to its end."""
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))  # a FIFO opens at once
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise OSError(errno.EINVAL, f"it is {kind}")
        exposed = _exposed(info)
        if exposed:
            raise OSError(errno.EPERM, f"it {exposed}, who could change what zag types into your agent "
                                       "(resume_message); make it yours and `chmod go-w` it")
        if info.st_size > MAX_FILE_BYTES:
            raise OSError(errno.EFBIG, f"it is {info.st_size} bytes, more than a config file may be "
                                       f"({MAX_FILE_BYTES})")
        chunks = []
        while chunk := os.read(fd, MAX_FILE_BYTES + 1):
            chunks.append(chunk)
            if sum(map(len, chunks)) > MAX_FILE_BYTES:  # grew after fstat
                raise OSError(errno.EFBIG, f"it is more than a config file may be ({MAX_FILE_BYTES} bytes)")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _exposed(info: os.stat_result) -> str | None:
    """Why other users could write the config (as ssh refuses such a config), or None."""
    import stat

    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid not in (os.geteuid(), 0):
        return "belongs to another user"
    if mode & 0o002 or (mode & 0o020 and paths._group_has_others(info.st_gid)):  # noqa: SLF001 - same rule
        return f"is writable by other users (mode {mode:04o})"
    return None


def _from_dict(data: dict[str, Any], path: Path) -> Config:
    problems: list[str] = []
    report = problems.append
    for key in data:
        if key not in _TOP_LEVEL_KEYS:
            report(f"{path}: unknown key {key!r}{_known(key, _TOP_LEVEL_KEYS)}; ignored")
    heartbeat = data.get("heartbeat_secs", DEFAULT_HEARTBEAT_SECS)
    if not _is_seconds(heartbeat) or heartbeat < MIN_HEARTBEAT_SECS:
        report(f"{path}: heartbeat_secs must be a number of seconds, at least {MIN_HEARTBEAT_SECS:g}; "
               f"using {DEFAULT_HEARTBEAT_SECS:g}")
        heartbeat = DEFAULT_HEARTBEAT_SECS
    limits = data.get("usage_limits", {})
    if not isinstance(limits, dict):
        report(f"{path}: [usage_limits] must be a table; using defaults")
        limits = {}
    limits = _checked_limits(limits, f"{path}: usage_limits", report)
    return Config(
        heartbeat_secs=float(heartbeat),
        usage_limits=limits,
        redaction_patterns=_checked_redaction(data.get("redaction", {}), f"{path}: redaction", report),
        problems=tuple(problems),
    )


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # all but tab and line breaks
_TOP_LEVEL_KEYS = frozenset({"heartbeat_secs", "usage_limits", "redaction"})
_REDACTION_KEYS = frozenset({"extra_patterns"})


def _checked_limits(limits: dict[str, Any], where: str, report: Callable[[str], None]) -> dict[str, Any]:
    """The usable `[usage_limits]` values (and per-provider tables); each unusable one is reported and
    left out, so `limits_for` falls back to the default for it and can trust what is left."""
    result = _checked_limit_table(limits, where, report)
    providers = limits.get("providers", {})
    if not isinstance(providers, dict):
        report(f"{where}.providers must be a table of agent names; ignored")
        return result
    from zag.providers import NAMES

    result["providers"] = {}
    for name, table in providers.items():
        if name not in NAMES:
            report(f"{where}.providers.{name}: unknown agent{_known(name, NAMES)}; ignored")
        elif not isinstance(table, dict):
            report(f"{where}.providers.{name} must be a table; ignored")
        else:
            result["providers"][name] = _checked_limit_table(table, f"{where}.providers.{name}", report)
    return result


def _checked_limit_table(table: dict[str, Any], where: str, report: Callable[[str], None]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key == "providers":
            continue
        if key not in LIMIT_DEFAULTS:
            report(f"{where}: unknown key {key!r}{_known(key, [*LIMIT_DEFAULTS, 'providers'])}; ignored")
        elif key == "extra_patterns":
            out[key] = _checked_patterns(value, f"{where}.{key}", report, ignore_case=True)
        else:
            problem = _limit_value_problem(key, value)
            if problem is None:
                out[key] = value
            else:
                report(f"{where}.{key} {problem}; using the default ({_toml(LIMIT_DEFAULTS[key])})")
    return out


def _limit_value_problem(key: str, value: Any) -> str | None:
    """Why `value` cannot be the `[usage_limits]` setting `key`, or None when it can."""
    if key == "enabled":
        return None if isinstance(value, bool) else "must be true or false"
    if key == "resume_message":
        if not isinstance(value, str) or not value.strip():
            return "must be a non-empty string"
        # typed into the agent's terminal: ^C would interrupt it, ESC start a key sequence
        return "must not hold control characters (a line break is fine)" if _CONTROL.search(value) else None
    if key == "max_attempts":
        return None if isinstance(value, int) and not isinstance(value, bool) and value >= 1 \
            else "must be a whole number of at least 1 (`enabled = false` turns resuming off)"
    if key == "jitter_secs":
        return None if _is_seconds(value) and value >= 0 else "must be a number of seconds, 0 or more"
    return None if _is_seconds(value) and value > 0 else "must be a positive number of seconds"


def _checked_redaction(table: Any, where: str, report: Callable[[str], None]) -> tuple[str, ...]:
    if not isinstance(table, dict):
        report(f"{where} must be a table; ignored")
        return ()
    for key in table:
        if key not in _REDACTION_KEYS:
            report(f"{where}: unknown key {key!r}{_known(key, _REDACTION_KEYS)}; ignored")
    return tuple(_checked_patterns(table.get("extra_patterns", []), f"{where}.extra_patterns", report))


def _checked_patterns(value: Any, where: str, report: Callable[[str], None],
                      ignore_case: bool = False) -> list[str]:
    """The regexes of a pattern list that compile (with the `regex` engine that runs them, see
    `zag.user_patterns`); each other one is reported: a pattern silently dropped would leave a secret
    unredacted or a limit unseen."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        report(f"{where} must be a list of regex strings; ignored")
        return []
    if not value:
        return []
    import regex

    flags = regex.IGNORECASE if ignore_case else 0
    usable = []
    for pattern in value:
        try:
            regex.compile(pattern, flags)
        except Exception as exc:  # noqa: BLE001 - re.error, regex.error, ValueError: not a usable regex
            report(f"{where}: {pattern!r} is not a valid regex ({exc}); this pattern is ignored")
        else:
            usable.append(pattern)
    return usable


def _known(name: str, known: Any) -> str:
    """` (did you mean 'x'?)` for a misspelling of a known name, else ` (known: a, b, c)`."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(sorted(known))})"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_seconds(value: Any) -> bool:
    """A number of seconds zag can wait (TOML also has `inf` and `nan`: a wait of `inf` never ends, and
    the time it ends at cannot be logged)."""
    return _is_number(value) and abs(value) <= MAX_SECS  # false for nan and inf; no float() of a huge int


def _toml(value: Any) -> str:
    """A default as it would be written in config.toml."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)
