"""Claude TUI keystrokes: answering the rate-limit dialog, submitting the resume message."""

from __future__ import annotations

from pathlib import Path

import pytest

from zag.providers.base import KeySequence
from zag.providers.claude import PROVIDER
from zag.providers.text import ScreenTail

REPO = Path(__file__).resolve().parents[3]
REAL = REPO / "tests" / "fixtures" / "corpus" / "real-cli" / "claude"
OWN = REPO / "tests" / "fixtures" / "claude"


def screen_of(raw: bytes) -> str:
    tail = ScreenTail()
    for start in range(0, len(raw), 512):
        tail.feed(raw[start:start + 512])
    return tail.text


def test_dialog_on_the_real_screen_is_answered_with_enter() -> None:
    assert PROVIDER.unblock_keys((REAL / "screen_G2_tui_oauth.2_429.screen.txt").read_text()) == b"\r"


@pytest.mark.parametrize("name", ["screen_G2_tui_oauth.2b_menu_enter.screen.txt",
                                  "screen_G2_tui_oauth.1_hi.screen.txt", "screen_G_tui_apikey.2_429.screen.txt",
                                  "screen_G2_tui_oauth.3_usage_text.screen.txt"])
def test_nothing_to_answer(name: str) -> None:
    assert PROVIDER.unblock_keys((REAL / name).read_text()) is None


def test_raw_pty_output_with_the_dialog_open() -> None:
    assert PROVIDER.unblock_keys(screen_of((OWN / "pty_oauth_limit_dialog_open.bin").read_bytes())) == b"\r"


def test_raw_pty_output_after_the_dialog_closed() -> None:
    assert PROVIDER.unblock_keys(screen_of((OWN / "pty_oauth_limit_dialog.bin").read_bytes())) is None


def test_selection_moved_to_another_option_goes_back_up() -> None:
    screen = ("What do you want to do?\n    1. Stop and wait for limit to reset\n  ❯ 2. Upgrade your plan\n"
              "  Enter to confirm · Esc to cancel\n")
    assert PROVIDER.unblock_keys(screen) == b"\x1b[A\r"
    reordered = ("What do you want to do?\n  ❯ 1. Switch to extra usage\n    2. Upgrade your plan\n"
                 "    3. Stop and wait for limit to reset\n  Enter to confirm · Esc to cancel\n")
    assert PROVIDER.unblock_keys(reordered) == b"\x1b[B\x1b[B\r"


def test_short_message_is_typed_then_enter() -> None:
    keys = PROVIDER.resume_keys("Continue")
    assert isinstance(keys, KeySequence) and keys == b"Continue\r"
    assert keys.chunks == (b"Continue", b"\r") and keys.pause > 0


@pytest.mark.parametrize("message", ["Please continue where you stopped, the limit has reset now.", "line 1\nline 2",
                                     "naïve café ✓ " * 4])
def test_long_or_multiline_message_is_pasted_then_enter_separately(message: str) -> None:
    keys = PROVIDER.resume_keys(message)
    assert keys.chunks == (b"\x1b[200~" + message.encode() + b"\x1b[201~", b"\r")
    assert bytes(keys) == b"".join(keys.chunks)
