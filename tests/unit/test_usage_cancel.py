"""`zag usage cancel` refusals and `zag resume`'s refusal of a session still supervised: what they say and
their exit codes (2: the user's own usage error, as for a bad session id; 1 is for an unreadable index)."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from tests.readside import add_session, live_supervisor
from zag import states
from zag.cli import cli
from zag.logs.index import Index

INCIDENT = "abcdef01-0000-4000-8000-000000000000"


def _zag(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def _incident(status: str) -> str:
    with Index() as index:
        session = add_session(index, state=states.EXITED)
        index.add_resume(incident_id=INCIDENT, session_id=session, provider="claude", scope="session",
                         reset_at=time.time() + 50, resume_at=time.time() + 60, status=status, raw="x")
    return session


@pytest.mark.parametrize("text", ["zz", "not an id", ""])
def test_a_malformed_incident_id_points_to_usage_list(text: str) -> None:
    code, _, err = _zag("usage", "cancel", text)
    assert code == 2
    assert f"{text!r} is not an incident id" in err and "`zag usage list`" in err
    assert "session id" not in err and "zag sessions" not in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("status", "why"), [
    (states.RESUME_CANCELLED, "already cancelled"),
    (states.RESUME_DONE, "already done"),
    (states.RESUME_FAILED, "already failed"),
])
def test_a_resume_no_longer_scheduled_is_a_usage_error(status: str, why: str) -> None:
    _incident(status)
    code, out, err = _zag("usage", "cancel", INCIDENT[:6])
    assert code == 2 and out == ""
    assert f"incident {INCIDENT[:8]} is not scheduled any more" in err and why in err
    assert "nothing to cancel" in err and "`zag usage list`" in err
    with Index() as index:
        assert (index.get_resume(INCIDENT) or {})["status"] == status  # untouched


def test_a_scheduled_resume_is_cancelled() -> None:
    session = _incident(states.RESUME_PENDING)
    code, out, err = _zag("usage", "cancel", INCIDENT[:6])
    assert code == 0, err
    assert f"cancelled the resume of session {session[:8]}" in out
    with Index() as index:
        assert (index.get_resume(INCIDENT) or {})["status"] == states.RESUME_CANCELLED


def test_resume_of_a_supervised_session_mentions_a_scheduled_resume_only_if_there_is_one(tmp_path) -> None:
    with Index() as index:
        running = add_session(index, state=states.RUNNING, exit_code=None, provider_session_id="p-1",
                              cwd=str(tmp_path), **live_supervisor(heartbeat_secs=600))
        waiting = add_session(index, state=states.WAITING, exit_code=None, provider_session_id="p-2",
                              cwd=str(tmp_path), resume_at=time.time() + 600, **live_supervisor(heartbeat_secs=600))
        index.add_resume(incident_id=INCIDENT, session_id=waiting, provider="claude", scope="session",
                         reset_at=None, resume_at=time.time() + 600, raw="x")
    code, _, err = _zag("resume", running[:8])
    assert code == 2 and "still supervised by zag" in err and "nothing to resume" in err
    assert "zag usage list" not in err and "scheduled" not in err
    code, _, err = _zag("resume", waiting[:8])
    assert code == 2 and "still supervised by zag" in err
    assert "(`zag usage list` shows its scheduled resume)" in err


def test_force_color_colours_usage_list_into_a_pipe() -> None:
    from tests.readside import piped_stdout

    _incident("pending")
    assert "\x1b[" in piped_stdout(["usage", "list"], FORCE_COLOR="1")
    assert "\x1b[" not in piped_stdout(["usage", "list"])
    assert "\x1b[" not in piped_stdout(["usage", "list"], FORCE_COLOR="1", NO_COLOR="1")


def test_cancel_of_a_silent_but_running_supervisor_does_not_call_it_gone(tmp_path) -> None:
    """Heartbeats stopped (zag stopped with Ctrl-Z, a machine just woken) but the process runs: `zag ps`
    says dead, yet the supervisor itself stops waiting once it goes on, and `zag resume` is refused."""
    silent = {**live_supervisor(heartbeat_secs=1), "last_heartbeat": time.time() - 3600}
    with Index() as index:
        session = add_session(index, state=states.WAITING, exit_code=None, provider_session_id="p-1",
                              cwd=str(tmp_path), resume_at=time.time() + 600, **silent)
        index.add_resume(incident_id=INCIDENT, session_id=session, provider="claude", scope="session",
                         reset_at=None, resume_at=time.time() + 600, raw="x")
    code, out, err = _zag("usage", "cancel", INCIDENT[:6])
    assert code == 0, err
    assert "silent but still runs" in out and "gone" not in out and "zag resume" not in out
    code, _, err = _zag("resume", session[:8])
    assert code == 2 and "still runs" in err and "nothing to resume" in err
