"""The screen buffer (`zag.wrapper.screen.Screen`): what the usage-limit engine reads dialogs from."""

from __future__ import annotations

import pytest

from zag.wrapper.screen import Screen

KEEP = 64


@pytest.mark.parametrize("sizes", [[10] * 20, [KEEP * 3], [5, KEEP * 2, 7], [KEEP - 1, KEEP, KEEP + 1, 3]])
def test_the_last_bytes_shown_are_kept_whatever_the_chunk_sizes(sizes: list[int]) -> None:
    screen = Screen(keep=KEEP)
    shown = bytearray()
    for number, size in enumerate(sizes):
        chunk = bytes((ord("a") + (number + offset) % 26) for offset in range(size))
        screen.feed(chunk)
        shown += chunk
    assert screen.text() == shown[-KEEP:].decode()
    assert screen.mark() == len(shown)


def test_text_is_the_screen_without_escape_sequences() -> None:
    screen = Screen(keep=KEEP)
    screen.feed(b"\x1b[1mStop and wait\x1b[0m for limit")
    assert screen.text() == "Stop and wait for limit"
    screen.reset()
    assert screen.text() == "" and screen.mark() == 0
