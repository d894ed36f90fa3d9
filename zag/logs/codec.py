"""Fast JSON encoding/decoding shared by everything that reads or writes JSONL.

msgspec is used instead of the stdlib `json` because backfill parses gigabytes of transcripts: it is
~3x faster, can decode into typed structs that skip unneeded fields, and keeps sub-documents raw.
"""

from __future__ import annotations

from typing import Any

import msgspec

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class _Typed(msgspec.Struct):
    seq: Any = None
    type: Any = None


_type_decoder = msgspec.json.Decoder(_Typed)

DecodeError = msgspec.DecodeError


def dumps(obj: Any) -> bytes:
    """Encode to compact JSON bytes (no trailing newline)."""
    return _encoder.encode(obj)


def loads(data: bytes | str) -> Any:
    """Decode JSON; raises `DecodeError` (a ValueError) on bad input, nesting too deep included (msgspec
    raises RecursionError there: a reader of a log would die on that line instead of skipping it)."""
    try:
        return _decoder.decode(data)
    except RecursionError:
        raise DecodeError("JSON nested too deeply") from None


def loads_type(data: bytes) -> Any:
    """The `type` member of a JSON object (None when it has none), without building the rest of it: what a
    reader that passes lines on unchanged (`zag events --json`) or filters them by type needs. Raises
    `DecodeError` where `loads` would, and for JSON that is not an object."""
    return _head(data).type


def loads_head(data: bytes) -> dict[str, Any]:
    """`{"seq": …, "type": …}` of a JSON object (None where it has none), read as `loads_type` reads."""
    head = _head(data)
    return {"seq": head.seq, "type": head.type}


def _head(data: bytes) -> _Typed:
    try:
        head = _type_decoder.decode(data)
        if not data.isascii():  # what is skipped is not checked for UTF-8, as `loads` checks it
            data.decode("utf-8")
    except RecursionError:
        raise DecodeError("JSON nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise DecodeError(f"invalid UTF-8: {exc}") from None
    return head


def dumps_lossless(obj: Any) -> bytes:
    """`dumps`, except that a string that is not UTF-8 (lone surrogates: a file named in another
    encoding) is written as `\\udcff` escapes, which `json.loads` turns back into the same string (for
    what must name a file again, e.g. a reader's cursor), instead of raising UnicodeEncodeError."""
    try:
        return _encoder.encode(obj)
    except UnicodeEncodeError:
        import json

        return json.dumps(obj, separators=(",", ":")).encode()


def dumps_line(obj: Any) -> bytes:
    """Encode as one JSONL line, newline included."""
    buf = bytearray()
    _encoder.encode_into(obj, buf)
    buf += b"\n"
    return bytes(buf)


def dumps_lines(objs: list[Any]) -> bytes:
    """Encode several objects as JSONL (one line each, newline included), in one call."""
    return _encoder.encode_lines(objs)


def printable(value: Any) -> Any:
    """`value` with every string made encodable as UTF-8: bytes that are not UTF-8 (a folder or argument
    named in another encoding, which Python holds as lone surrogates) become `\\xff` text, other lone
    surrogates `\\udc80`. Dicts and lists are copied; other values are returned as they are."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            try:
                return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            except UnicodeEncodeError:
                return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {printable(key): printable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [printable(item) for item in value]
    return value
