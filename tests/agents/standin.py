#!/usr/bin/env python3
"""A stand-in agent CLI that the tests own: behaves as a JSON script says, whatever its arguments.

zag passes the user's arguments through untouched (plus whatever the provider adds), so the stand-in
never interprets argv; it only records it. Behaviour comes from the environment:

  STANDIN_SCRIPT  path of a JSON file {"runs": [[action, ...], [action, ...], ...]}; invocation k (0-based,
                  counted in STANDIN_STATE) plays runs[min(k, len-1)]. Without it: exit 0 silently.
  STANDIN_LOG     (optional) JSONL file; each invocation appends {"argv", "cwd", "pid", "env": {ZAG_*}}.
  STANDIN_STATE   (optional) counter file for the invocation number (default: STANDIN_SCRIPT + ".count").

Actions (each a one-key object plus options):
  {"out": "text"} / {"err": "text"}          write to stdout / stderr (flushed; "\\n" not added)
  {"out_bytes": N, "chunk": 65536}           write N bytes of filler to stdout (throughput tests)
  {"sleep": 0.5}
  {"append": PATH, "lines": [...]}           append lines (strings, or objects encoded as JSON) + "\\n"
  {"append": PATH, "text": "..."}            append raw text (no newline added: torn lines)
                                             (+ "ignore_errors": true: a failed write, e.g. a full disk,
                                             is said on stderr and the agent goes on, what was written stays)
  {"write": PATH, "text": "..."}             replace a file's content atomically (rename)
  {"sqlite": PATH, "sql": "...", "params": [...]}  run SQL (executescript if no params; string params are
                                             expanded like paths)
  {"mkdir": PATH}
  {"echo_stdin": true}                       copy stdin to stdout until EOF
  {"read_line": true, "prefix": "got: "}     read one line of stdin, print prefix + line
  {"expect": "text", "timeout": 10}          read stdin until "text" was seen (PTY: keystrokes), or exit 97
                                             (+ "record": PATH: append what was read to PATH)
  {"raw_tty": true}                          put the stdin tty in raw mode (like a TUI), dropping typeahead
                                             (+ "when": "drain": keeping it, as node's setRawMode does)
  {"print_winsize": true}                    print "winsize ROWS COLS\\n"
  {"on_winch": true}                         from now on, print the window size on every SIGWINCH
  {"ignore": ["SIGTERM", ...]}               ignore these signals
  {"trap": ["SIGINT", ...]}                  on these signals print "got SIGINT\\n" and exit 128+N
  {"wait_signal": 30}                        sleep until a signal arrives (or the time is up)
  {"wait_file": PATH, "timeout": 10}         wait until PATH exists
  {"spawn_sleeper": 60, "pidfile": PATH}      start a grandchild `sleep` and record its pid
                                             (+ "setsid": true: in a session of its own, as a daemon)
  {"hold_open": PATH}                        open PATH for appending and keep it open until exit (as
                                             agents that hold their transcript open do)
  {"exit": 3}                                exit with this code
  {"signal": "SIGKILL"}                      die of this signal
  {"tty_check": true}                        print "tty in=<0|1> out=<0|1> err=<0|1>\\n"
  {"await_hangup": PATH, "timeout": 30}      print "awaiting the hang-up\\n" (its signal handlers set), read
                                             stdin (keys are dropped) until it ends, then try a write to
                                             stdout and record to PATH (JSON) {"read": "eof"|"EIO"|"timeout",
                                             "write": "ok"|"EIO"|..., "signals": [SIGHUP/SIGCONT seen]};
                                             exit 97 on timeout (+ "sighup": "ignore"|"default"|"record":
                                             SIGHUP's disposition meanwhile; default: as inherited; + "tick": S:
                                             write "." every S seconds meanwhile, a failed write ignored)

Paths may contain {session_id} (value after --session-id in argv, else after --resume / -r, else the
argv-log invocation number), {session_id8} (its first 8 characters), {cwd}, {home}, {env:NAME} and
{now} (the current UTC time, RFC 3339 with milliseconds: records stamped when written, not when the
script was).
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time


def main() -> int:
    script_path = os.environ.get("STANDIN_SCRIPT")
    _record_invocation()
    if not script_path:
        return 0
    with open(script_path, encoding="utf-8") as handle:
        runs = json.load(handle)["runs"]
    index = _next_invocation(script_path)
    actions = runs[min(index, len(runs) - 1)] if runs else []
    context = {"invocation": index}
    for action in actions:
        result = _perform(action, context)
        if result is not None:
            return result
    return 0


def _record_invocation() -> None:
    log = os.environ.get("STANDIN_LOG")
    if not log:
        return
    record = {
        "argv": sys.argv[1:],
        "cwd": os.getcwd(),
        "pid": os.getpid(),
        "env": {key: value for key, value in os.environ.items() if key.startswith(("ZAG_", "STANDIN_X"))},
    }
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def _next_invocation(script_path: str) -> int:
    state = os.environ.get("STANDIN_STATE") or script_path + ".count"
    try:
        with open(state, encoding="utf-8") as handle:
            count = int(handle.read().strip() or 0)
    except (OSError, ValueError):
        count = 0
    with open(state, "w", encoding="utf-8") as handle:
        handle.write(str(count + 1))
    return count


def _arg_after(*flags: str) -> str | None:
    argv = sys.argv[1:]
    for flag in flags:
        for position, value in enumerate(argv[:-1]):
            if value == flag:
                return argv[position + 1]
        for value in argv:
            if value.startswith(flag + "="):
                return value.split("=", 1)[1]
    return None


def _expand(text: str, context: dict) -> str:
    session_id = _arg_after("--session-id") or _arg_after("--resume", "-r") or str(context["invocation"])
    text = text.replace("{session_id8}", session_id[:8]).replace("{session_id}", session_id)
    text = text.replace("{cwd}", os.getcwd())
    if "{now}" in text:
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
        text = text.replace("{now}", stamp)
    text = text.replace("{home}", os.path.expanduser("~"))
    while "{env:" in text:
        start = text.index("{env:")
        end = text.index("}", start)
        text = text[:start] + os.environ.get(text[start + 5:end], "") + text[end + 1:]
    return text


def _write(stream, text: str) -> None:
    stream.write(text)
    stream.flush()


def _perform(action: dict, context: dict) -> int | None:  # noqa: C901 - a flat dispatch table reads best
    if "out" in action:
        _write(sys.stdout, _expand(action["out"], context))
    elif "err" in action:
        _write(sys.stderr, _expand(action["err"], context))
    elif "out_bytes" in action:
        chunk = int(action.get("chunk", 65536))
        block = (b"0123456789abcdef" * (chunk // 16 + 1))[:chunk - 1] + b"\n"
        remaining = int(action["out_bytes"])
        fd = sys.stdout.fileno()
        while remaining > 0:
            piece = block[:remaining]
            view = memoryview(piece)
            while view:
                view = view[os.write(fd, view):]
            remaining -= len(piece)
    elif "sleep" in action:
        time.sleep(float(action["sleep"]))
    elif "append" in action:
        path = _expand(action["append"], context)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        try:
            with open(path, "a", encoding="utf-8") as handle:
                if "text" in action:
                    handle.write(_expand(action["text"], context))
                for line in action.get("lines", []):
                    text = line if isinstance(line, str) else json.dumps(line)
                    handle.write(_expand(text, context) + "\n")
        except OSError as exc:
            if not action.get("ignore_errors"):
                raise
            _write(sys.stderr, f"standin: append failed: {exc.strerror}\n")
    elif "write" in action:
        path = _expand(action["write"], context)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path + ".tmp", "w", encoding="utf-8") as handle:
            handle.write(_expand(action["text"], context))
        os.replace(path + ".tmp", path)
    elif "sqlite" in action:
        import sqlite3

        path = _expand(action["sqlite"], context)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        connection = sqlite3.connect(path, timeout=10)
        try:
            if "params" in action:
                params = [_expand(value, context) if isinstance(value, str) else value for value in action["params"]]
                connection.execute(action["sql"], params)
            else:
                connection.executescript(action["sql"])
            connection.commit()
        finally:
            connection.close()
    elif "mkdir" in action:
        os.makedirs(_expand(action["mkdir"], context), exist_ok=True)
    elif "echo_stdin" in action:
        while True:
            data = os.read(0, 65536)
            if not data:
                break
            os.write(1, data)
    elif "read_line" in action:
        line = sys.stdin.readline()
        _write(sys.stdout, action.get("prefix", "") + line)
    elif "expect" in action:
        record = _expand(action["record"], context) if "record" in action else None
        return _expect(action["expect"], float(action.get("timeout", 10)), record)
    elif "raw_tty" in action:
        import termios
        import tty

        # TCSAFLUSH by default (Python's tty); "drain" as libuv (node TUIs) does: typeahead is kept
        tty.setraw(0, termios.TCSADRAIN if action.get("when") == "drain" else termios.TCSAFLUSH)
    elif "print_winsize" in action:
        _write(sys.stdout, _winsize_line())
    elif "on_winch" in action:
        signal.signal(signal.SIGWINCH, lambda *_: _write(sys.stdout, _winsize_line()))
    elif "ignore" in action:
        for name in action["ignore"]:
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    elif "trap" in action:
        for name in action["trap"]:
            signal.signal(getattr(signal, name), _trap)
    elif "wait_signal" in action:
        deadline = time.monotonic() + float(action["wait_signal"])
        while time.monotonic() < deadline:
            time.sleep(0.05)
    elif "wait_file" in action:
        path = _expand(action["wait_file"], context)
        deadline = time.monotonic() + float(action.get("timeout", 10))
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.02)
    elif "spawn_sleeper" in action:
        import subprocess

        sleeper = subprocess.Popen(["sleep", str(action["spawn_sleeper"])],
                                   start_new_session=bool(action.get("setsid")))
        with open(_expand(action["pidfile"], context), "w", encoding="utf-8") as handle:
            handle.write(str(sleeper.pid))
    elif "hold_open" in action:
        path = _expand(action["hold_open"], context)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        context.setdefault("held", []).append(open(path, "a", encoding="utf-8"))  # noqa: SIM115 - held to exit
    elif "await_hangup" in action:
        return _await_hangup(_expand(action["await_hangup"], context), float(action.get("timeout", 30)),
                             action.get("sighup"), action.get("tick"))
    elif "tty_check" in action:
        flags = " ".join(f"{name}={int(os.isatty(fd))}" for name, fd in (("in", 0), ("out", 1), ("err", 2)))
        _write(sys.stdout, f"tty {flags}\n")
    elif "exit" in action:
        return int(action["exit"])
    elif "signal" in action:
        sys.stdout.flush()
        if action["signal"] not in ("SIGKILL", "SIGSTOP"):  # these cannot be (and need not be) reset
            signal.signal(getattr(signal, action["signal"]), signal.SIG_DFL)
        os.kill(os.getpid(), getattr(signal, action["signal"]))
        time.sleep(5)
        return 99
    else:
        _write(sys.stderr, f"standin: unknown action {action!r}\n")
        return 98
    return None


def _trap(signum, _frame) -> None:
    _write(sys.stdout, f"got {signal.Signals(signum).name}\n")
    os._exit(128 + signum)


def _await_hangup(path: str, timeout: float, sighup: str | None, tick: float | None) -> int | None:
    import errno

    seen: list[str] = []
    record = lambda signum, _frame: seen.append(signal.Signals(signum).name)  # noqa: E731
    signal.signal(signal.SIGCONT, record)
    if sighup:
        signal.signal(signal.SIGHUP, {"ignore": signal.SIG_IGN, "default": signal.SIG_DFL}.get(sighup, record))
    _write(sys.stdout, "awaiting the hang-up\n")
    how = "timeout"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            ready, _, _ = select.select([0], [], [], tick or max(0.0, deadline - time.monotonic()))
            if ready and not os.read(0, 4096):
                how = "eof"
                break
            if tick and not ready:
                try:
                    os.write(1, b".")
                except OSError:
                    pass
        except InterruptedError:
            continue
        except OSError as exc:
            how = errno.errorcode.get(exc.errno, str(exc.errno))
            break
    try:
        os.write(1, b"after the hang-up\n")
        wrote = "ok"
    except OSError as exc:
        wrote = errno.errorcode.get(exc.errno, str(exc.errno))
    time.sleep(0.3)  # the kernel signals the session leader just after it wakes the readers
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"read": how, "write": wrote, "signals": seen}, handle)
    return 97 if how == "timeout" else None


def _winsize_line() -> str:
    try:
        size = os.get_terminal_size(0)
    except OSError:
        try:
            size = os.get_terminal_size(1)
        except OSError:
            return "winsize none\n"
    return f"winsize {size.lines} {size.columns}\n"


def _expect(text: str, timeout: float, record: str | None = None) -> int | None:
    seen = b""
    wanted = text.encode()
    deadline = time.monotonic() + timeout
    try:
        while wanted not in seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _write(sys.stderr, f"standin: expected {text!r}, saw {seen[-200:]!r}\n")
                return 97
            ready, _, _ = select.select([0], [], [], remaining)
            if ready:
                data = os.read(0, 4096)
                if not data:
                    return 97
                seen += data
        return None
    finally:
        if record is not None:
            with open(record, "ab") as file:
                file.write(seen)


if __name__ == "__main__":
    sys.exit(main())
