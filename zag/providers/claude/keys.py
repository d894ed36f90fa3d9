"""Keystrokes for claude's TUI (PTY runs): clearing the rate-limit dialog, submitting a message.

After a subscription (OAuth) limit hit, claude 2.1.x opens `/rate-limit-options` by itself:

    What do you want to do?
    ❯ 1. Stop and wait for limit to reset
      2. Upgrade your plan
    Enter to confirm · Esc to cancel

It swallows keystrokes until answered. "Stop and wait" is preselected; Enter picks it and gives the
prompt back (verified with 2.1.197 through a PTY and in corpus/real-cli/claude/screen_G2_*). If the
selection marker sits on another option, zag moves up/down to "Stop and wait" first. API-key limits open
no dialog.

Submitting: claude reads input that arrives in one chunk as typing only when it is short; a longer chunk
becomes a paste, and an Enter inside that chunk is taken into the paste instead of submitting (measured
with 2.1.197 through a PTY: "text\r" in one write submits at 32 characters, not at 64; a bracketed paste
with "\r" in the same write does not submit; paste, 150 ms, "\r" does). So the message goes as a
bracketed paste (newlines kept, nothing interpreted), then Enter in a separate write after a short pause
(`KeySequence`); a short single-line message is typed as is (joined into one write it still submits).
"""

from __future__ import annotations

import re

from zag.providers.base import KeySequence

DIALOG_TITLE = "What do you want to do?"
STOP_AND_WAIT = "Stop and wait for limit to reset"
PROMPT_FOOTER = "for shortcuts"   # the prompt box's footer: when it follows the dialog, the dialog is gone
UP, DOWN, ENTER = b"\x1b[A", b"\x1b[B", b"\r"
PASTE_START, PASTE_END = b"\x1b[200~", b"\x1b[201~"
TYPED_MAX = 32
PAUSE_SECS = 0.25
_OPTION = re.compile(r"^[\s\u00a0]*(?P<marker>[❯›>▶]?)[\s\u00a0]*(?P<number>\d+)\.\s*(?P<label>.+?)\s*$")


def unblock_keys(screen: str) -> bytes | None:
    """Keys that answer the rate-limit dialog with "Stop and wait", if it is what the screen shows last."""
    stop_at = screen.rfind(STOP_AND_WAIT)
    if stop_at < 0:
        return None
    title_at = screen.rfind(DIALOG_TITLE, 0, stop_at)
    if title_at < 0 or PROMPT_FOOTER in screen[stop_at:]:
        return None
    selected = target = None
    for line in screen[title_at:].splitlines():
        match = _OPTION.match(line)
        if match is None:
            continue
        number = int(match.group("number"))
        if match.group("marker"):
            selected = number
        if STOP_AND_WAIT in match.group("label"):
            target = number
    if target is None or selected is None or selected == target:
        return ENTER
    move = UP if selected > target else DOWN
    return move * abs(selected - target) + ENTER


def resume_keys(message: str) -> bytes:
    """The keys that submit `message` at claude's prompt."""
    text = message.encode("utf-8")
    if "\n" not in message and "\r" not in message and len(message) <= TYPED_MAX:
        return KeySequence([text, ENTER], PAUSE_SECS)
    return KeySequence([PASTE_START + text + PASTE_END, ENTER], PAUSE_SECS)
