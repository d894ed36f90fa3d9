"""The one small protocol every agent CLI sits behind.

Nothing outside `zag/providers/` knows an agent's flags, files or wordings; the supervisor, the backfill
runner and the CLI talk to a provider only through `Provider` below and the value types of this module.

The same incremental reader serves live tailing and backfill: a `SessionReader` reads one provider
session's native files from a JSON-serialisable cursor and returns what is new. Live, the supervisor
polls it; backfill runs it once from the cursor stored in the index. Storing the live reader's cursor at
the end of a run is what keeps backfill from importing a supervised session twice.

Items a reader or scanner returns are either event bodies (plain dicts as in `zag.logs.events`, with
`type` and, when known, `ts` of the record) or the signal dataclasses below.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Union, runtime_checkable


# --- signals ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class LimitSignal:
    """Evidence that the agent hit a usage limit.

    `structured` signals come from records whose shape says "limit" (an API-error record, an error
    code); they are trusted at once. Text signals come from anchored patterns on the agent's output and
    are confirmed by the supervisor (agent exited non-zero, or no transcript/user-input explanation).
    """

    provider: str
    source: str                  # "provider_file" | "stdout" | "stderr" | "pty"
    raw: str                     # the exact matched text / record excerpt
    structured: bool
    scope: str = "unknown"       # session | weekly | daily | unknown
    reset_at: float | None = None  # epoch seconds, when the agent said
    observed_at: float = 0.0     # epoch seconds when zag saw it
    provider_session_id: str | None = None
    # the agent gave the reset as a delay from now (`retry in 41.2s`, `resets_in_seconds`), not an instant
    # (`resets 3pm`, an epoch): zag times it on the elapsed clock, which a wall-clock step does not move
    reset_relative: bool = False


@dataclass(frozen=True)
class SessionIdHint:
    """The agent reported its own session id (e.g. in `--json` output or a `system/init` line)."""

    provider_session_id: str
    source: str = "stdout"


Item = Union[dict[str, Any], LimitSignal, SessionIdHint]


class KeySequence(bytes):
    """Keystrokes for a PTY that must arrive in separate writes, `pause` seconds apart.

    Some TUIs take a chunk of input that arrives at once as a paste, so an Enter in the same chunk does
    not submit (claude 2.1.x: beyond ~32 characters). A `KeySequence` is still `bytes` (all chunks
    joined), so a writer that knows nothing of it degrades to one write; a writer that checks for it
    writes `chunks` one by one with `pause` between them.
    """

    chunks: tuple[bytes, ...]
    pause: float

    def __new__(cls, chunks: Sequence[bytes], pause: float = 0.2) -> KeySequence:
        instance = super().__new__(cls, b"".join(chunks))
        instance.chunks = tuple(chunks)
        instance.pause = pause
        return instance


# --- launching -------------------------------------------------------------------------------
@dataclass(frozen=True)
class LaunchContext:
    """What a provider may know about the run it prepares."""

    cwd: str
    env: Mapping[str, str]       # the environment the child gets (HOME, CLAUDE_CONFIG_DIR, …)
    interactive: bool            # True: the child runs in a PTY with the user at the keyboard
    started_at: float            # epoch seconds, just before launch
    zag_session_id: str
    extra_limit_patterns: tuple[str, ...] = ()  # user regexes from config (`extra_patterns`)
    child_pid: int | None = None  # set once the child runs (e.g. to find a pid-keyed registry file)


@dataclass
class LaunchPlan:
    """How to start (or restart) the agent, and what the provider needs to find its files again."""

    args: list[str]              # argv after the executable: the user's args plus what zag adds
    provider_session_id: str | None = None  # known before start (e.g. an id zag chose)
    env: dict[str, str] = field(default_factory=dict)  # additions to the child's environment
    model: str | None = None     # the model the user asked for, if any
    notes: dict[str, Any] = field(default_factory=dict)  # provider-private facts (e.g. the --name)


# --- reading sessions ------------------------------------------------------------------------
@dataclass(frozen=True)
class HistorySource:
    """One provider session found on disk, for backfill."""

    source_key: str              # stable, unique per provider (e.g. the provider session id)
    provider_session_id: str
    paths: tuple[Path, ...]      # the native files this session is made of
    fingerprint: str             # changes whenever any of those files changes (size, mtime)
    cwd: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    model: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    # what ownership compares (live claims, adoption by a supervised session); None: the session id.
    # A provider whose ids repeat across its homes gives its `owner_key(provider_session_id, env)`.
    owner_key: str | None = None

    @property
    def ownership(self) -> str:
        return self.owner_key or self.provider_session_id


class UnlistedSources(Exception):
    """Raised by `discover` once it has yielded every source it could list: what it could not list (a
    folder or database that exists but cannot be read), one message each naming it and why."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@runtime_checkable
