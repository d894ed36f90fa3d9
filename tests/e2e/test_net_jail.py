"""The network namespace the CLIs run in: the fake is reachable inside, nothing else is."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from .fake_api import FakeAPI
from .netjail import NetJail

PROBE = """\
import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3).close()
for host in ("1.1.1.1", "8.8.8.8"):
    try:
        socket.create_connection((host, 443), timeout=3)
    except OSError:
        continue
    sys.exit(f"reached {host}")
try:
    socket.getaddrinfo("registry.npmjs.org", 443)
except OSError:
    sys.exit(0)
sys.exit("resolved registry.npmjs.org")
"""


@pytest.fixture
def jail(net_jail: NetJail | None) -> NetJail:
    if net_jail is None:
        pytest.skip("no network namespace here (needs root + unshare/nsenter/ip, ZAG_E2E_NETNS!=0); "
                    "the CLIs are kept offline by their settings only")
    return net_jail


def test_inside_the_jail_only_the_fake_is_reachable(jail: NetJail, fake_api: FakeAPI) -> None:
    done = subprocess.run(jail.wrap([sys.executable, "-c", PROBE, str(fake_api.port)]), capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def test_the_jailed_fake_is_not_reachable_from_outside(jail: NetJail, fake_api: FakeAPI) -> None:
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(fake_api.base_url + "/", timeout=3)


def test_wrap_keeps_the_pid(jail: NetJail) -> None:
    """nsenter execs (no fork), so the pid a test or zag sees is the command's own."""
    process = subprocess.Popen(jail.wrap([sys.executable, "-c", "import os; print(os.getpid())"]),
                               stdout=subprocess.PIPE, text=True)
    out, _ = process.communicate(timeout=30)
    assert int(out) == process.pid
