"""The `zag` command line: a click group (`app.py`) whose subcommands are imported only when used.

Each command group lives in its own module and stays thin: parse, call into `logs/`, `wrapper/` or
`providers/`, render. Keeping imports lazy keeps `zag ps` and `zag run` start-up fast; a plain
`zag run PROVIDER ...` does not even import click (`runner.py`): the agent starts ~50 ms sooner; nor do
`zag ps [--all] --json` and `zag sessions --json` (`listing.py`), which scripts poll.
"""

from __future__ import annotations

import os
import sys
from typing import Any

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
    "dismiss": ("zag.cli.dismiss", "dismiss", "Dismiss dead sessions you will not resume."),
    "reindex": ("zag.cli.reindex", "reindex", "Rebuild the index from the session logs."),
    "completions": ("zag.cli.completions", "completions", "Print a shell completion script."),
}


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point. Ctrl-C while zag starts (importing click alone takes ~50 ms) exits 130
    without a traceback, as it does once a command runs."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except OSError as exc:  # the output could not be written (click's help, completions): a full disk
        from zag.cli.errors import output_failed

        output_failed(exc)


def _main(argv: list[str] | None) -> Any:
    ensure_standard_fds()
    from zag.cli.runner import leave, parse_run, run_agent

    args = list(sys.argv[1:] if argv is None else argv)
    run = parse_run(args)
    if run is not None:  # as click would run it, minus importing click
        provider, agent_args, verbose = run
        code = run_agent(provider, agent_args, verbose=verbose)
        if argv is None:  # the process is this run: leave without the interpreter's teardown
            leave(code)
        sys.exit(code)
    tolerate_narrow_encodings()
    from zag.cli.listing import parse_listing, print_listing

    listing = parse_listing(args)
    if listing is not None:
        code = print_listing(*listing)
        if code is not None:
            sys.exit(code)
    from zag.cli.app import cli

    return cli.main(args=argv, prog_name="zag")


def ensure_standard_fds() -> None:
    """Give a closed stdin, stdout or stderr (`zag run claude >&-`) /dev/null. Otherwise the next file zag
    opens (a session log, the index) takes that number, and what is meant for the terminal (the agent's
    output, a message) is written into it."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def tolerate_narrow_encodings() -> None:
    """What stdout or stderr cannot encode (PYTHONIOENCODING=ascii or latin-1, a non-UTF-8 locale with
    PYTHONUTF8=0) is written as `\\u20ac` escapes: a folder named `café €` in a table or event was a
    UnicodeEncodeError traceback."""
    import codecs

    for stream in (sys.stdout, sys.stderr):
        try:
            utf8 = codecs.lookup(stream.encoding).name == "utf-8"
        except (AttributeError, LookupError, TypeError):
            continue
        if (stream.errors == "strict" or not utf8) and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (OSError, ValueError):
                pass


def __getattr__(name: str) -> Any:
    """`cli` and `LazyGroup` live in `app.py` (importing click); reached through here as before."""
    if name in ("cli", "LazyGroup"):
        from zag.cli import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
