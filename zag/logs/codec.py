"""Fast JSON encoding/decoding shared by everything that reads or writes JSONL.

msgspec is used instead of the stdlib `json` because backfill parses gigabytes of transcripts: it is
~3x faster, can decode into typed structs that skip unneeded fields, and keeps sub-documents raw.
"""

from __future__ import annotations

from typing import Any

import msgspec

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()

DecodeError = msgspec.DecodeError


def dumps(obj: Any) -> bytes:
    """Encode to compact JSON bytes (no trailing newline)."""
    return _encoder.encode(obj)


def loads(data: bytes | str) -> Any:
    """Decode JSON; raises `DecodeError` (a ValueError) on bad input."""
    return _decoder.decode(data)


def dumps_line(obj: Any) -> bytes:
    """Encode as one JSONL line, newline included."""
    buf = bytearray()
    _encoder.encode_into(obj, buf)
    buf += b"\n"
    return bytes(buf)


def dumps_lines(objs: list[Any]) -> bytes:
    """Encode several objects as JSONL (one line each, newline included), in one call."""
    return _encoder.encode_lines(objs)
