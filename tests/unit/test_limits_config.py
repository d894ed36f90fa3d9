"""Usage-limit config: global values, per-provider overrides (incl. the engine's retry_secs/verify_secs),
wrong types reported and ignored, `enabled = false`."""

from __future__ import annotations

from pathlib import Path

from zag import config


def load(tmp_path: Path, text: str) -> config.Config:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return config.load(path)


def test_provider_overrides_global(tmp_path: Path) -> None:
    loaded = load(tmp_path, """
[usage_limits]
resume_message = "Please continue"
jitter_secs = 5
retry_secs = 60
[usage_limits.providers.codex]
jitter_secs = 1
max_attempts = 2
verify_secs = 30
enabled = false
extra_patterns = ["quota gone until (?P<reset>.+)"]
""")
    assert loaded.problems == ()
    codex = loaded.limits_for("codex")
    assert (codex.enabled, codex.resume_message, codex.jitter_secs, codex.max_attempts) == (False, "Please continue",
                                                                                            1.0, 2)
    assert (codex.retry_secs, codex.verify_secs) == (60.0, 30.0)
    assert codex.extra_patterns == ("quota gone until (?P<reset>.+)",)
    claude = loaded.limits_for("claude")
    assert (claude.enabled, claude.jitter_secs, claude.max_attempts, claude.verify_secs) == (True, 5.0, 12, 120.0)


def test_wrong_types_are_reported_and_defaults_used(tmp_path: Path) -> None:
    loaded = load(tmp_path, """
[usage_limits]
retry_secs = "soon"
enabled = "yes"
[usage_limits.providers.gemini]
verify_secs = true
""")
    assert len(loaded.problems) == 3
    gemini = loaded.limits_for("gemini")
    assert (gemini.enabled, gemini.retry_secs, gemini.verify_secs) == (True, 300.0, 120.0)
