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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zag import paths

DEFAULT_HEARTBEAT_SECS = 10.0

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
    path = path or paths.config_file()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Config()
    except OSError as exc:
        return Config(problems=(f"cannot read {path}: {exc.strerror}",))
    import tomllib  # imported here: ~15 ms that `zag run` without a config file does not pay

    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        return Config(problems=(f"{path} is not valid TOML ({exc}); using defaults",))
    return _from_dict(data, path)


def _from_dict(data: dict[str, Any], path: Path) -> Config:
    problems: list[str] = []
    heartbeat = data.get("heartbeat_secs", DEFAULT_HEARTBEAT_SECS)
    if not isinstance(heartbeat, (int, float)) or isinstance(heartbeat, bool) or heartbeat <= 0:
        problems.append(f"{path}: heartbeat_secs must be a positive number; using {DEFAULT_HEARTBEAT_SECS}")
        heartbeat = DEFAULT_HEARTBEAT_SECS
    limits = data.get("usage_limits", {})
    if not isinstance(limits, dict):
        problems.append(f"{path}: [usage_limits] must be a table; using defaults")
        limits = {}
    limits, limit_problems = _checked_limits(limits, path)
    problems.extend(limit_problems)
    redaction = data.get("redaction", {})
    patterns = redaction.get("extra_patterns", []) if isinstance(redaction, dict) else []
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        problems.append(f"{path}: redaction.extra_patterns must be a list of strings; ignored")
        patterns = []
    return Config(
        heartbeat_secs=float(heartbeat),
        usage_limits=limits,
        redaction_patterns=tuple(patterns),
        problems=tuple(problems),
    )


def _checked_limits(limits: dict[str, Any], path: Path) -> tuple[dict[str, Any], list[str]]:
    """Drop values of the wrong type (with a message) so `limits_for` can trust what is left."""
    problems: list[str] = []

    def clean(table: dict[str, Any], where: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in table.items():
            if key == "providers":
                continue
            default = LIMIT_DEFAULTS.get(key)
            if default is None:
                problems.append(f"{path}: unknown key {where}.{key}; ignored")
            elif not _same_kind(default, value):
                problems.append(f"{path}: {where}.{key} has the wrong type; ignored")
            else:
                out[key] = value
        return out

    result = clean(limits, "usage_limits")
    providers = limits.get("providers", {})
    if isinstance(providers, dict):
        result["providers"] = {
            name: clean(table, f"usage_limits.providers.{name}")
            for name, table in providers.items()
            if isinstance(table, dict)
        }
    return result, problems


def _same_kind(default: Any, value: Any) -> bool:
    """Whether a config value has the type of its default (ints and floats interchangeable)."""
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, list):
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    return isinstance(value, type(default))
