"""Keystrokes for the Codex TUI (interactive runs).

After a usage-limit hit (and when usage nears a limit) the TUI opens "Approaching rate limits / Switch to
<cheaper model>? › 1. Switch to … 2. Keep current model 3. Keep current model (never show again)". It
swallows keystrokes: a resume message typed into it is lost and Enter switches the model (seen with codex
0.169, corpus `screen_G_tui.2_429`). zag keeps the current model: Down (as many as needed from the
highlighted `›` row to "2. Keep current model"), then Enter (`screen_G_tui.2b_popup_dismissed`).

Submitting a message: text typed in one burst followed by Enter is taken as a paste by the TUI's
paste-burst detection and the Enter becomes a newline (verified on 0.169: `Continue\\r` in one write
leaves `Continue` unsent in the composer). A bracketed paste (`ESC[200~ … ESC[201~`) followed by `\\r`
in the same write is submitted at once (verified on 0.169), so that is what `resume_keys` sends.
"""

from __future__ import annotations

import re

DOWN = b"\x1b[B"
UP = b"\x1b[A"
ENTER = b"\r"
PASTE_START = b"\x1b[200~"
PASTE_END = b"\x1b[201~"

_KEEP = re.compile(r"(\d)\.\s*Keep current model(?!\s*\(never)", re.IGNORECASE)
_SELECTED = re.compile(r"›\s*(\d)\.\s")
# What the TUI shows once the popup is gone again (its footer and composer).
_CLOSED_MARKERS = ("for shortcuts", "Ask Codex to do anything", "esc to interrupt")


def unblock_keys(screen: str) -> bytes | None:
    """Down…Enter onto "Keep current model" while the model-switch popup is open; None otherwise."""
    keep = None
    for keep in _KEEP.finditer(screen):
        pass
    if keep is None:
        return None
    after = screen[keep.end():]
    if any(marker in after for marker in _CLOSED_MARKERS):
        return None
    popup_start = screen.rfind("Approaching rate limits", 0, keep.start())
    region = screen[popup_start if popup_start >= 0 else max(0, keep.start() - 2000): keep.end() + 400]
    target = int(keep.group(1))
    selected_match = None
    for selected_match in _SELECTED.finditer(region):
        pass
    selected = int(selected_match.group(1)) if selected_match else 1
    steps = target - selected
    return (DOWN * steps if steps >= 0 else UP * -steps) + ENTER


def resume_keys(message: str) -> bytes:
    """The message as one bracketed paste, then Enter."""
    text = message.replace("\x1b", "").replace("\r\n", "\n")
    return PASTE_START + text.encode("utf-8") + PASTE_END + ENTER