class SessionReader(Protocol):
    """Incremental reader of one provider session (live and backfill alike).

    Optionally a reader has an `info` mapping of what it learnt from records that became no event
    field (`cwd`, `model`); the backfill runner uses it for `session_started` and the index row. And a
    `problem`: why its last read stopped before the end of the session (a database it cannot read in
    full, busy or damaged), one line naming the file, the same for every session of that file; backfill
    says it once, counts the file as not read, and reads the source again next time.
    """

    def read(self) -> Iterator[Item]:
        """Everything new since the last call (only complete records). Never raises for bad input:
        malformed records become `parse_warning` bodies, unknown ones `provider_status`."""
        ...

    def cursor(self) -> Any:
        """A JSON-serialisable position; passing it back to `open_reader` continues after it."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class LiveSession(Protocol):
    """Follows the running child's own session file(s): finds them, reads them, notices a switch."""

    provider_session_id: str | None   # once known
    source_key: str | None            # the `HistorySource.source_key` of the current session

    def poll(self) -> list[Item]:
        """Find/read what is new; cheap when nothing changed. Emits `session_cleared` when the agent
        moved to a new session. Never raises for bad input."""
        ...

    def hint(self, signal: SessionIdHint) -> None:
        """The agent reported its session id on its output."""
        ...

    def cursor(self) -> Any:
        """Cursor of the current session, for the backfill table."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class OutputScanner(Protocol):
    """Watches the child's output (never changes it) for session ids and usage-limit signals."""

    def feed(self, stream: str, data: bytes) -> list[Item]:
        """`stream` is "stdout", "stderr" or "pty". Handles partial lines and ANSI itself."""
        ...

    def finish(self) -> list[Item]:
        """End of output: flush what is buffered."""
        ...


# --- the provider ----------------------------------------------------------------------------
def owner_key(provider: Any, provider_session_id: str, env: Mapping[str, str]) -> str:
    """The key that names `provider_session_id` of an agent run with `env` (its claim, the
    `HistorySource.owner_key` of its source): the provider's optional `owner_key(id, env)`, else the id."""
    method = getattr(provider, "owner_key", None)
    return method(provider_session_id, env) if method is not None else provider_session_id


# Optional provider methods, looked up by name: `owner_key(id, env)` (above) and `dropped_prompt(id, ctx)`
# -> str | None: the prompt of a session whose only turn failed and that the agent discarded (nothing to
# resume), which an interactive resume sends again instead of the resume message.
@runtime_checkable
class Provider(Protocol):
    name: str                    # "claude" | "codex" | "gemini" | "goose"
    executable: str              # looked up on PATH unless ZAG_<NAME>_BIN is set
    install_hint: str            # one line: how to install it

    def plan_launch(self, user_args: Sequence[str], ctx: LaunchContext) -> LaunchPlan:
        """argv for a new run: the user's args untouched, plus what zag needs to find the session
        file exactly (e.g. a chosen session id), unless the user's args already decide it."""
        ...

    def plan_resume(
        self, user_args: Sequence[str], provider_session_id: str | None, message: str, ctx: LaunchContext
    ) -> LaunchPlan:
        """argv that continues `provider_session_id` with `message`, keeping the user's other flags
        that still apply (headless when `ctx.interactive` is False). With no resumable session (e.g.
        the only turn failed), the plan re-runs the original command instead."""
        ...

    def open_live(self, plan: LaunchPlan, ctx: LaunchContext) -> LiveSession: ...

    def output_scanner(self, ctx: LaunchContext) -> OutputScanner: ...

    def discover(self, env: Mapping[str, str]) -> Iterator[HistorySource]:
        """Every session this agent has on disk (all of its homes), cheaply (stat, no parsing)."""
        ...

    def open_reader(self, source: HistorySource, cursor: Any) -> SessionReader: ...

    def unblock_keys(self, screen: str) -> bytes | None:
        """Interactive: keystrokes that close whatever the CLI opened after a limit hit (a dialog that
        would swallow the resume message), judged from the recent screen text; None if nothing."""
        ...

    def resume_keys(self, message: str) -> bytes:
        """Interactive: the keystrokes that submit `message` at the agent's prompt (may be a
        `KeySequence`: write its `chunks` with `pause` between them)."""
        ...
