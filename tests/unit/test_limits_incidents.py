"""Incidents from limit signals: structured trusted at once; text confirmed by the exit code (headless) or
a grace period without explanation (interactive: typed by the user, or in a transcript message); reports
of one hit merged (best reset, most specific scope); a new hit after a resume started is a new incident."""

from __future__ import annotations

import itertools

import pytest

from zag.providers.base import LimitSignal
from zag.wrapper import incidents as I
from zag.wrapper.incidents import IncidentBook

T0 = 1_800_000_000.0
TEXT = "You've hit your session limit · resets 3pm (Europe/Berlin)"


def book(interactive: bool = False) -> IncidentBook:
    counter = itertools.count(1)
    return IncidentBook("claude", interactive=interactive, new_id=lambda: f"incident-{next(counter)}")


def text(raw: str = TEXT, reset: float | None = None, scope: str = "unknown", source: str = "pty") -> LimitSignal:
    return LimitSignal("claude", source, raw, structured=False, scope=scope, reset_at=reset)


def structured(reset: float | None = None, scope: str = "unknown", raw: str = '{"type":"rate_limit_event"}',
               session: str | None = None) -> LimitSignal:
    return LimitSignal("claude", "provider_file", raw, structured=True, scope=scope, reset_at=reset,
                       provider_session_id=session)


# --- confirmation ----------------------------------------------------------------------------------------
def test_structured_signal_is_confirmed_at_once() -> None:
    incidents = book()
    incident = incidents.add(structured(T0 + 100, "session"), T0)
    assert incident.state == I.CONFIRMED and incident.confirmed_at == T0
    assert (incident.reset_at, incident.scope) == (T0 + 100, "session")


@pytest.mark.parametrize(("exit_code", "state"), [(1, I.CONFIRMED), (173, I.CONFIRMED), (0, I.DROPPED)])
def test_headless_text_is_decided_by_the_exit_code(exit_code: int, state: str) -> None:
    incidents = book()
    incident = incidents.add(text(source="stdout"), T0)
    assert incident.state == I.PENDING
    assert incidents.next_deadline() is None  # headless: nothing happens until the child exits
    confirmed = incidents.child_exited(exit_code, T0 + 5)
    assert incident.state == state and confirmed == ([incident] if state == I.CONFIRMED else [])
    if state == I.DROPPED:
        assert "exited 0" in incident.drop_reason


def test_interactive_text_is_confirmed_after_the_grace_period() -> None:
    incidents = book(interactive=True)
    incident = incidents.add(text(), T0)
    assert incidents.next_deadline() == T0 + I.GRACE_SECS
    assert incidents.expire(T0 + I.GRACE_SECS - 0.1) == [] and incident.state == I.PENDING
    assert incidents.expire(T0 + I.GRACE_SECS) == [incident] and incident.state == I.CONFIRMED


def test_interactive_text_pasted_by_the_user_is_dropped() -> None:
    incidents = book(interactive=True)
    incidents.recent.typed("\x1b[200~You’ve hit your\n  session limit · resets 3pm (Europe/Berlin)\x1b[201~", T0 - 1)
    incident = incidents.add(text(), T0)
    assert incidents.expire(T0 + I.GRACE_SECS) == []
    assert incident.state == I.DROPPED and incident.drop_reason == "typed by the user"


def test_typing_arrives_a_key_at_a_time() -> None:
    incidents = book(interactive=True)
    for position, char in enumerate(TEXT):
        incidents.recent.typed(char, T0 - 10 + position * 0.01)
    incident = incidents.add(text(), T0)
    incidents.expire(T0 + I.GRACE_SECS)
    assert incident.state == I.DROPPED


def test_interactive_text_in_a_transcript_message_is_dropped_as_prose() -> None:
    incidents = book(interactive=True)
    incident = incidents.add(text(), T0)
    incidents.recent.message(f"Sure. Claude prints: {TEXT} and then waits.", T0 + 0.5)  # arrives a moment later
    incidents.expire(T0 + I.GRACE_SECS)
    assert incident.state == I.DROPPED and incident.drop_reason == "in a transcript message"


