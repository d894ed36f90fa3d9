"""What zag says when the index cannot be used: `zag reindex` is suggested only when it can help."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.readside import add_session, run_read_only, started_body, write_log
from zag import paths
from zag.cli import cli
from zag.logs.index import Index

GARBAGE = b"this is not an sqlite database" * 100


def _zag(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def _logged_home() -> Path:
    """A ZAG_HOME with one session in the index and its log."""
    with Index() as index:
        session_id = add_session(index)
    write_log(session_id, [started_body()])
    return paths.home()


def _read_only(*args: str):
    done = run_read_only(_logged_home(), *args)
    if done is None:
        pytest.skip("cannot make ZAG_HOME read-only for a child process here")
    return done


@pytest.mark.parametrize("command", [["ps"], ["ps", "--json"], ["sessions"], ["events", "0"]])
def test_a_read_only_home_is_named_and_reindex_is_not_suggested(command: list[str]) -> None:
    done = _read_only(*command)
    assert done.returncode == 1, done.stderr
    assert "not writable" in done.stderr and str(paths.home()) in done.stderr
    assert "`zag reindex`" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_reindex_on_a_read_only_home_says_so_and_does_not_suggest_itself() -> None:
    done = _read_only("reindex")
    assert done.returncode == 1
    assert "not writable" in done.stderr and "`zag reindex`" not in done.stderr, done.stderr
    assert [p.name for p in paths.home().iterdir() if "damaged" in p.name] == []


def test_a_damaged_index_with_logs_suggests_reindex() -> None:
    _logged_home()
    paths.index_db().write_bytes(GARBAGE)
    code, _, err = _zag("ps")
    assert code == 1
    assert "damaged" in err and "`zag reindex` rebuilds it" in err and "Traceback" not in err


def test_a_damaged_index_without_logs_says_reindex_starts_a_new_one() -> None:
    """Nothing to rebuild from, but still something to do: reindex moves the index aside (README: the
    message says what to do)."""
    paths.ensure_private_dir(paths.home())
    paths.index_db().write_bytes(GARBAGE)
    code, _, err = _zag("sessions")
    assert code == 1
    assert "damaged" in err and "no session logs" in err and "rebuilds it" not in err
    assert "`zag reindex` moves it aside and starts a new, empty one" in err
    assert CliRunner().invoke(cli, ["reindex"]).exit_code == 0
    assert _zag("sessions")[0] == 0


@pytest.mark.parametrize("logs", [True, False])
def test_backfill_on_a_damaged_index_says_what_to_do(logs: bool, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """`zag backfill` stopped with the bare SQLite error ('file is not a database'), no hint."""
    for name in ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "GEMINI_CLI_HOME", "GOOSE_PATH_ROOT", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "no-history"))
    if logs:
        _logged_home()
    else:
        paths.ensure_private_dir(paths.home())
    paths.index_db().write_bytes(GARBAGE)
    code, _, err = _zag("backfill")
    assert code == 1 and "Traceback" not in err
    assert "damaged" in err and "what was imported is kept" in err
    assert ("`zag reindex` rebuilds it" if logs else "`zag reindex` moves it aside") in err


def test_an_unopenable_index_is_not_called_damaged() -> None:
    """A folder where the index file should be: reindex can move it aside, so it says so."""
    paths.index_db().mkdir(parents=True)
    code, _, err = _zag("ps")
    assert code == 1 and "not a file" in err and "Traceback" not in err
    result = CliRunner().invoke(cli, ["reindex"])
    assert result.exit_code == 0 and "moved to" in result.stderr


def test_index_trouble_wording() -> None:
    from zag.cli.errors import index_trouble
    from zag.logs.index import is_damaged

    _logged_home()
    damaged = sqlite3.DatabaseError("file is not a database")
    damaged.sqlite_errorcode = 26  # type: ignore[attr-defined]
    assert is_damaged(damaged)
    assert "`zag reindex` rebuilds it" in index_trouble(damaged)
    assert "`zag reindex` rebuilds it" not in index_trouble(damaged, rebuilding=True)
    locked = sqlite3.OperationalError("database is locked")
    locked.sqlite_errorcode = 5  # type: ignore[attr-defined]
    assert not is_damaged(locked)
    assert index_trouble(locked) == f"cannot open the index {paths.index_db()} (database is locked)"
    readonly = sqlite3.OperationalError("attempt to write a readonly database")
    readonly.sqlite_errorcode = 8  # type: ignore[attr-defined]
    message = index_trouble(readonly)
    assert "not writable" in message and "`zag reindex`" not in message


@pytest.mark.parametrize("command", [["ps"], ["sessions"], ["usage", "list"], ["reindex"], ["backfill"]])
def test_a_file_where_zag_home_should_be_is_named_with_what_to_do(command: list[str], tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """It said `cannot access ZAG_HOME: File exists`: neither what is wrong nor what to do."""
    monkeypatch.setenv("HOME", str(tmp_path / "no-history"))
    paths.home().parent.mkdir(parents=True, exist_ok=True)
    paths.home().write_text("not a folder")
    code, _, err = _zag(*command)
    assert code == 1 and "Traceback" not in err
    assert f"{paths.home()} is a file, where zag keeps a folder" in err and "set ZAG_HOME" in err, err
    assert "File exists" not in err


def test_a_file_where_the_sessions_folder_should_be_is_named() -> None:
    paths.ensure_private_dir(paths.home())
    paths.sessions_dir().write_text("not a folder")
    code, _, err = _zag("reindex")
    assert code == 1 and f"{paths.sessions_dir()} is a file, where zag keeps a folder" in err, err
