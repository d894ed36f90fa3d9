"""Signals sent to zag, handed to the supervisor from one dedicated thread.

The forwarded signals are blocked in every zag thread and collected with `sigwaitinfo`, because the
supervisor must know *who* sent a signal: a Ctrl-C typed at a terminal is delivered by the kernel to the
whole foreground process group (zag and, in a headless run, the agent beside it), while `kill -INT <zag>`
reaches zag alone. `si_code == SI_KERNEL` tells the two apart, so the agent gets every signal exactly once.
anyio's signal receiver cannot report the sender, hence this thread.

Where `sigwaitinfo` does not exist (macOS), ordinary handlers are installed instead and a signal counts as
"from the terminal" when zag's process group owns its controlling terminal.

A SIGHUP that zag inherited ignored (`nohup`) stays ignored: the agent inherits it ignored too, as it would
without zag, and lives on after a hang-up, so zag must not take it for a request to stop (a blocked signal is
queued even when ignored, so sigwaitinfo would see it). SIGINT and SIGQUIT, which a non-interactive shell's `&`
leaves ignored, are still forwarded: `kill -INT <zag>` reaches an agent that installed its own handler.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable

from zag.wrapper import threads

SI_KERNEL = 0x80  # Linux: sent by the kernel itself (tty line discipline, hangup)

FORWARDED = tuple(
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
    if hasattr(signal, name)
)
HANDLED = (*FORWARDED, signal.SIGWINCH, signal.SIGCONT)  # blocked SIGCONT still continues zag

# handler(signum, from_terminal): called in the signal thread; must not block for long.
SignalHandler = Callable[[int, bool], None]


class SignalListener:
    """Blocks `HANDLED` (less a SIGHUP inherited ignored: `handled`) in the calling thread (start it before
    any other thread) and dispatches them."""

    def __init__(self, handler: SignalHandler) -> None:
        self._handler = handler
        self.handled = tuple(signum for signum in HANDLED if not _inherited_ignored(signum))
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._previous_handlers: dict[int, object] = {}
        self._blocked = False
        self.original_mask: set[int] = set()

    def block(self) -> None:
        """Block `HANDLED` in the calling thread only (no thread yet): signals wait, pending, until
        `start`. Lets zag do what needs a single thread (forking its watchdog) after spawning the agent.
        Without `sigwaitinfo` this is `start` (handlers, no thread)."""
        if not hasattr(signal, "sigwaitinfo"):
            self.start()
        elif not self._blocked:
            self.original_mask = set(signal.pthread_sigmask(signal.SIG_BLOCK, self.handled))
            self._blocked = True

    def start(self) -> None:
        """Block `HANDLED` (if `block` did not) and dispatch them from now on (idempotent)."""
        if hasattr(signal, "sigwaitinfo"):
            self.block()
            if self._thread is None:
                self._thread = threading.Thread(target=self._wait_loop, name="zag-signals", daemon=True)
                if not threads.start(self._thread):  # no thread to take them: handlers, as without sigwaitinfo
                    self._thread = None
                    self._install_handlers()  # before unblocking: what is pending goes to them
                    signal.pthread_sigmask(signal.SIG_SETMASK, self.original_mask)
                    self._blocked = False
        elif not self._previous_handlers:
            self.original_mask = set(signal.pthread_sigmask(signal.SIG_BLOCK, []))
            self._install_handlers()

    def _install_handlers(self) -> None:
        for signum in self.handled:
            self._previous_handlers[signum] = signal.signal(signum, self._on_handler_signal)

    def stop(self) -> None:
        """Stop dispatching; signals arriving after this are discarded until zag exits."""
        self._stopping = True
        thread = self._thread
        if thread is not None and thread.is_alive() and thread.ident is not None:
            try:
                signal.pthread_kill(thread.ident, signal.SIGWINCH)
            except (OSError, ValueError):
                pass
            thread.join(timeout=1.0)
        for signum, previous in self._previous_handlers.items():
            signal.signal(signum, previous)  # type: ignore[arg-type]
        self._previous_handlers.clear()

    def _wait_loop(self) -> None:
        while not self._stopping:
            try:
                info = signal.sigwaitinfo(self.handled)
            except InterruptedError:
                continue
            if self._stopping:
                return
            self._dispatch(info.si_signo, info.si_code == SI_KERNEL)

    def _on_handler_signal(self, signum: int, _frame: object) -> None:
        from_terminal = signum in (signal.SIGINT, signal.SIGQUIT) and _terminal_owns_our_group()
        self._dispatch(signum, from_terminal)

    def _dispatch(self, signum: int, from_terminal: bool) -> None:
        try:
            self._handler(signum, from_terminal)
        except Exception:  # noqa: BLE001 - the signal thread must survive anything
            from zag import diag

            diag.exception("signal_handler_failed", signum=signum)


def _inherited_ignored(signum: int) -> bool:
    """True for a SIGHUP that zag was started with ignored (`nohup zag run ...`)."""
    return signum == getattr(signal, "SIGHUP", None) and signal.getsignal(signum) == signal.SIG_IGN


def _terminal_owns_our_group() -> bool:
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)
