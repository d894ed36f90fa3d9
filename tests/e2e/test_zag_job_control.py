"""Job control with the real TUIs under zag, in a bash with job control (`set -m`): Ctrl-Z suspends the TUI and
zag with it (the shell goes on, in cooked mode), `fg` brings the TUI back and it takes keys again. (codex
0.169 and gemini 0.61 take Ctrl-Z as a key, with or without zag: nothing to test there.)

claude's TUI (Ink) suspends itself on Ctrl-Z: cooked modes back, then SIGTSTP to its own process group,
which the kernel drops in the orphaned group of an agent leading its own PTY session; zag has to notice.
"""

from __future__ import annotations

import shlex
from typing import Callable

import pytest

from .clis import CliEnv

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
MakeEnv = Callable[..., CliEnv]


def test_ctrl_z_suspends_claude_under_zag_and_fg_resumes_it(cli_env: MakeEnv) -> None:
    env = cli_env("claude")
    zag = " ".join(shlex.quote(part) for part in env.zag_argv("run", "claude"))
    script = (f"set -m; {zag}; echo stopped=$?; stty -a | grep -o -- '-\\?icanon' | head -1 | sed 's/^/modes:/';"
              " fg; echo zag-exit=$?; sleep 5")
    tui = env.spawn(argv=["/bin/bash", "--norc", "--noprofile", "-c", script])
    tui.wait_for("? for shortcuts", timeout=60)
    tui.send("\x1a")
    tui.wait_for("stopped=148", timeout=15)  # 128 + SIGTSTP: zag stopped, the shell runs on
    tui.wait_for("modes:icanon")
    tui.wait_for("? for shortcuts", timeout=30)  # `fg`: claude redraws
    tui.type_line("/exit")
    tui.wait_for("zag-exit=0", timeout=30)
