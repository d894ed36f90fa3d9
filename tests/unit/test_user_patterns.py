"""User regexes from config.toml (`usage_limits.extra_patterns`): case-insensitive for every agent, as
README says, and bounded in time."""

from __future__ import annotations

import time

from zag.providers.base import LaunchContext, LimitSignal
from zag.providers.gemini.scanner import GeminiScanner
from zag.user_patterns import compile_all


def test_gemini_extra_patterns_ignore_case_as_every_agents_do() -> None:
    """gemini compiled them without re.IGNORECASE: `quota gone` missed `QUOTA GONE`."""
    ctx = LaunchContext(cwd="/", env={}, interactive=False, started_at=0, zag_session_id="z",
                        extra_limit_patterns=("quota gone",))
    scanner = GeminiScanner(ctx, clock=lambda: 1.0e9)
    items = scanner.feed("stderr", b"log: QUOTA GONE for today\n") + scanner.finish()
    assert [item.raw for item in items if isinstance(item, LimitSignal)] == ["QUOTA GONE"]


def test_a_search_that_runs_out_of_time_is_no_match(capsys: object) -> None:
    [pattern] = compile_all(["(a|aa)+$"])
    started = time.monotonic()
    assert pattern.search("a" * 60 + "!") is None
    assert time.monotonic() - started < 5
    assert pattern.search("aaa") is not None and "reset" not in pattern.groupindex
    assert compile_all(["(unclosed", "ok"])[0].pattern == "ok"
