"""Claude Code's command line: reading the user's argv and building launch / resume argv.

The option table follows `claude --help` of 2.1.197 (commander.js semantics): `<value>` options take the
next word, `[value]` options take it only if it does not start with `-`, `<values...>` options take
every following word up to the next option (so a prompt after `--allowedTools Bash Edit` would be taken
as a tool name: zag puts what it adds before the user's words and the resume message after `--`).
Short booleans may be combined (`-pc`); `--opt=value` and `-xVALUE` are understood.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

VALUE, OPTIONAL, VARIADIC, FLAG = "value", "optional", "variadic", "flag"

_OPTIONS: dict[str, str] = {
    # one value
    "--agent": VALUE, "--agents": VALUE, "--append-system-prompt": VALUE, "--append-system-prompt-file": VALUE,
    "--debug-file": VALUE, "--effort": VALUE, "--fallback-model": VALUE, "--input-format": VALUE,
    "--json-schema": VALUE, "--max-budget-usd": VALUE, "--max-turns": VALUE, "--model": VALUE, "--name": VALUE,
    "-n": VALUE, "--output-format": VALUE, "--permission-mode": VALUE, "--permission-prompt-tool": VALUE,
    "--plugin-dir": VALUE, "--plugin-url": VALUE, "--remote-control-session-name-prefix": VALUE,
    "--session-id": VALUE, "--setting-sources": VALUE, "--settings": VALUE, "--system-prompt": VALUE,
    "--system-prompt-file": VALUE, "--max-thinking-tokens": VALUE, "--resume-session-at": VALUE,
    # value only when the next word is not an option
    "--debug": OPTIONAL, "-d": OPTIONAL, "--from-pr": OPTIONAL, "--prompt-suggestions": OPTIONAL,
    "--remote-control": OPTIONAL, "--resume": OPTIONAL, "-r": OPTIONAL, "--worktree": OPTIONAL, "-w": OPTIONAL,
    # every following word up to the next option
    "--add-dir": VARIADIC, "--allowedTools": VARIADIC, "--allowed-tools": VARIADIC, "--betas": VARIADIC,
    "--disallowedTools": VARIADIC, "--disallowed-tools": VARIADIC, "--file": VARIADIC,
    "--mcp-config": VARIADIC, "--tools": VARIADIC,
}
_ALIASES = {"-n": "--name", "-d": "--debug", "-r": "--resume", "-w": "--worktree", "-c": "--continue",
            "-p": "--print", "-h": "--help", "-v": "--version", "--allowed-tools": "--allowedTools",
            "--disallowed-tools": "--disallowedTools", "--bg": "--background"}
SUBCOMMANDS = frozenset({"agents", "auth", "auto-mode", "doctor", "gateway", "install", "mcp", "plugin", "plugins",
                         "project", "setup-token", "ultrareview", "update", "upgrade", "config", "migrate-installer",
                         "remote-control"})
_SESSION_CHOOSERS = frozenset({"--resume", "--continue", "--session-id", "--fork-session", "--from-pr"})
# Dropped when resuming: they pick a session (zag names it) or feed the original prompt.
_DROP_ON_RESUME = frozenset({"--resume", "--continue", "--session-id", "--fork-session", "--from-pr", "--print",
                             "--input-format", "--replay-user-messages", "--no-session-persistence",
                             "--resume-session-at", "--background", "--worktree", "--tmux", "--help", "--version"})


@dataclass
class Option:
    name: str                 # canonical long name (aliases resolved)
    words: list[str]          # the exact words of the user's argv for this option
    values: list[str] = field(default_factory=list)


@dataclass
class ParsedArgs:
    options: list[Option]
    positionals: list[str]    # the prompt (and, first, a subcommand when there is one)
    first_positional_after_dashdash: bool = False

    def has(self, name: str) -> bool:
        return any(option.name == name for option in self.options)

    def value(self, name: str) -> str | None:
        for option in reversed(self.options):
            if option.name == name and option.values:
                return option.values[0]
        return None

    @property
    def subcommand(self) -> str | None:
        first = self.positionals[0] if self.positionals else None
        return first if first in SUBCOMMANDS and not self.first_positional_after_dashdash else None


def parse(args: Sequence[str]) -> ParsedArgs:
    """Split the user's argv into options (with their exact words) and positional words."""
    options: list[Option] = []
    positionals: list[str] = []
    words = list(args)
    index = 0
    after_dashdash = first_after_dashdash = False
    while index < len(words):
        word = words[index]
        index += 1
        if after_dashdash or word == "-" or not word.startswith("-"):
            if not positionals and after_dashdash:
                first_after_dashdash = True
            positionals.append(word)
            continue
        if word == "--":
            after_dashdash = True
            continue
        if word.startswith("--"):
            name, has_inline, inline = word.partition("=")
            kind = _OPTIONS.get(name, FLAG)
            option = Option(_ALIASES.get(name, name), [word])
            if has_inline:
                option.values.append(inline)
            elif kind in (VALUE, OPTIONAL, VARIADIC):
                index = _take_values(words, index, kind, option)
            options.append(option)
            continue
        index = _short(words, index, word, options)
    return ParsedArgs(options, positionals, first_after_dashdash)


