"""A paginated Codex fork (real 0.169 `exec fork`) copies none of its parent's items: its own turn is logged
as new (not `replayed`), and its usage is its own turn's, not the parent's running total."""

from __future__ import annotations

from pathlib import Path

import pytest

from zag.logs import events
from zag.providers.codex.reader import RolloutReader

FORK = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "codex" / "rollout_exec_fork_paginated.jsonl"


@pytest.mark.parametrize("skip_before", [None, events.parse_ts("2026-12-07T14:18:30.180Z")], ids=["backfill", "live"])
def test_a_paginated_fork_logs_its_own_turn_once_with_its_own_usage(skip_before: float | None) -> None:
    items = [item for item in RolloutReader([FORK], None, skip_before=skip_before).read() if isinstance(item, dict)]
    turn = [item for item in items if item["type"] in (events.USER_MESSAGE, events.ASSISTANT_MESSAGE, events.USAGE)]
    assert [(item["type"], item.get("content")) for item in turn] == [
        (events.USER_MESSAGE, "say more"), (events.ASSISTANT_MESSAGE, "hi from fake upstream"), (events.USAGE, None)]
    assert not any(item.get("replayed") for item in items)
    assert (turn[-1]["input_tokens"], turn[-1]["output_tokens"], turn[-1]["total_tokens"]) == (12, 5, 17)
    meta = next(item for item in items if item.get("message") == "session_meta")
    assert meta["parent_session_id"] == "01a250de-ccff-7f01-ad4b-0294cd44a998"
