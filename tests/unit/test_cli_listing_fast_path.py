"""`zag ps [--all] --json` and `zag sessions --json` skip click (`zag.cli.listing`): the same JSON as the
click commands, without importing click; anything else, and a failure before any output, is click's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.readside import add_session, gone_pid, live_supervisor
from zag import paths, states
from zag.cli import cli
from zag.cli.listing import parse_listing
from zag.logs.index import Index


def _zag(*args: str) -> subprocess.CompletedProcess[str]:
    code = ("import sys; from zag.cli import main\n"
            "try:\n    main(sys.argv[1:])\n"
            "except SystemExit as exit:\n    print('click' in sys.modules, exit.code, file=sys.stderr)\n")
    return subprocess.run([sys.executable, "-c", code, *args], env=dict(os.environ), capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def fleet() -> None:
    with Index() as index:
        add_session(index, state=states.RUNNING, exit_code=None, **live_supervisor(600))
        add_session(index, state=states.RUNNING, exit_code=None,
                    **{**live_supervisor(), "supervisor_pid": gone_pid()})   # shown dead
        add_session(index)                                                     # exited


@pytest.mark.parametrize("args", [["ps", "--json"], ["ps", "--all", "--json"], ["ps", "--json", "--all"],
                                  ["sessions", "--json"]])
def test_the_same_json_as_click_without_click(fleet: None, args: list[str]) -> None:
    fast = _zag(*args)
    assert fast.stderr == "False 0\n"
    assert fast.stdout == CliRunner().invoke(cli, args).stdout
    assert fast.stdout.count('"session_id"') == (2 if args == ["ps", "--json"] else 3)
    assert '"state":"dead"' in fast.stdout


@pytest.mark.parametrize("args", [["ps"], ["ps", "--all"], ["sessions", "--json", "--limit", "1"],
                                  ["sessions", "--provider", "claude", "--json"], ["ps", "--json", "-h"], []])
def test_anything_else_is_left_to_click(args: list[str]) -> None:
    assert parse_listing(args) is None


def test_an_unreadable_index_is_reported_by_click(tmp_path: Path) -> None:
    Path(paths.index_db()).parent.mkdir(parents=True, exist_ok=True)
    Path(paths.index_db()).write_bytes(b"not a database" * 100)
    result = _zag("ps", "--json")
    assert result.stdout == "" and "is damaged" in result.stderr and "True 1" in result.stderr
