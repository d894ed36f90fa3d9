"""The output scanners' pre-check (`zag.providers.prescan`): it skips ordinary output and never loses a
detection. Every scanner is compared with itself ungated (the pre-check off, every line read) on the real
captures, on interesting lines split at every byte position, and on random mixtures of output."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zag.providers import get
from zag.providers.base import LaunchContext, LimitSignal, SessionIdHint
from zag.providers.prescan import GatedLines, Prescan, screen_bytes
from zag.providers.text import LineAssembler, strip_ansi

REPO = Path(__file__).resolve().parents[3]
REAL = REPO / "tests" / "fixtures" / "corpus" / "real-cli"
NOW = 1_773_140_000.0
PROVIDERS = ("claude", "codex", "gemini", "goose")
ORDINARY = [b"the quick brown fox jumps over the lazy dog", b"", b"  def main() -> None:", b"}",
            b"\x1b[1mbold\x1b[0m and \x1b[38;2;1;2;3mcolour\x1b[39m", b"\x1b[2K\x1b[1A\x1b[1G> prompt",
            b"id msg_01H429xyz and 0x4290", b'{"type":"message","role":"assistant","content":"hi"}',
            "caf\u00e9 \u2014 na\u00efve \u00b7 dots".encode(), b"progress 42%\x08\x08\x0843%"]
SESSION = "5d1b8c7e-3f0a-4b7e-9c11-2a6f4d8e9b10"

# Lines each scanner acts on, with the stream they come on (beyond the real captures below).
INTERESTING: dict[str, list[tuple[str, bytes]]] = {
    "claude": [
        ("stdout", json.dumps({"type": "system", "subtype": "init", "session_id": SESSION}).encode()),
        ("stdout", b'{"type":"system","subtype":"init","session_id":"' + SESSION.encode() + b'"}'),
        ("stdout", b'{"type":"result","is_error":true,"api_error_status":429,"result":"boom"}'),
        ("stdout", b'{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1773150000}}'),
        ("stderr", "You\u2019ve hit your session limit \u00b7 resets 3pm (Europe/Berlin)".encode()),
        ("pty", "\x1b[38;2;1;2;3m\u23bf\x1b[39m  You've hit your weekly li\x1b[1mmit\x1b[0m \u00b7 resets 9am".encode()),
        ("pty", b"\x1b[31mYou're out of extra usage\x1b[1G\xc2\xb7 resets 11:59pm (UTC)\x1b[0m"),
        ("stderr", b"API Error: Request rejected (429) \xc2\xb7 This request would exceed your rate limit"),
        ("stdout", b"Claude AI usage limit reached|1773150000"),
        ("stderr", b"claude --resume " + SESSION.encode()),
        ("pty", b"\x1b[2mclaude\x1b[1C-r\x1b[1C" + SESSION.encode() + b"\x1b[0m"),
        ("stdout", "You've hit your \u017fession LIMIT".encode()),
        ("stdout", b'{"type":"result","is_error":true,"result":"You\\u0027ve hit your \\u006cimit"}'),
    ],
    "codex": [
        ("stdout", b'{"type":"thread.started","thread_id":"' + SESSION.encode() + b'"}'),
        ("stdout", b'{"type":"error","message":"You\'ve hit your usage limit. Try again later."}'),
        ("stdout", b'{"type":"turn.failed","error":{"message":"You\'ve hit your usage limit. Try again at 3:39 AM."}}'),
        ("stderr", b"session id: " + SESSION.encode()),
        ("stderr", b"ERROR: You've hit your usage limit. Try again in 2 hours 13 minutes."),
        ("stderr", b'{"error":{"type":"usage_limit_reached","resets_at":1773150000}}'),
        ("stderr", b"ERROR: You\xe2\x80\x99ve hit your usage l\x1b[1mimit. Try again later."),
    ],
    "gemini": [
        ("stdout", b'{"type":"init","timestamp":"2026-11-22T14:44:00.000Z","session_id":"' + SESSION.encode() + b'"}'),
        ("stdout", b'{"type":"result","status":"error","error":{"type":"Error","message":"boom","code":429}}'),
        ("stderr", b"TerminalQuotaError: You have exhausted your daily quota on this model."),
        ("pty", "\u2715 [API Error: You have exhausted your capacity on this model.]".encode()),
        ("pty", b"Usage limit reached for gemini-2.5-pro.\r\n/stats model for usage details\r\n"
                b"Access resets at 3:45 PM PST.\r\n/model to switch models."),
        ("stderr", b"We are currently experiencing high demand for gemini-2.5-pro.\n"
                   b"We apologize and appreciate your patience.\n/auth to switch"),
        ("stderr", b"{\n  \"session_id\": \"" + SESSION.encode() + b"\",\n  \"error\": {\"type\": \"Error\", "
                   b"\"message\": \"quota\", \"code\": 429}\n}"),
        ("stdout", b"gemini --resume " + SESSION.encode()),
        ("pty", "\x1b[2m\u2502\x1b[0m  Session ID:\x1b[3C\x1b[1m".encode() + SESSION.encode() + "\x1b[0m  \u2502".encode()),
        ("pty", b"\x1b[2;1H{\x1b[3;1H\"session_id\": \"" + SESSION.encode() + b"\"\x1b[4;1H}"),
    ],
    "goose": [
        ("stdout", b"    session id: 20251108_3"),
        ("stdout", "     20251108_4 \u00b7 /work/proj".encode()),
        ("pty", "\x1b[31m\u25cf Ran into this error: Rate limit exceeded: resets 3pm (Europe/Berlin)\x1b[0m".encode()),
        ("stderr", b"  error: Rate limit exceeded: retry after 20s"),
        ("stdout", json.dumps({"type": "error", "error": "Ran into this error: Rate limit exceeded: try again in 5s"}).encode()),
        ("stdout", json.dumps({"messages": [{"role": "assistant", "created": 2, "content": [
            {"type": "text", "text": "Ran into this error: Rate limit exceeded: try again in 5 minutes.\n\n"
             "Please retry if you think this is a transient or recoverable error."}]}]}, indent=2).encode()),
        ("stdout", b"Ran into this error: Resource exhausted: RESOURCE_EXHAUSTED"),
    ],
}


def scanner(provider: str, *, gated: bool = True, extra: tuple[str, ...] = ()) -> Any:
    ctx = LaunchContext(cwd="/tmp", env={}, interactive=True, started_at=NOW, zag_session_id="z",
                        extra_limit_patterns=extra)
    instance = get(provider).output_scanner(ctx)
    for name in ("_clock", "clock"):  # gemini and goose take their clock at construction
        if hasattr(instance, name):
            setattr(instance, name, lambda: NOW)
    if not gated:
        for name in ("_prescan", "_prescans"):
            if hasattr(instance, name):
                setattr(instance, name, None)
    return instance


def normalised(items: list[Any]) -> list[Any]:
    out = []
    for item in items:
        if isinstance(item, LimitSignal):
            item = dataclasses.replace(item, observed_at=0.0)
        out.append(item)
    return out


def run(provider: str, chunks: list[tuple[str, bytes]], *, gated: bool = True) -> list[Any]:
    instance = scanner(provider, gated=gated)
    items: list[Any] = []
    with mock.patch("time.time", return_value=NOW):
        for stream, data in chunks:
            items += instance.feed(stream, data)
        items += instance.finish()
    return normalised(items)


def split_at(stream: str, data: bytes, *cuts: int) -> list[tuple[str, bytes]]:
    bounds = [0, *sorted(cuts), len(data)]
    return [(stream, data[start:end]) for start, end in zip(bounds, bounds[1:]) if end > start]


def eol(stream: str) -> bytes:
    return b"\r\n" if stream == "pty" else b"\n"


def surrounded(stream: str, line: bytes) -> bytes:
    end = eol(stream)
    return end.join([*ORDINARY[:4], line, *ORDINARY[4:]]) + end


# --- the gated lines ---------------------------------------------------------------------------
@given(st.lists(st.binary(max_size=40) | st.sampled_from([b"\r", b"\n", b"\r\n", b"ab\rcd\n"]), max_size=30),
       st.integers(min_value=1, max_value=50))
def test_gated_lines_without_a_gate_are_line_assembler_lines(chunks: list[bytes], max_line: int) -> None:
    gated, plain = GatedLines(max_line=max_line), LineAssembler(max_line=max_line)
    for chunk in chunks:
        assert gated.feed(chunk) == plain.feed(chunk)
    assert gated.flush() == plain.flush()


def test_gated_lines_drop_rejected_runs_and_keep_the_partial_line() -> None:
    lines = GatedLines()
    assert lines.feed(b"one\ntwo\nthr", lambda region: False) == []
    assert lines.feed(b"ee\nfour", lambda region: region == b"three\n") == ["three"]
    assert lines.flush() == ["four"]


# --- the pre-check -----------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    b"Rate LIMIT exceeded", b"li\x1b[1mmit", b"li\x08mit", b"lim\x1b]8;;http://x\x07it", "l\u0131mit".encode(),
    "\u017fomething".encode(), b'"\\u006cimit"', b"{\n", b"\x1b[0m{\r\n", b"abc\x1b[2;1H{\n",
])
def test_prescan_says_yes(text: bytes) -> None:
    assert Prescan([b"limit"], brace_lines=True).may_matter(text + b"\n")


@pytest.mark.parametrize("text", [
    b"the lazy dog", b"  {\n", b'{"a": 1}\n', b"lim\nit", b'"\\u001b[31m"', b"\x1b[1mbold\x1b[0m", b"lim it",
])
def test_prescan_says_no(text: bytes) -> None:
    assert not Prescan([b"limit"], brace_lines=True).may_matter(text + b"\n")


def test_prescan_word_groups_need_every_word() -> None:
    prescan = Prescan([(b"claude", b"-r")])
    assert not prescan.may_matter(b"claude code\n")
    assert not prescan.may_matter(b"cp -r a b\n")
    assert prescan.may_matter(b"claude\x1b[1C-r abc\n")


def test_prescan_session_ids() -> None:
    prescan = Prescan([b"limit"], id_key=b'"session_id"')
    line = b'{"type":"x","session_id":"%s"}\n'
    assert prescan.may_matter(line % b"a")  # no id known yet
    assert not prescan.may_matter(line % b"a" * 3, known_id="a")
    assert not prescan.may_matter(b'{"type": "x", "session_id": "a"}\n', known_id="a")
    assert prescan.may_matter(line % b"a" + line % b"b", known_id="a")
    assert prescan.may_matter(b'{"session_id" : "a"}\n', known_id="a")  # spelt otherwise: read it


def test_screen_bytes_mirror_strip_ansi() -> None:
    raw = b"\x1b[31mred\x1b[0m\x1b[3Cgap\x1b[5Gcol\x07bell\x1b[2;1Hnext\x1b]0;title\x07end"
    assert screen_bytes(raw) == b"redgapcolbellnextend"
    assert screen_bytes(raw, blanks=True, line_moves=True) == b"red gap colbell\nnextend"
    assert strip_ansi(raw.decode()) == "red   gap colbell\nnextend"


# --- the scanners, gated vs read line by line ---------------------------------------------------
def captures(provider: str) -> list[tuple[str, bytes]]:
    folder = REAL / provider
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        stream = {"stdout": "stdout", "stderr": "stderr", "screen": "pty"}.get(path.name.split("_", 1)[0])
        if stream is not None:
            found.append((stream, path.read_bytes()))
    return found


@pytest.mark.parametrize("provider", PROVIDERS)
def test_real_captures_give_the_same_items_gated_or_not(provider: str) -> None:
    for stream, data in captures(provider) + [(s, surrounded(s, line)) for s, line in INTERESTING[provider]]:
        for step in (1 if len(data) < 3000 else 3, 7, 64, 4096, len(data)):
            chunks = [(stream, data[start:start + step]) for start in range(0, len(data), step)]
            assert run(provider, chunks) == run(provider, chunks, gated=False), (stream, data[:80], step)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_interesting_line_split_at_every_byte_is_still_seen(provider: str) -> None:
    for stream, line in INTERESTING[provider]:
        data = surrounded(stream, line)
        expected = run(provider, [(stream, data)], gated=False)
        assert expected, f"{provider}: {line!r} is not interesting to the scanner"
        start = data.index(line)
        for cut in range(max(1, start - 3), start + len(line) + 3):
            assert run(provider, split_at(stream, data, cut)) == expected, (line, cut)
        for cut in range(start, start + len(line), 5):  # three chunks: the middle one inside the line
            assert run(provider, split_at(stream, data, cut, cut + 3)) == expected, (line, cut)


def test_the_hints_and_limits_are_really_found() -> None:
    """The comparison above would pass if both sides found nothing: pin a few results."""
    init = INTERESTING["claude"][0]
    assert run("claude", [(init[0], surrounded(*init))]) == [SessionIdHint(SESSION, source="stdout")]
    items = run("claude", [("pty", surrounded(*INTERESTING["claude"][5]))])
    assert [type(item) for item in items] == [LimitSignal] and items[0].scope == "weekly"
    assert run("codex", [("stdout", surrounded(*INTERESTING["codex"][0]))]) == [SessionIdHint(SESSION, "stdout")]
    assert run("goose", [("stdout", surrounded(*INTERESTING["goose"][0]))]) == [SessionIdHint("20251108_3", "stdout")]
    dialog = run("gemini", [("pty", surrounded(*INTERESTING["gemini"][4]))])
    assert [type(item) for item in dialog] == [LimitSignal]


pieces = st.sampled_from(ORDINARY) | st.binary(max_size=12) | st.sampled_from(
    [b"\x1b[", b"\x1b[1m", b"\x1b]0;", b"\x07", b"\r", b"\n", b"{", b"}", b"limit", b"LI", b"MIT", b"quota",
     b"session id: ", b"20251108_1", b"\\u00", b'"session_id":"x"', b"claude", b" -r ", b"(429)", b"\xc2\xb7"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(provider=st.sampled_from(PROVIDERS), stream=st.sampled_from(["stdout", "stderr", "pty"]),
       parts=st.lists(st.tuples(st.booleans(), pieces | st.sampled_from([b"x"])), max_size=40),
       data=st.data())
def test_random_output_gives_the_same_items_gated_or_not(provider: str, stream: str, parts: list[tuple[bool, bytes]],
                                                         data: st.DataObject) -> None:
    interesting = [line for s, line in INTERESTING[provider]]
    body = b"".join(data.draw(st.sampled_from(interesting)) + eol(stream) if pick else piece for pick, piece in parts)
    cuts = data.draw(st.lists(st.integers(min_value=1, max_value=max(1, len(body) - 1)), max_size=6))
    chunks = split_at(stream, body, *set(cut for cut in cuts if cut < len(body)))
    assert run(provider, chunks) == run(provider, chunks, gated=False)


def test_extra_patterns_turn_the_pre_check_off() -> None:
    for provider in PROVIDERS:
        instance = scanner(provider, extra=("kaput",))
        with mock.patch("time.time", return_value=NOW):
            items = instance.feed("stderr", b"the quota server says: kaput\n") + instance.finish()
        assert any(isinstance(item, LimitSignal) for item in items), provider


def test_ordinary_output_is_skipped_unread() -> None:
    """Ordinary output never reaches line splitting and decoding (what makes the pre-check cheap)."""
    data = b"\r\n".join(line for line in ORDINARY if b"\xc2\xb7" not in line) * 50 + b"\r\n"
    for provider in PROVIDERS:
        instance = scanner(provider)
        with mock.patch("zag.providers.prescan._SPLIT") as split, \
                mock.patch("zag.providers.claude.scanner._SPLIT") as claude_split:
            for stream in ("stdout", "stderr", "pty"):
                assert instance.feed(stream, data) == [], (provider, stream)
        assert not split.split.called and not claude_split.split.called, provider


# --- the first look, without the interpreter lock ---------------------------------------------------
def prescans() -> list[Prescan]:
    from zag.providers.claude import scanner as claude
    from zag.providers.codex import scanner as codex
    from zag.providers.gemini import scanner as gemini
    from zag.providers.goose import scanner as goose

    return [claude._PRESCAN, *codex._PRESCAN.values(), gemini._PRESCAN, goose._PRESCAN]


def any_case(word: bytes) -> st.SearchStrategy[bytes]:
    return st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
        lambda upper: bytes(byte - 0x20 if flip and 0x61 <= byte <= 0x7A else byte for byte, flip in zip(word, upper)))


WORDS = [b"limit", b"extra", b"(429)", b"api_error_status", b"claude", b"-r", b"quota", b"exhausted", b"demand",
         b"--resume", b'"code"', b"429", b"session", b"session id:", b"thread.started", b'"session_id"', b"\\u006c", b"\\U0041"]
CONTROLS = [bytes([byte]) for byte in [*range(0x00, 0x20), 0x7F]]
region_pieces = (st.sampled_from(WORDS).flatmap(any_case)
                 | st.sampled_from(WORDS).map(lambda word: word[:len(word) // 2]).flatmap(any_case)
                 | st.sampled_from(WORDS).map(lambda word: word[len(word) // 2:]).flatmap(any_case)
                 | st.sampled_from(CONTROLS + [b"\x1b[1m", b"\x1b[2C", b"\x1b[3;1H", b"{", b'{"', b"\xc2\xb7",
                                              "\u0131\u017f\u212a\u0130".encode(), b" ", b"\r\n"])
                 | st.sampled_from(ORDINARY) | st.binary(max_size=6))


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(region_pieces, max_size=30), known=st.sampled_from([None, "x", SESSION]))
def test_the_first_look_never_says_no_where_the_pre_check_would_say_yes(parts: list[bytes], known: str | None) -> None:
    region = b"".join(parts)
    for prescan in prescans():
        assert prescan.may_matter(region, known) == prescan._may_matter(region, known), (region, prescan._quick)


def test_plain_output_is_passed_without_the_pre_check_holding_the_interpreter() -> None:
    """Plain output (no control byte, none of the words) is passed by searches that let go of the interpreter
    lock: the pre-check's own passes (lowercasing, stripping) hold it, and the relay's thread waits for it."""
    data = (b"0123456789abcdef" * 4095 + b"0123456789abcd\r\n") * 4 + b"\t  def main() -> None:  # {ok}\r\n"
    for prescan in prescans():
        with mock.patch.object(Prescan, "_may_matter", side_effect=AssertionError("the full pre-check ran")):
            assert not prescan.may_matter(data)
    tail = b"lim\x08it\r\n"  # a control byte: the full pre-check decides
    assert all(prescan.may_matter(data + tail) for prescan in prescans())
