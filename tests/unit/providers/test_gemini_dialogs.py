"""gemini TUI keystrokes: Stop in every quota dialog (real screens + the 0.61.0 dialog variants), and a
resume message whose Enter comes in a later write (the TUI ignores an Enter read with the text)."""

from __future__ import annotations

from pathlib import Path

import pytest

from zag.providers import get
from zag.providers.base import KeySequence
from zag.providers.gemini import dialogs
from zag.providers.text import strip_ansi

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "corpus" / "real-cli" / "gemini"


def box(*lines: str) -> str:
    width = 60
    inner = [f"│ {line:<{width - 4}} │" for line in lines]
    return "\n".join(["╭" + "─" * (width - 2) + "╮", *inner, "╰" + "─" * (width - 2) + "╯"]) + "\n"


def test_real_first_dialog_switch_or_stop() -> None:
    screen = (REAL / "screen_G2_tui_first_prompt_429.1_429.screen.txt").read_text()
    assert get("gemini").unblock_keys(screen) == b"2"


def test_real_second_dialog_keep_trying_or_stop() -> None:
    screen = (REAL / "screen_G2_tui_first_prompt_429.2_chose_stop.screen.txt").read_text()
    assert get("gemini").unblock_keys(screen) == b"2"


@pytest.mark.parametrize("name", ["screen_G2_tui_first_prompt_429.0_start.screen.txt",
                                  "screen_G2_tui_first_prompt_429.3_exit.screen.txt",
                                  "screen_G_tui.2_429_13s.screen.txt", "screen_G_tui.4_exit.screen.txt"])
def test_nothing_to_answer(name: str) -> None:
    assert dialogs.unblock_keys((REAL / name).read_text()) is None


@pytest.mark.parametrize("items, key", [
    (["● 1. Keep trying", "  2. Switch to gemini-2.5-flash", "  3. Stop"], b"3"),           # capacity
    (["● 1. Switch to gemini-2.5-flash", "  2. Upgrade for higher limits", "  3. Stop"], b"3"),  # login tier
    (["● 1. Use AI Credits - Continue this request (Overage)", "  2. Manage - View balance and purchase more credits",
      "  3. Switch to gemini-2.5-flash", "  4. Stop - Abort request"], b"4"),                  # overage menu
    (["● 1. Get AI Credits - Open browser to purchase credits", "  2. Stop - Abort request"], b"2"),  # empty wallet
    (["  1. Keep trying", "● 2. Stop"], b"2"),                                                  # already on Stop
])
def test_dialog_variants_choose_stop(items: list[str], key: bytes) -> None:
    screen = "✦ earlier answer\n" + box("Usage limit reached for all Pro models.", "Access resets at 3:45 PM PST.",
                                         "/stats model for usage details", "", *items)
    assert dialogs.unblock_keys(screen) == key


def test_high_demand_dialog() -> None:
    screen = box("We are currently experiencing high demand for gemini-3.1-pro-preview.",
                 "We apologize and appreciate your patience.", "/model to switch models.", "",
                 "● 1. Keep trying", "  2. Switch to gemini-2.5-flash", "  3. Stop")
    assert dialogs.unblock_keys(screen) == b"3"


def test_answered_dialog_followed_by_the_prompt_is_left_alone() -> None:
    screen = box("Usage limit reached for all Pro models.", "● 1. Keep trying", "  2. Stop")
    screen += "✕ [API Error: You have exhausted your daily quota on this model.]\n\n >   Type your message or @path/to/file\n"
    assert dialogs.unblock_keys(screen) is None


def test_dialog_drawn_with_escape_sequences() -> None:
    raw = ("\x1b[2K\x1b[1G\x1b[33m│\x1b[39m Usage limit reached for gemini-2.5-pro.\x1b[5C\x1b[33m│\x1b[39m\r\n"
           "\x1b[2K\x1b[1G│ \x1b[32m● 1. \x1b[39mSwitch to gemini-2.5-flash │\r\n\x1b[2K\x1b[1G│   2. Stop │\r\n")
    assert dialogs.unblock_keys(strip_ansi(raw)) == b"2"


def test_dialog_without_a_stop_item_is_not_answered() -> None:
    assert dialogs.unblock_keys(box("Usage limit reached for all Pro models.", "● 1. Keep trying")) is None


def test_resume_keys_are_text_then_enter_after_a_pause() -> None:
    keys = get("gemini").resume_keys("Continue")
    assert isinstance(keys, KeySequence)
    assert keys.chunks == (b"Continue", b"\r") and bytes(keys) == b"Continue\r"
    assert keys.pause >= 0.15      # measured: 50 ms does not submit, 150 ms does


def test_multiline_resume_message_is_one_paste() -> None:
    keys = dialogs.resume_keys("Continue\r\nwith the plan")
    assert keys.chunks == (b"\x1b[200~Continue\nwith the plan\x1b[201~", b"\r")
