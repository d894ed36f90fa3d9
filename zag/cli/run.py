"""`zag run PROVIDER [ARGS]...`: run an agent CLI under zag's supervision.

Everything after PROVIDER goes to the agent untouched (`zag run claude --help` is claude's help).
The command's body is `runner.run_agent`, which `zag.cli.main` calls without click for a plain
`zag run PROVIDER ...`; this module is click's view of the same command (help, errors, completion).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from zag.cli.runner import run_agent
from zag.providers import NAMES

EXAMPLE = """\b
Examples:
  zag run claude
  zag run claude -p "fix the failing test" --model opus
  zag run --verbose codex exec "summarise this repo"
"""


def _complete_agent_args(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """After PROVIDER everything is the agent's: the shell completes file names, as for the agent itself."""
    from click.shell_completion import CompletionItem

    return [CompletionItem(incomplete, type="file")]


class _RunCommand(click.Command):
    """`zag run`: zag's options are offered only before PROVIDER (after it, `-v` or `--help` is the
    agent's), as click would offer them at any position."""

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        if ctx.params.get("provider"):
            return _complete_agent_args(ctx, self.params[-1], incomplete)
        return super().shell_complete(ctx, incomplete)


@click.command(
    cls=_RunCommand,
    context_settings={
        "ignore_unknown_options": True,
        "allow_interspersed_args": False,
        "help_option_names": ["-h", "--help"],
    },
    epilog=EXAMPLE,
)
@click.option("-v", "--verbose", is_flag=True, help="Print the session id and log path to stderr.")
@click.argument("provider", type=click.Choice(NAMES), metavar="PROVIDER")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="[ARGS]...", shell_complete=_complete_agent_args)
def run(verbose: bool, provider: str, args: tuple[str, ...]) -> None:
    """Run PROVIDER (claude, codex, gemini, goose) with ARGS, as if zag were not there.

    The agent gets the terminal (a PTY when stdin and stdout are terminals, pipes otherwise), zag
    writes its unified session log and index entry, and exits with the agent's exit code.
    The executable comes from ZAG_<PROVIDER>_BIN, else PATH.

    ARGS are passed as given. To find the agent's own session file, zag may add the one option that
    names the session, when ARGS do not already name it (the README lists it per agent). After a usage
    limit, zag runs the agent again with its own resume options.
    """
    sys.exit(run_agent(provider, list(args), verbose=verbose))
