"""A network namespace that has only `lo`, so the real CLIs cannot reach anything but the fake API.

A holder process (`unshare --net`, lo brought up, then blocked on its stdin) keeps the namespace alive;
commands enter it through `nsenter --net=/proc/<holder>/ns/net` (which execs, so the pid is the
command's own). The fake API's listening socket is created *inside* the namespace by a short-lived thread
that joins it with setns(2) — network namespaces are per thread, and a socket stays in the namespace it
was created in — so the fake keeps serving from the test process while the CLIs connect to it.

Needs CAP_SYS_ADMIN (root). `NetJail.create()` probes the whole chain and returns None when anything is
missing, so callers fall back to settings-only isolation. ZAG_E2E_NETNS=0 turns it off.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import socket
import subprocess
import threading
from pathlib import Path

CLONE_NEWNET = 0x40000000
_HOLDER_SCRIPT = "ip link set lo up && echo ready && read _"  # exits when the test process goes away


class NetJailError(RuntimeError):
    """The namespace could not be set up or probed."""


class NetJail:
    """A live network namespace (see the module docstring)."""

    def __init__(self, holder: subprocess.Popen[str]) -> None:
        self._holder = holder
        self.ns_path = f"/proc/{holder.pid}/ns/net"

    @classmethod
    def create(cls) -> "NetJail | None":
        """A working jail, or None (not root, tools missing, disabled, or the probe failed)."""
        if os.environ.get("ZAG_E2E_NETNS", "1") == "0":
            return None
        if os.geteuid() != 0 or not all(shutil.which(tool) for tool in ("unshare", "nsenter", "ip")):
            return None
        try:
            jail = cls._start()
        except (OSError, NetJailError, subprocess.SubprocessError):
            return None
        try:
            jail.probe()
        except (OSError, NetJailError, subprocess.SubprocessError):
            jail.close()
            return None
        return jail

    @classmethod
    def _start(cls) -> "NetJail":
        holder = subprocess.Popen(["unshare", "--net", "sh", "-c", _HOLDER_SCRIPT], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready: list[str] = []
        reader = threading.Thread(target=lambda: ready.append(holder.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout=10)
        if not ready or ready[0].strip() != "ready":
            holder.kill()
            holder.wait(timeout=5)
            raise NetJailError(f"namespace holder did not start: {holder.stderr.read() if holder.stderr else ''}")
        return cls(holder)

    def wrap(self, argv: list[str]) -> list[str]:
        """`argv` run inside the namespace (same pid: nsenter execs)."""
        return ["nsenter", f"--net={self.ns_path}", "--", *argv]

    def listen_socket(self) -> socket.socket:
        """A TCP socket listening on 127.0.0.1 (ephemeral port) inside the namespace."""
        result: list[socket.socket | BaseException] = []

        def in_namespace() -> None:
            try:
                fd = os.open(self.ns_path, os.O_RDONLY)
                try:
                    libc = ctypes.CDLL(None, use_errno=True)
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns failed")
                finally:
                    os.close(fd)
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.bind(("127.0.0.1", 0))
                sock.listen(64)
                result.append(sock)
            except BaseException as exc:  # handed to the caller's thread
                result.append(exc)

        thread = threading.Thread(target=in_namespace, name="netns-listen")
        thread.start()
        thread.join(timeout=10)
        if not result:
            raise NetJailError("creating a socket inside the namespace timed out")
        if isinstance(result[0], BaseException):
            raise NetJailError(f"creating a socket inside the namespace failed: {result[0]}")
        return result[0]

    def probe(self) -> None:
        """Prove the jail: inside, 127.0.0.1 reaches our socket and nothing else is routable."""
        sock = self.listen_socket()
        port = sock.getsockname()[1]
        check = ("import socket,sys\n"
                 f"socket.create_connection(('127.0.0.1',{port}),timeout=3).close()\n"
                 "try:\n socket.create_connection(('1.1.1.1',443),timeout=3)\n"
                 "except OSError: sys.exit(0)\n"
                 "sys.exit(3)\n")
        try:
            done = subprocess.run(self.wrap([_python(), "-c", check]), capture_output=True, text=True, timeout=15)
        finally:
            sock.close()
        if done.returncode != 0:
            raise NetJailError(f"namespace probe failed (exit {done.returncode}): {done.stderr[-500:]}")

    @property
    def holder_pid(self) -> int:
        return self._holder.pid

    def close(self) -> None:
        """Stop the holder (by pid) and reap it."""
        if self._holder.poll() is None:
            self._holder.kill()
        try:
            self._holder.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self._holder.stdin, self._holder.stdout, self._holder.stderr):
            if stream is not None:
                stream.close()


def _python() -> str:
    import sys

    return sys.executable or str(Path("/usr/bin/python3"))
