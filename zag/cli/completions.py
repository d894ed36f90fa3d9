"""`zag completions bash|zsh|fish`, and the completion of live session ids for SESSION arguments.

The scripts are click's: at TAB time the shell runs `zag` with `_ZAG_COMPLETE` set, and zag answers
with commands, options, choices (provider names, shells, event types) and, for SESSION arguments, the
ids of live sessions read from the index at that moment. The generated scripts are also committed
under `completions/` (a test fails when they are stale).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
import click.shell_completion

from zag import states

SHELLS = ("bash", "zsh", "fish")
COMPLETION_LIMIT = 100  # session ids offered at most (the newest), where any old session may be named
PROG_NAME = "zag"
COMPLETE_VAR = "_ZAG_COMPLETE"
LOCK_WAIT_SECS = 0.5  # at most this long for an index another zag holds locked; then nothing is offered

_HELP = """Print a shell completion script for zag.

Completion offers commands, options, agent names, event types and session ids: live sessions for
`zag listen`, the newest 100 sessions for `zag events`, the newest 100 dead or exited ones for
`zag resume`, dead ones for `zag dismiss`, scheduled incidents for `zag usage cancel`; after
`zag run PROVIDER`, file names.

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
    if shell == "fish":
        script = _whole_help(script)
    return script if script.endswith("\n") else script + "\n"


def _whole_help(fish_script: str) -> str:
    """click's fish script splits "plain,value<TAB>help" at every comma: a help text with one was cut."""
    return fish_script.replace('(string split "," $completion)', '(string split -m 1 "," $completion)')


class FishComplete(click.shell_completion.FishComplete):
    """click's own `_ZAG_COMPLETE=fish_source zag` (as click's docs show) prints the fixed script too."""

    def source(self) -> str:
        return _whole_help(super().source())


click.shell_completion.add_completion_class(FishComplete)


def session_completer(*wanted: str, limit: int | None = None, takeover: bool = False) -> Callable[
        [click.Context, click.Parameter, str], list[Any]]:
    """A `shell_complete` callback offering the ids of sessions whose effective state is in `wanted`
    (e.g. `session_completer("dead")`), newest first, at most `limit`; `takeover` (for `zag resume`)
    leaves out a dead one whose supervisor still runs (stopped: resume refuses it). It runs at TAB
    time: it never creates the index and never fails loudly."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        try:
            from zag.cli.render import home_path, one_line

            rows = _sessions_in(frozenset(wanted), incomplete.strip().lower(), limit, takeover)
            # one line, nothing a terminal obeys: zsh reads the answer line by line (a folder name with a
            # newline cost the other sessions their place), and the shells print the help as it is
            return [CompletionItem(row["session_id"],
                                   help=one_line(f"{row['provider']} {row['state']} {home_path(row.get('cwd'))}"))
                    for row in rows]
        except Exception:  # completion must never print a traceback into the user's prompt
            return []

    return complete


def _sessions_in(wanted: frozenset[str], prefix: str, limit: int | None, takeover: bool) -> list[dict[str, Any]]:
    """The newest sessions whose id starts with `prefix` and whose effective state is in `wanted`, at most
    `limit`: read from the index newest first until there are enough, not the whole index (a TAB with
    100,000 sessions in it)."""
    from zag import paths

    if not paths.index_db().exists():
        return []
    from zag.logs.index import Index
    from zag.wrapper.liveness import effective_state, silent_but_running

    # only sessions stored as running/waiting can be running, waiting or dead
    stored = states.LIVE_STATES if wanted <= {*states.LIVE_STATES, states.DEAD} else None
    found = []
    with Index(timeout=LOCK_WAIT_SECS) as index:  # a TAB that waits out a locked index hangs the prompt
        for row in index.iter_sessions(states_in=stored, prefix=prefix):
            row["state"] = effective_state(row)
            if row["state"] not in wanted or (takeover and row["state"] == states.DEAD and silent_but_running(row)):
                continue
            found.append(row)
            if limit and len(found) >= limit:
                break
    return found


def complete_open_incidents(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """`zag usage cancel <TAB>`: the incidents whose resume is still scheduled (the only ones it cancels),
    with their session and resume time; like the session completers, quietly nothing on any trouble."""
    from click.shell_completion import CompletionItem

    try:
        from zag import paths

        if not paths.index_db().exists():
            return []
        from zag.cli.render import local_time
        from zag.logs.index import Index

        prefix = incomplete.strip().lower()
        with Index(timeout=LOCK_WAIT_SECS) as index:
            rows = index.list_resumes(open_only=True)
        return [CompletionItem(row["incident_id"], help=f"{row.get('provider')} session "
                               f"{str(row.get('session_id'))[:8]} resume at {local_time(row.get('resume_at'))}")
                for row in rows if str(row.get("incident_id", "")).startswith(prefix)]
    except Exception:  # completion must never print a traceback into the user's prompt
        return []


# `zag listen` offers the sessions one would listen to; `zag events` also those that ended (overnight
# runs are looked at in the morning), the newest first.
complete_live_sessions = session_completer("running", "waiting")
complete_recent_sessions = session_completer(*states.ALL_STATES, limit=COMPLETION_LIMIT)
