"""Keystrokes for Gemini CLI's TUI after a usage-limit hit (read in the 0.61.0 bundle, checked against
corpus/real-cli/gemini/screen_G2_*).

A quota error opens a radio-button dialog (`ProQuotaDialog`, `OverageMenuDialog`, `EmptyWalletDialog`):

    Usage limit reached for gemini-3.5-flash-lite.        Usage limit reached for all Pro models.
    ● 1. Switch to gemini-3.1-pro-preview-customtools     ● 1. Keep trying
      2. Stop                                               2. Stop

zag always chooses **Stop** (labels `Stop` / `Stop - Abort request`): switching models changes what the
user asked for, and "Keep trying" retries at once against an exhausted quota (the CLI can hot-loop).
Stop ends the turn and leaves the prompt free, so at the reset zag types the resume message. Choosing
Stop may open the next dialog (the router model's failure, then the main model's, as in screen_G2), so
`unblock_keys` is asked again on the new screen.

The list selects by number: a digit picks its item at once when no longer number could follow (≤ 9
items), so the keystroke is the Stop item's number alone — no Enter, which would reach the prompt once
the dialog closes.

Submitting a message: the text and the Enter must arrive in separate reads, some time apart. The input
box handles keys against the text of its last render, so an Enter read together with the text (or a few
ms after it) sees an empty box and does nothing; an Enter within 30 ms of a typed character becomes a
newline anyway (`bufferFastReturn`). Measured on 0.61.0 (idle TUI): one write and a 50 ms pause do not
submit, 150 ms does. `resume_keys` is a `KeySequence` of [text, Enter] with `SUBMIT_PAUSE_SECS` between
(the writer honours it). Multi-line messages are sent as one bracketed paste (a typed newline would be a
key of its own); the TUI also delays Enter by 40 ms after an untrusted paste.
"""

from __future__ import annotations

import re

from zag.providers.base import KeySequence

SUBMIT_PAUSE_SECS = 0.3
ENTER = b"\r"
PASTE_START = b"\x1b[200~"
PASTE_END = b"\x1b[201~"

_DIALOG_HEAD = re.compile(r"Usage limit reached for|We are currently experiencing high demand")
_OPTION = re.compile(r"^[\s│┃║|]*(?P<selected>●)?\s*(?P<number>\d)\.\s+(?P<label>.+?)\s*[│┃║|]?\s*$")
_PROMPT = re.compile(r"Type your message|^\s*>\s{2,}\S", re.MULTILINE)


def unblock_keys(screen: str) -> bytes | None:
    """The Stop item's number when the last thing on screen is a quota dialog; None otherwise."""
    head = None
    for head in _DIALOG_HEAD.finditer(screen):
        pass
    if head is None:
        return None
    after = screen[head.end():]
    options = []
    for line in after.splitlines():
        match = _OPTION.match(line)
        if match:
            options.append(match)
        elif options and line.strip(" │┃║|"):
            break   # the option list ended
    if not options:
        return None
    rest = after[after.find(options[-1].group(0)) + len(options[-1].group(0)):]
    if _PROMPT.search(rest):
        return None   # the dialog was answered: the prompt is back below it
    for option in options:
        if option["label"].strip().lower().startswith("stop"):
            return option["number"].encode()
    return None


def resume_keys(message: str) -> KeySequence:
    """Keystrokes that type `message` at the prompt and submit it (see the module docstring)."""
    text = message.replace("\r\n", "\n").replace("\r", "\n")
    body = text.encode("utf-8")
    if "\n" in text:
        body = PASTE_START + body + PASTE_END
    return KeySequence([body, ENTER], pause=SUBMIT_PAUSE_SECS)
