"""goose command lines: what the user's arguments ask for, and the argv zag launches or resumes with.

goose's CLI (clap; crates/goose-cli/src/cli.rs): no global options; subcommands `session` (alias `s`;
interactive, or `session list|remove|export|diagnostics`), `run` (headless: `-t/--text`,
`-i/--instructions`, `--recipe`), and others (`configure`, `info`, …) that keep no transcript. Bare
`goose` starts the default interactive session. `session` and `run` take a session identifier
(`-n/--name`, `--session-id`/`--id`, legacy `--path`; one at most), `-r/--resume` and, for `session`,
`--fork`/`--history`. `--session-id` is only accepted with `--resume`. A new session given `--name X`
is created with that name (names need not be unique); `--resume --name X` picks the most recently
used session named X (or with id X); bare `--resume` the most recently used session.

Launch: zag adds `--name zag-<id>` right after the subcommand when the user named no session and does
not resume one, so the row is found exactly. Nothing else is added. `run --no-session` keeps no
transcript (noted in the plan). Resume: `run --resume --session-id <id> -t <message>` (headless) or
`session --resume --session-id <id>` (interactive), keeping the user's other options that the target
subcommand accepts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

ZAG_NAME_PREFIX = "zag-"

VALUED = {
    "--instructions", "--text", "--recipe", "--system", "--params", "--sub-recipe", "--name",
    "--session-id", "--path", "--max-tool-repetitions", "--max-turns", "--container",
    "--with-extension", "--with-streamable-http-extension", "--with-remote-extension",
    "--with-builtin", "--output-format", "--provider", "--model", "--scheduled-job-id",
}
FLAGS = {
    "--interactive", "--no-session", "--explain", "--render-recipe", "--resume", "--quiet", "--debug",
    "--no-profile", "--no-tui", "--fork", "--history",
}
ALIASES = {"--id": "--session-id"}
SHORTS = {"i": "--instructions", "t": "--text", "n": "--name", "p": "--path", "s": "--interactive",
          "r": "--resume", "q": "--quiet"}

SESSION_SUBCOMMANDS = {"list", "remove", "export", "diagnostics", "help"}
# What a resumed run no longer takes: the old input, the old identifier, resume/fork switches.
DROP_ON_RESUME = {
    "--instructions", "--text", "--recipe", "--params", "--sub-recipe", "--explain", "--render-recipe",
    "--name", "--session-id", "--path", "--resume", "--fork", "--history", "--interactive",
    "--no-session", "--scheduled-job-id",
}
# Options `goose session` accepts (SessionOptions + ExtensionOptions); `run` accepts these and more.
SESSION_OPTIONS = {
    "--debug", "--max-tool-repetitions", "--max-turns", "--container", "--no-tui", "--with-extension",
    "--with-streamable-http-extension", "--with-remote-extension", "--with-builtin", "--no-profile",
}

KIND_RUN = "run"
KIND_SESSION = "session"
KIND_DEFAULT = "default"     # bare `goose`: the default interactive session (cannot be named)
KIND_OTHER = "other"         # configure, info, session list, …: no transcript


@dataclass
class Option:
    """One parsed option (or positional/unknown token) with the tokens it came from."""

    name: str | None           # canonical long name; None for a positional or an unknown token
    tokens: list[str]
    value: str | None = None
    unknown: bool = False


@dataclass
class Command:
    """What a goose command line asks for."""

    kind: str
    subcommand: str | None
    options: list[Option] = field(default_factory=list)

    def value(self, name: str) -> str | None:
        for option in reversed(self.options):
            if option.name == name:
                return option.value
        return None

    def has(self, name: str) -> bool:
        return any(option.name == name for option in self.options)

    @property
    def name(self) -> str | None:
        return self.value("--name")

    @property
    def session_id(self) -> str | None:
        session_id = self.value("--session-id")
        if session_id:
            return session_id
        path = self.value("--path")
        if path:
            stem = path.replace("\\", "/").rsplit("/", 1)[-1]
            return stem[:-6] if stem.endswith(".jsonl") else stem
        return None

    @property
    def resume(self) -> bool:
        return self.has("--resume")

    @property
    def records(self) -> bool:
        """Whether this command writes a session transcript."""
        return self.kind in (KIND_RUN, KIND_SESSION, KIND_DEFAULT) and not self.has("--no-session")


def parse(args: Sequence[str]) -> Command:
    """Classify a goose command line and parse its options."""
    args = list(args)
    if not args or args[0].startswith("-"):
        if any(arg in ("-h", "--help", "-V", "--version") for arg in args):
            return Command(KIND_OTHER, None, parse_options(args))
        return Command(KIND_DEFAULT, None, parse_options(args))
    subcommand, rest = args[0], args[1:]
    options = parse_options(rest)
    if subcommand == "run":
        kind = KIND_RUN
    elif subcommand in ("session", "s"):
        first = next((option for option in options if option.name is None and not option.unknown), None)
        kind = KIND_OTHER if first is not None and first.tokens[0] in SESSION_SUBCOMMANDS else KIND_SESSION
    else:
        kind = KIND_OTHER
    if any(option.name is None and option.tokens[0] in ("-h", "--help") for option in options):
        kind = KIND_OTHER
    return Command(kind, subcommand, options)


def parse_options(args: Sequence[str]) -> list[Option]:
    options: list[Option] = []
    index = 0
    while index < len(args):
        token = args[index]
        index += 1
        if token == "--":
            options.append(Option(None, list(args[index - 1:])))
            break
        if token.startswith("--"):
            flag, equals, attached = token.partition("=")
            name = ALIASES.get(flag, flag)
            if name in VALUED:
                if equals:
                    options.append(Option(name, [token], attached))
                elif index < len(args):
                    options.append(Option(name, [token, args[index]], args[index]))
                    index += 1
                else:
                    options.append(Option(name, [token], None))
            elif name in FLAGS:
                options.append(Option(name, [token]))
            else:
                options.append(Option(None, [token], unknown=True))
        elif token.startswith("-") and len(token) > 1:
            index = _short_cluster(token, args, index, options)
        else:
            options.append(Option(None, [token]))
    return options


def _short_cluster(token: str, args: Sequence[str], index: int, options: list[Option]) -> int:
    """`-r`, `-rq`, `-t text`, `-ttext`, `-t=text`, `-rt text` (clap's clustering of short options)."""
    letters = token[1:]
    parsed: list[Option] = []
    for position, letter in enumerate(letters):
        name = SHORTS.get(letter)
        if name is None:
            options.append(Option(None, [token], unknown=True))
            return index
        if name in VALUED:
            attached = letters[position + 1:]
            if attached:
                value = attached[1:] if attached.startswith("=") else attached
                parsed.append(Option(name, [f"-{letter}", value], value))
            elif index < len(args):
                parsed.append(Option(name, [f"-{letter}", args[index]], args[index]))
                index += 1
            else:
                parsed.append(Option(name, [f"-{letter}"], None))
            break
        parsed.append(Option(name, [f"-{letter}"]))
    options.extend(parsed)
    return index


def zag_session_name(zag_session_id: str) -> str:
    """The name zag gives a goose session it starts: `zag-<zag session id>` (the child also gets the id
    as ZAG_SESSION_ID; every resume of that zag session knows the name again)."""
    return ZAG_NAME_PREFIX + zag_session_id


def kept_options(command: Command, *, target: str) -> list[str]:
    """The user's option tokens that still apply to a resumed `target` ("run" or "session")."""
    tokens: list[str] = []
    after_unknown = False
    for option in command.options:
        if option.unknown:
            keep = target == KIND_RUN or command.kind == KIND_SESSION
            if keep:
                tokens.extend(option.tokens)
            after_unknown = keep
            continue
        if option.name is None:
            if after_unknown:
                tokens.extend(option.tokens)  # the value of an option zag does not know
            after_unknown = False
            continue
        after_unknown = False
        if option.name in DROP_ON_RESUME:
            continue
        if target == KIND_SESSION and option.name not in SESSION_OPTIONS:
            continue
        tokens.extend(option.tokens)
    return tokens


def text_option(message: str) -> list[str]:
    """`-t <message>`; `--text=<message>` when it starts with `-` (clap would read it as an option)."""
    return [f"--text={message}"] if message.startswith("-") else ["-t", message]
