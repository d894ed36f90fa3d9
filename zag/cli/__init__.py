"""The `zag` command line: a click group whose subcommands are imported only when used.

Each command group lives in its own module and stays thin: parse, call into `logs/`, `wrapper/` or
`providers/`, render. Keeping imports lazy keeps `zag ps` and `zag run` start-up fast.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from zag import __version__

# name -> (module, attribute, one-line help shown by `zag --help` without importing the module)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("zag.cli.run", "run", "Run an agent CLI under zag (arguments after PROVIDER pass through)."),
    "ps": ("zag.cli.ps", "ps", "Show supervised sessions and their state."),
    "listen": ("zag.cli.listen", "listen", "Print a session's events as they are written."),
    "sessions": ("zag.cli.sessions", "sessions", "List sessions in the index, newest first."),
    "events": ("zag.cli.sessions", "events_command", "Print one session's events."),
    "backfill": ("zag.cli.backfill", "backfill", "Import the history agents wrote on disk."),
    "usage": ("zag.cli.usage", "usage", "Scheduled resumes after usage limits: list, cancel."),
    "resume": ("zag.cli.resume", "resume", "Resume a session whose supervisor is gone."),
    "reindex": ("zag.cli.reindex", "reindex", "Rebuild the index from the session logs."),
    "completions": ("zag.cli.completions", "completions", "Print a shell completion script."),
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand is needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module = importlib.import_module(spec[0])
        return getattr(module, spec[1])

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        """Subcommand names (with their help) from `COMMANDS`, without importing any command module,
        then the group's own options."""
        from click.shell_completion import CompletionItem

        items = [
            CompletionItem(name, help=help_text)
            for name, (_, _, help_text) in COMMANDS.items()
            if name.startswith(incomplete)
        ]
        items.extend(click.Command.shell_complete(self, ctx, incomplete))
        return items

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_text) for name, (_, _, help_text) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Example:\n\n  zag run claude -p \"fix the failing test\"\n\n  zag ps",
)
@click.version_option(__version__, "-V", "--version", prog_name="zag")
def cli() -> None:
    """zag supervises AI coding-agent CLIs (claude, codex, gemini, goose): it passes the terminal
    through untouched, keeps a unified log and index of every session, and resumes an agent by
    itself after a usage limit resets."""


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point."""
    return cli.main(args=argv, prog_name="zag")