def _short(words: list[str], index: int, word: str, options: list[Option]) -> int:
    """`-p`, `-pc` (combined booleans), `-r ID`, `-rID`, `-n name`."""
    letters = word[1:]
    for position, letter in enumerate(letters):
        flag = "-" + letter
        kind = _OPTIONS.get(flag, FLAG)
        if kind == FLAG:
            options.append(Option(_ALIASES.get(flag, flag), [flag]))
            continue
        option = Option(_ALIASES.get(flag, flag), [flag])
        rest = letters[position + 1:]
        if rest:
            option.values.append(rest)
            option.words.append(rest)
        else:
            index = _take_values(words, index, kind, option)
        options.append(option)
        return index
    return index


def _take_values(words: list[str], index: int, kind: str, option: Option) -> int:
    if kind == VALUE:
        if index < len(words):
            option.values.append(words[index])
            option.words.append(words[index])
            index += 1
        return index
    if kind == OPTIONAL:
        if index < len(words) and not words[index].startswith("-"):
            option.values.append(words[index])
            option.words.append(words[index])
            index += 1
        return index
    while index < len(words) and not words[index].startswith("-"):
        option.values.append(words[index])
        option.words.append(words[index])
        index += 1
    return index


# --- launch ----------------------------------------------------------------------------------------
@dataclass
class LaunchDecision:
    args: list[str]
    session_id: str | None
    notes: dict[str, object]
    model: str | None


def launch(user_args: Sequence[str]) -> LaunchDecision:
    """The user's argv untouched, plus `--session-id <new uuid4>` unless the argv decides the session."""
    parsed = parse(user_args)
    model = parsed.value("--model")
    notes: dict[str, object] = {}
    if parsed.subcommand is not None or parsed.has("--help") or parsed.has("--version"):
        notes["no_session"] = parsed.subcommand or "help/version"
        return LaunchDecision(list(user_args), None, notes, model)
    if parsed.has("--no-session-persistence"):
        notes["no_transcript"] = "--no-session-persistence: claude will not write a transcript"
    chosen = [name for name in _SESSION_CHOOSERS if parsed.has(name)]
    if chosen:
        notes["user_chose_session"] = sorted(chosen)
        session_id = None
        resumed = parsed.value("--resume")
        if parsed.has("--fork-session") or parsed.has("--continue") or parsed.has("--from-pr"):
            session_id = parsed.value("--session-id") if parsed.has("--fork-session") else None
        elif parsed.has("--session-id"):
            session_id = parsed.value("--session-id")
        elif resumed and _is_uuid(resumed):
            session_id = resumed
        if session_id is None:
            notes["follow_cwd"] = True  # which session only shows once it runs
        return LaunchDecision(list(user_args), session_id, notes, model)
    session_id = str(uuid.uuid4())
    notes["session_id_chosen"] = True
    return LaunchDecision(["--session-id", session_id, *user_args], session_id, notes, model)


def resume(
    user_args: Sequence[str], session_id: str, message: str, *, interactive: bool
) -> tuple[list[str], str | None]:
    """`-p --resume <id> … -- <message>` (headless) or `--resume <id> …` (interactive), keeping the
    user's other options; the original prompt and session-choosing options are dropped."""
    parsed = parse(user_args)
    kept: list[str] = []
    for option in parsed.options:
        if option.name in _DROP_ON_RESUME:
            continue
        kept.extend(option.words)
    if interactive:
        return ["--resume", session_id, *kept], parsed.value("--model")
    return ["-p", "--resume", session_id, *kept, "--", message], parsed.value("--model")


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def is_uuid(value: str) -> bool:
    return _is_uuid(value)


def start_offsets(paths: Sequence[Path]) -> dict[str, int]:
    """Current sizes of transcripts that the next child may append to (read from there on)."""
    sizes = {}
    for path in paths:
        try:
            sizes[str(path)] = path.stat().st_size
        except OSError:
            continue
    return sizes
