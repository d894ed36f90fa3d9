"""Starting zag's helper threads where the system may refuse one: a container's pids limit, `ulimit -u`
(threads count as processes) or an address-space limit (`ulimit -v`) too small for one more stack.

zag then goes on without what that thread does (each caller says what that means: no heartbeat, no log of
the transcript, output relayed by the main thread...); the agent's session is never ended for it. The user
is told once, on stderr; the details go to zag's diagnostics.
"""

from __future__ import annotations

import os
import threading

_said: list[bool] = []


def start(thread: threading.Thread) -> bool:
    """`thread.start()`; False when the system refused the thread (noted, said once)."""
    try:
        thread.start()
    except RuntimeError as exc:  # "can't start new thread"
        _note(thread.name, exc)
        return False
    return True


def _note(name: str, exc: BaseException) -> None:
    if not _said:
        _said.append(True)
        message = (f"zag: the system refused zag a thread ({exc}: a process or memory limit?); the agent runs "
                   "on, but its session log and index may be incomplete\n")
        try:
            os.write(2, message.encode())
        except OSError:
            pass
    try:
        from zag import diag

        diag.warning("thread_refused", thread=name, error=str(exc))
    except Exception:  # noqa: BLE001 - out of threads, maybe out of memory too: the note is not worth more
        pass
