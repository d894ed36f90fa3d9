"""Overnight batches: many `zag run`s of mixed agents supervised at once in one ZAG_HOME (usage limits hit
together, dead supervisors, commands run meanwhile). Each run here is a stand-in agent (limits_rig)."""

from __future__ import annotations

from pathlib import Path

from tests.integration import limits_rig as L
from tests.integration.helpers import assert_valid_log, read_jsonl


def test_gooses_with_their_own_data_roots_are_each_followed(tmp_path: Path, zag_home: Path) -> None:
    """Two gooses, each with its own GOOSE_PATH_ROOT, both create session `20261207_1` (goose numbers its
    sessions per database). The second supervisor's search refused its own row: the first had claimed
    that bare id, so the second never followed its agent and missed its usage limit (exit 0, no resume)."""
    rigs = [L.Rig(tmp_path / f"goose-{n}", zag_home, "goose") for n in range(2)]
    for rig in rigs:
        rig.script(L.goose_headless_hit(rig), L.goose_headless_resumed(rig))
    procs = [rig.start("run", "goose", *L.GOOSE_HEADLESS_ARGS) for rig in rigs]
    for proc in procs:
        _, err = proc.communicate(timeout=L.RUN_TIMEOUT)
        assert proc.returncode == 0, err.decode()
    assert [len(rig.invocations()) for rig in rigs] == [2, 2]
    for path in rigs[0].agent.session_log_paths():
        events = read_jsonl(path)
        assert_valid_log(events)
        assert len(L.of_type(events, "usage_limit_hit")) == 1
        assert len(L.of_type(events, "usage_limit_resumed")) == 1
        assert events[-1]["provider_session_id"] == L.GOOSE_SID
