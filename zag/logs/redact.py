"""Secret redaction, applied to every encoded line before it reaches a unified log.

Redaction works on the encoded JSON bytes of a line, so it sees every string of every event without
walking the structure. Replacements contain no quote or backslash, and every built-in pattern stops at
characters that end a JSON string, so a redacted line stays valid JSON. A cheap literal pre-check keeps
the common case (no secret-looking text at all) at one multi-pattern scan for all markers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from typing import Any

from zag.logs.events import ENVELOPE_FIELDS
from zag.user_patterns import budget as _budget

# What may directly precede a key that must not start inside a word: a non-word byte, or the end of a
# JSON escape (`\n`, `\t`, `\u001b`: a key at the start of a line of a file dump) or of a terminal
# colour sequence (`\u001b[32m`), whose last byte is a letter or digit.
_KEY_START = (rb"(?:(?<![A-Za-z0-9_\-])|(?<=\\[nrtbf])|(?<=\\u00[0-9a-fA-F]{2})"
              rb"|(?<=[\[;][0-9]m)|(?<=[\[;][0-9]{2}m)|(?<=[\[;][0-9]{3}m))")
# A private-key block: BEGIN … END, or BEGIN … the end of the JSON string when END is missing (a dump
# cut short: `head id_rsa`, a truncated tool output). JSON escapes are consumed whole, so an escaped
# quote does not end the string and a string ending in an escaped backslash does.
_PRIVATE_KEY_LABEL = rb"(?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
# A bearer token (RFC 6750 characters) of at least 16 characters, its `/` maybe written `\/` in JSON
# text (at any depth). The plain run is tried first, and the count through escapes only when a backslash
# comes within 16 characters, so prose (`the bearer of bad news`) fails as fast as before.
_TOKEN_CHAR = rb"[A-Za-z0-9\-._~+/]"
_TOKEN = (rb"(?:" + _TOKEN_CHAR + rb"{16,}|(?=" + _TOKEN_CHAR + rb"{0,15}\\)(?=(?:" + _TOKEN_CHAR
          + rb"|\\+/){16}))" + _TOKEN_CHAR + rb"*(?:\\+/" + _TOKEN_CHAR + rb"*)*=*")

# (name, marker bytes one of which appears in anything the pattern matches, pattern)
_BUILTIN: tuple[tuple[str, tuple[bytes, ...], bytes], ...] = (
    ("private_key", (b"PRIVATE KEY-----", b"PRIVATE KEY BLOCK-----"),
     rb"-----BEGIN " + _PRIVATE_KEY_LABEL + rb"(?:[^\"\\\n]|\\.)*?(?:-----END " + _PRIVATE_KEY_LABEL
     + rb"|(?=[\"\n]|\Z))"),
    ("anthropic_key", (b"sk-ant-",), rb"sk-ant-[A-Za-z0-9_\-]{16,}"),
    ("openai_key", (b"sk-",), _KEY_START + rb"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"),
    # a key is exactly 39 characters: a longer run (base64 image data) is not one
    ("google_api_key", (b"AIza",), rb"AIza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-])"),
    ("google_oauth_token", (b"ya29.",), rb"ya29\.[0-9A-Za-z_\-]{20,}"),
    ("aws_access_key", (b"AKIA", b"ASIA"), rb"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])"),
    # `AWS_SECRET_ACCESS_KEY=`, `aws_secret_access_key =`, and the AWS CLI/SDK spellings
    # (`"SecretAccessKey": "…"` from `aws iam create-access-key`, `secretAccessKey:`), in JSON text at
    # any depth (quotes after backslashes), its `/` maybe written `\/` (PHP, Java JSON writers)
    ("aws_secret_key", (b"ecret_access_key", b"ECRET_ACCESS_KEY", b"ecretAccessKey", b"ecretaccesskey",
                        b"ecret_Access_Key", b"ecretAccess_Key"),
     rb"(?P<keep>(?i:(?:aws_?)?secret_?access_?key)(?:\\*\"|')?\s*[:=]\s*(?:\\*\"|')?)"
     rb"(?:[A-Za-z0-9+=]|\\*/){40}(?![A-Za-z0-9/+=]|\\+/)"),
    ("github_token", (b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_", b"github_pat_"),
     rb"(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
    ("slack_token", (b"xox",), rb"xox[abprs]-[A-Za-z0-9\-]{10,}"),
    ("bearer_token", (b"earer ", b"EARER "), rb"(?P<keep>(?i:bearer)\s+)" + _TOKEN),
    # a token on the next line: after a line break's JSON escape (`\n`, `\r\n`, at any depth); a
    # pattern of its own, run only where `Bearer\` is, so ordinary text pays nothing for it
    ("bearer_token", (b"earer\\", b"EARER\\"), rb"(?P<keep>(?i:bearer) *\\+[nrt](?:\s|\\+[nrt])*)" + _TOKEN),
)


def _replacement(name: str, pattern: re.Pattern[bytes]) -> bytes:
    """`[REDACTED:<name>]`, preceded by the pattern's `keep` group (context such as `Bearer `)."""
    marker = f"[REDACTED:{name}]".encode()
    return rb"\g<keep>" + marker if "keep" in pattern.groupindex else marker