def test_old_input_and_messages_explain_nothing() -> None:
    incidents = book(interactive=True)
    incidents.recent.typed(TEXT, T0 - I.CONTEXT_SECS - 5)
    incidents.recent.message(TEXT, T0 - I.CONTEXT_SECS - 5)
    incident = incidents.add(text(), T0)
    incidents.expire(T0 + I.GRACE_SECS)
    assert incident.state == I.CONFIRMED


def test_unrelated_typing_does_not_explain_a_hit() -> None:
    incidents = book(interactive=True)
    incidents.recent.typed("please fix the failing test\r", T0 - 2)
    incident = incidents.add(text(), T0)
    incidents.expire(T0 + I.GRACE_SECS)
    assert incident.state == I.CONFIRMED


def test_a_structured_report_confirms_a_pending_text_at_once() -> None:
    incidents = book(interactive=True)
    incidents.recent.typed(TEXT, T0 - 1)  # even when the text alone would have been explained away
    incident = incidents.add(text(), T0)
    assert incidents.add(structured(T0 + 60), T0 + 0.3) is incident
    assert incident.state == I.CONFIRMED and incident.structured and incident.reports == 2


def test_the_notice_of_a_resumed_hit_drawn_again_is_no_new_incident() -> None:
    incidents = book(interactive=True)
    first = incidents.add(text(), T0)
    incidents.expire(T0 + I.GRACE_SECS)
    first.announced, first.resume_at, first.resume_started, first.status = True, T0 + 10, True, "done"
    redrawn = incidents.add(text(), T0 + 900)  # the TUI repaints its scrollback after a resize
    assert redrawn is not first
    incidents.expire(T0 + 900 + I.GRACE_SECS)
    assert redrawn.state == I.DROPPED and "already resumed" in redrawn.drop_reason
    other = incidents.add(text("You've hit your session limit · resets 8pm (Europe/Berlin)"), T0 + 1000)
    incidents.expire(T0 + 1000 + I.GRACE_SECS)
    assert other.state == I.CONFIRMED  # a new notice is a new hit


def test_exit_forces_interactive_decisions() -> None:
    incidents = book(interactive=True)
    incident = incidents.add(text(), T0)
    assert incidents.expire(T0 + 0.1, force=True) == [incident]


# --- merging ---------------------------------------------------------------------------------------------
def test_reports_of_one_hit_merge_keeping_the_best_reset_and_scope() -> None:
    incidents = book()
    first = incidents.add(text(reset=T0 + 60, source="stdout"), T0)             # text, minute precision
    assert incidents.add(structured(None, "session"), T0 + 0.1) is first       # structured, no reset
    assert (first.reset_at, first.scope) == (T0 + 60, "session")
    incidents.add(structured(T0 + 95, "weekly"), T0 + 0.2)                     # structured with a reset
    assert (first.reset_at, first.scope) == (T0 + 95, "session")                # first specific scope stays
    incidents.add(text(reset=T0 + 500), T0 + 0.3)                               # text never beats structured
    assert first.reset_at == T0 + 95
    incidents.add(structured(T0 + 99), T0 + 0.4)                                 # of equals, the later
    assert first.reset_at == T0 + 99 and first.reports == 5
    assert len(incidents.incidents) == 1


@pytest.mark.parametrize("second", [50, 0], ids=["1:14:50", "1:14:00"])
@pytest.mark.parametrize("exact_first", [True, False])
def test_an_exact_reset_beats_the_end_of_the_minute_that_names_it(exact_first: bool, second: int) -> None:
    """claude's rate_limit_event says 1:14:50 (an epoch), its text `resets 1:14am`: read as 1:15:00. An
    exact reset on the minute itself (1:14:00) is the same reset too."""
    assert T0 % 60 == 0
    exact, minute_end = T0 + second, T0 + 60
    incidents = book()
    first = incidents.add(structured(exact if exact_first else minute_end), T0)
    incidents.add(structured(minute_end if exact_first else exact), T0 + 0.1)
    assert first.reset_at == exact
    incidents.add(structured(T0 + 120), T0 + 0.2)            # a later minute: another reset, the safer one
    assert first.reset_at == T0 + 120


