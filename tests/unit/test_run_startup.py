"""What `zag run` does to start and end sooner must not change what it does: the session id is still a
random UUID; `leave` ends the process with the code, after atexit callbacks and with stdio flushed (and
leaves the exit to the interpreter while a non-daemon thread runs); the registry's final row is committed
before `close` returns, though its connection stays open."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from zag.logs.index import Index
from zag.wrapper.registry import Registry
from zag.wrapper.supervisor import new_session_id


def test_session_ids_are_random_version_4_uuids() -> None:
    ids = {new_session_id() for _ in range(2000)}
    assert len(ids) == 2000
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)


def _python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)


def test_leave_runs_atexit_flushes_stdio_and_exits_with_the_code(tmp_path: Path) -> None:
    result = _python("""
        import atexit, sys
        from zag.cli.runner import leave
        atexit.register(lambda: open("atexit-ran", "w").close())
        sys.stdout.write("buffered, not yet written")
        leave(7)
        print("not reached")
    """, tmp_path)
    assert (result.returncode, result.stdout) == (7, "buffered, not yet written")
    assert (tmp_path / "atexit-ran").exists()


def test_leave_lets_a_running_non_daemon_thread_finish(tmp_path: Path) -> None:
    result = _python("""
        import sys, threading, time
        from zag.cli.runner import leave
        worker = threading.Thread(target=lambda: (time.sleep(0.2), open("worker-done", "w").close()))
        worker.start()
        leave(7)
        print("returned")
        sys.exit(5)
    """, tmp_path)
    assert (result.returncode, result.stdout) == (5, "returned\n")
    assert (tmp_path / "worker-done").exists()


def test_the_registry_commits_everything_before_close_returns(zag_home: Path) -> None:
    session_id = new_session_id()
    now = time.time()
    registry = Registry(session_id, {"provider": "claude", "state": "running", "started_at": now})
    registry.update(state="exited", exit_code=3, last_seq=9)
    assert registry.close()
    with Index(zag_home / "index.sqlite") as index:  # another connection sees the final row
        row = index.get_session(session_id)
    assert row is not None and (row["state"], row["exit_code"], row["last_seq"]) == ("exited", 3, 9)


def test_ctrl_c_while_a_provider_module_loads_is_130_not_an_internal_error(
        monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    # Ctrl-C inside a class body (dataclass fields) reaches zag as RuntimeError("Error calling
    # __set_name__ ...") caused by the KeyboardInterrupt: seen sending SIGINT ~65 ms after the start
    from zag.cli import runner

    def interrupted(*args: object) -> int:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise RuntimeError("Error calling __set_name__ on 'Field' instance 'values' in 'Option'") from exc

    monkeypatch.setattr(runner, "_run_agent", interrupted)
    assert runner.run_agent("claude", []) == 130
    assert "internal error" not in capfd.readouterr().err


def test_an_internal_error_is_one_line_even_when_its_diagnostics_cannot_be_written(
        monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    # ulimit -n 10: the import of zag.diag in the handler failed with EMFILE too, and zag showed a traceback
    import sys

    from zag.cli import runner

    def failing(*args: object) -> int:
        raise OSError(24, "Too many open files", "/work/zag/wrapper/liveness.py")

    monkeypatch.setattr(runner, "_run_agent", failing)
    monkeypatch.setitem(sys.modules, "zag.diag", None)  # importing it raises
    monkeypatch.delattr(sys.modules["zag"], "diag", raising=False)
    assert runner.run_agent("claude", []) == 70
    assert capfd.readouterr().err == ("zag: internal error: OSError: [Errno 24] Too many open files: "
                                      "'/work/zag/wrapper/liveness.py'\n")


def test_ctrl_c_while_zag_imports_click_is_130_without_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    # SIGINT 55-90 ms after `zag resume ...` started landed in click's import: a KeyboardInterrupt traceback
    from zag import cli
    from zag.cli import listing

    def interrupted(args: list[str]) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(listing, "parse_listing", interrupted)
    try:
        cli.main(["resume", "abc"])
        code: object = None
    except SystemExit as leaving:
        code = leaving.code
    except KeyboardInterrupt:  # what Python shows as a traceback
        code = "KeyboardInterrupt"
    assert code == 130
