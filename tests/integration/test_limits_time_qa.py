"""QA of usage-limit reset times end to end: `zag run codex` under a `TZ` that is a POSIX rule, not an IANA
name. codex prints its reset in local time as libc (chrono `Local`) reads `TZ`: under `TZ=UTC+5` (five
hours *west* of UTC) the real codex 0.169 said `try again at 2:53 PM` for a reset at 19:53 UTC. zag read
that clock in /etc/localtime's zone and resumed the next day (measured against the e2e fake API: the hit
logged `reset_at` 14:54 UTC the next day, with the rollout's exact `resets_at` in the same incident)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tests.integration import limits_rig as L
from zag.logs.events import parse_ts


def _clock_utc_minus_5(epoch: float) -> str:
    stamp = datetime.fromtimestamp(epoch, timezone(timedelta(hours=-5)))
    return f"{stamp.hour % 12 or 12}:{stamp.minute:02d} {'AM' if stamp.hour < 12 else 'PM'}"


def test_codex_under_a_posix_tz_resumes_at_its_reset(tmp_path: Path, zag_home: Path) -> None:
    rig = L.Rig(tmp_path, zag_home, "codex")
    rig.extra_env["TZ"] = "UTC+5"
    thread = str(uuid.uuid4())
    reset = time.time() + 4
    hit_run = L.codex_headless_hit(rig, thread, reset)
    said = L.codex_limit_message(reset)
    for action in hit_run:  # the message as codex prints it under TZ=UTC+5
        for key in ("out", "lines"):
            if key in action:
                value = action[key]
                fix = lambda text: text.replace(L.local_clock(reset), _clock_utc_minus_5(reset))  # noqa: E731
                action[key] = fix(value) if isinstance(value, str) else [fix(line) for line in value]
    assert said not in str(hit_run) and _clock_utc_minus_5(reset) in str(hit_run)
    rig.script(hit_run, L.codex_headless_resumed(rig, thread))
    proc = rig.start("run", "codex", *L.CODEX_HEADLESS_ARGS)
    try:
        waiting = rig.waiting_row(proc)
        assert waiting["resume_at"] <= reset + 60 + 1, "the resume was scheduled for another day"
        proc.communicate(timeout=L.RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0
    events = rig.log()
    [hit] = L.of_type(events, "usage_limit_hit")
    assert abs(parse_ts(hit["reset_at"]) - reset) < 61
    assert len(L.of_type(events, "usage_limit_resumed")) == 1