def test_the_wording_is_kept_as_raw_rather_than_a_json_line() -> None:
    incidents = book()
    incident = incidents.add(structured(T0 + 10), T0)
    incidents.add(text(source="stdout"), T0 + 0.1)
    assert incident.raw == TEXT and incident.source == "stdout"


def test_after_the_announcement_later_reports_only_count() -> None:
    incidents = book()
    incident = incidents.add(structured(T0 + 10), T0)
    [due] = incidents.due_announcements(T0 + I.ANNOUNCE_AFTER_SECS)
    due.announced, due.resume_at = True, T0 + 10
    incidents.add(structured(T0 + 50, "weekly"), T0 + 2)
    assert (incident.reset_at, incident.scope, incident.reports) == (T0 + 10, "unknown", 2)


def test_announcement_waits_briefly_unless_the_child_exited() -> None:
    incidents = book()
    incidents.add(structured(T0 + 10), T0)
    assert incidents.due_announcements(T0 + 0.5) == []
    assert len(incidents.due_announcements(T0 + 0.5, at_once=True)) == 1
    assert incidents.next_deadline() == T0 + I.ANNOUNCE_AFTER_SECS


def test_a_new_hit_after_the_resume_started_is_a_new_incident() -> None:
    incidents = book()
    first = incidents.add(structured(T0 + 10), T0)
    first.announced, first.resume_at = True, T0 + 10
    assert incidents.add(structured(T0 + 10), T0 + 5) is first  # still waiting: the same hit
    first.resume_started = True
    second = incidents.add(structured(T0 + 90), T0 + 20)
    assert second is not first and second.incident_id == "incident-2"


def test_without_a_schedule_reports_merge_only_within_the_window() -> None:
    incidents = book()
    first = incidents.add(structured(None), T0)
    first.announced = True  # resume disabled: nothing scheduled
    assert incidents.add(structured(None), T0 + I.MERGE_WINDOW_SECS - 1) is first
    assert incidents.add(structured(None), T0 + 2 * I.MERGE_WINDOW_SECS) is not first


def test_closed_and_dropped_incidents_take_no_reports() -> None:
    incidents = book()
    first = incidents.add(text(source="stdout"), T0)
    incidents.child_exited(0, T0 + 1)
    second = incidents.add(structured(T0 + 10), T0 + 2)
    assert second is not first and first.state == I.DROPPED
    second.status = "cancelled"
    assert incidents.add(structured(T0 + 10), T0 + 3) is not second


def test_active_is_the_newest_scheduled_open_incident() -> None:
    incidents = book()
    assert incidents.active() is None
    first = incidents.add(structured(T0 + 10), T0)
    assert incidents.active() is None  # not announced yet
    first.announced, first.resume_at = True, T0 + 10
    assert incidents.active() is first
    first.status = "done"
    assert incidents.active() is None


def test_normalize_and_key() -> None:
    assert I.normalize("\x1b[1mYou’ve\x1b[0m  hit\n your") == "you've hit your"
    assert I.match_key("x" * 100) == "x" * I.KEY_CHARS


# --- repeats without progress ----------------------------------------------------------------------------
def _attempted(incidents: IncidentBook, reset: float | None, at: float) -> I.Incident:
    """An announced incident whose resume was attempted and not (yet) verified."""
    incident = incidents.add(structured(reset), at)
    incident.announced, incident.resume_at, incident.resume_started = True, at + 3, True
    incident.status, incident.attempts = "resuming", 1
    return incident


