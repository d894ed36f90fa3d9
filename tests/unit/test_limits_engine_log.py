"""The usage-limit engine driven directly (a stand-in supervisor that writes a real session log and keeps
the registry fields it is given): after every step, what the engine put in the index (`resumes` rows, the
session's state and resume time) is what `zag reindex` reads from the log alone. The scenario: a resume
that failed and waits for its retry is superseded by a new hit (no attempt running), whose own attempt is
then superseded by a third hit during it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from zag import states
from zag.config import LimitSettings
from zag.logs import codec, events
from zag.logs.index import Index
from zag.logs.reader import iter_complete_lines
from zag.logs.reindex import scan_log
from zag.logs.writer import SessionLogWriter
from zag.providers.base import LimitSignal
from zag.wrapper import incidents
from zag.wrapper.limits import LimitHandler

SID = "00000002-0000-4000-8000-000000000000"
SETTINGS = LimitSettings(enabled=True, resume_message="Continue", fallback_secs=60.0, jitter_secs=0.0,
                         max_wait_secs=3600.0, max_attempts=5, extra_patterns=(), retry_secs=30.0,
                         verify_secs=5.0)


@dataclass
class Request:
    provider_name: str = "claude"
    interactive: bool = False


@dataclass
class StandInSupervisor:
    """What the engine uses of a `Supervisor`: the log, the registry fields, no child running."""

    writer: SessionLogWriter
    session_id: str = SID
    request: Request = field(default_factory=Request)
    provider: Any = None
    guard: Any = None
    provider_session_id: str | None = "prov-1"
    current_child: Any = None
    registry: dict[str, Any] = field(default_factory=lambda: {"state": states.RUNNING, "resume_at": None})
    stop_requested: threading.Event = field(default_factory=threading.Event)
    interrupted: threading.Event = field(default_factory=threading.Event)
    registry_updates: int = 0

    def log_event(self, body: dict[str, Any]) -> None:
        self.writer.write(body, events.SOURCE_WRAPPER)

    def update_registry(self, **fields: Any) -> None:
        self.registry.update(fields)
        self.registry_updates += 1


def _stamp(epoch: float | None) -> str | None:
    return events.format_ts(epoch) if epoch is not None else None


def _agree(supervisor: StandInSupervisor) -> dict[str, str]:
    """Assert that the index as the engine left it and the log reindexed agree (during an attempt too:
    `resuming`, its attempt count, the session `running`); returns incident → status."""
    scan = scan_log(supervisor.writer.path)
    assert scan is not None
    with Index() as index:
        rows = index.list_resumes(open_only=False, session_id=SID)
    live = {r["incident_id"]: (r["status"], _stamp(r["resume_at"]), r["attempts"]) for r in rows}
    logged = {i.incident_id: (i.status, _stamp(i.resume_at), i.attempts) for i in scan.incidents}
    assert logged == live
    state = supervisor.registry["state"]
    assert (scan.row["state"], _stamp(scan.row["resume_at"])) == (
        state, _stamp(supervisor.registry["resume_at"]) if state == states.WAITING else None)
    return {incident: status for incident, (status, _, _) in live.items()}


def _hit(engine: LimitHandler, supervisor: StandInSupervisor, reset_at: float | None) -> dict[str, Any]:
    """A structured report of a hit; returns its `usage_limit_hit` once the engine's timer announced it
    (logged it, then updated the index: its last step is the session's `waiting` in the registry)."""
    before, updates = len(_hits(supervisor.writer)), supervisor.registry_updates
    engine.observe(LimitSignal("claude", "provider_file", '{"error":"rate_limit"}', structured=True,
                               scope="session", reset_at=reset_at, provider_session_id="prov-1"))
    deadline = time.monotonic() + 10
    while len(_hits(supervisor.writer)) == before or supervisor.registry_updates == updates:
        assert time.monotonic() < deadline, "the hit was not announced"
        time.sleep(0.01)
    return _hits(supervisor.writer)[-1]


def _hits(writer: SessionLogWriter) -> list[dict[str, Any]]:
    lines = [codec.loads(line) for _, line in iter_complete_lines(writer.path)]
    return [event for event in lines if event["type"] == events.USAGE_LIMIT_HIT]


def _engine(writer: SessionLogWriter, interactive: bool = False) -> tuple[StandInSupervisor, LimitHandler]:
    """The session's start in its log, a stand-in supervisor over it and the engine under test."""
    writer.write(events.body(events.SESSION_STARTED, provider="claude", argv=["claude"], interactive=interactive))
    supervisor = StandInSupervisor(writer, request=Request(interactive=interactive))
    return supervisor, LimitHandler(supervisor, SETTINGS)  # type: ignore[arg-type]


def test_superseded_incidents_read_the_same_from_the_log_at_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(incidents, "ANNOUNCE_AFTER_SECS", 0.0)
    with SessionLogWriter(SID, "claude", provider_session_id="prov-1") as writer:
        supervisor, engine = _engine(writer)
        try:
            first = _hit(engine, supervisor, time.time() + 600)
            assert _agree(supervisor) == {first["incident_id"]: "pending"}

            attempt = engine.begin_attempt(engine.active_incident(), expected="prov-1")  # type: ignore[arg-type]
            assert _agree(supervisor) == {first["incident_id"]: "resuming"}
            engine.fail_attempt(attempt, "no new assistant message")                       # waits for its retry
            assert _agree(supervisor) == {first["incident_id"]: "pending"}

            # hit again with no attempt running: a new incident (a repeat: no later reset) ends the first
            second = _hit(engine, supervisor, None)
            assert _agree(supervisor) == {first["incident_id"]: "failed", second["incident_id"]: "pending"}
            assert second["supersedes"] == [first["incident_id"]] and second["repeat_of"] == first["incident_id"]

            # hit again during the second incident's attempt: that attempt failed, the third goes on
            attempt = engine.begin_attempt(engine.active_incident(), expected="prov-1")  # type: ignore[arg-type]
            assert _agree(supervisor) == {first["incident_id"]: "failed", second["incident_id"]: "resuming"}
            third = _hit(engine, supervisor, time.time() + 900)
            assert _agree(supervisor) == {first["incident_id"]: "failed", second["incident_id"]: "failed",
                                          third["incident_id"]: "pending"}
            assert third["supersedes"] == [second["incident_id"]] and "repeat_of" not in third
        finally:
            engine.close()  # the session ends: what still waits is cancelled
        writer.write(events.body(events.SESSION_ENDED, exit_code=1, success=False, **engine.end_fields()))
        supervisor.registry.update(state=states.EXITED, resume_at=None)
    statuses = _agree(supervisor)
    assert statuses == {first["incident_id"]: "failed", second["incident_id"]: "failed",
                        third["incident_id"]: "cancelled"}


def _cancel_in_index(incident_id: str) -> None:
    """What `zag usage cancel` does: the resume cancelled in the index (the supervisor sees it polling)."""
    with Index() as index:
        assert index.update_resume_if(incident_id, states.RESUME_OPEN_STATES, status=states.RESUME_CANCELLED)


def _notes(writer: SessionLogWriter) -> list[dict[str, Any]]:
    lines = [codec.loads(line) for _, line in iter_complete_lines(writer.path)]
    return [e for e in lines if e["type"] == events.PROVIDER_STATUS and e["source"] == events.SOURCE_WRAPPER]


def test_a_usage_cancel_with_the_agent_on_screen_reads_the_same_from_the_log(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Interactive, the agent stays on screen: the cancel ends the wait, not the session, so only the
    note tells the log; the incident had a failed attempt, so the session's end alone would say failed."""
    monkeypatch.setattr(incidents, "ANNOUNCE_AFTER_SECS", 0.0)
    with SessionLogWriter(SID, "claude", provider_session_id="prov-1") as writer:
        supervisor, engine = _engine(writer, interactive=True)
        try:
            hit = _hit(engine, supervisor, time.time() + 600)
            attempt = engine.begin_attempt(engine.active_incident(), expected="prov-1")  # type: ignore[arg-type]
            engine.fail_attempt(attempt, "no new assistant message")                       # waits for its retry
            assert _agree(supervisor) == {hit["incident_id"]: "pending"}

            supervisor.current_child = object()  # the agent on screen
            _cancel_in_index(hit["incident_id"])
            assert engine.wait_due(lambda: False)[0] == "cancelled"
            assert supervisor.registry["state"] == states.RUNNING
            assert _agree(supervisor) == {hit["incident_id"]: "cancelled"}
            [note] = _notes(writer)
            assert note["data"] == {"kind": events.NOTE_USAGE_LIMIT_CANCELLED, "incident_id": hit["incident_id"],
                                    "attempts": 1, "cause": "usage_cancel"}
            assert note["message"].endswith("resume cancelled with `zag usage cancel`; claude keeps running")
        finally:
            engine.close()
        ended = engine.end_fields()
        assert "cancelled" not in ended  # the session went on after the cancel
        writer.write(events.body(events.SESSION_ENDED, exit_code=0, success=True, **ended))
        supervisor.registry.update(state=states.EXITED, resume_at=None)
    assert _agree(supervisor) == {hit["incident_id"]: "cancelled"}


def test_an_interrupted_wait_is_logged_when_it_is_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Headless, Ctrl-C / SIGTERM while waiting between children: the note is logged as the wait ends,
    before the session's end says `cancelled`."""
    from zag.wrapper.child import ExitStatus

    monkeypatch.setattr(incidents, "ANNOUNCE_AFTER_SECS", 0.0)
    with SessionLogWriter(SID, "claude", provider_session_id="prov-1") as writer:
        supervisor, engine = _engine(writer)
        try:
            hit = _hit(engine, supervisor, time.time() + 600)
            supervisor.interrupted.set()
            assert engine.next_launch(ExitStatus(1)) is None
            assert _agree(supervisor) == {hit["incident_id"]: "cancelled"}
            exited, note = _notes(writer)  # the agent's exit while the session waits on, then the cancel
            assert exited["data"] == {"kind": events.NOTE_AGENT_EXITED, "exit_code": 1,
                                      "incident_id": hit["incident_id"]}
            assert note["data"]["cause"] == "interrupted" and note["data"]["incident_id"] == hit["incident_id"]
            assert note["message"].endswith("resume cancelled (zag was interrupted)")
        finally:
            engine.close()
        writer.write(events.body(events.SESSION_ENDED, exit_code=1, success=False, **engine.end_fields()))
        supervisor.registry.update(state=states.EXITED, resume_at=None)
    assert _agree(supervisor) == {hit["incident_id"]: "cancelled"}


def test_an_attempt_reads_as_resuming_from_the_log_until_it_is_judged(monkeypatch: pytest.MonkeyPatch) -> None:
    """The start of an attempt is logged (`usage_limit_resume_started`): while the resumed agent runs,
    the log reindexed says `resuming` (and the session `running`) as the live index does; an attempt the
    session's end cuts short reads `cancelled` either way."""
    monkeypatch.setattr(incidents, "ANNOUNCE_AFTER_SECS", 0.0)
    with SessionLogWriter(SID, "claude", provider_session_id="prov-1") as writer:
        supervisor, engine = _engine(writer)
        try:
            first = _hit(engine, supervisor, time.time() + 600)
            engine.begin_attempt(engine.active_incident(), expected="prov-1")  # type: ignore[arg-type]
            assert _agree(supervisor) == {first["incident_id"]: "resuming"}
            [started] = [e for e in _lines(writer) if e["type"] == events.USAGE_LIMIT_RESUME_STARTED]
            assert (started["incident_id"], started["attempt"]) == (first["incident_id"], 1)
            engine.on_event(events.body(events.ASSISTANT_MESSAGE, content="Picking up.",
                                        provider_session_id="prov-1"), events.SOURCE_PROVIDER_FILE)
            assert _agree(supervisor) == {first["incident_id"]: "done"}

            second = _hit(engine, supervisor, time.time() + 600)
            engine.begin_attempt(engine.active_incident(), expected="prov-1")  # type: ignore[arg-type]
            assert _agree(supervisor) == {first["incident_id"]: "done", second["incident_id"]: "resuming"}
        finally:
            engine.close()
        writer.write(events.body(events.SESSION_ENDED, exit_code=1, success=False, **engine.end_fields()))
        supervisor.registry.update(state=states.EXITED, resume_at=None)
    assert _agree(supervisor) == {first["incident_id"]: "done", second["incident_id"]: "cancelled"}


def _lines(writer: SessionLogWriter) -> list[dict[str, Any]]:
    return [codec.loads(line) for _, line in iter_complete_lines(writer.path)]


@pytest.mark.parametrize(("status", "message"), [
    ((1, None), "claude exited with code 1; the session waits for its usage-limit resume (0a1b2c3d)"),
    ((None, 15), "claude was killed by SIGTERM; the session waits for its usage-limit resume (0a1b2c3d)"),
])
def test_the_agent_exited_note_reads_as_a_sentence(status: tuple[int | None, int | None], message: str) -> None:
    """The note's message is what `--json` and the raw log show."""
    from zag.wrapper.child import ExitStatus
    from zag.wrapper.limits import exited_note

    note = exited_note("claude", ExitStatus(*status), "0a1b2c3d-0000")
    assert note["message"] == message


def test_a_message_nested_thousands_deep_is_read_without_recursion() -> None:
    """Content nested deeper than Python's recursion limit (what an MCP tool returns is the agent's to log)
    still reaches the recent-text book: it raised RecursionError in the supervisor's transcript path."""
    nested: Any = ["the 5-hour limit is mentioned deep inside"]
    for _ in range(5000):
        nested = [nested]
    with SessionLogWriter(SID, "claude", provider_session_id="prov-1") as writer:
        _, engine = _engine(writer, interactive=True)
        try:
            engine.on_event(events.body(events.USER_MESSAGE, content=nested), events.SOURCE_PROVIDER_FILE)
            assert engine.book.recent.explains("5-hour limit", time.time() - 60) == "in a transcript message"
        finally:
            engine.close()
