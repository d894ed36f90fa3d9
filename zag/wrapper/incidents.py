"""From usage-limit signals to incidents: confirming text matches and merging reports of one hit (pure logic;
times are passed in, nothing here blocks, writes or knows a provider).

Rules:
- a structured signal (a record or JSON shape that says "limit") is trusted at once;
- a text signal (an anchored pattern on the agent's output) needs confirmation:
  headless, by the child's exit code (non-zero: a hit; zero: it was the assistant's prose);
  interactive, by `GRACE_SECS` passing without an explanation: the matched text was typed or pasted by
  the user (zag forwards their keystrokes), or an assistant/user message of the transcript carries it
  (the model quoting a limit message), or it is the very notice of a hit that was already resumed (a TUI
  drawing its screen again);
- signals join the open incident of the session while it has not started resuming (and, when nothing
  is scheduled, while they come within `MERGE_WINDOW_SECS` of its last report): one incident per hit
  however many places report it. The incident keeps the best reset (structured > text > none; of two
  equally trusted, the later — except that a reset named to the minute, which stands for the end of that
  minute (a whole minute: see `reset_time`), gives way to an earlier one within that minute, the same
  reset known exactly), whether that reset was given as a delay (`reset_relative`: the engine times it
  on the elapsed clock), and the most specific scope; its `raw` is the first report's text (a wording
  rather than a JSON line when one comes);
- a confirmed incident is announced `ANNOUNCE_AFTER_SECS` after its confirmation (or at once when the
  child has exited), so the reports of the same hit that come a moment later refine it first;
- once a resume attempt started, a new signal is a new incident;
- a new incident that brings no progress (`repeated`: the previous incident's resume was attempted and
  never verified, and the new hit gives no reset, one already past, or none later than the previous one)
  is a repeat of it: the engine backs off and counts it toward `max_attempts`, so a CLI that keeps
  reporting a reset that is not one cannot make zag resume in a loop.
"""

from __future__ import annotations

import re
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from zag import states
from zag.logs import events
from zag.providers.base import LimitSignal

GRACE_SECS = 2.5
ANNOUNCE_AFTER_SECS = 1.0
MERGE_WINDOW_SECS = 600.0
CONTEXT_SECS = 60.0        # typed input and transcript messages this recent may explain a text match
KEY_CHARS = 40             # how much of a match must reappear in typed input or a message
INPUT_KEEP_CHARS = 16 * 1024
MESSAGES_KEEP = 64

PENDING = "pending"        # a text match waiting for confirmation
CONFIRMED = "confirmed"
DROPPED = "dropped"        # explained away: the user typed it, or the model wrote it

RANK_NONE, RANK_TEXT, RANK_STRUCTURED = 0, 1, 2


@dataclass
class Incident:
    """One usage-limit hit and what zag decided about it."""

    incident_id: str
    provider: str
    first_seen: float
    last_seen: float
    raw: str
    source: str
    structured: bool
    scope: str = events.SCOPE_UNKNOWN
    reset_at: float | None = None
    reset_relative: bool = False       # the reset was given as a delay: timed on the elapsed clock
    reset_rank: int = RANK_NONE
    provider_session_id: str | None = None
    reports: int = 1
    state: str = PENDING
    confirmed_at: float | None = None
    drop_reason: str | None = None
    text_raws: list[str] = field(default_factory=list)
    # set by the engine
    announced: bool = False
    resume_at: float | None = None     # None: nothing scheduled (resume disabled, or not yet announced)
    due_elapsed: float | None = None   # a delay zag chose: due at this `schedule.elapsed()` (or resume_at)
    spread_to: float | None = None     # the resume_at a late wake moved it to (`LimitHandler._spread_late`)
    fallback_used: bool = False
    status: str = states.RESUME_PENDING
    attempts: int = 0
    resume_started: bool = False       # a resume attempt began: later signals are a new incident
    repeat_of: str | None = None       # the incident this hit repeats with no progress in between
    backed_off: bool = False           # its resume waits the back-off, later than its reset asked
    progressed_at: float | None = None  # a new assistant message of the session after the hit

    @property
    def is_open(self) -> bool:
        return self.state != DROPPED and self.status in states.RESUME_OPEN_STATES


def _looks_like_json(text: str) -> bool:
    return text.lstrip().startswith("{")


def _rank(signal: LimitSignal) -> int:
    if signal.reset_at is None:
        return RANK_NONE
    return RANK_STRUCTURED if signal.structured else RANK_TEXT


MINUTE_SECS = 60.0