@pytest.mark.parametrize("new_reset", [None, T0 + 30, T0 + 99, T0 + 100])
def test_a_hit_that_brings_no_later_reset_repeats_the_unverified_one(new_reset: float | None) -> None:
    incidents = book()
    first = _attempted(incidents, T0 + 100, T0)           # resumed (too early, or it was not the real reset)
    second = incidents.add(structured(new_reset), T0 + 105)
    assert second is not first
    assert incidents.repeated(second, T0 + 105) is first  # none / past / no later than the first's reset


def test_a_later_reset_in_the_future_is_news_not_a_repeat() -> None:
    incidents = book()
    _attempted(incidents, T0 + 100, T0)
    second = incidents.add(structured(T0 + 3600), T0 + 105)
    assert incidents.repeated(second, T0 + 105) is None


def test_a_reset_past_at_the_time_repeats_even_without_an_earlier_reset() -> None:
    incidents = book()
    _attempted(incidents, None, T0)
    second = incidents.add(structured(T0 + 50), T0 + 60)
    assert incidents.repeated(second, T0 + 60) is not None
    assert incidents.repeated(second, T0 + 40) is None  # still ahead when judged: news


@pytest.mark.parametrize("change", ["verified", "progressed", "never attempted"])
def test_progress_or_no_attempt_means_no_repeat(change: str) -> None:
    incidents = book()
    first = _attempted(incidents, T0 + 100, T0)
    if change == "verified":
        first.status = "done"
    elif change == "progressed":
        assert incidents.progress(T0 + 50, None)
    else:
        first.resume_started = False
    second = incidents.add(structured(T0 + 100), T0 + 105)
    assert incidents.repeated(second, T0 + 105) is None


def test_the_repeat_is_of_the_last_announced_incident() -> None:
    incidents = book()
    first = _attempted(incidents, T0 + 100, T0)
    second = incidents.add(structured(T0 + 100), T0 + 105)
    second.announced, second.resume_at, second.resume_started, second.status = True, T0 + 200, True, "resuming"
    dropped = incidents.add(text(source="stdout"), T0 + 300)
    incidents.child_exited(0, T0 + 301)                  # the agent's own prose: dropped, never announced
    third = incidents.add(structured(None), T0 + 400)
    assert dropped.state == I.DROPPED and incidents.repeated(third, T0 + 400) is second
    assert incidents.repeated(second, T0 + 105) is first


def test_progress_counts_only_messages_after_the_hit_of_its_session() -> None:
    incidents = book()
    incident = incidents.add(structured(T0 + 100, session="s-1"), T0)
    assert not incidents.progress(T0 - 1, "s-1")          # written before the hit (read late)
    assert not incidents.progress(T0 + 5, "s-2")          # another session
    assert incident.progressed_at is None
    assert incidents.progress(T0 + 5, "s-1") and incident.progressed_at == T0 + 5
    assert incidents.progress(T0 + 9, None) and incident.progressed_at == T0 + 5  # the first one is kept


def test_whether_the_reset_was_a_delay_follows_the_reset_kept() -> None:
    """An incident times its reset on the elapsed clock only if the reset it keeps was given as a delay."""
    incidents = book()
    first = incidents.add(LimitSignal("claude", "stdout", "retry in 60s", structured=False, reset_at=T0 + 60,
                                      reset_relative=True), T0)
    assert first.reset_relative
    incidents.add(structured(T0 + 95), T0 + 0.1)                                 # a structured instant wins
    assert (first.reset_at, first.reset_relative) == (T0 + 95, False)
    incidents.add(LimitSignal("claude", "provider_file", "{}", structured=True, reset_at=T0 + 130,
                              reset_relative=True), T0 + 0.2)                    # a later structured delay
    assert (first.reset_at, first.reset_relative) == (T0 + 130, True)
    incidents.add(structured(None), T0 + 0.3)                                    # no reset: nothing changes
    assert (first.reset_at, first.reset_relative) == (T0 + 130, True)
