"""The body of `zag run`, free of click: `zag run PROVIDER ...` reaches it without importing click
(`zag.cli.main` recognises that command line itself), so the agent starts sooner.

Once the session is over the `zag` process leaves with `os._exit` (`leave`, called by `zag.cli.main`):
the log is closed, the index row written (or the failure reported), the terminal restored and the watchdog
reaped by then, so the interpreter's teardown (~25 ms of freeing every module and object) would only
delay the shell's prompt.
"""

from __future__ import annotations

import os
import sys

from zag.providers import NAMES


def parse_run(args: list[str]) -> tuple[str, list[str], bool] | None:
    """(provider, agent args, verbose) when `args` is a plain `run [-v|--verbose]... PROVIDER ARGS...`
    command line; None for anything else (help, a misspelt provider, `--`), which click handles."""
    if not args or args[0] != "run":
        return None
    index, verbose = 1, False
    while index < len(args) and args[index] in ("-v", "--verbose"):
        verbose = True
        index += 1
    if index < len(args) and args[index] in NAMES:
        return args[index], args[index + 1:], verbose
    return None


def run_agent(provider_name: str, args: list[str], *, verbose: bool = False) -> int:
    """Supervise one run of the agent; returns zag's exit code."""
    try:
        return _run_agent(provider_name, args, verbose)
    except KeyboardInterrupt:  # before the supervisor took over the signals
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug in zag: one line for the user, details in zag.log
        if _interrupted(exc):
            return 130
        details = ""
        try:  # what failed may fail here too (no descriptor left to import zag.diag with: ulimit -n 10)
            from zag import diag, paths

            diag.exception("run_failed", provider=provider_name)
            details = f" (details in {paths.diagnostics_log()})"
        except Exception:  # noqa: BLE001
            pass
        say(f"zag: internal error: {type(exc).__name__}: {exc}{details}")
        return 70


def _interrupted(exc: BaseException) -> bool:
    """Whether `exc` was caused by Ctrl-C: one arriving while a class body ran (zag imports a provider
    after start-up) reaches here as "RuntimeError: Error calling __set_name__" caused by it."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def leave(code: int) -> None:
    """End the process with `code` once `run_agent` returned: `atexit` callbacks run and Python's stdio
    buffers are flushed, then `os._exit` skips the interpreter's teardown. Returns (for a normal exit)
    only if a non-daemon thread still runs, which the interpreter would wait for (zag starts none)."""
    threading = sys.modules.get("threading")
    if threading is not None and any(thread.is_alive() and not thread.daemon
                                     and thread is not threading.main_thread()
                                     for thread in threading.enumerate()):
        return
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _run_agent(provider_name: str, args: list[str], verbose: bool) -> int:
    from zag import config, paths, providers
    from zag.wrapper.executable import MissingExecutable, find_executable

    provider = providers.get(provider_name)
    env = paths.environ_for_agent()
    try:
        executable = find_executable(provider_name, provider.executable, provider.install_hint, env)
    except MissingExecutable as exc:
        say(f"zag: {exc}")
        return exc.exit_code
    try:
        paths.home()
    except paths.NoHome as exc:  # nowhere to log: the agent runs as it would without zag
        say(f"zag: {exc.strerror}; {provider_name} runs without zag")
        return _run_unsupervised(executable, args, env)
    settings = config.load()
    for problem in settings.problems:
        say(f"zag: config: {problem}")

    from zag.wrapper.supervisor import LaunchFailed, RunRequest, Supervisor

    interactive = _is_tty(0) and _is_tty(1)
    request = RunRequest(provider_name, args, executable, interactive, verbose, env)
    try:
        return Supervisor(provider, request, settings).run()
    except LaunchFailed as exc:
        say(f"zag: {exc}")
        return exc.exit_code


def _run_unsupervised(executable: str, args: list[str], env: dict[str, str]) -> int:
    """Become the agent (exec), with the signal dispositions a shell would give it; 126/127 if it cannot
    be run."""
    import signal

    for name in ("SIGPIPE", "SIGXFSZ"):  # Python ignores them, and an ignored signal stays so across exec
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
    try:
        os.execve(executable, [executable, *args], env)
    except OSError as exc:
        from zag.wrapper.executable import not_found_reason

        reason = not_found_reason(executable, exc.strerror) if isinstance(exc, FileNotFoundError) else None
        say(f"zag: cannot run {executable}: {reason or exc.strerror or exc}")
        return 127 if isinstance(exc, FileNotFoundError) else 126
    return 126  # not reached


def say(message: str) -> None:
    """One line to stderr (fd 2 itself: `sys.stderr` may be None), never raising."""
    try:
        os.write(2, (message + "\n").encode("utf-8", "replace"))
    except OSError:
        pass


def _is_tty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False
