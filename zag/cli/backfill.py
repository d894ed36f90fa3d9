"""`zag backfill [--provider P] [--json]`: import the history the agents wrote on disk.

Thin: picks the providers, hands them to `zag.logs.backfill.run_backfill`, draws a progress bar on
stderr when stderr is a terminal, and prints the summary (text, or one JSON document with `--json`).
Exit 0 when every session found was imported, even with warnings about records in them; 1 when a session
was not imported (a file zag may not read, a folder or database it cannot list, zag's logs or index
that could not be written: what was imported is kept, a second run imports the rest); 2 for a bad
`--provider` (click's usage error); 128+N when stopped by signal N (Ctrl-C, SIGTERM, SIGHUP: what was
imported is kept).
"""

from __future__ import annotations

import json
import signal
import sqlite3
import sys
import time
from typing import TYPE_CHECKING, TextIO

import click

from zag.providers import NAMES

if TYPE_CHECKING:
    from zag.logs.backfill import ProviderSummary


class TerminalProgress:
    """A one-line progress bar, redrawn in place at most ten times a second."""

    WIDTH = 30

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.provider = ""
        self.total_sources = self.total_bytes = 0
        self.done_sources = self.done_bytes = 0
        self.last_draw = 0.0

    def start(self, provider: str, sources: int, total_bytes: int) -> None:
        self.provider = provider
        self.total_sources, self.total_bytes = sources, total_bytes
        self.done_sources = self.done_bytes = 0
        self._draw(force=True)

    def advance(self, sources: int, nbytes: int) -> None:
        self.done_sources += sources
        self.done_bytes += nbytes
        self._draw(force=self.done_sources >= self.total_sources)

    def finish(self) -> None:
        self._draw(force=True)
        self.stream.write("\r\033[K")
        self.stream.flush()

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_draw < 0.1:
            return
        self.last_draw = now
        if self.total_bytes:
            fraction = min(1.0, self.done_bytes / self.total_bytes)
        else:
            fraction = self.done_sources / self.total_sources if self.total_sources else 1.0
        filled = int(fraction * self.WIDTH)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.stream.write(
            f"\r\033[K{self.provider:<7} [{bar}] {fraction * 100:3.0f}%  "
            f"{self.done_sources}/{self.total_sources} sessions  {_size(self.done_bytes)}"
        )
        self.stream.flush()


def progress_for(stream: TextIO) -> TerminalProgress | None:
    """A progress bar on `stream` if it is a terminal, else None (no bar in pipes, files, CI logs)."""
    try:
        return TerminalProgress(stream) if stream.isatty() else None
    except (AttributeError, ValueError, OSError):
        return None


@click.command(
    epilog="\b\nExamples:\n  zag backfill\n  zag backfill --provider claude --json",
)
@click.option("--provider", "provider_name", type=click.Choice(NAMES), help="Import only this agent's history.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document: a summary per provider.")
def backfill(provider_name: str | None, as_json: bool) -> None:
    """Import the sessions the agents wrote on disk into zag's logs and index.

    Safe to run again: unchanged sessions are skipped without being read, a session that grew gets
    only its new events, and a session zag supervised live is continued, not imported twice.

    Exits 1 when a session was not imported (each is named in a warning, with the reason): what was
    imported is kept, and running it again imports the rest.
    """
    from zag import config, providers
    from zag.logs.backfill import BackfillBusy, interrupt_on_signals, run_backfill, summaries_document

    for problem in config.load().problems:  # e.g. a redaction pattern that is not a regex: said, not skipped
        click.echo(f"zag: config: {problem}", err=True)
    chosen = [providers.get(provider_name)] if provider_name else providers.all_providers()
    progress = progress_for(sys.stderr)
    try:
        with interrupt_on_signals():
            summaries = run_backfill(chosen, progress=progress, note=lambda text: _note(text, progress))
    except BackfillBusy as exc:
        click.echo(f"zag: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt as exc:   # Ctrl-C, or SIGTERM/SIGHUP (BackfillInterrupted)
        _clear(progress)
        click.echo("zag: backfill interrupted; what was imported is kept, run it again to continue", err=True)
        sys.exit(128 + getattr(exc, "signum", signal.SIGINT))
    except (OSError, sqlite3.Error) as exc:  # the index or zag's home: unusable right now
        from zag import paths
        from zag.cli.errors import disk_full, index_trouble, os_trouble
        from zag.logs.index import is_damaged

        _clear(progress)
        full = None if isinstance(exc, paths.NoHome) else disk_full(paths.home())
        damaged = isinstance(exc, sqlite3.Error) and is_damaged(exc)
        what: object = exc
        if damaged:  # say what to do about it
            what = index_trouble(exc)
        elif isinstance(exc, (FileExistsError, NotADirectoryError, paths.NoHome)):  # a file where a folder
            what = os_trouble(exc)  # should be, or no folder at all
        click.echo(f"zag: backfill stopped: {what}; {f'{full}, ' if full else ''}what was imported is kept",
                   err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(summaries_document(summaries), indent=2))
    else:
        _print_summaries(summaries)
    not_written = sum(summary.not_written for summary in summaries)
    if not_written:
        click.echo(f"zag: {not_written} sessions were not imported: their logs could not be written (see the "
                   "warnings); free some space and run `zag backfill` again, what was imported is kept", err=True)
    missed = _missed(summaries)
    if missed:
        click.echo(f"zag: {missed} (see the warnings: each names the file or folder and why); what was "
                   "imported is kept, `zag backfill` tries them again", err=True)
    if not_written or missed:
        sys.exit(1)


def _missed(summaries: list[ProviderSummary]) -> str:
    """What was not imported for another reason than a full disk, in words ('' when nothing)."""
    failed = sum(summary.failed for summary in summaries)
    unlisted = sum(summary.unlisted for summary in summaries)
    parts = [f"{failed} sessions could not be imported"] if failed else []
    if unlisted:
        parts.append(f"{unlisted} folders or databases could not be read")
    return " and ".join(parts)


def _print_summaries(summaries: list[ProviderSummary]) -> None:
    for summary in summaries:
        click.echo(
            f"{summary.provider}: {summary.sessions_seen} sessions seen, {summary.imported} imported, "
            f"{summary.updated} updated, {summary.unchanged} unchanged"
            + (f", {summary.live} running under zag (left to it)" if summary.live else "")
            + f"; {summary.events} events, {summary.warnings} warnings, "
            f"{_size(summary.bytes)} read in {summary.seconds:.2f} s"
        )
        for message in summary.warning_messages:
            click.echo(f"  warning: {message}")
        hidden = summary.warnings - len(summary.warning_messages)
        if hidden > 0:
            click.echo(f"  … and {hidden} more warnings (see zag's diagnostics log)")


def _note(text: str, progress: TerminalProgress | None) -> None:
    _clear(progress)
    click.echo(f"zag: {text}", err=True)


def _clear(progress: TerminalProgress | None) -> None:
    if progress is not None:
        progress.finish()


def _size(nbytes: int) -> str:
    if nbytes >= 1024 * 1024 * 1024:
        return f"{nbytes / (1024 ** 3):.2f} GB"
    if nbytes >= 1024 * 1024:
        return f"{nbytes / (1024 ** 2):.1f} MB"
    if nbytes >= 1024:
        return f"{nbytes / 1024:.1f} KB"
    return f"{nbytes} B"
