"""Codex command lines: what the user ran, and how to resume the same thread with it.

`codex [top options] [PROMPT]` is the TUI; `codex [top options] exec [exec options] [PROMPT]` the
headless run; `exec resume <id> [PROMPT]`, `resume <id>` and `fork <id>` continue threads.

Resume, headless: `codex [top] exec [exec options] resume <id> <message>`. Every exec-level option goes
*before* `resume` — verified on codex 0.169: `exec -C d --sandbox s --color never --add-dir d -p x resume …`
parses, while `-C`, `--sandbox`, `--color` after `resume` are rejected (exit 2). The original prompt, image
attachments (`-i`, they belonged to the first prompt) and `--last`/`--all` are dropped. Interactive:
`codex [top options] resume <id>` (the message is typed into the TUI afterwards); options the `resume`
subcommand does not take (`--json`, `-o`, `--skip-git-repo-check` …) are dropped. zag never adds
`--ephemeral`; if the user passed it there is no rollout to resume, so the original command runs again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

# Options that take a value (long and short spellings), across `codex`, `exec`, `resume`, `fork`.
VALUE_OPTIONS = frozenset({
    "-c", "--config", "--enable", "--disable", "-i", "--image", "-m", "--model", "--local-provider",
    "-p", "--profile", "-s", "--sandbox", "-C", "--cd", "--add-dir", "-a", "--ask-for-approval",
    "--thread-source", "--cyber-access-program", "--output-schema", "--color", "-o",
    "--output-last-message", "--remote", "--remote-auth-token-env",
})
# Options `codex resume` (interactive) accepts; the rest of exec's are dropped for an interactive resume.
RESUME_OPTIONS = frozenset({
    "-c", "--config", "--enable", "--disable", "--strict-config", "-m", "--model", "--oss",
    "--local-provider", "-p", "--profile", "-s", "--sandbox", "--approve-for-me",
    "--dangerously-bypass-approvals-and-sandbox", "--dangerously-bypass-hook-trust", "-C", "--cd",
    "--worktree", "--add-dir", "-a", "--ask-for-approval", "--search", "--no-alt-screen", "--no-daemon",
    "--remote", "--remote-auth-token-env", "--include-non-interactive",
})
# Options `codex exec` accepts (codex 0.169 `exec --help`), and top-level-only ones of the TUI.
EXEC_OPTIONS = frozenset({
    "-c", "--config", "--enable", "--disable", "--strict-config", "-i", "--image", "-m", "--model", "--oss",
    "--local-provider", "-p", "--profile", "-s", "--sandbox", "--approve-for-me",
    "--dangerously-bypass-approvals-and-sandbox", "--dangerously-bypass-hook-trust", "-C", "--cd",
    "--worktree", "--add-dir", "--thread-source", "--cyber-access-program", "--skip-git-repo-check",
    "--trust", "--ephemeral", "--ignore-user-config", "--ignore-rules", "--output-schema", "--color",
    "--json", "--experimental-json", "-o", "--output-last-message",
})
TOP_ONLY_OPTIONS = frozenset({
    "-a", "--ask-for-approval", "--search", "--no-alt-screen", "--no-daemon", "--remote",
    "--remote-auth-token-env",
})
DROP_ON_RESUME = frozenset({"-i", "--image", "--last", "--all"})
SESSION_COMMANDS = frozenset({"exec", "e", "resume", "fork", "review"})
EXEC_SUBCOMMANDS = frozenset({"resume", "fork", "review"})


@dataclass
class Parsed:
    """A codex command line split into its parts (each option kept with its value)."""

    top: list[list[str]] = field(default_factory=list)       # options before any subcommand
    command: str | None = None                                # exec | resume | fork | review | other | None
    options: list[list[str]] = field(default_factory=list)    # options of `command`
    subcommand: str | None = None                             # exec's resume/fork/review
    sub_options: list[list[str]] = field(default_factory=list)
    positionals: list[str] = field(default_factory=list)      # prompt / session id, last level
    rest: list[str] = field(default_factory=list)             # an unknown subcommand's own args

    @property
    def headless(self) -> bool:
        return self.command in ("exec", "e", "review")

    def all_options(self) -> list[list[str]]:
        return self.top + self.options + self.sub_options

    def has(self, *names: str) -> bool:
        return any(_name(option[0]) in names for option in self.all_options())


def parse(args: Sequence[str]) -> Parsed:
    parsed = Parsed()
    level = parsed.top
    index = 0
    args = list(args)
    while index < len(args):
        token = args[index]
        if token == "--":
            parsed.positionals.extend(args[index + 1:])
            break
        if token.startswith("-") and token != "-":
            if "=" not in token and _name(token) in VALUE_OPTIONS and index + 1 < len(args):
                level.append([token, args[index + 1]])
                index += 2
                continue
            level.append([token])
            index += 1
            continue
        if parsed.command is None and not parsed.positionals:
            if token in SESSION_COMMANDS:
                parsed.command = token
                level = parsed.options
                index += 1
                continue
            if _looks_like_command(token):
                parsed.command = "other"
                parsed.rest = args[index:]
                break
        elif parsed.command in ("exec", "e") and parsed.subcommand is None and not parsed.positionals \
                and token in EXEC_SUBCOMMANDS:
            parsed.subcommand = token
            level = parsed.sub_options
            index += 1
            continue
        parsed.positionals.append(token)
        index += 1
    return parsed


def model_of(args: Sequence[str]) -> str | None:
    """The model the user asked for: `-m/--model X`, `--model=X` or `-c model=X` (last one wins)."""
    model = None
    for option in parse(args).all_options():
        name = _name(option[0])
        value = option[0].split("=", 1)[1] if "=" in option[0] and option[0].startswith("--") else (
            option[1] if len(option) > 1 else None)
        if value is None:
            continue
        if name in ("-m", "--model"):
            model = value
        elif name in ("-c", "--config") and value.replace(" ", "").startswith("model="):
            model = value.split("=", 1)[1].strip().strip("'\"") or model
    return model


def resume_id_of(parsed: Parsed) -> str | None:
    """The thread a `resume` command line names (`exec resume <id>`, `resume <id>`), if any."""
    if parsed.command == "resume" or (parsed.command in ("exec", "e") and parsed.subcommand == "resume"):
        if parsed.positionals and not parsed.has("--last"):
            return parsed.positionals[0]
    return None


def headless_resume(args: Sequence[str], session_id: str, message: str) -> list[str]:
    parsed = parse(args)
    top = list(parsed.top)
    exec_options = parsed.options + parsed.sub_options if parsed.command in ("exec", "e") else []
    if parsed.command in ("resume", "fork"):  # an interactive resume/fork re-planned headless
        exec_options = [o for o in parsed.options if _name(o[0]) in EXEC_OPTIONS]
        top += [o for o in parsed.options if _name(o[0]) in TOP_ONLY_OPTIONS]
    argv = _flatten(_without(top, DROP_ON_RESUME)) + ["exec"] + _flatten(_without(exec_options, DROP_ON_RESUME))
    argv.append("resume")
    if message.startswith("-") or session_id.startswith("-"):
        argv.append("--")
    return argv + [session_id, message]


def interactive_resume(args: Sequence[str], session_id: str) -> list[str]:
    parsed = parse(args)
    level_options = parsed.options + parsed.sub_options
    kept = [o for o in level_options if _name(o[0]) in RESUME_OPTIONS]
    argv = _flatten(_without(parsed.top, DROP_ON_RESUME)) + ["resume"] + _flatten(_without(kept, DROP_ON_RESUME))
    if session_id.startswith("-"):
        argv.append("--")
    return argv + [session_id]


def _without(options: list[list[str]], names: frozenset[str]) -> list[list[str]]:
    return [option for option in options if _name(option[0]) not in names]


def _flatten(options: list[list[str]]) -> list[str]:
    return [part for option in options for part in option]


def _name(token: str) -> str:
    return token.split("=", 1)[0] if token.startswith("--") else token


def _looks_like_command(token: str) -> bool:
    """Other codex subcommands (login, mcp, apply, …): a bare lower-case word, not a prompt."""
    return token in {
        "agents", "review", "login", "logout", "mcp", "plugin", "app-server", "remote-control", "completion",
        "update", "doctor", "sandbox", "debug", "apply", "a", "queue", "archive", "delete", "migrate-rollouts",
        "migrate-nfs-db", "unarchive", "cloud", "exec-server", "features", "help", "mcp-server",
    }
