"""`zag completions bash|zsh|fish`, and the completion of live session ids for SESSION arguments.

The scripts are click's: at TAB time the shell runs `zag` with `_ZAG_COMPLETE` set, and zag answers
with commands, options, choices (provider names, shells, event types) and, for SESSION arguments, the
ids of live sessions read from the index at that moment. The generated scripts are also committed
under `completions/` (a test fails when they are stale).
"""

from __future__ import annotations

from typing import Any

import click

SHELLS = ("bash", "zsh", "fish")
PROG_NAME = "zag"
COMPLETE_VAR = "_ZAG_COMPLETE"

_HELP = """Print a shell completion script for zag.

Completion offers commands, options, agent names and the ids of live sessions.

\b
Example:
  eval "$(zag completions bash)"                          # in ~/.bashrc
  zag completions zsh > "${fpath[1]}/_zag"                # then restart zsh
  zag completions fish > ~/.config/fish/completions/zag.fish
"""


@click.command("completions", help=_HELP, short_help="Print a shell completion script.")
@click.argument("shell", type=click.Choice(SHELLS))
def completions(shell: str) -> None:
    click.echo(completion_script(shell), nl=False)


def completion_script(shell: str) -> str:
    """The completion script for `shell` (what `completions/zag.<shell>` holds)."""
    from click.shell_completion import get_completion_class

    from zag.cli import cli

    completer_class = get_completion_class(shell)
    if completer_class is None:
        raise click.UsageError(f"unsupported shell {shell!r}")
    completer = completer_class(cli, {}, PROG_NAME, COMPLETE_VAR)
    # the template itself: BashComplete.source() would also probe the local bash version
    script = completer_class.source_template % completer.source_vars()
    return script if script.endswith("\n") else script + "\n"


def complete_live_sessions(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Ids of live sessions (running or waiting, supervisor alive) starting with `incomplete`.

    Runs at TAB time: it never creates the index and never fails loudly.
    """
    from click.shell_completion import CompletionItem

    try:
        rows = _live_sessions()
    except Exception:  # completion must never print a traceback into the user's prompt
        return []
    prefix = incomplete.strip().lower()
    items = []
    for row in rows:
        if row["session_id"].startswith(prefix):
            from zag.cli.render import home_path

            described = f"{row['provider']} {row['state']} {home_path(row.get('cwd'))}"
            items.append(CompletionItem(row["session_id"], help=described))
    return items


def _live_sessions() -> list[dict[str, Any]]:
    from zag import paths, states

    if not paths.index_db().exists():
        return []
    from zag.logs.index import Index
    from zag.wrapper.liveness import effective_state

    with Index() as index:
        rows = index.list_sessions(states_in=states.LIVE_STATES)
    live = []
    for row in rows:
        row["state"] = effective_state(row)
        if row["state"] in states.LIVE_STATES:
            live.append(row)
    return live
