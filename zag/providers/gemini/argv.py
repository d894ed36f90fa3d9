"""Gemini CLI's command line as zag needs to see it (yargs rules of 0.61.0, read in its bundle).

Parsing keeps every token in order, so a resume can drop exactly the options that no longer apply (the
old prompt, the session flags) and keep everything else as the user wrote it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

SUBCOMMANDS = frozenset({"mcp", "extensions", "extension", "skills", "skill", "hooks", "hook", "gemma"})
# Options that take exactly one value (`--x v` or `--x=v`); array options take one value per occurrence.
VALUE_OPTIONS = frozenset({
    "-m", "--model", "-p", "--prompt", "-i", "--prompt-interactive", "--approval-mode", "--policy",
    "--admin-policy", "--allowed-mcp-server-names", "--allowed-tools", "-e", "--extensions",
    "--include-directories", "-o", "--output-format", "--session-file", "--session-id", "--delete-session",
    "--fake-responses", "--fake-responses-non-strict", "--record-responses",
})
# String options with `skipValidation`: they take the next token only when it is not an option.
OPTIONAL_VALUE_OPTIONS = frozenset({"-r", "--resume", "-w", "--worktree"})
INFO_OPTIONS = frozenset({"-h", "--help", "-v", "--version", "-l", "--list-extensions", "--list-sessions",
                          "--delete-session"})
ACP_OPTIONS = frozenset({"--acp", "--experimental-acp"})
_ALIASES = {"-m": "--model", "-p": "--prompt", "-i": "--prompt-interactive", "-e": "--extensions",
            "-o": "--output-format", "-r": "--resume", "-w": "--worktree", "-h": "--help", "-v": "--version",
            "-l": "--list-extensions", "-y": "--yolo", "-s": "--sandbox", "-d": "--debug"}
_SHORT_WITH_VALUE = frozenset("mpieo")
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]+$")
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
RESUME_DROPS = frozenset({"--prompt", "--prompt-interactive", "--resume", "--session-id", "--session-file",
                          "--list-sessions", "--delete-session"})


@dataclass
class Option:
    name: str                 # canonical long name, e.g. "--model"
    tokens: list[str]         # exactly as the user wrote them
    value: str | None = None


@dataclass
class ParsedArgs:
    items: list[Option | str] = field(default_factory=list)   # options and positionals, in order
    after_dashdash: list[str] = field(default_factory=list)

    def options(self, name: str) -> list[Option]:
        return [item for item in self.items if isinstance(item, Option) and item.name == name]

    def value(self, name: str) -> str | None:
        found = self.options(name)
        return found[-1].value if found else None

    def has(self, *names: str) -> bool:
        return any(self.options(name) for name in names)

    @property
    def positionals(self) -> list[str]:
        return [item for item in self.items if isinstance(item, str)] + self.after_dashdash

    @property
    def subcommand(self) -> str | None:
        first = next((item for item in self.items if isinstance(item, str)), None)
        return first if first in SUBCOMMANDS else None

    @property
    def model(self) -> str | None:
        return self.value("--model")

    @property
    def output_format(self) -> str:
        return self.value("--output-format") or "text"

    @property
    def resume(self) -> str | None:
        """The `--resume` value ("" for a bare `--resume`), or None when not given."""
        found = self.options("--resume")
        return (found[-1].value or "") if found else None

    @property
    def tracks_no_session(self) -> bool:
        """A run that is not a chat: a subcommand, an info flag, ACP mode."""
        return bool(self.subcommand) or any(self.has(name) for name in INFO_OPTIONS | ACP_OPTIONS)

    def without(self, names: frozenset[str], *, positionals: bool) -> list[str]:
        """The user's tokens minus the options in `names` (and the positionals, if asked)."""
        tokens: list[str] = []
        for item in self.items:
            if isinstance(item, Option):
                if item.name not in names:
                    tokens.extend(item.tokens)
            elif not positionals:
                tokens.append(item)
        if self.after_dashdash and not positionals:
            tokens += ["--", *self.after_dashdash]
        return tokens


def canonical(flag: str) -> str:
    name = _ALIASES.get(flag, flag)
    if name.startswith("--") and any(ch.isupper() for ch in name):
        name = "--" + _CAMEL.sub("-", name[2:]).lower()   # yargs accepts camelCase aliases
    return name


def parse(args: Sequence[str]) -> ParsedArgs:
    parsed = ParsedArgs()
    tokens = list(args)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token == "--":
            parsed.after_dashdash = tokens[index + 1:]
            break
        if token.startswith("--") and len(token) > 2:
            index = _long_option(parsed, tokens, index)
        elif token.startswith("-") and len(token) > 1 and not _is_number(token):
            index = _short_options(parsed, tokens, index)
        else:
            parsed.items.append(token)
            index += 1
    return parsed


def _long_option(parsed: ParsedArgs, tokens: list[str], index: int) -> int:
    token = tokens[index]
    flag, equals, inline = token.partition("=")
    name = canonical(flag)
    if equals:
        parsed.items.append(Option(name, [token], inline))
        return index + 1
    return _take_value(parsed, name, tokens, index)


def _short_options(parsed: ParsedArgs, tokens: list[str], index: int) -> int:
    token = tokens[index]
    flag, equals, inline = token.partition("=")
    if equals:
        parsed.items.append(Option(canonical(flag[:2]), [token], inline))
        return index + 1
    if len(flag) == 2:
        return _take_value(parsed, canonical(flag), tokens, index)
    # A cluster (`-yd`, `-ym model`): each letter becomes its own option (written `-y`, `-m model`), the
    # last one may take the next token.
    letters = flag[1:]
    for letter in letters[:-1]:
        parsed.items.append(Option(canonical(f"-{letter}"), [f"-{letter}"]))
    split = [*tokens[:index], f"-{letters[-1]}", *tokens[index + 1:]]
    return _take_value(parsed, canonical(f"-{letters[-1]}"), split, index)


def _take_value(parsed: ParsedArgs, name: str, tokens: list[str], index: int) -> int:
    token = tokens[index]
    following = tokens[index + 1] if index + 1 < len(tokens) else None
    takes_value = name in {canonical(flag) for flag in VALUE_OPTIONS}
    optional = name in {canonical(flag) for flag in OPTIONAL_VALUE_OPTIONS}
    if following is not None and (takes_value or (optional and not following.startswith("-"))):
        parsed.items.append(Option(name, [token, following], following))
        return index + 2
    parsed.items.append(Option(name, [token], None))
    return index + 1


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def is_session_id(value: str | None) -> bool:
    """A concrete session id for `--resume` (not `latest`, not a list index)."""
    return bool(value) and value != "latest" and not value.isdigit() and bool(_SESSION_ID.match(value))


def prompt_args(message: str) -> list[str]:
    """`-p <message>`; `--prompt=<message>` when the message would read as an option."""
    return [f"--prompt={message}"] if message.startswith("-") else ["-p", message]