def _better_reset(new: float | None, old: float | None) -> bool:
    """Is `new` the better of two equally trusted resets? The later one (the safer), unless the later is
    a whole minute and the earlier lies within the minute before it (its first second included): then
    the later is most likely the end of a minute a CLI named (`reset_time` reads `resets 1:14am` as
    1:15:00) and the earlier the same reset known exactly (an epoch in a structured report: 1:14:00 to
    1:14:59)."""
    if new is None or old is None or new == old:
        return False
    later, earlier = max(new, old), min(new, old)
    pick = earlier if later % MINUTE_SECS == 0 and later - earlier <= MINUTE_SECS else later
    return pick == new


_SPACE = re.compile(r"\s+")
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "\u00a0": " "})
_PASTE_MARKS = re.compile(r"\x1b\[20[01]~")


def normalize(text: str) -> str:
    """Lower case, ANSI and paste markers removed, straight apostrophes, single spaces."""
    from zag.providers.text import strip_ansi

    text = strip_ansi(_PASTE_MARKS.sub("", text)).translate(_APOSTROPHES)
    return _SPACE.sub(" ", text).strip().lower()


def match_key(raw: str) -> str:
    """The part of a matched text that must reappear elsewhere to explain it."""
    return normalize(raw)[:KEY_CHARS]


class RecentText:
    """What the user typed and what the transcript said lately, to explain away text matches."""

    def __init__(self) -> None:
        self._input: deque[tuple[float, str]] = deque()
        self._input_chars = 0
        self._messages: deque[tuple[float, str]] = deque(maxlen=MESSAGES_KEEP)

    def typed(self, data: str, at: float) -> None:
        """Keystrokes the user sent to the agent (typing arrives a character at a time: kept as a stream)."""
        if not data:
            return
        self._input.append((at, data))
        self._input_chars += len(data)
        while self._input_chars > INPUT_KEEP_CHARS and len(self._input) > 1:
            self._input_chars -= len(self._input.popleft()[1])

    def message(self, text: str, at: float) -> None:
        """An assistant or user message of the transcript."""
        if text:
            self._messages.append((at, normalize(text)))

    def explains(self, key: str, since: float) -> str | None:
        """Why a match with this key is not a hit (`typed by the user`, `in a transcript message`), or None."""
        if not key:
            return None
        typed = normalize("".join(data for at, data in self._input if at >= since))
        if key in typed:
            return "typed by the user"
        if any(at >= since and key in text for at, text in self._messages):
            return "in a transcript message"
        return None


