"""Where every usage-limit signal of a session goes.

The output scanner (relay thread) and the live session reader (poll thread) both report `LimitSignal`s
here. Deciding what a signal means (an incident, waiting for the reset, resuming the agent) is the
usage-limit engine's job; it plugs in through the two methods below, which the supervisor calls at the
right moments: `observe` for every signal as it is seen, and `next_launch` after each child has exited,
where a returned plan makes the supervisor launch the agent again in the same session.
Until that engine exists, signals are recorded (kept in memory and in zag's diagnostics) and no relaunch
is planned.
"""

from __future__ import annotations

import threading
from dataclasses import asdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zag.config import LimitSettings
    from zag.providers.base import LaunchPlan, LimitSignal
    from zag.wrapper.child import ExitStatus
    from zag.wrapper.supervisor import Supervisor


class LimitHandler:
    """Collects the limit signals of one session; thread-safe.

    `supervisor` gives the engine what it acts through: `send_to_agent` (type into the PTY),
    `registry` (the index row: state `waiting`, `resume_at`), `writer` (the session log), `run_child`
    is driven by the supervisor itself when `next_launch` returns a plan.
    """

    def __init__(self, supervisor: Supervisor, settings: LimitSettings | None) -> None:
        self.supervisor = supervisor
        self.session_id = supervisor.session_id
        self.provider_name = supervisor.request.provider_name
        self.settings = settings
        self.signals: list[LimitSignal] = []
        self._lock = threading.Lock()

    def observe(self, signal: LimitSignal) -> None:
        with self._lock:
            self.signals.append(signal)
        from zag import diag

        diag.info("usage_limit_signal", session_id=self.session_id, **_describe(signal))

    def next_launch(self, status: ExitStatus) -> LaunchPlan | None:
        """After a child exited: the plan to run the agent again in this session, or None to end it."""
        return None


def _describe(signal: LimitSignal) -> dict[str, object]:
    fields = asdict(signal)
    fields["raw"] = str(fields.get("raw", ""))[:2000]
    return fields
