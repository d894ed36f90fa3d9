"""A cheap, exact pre-check of raw agent output: can any of these lines matter to an output scanner?

Scanners see every byte the agent writes, but only a few lines ever matter (a limit wording, a session
id). Decoding, ANSI-stripping and pattern-matching every line costs ~0.1 s per MB; `Prescan.may_matter`
answers for a whole run of complete lines at C speed (one Aho-Corasick pass over the lowercased bytes),
and the scanner reads the lines only when it says yes.

It must never say no to a line the scanner would act on. A scanner declares the words every line of
interest contains (matched ignoring ASCII case; a tuple means all of its words); the pre-check says yes
when
- one of the words is in the bytes, lowercased, or in what `text.strip_ansi` leaves of them: escape
  sequences and control characters are removed, which can join a word split by a colour change, and
  cursor moves forward stand for a blank;
- a character that case-insensitive matching folds onto an ASCII letter is there (U+0130, U+0131,
  U+017F, U+212A: `re.IGNORECASE` matches "ſ" with "s");
- a JSON escape of a letter or digit (`\\u0041`) is there: decoded JSON may hold a word the bytes spell
  otherwise;
- `brace_lines`: a line starts with `{` but not `{"` (a JSON document a scanner collects line by line
  starts with a line that is `{` alone);
- `id_key` (e.g. `"session_id"`): a line names a session id other than the one already known.
The one thing it cannot see is a JSON number spelt in exponent form (`4.29e2` for 429); no agent CLI
writes numbers so.

The observers run on a thread of their own, beside the relay's (`wrapper/observation.py`), and whatever holds
the interpreter lock holds up the relay. So the first look at a region (`_QuickCheck`) is made of
ahocorasick searches, which let go of it: for each word, a part of it (≤ 4 bytes) in every ASCII case, and
the other patterns above as they are; and every control byte. A region with neither cannot matter (without
a control byte `strip_ansi` leaves the bytes as they are); otherwise the checks above decide. Plain output
costs ~0.3 ms per MB, with the lock held only to make the calls.

`GatedLines` is `text.LineAssembler` (same lines, same length limit) with the gate applied to each run of
complete lines before they are split and decoded.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import Any

# Control bytes `strip_ansi` deletes (everything below 0x20 but \t \n \r, and DEL); ESC is one of them.
_CONTROLS = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
_ASCII_LOWER = bytes(range(256)).lower()  # `bytes.lower` as a translation table
# `text._ANSI` as bytes, kept within one line (the scanners strip line by line).
_SEQUENCE = re.compile(
    rb"\x1b(?:\[[0-?]*[ -/]*[@-~]"
    rb"|\][^\x07\x1b\r\n]*(?:\x07|\x1b\\)"
    rb"|[PX^_][^\x1b\r\n]*\x1b\\"
    rb"|[@-Z\\-_])"
    rb"|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
)
# `text._CURSOR_TO_LINE`: `strip_ansi` turns these into line breaks (a `{` after one starts a line).
_TO_LINE = re.compile(rb"\x1b\[\d*(?:;\d*)?[Hf]|\x1b\[\d*[ABEF]")
# Cursor forward by 1 or more, cursor to a column: `strip_ansi` turns these into blanks (one, or the count).
_BLANKS = re.compile(rb"\x1b\[(?:\d*[1-9]\d*)?C|\x1b\[\d*G")
_FOLDS = tuple(char.encode("utf-8") for char in "\u0130\u0131\u017f\u212a")
_ESCAPE_START = b"\\u00"       # a JSON escape; of a digit or letter when the next byte is 3-7
_ESCAPED_ALNUM = (b"3", b"4", b"5", b"6", b"7")
_ESCAPE = -1

Gate = Callable[[bytes], bool]
Words = Iterable["bytes | tuple[bytes, ...]"]


def screen_bytes(region: bytes, *, blanks: bool = False, line_moves: bool = False) -> bytes:
    """What `strip_ansi` leaves of each line of `region`, or more: `blanks`: cursor moves forward
    become one blank (`strip_ansi` writes as many as the count), else every sequence is deleted (which
    can only join words); `line_moves`: cursor moves to another line become `\\n`."""
    if b"\x1b" not in region:
        return region.translate(None, _CONTROLS)
    if blanks:
        region = _BLANKS.sub(b" ", region)
    if line_moves:
        region = _TO_LINE.sub(b"\n", region)
    return _SEQUENCE.sub(b"", region)


class Prescan:
    """The pre-check for one scanner: see the module docstring."""

    def __init__(self, words: Words, *, brace_lines: bool = False, id_key: bytes | None = None) -> None:
        direct = [word.lower() for word in words if isinstance(word, bytes)] + list(_FOLDS)
        confirm: list[bytes] = [_ESCAPE_START]
        self._kinds: list[int] = [_ESCAPE]   # per `confirm` pattern: _ESCAPE or the index of its group
        self._groups: list[int] = []          # per group: how many words it has
        for group in (word for word in words if isinstance(word, tuple)):
            self._groups.append(len(group))
            confirm.extend(part.lower() for part in group)
            self._kinds.extend([len(self._groups) - 1] * len(group))
        # A leftmost-first search skips an occurrence that overlaps one it reported: harmless among words
        # (any one is enough), so patterns that need confirming get a search of their own, and none of
        # them may overlap another.
        assert not any(_overlap(a, b) for i, a in enumerate(confirm) for b in confirm[i + 1:])
        self._direct = _finder(direct)
        self._confirm = _finder(confirm)
        self._blanks = any(b" " in pattern for pattern in direct + confirm)
        self._brace_lines = brace_lines
        self._id_key = id_key
        self._quick = _QuickCheck(words, brace_lines=brace_lines, id_key=id_key)

    def may_matter(self, region: bytes, known_id: str | None = None) -> bool:
        """False only when no line in `region` (complete lines, raw bytes) can matter to the scanner."""
        return self._quick.may_matter(region) and self._may_matter(region, known_id)

    def _may_matter(self, region: bytes, known_id: str | None) -> bool:
        # One pass lowercases and drops control bytes: a word in the raw bytes is still there (dropping
        # bytes can only join words), and a shorter result tells that `strip_ansi` has work to do.
        lowered = region.translate(_ASCII_LOWER, _CONTROLS)
        if self._hit(region, lowered, known_id):
            return True
        if len(lowered) != len(region):
            line_moves = self._brace_lines and b"{" in region
            screen = screen_bytes(region, blanks=self._blanks, line_moves=line_moves)
            return self._hit(screen, screen.lower(), known_id)
        return False

    def _hit(self, text: bytes, lowered: bytes, known_id: str | None) -> bool:
        if self._direct.find_matches_as_indexes(lowered):
            return True
        found = self._confirm.find_matches_as_indexes(lowered)
        if found and self._confirmed(lowered, found):
            return True
        if self._brace_lines and b"{" in text and _brace_line(text):
            return True
        return self._id_key is not None and self._other_id(text, known_id)

    def _confirmed(self, lowered: bytes, found: list[tuple[int, int, int]]) -> bool:
        seen: dict[int, set[int]] = {}
        for index, _, end in found:
            kind = self._kinds[index]
            if kind == _ESCAPE:
                if lowered[end:end + 1] in _ESCAPED_ALNUM:
                    return True
                continue
            members = seen.setdefault(kind, set())
            members.add(index)
            if len(members) == self._groups[kind]:
                return True
        return False

    def _other_id(self, text: bytes, known_id: str | None) -> bool:
        key = self._id_key
        assert key is not None
        if key not in text:
            return False
        if not known_id:
            return True
        value = b'"' + known_id.encode("utf-8", "replace") + b'"'
        return text.count(key) != text.count(key + b":" + value) + text.count(key + b": " + value)


class _QuickCheck:
    """The first look at a region, done without the interpreter lock (the relay's thread needs it, and
    waits for it while the observers' thread holds it), in searches of the raw bytes only: every word's
    spellings in any ASCII case (of a part of the word, to keep the searches fast), every control byte.
    Without a control byte `strip_ansi` leaves the bytes as they are, so `Prescan` would find a word only
    where one of these spellings is; with one, it has to look (`may_matter` says maybe)."""

    def __init__(self, words: Words, *, brace_lines: bool, id_key: bytes | None) -> None:
        fixed = [*_FOLDS, _ESCAPE_START, _ESCAPE_START.upper()]
        if brace_lines:
            fixed += [b"\n{", b"\r{"]
        if id_key is not None:
            fixed.append(id_key)
        choices = [[word.lower()] if isinstance(word, bytes) else [part.lower() for part in word]
                   for word in words]
        spellings = _spellings(choices, QUICK_PATTERNS - len(fixed))
        self._words = _finder(sorted(set(fixed + spellings)))
        self._controls = _control_finders()
        self._brace_lines = brace_lines

    def may_matter(self, region: bytes) -> bool:
        if self._words.find_matches_as_indexes(region):
            return True
        if self._brace_lines and region[:1] == b"{":
            return True
        return any(finder.find_matches_as_indexes(region) for finder in self._controls)


QUICK_PATTERNS = 64  # the most patterns the search keeps its SIMD prefilter for (Teddy)


@functools.cache
def _control_finders() -> list[Any]:
    """One search per three control bytes: each is a `memchr3`, where one search for them all is a slow
    byte-by-byte automaton (no prefilter for that many one-byte patterns)."""
    controls = sorted((bytes([byte]) for byte in _CONTROLS), key=lambda byte: byte != b"\x1b")  # ESC: most common
    return [_finder(controls[start:start + 3]) for start in range(0, len(controls), 3)]


def _spellings(choices: list[list[bytes]], budget: int) -> list[bytes]:
    """For each entry (words of which one must be there), the spellings in every ASCII case of a part of one
    of its words: the longest part of 4 bytes or fewer (a rarer match), with the fewest spellings; while they are more than `budget` in
    all, the entry with the most gets a shorter part (shorter parts match more often: a slower search)."""
    lengths = [4] * len(choices)

    def part(index: int) -> bytes:
        candidates = [part for word in choices[index] for part in _parts(word, lengths[index])]
        return min(candidates, key=lambda part: (-len(part), _case_count(part)))

    parts = [part(index) for index in range(len(choices))]
    while sum(_case_count(each) for each in parts) > budget:
        index = max(range(len(parts)), key=lambda at: (_case_count(parts[at]), len(parts[at])))
        if lengths[index] == 1:
            break
        lengths[index] -= 1
        parts[index] = part(index)
    return [spelling for each in parts for spelling in _cases(each)]


def _parts(word: bytes, length: int) -> list[bytes]:
    size = min(length, len(word))
    return [word[start:start + size] for start in range(len(word) - size + 1)]


def _case_count(part: bytes) -> int:
    return 2 ** sum(1 for byte in part if 0x61 <= byte <= 0x7A)


def _cases(part: bytes) -> list[bytes]:
    """`part` (lowercase) in every ASCII case: what `bytes.lower` turns into it."""
    spellings = [b""]
    for byte in part:
        options = [bytes([byte]), bytes([byte - 0x20])] if 0x61 <= byte <= 0x7A else [bytes([byte])]
        spellings = [spelling + option for spelling in spellings for option in options]
    return spellings


def _finder(patterns: list[bytes]) -> Any:
    """Every pattern in one pass (Aho-Corasick in Rust; leftmost-first lets it use its SIMD prefilter,
    ~10 GB/s, where one `in` per word reads the bytes once per word)."""
    import ahocorasick_rs

    return ahocorasick_rs.BytesAhoCorasick(patterns, matchkind=ahocorasick_rs.MatchKind.LeftmostFirst)


def _overlap(a: bytes, b: bytes) -> bool:
    """Whether an occurrence of `a` and one of `b` can share bytes."""
    if a in b or b in a:
        return True
    return any(a.endswith(b[:size]) or b.endswith(a[:size]) for size in range(1, min(len(a), len(b))))


def _brace_line(text: bytes) -> bool:
    """A line starts with `{` not followed by `"` (a JSON object on one line starts `{"`; a document
    a scanner collects starts with a line that is `{` alone)."""
    if text[:1] == b"{" and text[1:2] != b'"':
        return True
    return any(text.count(end + b"{") != text.count(end + b'{"') for end in (b"\n", b"\r"))


_SPLIT = re.compile(rb"\r\n|\n|\r")


def joined(head: bytearray, data: bytes, end: int) -> bytes:
    """`head + data[:end]` as bytes, copying each byte once (chunks can be a megabyte)."""
    if not head:
        return data if end == len(data) else data[:end]
    return b"".join((head, memoryview(data)[:end]))



class GatedLines:
    """`text.LineAssembler` whose `feed` takes a gate: complete lines the gate rejects are dropped unread.

    Lines end at \\n, \\r\\n or \\r; a line longer than `max_line` without an end is handed out as it is
    (as `LineAssembler` does). With no gate, or one that says yes, the lines are exactly
    `LineAssembler`'s."""

    def __init__(self, max_line: int = 64 * 1024) -> None:
        self._buffer = bytearray()
        self._max_line = max_line

    def feed(self, data: bytes, gate: Gate | None = None) -> list[str]:
        end = max(data.rfind(b"\n"), data.rfind(b"\r"))
        if end < 0:
            self._buffer += data
            if len(self._buffer) <= self._max_line:
                return []
            line = bytes(self._buffer)
            self._buffer.clear()
            return [line.decode("utf-8", errors="replace")] if gate is None or gate(line) else []
        region = joined(self._buffer, data, end + 1)
        self._buffer.clear()
        self._buffer += data[end + 1:]
        if gate is not None and not gate(region):
            return []
        parts = _SPLIT.split(region)
        parts.pop()  # the empty rest after the last line end
        return [part.decode("utf-8", errors="replace") for part in parts]

    def flush(self) -> list[str]:
        rest = bytes(self._buffer)
        self._buffer.clear()
        return [rest.decode("utf-8", errors="replace")] if rest else []
