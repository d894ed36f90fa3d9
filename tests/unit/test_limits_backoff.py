"""A CLI that keeps saying `retry in 1s` (a relative reset, later each time, so no hit is a repeat of the
last): each hit after a resume that did not continue the session waits at least the back-off
(`retry_secs`, doubling per consecutive failure), not the second the CLI names; a hit after progress
does not."""

from __future__ import annotations

import time

import pytest

from tests.unit.test_limits_engine_log import SETTINGS, SID, _engine, _hit
from zag import states
from zag.logs import events
from zag.logs.writer import SessionLogWriter
from zag.wrapper import incidents


def _delay(hit: dict[str, object]) -> float:
    return events.parse_ts(str(hit["scheduled_resume_at"])) - events.parse_ts(str(hit["ts"]))


def test_relative_resets_after_failed_resumes_back_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(incidents, "ANNOUNCE_AFTER_SECS", 0.0)
    retry = SETTINGS.retry_secs  # 30 s
    with SessionLogWriter(SID, "claude", provider_session_id="prov-1") as writer:
        supervisor, engine = _engine(writer)
        try:
            first = _hit(engine, supervisor, time.time() + 1)
            assert _delay(first) < 2                                    # the CLI's own second
            delays = []
            for _ in range(3):  # hit again, "retry in 1s", during each attempt
                engine.begin_attempt(engine.active_incident(), expected="prov-1")  # type: ignore[arg-type]
                hit = _hit(engine, supervisor, time.time() + 1)
                assert "repeat_of" not in hit and hit["scheduled_resume_at"] is not None
                delays.append(_delay(hit))
            assert [round(d) for d in delays] == [retry, 2 * retry, 4 * retry]
            assert supervisor.registry["state"] == states.WAITING

            # the session advanced (a new answer outside an attempt): the next hit waits its own reset
            engine.on_event(events.body(events.ASSISTANT_MESSAGE, content="On my own.", provider_session_id="prov-1",
                                        ts=events.now_rfc3339()), events.SOURCE_PROVIDER_FILE)
            engine.begin_attempt(engine.active_incident(), expected="prov-1")  # type: ignore[arg-type]
            engine.on_event(events.body(events.ASSISTANT_MESSAGE, content="Resumed.", provider_session_id="prov-1"),
                            events.SOURCE_PROVIDER_FILE)
            assert _delay(_hit(engine, supervisor, time.time() + 1)) < 2
        finally:
            engine.close()
