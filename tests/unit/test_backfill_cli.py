"""`zag backfill` through click (in-process), with the test provider standing in for the real ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import zag.providers
from zag.cli import cli

from test_backfill_provider import JsonlTestProvider, conversation, write_lines

SUMMARY_KEYS = {"provider", "sessions_seen", "imported", "updated", "unchanged", "live", "events", "warnings",
                "bytes", "seconds", "warning_messages", "not_written", "failed", "unlisted"}


@pytest.fixture
def agent_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "agent-home"
    root.mkdir()
    monkeypatch.setenv("TESTPROV_ROOT", str(root))
    monkeypatch.setattr(zag.providers, "all_providers", lambda: [JsonlTestProvider()])
    return root


def invoke(*args: str):
    return CliRunner().invoke(cli, ["backfill", *args], catch_exceptions=False)


def test_json_summary_has_one_entry_per_provider(agent_root: Path) -> None:
    write_lines(agent_root / "alpha.jsonl", [*conversation(4), "{broken"])
    write_lines(agent_root / "beta.jsonl", conversation(2))

    result = invoke("--json")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    [summary] = document["providers"]
    assert set(summary) == SUMMARY_KEYS
    assert summary["provider"] == "testprov"
    assert (summary["sessions_seen"], summary["imported"], summary["updated"], summary["unchanged"]) == (2, 2, 0, 0)
    assert summary["events"] == 5 + 1 + 2 + 1
    assert summary["warnings"] == 1
    assert summary["bytes"] > 0 and summary["seconds"] >= 0
    assert result.stderr == ""   # not a terminal: no progress bar

    again = json.loads(invoke("--json").stdout)["providers"][0]
    assert (again["imported"], again["updated"], again["unchanged"], again["events"]) == (0, 0, 2, 0)


def test_text_summary_lists_warnings_and_exits_one_when_a_session_was_not_imported(agent_root: Path) -> None:
    write_lines(agent_root / "alpha.jsonl", [*conversation(2), {"explode": True}])
    write_lines(agent_root / "beta.jsonl", conversation(2))

    result = invoke()

    assert result.exit_code == 1   # alpha was not imported: a cron job must hear of it
    assert "testprov: 2 sessions seen, 1 imported, 0 updated, 0 unchanged" in result.stdout
    assert "1 warnings" in result.stdout
    assert "warning: alpha: ReaderExploded" in result.stdout
    assert result.stderr.startswith("zag: 1 sessions could not be imported (see the warnings")


def test_warnings_about_records_of_imported_sessions_exit_zero(agent_root: Path) -> None:
    write_lines(agent_root / "alpha.jsonl", [*conversation(2), "{broken"])

    result = invoke()

    assert result.exit_code == 0
    assert "1 imported" in result.stdout and "1 warnings" in result.stdout
    assert result.stderr == ""


def test_unknown_provider_exits_2(agent_root: Path) -> None:
    result = invoke("--provider", "nope")
    assert result.exit_code == 2
    assert "nope" in result.stderr


def test_skeleton_provider_is_a_warning_not_a_crash(agent_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Skeleton:
        name = "claude"

        def discover(self, env):
            raise NotImplementedError("claude provider: discover is not implemented yet")

    monkeypatch.setattr(zag.providers, "get", lambda name: Skeleton())
    result = invoke("--provider", "claude", "--json")
    assert result.exit_code == 1   # its sessions were not seen
    [summary] = json.loads(result.stdout)["providers"]
    assert summary["provider"] == "claude" and summary["warnings"] == 1 and summary["unlisted"] == 1
    assert "not implemented" in summary["warning_messages"][0]


def test_an_unusable_index_is_a_clean_error(agent_root: Path, zag_home: Path) -> None:
    write_lines(agent_root / "alpha.jsonl", conversation(2))
    zag_home.mkdir(parents=True, exist_ok=True)
    (zag_home / "index.sqlite").write_bytes(b"this is not a database" * 100)
    result = invoke("--json")
    assert result.exit_code == 1
    assert result.stderr.startswith("zag: backfill stopped:")
    assert "Traceback" not in result.output