class Redactor:
    """Redacts built-in secret shapes plus user patterns (regex strings from config)."""

    def __init__(self, extra_patterns: Iterable[str] = ()) -> None:
        all_markers: list[bytes] = []
        marker_slots: list[int] = []
        for slot, (_, markers, _) in enumerate(_BUILTIN):
            all_markers.extend(markers)
            marker_slots.extend(slot for _ in markers)
        all_markers.extend(_ESCAPE_MARKERS)
        marker_slots.extend(_ESCAPES for _ in _ESCAPE_MARKERS)
        self._escape_markers = frozenset(range(len(all_markers) - len(_ESCAPE_MARKERS), len(all_markers)))
        self._finder = _marker_finder(all_markers)
        self._marker_slots = _hidden_slots(all_markers, marker_slots)
        self._extra: list[Any] = []
        self.problems: list[str] = []
        extra_patterns = list(extra_patterns)
        if extra_patterns:
            import regex  # `re` cannot bound a match's time, and holds the GIL while it runs (see `_sub_custom`)

            for pattern in extra_patterns:
                try:
                    self._extra.append(regex.compile(pattern))
                except (regex.error, ValueError) as exc:
                    self.problems.append(f"redaction pattern {pattern!r} is not a valid regex: {exc}")
        # a line can be ruled out on its encoding only when every pattern matches the same way there
        self._prechecked = all(_CONTEXT_FREE.fullmatch(pattern.pattern) for pattern in self._extra)

    def redact(self, line: bytes) -> bytes:
        """Return `line` with every secret replaced by `[REDACTED:<kind>]`."""
        line = self._redact_builtin(line)
        if self._extra:
            line = self._redact_custom(line)
        return line

    def redact_lines(self, data: bytes) -> bytes:
        """`redact` for many complete JSON lines at once (the same result as line by line, faster).

        The built-in patterns never match across a newline (an encoded JSON line has none inside), so
        they run once over the whole block; user patterns, which need the decoded line, run per line.
        """
        data = self._redact_builtin(data)
        if self._extra:
            data = b"".join(self._redact_custom(line) for line in data.splitlines(keepends=True))
        return data

    def slots_to_run(self, data: bytes) -> set[int]:
        """Indexes into `_BUILTIN` of the patterns that may match in `data` (a superset; usually empty)."""
        return self._scan(data)[0] - {_ESCAPES}

    def _scan(self, data: bytes) -> tuple[set[int], list[int]]:
        """The slots to run (`_ESCAPES` among them when an escape of a plain character may hide a secret)
        and where those escapes are, from one pass over `data`."""
        found = self._finder.find_matches_as_indexes(data)
        if not found:
            return set(), []
        marker_slots = self._marker_slots
        hit: set[int] = set()
        for marker in {marker for marker, _, _ in found}:
            hit |= marker_slots[marker]
        if _ESCAPES not in hit:
            return hit, []
        escapes = self._escape_markers   # `u002`…: an escape only after a backslash (not in base64 data)
        return hit, [start for marker, start, _ in found if marker in escapes and data[start - 1:start] == b"\\"]

    def _redact_builtin(self, data: bytes) -> bytes:
        hit, escapes = self._scan(data)
        if not hit:
            return data
        if escapes:
            data = self._redact_escaped(data, escapes)
        return self._sub_builtin(data, hit)

    def _redact_escaped(self, data: bytes, positions: list[int]) -> bytes:
        """Secrets spelled with JSON escapes of plain characters (`sk-\\u0061nt-…`, `\\u0041Iza…`), which
        no pattern sees: JSON zag passes through raw (a tool's input, a whole unknown record) keeps its
        writer's escapes, and a malformed line kept as text keeps them one level down. A line changes
        only when its unescaped text holds a secret: it becomes that text, redacted."""
        pieces: list[bytes] = []
        done = 0
        for position in positions:
            if position < done:
                continue
            start = data.rfind(b"\n", 0, position) + 1
            end = data.find(b"\n", position)
            end = len(data) if end < 0 else end + 1
            line = data[start:end]
            plain = _ESCAPED_PLAIN.sub(_unescaped, line)
            redacted = self._sub_builtin(plain, self.slots_to_run(plain)) if plain != line else line
            pieces += (data[done:start], redacted if redacted != plain else line)
            done = end
        pieces.append(data[done:])
        return b"".join(pieces)

    def _sub_builtin(self, data: bytes, slots: set[int]) -> bytes:
        for slot in sorted(slots - {_ESCAPES}):
            pattern, replacement = _compiled(slot)
            data = pattern.sub(replacement, data)
        return data

    def redact_text(self, text: str) -> str:
        """`redact` for one string that is stored outside a log (an index column: argv, cwd, raw text)."""
        from zag.logs import codec

        try:
            encoded = codec.dumps(text)
        except UnicodeEncodeError:  # not UTF-8 (a folder named in another encoding): as the log shows it
            encoded = codec.dumps(codec.printable(text))
        redacted = self.redact(encoded)
        return text if redacted == encoded else codec.loads(redacted)

    def _redact_custom(self, line: bytes) -> bytes:
        """User patterns may match JSON syntax, so they run on the decoded strings, not the bytes. A
        pattern can match a string and not its encoding (`^…`, `\\b` after a newline, which the encoding
        turns into `\\n`): the encoded line rules a match out only for patterns made of characters
        JSON keeps as they are, without anchors or lookarounds (`_CONTEXT_FREE`)."""
        from zag.logs import codec

        if self._prechecked and not self._may_match(line.decode("utf-8", errors="replace")):
            return line
        newline = line.endswith(b"\n")
        try:
            value = codec.loads(line)
        except codec.DecodeError:
            return self._sub_custom(line.decode("utf-8", errors="replace")).encode("utf-8")
        redacted = self._walk(value)
        if redacted is value:
            return line
        encoded = codec.dumps(redacted)
        return encoded + b"\n" if newline else encoded

    def _may_match(self, text: str) -> bool:
        """Whether a user pattern may match in `text` (one that takes too long: it may)."""
        try:
            return any(pattern.search(text, timeout=_budget(text)) for pattern in self._extra)
        except TimeoutError:
            return True

    def _walk(self, value: object, event: bool = True) -> object:
        """`value` with user patterns applied to every string value; `value` itself if none matched. Keys
        are left alone, and so is the envelope of the event (`event`: the top level), whose values zag
        itself wrote: a pattern such as `session` must not turn the log into one zag cannot read."""
        if isinstance(value, str):
            return self._sub_custom(value)
        if isinstance(value, list):
            items = [self._walk(item, False) for item in value]
            return value if all(new is old for new, old in zip(items, value)) else items
        if isinstance(value, dict):
            kept = _ENVELOPE if event else ()
            pairs = [(key, item if key in kept else self._walk(item, False)) for key, item in value.items()]
            if all(new is old for (_, new), old in zip(pairs, value.values())):
                return value
            return dict(pairs)
        return value

    def _sub_custom(self, text: str) -> str:
        """`text` with every non-empty match of the user patterns replaced, all found in the text as it
        came (one pattern never matches what another put in, nor inside a built-in's marker); the same
        object if nothing matched. A pattern that backtracks (`(a|aa)+$` on a long run of `a`) gets a time
        budget per text: past it the whole text is taken for a secret and replaced, and the pattern is
        named on stderr once (the `regex` engine lets zag's other threads run meanwhile)."""
        spans: list[tuple[int, int]] = []
        for pattern in self._extra:
            try:
                # most texts hold no match: one search (finditer costs twice as much to set up)
                first = pattern.search(text, timeout=_budget(text))
                if first is not None:
                    matches = pattern.finditer(text, first.start(), timeout=_budget(text))
                    spans += [match.span() for match in matches if match.end() > match.start()]
            except TimeoutError:
                self._say_timed_out(pattern.pattern, len(text))
                return _CUSTOM
        return _replaced(text, spans) if spans else text

    @staticmethod
    def _say_timed_out(pattern: str, length: int) -> None:
        if pattern in _timed_out:  # once per process, whichever redactor ran it
            return
        _timed_out.add(pattern)
        import sys

        try:
            sys.stderr.write(f"zag: redaction pattern {pattern!r} took too long on a text of {length} characters "
                             "(it backtracks: rewrite it without nested repeats); such a text is logged as "
                             f"{_CUSTOM}\n")
            sys.stderr.flush()
        except (AttributeError, OSError, ValueError):
            pass


