"""`zag reindex` of a copied ZAG_HOME (`cp -r`: the umask's modes) leaves `sessions/` 0700 and its logs 0600,
as a command that writes them would; never through a symlink."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.readside import started_body, write_log
from zag.cli import cli
from zag.logs import events
from zag.logs.ids import new_session_id


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_reindex_tightens_a_copied_homes_sessions_folder_and_logs(zag_home: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [new_session_id() for _ in range(3)]
    for session_id in ids:
        write_log(session_id, [{"type": events.SESSION_STARTED, **started_body()}])
    copy = tmp_path / "copied-home"
    shutil.copytree(zag_home, copy)
    sessions = copy / "sessions"
    os.chmod(sessions, 0o755)                                  # what `cp -r` makes under umask 022
    os.chmod(sessions / f"{ids[0]}.jsonl", 0o644)
    os.chmod(sessions / f"{ids[1]}.jsonl", 0o444)              # read-only: stays read-only, for us alone
    outside = tmp_path / "kept-elsewhere.jsonl"               # a log the user keeps elsewhere, linked in
    (sessions / f"{ids[2]}.jsonl").rename(outside)
    os.chmod(outside, 0o644)
    (sessions / f"{ids[2]}.jsonl").symlink_to(outside)
    monkeypatch.setenv("ZAG_HOME", str(copy))

    result = CliRunner().invoke(cli, ["reindex", "--json"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sessions"] == 3
    assert _mode(sessions) == 0o700
    assert (_mode(sessions / f"{ids[0]}.jsonl"), _mode(sessions / f"{ids[1]}.jsonl")) == (0o600, 0o400)
    assert _mode(outside) == 0o644   # not chmodded through the symlink


def test_reindex_without_a_sessions_folder_makes_none(zag_home: Path) -> None:
    zag_home.mkdir(mode=0o700)
    result = CliRunner().invoke(cli, ["reindex", "--json"])
    assert result.exit_code == 0, result.output
    assert not (zag_home / "sessions").exists()