class IncidentBook:
    """The incidents of one session (not thread-safe: the engine holds its lock around every call)."""

    def __init__(self, provider: str, *, interactive: bool,
                 new_id: Callable[[], str] = lambda: str(uuid.uuid4())) -> None:
        self.provider = provider
        self.interactive = interactive
        self.incidents: list[Incident] = []
        self.recent = RecentText()
        self._new_id = new_id

    # -- signals ----------------------------------------------------------------------------------
    def add(self, signal: LimitSignal, now: float) -> Incident:
        """Record a signal: it joins the open incident or starts a new one (returned). A reset no clock
        can show (NaN, centuries away: `retry in 99999999999 days`) counts as none given."""
        from zag.providers.reset_time import plausible  # only once a hit is seen

        if signal.reset_at is not None and not plausible(signal.reset_at):
            signal = replace(signal, reset_at=None, reset_relative=False)
        current = self.open_incident(now)
        if current is not None:
            self._merge(current, signal, now)
            return current
        incident = Incident(
            incident_id=self._new_id(), provider=self.provider, first_seen=now, last_seen=now,
            raw=signal.raw, source=signal.source, structured=signal.structured, scope=signal.scope or
            events.SCOPE_UNKNOWN, reset_at=signal.reset_at, reset_relative=signal.reset_relative and
            signal.reset_at is not None, reset_rank=_rank(signal),
            provider_session_id=signal.provider_session_id,
        )
        if signal.structured:
            self._confirm(incident, now)
        else:
            incident.text_raws.append(signal.raw)
        self.incidents.append(incident)
        return incident

    def open_incident(self, now: float) -> Incident | None:
        """The incident a new signal would join, if any."""
        for incident in reversed(self.incidents):
            if incident.state == DROPPED:
                continue
            if not incident.is_open or incident.resume_started:
                return None
            scheduled = incident.resume_at is not None
            if scheduled or now - incident.last_seen <= MERGE_WINDOW_SECS:
                return incident
            return None
        return None

    def _merge(self, incident: Incident, signal: LimitSignal, now: float) -> None:
        incident.reports += 1
        incident.last_seen = now
        if not signal.structured:
            incident.text_raws.append(signal.raw)
        if incident.provider_session_id is None:
            incident.provider_session_id = signal.provider_session_id
        if incident.announced:
            return  # what was told stays as told; later reports of the same hit only count
        if _looks_like_json(incident.raw) and not _looks_like_json(signal.raw):
            incident.raw, incident.source = signal.raw, signal.source  # the wording reads better than JSON
        rank = _rank(signal)
        if rank > incident.reset_rank or (rank == incident.reset_rank and _better_reset(signal.reset_at,
                                                                                       incident.reset_at)):
            incident.reset_at, incident.reset_rank = signal.reset_at, rank
            incident.reset_relative = signal.reset_relative
        if incident.scope == events.SCOPE_UNKNOWN and signal.scope and signal.scope != events.SCOPE_UNKNOWN:
            incident.scope = signal.scope
        if signal.structured and incident.state == PENDING:
            incident.structured = True
            self._confirm(incident, now)

    @staticmethod
    def _confirm(incident: Incident, now: float) -> None:
        incident.state = CONFIRMED
        incident.confirmed_at = now

    # -- confirmation -----------------------------------------------------------------------------
    def child_exited(self, exit_code: int, now: float) -> list[Incident]:
        """Headless: the child's exit code decides pending text matches. Returns those confirmed."""
        confirmed = []
        for incident in self.incidents:
            if incident.state != PENDING:
                continue
            if exit_code != 0:
                self._confirm(incident, now)
                confirmed.append(incident)
            else:
                incident.state, incident.drop_reason = DROPPED, "the agent exited 0 (its own output)"
        return confirmed

    def expire(self, now: float, *, force: bool = False) -> list[Incident]:
        """Interactive: pending text matches whose grace period is over (all of them with `force`, when
        the agent has exited) are confirmed unless explained (then dropped). Returns those confirmed."""
        confirmed = []
        for incident in self.incidents:
            if incident.state != PENDING or (not force and now < incident.first_seen + GRACE_SECS):
                continue
            reason = self._explained(incident)
            if reason is None:
                self._confirm(incident, now)
                confirmed.append(incident)
            else:
                incident.state, incident.drop_reason = DROPPED, reason
        return confirmed

    def _explained(self, incident: Incident) -> str | None:
        since = incident.first_seen - CONTEXT_SECS
        resumed = {normalize(raw) for other in self.incidents if other.status == states.RESUME_DONE
                   for raw in (other.raw, *other.text_raws)}
        reasons = [("the notice of a hit already resumed, drawn again" if normalize(raw) in resumed else None)
                   or self.recent.explains(match_key(raw), since) for raw in incident.text_raws]
        return reasons[0] if reasons and all(reasons) else None

    def due_announcements(self, now: float, *, at_once: bool = False) -> list[Incident]:
        """Confirmed incidents whose announcement is due (all of them with `at_once`)."""
        return [
            incident for incident in self.incidents
            if incident.state == CONFIRMED and not incident.announced and incident.confirmed_at is not None
            and (at_once or now >= incident.confirmed_at + ANNOUNCE_AFTER_SECS)
        ]

    def next_deadline(self) -> float | None:
        """When `expire` or `due_announcements` next has something to do."""
        moments = []
        for incident in self.incidents:
            if incident.state == PENDING and self.interactive:
                moments.append(incident.first_seen + GRACE_SECS)
            elif incident.state == CONFIRMED and not incident.announced and incident.confirmed_at is not None:
                moments.append(incident.confirmed_at + ANNOUNCE_AFTER_SECS)
        return min(moments) if moments else None

    def repeated(self, incident: Incident, now: float) -> Incident | None:
        """The incident `incident` repeats with no progress in between, or None: the announced incident
        before it, if its resume was attempted but never verified, when this hit names no reset, one
        already past at `now`, or one no later than that incident's."""
        previous = None
        for other in self.incidents:
            if other is incident:
                break
            if other.state != DROPPED and other.announced:
                previous = other
        if previous is None or not previous.resume_started or previous.status == states.RESUME_DONE \
                or previous.progressed_at is not None:
            return None
        reset = incident.reset_at
        if reset is None or reset <= now or (previous.reset_at is not None and reset <= previous.reset_at):
            return previous
        return None

    def progress(self, at: float, session: str | None) -> bool:
        """A new assistant message of `session` written at `at` (outside a resume attempt): the incidents
        seen before it have seen the session advance. Returns whether any had."""
        advanced = False
        for incident in self.incidents:
            if incident.state == DROPPED or at <= incident.first_seen:
                continue
            if session and incident.provider_session_id and session != incident.provider_session_id:
                continue
            if incident.progressed_at is None:
                incident.progressed_at = at
            advanced = True
        return advanced

    def active(self) -> Incident | None:
        """The newest announced incident that still wants a resume."""
        for incident in reversed(self.incidents):
            if incident.announced and incident.is_open and incident.resume_at is not None:
                return incident
        return None
