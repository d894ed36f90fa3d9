"""The click group of `zag` (see the package docstring): `cli`, the subcommands from `COMMANDS`."""

from __future__ import annotations

import importlib
from typing import Any

import click

from zag import __version__
from zag.cli import COMMANDS
from zag.cli import completions as _completions  # noqa: F401 - its fish script for `_ZAG_COMPLETE=fish_source`


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
    epilog="\b\nExamples:\n  zag run claude -p \"fix the failing test\"\n  zag ps",
)
@click.version_option(__version__, "-V", "--version", prog_name="zag")
def cli() -> None:
    """zag supervises AI coding-agent CLIs (claude, codex, gemini, goose): it passes the terminal
    through untouched, keeps a unified log and index of every session, and resumes an agent by
    itself after a usage limit resets."""
