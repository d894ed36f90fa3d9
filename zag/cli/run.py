"""`zag run PROVIDER [ARGS]...`: run an agent CLI under zag's supervision.

Everything after PROVIDER goes to the agent untouched (`zag run claude --help` is claude's help).
Only what this command needs is imported here; the supervisor pulls in the rest after the agent started.
"""

from __future__ import annotations

import os
import sys

import click

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
    """
    sys.exit(run_agent(provider, list(args), verbose=verbose))


def run_agent(provider_name: str, args: list[str], *, verbose: bool = False) -> int:
    """Supervise one run of the agent; returns zag's exit code."""
    try:
        return _run_agent(provider_name, args, verbose)
    except KeyboardInterrupt:  # before the supervisor took over the signals
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug in zag: one line for the user, details in zag.log
        from zag import diag, paths

        diag.exception("run_failed", provider=provider_name)
        click.echo(f"zag: internal error: {type(exc).__name__}: {exc} (details in {paths.diagnostics_log()})",
                   err=True)
        return 70


def _run_agent(provider_name: str, args: list[str], verbose: bool) -> int:
    from zag import config, providers
    from zag.wrapper.executable import MissingExecutable, find_executable

    provider = providers.get(provider_name)
    env = dict(os.environ)
    try:
        executable = find_executable(provider_name, provider.executable, provider.install_hint, env)
    except MissingExecutable as exc:
        click.echo(f"zag: {exc}", err=True)
        return 127
    settings = config.load()
    for problem in settings.problems:
        click.echo(f"zag: config: {problem}", err=True)

    from zag.wrapper.supervisor import LaunchFailed, RunRequest, Supervisor

    interactive = _is_tty(0) and _is_tty(1)
    request = RunRequest(provider_name, args, executable, interactive, verbose, env)
    try:
        return Supervisor(provider, request, settings).run()
    except LaunchFailed as exc:
        click.echo(f"zag: {exc}", err=True)
        return exc.exit_code


def _is_tty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False