_CUSTOM = "[REDACTED:custom]"
_timed_out: set[str] = set()  # user patterns that ran out of time (said on stderr)
_MARKER = re.compile(r"\[REDACTED:[a-z_]+\]")
_ENVELOPE = frozenset(ENVELOPE_FIELDS)


def _replaced(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with each span (merged where they overlap or touch) replaced by `[REDACTED:custom]`. A span
    within a built-in's `[REDACTED:<kind>]` marker is dropped; a marker a span overlaps goes into its
    replacement."""
    if "[REDACTED:" in text:
        markers = [match.span() for match in _MARKER.finditer(text)]
        spans = [(start, end) for start, end in spans if not any(a <= start and end <= b for a, b in markers)]
        spans += [(a, b) for a, b in markers if any(a < end and start < b for start, end in spans)]
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:  # overlapping or touching: one marker
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    pieces, done = [], 0
    for start, end in merged:
        pieces += (text[done:start], _CUSTOM)
        done = end
    pieces.append(text[done:])
    return "".join(pieces)


# A user pattern whose every match in a decoded string is also a match in its JSON encoding: literals
# and classes of characters the encoder writes as they are, `\d`, `\w`, groups, alternatives and
# repeats; no anchor, boundary, lookaround, `.`, negated class, quote or backslash (which the
# encoding adds or changes).
_CONTEXT_FREE = re.compile(r"(?:[A-Za-z0-9_\-{},|*+?:/@#%&~' ]|\\[dw]|\((?:\?:)?|\)|\[-?(?:[0-9]-[0-9]|[a-z]-[a-z]"
                           r"|[A-Z]-[A-Z]|[A-Za-z0-9_+/=:@ ]|\\[dw\-])*-?\])*")

# A JSON escape (at any nesting depth: one or more backslashes) of a character that secrets are made of,
# and the markers that find one (a pseudo-slot after the patterns')
# (without the backslash, which is everywhere in JSON and would slow the one pass down 2x)
_ESCAPED_PLAIN = re.compile(rb"\\+u00([2-7][0-9a-fA-F])")
_ESCAPE_MARKERS = tuple(b"u00%d" % digit for digit in range(2, 8))
_ESCAPES = len(_BUILTIN)
_PLAIN = frozenset(b" +-./:=_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def _unescaped(match: re.Match[bytes]) -> bytes:
    char = int(match.group(1), 16)
    return bytes((char,)) if char in _PLAIN else match.group(0)


@cache
def _compiled(slot: int) -> tuple[re.Pattern[bytes], bytes]:
    """A built-in pattern and its replacement, compiled when a marker first calls for it (~10 ms for
    all of them, which most runs never need: `zag run` starts without paying for it)."""
    name, _, source = _BUILTIN[slot]
    pattern = re.compile(source)
    return pattern, _replacement(name, pattern)


def _marker_finder(markers: list[bytes]) -> Any:
    """All markers found in one pass (Aho-Corasick, in Rust): the pre-check is what redaction costs on
    gigabytes of backfilled history. Leftmost-longest, non-overlapping matching lets the library skip
    ahead with its SIMD prefilter (~4 GB/s, against ~0.4 GB/s for overlapping matches); the markers a
    match can hide are accounted for by `_hidden_slots`."""
    import ahocorasick_rs

    return ahocorasick_rs.BytesAhoCorasick(markers, matchkind=ahocorasick_rs.MatchKind.LeftmostLongest)


def _hidden_slots(markers: list[bytes], slots: list[int]) -> list[frozenset[int]]:
    """For each marker, the pattern slots to run when it is found: its own, plus those of every marker
    that an occurrence of it can hide from a non-overlapping leftmost search. Such a search reports
    the leftmost match and resumes after its end, so an occurrence of another marker is missed only
    when it starts inside the reported one: it lies within it (`sk-` in `sk-ant-`), or it begins with
    the reported marker's tail (`AIza` after `ASIA` in `ASIAIza…`). Markers starting before it would
    have been reported instead, or start inside the previous match (that match's set covers them)."""
    result = []
    for index, marker in enumerate(markers):
        hit = {slots[index]}
        for other, candidate in enumerate(markers):
            if other == index:
                continue
            if candidate in marker or any(
                    candidate.startswith(marker[start:]) for start in range(1, len(marker))):
                hit.add(slots[other])
        result.append(frozenset(hit))
    return result


_default: Redactor | None = None


def default_redactor() -> Redactor:
    """A redactor configured from the user's config (built once per process)."""
    global _default
    if _default is None:
        from zag import config

        _default = Redactor(config.load().redaction_patterns)
    return _default
