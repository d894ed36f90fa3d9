"""`zag run PROVIDER [ARGS]...`: run an agent CLI under zag's supervision.

Everything after PROVIDER goes to the agent untouched (`zag run claude --help` is claude's help).
The command's body is `runner.run_agent`, which `zag.cli.main` calls without click for a plain
`zag run PROVIDER ...`; this module is click's view of the same command (help, errors, completion).
"""

from __future__ import annotations

import sys

import click

from zag.cli.runner import run_agent
from zag.providers import NAMES

EXAMPLE = """\b
Examples:
  zag run claude
  zag run claude -p "fix the failing test" --model opus
  zag run --verbose codex exec "summarise this repo"
"""


@click.command(
    context_settings={
        "ignore_unknown_options": True,
        "allow_interspersed_args": False,
        "help_option_names": ["-h", "--help"],
    },
    epilog=EXAMPLE,
)
@click.option("-v", "--verbose", is_flag=True, help="Print the session id and log path to stderr.")
@click.argument("provider", type=click.Choice(NAMES), metavar="PROVIDER")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="[ARGS]...")
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
