"""Regexes from the user's config (`usage_limits.extra_patterns`), run where zag reads an agent's output.

A user's pattern may backtrack for ages on some text (`(a|aa)+$` on a long run of `a`: 4 s for 34
characters with `re`, twice that for each two more) and `re` can neither be stopped nor let other threads
run meanwhile: the supervisor, and the agent's output it relays, would stall. These run on the `regex`
engine with a time budget per text (it releases the GIL while it matches); a search that runs out of time
counts as no match, and the pattern is named on stderr once per process.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

_timed_out: set[str] = set()


def budget(text: str) -> float:
    """Seconds a user pattern may take on `text`: any sane pattern scans far faster than 4 MB/s."""
    return 0.05 + len(text) / 4e6


class UserPattern:
    """One compiled user regex; `search` is `re.Pattern.search` with a time budget."""

    def __init__(self, source: str, ignore_case: bool) -> None:
        import regex

        self.pattern = source
        self._compiled = regex.compile(source, regex.IGNORECASE if ignore_case else 0)
        self.groupindex = self._compiled.groupindex

    def search(self, text: str) -> Any:
        """The first match in `text`, or None (also when the search ran out of time)."""
        try:
            return self._compiled.search(text, timeout=budget(text))
        except TimeoutError:
            say_timed_out(self.pattern, len(text))
            return None


def compile_all(sources: Iterable[str], ignore_case: bool = True) -> list[UserPattern]:
    """The patterns that compile (config validation has reported the others: a bad one must not break
    detection)."""
    compiled = []
    for source in sources or ():
        try:
            compiled.append(UserPattern(source, ignore_case))
        except Exception:  # noqa: BLE001 - regex.error, TypeError, ValueError: not a usable pattern
            continue
    return compiled


def say_timed_out(pattern: str, length: int) -> None:
    """Name a pattern that ran out of time on stderr, once per process."""
    if pattern in _timed_out:
        return
    _timed_out.add(pattern)
    try:
        sys.stderr.write(f"zag: pattern {pattern!r} from config.toml took too long on a text of {length} "
                         "characters (it backtracks: rewrite it without nested repeats); it did not match there\n")
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):
        pass
